// Manifest dropped → first byte through berth, against the raw operation on the same image:
// `docker run` (API create+start with the same Init, limits and user bridge network) + polling
// the container until its first byte. Rounds alternate so load drifts hit both alike.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { appManifest, cleanup, firstByte, httpdImage, instanceName, percentile, round, sleep, startBerth, table, until, writeResult } from './lib.mjs';

const require = createRequire(import.meta.url);
const Docker = require('dockerode');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);

export async function benchReady() {
  const image = await httpdImage('berth-bench/httpd:1', 'ready\n');
  const instance = instanceName('bready');
  const baseNet = `${instance}-raw`;
  const docker = new Docker();
  const berth = await startBerth({ instance });
  const net = await docker.createNetwork({ Name: baseNet, Labels: { 'dev.berth.instance': instance } });
  const berthMs = [];
  const rawMs = [];
  try {
    // Warm both paths once (image cache, network creation, first JIT).
    await oneBerth(berth, image, 'warm');
    await oneRaw(docker, baseNet, instance, image, 'warm');
    for (let i = 0; i < ROUNDS; i++) {
      berthMs.push(await oneBerth(berth, image, `r${i}`));
      rawMs.push(await oneRaw(docker, baseNet, instance, image, `r${i}`));
    }
  } finally {
    await berth.stop();
    await cleanup(instance);
    await net.remove().catch(() => {});
  }
  const result = {
    rounds: ROUNDS,
    berth: { p50: round(percentile(berthMs, 50)), p95: round(percentile(berthMs, 95)) },
    dockerRun: { p50: round(percentile(rawMs, 50)), p95: round(percentile(rawMs, 95)) },
  };
  result.ratioP50 = round(result.berth.p50 / result.dockerRun.p50, 2);
  console.log(table([
    ['manifest → Ready (first byte)', 'p50 ms', 'p95 ms'],
    ['berth (manifest dropped → 200 via proxy)', result.berth.p50, result.berth.p95],
    ['docker run + first byte (API)', result.dockerRun.p50, result.dockerRun.p95],
    ['ratio (target ≤ 1.25)', result.ratioP50, ''],
  ]));
  await writeResult('ready', result);
  return result;
}

async function oneBerth(berth, image, tag) {
  const name = `a${tag}`;
  const t0 = performance.now();
  await writeFile(join(berth.dirs.manifests, `${name}.yaml`), appManifest(name, image));
  await until(async () => (await firstByte(berth.http, `${name}.bench.lan`)).status === 200, 30_000, 2);
  const ms = performance.now() - t0;
  return ms;
}

async function oneRaw(docker, network, instance, image, tag) {
  const t0 = performance.now();
  const c = await docker.createContainer({
    Image: image, name: `${instance}-raw-${tag}`, Labels: { 'dev.berth.instance': instance },
    HostConfig: { Init: true, Memory: 16 << 20, NanoCpus: 5e8, NetworkMode: network, RestartPolicy: { Name: 'unless-stopped' } },
  });
  await c.start();
  const ip = (await c.inspect()).NetworkSettings.Networks[network].IPAddress;
  await until(async () => (await firstByte(`${ip}:80`)).status === 200, 30_000, 2);
  const ms = performance.now() - t0;
  await sleep(10);
  return ms;
}

if (import.meta.url === `file://${process.argv[1]}`) await benchReady();
