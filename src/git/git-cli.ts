// The git command line, run without a shell: every argument is validated here, prompts are
// off (a missing credential fails instead of hanging), each run has a timeout and an
// AbortSignal that kill git's whole process group (ssh, index-pack), and output is capped.
import { spawn } from 'node:child_process';
import { BerthError } from '../../controllers/ports/errors.js';

export interface GitRunOptions {
  cwd?: string;
  signal?: AbortSignal;
  /** Default 120 s. */
  timeoutMs?: number;
  /** Bytes kept from stdout and from stderr each; stdout beyond it is an error. Default 1 MiB. */
  maxOutputBytes?: number;
}

export interface GitRunResult {
  stdout: string;
  stderr: string;
  code: number;
}

const DEFAULT_TIMEOUT_MS = 120_000;
const DEFAULT_MAX_OUTPUT = 1 << 20;

// https, http, ssh and file URLs, or scp-like `user@host:path`. Anything else (ext::, fd::,
// a leading dash that git would read as an option) is refused before git sees it.
const URL_RE = /^(?:(?:https?|ssh|file):\/\/[^\s]+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+)$/;

export function validateGitUrl(url: string): void {
  if (url.length > 2048 || !URL_RE.test(url) || hasControlChars(url)) {
    throw new BerthError('stalled', 'InvalidGitUrl', `not a supported git URL (https://, ssh://, git@host:path, file://): ${JSON.stringify(url.slice(0, 200))}`);
  }
}

/** A subset of git check-ref-format: what a branch name in a manifest may be. */
export function validateBranch(branch: string): void {
  const ok =
    /^[A-Za-z0-9._/-]{1,255}$/.test(branch) &&
    !branch.startsWith('-') &&
    !branch.startsWith('/') &&
    !branch.endsWith('/') &&
    !branch.endsWith('.lock') &&
    !branch.endsWith('.') &&
    !branch.includes('..') &&
    !branch.includes('//') &&
    !branch.split('/').some((part) => part.startsWith('.'));
  if (!ok) throw new BerthError('stalled', 'InvalidBranch', `not a valid branch name: ${JSON.stringify(branch.slice(0, 100))}`);
}

export function validateCommit(commit: string): void {
  if (!/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(commit)) {
    throw new BerthError('stalled', 'InvalidCommit', `not a full commit id: ${JSON.stringify(commit.slice(0, 80))}`);
  }
}

function hasControlChars(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/** The environment git runs with: no prompts, ssh in batch mode, no pager, C locale for parseable messages. */
export function gitEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  // A user-provided GIT_SSH_COMMAND (e.g. `ssh -i /keys/deploy`) is kept; ours only adds options.
  const ssh = base.GIT_SSH_COMMAND ?? 'ssh';
  return {
    ...base,
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: base.GIT_ASKPASS ?? '',
    SSH_ASKPASS: base.SSH_ASKPASS ?? '',
    // accept-new: first contact trusts the host key (there is no one to ask), later changes fail.
    GIT_SSH_COMMAND: `${ssh} -o BatchMode=yes -o ConnectTimeout=20 -o StrictHostKeyChecking=accept-new`,
    GIT_PAGER: 'cat',
    LC_ALL: 'C',
    LANGUAGE: 'C',
  };
}

/**
 * Runs `git <args>`. Resolves with the exit code (non-zero included) so callers classify;
 * rejects on spawn failure, timeout (GitTimeout), abort (the signal's AbortError) or
 * stdout over the cap (GitOutputTooLarge).
 */
export function runGit(args: string[], opts: GitRunOptions = {}): Promise<GitRunResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const cap = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
  const signal = opts.signal;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    // Own process group, so a timeout kills ssh and index-pack too, not just git.
    const child = spawn('git', args, { cwd: opts.cwd, env: gitEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let failure: Error | undefined;

    const kill = (why: Error): void => {
      failure ??= why;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    const timer = setTimeout(
      () => kill(new BerthError('transient', 'GitTimeout', `git ${args[0] ?? ''} did not finish within ${Math.round(timeoutMs / 1000)}s`)),
      timeoutMs,
    );
    const onAbort = (): void => kill(abortError(signal));
    signal?.addEventListener('abort', onAbort, { once: true });

    child.stdout.on('data', (b: Buffer) => {
      outBytes += b.length;
      if (outBytes > cap) kill(new BerthError('transient', 'GitOutputTooLarge', `git ${args[0] ?? ''} printed more than ${cap} bytes`));
      else out.push(b);
    });
    child.stderr.on('data', (b: Buffer) => {
      // Keep the start of stderr: git's fatal line comes first, progress noise after.
      if (errBytes < cap) err.push(b.subarray(0, cap - errBytes));
      errBytes += b.length;
    });
    child.on('error', (e) => {
      failure ??= new BerthError('transient', 'GitUnavailable', `cannot run git: ${e.message}`, { cause: e });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (failure) reject(failure);
      else resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), code: code ?? -1 });
    });
  });
}

function abortError(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  const e = new Error('git aborted', { cause: reason });
  e.name = 'AbortError';
  return e;
}

/** Turns a failed git run into the error kind the controllers act on. */
export function classifyGitFailure(what: string, url: string, res: GitRunResult): BerthError {
  const text = redactUrl(firstLines(res.stderr));
  if (/Authentication failed|could not read Username|Permission denied \(publickey|Host key verification failed|terminal prompts disabled|returned error: 40[13]/i.test(res.stderr)) {
    return new BerthError('transient', 'GitAuthFailed', `${what} ${redactUrl(url)}: authentication failed: ${text}`);
  }
  return new BerthError('transient', 'GitUnreachable', `${what} ${redactUrl(url)} failed: ${text}`);
}

/** https://user:token@host/… must never reach a log or status file with its password. */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)([^/@\s:]+):[^/@\s]*@/gi, '$1$2:***@');
}

function firstLines(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('hint:'));
  return lines.slice(0, 3).join('; ').slice(0, 500) || 'no message from git';
}
