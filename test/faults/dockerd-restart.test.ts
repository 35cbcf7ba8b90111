// F4 and F5 of the fault catalogue on a private dockerd (never the shared engine): the daemon
// restarts under a running berth, and the daemon is down when berth starts. berth stays up,
// says Docker is unreachable (healthz, operator.yaml, each app's Ready condition), tears
// nothing down, and converges to exactly one container per app when the daemon is back.
// Each ends with the reliability suite's invariants (test/helpers/invariants.ts) on the private
// engine: files, containers, bystanders (restarted by the daemon itself, not by berth), the
// audit, fds/RSS and a quiet window.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readYaml, sleep, waitFor, type BerthDirs, type BerthProcess } from '../helpers/berth-process.js';
import { IMAGES } from '../helpers/docker.js';
import { FaultEnv } from '../helpers/fault-env.js';
import { checkInvariants } from '../helpers/invariants.js';
import { loadStandardImages, startPrivateDockerd, type PrivateDockerd } from '../helpers/private-dockerd.js';
import type { AppStatusFile, OperatorStatusFile } from '../../src/api/types.generated.js';

let pd: PrivateDockerd;
const envs: FaultEnv[] = [];

beforeAll(async () => {
  pd = await startPrivateDockerd();
  await loadStandardImages(pd.dockerHost, [IMAGES.httpdV1]);
});

afterAll(async () => {
  for (const env of envs) await env.destroy().catch(() => undefined);
  // The private engine goes whole: every container and network berth made in it too.
  await pd?.destroy();
});

const manifest = (name: string) => `apiVersion: berth.dev/v1alpha1
kind: App
metadata: {name: ${name}}
spec:
  image: ${IMAGES.httpdV1}
  resources: {memory: 32m}
`;

/** A fault env on the private engine (bystanders with a restart policy: the daemon's own restarts are not berth's doing). */
async function newEnv(prefix: string, apps: string[]): Promise<FaultEnv> {
  const env = await FaultEnv.create(prefix, { dockerHost: pd.dockerHost, bystanderRestart: true });
  envs.push(env);
  for (const a of apps) await writeFile(join(env.dirs.manifests, `${a}.yaml`), manifest(a));
  return env;
}

const containerIds = async (instance: string) => (await pd.docker('ps', '-aq', '--no-trunc', '--filter', `label=dev.berth.instance=${instance}`)).split('\n').filter(Boolean);

const appStatus = (dirs: BerthDirs, name: string) => readYaml<AppStatusFile>(join(dirs.status, 'apps', `${name}.yaml`));
const operatorStatus = (dirs: BerthDirs) => readYaml<OperatorStatusFile>(join(dirs.status, 'operator.yaml'));
const readyOf = (s: AppStatusFile | undefined) => s?.status.conditions.find((c) => c.type === 'Ready');

async function healthz(berth: BerthProcess): Promise<{ status?: string; docker?: { connected?: boolean } } | undefined> {
  try {
    return (await (await fetch(`${berth.adminUrl}/healthz`, { signal: AbortSignal.timeout(2000) })).json()) as { status?: string; docker?: { connected?: boolean } };
  } catch {
    return undefined;
  }
}

/** Names and states of the instance's containers in the private engine. */
async function containers(instance: string): Promise<string[]> {
  const out = await pd.docker('ps', '-a', '--filter', `label=dev.berth.instance=${instance}`, '--format', '{{.Names}} {{.State}}');
  return out.split('\n').filter(Boolean).sort();
}

/**
 * What berth says about Docker while it is down: healthz, operator.yaml and the app's Ready
 * condition, watched side by side (the daemon is down for a few seconds only); every miss is reported.
 */
async function expectReportsDockerDown(berth: BerthProcess, dirs: BerthDirs, app: string, timeoutMs: number): Promise<void> {
  const checks = await Promise.allSettled([
    waitFor('/healthz {status: degraded, docker.connected: false}', async () => {
      const h = await healthz(berth);
      return h?.status === 'degraded' && h.docker?.connected === false;
    }, timeoutMs, 100),
    waitFor('status/operator.yaml docker.connected: false', async () => (await operatorStatus(dirs))?.status.docker?.connected === false, timeoutMs, 100),
    waitFor(`${app}'s Ready condition Unknown/DockerUnavailable`, async () => {
      const r = readyOf(await appStatus(dirs, app));
      return r?.status === 'Unknown' && r.reason === 'DockerUnavailable' && /docker/i.test(r.message) ? r : undefined;
    }, timeoutMs, 100),
  ]);
  const seen = `${app} Ready: ${JSON.stringify(readyOf(await appStatus(dirs, app)))}; operator.yaml docker: ${JSON.stringify((await operatorStatus(dirs))?.status.docker)}; healthz: ${JSON.stringify(await healthz(berth))}`;
  // Soft: the test goes on to check convergence, and reports every miss at the end.
  for (const c of checks) expect.soft(c.status === 'rejected' ? `while Docker was down: ${String(c.reason)} (${seen})` : 'ok').toBe('ok');
}

