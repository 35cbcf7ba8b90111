// Wake latency: berth's scale-to-zero wake against a bare `docker start` of the same image, in
// one run, rounds interleaved so background load on the (shared) engine hits both alike.
//
//   (a) berth: the app is asleep (container stopped by berth after idle.after) → one GET through
//       `berth run`'s proxy → first body byte;
//   (b) bare:  a stopped container cloned from berth's (same image, command, env, limits, init,
//       network; only labels and name differ) → `start` via the Docker API (dockerode) → inspect
//       for its IP → GET polled every 5 ms on connection refused → first body byte.
//
//   npm run build && node bench/wake.mjs          (WAKE_ROUNDS=20; BENCH_TRACE=0 disables the trace)
//
// The berth side is traced (bench/wake-trace.mjs, preloaded) to show where its time goes. Prints a
// table and writes bench/results/wake.json. Everything created carries dev.berth.test=1 plus
// berth's instance label or this run's dev.berth.bench label, and is removed by those labels.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { parse } from 'yaml';
import { nodeAppImage, NODE_APP_PORT } from '../test/helpers/node-image.mjs';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const ROUNDS = Number(process.env.WAKE_ROUNDS ?? 20);
const TRACE = process.env.BENCH_TRACE !== '0';
const APP = 'wake';
const HOST = 'wake.bench';
const run = randomBytes(4).toString('hex');
const instance = `bw${run}`;
const docker = new Docker();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const epoch = () => performance.timeOrigin + performance.now();

async function waitFor(what, fn, timeoutMs = 30_000, everyMs = 25) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** GET → ms (epoch) of the first body byte; connection refused → undefined (when `refusedOk`). */
function firstByte(opts, refusedOk = false) {
  return new Promise((resolve, reject) => {
    const req = http.get({ ...opts, agent: false }, (res) => {
      res.once('data', () => {
        resolve({ at: epoch(), status: res.statusCode, cold: res.headers['x-berth-cold-start'] === 'true' });
        res.resume();
      });
    });
    req.setTimeout(30_000, () => req.destroy(new Error('no answer in 30 s')));
    req.on('error', (e) => (refusedOk && (e.code === 'ECONNREFUSED' || e.code === 'EHOSTUNREACH') ? resolve(undefined) : reject(e)));
  });
}

async function startBerth(dirs) {
  const args = [
    ...(TRACE ? ['--import', join(root, 'bench/wake-trace.mjs')] : []),
    join(root, 'bin/berth.js'), 'run', '--manifests', dirs.manifests, '--status', dirs.status, '--state', dirs.state,
    '--admin', '127.0.0.1:0', '--http', '127.0.0.1:0', '--https', '127.0.0.1:0', '--instance', instance, '--resync', '5m',
  ];
  const log = join(dirs.root, 'berth.log');
  const out = openSync(log, 'a');
  const child = spawn(process.execPath, args, { stdio: ['ignore', out, out], env: { ...process.env, BERTH_TRACE_FILE: join(dirs.root, 'trace.jsonl') } });
  const listeners = await waitFor('berth listening', async () => {
    if (child.exitCode !== null) throw new Error(`berth exited: ${await readFile(log, 'utf8')}`);
    try {
      const op = parse(await readFile(join(dirs.status, 'operator.yaml'), 'utf8'));
      return op?.status?.pid === child.pid && op.status.listeners?.http ? op.status.listeners : undefined;
    } catch {
      return undefined;
    }
  });
  return { child, http: listeners.http, admin: listeners.admin, log };
}

function phase(admin) {
  return new Promise((resolve, reject) => {
    http.get(`http://${admin}/api/v1/apps/${APP}`, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(res.statusCode === 200 ? JSON.parse(body).status.phase : undefined));
    }).on('error', reject);
  });
}

const byLabel = (label) => docker.listContainers({ all: true, filters: { label: [label] } });

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
  return { n: s.length, p50: q(0.5), p95: q(0.95), min: s[0], max: s[s.length - 1] };
}

