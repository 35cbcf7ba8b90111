// Proxy throughput and latency with wrk, all against ONE real container backend on the Docker
// bridge (berth-test/node-app: Node, keep-alive, ~11-byte body, cpus: 2): direct to the
// container's IP, berth as run by `berth run` (its own proxy listener, backends from its
// controller), berth's proxy library in a bare process (to show what the operator around it
// costs), http-proxy-3 on its own (the reference for berth's choice of node:http for plain
// HTTP), nginx (1 worker, keepalive upstream) and Caddy; at c=1 and c=50, rounds interleaved so
// background load hits every target alike. Plus the bare library's own wake overhead (a hold
// and release around a waker that only opens a listener; the Docker wake is bench/wake.mjs).
// Every process runs from temp files on ephemeral loopback ports; the system nginx is untouched.
// Docker objects carry dev.berth.test=1 and berth's instance label, and are removed by it.
//
//   npm run build && node bench/proxy.mjs        (BENCH_SECONDS=3 BENCH_ROUNDS=2 by default)
//
// Prints a table (median over rounds) and writes bench/results/proxy.json.
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { nodeAppImage, NODE_APP_PORT } from '../test/helpers/node-image.mjs';
import { cleanup, readYaml, sleep, startBerth } from './lib.mjs';

const self = fileURLToPath(import.meta.url);
const root = dirname(dirname(self));
const HOST = 'bench.test';

async function runBerth(port, upstreamHost, upstream) {
  const { createProxy } = await import(join(root, 'dist/src/proxy/proxy-server.js'));
  const { buildRouteTable } = await import(join(root, 'dist/src/proxy/route-table.js'));
  const { BackendRegistry } = await import(join(root, 'dist/src/proxy/backend-registry.js'));
  const { silentLogger } = await import(join(root, 'dist/src/util/logger.js'));
  const backends = new BackendRegistry();
  backends.set('warm', { state: 'serving', endpoints: [{ host: upstreamHost, port: upstream }], wakeTimeoutMs: 5000 });
  backends.set('cold', { state: 'sleeping', endpoints: [], wakeTimeoutMs: 5000 });
  // The cold app's "container" is a listener in this process: the wake costs one listen(), so
  // what the runner measures beyond it is berth's own hold/release overhead.
  let coldServer;
  let lastWakeMs = 0;
  const waker = {
    wake: async () => {
      const t0 = performance.now();
      coldServer = http.createServer((_req, res) => res.end('cold\n'));
      await new Promise((r) => coldServer.listen(0, '127.0.0.1', r));
      backends.set('cold', { state: 'serving', endpoints: [{ host: '127.0.0.1', port: coldServer.address().port }], wakeTimeoutMs: 5000 });
      lastWakeMs = performance.now() - t0;
    },
  };
  const clock = { monotonic: () => performance.now(), now: () => new Date() };
  const proxy = createProxy({ backends, waker, secrets: { get: () => undefined }, clock, logger: silentLogger });
  proxy.setRoutes(buildRouteTable([
    { app: 'warm', createdAt: '2026-01-01T00:00:00Z', routes: [{ host: HOST, path: '/', stripPrefix: false, tls: false }] },
    { app: 'cold', createdAt: '2026-01-01T00:00:00Z', routes: [{ host: 'cold.test', path: '/', stripPrefix: false, tls: false }] },
  ]).table);
  await proxy.listenHttp({ host: '127.0.0.1', port });
  process.on('message', (msg) => {
    if (msg !== 'sleep') return;
    coldServer.closeAllConnections();
    coldServer.close(() => {
      backends.set('cold', { state: 'sleeping', endpoints: [], wakeTimeoutMs: 5000 });
      process.send({ slept: true, lastWakeMs });
    });
  });
  process.send('ready');
}

