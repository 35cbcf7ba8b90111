// F16, F17 of the fault catalogue, and sleep on schedule: a thundering herd on a cold app wakes
// it once; a backend that never becomes ready gets 503 + Retry-After in bounded time and is not
// restarted in a loop; and idle apps fall asleep on time even while berth is busy looking at
// Docker (a slow engine makes every resync take 400 ms).
import { describe, it, afterAll, expect } from 'vitest';
import { FaultEnv, type Reply } from '../helpers/fault-env.js';
import { checkInvariants, summary } from '../helpers/invariants.js';
import { IMAGES, buildBusyboxImage } from '../helpers/docker.js';
import { nodeAppImage } from '../helpers/node-image.mjs';
import { startSlowDocker, type SlowDocker } from '../helpers/slow-docker.js';
import { sleep, waitFor } from '../helpers/berth-process.js';

/** Listens on its first start only; every later start runs without listening (a wake that never gets ready). */
const ONCE_IMAGE = 'berth-test/listens-once:1';

const envs: FaultEnv[] = [];
let slow: SlowDocker | undefined;

afterAll(async () => {
  for (const e of envs) await e.destroy();
  await slow?.close();
});

async function newEnv(prefix: string, opts: Parameters<typeof FaultEnv.create>[1] = {}): Promise<FaultEnv> {
  const env = await FaultEnv.create(prefix, opts);
  envs.push(env);
  await env.start();
  return env;
}

const failed = (e: unknown): Reply => ({ status: 0, text: String(e), ms: 0, headers: {} });

describe('thundering herd on a cold app (F17)', () => {
  it('500 concurrent requests (4 client addresses) wake it once: one start, one wake, every answer 200 and its own', async () => {
    const env = await newEnv('fhd');
    const image = await nodeAppImage();
    await env.writeApp('cold', `image: ${image}\nport: 8080\nenv: {APP_NAME: cold}\nroutes: [{host: cold.test}]\nidle: {after: 2s}\nresources: {memory: 128m}`);
    await env.waitReady('cold');
    await env.waitAsleep('cold', { poke: 'cold.test' });
    const wakesBefore = FaultEnv.metric(await env.metrics(), 'berth_wakes_total', 'app="cold"');
    const since = Date.now();
    // 125 per client address: berth caps connections per address at 256.
    const replies = await Promise.all(Array.from({ length: 500 }, (_, i) => env.call('cold.test', `/n/${i}`, { from: `127.0.0.${2 + (i % 4)}`, timeoutMs: 60_000 }).catch(failed)));
    const took = Date.now() - since;
    const starts = await env.events(since - 100, Date.now() + 500, ['event=start']);
    const wakes = FaultEnv.metric(await env.metrics(), 'berth_wakes_total', 'app="cold"') - wakesBefore;
    const bad = replies.map((r, i) => [i, r] as const).filter(([i, r]) => r.status !== 200 || r.text !== `cold v1 /n/${i}\n`);
    console.log(`herd: 500 requests answered in ${took} ms; ${bad.length} not 200/own; ${starts.length} start event(s); berth_wakes_total +${wakes}; cold start headers: ${replies.filter((r) => r.headers['x-berth-cold-start'] === 'true').length}`);
    expect(bad.slice(0, 5).map(([i, r]) => `${i}: ${r.status} ${r.text.slice(0, 80)}`)).toEqual([]);
    expect(starts.map((e) => e.name), 'start events').toHaveLength(1);
    expect(wakes, 'wakes (single flight)').toBe(1);
    await env.waitAsleep('cold', { poke: 'cold.test' });
    await checkInvariants(env, { apps: { cold: { running: 0, stopped: 1 } }, label: 'herd' });
  }, 120_000);
});

