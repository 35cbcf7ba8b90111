// Issue 4 end to end: berth's proxy in `berth run`, in front of real containers on the shared
// Docker engine — routing, streaming, limits and auth through a Host header; scale to zero,
// wake on request (single flight, held bodies), a wake that never becomes ready, websockets
// that outlive other apps' deploys and wakes, and idle clocks that survive a restart of berth.
// The apps run berth-test/node-app (Node in a FROM-scratch image, see helpers/node-image.mjs).
// Every berth has its own instance (labels, network, folders, ports); only objects carrying
// those labels are removed.
import { describe, it, beforeAll, afterAll, expect } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import WebSocket from 'ws';
import { writeAppManifest, BerthProcess, berthCli, makeDirs, readYaml, removeDirs, sleep, waitFor, type BerthDirs } from '../helpers/berth-process.js';
import { IMAGES, buildBusyboxImage, cleanupInstance, docker, testInstance } from '../helpers/docker.js';
import { nodeAppImage } from '../helpers/node-image.mjs';
import { expectValidStatusFile } from '../helpers/status-schema.js';
import type { AppStatusFile } from '../../src/api/types.generated.js';

/** Listens on its first start only; every later start runs without listening (a wake that never gets ready). */
const ONCE_IMAGE = 'berth-test/listens-once:1';

interface Env {
  instance: string;
  dirs: BerthDirs;
  args: string[];
  berth: BerthProcess | undefined;
}

const envs: Env[] = [];
let nodeV1 = '';
let nodeV2 = '';

async function newEnv(prefix: string, args: string[] = ['--resync', '2s']): Promise<Env> {
  const env: Env = { instance: testInstance(prefix), dirs: await makeDirs(`berth-${prefix}-`), args, berth: undefined };
  envs.push(env);
  return env;
}

async function startBerth(env: Env): Promise<BerthProcess> {
  env.berth = await BerthProcess.start(env.dirs, { instance: env.instance, args: env.args });
  return env.berth;
}

afterAll(async () => {
  await Promise.all(envs.map(async (env) => {
    await env.berth?.stop();
    await cleanupInstance(env.instance);
    await removeDirs(env.dirs);
  }));
});

const writeApp = (env: Env, name: string, spec: string) => writeAppManifest(env.dirs.manifests, name, spec);

const statusOf = (env: Env, app: string) => readYaml<AppStatusFile>(join(env.dirs.status, 'apps', `${app}.yaml`));

async function waitPhase(env: Env, app: string, phase: string, timeoutMs: number): Promise<AppStatusFile> {
  return waitFor(`${app} ${phase}`, async () => {
    const s = await statusOf(env, app);
    return s?.status.phase === phase ? s : undefined;
  }, timeoutMs, 20);
}

/** Phase Sleeping is shown while the container stops: asleep means both. */
async function waitAsleep(env: Env, app: string, timeoutMs: number): Promise<AppStatusFile> {
  return waitFor(`${app} asleep`, async () => {
    const s = await statusOf(env, app);
    return s?.status.phase === 'Sleeping' && (await containerState(env, app)) === 'exited' ? s : undefined;
  }, timeoutMs, 50);
}

/** Docker's state of the app's only container ("running", "exited", …). */
async function containerState(env: Env, app: string): Promise<string> {
  return docker('ps', '-a', '--filter', `label=dev.berth.instance=${env.instance}`, '--filter', `label=dev.berth.app=${app}`, '--format', '{{.State}}');
}

/** `start` (or other) events of one app's containers between two times (ms since the epoch). */
async function containerEvents(env: Env, app: string, sinceMs: number, untilMs: number, event = 'start'): Promise<number[]> {
  const wait = untilMs - Date.now();
  if (wait > 0) await sleep(wait + 50);
  const out = await docker(
    'events', '--since', (sinceMs / 1000).toFixed(3), '--until', (untilMs / 1000).toFixed(3),
    '--filter', `label=dev.berth.instance=${env.instance}`, '--filter', `label=dev.berth.app=${app}`,
    '--filter', 'type=container', '--filter', `event=${event}`, '--format', '{{.TimeNano}}',
  );
  return out.split('\n').filter(Boolean).map((n) => Number(BigInt(n) / 1_000_000n));
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  ms: number;
}