// ---- runner ------------------------------------------------------------------------------------

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function spawnRole(args) {
  const child = spawn(process.execPath, [self, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}`)));
  });
}

async function waitForPort(port, host = HOST, address = '127.0.0.1') {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise((resolve) => {
      const req = http.get({ host: address, port, headers: { host }, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing answers on ${port}`);
}

async function startNginx(dir, port, upstreamHost, upstream) {
  const conf = join(dir, 'nginx.conf');
  await writeFile(conf, `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream backend { server ${upstreamHost}:${upstream}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host; }
  }
}
`);
  const child = spawn('nginx', ['-p', dir, '-c', conf], { stdio: 'ignore' });
  await waitForPort(port);
  return child;
}

async function startCaddy(dir, port, upstreamHost, upstream) {
  const file = join(dir, 'Caddyfile');
  await writeFile(file, `{\n\tadmin off\n\tauto_https off\n}\nhttp://:${port} {\n\treverse_proxy ${upstreamHost}:${upstream}\n}\n`);
  const env = { ...process.env, HOME: dir, XDG_CONFIG_HOME: dir, XDG_DATA_HOME: dir };
  const child = spawn('caddy', ['run', '--config', file, '--adapter', 'caddyfile'], { stdio: 'ignore', env });
  await waitForPort(port);
  return child;
}

/** utime+stime in ms of a process and its children (nginx's worker), from /proc. */
async function cpuMs(pid) {
  const tick = 1000 / Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
  let total = 0;
  const pids = [pid];
  try {
    const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8');
    pids.push(...children.trim().split(/\s+/).filter(Boolean).map(Number));
  } catch {
    // no children file: count the process alone
  }
  for (const p of pids) {
    try {
      const fields = (await readFile(`/proc/${p}/stat`, 'utf8')).split(') ')[1].split(' ');
      total += (Number(fields[11]) + Number(fields[12])) * tick;
    } catch {
      // process gone
    }
  }
  return total;
}

function toMs(s) {
  const m = /^([\d.]+)(us|ms|s)$/.exec(s);
  if (!m) return NaN;
  return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
}

function wrk(target, conc, seconds) {
  const threads = conc === 1 ? 1 : 2;
  const out = execFileSync('wrk', [`-t${threads}`, `-c${conc}`, `-d${seconds}s`, '--latency', '-H', `Host: ${HOST}`, `http://${target.host}:${target.port}/`]).toString();
  const num = (re) => Number(re.exec(out)?.[1]);
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out) || /Socket errors: (.*)/.exec(out);
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    requests: num(/(\d+) requests in/),
    p50: toMs(/\n\s+50%\s+(\S+)/.exec(out)?.[1] ?? ''),
    p99: toMs(/\n\s+99%\s+(\S+)/.exec(out)?.[1] ?? ''),
    errors: errors ? errors[0] : undefined,
  };
}

const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)];
};

async function wakeOverhead(berth, port, n) {
  const ttfb = () => new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.get({ host: '127.0.0.1', port, headers: { host: 'cold.test' }, agent: false }, (res) => {
      res.once('data', () => resolve({ ms: performance.now() - t0, cold: res.headers['x-berth-cold-start'] === 'true' }));
      res.resume();
    });
    req.on('error', reject);
  });
  const sleepApp = () => new Promise((resolve) => {
    berth.once('message', resolve);
    berth.send('sleep');
  });
  const cold = [];
  const warm = [];
  const wakes = [];
  for (let i = 0; i < n; i++) {
    const c = await ttfb();
    if (!c.cold) throw new Error('expected a cold start');
    cold.push(c.ms);
    warm.push((await ttfb()).ms);
    wakes.push((await sleepApp()).lastWakeMs);
  }
  const overhead = cold.map((c, i) => c - wakes[i] - warm[i]);
  return { n, coldTtfbMs: median(cold), warmTtfbMs: median(warm), wakerMs: median(wakes), overheadMs: median(overhead) };
}