async function expectConverged(berth: BerthProcess, dirs: BerthDirs, instance: string, app: string, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  await waitFor(`${app} Ready again with one running container`, async () => {
    const s = await appStatus(dirs, app);
    if (s?.status.phase !== 'Ready' || readyOf(s)?.status !== 'True') return false;
    const cs = await containers(instance).catch(() => []);
    return cs.length === 1 && cs[0]!.endsWith(' running');
  }, timeoutMs, 100);
  const took = Date.now() - t0;
  const opConnected = await waitFor('operator.yaml docker.connected true', async () => (await operatorStatus(dirs))?.status.docker?.connected === true, 10_000, 100).then(() => true, () => false);
  expect.soft(opConnected, 'status/operator.yaml says docker.connected: true again').toBe(true);
  expect((await healthz(berth))?.status).toBe('ok');
  // And it stays that way: no duplicate appears from a late create.
  await sleep(2000);
  expect(await containers(instance)).toHaveLength(1);
  expect(berth.alive).toBe(true);
  return took;
}

describe('dockerd restarts under a running berth', () => {
  it('stays up, reports Docker unreachable while it is down, and converges to one container when it is back', async () => {
    const env = await newEnv('fdr', ['web']);
    const { instance, dirs } = env;
    const berth = await env.start();
    await waitFor('web Ready', async () => (await appStatus(dirs, 'web'))?.status.phase === 'Ready', 15_000, 50);
    const before = await containerIds(instance);
    expect(before).toHaveLength(1);

    // Watched while the daemon is down (3 s, plus its own stop and start time).
    await Promise.all([expectReportsDockerDown(berth, dirs, 'web', 3000), pd.restart({ downMs: 3000 })]);
    expect(berth.alive).toBe(true);
    const took = await expectConverged(berth, dirs, instance, 'web', 30_000);
    console.log(`dockerd restart: web Ready again ${took} ms after the daemon answered`);
    // The daemon restarted the container (unless-stopped); berth had no reason to replace it.
    expect(await containerIds(instance)).toEqual(before);
    await checkInvariants(env, { apps: { web: 1 }, label: 'dockerd restarted' });
  });
});

describe('dockerd down when berth starts', () => {
  it('starts anyway, reports it, and converges when the daemon starts', async () => {
    const env = await newEnv('fdd', ['api']);
    const { instance, dirs } = env;
    await pd.stop();
    const berth = await env.start();
    await expectReportsDockerDown(berth, dirs, 'api', 8000);
    await pd.start();
    const took = await expectConverged(berth, dirs, instance, 'api', 30_000);
    console.log(`dockerd down at berth start: api Ready ${took} ms after the daemon answered`);
    await checkInvariants(env, { apps: { api: 1 }, label: 'dockerd down at start' });
  });
});

describe('dockerd down when berth restarts', () => {
  it('does not keep the old Ready status file while it cannot see Docker, and converges without replacing the container', async () => {
    const env = await newEnv('fdb', ['svc']);
    const { instance, dirs } = env;
    await env.start();
    await waitFor('svc Ready', async () => (await appStatus(dirs, 'svc'))?.status.phase === 'Ready', 15_000, 50);
    const before = await containerIds(instance);
    await env.stop();
    await pd.stop();
    const berth = await env.start();
    await expectReportsDockerDown(berth, dirs, 'svc', 8000);
    await pd.start();
    const took = await expectConverged(berth, dirs, instance, 'svc', 30_000);
    console.log(`dockerd down at berth restart: svc Ready ${took} ms after the daemon answered`);
    expect(await containerIds(instance)).toEqual(before);
    await checkInvariants(env, { apps: { svc: 1 }, label: 'dockerd down at restart' });
  });
});