const noKeepAlive = new Agent({ keepAlive: false, maxSockets: Infinity });

/** One request to berth's HTTP listener with a Host header; the body may be a Buffer or chunks streamed one by one. */
function call(env: Env, host: string, path: string, opts: { method?: string; headers?: Record<string, string>; body?: Buffer | Buffer[]; timeoutMs?: number } = {}): Promise<Reply> {
  const url = new URL(env.berth!.httpUrl);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: opts.method ?? 'GET', agent: noKeepAlive, headers: { host, ...opts.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString(), ms: performance.now() - t0 });
      });
      res.on('error', reject);
    });
    req.setTimeout(opts.timeoutMs ?? 15_000, () => req.destroy(new Error(`${host}${path}: no answer in time`)));
    req.on('error', reject);
    const body = opts.body;
    if (Array.isArray(body)) {
      // Streamed (chunked): each chunk waits for the socket to drain.
      void (async () => {
        for (const c of body) if (!req.write(c)) await new Promise((r) => req.once('drain', r));
        req.end();
      })();
    } else req.end(body);
  });
}

const sha256 = (b: Buffer | Buffer[]) => {
  const h = createHash('sha256');
  for (const c of Array.isArray(b) ? b : [b]) h.update(c);
  return h.digest('hex');
};

function openWebSocket(env: Env, host: string, path = '/ws'): Promise<WebSocket> {
  const ws = new WebSocket(`${env.berth!.httpUrl.replace('http:', 'ws:')}${path}`, { headers: { host } });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
  });
}

function echo(ws: WebSocket, message: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no echo within 5 s')), 5000);
    ws.once('message', (data: Buffer) => {
      clearTimeout(timer);
      resolve(data.toString());
    });
    ws.send(message);
  });
}

async function metrics(env: Env): Promise<string> {
  return (await fetch(`${env.berth!.adminUrl}/metrics`)).text();
}