/** `berth run` with one app (the node app, cpus: 2) routed at HOST; resolves with berth, its listener and the container's IP. */
async function startBerthRun(instance) {
  const image = await nodeAppImage('v1');
  const berth = await startBerth({ instance });
  await writeFile(join(berth.dirs.manifests, 'bench.yaml'), `apiVersion: berth.dev/v1alpha1
kind: App
metadata: {name: bench}
spec:
  image: ${image}
  port: ${NODE_APP_PORT}
  env: {APP_NAME: bench}
  resources: {cpus: 2, memory: 512m}
  routes: [{host: ${HOST}}]
`);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (Date.now() > deadline) throw new Error('berth run: the app did not become Ready in 60 s');
    const ip = (await readYaml(join(berth.dirs.status, 'apps', 'bench.yaml')))?.status;
    if (ip?.phase === 'Ready' && ip.containers?.[0]?.ip) {
      const [host, port] = berth.http.split(':');
      return { berth, host, port: Number(port), ip: ip.containers[0].ip, image };
    }
    await sleep(100);
  }
}

async function main() {
  const seconds = Number(process.env.BENCH_SECONDS ?? 3);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-proxy-'));
  const instance = `bp${randomBytes(4).toString('hex')}`;
  const children = [];
  let run;
  const stop = () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  };
  process.on('exit', stop);
  try {
    run = await startBerthRun(instance);
    const up = { host: run.ip, port: NODE_APP_PORT };
    const [libPort, hp3Port, nginxPort, caddyPort] = await Promise.all([1, 2, 3, 4].map(() => freePort()));
    const lib = await spawnRole(['berth', String(libPort), up.host, String(up.port)]);
    children.push(lib);
    const hp3 = await spawnRole(['hp3', String(hp3Port), up.host, String(up.port)]);
    children.push(hp3);
    const local = (port) => ({ host: '127.0.0.1', port });
    const targets = [
      { name: 'direct', ...up, pid: undefined },
      { name: 'berth run', ...local(run.port), pid: run.berth.pid },
      { name: 'berth (lib)', ...local(libPort), pid: lib.pid },
      { name: 'http-proxy-3', ...local(hp3Port), pid: hp3.pid },
    ];
    for (const [name, port, start] of [['nginx', nginxPort, startNginx], ['caddy', caddyPort, startCaddy]]) {
      try {
        const child = await start(dir, port, up.host, up.port);
        children.push(child);
        targets.push({ name, ...local(port), pid: child.pid });
      } catch (e) {
        console.error(`skipping ${name}: ${e.message}`);
      }
    }
    for (const t of targets) await waitForPort(t.port, HOST, t.host);

    const samples = {};
    for (let round = 0; round < rounds; round++) {
      for (const conc of [1, 50]) {
        for (const t of targets) {
          // A short warm-up fills keep-alive pools and JITs the hot path.
          wrk(t, conc, 1);
          const c0 = t.pid ? await cpuMs(t.pid) : undefined;
          const r = wrk(t, conc, seconds);
          const c1 = t.pid ? await cpuMs(t.pid) : undefined;
          const cpuPer1k = c0 === undefined ? undefined : ((c1 - c0) / r.requests) * 1000;
          (samples[`${t.name}@${conc}`] ??= []).push({ ...r, cpuPer1k });
          if (r.errors) console.error(`${t.name} c=${conc}: ${r.errors}`);
        }
      }
    }

    const results = [];
    for (const conc of [1, 50]) {
      for (const t of targets) {
        const s = samples[`${t.name}@${conc}`];
        results.push({
          target: t.name,
          concurrency: conc,
          rps: Math.round(median(s.map((x) => x.rps))),
          p50Ms: median(s.map((x) => x.p50)),
          p99Ms: median(s.map((x) => x.p99)),
          cpuMsPer1kReq: t.pid ? Number(median(s.map((x) => x.cpuPer1k)).toFixed(1)) : null,
          runs: s.map((x) => Math.round(x.rps)),
        });
      }
    }
    const find = (name, conc) => results.find((r) => r.target === name && r.concurrency === conc);
    for (const r of results) {
      r.vsDirect = Number((r.rps / find('direct', r.concurrency).rps).toFixed(3));
      const caddy = find('caddy', r.concurrency);
      r.vsCaddy = caddy ? Number((r.rps / caddy.rps).toFixed(3)) : null;
    }
    const wake = await wakeOverhead(lib, libPort, 20);

    const pad = (s, n) => String(s).padStart(n);
    console.log(`\nwrk ${seconds}s x ${rounds} rounds (median), backend ${run.image} at ${up.host}:${up.port} (Docker bridge), ${cpus().length} CPUs shared by wrk, proxy and backend`);
    console.log(`${'target'.padEnd(14)}${pad('c', 4)}${pad('req/s', 9)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}${pad('cpu/1k', 9)}${pad('vs direct', 11)}${pad('vs caddy', 10)}`);
    for (const r of results) {
      console.log(`${r.target.padEnd(14)}${pad(r.concurrency, 4)}${pad(r.rps, 9)}${pad(r.p50Ms.toFixed(2), 9)}${pad(r.p99Ms.toFixed(2), 9)}${pad(r.cpuMsPer1kReq ?? '-', 9)}${pad(r.vsDirect.toFixed(2), 11)}${pad(r.vsCaddy?.toFixed(2) ?? '-', 10)}`);
    }
    console.log(`\nlibrary wake (n=${wake.n}, medians): cold TTFB ${wake.coldTtfbMs.toFixed(2)} ms = waker ${wake.wakerMs.toFixed(2)} ms + warm TTFB ${wake.warmTtfbMs.toFixed(2)} ms + berth overhead ${wake.overheadMs.toFixed(2)} ms`);

    await mkdir(join(root, 'bench/results'), { recursive: true });
    // The figures bench/run.mjs summarises: berth as `berth run` runs it, against Caddy.
    const pick = (name) => Object.fromEntries([1, 50].map((c) => [`c${c}`, find(name, c) && { rps: find(name, c).rps, p50Ms: find(name, c).p50Ms, p99Ms: find(name, c).p99Ms, cpuMsPer1kReq: find(name, c).cpuMsPer1kReq }]));
    const summary = {
      berth: pick('berth run'), caddy: pick('caddy'), nginx: pick('nginx'), direct: pick('direct'),
      ratios: { berthVsCaddyC1: find('berth run', 1)?.vsCaddy ?? null, berthVsCaddyC50: find('berth run', 50)?.vsCaddy ?? null },
    };
    await writeFile(join(root, 'bench/results/proxy.json'), `${JSON.stringify({
      at: new Date().toISOString(), node: process.version, cpus: cpus().length, seconds, rounds,
      backend: { image: run.image, address: `${up.host}:${up.port}`, network: 'Docker bridge (berth instance network)' }, summary, results, wake,
    }, null, 2)}\n`);
  } finally {
    stop();
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
    await run?.berth.stop();
    await cleanup(instance);
    await rm(dir, { recursive: true, force: true });
  }
}

// ---- entry: the runner, or a child role (`node bench/proxy.mjs <role> ...`) -----------------------

const role = process.argv[2];
if (role === 'berth') {
  await runBerth(Number(process.argv[3]), process.argv[4], Number(process.argv[5]));
} else if (role === 'hp3') {
  const { createProxyServer } = await import('http-proxy-3');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64 });
  const proxy = createProxyServer({ xfwd: true, agent, target: { host: process.argv[4], port: Number(process.argv[5]) } });
  proxy.on('error', (_e, _req, res) => res.destroy?.());
  http.createServer((req, res) => proxy.web(req, res)).listen(Number(process.argv[3]), '127.0.0.1', () => process.send?.('ready'));
} else {
  await main();
}
