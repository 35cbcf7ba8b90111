import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, readFile, readdir, rm, stat, writeFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CliGitSource, listFiles } from '../../src/git/git-source.js';
import { runGit, validateGitUrl, redactUrl } from '../../src/git/git-cli.js';
import { BerthError } from '../../controllers/ports/errors.js';
import { createTestRepo, git, type TestRepo } from '../helpers/git.js';

const source = new CliGitSource();

async function rejection(p: Promise<unknown>): Promise<BerthError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(BerthError);
  return e as BerthError;
}

describe('git source over file://', () => {
  let repo: TestRepo;
  let c1: string;
  let c2: string;

  beforeAll(async () => {
    repo = await createTestRepo();
    c1 = await repo.commit({ 'a.txt': 'one\n', 'apps/web.yaml': 'kind: App\n' });
    c2 = await repo.commit({ 'a.txt': 'two\n' });
    await repo.commit({ 'a.txt': 'dev\n' }, { branch: 'dev' });
  });
  afterAll(() => repo.cleanup());

  it('resolves the head of a branch', async () => {
    expect(await source.resolveHead(repo.url, 'main')).toBe(c2);
  });

  it('does not confuse a branch with a longer ref ending in the same name', async () => {
    await git(repo.work, 'push', '-q', repo.bare, `${c1}:refs/heads/feature/main`);
    expect(await source.resolveHead(repo.url, 'main')).toBe(c2);
  });

  it('reports a missing branch as stalled BranchNotFound', async () => {
    const e = await rejection(source.resolveHead(repo.url, 'nope'));
    expect([e.kind, e.reason]).toEqual(['stalled', 'BranchNotFound']);
  });

  it('reports an unreachable repository as transient GitUnreachable', async () => {
    const e = await rejection(source.resolveHead(`file://${repo.root}/missing.git`, 'main'));
    expect([e.kind, e.reason]).toEqual(['transient', 'GitUnreachable']);
    expect(e.message).toMatch(/missing\.git/);
  });

  it('refuses URLs and branches git would read as options or other transports', async () => {
    for (const url of ['ext::sh -c touch% /tmp/pwned', '--upload-pack=touch /tmp/x', 'file:///tmp/a b', '/tmp/plain/path', 'ftp://host/repo']) {
      expect(() => validateGitUrl(url), url).toThrow(/not a supported git URL/);
    }
    for (const branch of ['-x', 'a..b', 'a b', '.hidden', 'x.lock', 'a//b']) {
      expect((await rejection(source.resolveHead(repo.url, branch))).reason, branch).toBe('InvalidBranch');
    }
  });

  it('redacts passwords in URLs', () => {
    expect(redactUrl('fatal: https://me:s3cret@git.example.com/x.git not found')).toBe('fatal: https://me:***@git.example.com/x.git not found');
  });

  it('checks out exactly the requested commit, shallow, and reuses a complete checkout', async () => {
    const dest = join(repo.root, 'co', 'web', c1.slice(0, 12));
    const t0 = performance.now();
    const first = await source.checkout(repo.url, c1, dest);
    const ms = performance.now() - t0;
    expect(first.reused).toBe(false);
    expect(await readFile(join(dest, 'a.txt'), 'utf8')).toBe('one\n');
    expect((await git(dest, 'rev-parse', 'HEAD')).trim()).toBe(c1);
    expect(await git(dest, 'rev-parse', '--is-shallow-repository')).toBe('true');
    expect(await readdir(join(repo.root, 'co', 'web'))).toEqual([c1.slice(0, 12)]);
    const second = await source.checkout(repo.url, c1, dest);
    expect(second.reused).toBe(true);
    console.log(`checkout of a small repo over file://: ${ms.toFixed(0)} ms`);
  });

  it('redoes a half-done checkout left by a kill -9 (partial folder, or a folder without the marker)', async () => {
    const dest = join(repo.root, 'co', 'half', c2.slice(0, 12));
    // A partial folder from an interrupted fetch, and a dest that never got its completion marker.
    await mkdir(join(repo.root, 'co', 'half', `.${c2.slice(0, 12)}.partial`, '.git'), { recursive: true });
    await mkdir(dest, { recursive: true });
    await writeFile(join(dest, 'a.txt'), 'garbage');
    const res = await source.checkout(repo.url, c2, dest);
    expect(res.reused).toBe(false);
    expect(await readFile(join(dest, 'a.txt'), 'utf8')).toBe('two\n');
    expect(await readdir(join(repo.root, 'co', 'half'))).toEqual([c2.slice(0, 12)]);
  });

  it('redoes a complete-looking checkout whose files were damaged (power cut)', async () => {
    const dest = join(repo.root, 'co', 'damaged');
    await source.checkout(repo.url, c2, dest);
    await writeFile(join(dest, 'a.txt'), '');
    const res = await source.checkout(repo.url, c2, dest);
    expect(res.reused).toBe(false);
    expect(await readFile(join(dest, 'a.txt'), 'utf8')).toBe('two\n');
  });

  it('reports a commit that is not in the repository as stalled CommitNotFound', async () => {
    const dest = join(repo.root, 'co', 'missing');
    const e = await rejection(source.checkout(repo.url, 'f'.repeat(40), dest, undefined, { branch: 'main' }));
    expect([e.kind, e.reason]).toEqual(['stalled', 'CommitNotFound']);
    await expect(stat(dest)).rejects.toThrow();
    expect(await readdir(join(repo.root, 'co'))).not.toContain('.missing.partial');
  });

  it('falls back to fetching the branch when the server refuses fetch by commit id (protocol v0)', async () => {
    const dest = join(repo.root, 'co', 'v0');
    const prev = process.env.GIT_CONFIG_PARAMETERS;
    // GIT_CONFIG_PARAMETERS is how `git -c` passes config to child processes: force the old protocol.
    process.env.GIT_CONFIG_PARAMETERS = "'protocol.version'='0'";
    try {
      const res = await source.checkout(repo.url, c1, dest, undefined, { branch: 'main' });
      expect(res.reused).toBe(false);
    } finally {
      if (prev === undefined) delete process.env.GIT_CONFIG_PARAMETERS;
      else process.env.GIT_CONFIG_PARAMETERS = prev;
    }
    expect(await readFile(join(dest, 'a.txt'), 'utf8')).toBe('one\n');
  });

  it('stops git when the signal aborts and leaves no partial folder', async () => {
    const dest = join(repo.root, 'co', 'aborted');
    const ac = new AbortController();
    ac.abort();
    await expect(source.checkout(repo.url, c1, dest, ac.signal)).rejects.toMatchObject({ name: 'AbortError' });
    await expect(stat(dest)).rejects.toThrow();
  });

  it('kills a git command at its timeout', async () => {
    const t0 = performance.now();
    // `git hash-object --stdin` with stdin ignored would return; a credential helper waiting forever is what hangs in real life.
    const e = await rejection(runGit(['-c', 'alias.hang=!sleep 30', 'hang'], { timeoutMs: 300 }));
    expect(e.reason).toBe('GitTimeout');
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('lists files under a subfolder without following symlinks or leaving the checkout', async () => {
    const dest = join(repo.root, 'co', 'list');
    await source.checkout(repo.url, c1, dest);
    await symlink('/etc/passwd', join(dest, 'apps', 'evil.yaml'));
    await symlink('/etc', join(dest, 'etc-link'));
    const res = await listFiles(dest, 'apps/', { extensions: ['.yaml'] });
    expect(res.files.map((f) => f.path)).toEqual(['web.yaml']);
    expect(res.skipped).toEqual([{ path: 'evil.yaml', reason: 'symlinks are not followed' }]);
    await expect(listFiles(dest, '../')).rejects.toMatchObject({ reason: 'InvalidPath' });
    await expect(listFiles(dest, 'etc-link')).rejects.toMatchObject({ reason: 'InvalidPath' });
    await expect(listFiles(dest, 'nope')).rejects.toMatchObject({ reason: 'PathNotFound' });
    expect((await listFiles(dest, '/')).files.map((f) => f.path)).toEqual(['a.txt', 'apps/web.yaml']);
    await rm(dest, { recursive: true });
  });
});