/** Per berth wake, from the trace: how long each step took (ms). */
function breakdown(trace, t0, t1) {
  const ev = trace.filter((e) => e.t >= t0 && e.t <= t1 + 1);
  const first = (op, pred = () => true) => ev.find((e) => e.op === op && pred(e));
  const last = (op, pred = () => true) => ev.filter((e) => e.op === op && pred(e)).at(-1);
  const wake = first('wake.start');
  const start = first('startContainer');
  const settled = first('wake.settled');
  const probes = ev.filter((e) => e.op === 'probe' && start && e.t > start.t);
  const okProbe = probes.find((p) => p.ok);
  const serving = first('app.changed', (e) => e.app === APP && e.state === 'serving');
  const observeBefore = last('listContainers', (e) => start && e.t < start.t);
  const observeAfter = first('listContainers', (e) => okProbe && e.t > okProbe.t);
  if (!wake || !start || !okProbe || !serving || !settled) return undefined;
  return {
    requestToWake: wake.t - t0,
    observe1: observeBefore ? observeBefore.t - wake.t : NaN,
    toStartCall: start.t - start.ms - wake.t,
    dockerStart: start.ms,
    startToHealthy: okProbe.t - start.t,
    probes: probes.length,
    inspects: ev.filter((e) => e.op === 'inspectContainer' && e.t > start.t && e.t <= okProbe.t).length,
    healthyToServing: serving.t - okProbe.t,
    observe2: observeAfter ? observeAfter.ms : NaN,
    servingToFirstByte: t1 - serving.t,
    total: t1 - t0,
  };
}

