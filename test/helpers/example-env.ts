// Shared by the end-to-end tests in examples/<name>/: one berth per test file (its own instance
// label, folders and ephemeral ports) fed with the example's own manifests, stand-ins for the
// images the examples would pull (built offline, and only when the engine lacks the real one),
// and small HTTP/HTTPS clients that talk to berth's proxy with a Host header or SNI.
import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { BerthProcess, berthCli, makeDirs, readYaml, removeDirs, sleep, waitFor, type BerthDirs, type CliResult } from './berth-process.js';
import { TEST_LABEL, buildBusyboxImage, cleanupInstance, docker, requireDocker, testInstance } from './docker.js';
import { pushBody, signedHeaders } from './forge-push.js';
import type { AppStatusFile, Condition, GitRepositoryStatusFile } from '../../src/api/types.generated.js';

/** The examples/ folder of this repository. */
export const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));

export interface ExampleEnv {
  instance: string;
  dirs: BerthDirs;
  berth: BerthProcess | undefined;
  /** Run at close, in order, after berth stopped and the instance's Docker objects are gone (lock releases, temporary repositories). */
  cleanups: (() => Promise<void>)[];
}

export async function exampleEnv(prefix: string): Promise<ExampleEnv> {
  await requireDocker();
  return { instance: testInstance(prefix), dirs: await makeDirs(`berth-${prefix}-`), berth: undefined, cleanups: [] };
}

export async function startBerth(env: ExampleEnv, opts: { env?: NodeJS.ProcessEnv; args?: string[] } = {}): Promise<BerthProcess> {
  env.berth = await BerthProcess.start(env.dirs, { instance: env.instance, ...opts });
  return env.berth;
}

/** Stops berth, removes the instance's Docker objects (by label only), then everything else the test registered. */
export async function closeExampleEnv(env: ExampleEnv | undefined): Promise<void> {
  if (!env) return;
  await env.berth?.stop();
  await cleanupInstance(env.instance);
  for (const c of env.cleanups) await c().catch(() => undefined);
  await removeDirs(env.dirs);
}

/** The text of examples/<example>/<file>. */
export function exampleFile(example: string, file: string): Promise<string> {
  return readFile(join(EXAMPLES, example, file), 'utf8');
}

/** The example's manifest with some fields replaced (paths as arrays, e.g. ['spec', 'idle', 'after']; undefined deletes); comments are kept. */
export async function editedManifest(example: string, file: string, edits: [path: (string | number)[], value: unknown][]): Promise<string> {
  const doc = parseDocument(await exampleFile(example, file));
  for (const [path, value] of edits) {
    if (value === undefined) doc.deleteIn(path);
    else doc.setIn(path, value);
  }
  return doc.toString();
}

