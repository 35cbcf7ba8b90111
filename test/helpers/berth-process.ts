// Runs the BUILT berth CLI (dist/, built by `npm test`) as a child process with its own
// folders and ephemeral ports, the way a user runs it.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { fileURLToPath } from 'node:url';

export const BERTH_BIN = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));
const run = promisify(execFile);

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a berth CLI command to completion. */
export async function berthCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [BERTH_BIN, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

export interface BerthDirs {
  root: string;
  manifests: string;
  status: string;
  state: string;
}

export async function makeDirs(prefix = 'berth-'): Promise<BerthDirs> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  const dirs = { root, manifests: join(root, 'manifests'), status: join(root, 'status'), state: join(root, 'state') };
  await mkdir(dirs.manifests, { recursive: true });
  return dirs;
}

export class BerthProcess {
  readonly output: string[] = [];
  adminUrl = '';
  httpUrl = '';
  private exited: Promise<number | null>;

  private constructor(
    readonly proc: ChildProcess,
    readonly dirs: BerthDirs,
  ) {
    proc.stdout!.on('data', (d: Buffer) => this.output.push(d.toString()));
    proc.stderr!.on('data', (d: Buffer) => this.output.push(d.toString()));
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
  }

  /**
   * Start `berth run` on dirs; resolves when operator.yaml shows the listeners. `http`/`https`
   * pin a listener address (default 127.0.0.1:0, an ephemeral port) — e.g. the HTTP port a test
   * ACME server validates against, or the same ports across restarts.
   */
  static async start(dirs: BerthDirs, opts: { args?: string[]; env?: NodeJS.ProcessEnv; instance?: string; http?: string; https?: string } = {}): Promise<BerthProcess> {
    const args = [
      BERTH_BIN, 'run', '--manifests', dirs.manifests, '--status', dirs.status, '--state', dirs.state,
      '--admin', '127.0.0.1:0', '--http', opts.http ?? '127.0.0.1:0', '--https', opts.https ?? '127.0.0.1:0', '--log-level', 'debug',
      ...(opts.instance ? ['--instance', opts.instance] : []),
      ...(opts.args ?? []),
    ];
    const proc = spawn(process.execPath, args, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const b = new BerthProcess(proc, dirs);
    await b.waitReady();
    return b;
  }

  /** Waits until this process's operator.yaml lists its admin listener. */
  async waitReady(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // A process killed by a signal (kill -9, a BERTH_FAULT point) has exitCode null and a signalCode.
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) throw new Error(`berth exited with ${this.proc.exitCode ?? this.proc.signalCode}:\n${this.logs()}`);
      const op = await readYaml<{ status?: { pid?: number; listeners?: { admin?: string; http?: string } } }>(join(this.dirs.status, 'operator.yaml'));
      const listeners = op?.status?.pid === this.proc.pid ? op?.status?.listeners : undefined;
      if (listeners?.admin) {
        this.adminUrl = `http://${listeners.admin}`;
        if (listeners.http) this.httpUrl = `http://${listeners.http}`;
        return;
      }
      if (Date.now() > deadline) throw new Error(`berth did not become ready:\n${this.logs()}`);
      await sleep(50);
    }
  }

  /** This process's listeners as operator.yaml shows them now (`https` appears once a route has TLS). */
  async listeners(): Promise<{ admin?: string; http?: string; https?: string }> {
    const op = await readYaml<{ status?: { pid?: number; listeners?: { admin?: string; http?: string; https?: string } } }>(join(this.dirs.status, 'operator.yaml'));
    return (op?.status?.pid === this.proc.pid ? op?.status?.listeners : undefined) ?? {};
  }

  logs(): string {
    return this.output.join('');
  }

  /** Graceful stop (SIGTERM). */
  async stop(): Promise<number | null> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
    return this.exited;
  }

  async kill9(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    await this.exited;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }
}

export async function readYaml<T>(path: string): Promise<T | undefined> {
  try {
    return parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `fn` until it returns a truthy value or the timeout passes (then throws with the last value). */
export async function waitFor<T>(what: string, fn: () => Promise<T> | T, timeoutMs = 10_000, intervalMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await sleep(intervalMs);
  }
}

export async function removeDirs(dirs: BerthDirs): Promise<void> {
  await rm(dirs.root, { recursive: true, force: true });
}

export { run as execFileAsync };

/** An App manifest with `spec` (YAML lines, indented here). */
export function appYaml(name: string, spec: string): string {
  return `apiVersion: berth.dev/v1alpha1\nkind: App\nmetadata: {name: ${name}}\nspec:\n${spec.trim().split('\n').map((l) => `  ${l}`).join('\n')}\n`;
}

/** Writes `<name>.yaml` into a manifests folder atomically (temp + rename), as an editor or `berth apply` would. */
export async function writeAppManifest(manifests: string, name: string, spec: string): Promise<void> {
  const tmp = join(manifests, `.${name}.${randomBytes(3).toString('hex')}.tmp`);
  await writeFile(tmp, appYaml(name, spec));
  await rename(tmp, join(manifests, `${name}.yaml`));
}
