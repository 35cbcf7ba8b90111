// Local git repositories for tests: a bare repository served over file:// and a work tree
// that commits and pushes to it. No network, no global git identity needed.
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile, copyFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', ['-c', 'user.name=berth-test', '-c', 'user.email=test@berth.invalid', '-c', 'commit.gpgsign=false', ...args], {
    cwd,
    env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
  });
  return stdout.trim();
}

export interface TestRepo {
  /** The folder holding both repositories. */
  root: string;
  bare: string;
  /** file:// URL of the bare repository. */
  url: string;
  work: string;
  /** Writes (string), copies (`{ copy, mode }`) or deletes (null) files, commits, pushes to `branch`; returns the commit id. */
  commit(files: Record<string, string | null | { copy: string; mode?: number }>, opts?: { message?: string; branch?: string }): Promise<string>;
  cleanup(): Promise<void>;
}

export async function createTestRepo(): Promise<TestRepo> {
  const root = await mkdtemp(join(tmpdir(), 'berth-git-'));
  const bare = join(root, 'remote.git');
  const work = join(root, 'work');
  await run('git', ['init', '-q', '--bare', '-b', 'main', bare]);
  await run('git', ['init', '-q', '-b', 'main', work]);
  let current = 'main';
  return {
    root,
    bare,
    url: `file://${bare}`,
    work,
    async commit(files, opts = {}) {
      const branch = opts.branch ?? 'main';
      if (branch !== current) {
        await git(work, 'checkout', '-q', '-B', branch);
        current = branch;
      }
      for (const [path, content] of Object.entries(files)) {
        const full = join(work, path);
        if (content === null) {
          await rm(full, { force: true });
          continue;
        }
        await mkdir(dirname(full), { recursive: true });
        if (typeof content === 'string') await writeFile(full, content);
        else {
          await copyFile(content.copy, full);
          if (content.mode !== undefined) await chmod(full, content.mode);
        }
      }
      await git(work, 'add', '-A');
      await git(work, 'commit', '-q', '--allow-empty', '-m', opts.message ?? 'test commit');
      await git(work, 'push', '-q', '--force', bare, `HEAD:refs/heads/${branch}`);
      return git(work, 'rev-parse', 'HEAD');
    },
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

/** A busybox build context as files for TestRepo.commit: FROM scratch, serving nothing, printing `message`. */
export function busyboxContext(message: string, extraDockerfileLines: string[] = []): Record<string, string | { copy: string; mode: number }> {
  return {
    busybox: { copy: '/bin/busybox', mode: 0o755 },
    'msg.txt': `${message}\n`,
    Dockerfile: ['FROM scratch', 'COPY busybox /bin/busybox', 'COPY msg.txt /msg.txt', ...extraDockerfileLines, 'CMD ["/bin/busybox", "cat", "/msg.txt"]', ''].join('\n'),
  };
}
