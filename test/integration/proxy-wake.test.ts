// Wake on request through the proxy: real requests held while a (test) waker starts a real
// backend, then released; timeouts, failures, queue limits, browsers and websockets.
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { echoOf, route, send, serving, sleep, startBackend, startProxy, type Backend, type Harness } from '../helpers/http-backends.js';
import type { AppBackend, Waker } from '../../src/proxy/types.js';

type WakeImpl = (app: string, signal: AbortSignal) => Promise<void>;

const asleep = (wakeTimeoutMs = 5000): AppBackend => ({ state: 'sleeping', endpoints: [], wakeTimeoutMs });

describe('proxy wake on request', () => {
  let h: Harness;
  const impls = new Map<string, WakeImpl>();
  const calls = new Map<string, number>();
  const started: Backend[] = [];
  const idled: string[] = [];
  const waker: Waker = {
    wake: (app, signal) => {
      calls.set(app, (calls.get(app) ?? 0) + 1);
      const impl = impls.get(app);
      return impl ? impl(app, signal) : Promise.reject(new Error('no impl'));
    },
  };

  /** A waker that takes `delayMs`, then starts a backend and marks the app serving. */
  function startsAfter(delayMs: number, opts: { ws?: boolean } = {}): WakeImpl {
    return async (app) => {
      await sleep(delayMs);
      const b = await startBackend(app, opts);
      started.push(b);
      h.backends.set(app, serving(b.port));
    };
  }

  function sleepingApp(app: string, impl: WakeImpl, wakeTimeoutMs = 5000): void {
    impls.set(app, impl);
    h.backends.set(app, asleep(wakeTimeoutMs));
  }

  beforeAll(async () => {
    h = await startProxy({ waker, onIdle: (app) => idled.push(app), options: { maxHeldPerApp: 250, maxHeldBodyBytes: 4 << 20, startingPageAfterMs: 200, wakeBackoff: { initialMs: 3000, maxMs: 3000 } } });
    const apps = ['herd', 'post', 'timeout', 'broken', 'queue', 'browser', 'abort', 'ws', 'refused', 'huge', 'fresh'];
    h.setRoutes(apps.map((app, i) => ({ app, createdAt: `2026-01-0${(i % 9) + 1}T00:00:00Z`, routes: [route(`${app}.test`)] })));
  });
  afterAll(async () => {
    await h.close();
    await Promise.all(started.map((b) => b.close()));
  });

  it('starts exactly one wake for 200 concurrent requests and answers all 200 (cold-start marked)', async () => {
    sleepingApp('herd', startsAfter(300));
    const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => send(h.port, { host: 'herd.test', path: `/r/${i}` })));
    expect(calls.get('herd')).toBe(1);
    expect(replies.map((r) => r.status)).toEqual(Array(200).fill(200));
    expect(replies.every((r) => r.headers['x-berth-cold-start'] === 'true')).toBe(true);
    expect(new Set(replies.map((r) => echoOf(r).url)).size).toBe(200);
    const warm = await send(h.port, { host: 'herd.test' });
    expect(warm.headers['x-berth-cold-start']).toBeUndefined();
    const m = h.proxy.metrics.snapshot().apps.herd!;
    expect(m).toMatchObject({ wakes: 1, wakeFailures: 0, coldStarts: 200, held: 0 });
    expect(m.wakeLatencyMs.p50).toBeGreaterThanOrEqual(300);
  });

  it('holds a POST across the wake and delivers its body intact', async () => {
    sleepingApp('post', startsAfter(400));
    const body = randomBytes(1 << 20);
    const r = await send(h.port, { host: 'post.test', method: 'POST', path: '/upload', body });
    expect(r.status).toBe(200);
    expect(echoOf(r)).toMatchObject({ method: 'POST', bodyBytes: body.length, bodySha256: createHash('sha256').update(body).digest('hex') });
  });

  it('answers held requests 503 + Retry-After at the wake timeout, aborts the wake, and does not retry at once', async () => {
    let aborted = false;
    sleepingApp('timeout', (_app, signal) => new Promise((_resolve, reject) => signal.addEventListener('abort', () => {
      aborted = true;
      reject(new Error('aborted'));
    })), 500);
    const t0 = Date.now();
    const replies = await Promise.all([1, 2, 3].map(() => send(h.port, { host: 'timeout.test', headers: { accept: 'application/json' } })));
    const waited = Date.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(480);
    expect(waited).toBeLessThan(2000);
    for (const r of replies) {
      expect(r.status).toBe(503);
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    expect(aborted).toBe(true);
    const again = await send(h.port, { host: 'timeout.test' });
    expect(again.status).toBe(503);
    expect(calls.get('timeout')).toBe(1);
  });

  it('turns a wake failure into 503 + Retry-After with a backoff, never a tight loop', async () => {
    sleepingApp('broken', () => Promise.reject(Object.assign(new Error('exit 1'), { reason: 'ContainerExited' })));
    for (let i = 0; i < 20; i++) {
      const r = await send(h.port, { host: 'broken.test' });
      expect(r.status).toBe(503);
      expect(r.headers['retry-after']).toBeDefined();
    }
    expect(calls.get('broken')).toBe(1);
    expect(h.proxy.metrics.snapshot().apps.broken?.wakeFailures).toBe(1);
  });

  it('caps the requests held per app', async () => {
    let release!: () => void;
    sleepingApp('queue', async (app) => {
      await new Promise<void>((r) => (release = r));
      await startsAfter(0)(app, new AbortController().signal);
    });
    const held = Array.from({ length: 250 }, () => send(h.port, { host: 'queue.test' }));
    await sleep(300);
    const over = await send(h.port, { host: 'queue.test' });
    expect(over.status).toBe(503);
    expect(over.headers['retry-after']).toBeDefined();
    release();
    expect((await Promise.all(held)).every((r) => r.status === 200)).toBe(true);
  });

  it('shows a browser navigation the auto-refreshing starting page, while an API client is held', async () => {
    sleepingApp('browser', startsAfter(800));
    const nav = send(h.port, { host: 'browser.test', headers: { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate' } });
    const api = send(h.port, { host: 'browser.test', headers: { accept: 'application/json' } });
    const page = await nav;
    expect(page.status).toBe(503);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.headers['retry-after']).toBe('2');
    expect(page.text).toContain('http-equiv="refresh"');
    const held = await api;
    expect(held.status).toBe(200);
    expect(held.headers['x-berth-cold-start']).toBe('true');
  });

  it('frees the slot of a client that gives up while held', async () => {
    sleepingApp('abort', startsAfter(1500));
    const req = request({ host: '127.0.0.1', port: h.port, path: '/', headers: { host: 'abort.test' }, agent: false });
    req.on('error', () => undefined);
    req.end();
    await sleep(150);
    expect(h.proxy.metrics.snapshot().apps.abort?.held).toBe(1);
    req.destroy();
    await sleep(100);
    expect(h.proxy.metrics.snapshot().apps.abort?.held).toBe(0);
  });

  it('holds a websocket upgrade during the wake, then proxies it', async () => {
    sleepingApp('ws', startsAfter(300, { ws: true }));
    const ws = new WebSocket(`ws://127.0.0.1:${h.port}/chat`, { headers: { host: 'ws.test' } });
    const hello = await new Promise<string>((resolve, reject) => {
      ws.once('message', (d) => resolve((d as Buffer).toString()));
      ws.once('error', reject);
    });
    expect(JSON.parse(hello)).toMatchObject({ backend: 'ws', url: '/chat' });
    ws.send('after wake');
    expect(await new Promise<string>((r) => ws.once('message', (d) => r((d as Buffer).toString())))).toBe('after wake');
    ws.close();
    expect(calls.get('ws')).toBe(1);
  });

  it('retries connection-refused right after a wake that resolved a moment too early', async () => {
    sleepingApp('refused', async (app) => {
      const probe = await startBackend('probe');
      const port = probe.port;
      await probe.close();
      h.backends.set(app, serving(port));
      // The app only starts listening 400 ms after the waker said it was serving.
      setTimeout(() => void startBackend(app, { port }).then((b) => started.push(b)), 400);
    });
    const r = await send(h.port, { host: 'refused.test' });
    expect(r.status).toBe(200);
    expect(echoOf(r).backend).toBe('refused');
  });

  it('does not hold a body larger than the held-body cap, but starts the wake for the retry', async () => {
    sleepingApp('huge', startsAfter(100));
    const r = await send(h.port, { host: 'huge.test', method: 'POST', body: Buffer.alloc(5 << 20) });
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBeDefined();
    await sleep(400);
    expect(calls.get('huge')).toBe(1);
    expect((await send(h.port, { host: 'huge.test', method: 'POST', body: Buffer.alloc(5 << 20) })).status).toBe(200);
  });

  it('does not put a freshly woken app straight back to sleep', async () => {
    // It slept 10 minutes ago; its idle period is 1 minute.
    h.proxy.activity.restore('fresh', new Date(Date.now() - 10 * 60_000));
    sleepingApp('fresh', async (app) => {
      await sleep(100);
      const b = await startBackend(app);
      started.push(b);
      h.backends.set(app, { ...serving(b.port), idleAfterMs: 60_000 });
    });
    expect((await send(h.port, { host: 'fresh.test' })).status).toBe(200);
    await sleep(100);
    expect(idled).toEqual([]);
    expect(h.proxy.activity.isIdle('fresh', 1000)).toBe(false);
  });
});
