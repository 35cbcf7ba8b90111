// Docker for tests: fail loudly when the engine is missing, build tiny FROM-scratch busybox
// images offline, and clean up only objects carrying a test's own labels.
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile, copyFile, rm, mkdir, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

const run = promisify(execFile);

/** Every image a test builds carries this label (remove with `npm run test:clean`). */
export const TEST_LABEL = 'dev.berth.test';

export async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', args, { maxBuffer: 64 << 20 });
  return stdout.trim();
}

/** Throws (never skips) when no Docker engine answers: tests that need Docker must fail without it. */
export async function requireDocker(): Promise<void> {
  try {
    await run('docker', ['info', '--format', '{{.ServerVersion}}'], { timeout: 15_000 });
  } catch (e) {
    throw new Error(`a Docker engine is required for this test and none answers (start dockerd; see .ci/run): ${String(e)}`, { cause: e });
  }
}

/** A fresh instance name for one test's berth: containers, network and volumes are prefixed and labelled with it. */
export function testInstance(prefix = 't'): string {
  return `${prefix}${randomBytes(4).toString('hex')}`;
}

/**
 * Builds `tag` FROM scratch with /bin/busybox (Debian busybox-static) installed as /bin/*,
 * plus `files` (path -> content) and extra Dockerfile lines. Cached by Docker after the first build.
 */
export async function buildBusyboxImage(tag: string, files: Record<string, string>, extraLines: string[]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-img-'));
  try {
    await copyFile('/bin/busybox', join(dir, 'busybox'));
    await chmod(join(dir, 'busybox'), 0o755);
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(dir, 'root', path)), { recursive: true });
      await writeFile(join(dir, 'root', path), content);
    }
    if (Object.keys(files).length === 0) await mkdir(join(dir, 'root'));
    const dockerfile = [
      'FROM scratch',
      'COPY busybox /bin/busybox',
      'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
      'COPY root/ /',
      ...extraLines,
    ].join('\n');
    await writeFile(join(dir, 'Dockerfile'), dockerfile);
    await docker('build', '-q', '--label', `${TEST_LABEL}=1`, '-t', tag, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** An httpd serving `body` at / (and /healthz) on port 80. */
export function httpdImage(tag: string, body: string): Promise<void> {
  return buildBusyboxImage(tag, { 'www/index.html': body, 'www/healthz': 'ok\n' }, ['CMD ["httpd", "-f", "-p", "80", "-h", "/www"]']);
}

/** Standard images shared by tests (built once by the global setup). */
export const IMAGES = {
  httpdV1: 'berth-test/httpd:v1',
  httpdV2: 'berth-test/httpd:v2',
  /** Exits with status 1 at once. */
  crash: 'berth-test/crash:1',
  /** Runs but never listens on any port. */
  nolisten: 'berth-test/nolisten:1',
} as const;

export async function buildStandardImages(): Promise<void> {
  await httpdImage(IMAGES.httpdV1, 'hello v1\n');
  await httpdImage(IMAGES.httpdV2, 'hello v2\n');
  await buildBusyboxImage(IMAGES.crash, {}, ['CMD ["sh", "-c", "echo crashing >&2; exit 1"]']);
  await buildBusyboxImage(IMAGES.nolisten, {}, ['CMD ["sleep", "100000"]']);
}

/** Removes containers, networks and volumes of one berth instance (by its label only). */
/**
 * Instances a test run left behind when it was killed before its afterAll (an interrupted
 * vitest): berth's containers built from test images (labelled dev.berth.test) created more
 * than `maxAgeMs` ago — no test lasts that long — are removed with everything of their instance.
 */
export async function removeStaleTestInstances(maxAgeMs = 60 * 60 * 1000): Promise<string[]> {
  const lines = (await docker('ps', '-a', '--filter', 'label=dev.berth.test=1', '--filter', 'label=dev.berth.managed-by=berth',
    '--format', '{{.Label "dev.berth.instance"}} {{.CreatedAt}}')).split('\n').filter(Boolean);
  const stale = new Set<string>();
  for (const line of lines) {
    const [instance, day, time, zone] = line.split(' ');
    // CreatedAt reads "2026-11-22 07:49:22 +0000 UTC".
    if (instance && Date.now() - Date.parse(`${day}T${time}${zone?.replace(/(\d\d)(\d\d)$/, '$1:$2')}`) > maxAgeMs) stale.add(instance);
  }
  for (const instance of stale) await cleanupInstance(instance);
  return [...stale];
}

export async function cleanupInstance(instance: string): Promise<void> {
  const filter = `label=dev.berth.instance=${instance}`;
  const containers = (await docker('ps', '-aq', '--filter', filter)).split('\n').filter(Boolean);
  if (containers.length) await docker('rm', '-f', ...containers).catch(() => undefined);
  const volumes = (await docker('volume', 'ls', '-q', '--filter', filter)).split('\n').filter(Boolean);
  if (volumes.length) await docker('volume', 'rm', '-f', ...volumes).catch(() => undefined);
  const networks = (await docker('network', 'ls', '-q', '--filter', filter)).split('\n').filter(Boolean);
  for (const n of networks) await docker('network', 'rm', n).catch(() => undefined);
  const images = (await docker('images', '-q', '--filter', filter)).split('\n').filter(Boolean);
  if (images.length) await docker('rmi', '-f', ...new Set(images)).catch(() => undefined);
}

export const nowSeconds = () => Date.now() / 1000;

/**
 * Container events of a test instance between two times (Unix seconds), e.g. "create web-…",
 * waiting first until `until` has passed so none is missed.
 */
export async function containerEvents(env: { instance: string }, since: number, until: number, app?: string): Promise<{ action: string; name: string; time: number }[]> {
  const wait = until - nowSeconds();
  if (wait > 0) await sleep(wait * 1000 + 50);
  const out = await docker(
    'events', '--since', since.toFixed(3), '--until', until.toFixed(3),
    '--filter', `label=dev.berth.instance=${env.instance}`, '--filter', 'type=container',
    ...(app ? ['--filter', `label=dev.berth.app=${app}`] : []),
    '--format', '{{.Action}} {{.TimeNano}} {{index .Actor.Attributes "name"}}',
  );
  return out.split('\n').filter(Boolean).map((l) => {
    const [action = '', nano = '0', name = ''] = l.split(' ');
    // exec actions read "exec_start: sh -c …".
    return { action: action.replace(/:$/, ''), name, time: Number(BigInt(nano) / 1_000_000n) };
  });
}