function metric(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

// ---- the main berth: routing apps, a sleepy app, and wakes that never get ready --------------

let main: Env;

beforeAll(async () => {
  [nodeV1, nodeV2] = await Promise.all([nodeAppImage('v1'), nodeAppImage('v2')]);
  await buildBusyboxImage(ONCE_IMAGE, { 'www/index.html': 'listened once\n', 'tmp/.keep': '' }, [
    'CMD ["sh", "-c", "if [ -e /tmp/started ]; then echo started before: not listening >&2; exec sleep 100000; fi; touch /tmp/started; exec httpd -f -p 8080 -h /www"]',
  ]);
  main = await newEnv('pxy');
  const node = (name: string, routes: string, extra = '') => `image: ${nodeV1}\nport: 8080\nenv: {APP_NAME: ${name}}\nroutes:\n${routes}${extra}`;
  await writeApp(main, 'site', node('site', '  - {host: site.test}'));
  await writeApp(main, 'api', node('api', '  - {host: site.test, path: /api, stripPrefix: true}'));
  await writeApp(main, 'wild', node('wild', '  - {host: "*.wild.test"}\n  - {host: auth.test, auth: {bearerSecret: TOKEN}}'));
  await startBerth(main);
  await Promise.all(['site', 'api', 'wild'].map((a) => waitPhase(main, a, 'Ready', 30_000)));
}, 120_000);

describe('routing through berth run with a Host header', () => {
  it('splits one host by path between two apps, strips the prefix, and matches whole segments', async () => {
    expect((await call(main, 'site.test', '/')).text).toBe('site v1 /\n');
    expect((await call(main, 'site.test', '/api/things?x=1')).text).toBe('api v1 /things?x=1\n');
    expect((await call(main, 'site.test', '/api')).text).toBe('api v1 /\n');
    expect((await call(main, 'SITE.test:80', '/apix')).text).toBe('site v1 /apix\n');
  });

  it('routes a wildcard host (one or more labels) and nothing else', async () => {
    expect((await call(main, 'a.wild.test', '/x')).text).toBe('wild v1 /x\n');
    expect((await call(main, 'b.c.wild.test', '/')).text).toBe('wild v1 /\n');
    expect((await call(main, 'wild.test', '/')).status).toBe(404);
  });

  it('answers an unknown host with a 404 that names nothing inside', async () => {
    const r = await call(main, 'nobody.test', '/', { headers: { accept: 'application/json' } });
    expect(r.status).toBe(404);
    for (const inside of [main.instance, 'wild', 'sleepy', 'berth', 'container', '127.0.0.1', '8080']) expect(r.text).not.toContain(inside);
    expect(r.text).not.toMatch(/\d+\.\d+\.\d+\.\d+/);
    expect((await call(main, 'nobody.test', '/')).status).toBe(404);
  });

  it('sets X-Forwarded-For/Proto/Host itself and drops spoofed forwarding and hop-by-hop headers', async () => {
    const r = await call(main, 'site.test', '/headers', {
      headers: {
        'x-forwarded-for': '6.6.6.6', 'x-forwarded-host': 'evil.test', 'x-forwarded-proto': 'https', 'x-forwarded-port': '1',
        forwarded: 'for=6.6.6.6', 'x-real-ip': '6.6.6.6', connection: 'keep-alive, x-hop', 'x-hop': 'secret', 'x-kept': 'yes',
      },
    });
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.text) as { headers: Record<string, string> };
    expect(seen.headers).toMatchObject({ 'x-forwarded-for': '127.0.0.1', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'site.test', 'x-kept': 'yes', host: 'site.test' });
    for (const h of ['forwarded', 'x-real-ip', 'x-hop', 'x-forwarded-port']) expect(seen.headers).not.toHaveProperty(h);
  });

  it('proxies a websocket echo', async () => {
    const ws = await openWebSocket(main, 'site.test');
    expect(await echo(ws, 'hello')).toBe('hello');
    expect(await echo(ws, 'x'.repeat(100_000))).toHaveLength(100_000);
    ws.close();
  });

  it('delivers an event stream event by event, not buffered', async () => {
    const url = new URL(main.berth!.httpUrl);
    const arrivals: { n: number; at: number; arrived: number }[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, path: '/events?n=4', headers: { host: 'site.test' } }, (res) => {
        expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          for (let i = buf.indexOf('\n\n'); i !== -1; i = buf.indexOf('\n\n')) {
            const event = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const data = /^data: (.*)$/m.exec(event)?.[1];
            if (data) arrivals.push({ ...(JSON.parse(data) as { n: number; at: number }), arrived: Date.now() });
          }
        });
        res.on('end', () => resolve());
      });
      req.on('error', reject);
      req.end();
    });
    expect(arrivals.map((a) => a.n)).toEqual([1, 2, 3, 4]);
    // The container shares the host's clock: event 1 reached us long before the app sent event 3.
    expect(arrivals[0]!.arrived).toBeLessThan(arrivals[2]!.at - 100);
    for (const a of arrivals) expect(a.arrived - a.at).toBeLessThan(300);
  });

  it('streams a 10 MiB POST to the app intact (chunked, no Content-Length)', async () => {
    const chunks = Array.from({ length: 160 }, () => randomBytes(64 * 1024));
    const r = await call(main, 'site.test', '/echo', { method: 'POST', body: chunks });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toMatchObject({ app: 'site', bytes: 10 * 1024 * 1024, sha256: sha256(chunks) });
  });

  it('refuses a 32 KiB request header with 431', async () => {
    const r = await call(main, 'site.test', '/', { headers: { 'x-big': 'a'.repeat(32 * 1024) } });
    expect(r.status).toBe(431);
    expect((await call(main, 'site.test', '/')).status).toBe(200);
  });

  it('requires the bearer token of auth.bearerSecret: refused while unset, then 401 without it and 200 with it', async () => {
    const token = randomBytes(16).toString('hex');
    const bearer = { authorization: `Bearer ${token}` };
    // Fail closed while the secret does not exist.
    expect((await call(main, 'auth.test', '/', { headers: bearer })).status).toBe(401);
    const set = await berthCli(['secret', 'set', 'wild', `TOKEN=${token}`, '--state', main.dirs.state]);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout + set.stderr).not.toContain(token);
    await waitFor('the running berth to pick up the secret', async () => (await call(main, 'auth.test', '/', { headers: bearer })).status === 200, 10_000, 100);
    const denied = await call(main, 'auth.test', '/');
    expect(denied.status).toBe(401);
    expect(denied.headers['www-authenticate']).toMatch(/^Bearer/);
    expect((await call(main, 'auth.test', '/', { headers: { authorization: `Bearer ${token}x` } })).status).toBe(401);
    expect((await call(main, 'auth.test', '/', { headers: { authorization: token } })).status).toBe(401);
    const ok = await call(main, 'auth.test', '/headers', { headers: bearer });
    expect(ok.status).toBe(200);
    // The wildcard route of the same app stays open.
    expect((await call(main, 'a.wild.test', '/')).status).toBe(200);
  });
});