describe('a backend that never becomes ready (F16)', () => {
  it('held requests get 503 + Retry-After at the wake timeout, later ones at once, and the app is not restarted in a loop', async () => {
    await buildBusyboxImage(ONCE_IMAGE, { 'www/index.html': 'listened once\n', 'tmp/.keep': '' }, [
      'CMD ["sh", "-c", "if [ -e /tmp/started ]; then echo started before: not listening >&2; exec sleep 100000; fi; touch /tmp/started; exec httpd -f -p 8080 -h /www"]',
    ]);
    const env = await newEnv('fnr');
    // Deploys fine once, then never listens again: its wake never gets ready.
    await env.writeApp('flaky', `image: ${ONCE_IMAGE}\nport: 8080\nroutes: [{host: flaky.test}]\nidle: {after: 2s, wakeTimeout: 5s}\nhealthCheck: {startPeriodSeconds: 4}\nresources: {memory: 32m}`);
    // Never listens at all, not even on its first deploy.
    await env.writeApp('deaf', `image: ${IMAGES.nolisten}\nport: 8080\nroutes: [{host: deaf.test}]\nidle: {after: 2s, wakeTimeout: 5s}\nhealthCheck: {startPeriodSeconds: 3}\nresources: {memory: 32m}`);
    await env.waitReady('flaky');
    await env.waitAsleep('flaky', { poke: 'flaky.test' });
    const deaf = await waitFor('deaf gives up its first deploy', async () => {
      const s = await env.status('deaf');
      return s && ['Failed', 'Stalled'].includes(s.status.phase) ? s : undefined;
    }, 20_000, 100);
    console.log(`deaf after its first deploy: ${summary(deaf)}`);

    const since = Date.now();
    const first = await env.call('flaky.test', '/', { timeoutMs: 20_000 });
    console.log(`flaky: the first held request got ${first.status} after ${Math.round(first.ms)} ms (Retry-After ${String(first.headers['retry-after'])})`);
    expect(first.status).toBe(503);
    expect(Number(first.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(first.ms).toBeLessThan(5000 + 1500);

    // A client that keeps asking for 15 s: every answer in bounded time, 5xx with Retry-After on 503.
    const seen: { host: string; status: number; ms: number; retryAfter?: string }[] = [];
    await Promise.all(['flaky.test', 'deaf.test'].map(async (host) => {
      while (Date.now() < since + 15_000) {
        const r = await env.call(host, '/', { timeoutMs: 20_000 }).catch(failed);
        seen.push({ host, status: r.status, ms: Math.round(r.ms), ...(r.headers['retry-after'] ? { retryAfter: String(r.headers['retry-after']) } : {}) });
        await sleep(300);
      }
    }));
    const starts = await env.events(since, Date.now(), ['event=start']);
    const by = (app: string) => starts.filter((e) => e.app === app).length;
    console.log(`never ready: ${seen.length} answers (${[...new Set(seen.map((r) => `${r.host}=${r.status}`))].join(' ')}), max ${Math.max(...seen.map((r) => r.ms))} ms; start events over 15 s: flaky ${by('flaky')}, deaf ${by('deaf')}; now flaky ${summary(await env.status('flaky'))}`);
    for (const r of seen) {
      expect(r.ms, `${r.host}`).toBeLessThan(5000 + 1500);
      expect([502, 503], `${r.host}`).toContain(r.status);
      if (r.status === 503) expect(r.retryAfter, `${r.host}: 503 without Retry-After`).toBeDefined();
    }
    expect(seen.filter((r) => r.status === 502), 'a 502 means berth sent traffic to a container it never saw healthy').toEqual([]);
    expect(by('flaky'), 'flaky starts (backoff: 2 s doubling)').toBeLessThanOrEqual(3);
    expect(by('deaf'), 'deaf starts').toBeLessThanOrEqual(1);
    // Neither reports Ready while it cannot serve. (flaky's woken container stays running, unverified
    // and without traffic, re-probed with backoff: berth does not put it back to sleep.)
    for (const app of ['flaky', 'deaf']) expect((await env.status(app))?.status.conditions.find((c) => c.type === 'Ready')?.status, app).not.toBe('True');
    await checkInvariants(env, { apps: { flaky: 1, deaf: 0 }, label: 'never ready' });
  }, 120_000);
});

describe('idle apps fall asleep on schedule while berth is busy looking at Docker', () => {
  it('10 apps idle after 3 s, resync 1 s, container listings 400 ms slow: all asleep within 15 s of their last request', async () => {
    slow = await startSlowDocker({ delayMs: 400, slow: (req) => req.method === 'GET' && /\/containers\/json/.test(req.url ?? '') });
    const env = await newEnv('fid', { resync: '1s', berthDockerHost: slow.dockerHost });
    const apps = Array.from({ length: 10 }, (_, i) => `nap${i}`);
    for (const a of apps) await env.writeApp(a, `image: ${IMAGES.httpdV1}\nroutes: [{host: ${a}.test}]\nidle: {after: 3s}\nresources: {memory: 16m}`);
    await Promise.all(apps.map((a) => env.waitReady(a, { timeoutMs: 60_000 })));
    // Each app gets one request now; from here on, nothing but berth's own timers.
    const t0 = Date.now();
    for (const r of await Promise.all(apps.map((a) => env.call(`${a}.test`, '/')))) expect(r.status).toBe(200);
    const asleepAt = new Map<string, number>();
    await waitFor('every app asleep', async () => {
      for (const a of apps) {
        if (asleepAt.has(a)) continue;
        const s = await env.status(a);
        if (s?.status.phase === 'Sleeping' && (await env.containers(a))[0]?.State === 'exited') asleepAt.set(a, Date.now() - t0);
      }
      return asleepAt.size === apps.length;
    }, 15_000, 100).catch(() => undefined);
    const stuck = await Promise.all(apps.filter((a) => !asleepAt.has(a)).map(async (a) => `${a}: ${summary(await env.status(a))}`));
    console.log(`asleep after (ms): ${[...asleepAt].map(([a, ms]) => `${a}=${ms}`).join(' ')}; ${slow.delayed} slowed listings; still awake after 15 s: ${stuck.length ? stuck.join('; ') : 'none'}`);
    const lost = env.berth!.logs().split('\n').filter((l) => l.includes('"msg":"app idle"')).length;
    expect(stuck, `apps still awake 15 s after their last request (idle after 3 s); "app idle" was logged ${lost} times`).toEqual([]);
    await checkInvariants(env, { apps: Object.fromEntries(apps.map((a) => [a, { running: 0, stopped: 1 }])), label: 'idle on schedule' });
  }, 120_000);
});