/** `berth apply -f -` with `text` on stdin into the env's watched folder, as a user would place a manifest. */
export async function apply(env: ExampleEnv, text: string): Promise<CliResult> {
  const r = await berthCli(['apply', '-f', '-', ...fileArgs(env)], { input: text });
  if (r.code !== 0) throw new Error(`berth apply failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r;
}

/** The --manifests/--status/--state flags of the env, for CLI commands. */
export function fileArgs(env: ExampleEnv): string[] {
  return ['--manifests', env.dirs.manifests, '--status', env.dirs.status, '--state', env.dirs.state];
}

// ---- stand-in images --------------------------------------------------------------------------

/** What a stand-in serves, so that a test can expect the same from the real image. */
export const STAND_INS = {
  /** nginx's default page at / on port 80, from /usr/share/nginx/html. */
  nginx: {
    files: {
      'usr/share/nginx/html/index.html':
        '<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head>\n<body><h1>Welcome to nginx!</h1>\n<p>(berth test stand-in: busybox httpd, built offline)</p></body></html>\n',
    },
    cmd: 'CMD ["httpd", "-f", "-p", "80", "-h", "/usr/share/nginx/html"]',
    /** Text both the real image and the stand-in serve at /. */
    marker: 'Welcome to nginx!',
  },
  /** traefik/whoami answers "Hostname: …" and the request on port 80. */
  whoami: {
    files: { 'www/index.html': 'Hostname: whoami-stand-in\nIP: 127.0.0.1\nGET / HTTP/1.1\n' },
    cmd: 'CMD ["httpd", "-f", "-p", "80", "-h", "/www"]',
    marker: 'Hostname: ',
  },
} as const;

export type StandInKind = keyof typeof STAND_INS;

async function imageLabels(ref: string): Promise<Record<string, string> | null | undefined> {
  try {
    return JSON.parse(await docker('image', 'inspect', '--format', '{{json .Config.Labels}}', ref)) as Record<string, string> | null;
  } catch {
    return undefined; // not present
  }
}

const LOCKS = join(tmpdir(), 'berth-example-image-locks');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Holds `ref` for this test file: test files using the same reference run one after the other
 * (a stand-in's tag must not move, or be removed, under another test's berth). A lock whose
 * holder died is taken over.
 */
async function lockImage(ref: string, timeoutMs = 150_000): Promise<() => Promise<void>> {
  await mkdir(LOCKS, { recursive: true });
  const dir = join(LOCKS, encodeURIComponent(ref));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(dir);
      await writeFile(join(dir, 'pid'), String(process.pid));
      return () => rm(dir, { recursive: true, force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = Number(await readFile(join(dir, 'pid'), 'utf8').catch(() => ''));
    const age = Date.now() - ((await stat(dir).catch(() => undefined))?.mtimeMs ?? Date.now());
    if ((pid > 0 && !alive(pid)) || (!pid && age > 10_000)) await rm(dir, { recursive: true, force: true });
    if (Date.now() > deadline) throw new Error(`${ref} stayed locked by another test (pid ${pid || '?'}) for ${timeoutMs} ms`);
    await sleep(250);
  }
}

/**
 * Makes `ref` available offline for this env. A real image (one without the test label) is
 * used as it is and never touched; otherwise a busybox stand-in is built under that very
 * reference, labelled with the test label and the env's instance, and removed with the instance.
 */
export async function standIn(env: ExampleEnv, ref: string, kind: StandInKind): Promise<'real' | 'stand-in'> {
  const release = await lockImage(ref);
  env.cleanups.push(release); // released once cleanupInstance removed the stand-in
  const labels = await imageLabels(ref);
  if (labels !== undefined && !labels?.[TEST_LABEL]) return 'real';
  const s = STAND_INS[kind];
  await buildBusyboxImage(ref, s.files, [`LABEL dev.berth.instance=${env.instance}`, s.cmd]);
  return 'stand-in';
}

/** A stand-in under a test-only reference (e.g. a build's base image); removed with the instance. */
export async function privateStandIn(env: ExampleEnv, kind: StandInKind): Promise<string> {
  const ref = `berth-test/example-${kind}:${env.instance}`;
  const s = STAND_INS[kind];
  await buildBusyboxImage(ref, s.files, [`LABEL dev.berth.instance=${env.instance}`, s.cmd]);
  return ref;
}

// ---- status ---------------------------------------------------------------------------------

export const appStatus = (env: ExampleEnv, app: string) => readYaml<AppStatusFile>(join(env.dirs.status, 'apps', `${app}.yaml`));
export const repositoryStatus = (env: ExampleEnv, name: string) => readYaml<GitRepositoryStatusFile>(join(env.dirs.status, 'gitrepositories', `${name}.yaml`));
export const condition = (s: { status: { conditions: Condition[] } } | undefined, type: string): Condition | undefined => s?.status.conditions.find((c) => c.type === type);

export function waitPhase(env: ExampleEnv, app: string, phase: string, timeoutMs: number): Promise<AppStatusFile> {
  return waitFor(`${app} ${phase}`, async () => {
    const s = await appStatus(env, app);
    return s?.status.phase === phase ? s : undefined;
  }, timeoutMs, 50);
}

/** The app's container states, from Docker (by the instance and app labels). */
export async function containerStates(env: ExampleEnv, app: string): Promise<string[]> {
  const out = await docker('ps', '-a', '--filter', `label=dev.berth.instance=${env.instance}`, '--filter', `label=dev.berth.app=${app}`, '--format', '{{.State}}');
  return out.split('\n').filter(Boolean);
}

// ---- HTTP -----------------------------------------------------------------------------------

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function collect(res: http.IncomingMessage, resolve: (r: Reply) => void, reject: (e: Error) => void): void {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (d: string) => (body += d));
  res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
  res.on('error', reject);
}

/** One request to berth's public HTTP listener with `Host: host`. */
export function httpRequest(env: ExampleEnv, host: string, opts: { path?: string; method?: string; headers?: Record<string, string>; body?: Buffer; timeoutMs?: number } = {}): Promise<Reply> {
  const url = new URL(env.berth?.httpUrl ?? 'http://127.0.0.1:0');
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: opts.path ?? '/', method: opts.method ?? 'GET', agent: false, headers: { host, ...opts.headers } },
      (res) => collect(res, resolve, reject),
    );
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error(`no answer from ${host} in time`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** One HTTPS request to 127.0.0.1:port with SNI and Host `host`, trusting only `ca` (what `curl --cacert ca --resolve` does). */
export function httpsRequest(port: number, host: string, ca: string, path = '/'): Promise<Reply & { verified: boolean }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, servername: host, path, headers: { host }, ca, agent: false, timeout: 10_000 }, (res) => {
      const verified = (res.socket as TLSSocket).authorized;
      collect(res, (r) => resolve({ ...r, verified }), reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${host} in time`)));
    req.on('error', reject);
  });
}

/** What `host` serves at / now, or '' when it does not answer 200. */
export async function served(env: ExampleEnv, host: string): Promise<string> {
  try {
    const r = await httpRequest(env, host, { timeoutMs: 3000 });
    return r.status === 200 ? r.body : '';
  } catch {
    return '';
  }
}

/** A GitHub push event for `cloneUrl`'s `branch`, signed with `secret` (X-Hub-Signature-256), as GitHub sends it. */
export function githubPush(secret: string, cloneUrl: string, branch: string, after: string): { headers: Record<string, string>; body: Buffer } {
  const body = pushBody('github', { url: cloneUrl }, branch, after);
  return { body, headers: { ...signedHeaders('github', body, secret), 'content-length': String(body.length) } };
}

/** The env of a berth that started (beforeAll): a test after a failed start fails with this. */
export function started(env: ExampleEnv | undefined): ExampleEnv {
  if (!env?.berth) throw new Error('berth did not start');
  return env;
}