describe('scale to zero and wake on request', () => {
  it('puts an idle app to sleep within idle.after + a resync, then wakes it once for 200 concurrent requests and a held 1 MiB POST', async () => {
    await writeApp(main, 'sleepy', `image: ${nodeV1}\nport: 8080\nenv: {APP_NAME: sleepy}\nroutes: [{host: sleepy.test}]\nidle: {after: 3s}`);
    const ready = await waitPhase(main, 'sleepy', 'Ready', 30_000);
    const readyAt = Date.now();
    expect(ready.status.conditions.find((c) => c.type === 'Ready')?.status).toBe('True');
    // Berth decides within idle.after + a resync (phase Sleeping as the stop begins); Docker's stop then takes what it takes.
    await waitPhase(main, 'sleepy', 'Sleeping', 3000 + 2000 + 3000);
    const decidedAfter = Date.now() - readyAt;
    const asleep = await waitAsleep(main, 'sleepy', 10_000);
    const stoppedAfter = Date.now() - readyAt;
    console.log(`sleepy: Ready -> Sleeping in ${decidedAfter} ms, container stopped after ${stoppedAfter} ms (idle.after 3 s, resync 2 s)`);
    expect(decidedAfter, 'Ready -> phase Sleeping (ms)').toBeLessThan(3000 + 2000 + 500);
    expect(asleep.status.idle?.sleepingSince).toBeDefined();
    expectValidStatusFile(asleep);

    const since = Date.now();
    const body = randomBytes(1 << 20);
    const t0 = performance.now();
    const [post, ...gets] = await Promise.all([
      call(main, 'sleepy.test', '/echo', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } }),
      ...Array.from({ length: 200 }, (_, i) => call(main, 'sleepy.test', `/n/${i}`)),
    ]);
    const wakeMs = performance.now() - t0;
    console.log(`sleepy: 200 GETs + 1 POST through a wake in ${Math.round(wakeMs)} ms`);
    expect(gets.map((r) => r.status)).toEqual(gets.map(() => 200));
    gets.forEach((r, i) => expect(r.text).toBe(`sleepy v1 /n/${i}\n`));
    expect(gets.filter((r) => r.headers['x-berth-cold-start'] !== 'true').map((r) => Math.round(r.ms)), 'times (ms) of responses without X-Berth-Cold-Start').toEqual([]);
    expect(post.status).toBe(200);
    expect(post.headers['x-berth-cold-start']).toBe('true');
    expect(JSON.parse(post.text)).toMatchObject({ bytes: 1 << 20, sha256: sha256(body) });
    expect(await containerEvents(main, 'sleepy', since - 100, Date.now() + 500), 'start events of sleepy').toHaveLength(1);

    const m = await metrics(main);
    expect(metric(m, 'berth_wakes_total', 'app="sleepy"')).toBe(1);
    expect(metric(m, 'berth_wake_failures_total', 'app="sleepy"')).toBe(0);
    const p50 = metric(m, 'berth_wake_latency_seconds', 'app="sleepy",quantile="0.5"');
    expect(p50).toBeGreaterThan(0);
    expect(p50).toBeLessThan(wakeMs / 1000);
    // The status file follows (every status write carries the traffic numbers; a resync re-renders).
    const s = await waitFor('traffic in the status file', async () => {
      const st = await statusOf(main, 'sleepy');
      const t = st?.status.traffic;
      return t?.wakes === 1 && t.wakeLatencyMs?.p50 !== undefined && (t.requests ?? 0) >= 201 ? st : undefined;
    }, 10_000, 100);
    expect(s.status.traffic!.wakeLatencyMs!.p50).toBeGreaterThan(0);
    expectValidStatusFile(s);
  });

  it('keeps an open websocket to one app while another redeploys (image change) and a third wakes', async () => {
    const ws = await openWebSocket(main, 'site.test');
    let closed = false;
    ws.once('close', () => (closed = true));
    expect(await echo(ws, 'before')).toBe('before');
    await waitAsleep(main, 'sleepy', 10_000);
    const node = (name: string, routes: string) => `image: ${nodeV2}\nport: 8080\nenv: {APP_NAME: ${name}}\nroutes:\n${routes}`;
    await writeApp(main, 'api', node('api', '  - {host: site.test, path: /api, stripPrefix: true}'));
    const [woke] = await Promise.all([
      call(main, 'sleepy.test', '/'),
      waitFor('api serving v2', async () => (await call(main, 'site.test', '/api/')).text === 'api v2 /\n', 30_000, 50),
    ]);
    expect(woke.status).toBe(200);
    expect(woke.headers['x-berth-cold-start']).toBe('true');
    for (let i = 0; i < 5; i++) expect(await echo(ws, `after ${i}`)).toBe(`after ${i}`);
    expect(closed).toBe(false);
    ws.close();
  });
});