async function main() {
  const image = await nodeAppImage('v1');
  const base = await mkdtemp(join(tmpdir(), 'berth-bench-wake-'));
  const dirs = { root: base, manifests: join(base, 'manifests'), status: join(base, 'status'), state: join(base, 'state') };
  await mkdir(dirs.manifests, { recursive: true });
  await writeFile(join(dirs.manifests, `${APP}.yaml`), `apiVersion: berth.dev/v1alpha1
kind: App
metadata: {name: ${APP}}
spec:
  image: ${image}
  port: ${NODE_APP_PORT}
  env: {APP_NAME: ${APP}}
  routes: [{host: ${HOST}}]
  idle: {after: 1s}
`);
  let berth;
  let bare;
  try {
    berth = await startBerth(dirs);
    const [bh, bp] = berth.http.split(':');
    const viaBerth = { host: bh, port: Number(bp), path: '/', headers: { host: HOST } };
    await waitFor('the app Ready', async () => (await phase(berth.admin)) === 'Ready');
    const [mine] = await byLabel(`dev.berth.instance=${instance}`);
    const info = await docker.getContainer(mine.Id).inspect();
    // The bare twin: berth's container config with our own labels (so berth never sees it as its own).
    bare = await docker.createContainer({
      name: `${instance}-bare`,
      Image: info.Config.Image,
      Cmd: info.Config.Cmd,
      Entrypoint: info.Config.Entrypoint,
      Env: info.Config.Env,
      WorkingDir: info.Config.WorkingDir,
      Labels: { 'dev.berth.test': '1', 'dev.berth.bench': run },
      HostConfig: { ...info.HostConfig, RestartPolicy: { Name: 'no' } },
      NetworkingConfig: { EndpointsConfig: { [instance]: {} } },
    });
    const asleep = async () => (await phase(berth.admin)) === 'Sleeping' && !(await docker.getContainer(mine.Id).inspect()).State.Running;

    const samples = { berth: [], bare: [], steps: [], bareStart: [] };
    const windows = [];
    for (let i = -1; i < ROUNDS; i++) {
      // (a) berth
      await waitFor('the app asleep', asleep, 30_000, 50);
      const t0 = epoch();
      const r = await firstByte(viaBerth);
      if (r.status !== 200 || !r.cold) throw new Error(`berth round ${i}: status ${r.status}, cold ${r.cold}`);
      if (i >= 0) {
        samples.berth.push(r.at - t0);
        windows.push([t0, r.at]);
      }
      // (b) bare, once berth has put the app back to sleep (never two starts or stops at once)
      await waitFor('the app asleep again', asleep, 30_000, 50);
      await sleep(300);
      const b0 = epoch();
      await bare.start();
      const started = epoch();
      const ip = (await bare.inspect()).NetworkSettings.Networks[instance].IPAddress;
      let got;
      while (!(got = await firstByte({ host: ip, port: NODE_APP_PORT, path: '/' }, true))) await sleep(5);
      if (i >= 0) {
        samples.bare.push(got.at - b0);
        samples.bareStart.push(started - b0);
      }
      await bare.stop({ t: 10 });
      await sleep(300);
    }

    let trace = [];
    if (TRACE) {
      trace = (await readFile(join(dirs.root, 'trace.jsonl'), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l));
      for (const [t0, t1] of windows) {
        const b = breakdown(trace, t0, t1);
        if (b) samples.steps.push(b);
      }
    }
    const a = stats(samples.berth);
    const b = stats(samples.bare);
    const ratio = { p50: a.p50 / b.p50, p95: a.p95 / b.p95 };
    const f = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');
    console.log(`\nwake vs bare docker start (${image}, n=${ROUNDS} each, interleaved; ${cpus().length} CPUs, shared engine)`);
    console.log(`${''.padEnd(34)}${'p50 ms'.padStart(9)}${'p95 ms'.padStart(9)}${'min'.padStart(8)}${'max'.padStart(8)}`);
    console.log(`${'(a) berth wake -> first byte'.padEnd(34)}${f(a.p50).padStart(9)}${f(a.p95).padStart(9)}${f(a.min).padStart(8)}${f(a.max).padStart(8)}`);
    console.log(`${'(b) API start -> first byte'.padEnd(34)}${f(b.p50).padStart(9)}${f(b.p95).padStart(9)}${f(b.min).padStart(8)}${f(b.max).padStart(8)}`);
    const bs = stats(samples.bareStart);
    console.log(`${'    of which the start call'.padEnd(34)}${f(bs.p50).padStart(9)}${f(bs.p95).padStart(9)}${f(bs.min).padStart(8)}${f(bs.max).padStart(8)}`);
    // The engine's start call varies most under load (and alike for both); what berth adds is the rest.
    let outside;
    if (samples.steps.length > 0) {
      const aEx = stats(samples.steps.map((x) => x.total - x.dockerStart));
      const bEx = stats(samples.bare.map((x, i) => x - samples.bareStart[i]));
      outside = { berthMs: aEx, bareMs: bEx, addedP50Ms: aEx.p50 - bEx.p50 };
      console.log(`${'(a) without the start call'.padEnd(34)}${f(aEx.p50).padStart(9)}${f(aEx.p95).padStart(9)}${f(aEx.min).padStart(8)}${f(aEx.max).padStart(8)}`);
      console.log(`${'(b) without the start call'.padEnd(34)}${f(bEx.p50).padStart(9)}${f(bEx.p95).padStart(9)}${f(bEx.min).padStart(8)}${f(bEx.max).padStart(8)}`);
    }
    if (samples.steps.length < samples.berth.length) console.log(`(trace matched ${samples.steps.length} of ${samples.berth.length} berth wakes)`);
    console.log(`ratio a/b: p50 ${ratio.p50.toFixed(2)}, p95 ${ratio.p95.toFixed(2)} (target <= 1.15)${outside ? `; berth adds ${f(outside.addedP50Ms)} ms (p50) outside the start call` : ''}`);
    let steps;
    if (samples.steps.length > 0) {
      steps = {};
      for (const k of Object.keys(samples.steps[0])) steps[k] = stats(samples.steps.map((s) => s[k]).filter(Number.isFinite)).p50;
      console.log(`\nberth wake, median per step (ms, n=${samples.steps.length}):`);
      for (const [k, v] of Object.entries(steps)) console.log(`  ${k.padEnd(20)}${f(v).padStart(8)}`);
    }
    await mkdir(join(root, 'bench/results'), { recursive: true });
    await writeFile(join(root, 'bench/results/wake.json'), `${JSON.stringify({
      at: new Date().toISOString(), node: process.version, cpus: cpus().length, image, rounds: ROUNDS,
      // ms: berth = (a) wake → first byte, bare = (b) API start → first byte (read by bench/run.mjs)
      berth: a, bare: b, bareStartCall: bs, ratio, ratioP50: Number(ratio.p50.toFixed(3)), ratioP95: Number(ratio.p95.toFixed(3)), outsideStartCall: outside, steps, samples: { berth: samples.berth, bare: samples.bare },
    }, null, 2)}\n`);
  } finally {
    if (berth && berth.child.exitCode === null) {
      berth.child.kill('SIGTERM');
      await new Promise((r) => berth.child.once('exit', r));
    }
    for (const label of [`dev.berth.bench=${run}`, `dev.berth.instance=${instance}`]) {
      for (const c of await byLabel(label)) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    }
    for (const n of await docker.listNetworks({ filters: { label: [`dev.berth.instance=${instance}`] } })) await docker.getNetwork(n.Id).remove().catch(() => undefined);
    if (process.env.BENCH_KEEP) console.log(`kept ${base}`);
    else await rm(base, { recursive: true, force: true });
  }
}

await main();
