// Git as berth needs it: the head of a branch (ls-remote), and one exact commit checked out
// shallow into a folder under the state dir — crash-safe, so a kill -9 mid-fetch never leaves
// a folder that looks complete. Also a bounded walk of a checkout for GitRepository sync.
import { lstat, mkdir, readdir, readFile, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { BerthError } from '../../controllers/ports/errors.js';
import { classifyGitFailure, redactUrl, runGit, validateBranch, validateCommit, validateGitUrl } from './git-cli.js';

export interface CheckoutResult {
  dir: string;
  /** True when a complete checkout of that commit was already there. */
  reused: boolean;
}

/** The port the controllers use (resolve a branch, materialise a commit). */
export interface GitSource {
  /** The commit at the head of `branch`. BranchNotFound (stalled), GitUnreachable/GitAuthFailed/GitTimeout (transient). */
  resolveHead(url: string, branch: string, signal?: AbortSignal): Promise<string>;
  /** Materialises exactly `commit` (working tree, no history) at `destDir`. `branch` helps servers that refuse fetch-by-id. */
  checkout(url: string, commit: string, destDir: string, signal?: AbortSignal, opts?: { branch?: string }): Promise<CheckoutResult>;
}

export interface CliGitSourceOptions {
  /** Default 30 s. */
  lsRemoteTimeoutMs?: number;
  /** Per git command of a checkout. Default 10 min (a first fetch over a Pi's Wi-Fi can be slow). */
  fetchTimeoutMs?: number;
}

/** Written last, inside .git (never part of a build context), when a checkout is complete. */
const COMPLETE_MARKER = 'berth-checkout';

export class CliGitSource implements GitSource {
  private readonly lsRemoteTimeoutMs: number;
  private readonly fetchTimeoutMs: number;

  constructor(opts: CliGitSourceOptions = {}) {
    this.lsRemoteTimeoutMs = opts.lsRemoteTimeoutMs ?? 30_000;
    this.fetchTimeoutMs = opts.fetchTimeoutMs ?? 600_000;
  }

  async resolveHead(url: string, branch: string, signal?: AbortSignal): Promise<string> {
    validateGitUrl(url);
    validateBranch(branch);
    const ref = `refs/heads/${branch}`;
    const res = await runGit(['ls-remote', '--exit-code', '--', url, ref], { signal, timeoutMs: this.lsRemoteTimeoutMs });
    if (res.code !== 0 && res.code !== 2) throw classifyGitFailure('ls-remote', url, res);
    // ls-remote matches patterns from the tail (refs/x/refs/heads/main would match too): keep the exact ref.
    const line = res.stdout.split('\n').find((l) => l.endsWith(`\t${ref}`));
    const commit = line?.split('\t')[0];
    if (res.code === 2 || commit === undefined) {
      throw new BerthError('stalled', 'BranchNotFound', `branch ${branch} does not exist in ${redactUrl(url)}`);
    }
    validateCommit(commit);
    return commit;
  }

  async checkout(url: string, commit: string, destDir: string, signal?: AbortSignal, opts: { branch?: string } = {}): Promise<CheckoutResult> {
    validateGitUrl(url);
    validateCommit(commit);
    if (opts.branch !== undefined) validateBranch(opts.branch);
    const dest = resolve(destDir);
    if (await this.isComplete(dest, commit, signal)) return { dir: dest, reused: true };

    // Anything else at dest is a leftover (an older layout, a manual copy): redo it. A partial
    // folder has a fixed name, so the one a kill -9 left behind is simply removed.
    await rm(dest, { recursive: true, force: true });
    const partial = join(dirname(dest), `.${basename(dest)}.partial`);
    await rm(partial, { recursive: true, force: true });
    await mkdir(partial, { recursive: true });

    const git = async (args: string[]): Promise<void> => {
      const res = await runGit(args, { cwd: partial, signal, timeoutMs: this.fetchTimeoutMs });
      if (res.code !== 0) throw classifyGitFailure(`git ${args[0] ?? ''}`, url, res);
    };
    try {
      await git(['init', '-q', '.']);
      const byId = await runGit(['fetch', '-q', '--no-tags', '--depth', '1', '--', url, commit], { cwd: partial, signal, timeoutMs: this.fetchTimeoutMs });
      if (byId.code !== 0) {
        // Protocol v2 servers (git >= 2.18, GitHub, GitLab, Gitea) serve any commit by id;
        // older ones answer "not our ref": fetch the branch (or all branches) and look for it.
        if (!/not our ref|unadvertised object|couldn't find remote ref|does not allow request/i.test(byId.stderr)) {
          throw classifyGitFailure('git fetch', url, byId);
        }
        const refspec = opts.branch !== undefined ? `+refs/heads/${opts.branch}:refs/remotes/origin/${opts.branch}` : '+refs/heads/*:refs/remotes/origin/*';
        await git(['fetch', '-q', '--no-tags', '--', url, refspec]);
      }
      const has = await runGit(['cat-file', '-e', `${commit}^{commit}`], { cwd: partial, signal });
      if (has.code !== 0) throw new BerthError('stalled', 'CommitNotFound', `commit ${commit} is not in ${redactUrl(url)}`);
      await git(['-c', 'advice.detachedHead=false', 'checkout', '-q', '--detach', commit]);
      await writeFile(join(partial, '.git', COMPLETE_MARKER), `${commit}\n`);
      await rename(partial, dest);
    } catch (e) {
      await rm(partial, { recursive: true, force: true });
      throw e;
    }
    return { dir: dest, reused: false };
  }

  /** The marker says the checkout finished; `git status` proves the files are still what git wrote (a power cut can empty them). */
  private async isComplete(dest: string, commit: string, signal?: AbortSignal): Promise<boolean> {
    const marker = await readFile(join(dest, '.git', COMPLETE_MARKER), 'utf8').catch(() => '');
    if (marker.trim() !== commit) return false;
    const head = await runGit(['rev-parse', 'HEAD'], { cwd: dest, signal, timeoutMs: 30_000 });
    if (head.code !== 0 || head.stdout.trim() !== commit) return false;
    const st = await runGit(['status', '--porcelain', '--untracked-files=no'], { cwd: dest, signal, timeoutMs: 60_000 });
    return st.code === 0 && st.stdout.trim() === '';
  }
}

export interface ListedFile {
  /** Relative to the listed folder, with `/` separators. */
  path: string;
  size: number;
}

export interface ListFilesOptions {
  /** Only files ending in one of these (e.g. ['.yaml', '.yml']); all files when absent. */
  extensions?: string[];
  /** Default 1000. More is an error, not a silent cut: a partial sync would delete manifests. */
  maxFiles?: number;
}

export interface ListFilesResult {
  /** The folder listed (absolute). */
  dir: string;
  files: ListedFile[];
  /** Entries not listed and why (symlinks, special files). */
  skipped: { path: string; reason: string }[];
}

/**
 * Lists the regular files under `subPath` of `root` (a checkout), sorted, never following
 * symlinks and never leaving `root`. `.git` is skipped.
 */
export async function listFiles(root: string, subPath: string, opts: ListFilesOptions = {}): Promise<ListFilesResult> {
  const maxFiles = opts.maxFiles ?? 1000;
  const dir = await resolveInside(root, subPath);
  const files: ListedFile[] = [];
  const skipped: { path: string; reason: string }[] = [];
  const walk = async (abs: string): Promise<void> => {
    const entries = await readdir(abs, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const full = join(abs, e.name);
      const rel = relative(dir, full).split(sep).join('/');
      if (e.name === '.git') continue;
      if (e.isDirectory()) await walk(full);
      else if (e.isSymbolicLink()) skipped.push({ path: rel, reason: 'symlinks are not followed' });
      else if (!e.isFile()) skipped.push({ path: rel, reason: 'not a regular file' });
      else if (!opts.extensions || opts.extensions.some((x) => e.name.endsWith(x))) {
        if (files.length >= maxFiles) throw new BerthError('stalled', 'TooManyFiles', `more than ${maxFiles} files under ${subPath}`);
        files.push({ path: rel, size: (await lstat(full)).size });
      }
    }
  };
  await walk(dir);
  return { dir, files, skipped };
}

/** `root/subPath`, refusing `..` and symlinked folders that lead outside `root`. */
export async function resolveInside(root: string, subPath: string): Promise<string> {
  const realRoot = await realpath(root);
  const target = resolve(realRoot, `.${sep}${subPath}`);
  const inside = (p: string): boolean => p === realRoot || p.startsWith(realRoot + sep);
  if (!inside(target)) throw new BerthError('stalled', 'InvalidPath', `path ${JSON.stringify(subPath)} leaves the repository`);
  let real: string;
  try {
    real = await realpath(target);
  } catch {
    throw new BerthError('stalled', 'PathNotFound', `path ${JSON.stringify(subPath)} does not exist in the repository`);
  }
  if (!inside(real)) throw new BerthError('stalled', 'InvalidPath', `path ${JSON.stringify(subPath)} leads outside the repository`);
  if (!(await lstat(real)).isDirectory()) throw new BerthError('stalled', 'PathNotFound', `path ${JSON.stringify(subPath)} is not a folder`);
  return real;
}