/** What the never-ready test saw of the flaky app after its failed wake (checked by the test after it). */
let afterFailedWake: { statuses: number[]; phase?: string; ready?: string } | undefined;

describe('wakes that never get ready, and restarts of berth', () => {
  it.concurrent('answers requests held for a wake that never gets ready with 503 + Retry-After at the wake timeout, and never restarts in a loop', async () => {
    await writeApp(main, 'flaky', `image: ${ONCE_IMAGE}\nport: 8080\nroutes: [{host: flaky.test}]\nidle: {after: 3s, wakeTimeout: 5s}\nhealthCheck: {startPeriodSeconds: 4}`);
    // The literal case: an image that never listens, not even on its first deploy.
    await writeApp(main, 'never', `image: ${IMAGES.nolisten}\nport: 8080\nroutes: [{host: never.test}]\nidle: {after: 3s, wakeTimeout: 5s}\nhealthCheck: {startPeriodSeconds: 4}`);
    await waitPhase(main, 'flaky', 'Ready', 30_000);
    await waitAsleep(main, 'flaky', 10_000);
    const neverStatus = await waitFor('never gives up its first deploy', async () => {
      const s = await statusOf(main, 'never');
      return s && ['Failed', 'Stalled'].includes(s.status.phase) ? s : undefined;
    }, 15_000, 100);
    console.log(`never: ${neverStatus.status.phase} ${neverStatus.status.lastError?.reason ?? ''}`);

    const since = Date.now();
    const first = await call(main, 'flaky.test', '/', { timeoutMs: 15_000 });
    console.log(`flaky: first held request -> ${first.status} after ${Math.round(first.ms)} ms, Retry-After ${String(first.headers['retry-after'])}`);
    expect(first.status).toBe(503);
    expect(Number(first.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(first.ms).toBeGreaterThan(3500);
    expect(first.ms).toBeLessThan(5000 + 1500);

    // A client that keeps asking for 20 s: every answer comes in bounded time, and the app is not restarted in a loop.
    const seen: { app: string; status: number; ms: number; retryAfter?: string }[] = [];
    const end = since + 20_000;
    await Promise.all(['flaky.test', 'never.test'].map(async (host) => {
      while (Date.now() < end) {
        const r = await call(main, host, '/', { timeoutMs: 15_000 });
        seen.push({ app: host, status: r.status, ms: Math.round(r.ms), ...(r.headers['retry-after'] ? { retryAfter: String(r.headers['retry-after']) } : {}) });
        await sleep(500);
      }
    }));
    console.log(`answers over 20 s: ${JSON.stringify(seen)}`);
    for (const r of seen) {
      expect(r.ms).toBeLessThan(5000 + 1500);
      expect([502, 503]).toContain(r.status);
      if (r.status === 503) expect(r.retryAfter).toBeDefined();
    }
    const flakyNow = (await statusOf(main, 'flaky'))?.status;
    afterFailedWake = {
      statuses: seen.filter((r) => r.app === 'flaky.test').map((r) => r.status),
      phase: flakyNow?.phase, ready: flakyNow?.conditions.find((c) => c.type === 'Ready')?.status,
    };
    const flakyStarts = await containerEvents(main, 'flaky', since, Date.now());
    const neverStarts = await containerEvents(main, 'never', since, Date.now());
    const phases = await Promise.all(['flaky', 'never'].map(async (a) => {
      const st = (await statusOf(main, a))?.status;
      return `${a}: ${st?.phase} (${st?.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`).join(' ')})`;
    }));
    console.log(`start events over 20 s: flaky ${flakyStarts.length}, never ${neverStarts.length}; now ${phases.join('; ')}`);
    expect(flakyStarts.length).toBeGreaterThanOrEqual(1);
    expect(flakyStarts.length).toBeLessThanOrEqual(3);
    expect(neverStarts.length).toBeLessThanOrEqual(3);
  }, 90_000);

  it.concurrent('keeps a sleeping app asleep across a restart of berth, and puts an idle one to sleep on its original schedule', async () => {
    const env = await newEnv('pxr');
    await writeApp(env, 'nap', `image: ${nodeV1}\nport: 8080\nenv: {APP_NAME: nap}\nroutes: [{host: nap.test}]\nidle: {after: 3s}`);
    await writeApp(env, 'busy', `image: ${nodeV1}\nport: 8080\nenv: {APP_NAME: busy}\nroutes: [{host: busy.test}]\nidle: {after: 10s}`);
    await startBerth(env);
    await waitPhase(env, 'busy', 'Ready', 30_000);
    await waitAsleep(env, 'nap', 30_000);
    expect((await call(env, 'busy.test', '/')).status).toBe(200);
    const lastRequest = Date.now();
    await sleep(4000);
    expect(await env.berth!.stop()).toBe(0);
    const restartedAt = Date.now();
    await startBerth(env);
    await waitFor('busy stopped', async () => (await containerState(env, 'busy')) === 'exited', 20_000, 100);
    const stops = await containerEvents(env, 'busy', lastRequest, Date.now(), 'die');
    expect(stops).toHaveLength(1);
    const sleptAfter = stops[0]! - lastRequest;
    console.log(`busy: asleep ${sleptAfter} ms after its last request (idle.after 10 s; berth restarted ${restartedAt - lastRequest} ms after it)`);
    // lastActivity is persisted to the second: asleep 9-10 s after the request (+ stop time), not 10 s after the restart.
    expect(sleptAfter).toBeGreaterThan(8500);
    expect(sleptAfter).toBeLessThan(12_500);
    await waitAsleep(env, 'busy', 10_000);
    expect(await containerEvents(env, 'nap', restartedAt, Date.now())).toHaveLength(0);
    expect(await containerEvents(env, 'busy', restartedAt, Date.now())).toHaveLength(0);
    expect(await containerState(env, 'nap')).toBe('exited');
    expect((await statusOf(env, 'nap'))?.status.phase).toBe('Sleeping');
  }, 90_000);

  // Fails today: after the failed wake the controller's next pass takes the running, never
  // healthy container for serving (plan.ts: a deployed running container "needs no new proof"),
  // so the app reports Ready and requests get 502 after the proxy's connect retries. Patch
  // proposed to the lead (unverified containers: no traffic, re-probed with backoff).
  it('does not report a woken app that never got healthy as Ready, nor send it traffic (502)', () => {
    expect(afterFailedWake).toBeDefined();
    expect(afterFailedWake!.statuses.filter((s) => s === 502)).toEqual([]);
    expect(afterFailedWake!.ready).not.toBe('True');
  });
});
