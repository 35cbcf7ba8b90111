// What berth costs while nothing happens, and at scale: for 0, 50 and 200 apps, the time for
// all to become Ready (with peak RSS), then a quiet minute: CPU, RSS and bytes written to disk
// by berth. Then Docker API calls per resync of an unchanged world (with a short --resync).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { appManifest, cleanup, httpdImage, instanceName, metric, procStats, readYaml, round, sleep, startBerth, table, writeResult } from './lib.mjs';

const QUIET_MS = Number(process.env.BENCH_QUIET_MS ?? 60_000);
const COUNTS = (process.env.BENCH_APPS ?? '0,50,200').split(',').map(Number);

async function allReady(dirs, n) {
  const op = await readYaml(join(dirs.status, 'operator.yaml'));
  return (op?.status?.apps?.Ready ?? 0) >= n;
}

async function scenario(image, n) {
  const instance = instanceName('bcp');
  const berth = await startBerth({ instance });
  try {
    let peak = 0;
    const sampler = setInterval(() => void procStats(berth.pid).then((s) => (peak = Math.max(peak, s.rssMiB)), () => {}), 200);
    const t0 = performance.now();
    await Promise.all(Array.from({ length: n }, (_, i) => writeFile(join(berth.dirs.manifests, `a${i}.yaml`), appManifest(`a${i}`, image))));
    const deadline = Date.now() + 600_000;
    while (n > 0 && !(await allReady(berth.dirs, n))) {
      if (Date.now() > deadline) throw new Error(`${n} apps did not become Ready`);
      await sleep(100);
    }
    const readyMs = performance.now() - t0;
    clearInterval(sampler);
    // Settle (GC after start-up, the last status writes), then a quiet window.
    await sleep(10_000);
    const a = await procStats(berth.pid);
    const mutatingBefore = await mutatingCalls(berth.adminUrl);
    await sleep(QUIET_MS);
    const b = await procStats(berth.pid);
    const mutatingAfter = await mutatingCalls(berth.adminUrl);
    return {
      apps: n,
      readyMs: n > 0 ? Math.round(readyMs) : 0,
      peakRssMiB: round(Math.max(peak, b.rssMiB)),
      idleCpuPercent: round(((b.cpuMs - a.cpuMs) / QUIET_MS) * 100, 2),
      idleRssMiB: round(b.rssMiB),
      bytesWrittenPerMinute: Math.round(((b.writeBytes - a.writeBytes) * 60_000) / QUIET_MS),
      containerCallsInQuiet: mutatingAfter - mutatingBefore,
    };
  } finally {
    await berth.stop();
    await cleanup(instance);
  }
}

const MUTATING = ['createContainer', 'startContainer', 'stopContainer', 'removeContainer', 'connectNetwork', 'restoreRestartPolicy', 'ensureNetwork', 'ensureVolume', 'pullImage', 'buildImage', 'removeImage', 'removeVolume'];

/** berth_docker_calls_total by method. */
async function dockerCalls(adminUrl) {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const m = {};
  for (const line of text.split('\n')) {
    const x = /^berth_docker_calls_total\{method="(\w+)"\} (\d+)/.exec(line);
    if (x) m[x[1]] = Number(x[2]);
  }
  return m;
}

async function mutatingCalls(adminUrl) {
  const m = await dockerCalls(adminUrl);
  return MUTATING.reduce((s, k) => s + (m[k] ?? 0), 0);
}

/** A short --resync: Docker calls per app per resync, and the mutating ones among them (must be 0). */
async function resyncCost(image, n = 20) {
  const instance = instanceName('bcr');
  const berth = await startBerth({ instance, args: ['--resync', '5s'] });
  try {
    await Promise.all(Array.from({ length: n }, (_, i) => writeFile(join(berth.dirs.manifests, `r${i}.yaml`), appManifest(`r${i}`, image))));
    while (!(await allReady(berth.dirs, n))) await sleep(100);
    await sleep(8_000);
    const calls = () => dockerCalls(berth.adminUrl);
    const reconciles = () => metric(berth.adminUrl, 'berth_reconciles_total', 'converged');
    const [c0, r0] = [await calls(), await reconciles()];
    await sleep(30_000);
    const [c1, r1] = [await calls(), await reconciles()];
    const delta = Object.fromEntries(Object.keys(c1).map((k) => [k, (c1[k] ?? 0) - (c0[k] ?? 0)]).filter(([, v]) => v > 0));
    const passes = r1 - r0;
    const total = Object.values(delta).reduce((s, v) => s + v, 0);
    const mutating = MUTATING.reduce((s, k) => s + (delta[k] ?? 0), 0);
    return { apps: n, resyncPasses: passes, callsPerPass: round(total / Math.max(1, passes), 2), mutatingCalls: mutating, byMethod: delta };
  } finally {
    await berth.stop();
    await cleanup(instance);
  }
}

export async function benchControlPlane() {
  const image = await httpdImage('berth-bench/httpd:1', 'ready\n');
  const scenarios = [];
  for (const n of COUNTS) scenarios.push(await scenario(image, n));
  const resync = await resyncCost(image);
  console.log(table([
    ['apps', 'all Ready s', 'peak RSS MiB', 'idle CPU %', 'idle RSS MiB', 'bytes written/min', 'container calls while quiet'],
    ...scenarios.map((s) => [s.apps, round(s.readyMs / 1000), s.peakRssMiB, s.idleCpuPercent, s.idleRssMiB, s.bytesWrittenPerMinute, s.containerCallsInQuiet]),
  ]));
  console.log(`resync of an unchanged world (${resync.apps} apps, --resync 5s): ${resync.callsPerPass} Docker calls per app pass, ${resync.mutatingCalls} mutating`);
  const result = { quietMs: QUIET_MS, scenarios, resync };
  await writeResult('control-plane', result);
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) await benchControlPlane();
