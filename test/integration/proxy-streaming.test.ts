// Streams and limits through the proxy: websockets, SSE without buffering, large bodies both
// ways, header/body limits, slow clients, and connections that must survive other apps' changes.
import { randomBytes, createHash } from 'node:crypto';
import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { echoOf, route, send, serving, sleep, startBackend, startProxy, type Backend, type Harness } from '../helpers/http-backends.js';

/** Resolves the next time `release()` is called. */
function gate(): { wait: Promise<void>; release(): void } {
  let release!: () => void;
  const wait = new Promise<void>((r) => (release = r));
  return { wait, release };
}

let sseGates: { headers: ReturnType<typeof gate>; second: ReturnType<typeof gate> } | undefined;
let secondSent = false;

function streamingHandler(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.url === '/sse') {
    const gates = sseGates!;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    void (async () => {
      await gates.headers.wait;
      res.write('data: one\n\n');
      await gates.second.wait;
      secondSent = true;
      res.end('data: two\n\n');
    })();
    return true;
  }
  if (req.url === '/hang') return true;
  if (req.url === '/cookies') {
    res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/']);
    res.write('chunk1,');
    res.end('chunk2');
    return true;
  }
  if (req.url === '/truncated') {
    res.writeHead(200, { 'content-length': '100' });
    res.write('0123456789');
    setTimeout(() => res.socket?.destroy(), 50);
    return true;
  }
  if (req.url === '/big') {
    const chunk = Buffer.alloc(64 * 1024, 7);
    res.writeHead(200, { 'content-length': String(chunk.length * 160) });
    let n = 0;
    const pump = () => {
      while (n < 160) {
        n++;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
    return true;
  }
  return false;
}

function rawExchange(port: number, head: string, body?: (s: Socket) => void): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => (got += d.toString()));
    s.on('error', () => undefined);
    s.on('close', () => resolve(got));
    s.write(head);
    body?.(s);
  });
}

function openWs(port: number, host: string, path = '/'): Promise<{ ws: WebSocket; hello: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers: { host } });
    ws.once('message', (data) => resolve({ ws, hello: JSON.parse((data as Buffer).toString()) as Record<string, unknown> }));
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket): Promise<string> {
  return new Promise((resolve) => ws.once('message', (d) => resolve((d as Buffer).toString())));
}

describe('proxy streaming and limits', () => {
  let a: Backend;
  let b: Backend;
  let h: Harness;
  const idled: string[] = [];

  beforeAll(async () => {
    [a, b] = await Promise.all([startBackend('a', { ws: true, handler: streamingHandler }), startBackend('b', { ws: true })]);
    h = await startProxy({
      options: { maxBodyBytes: 12 << 20, upstreamTimeoutMs: 400 },
      limits: { headersTimeoutMs: 800, requestTimeoutMs: 5000, timeoutCheckIntervalMs: 100 },
      onIdle: (app) => idled.push(app),
    });
    h.backends.set('a', serving(a.port));
    h.backends.set('b', serving(b.port));
    h.setRoutes([
      { app: 'a', createdAt: '2026-01-01T00:00:00Z', routes: [route('a.test'), route('a.test', '/ws', { stripPrefix: true })] },
      { app: 'b', createdAt: '2026-01-02T00:00:00Z', routes: [route('b.test')] },
    ]);
  });
  afterAll(async () => {
    await h.close();
    await Promise.all([a.close(), b.close()]);
  });

  it('echoes over a websocket, with forwarding headers and the prefix stripped', async () => {
    const { ws, hello } = await openWs(h.port, 'a.test', '/ws/room?x=1');
    expect(hello).toEqual({ backend: 'a', url: '/room?x=1', xff: '127.0.0.1', proto: 'http' });
    ws.send('ping');
    expect(await nextMessage(ws)).toBe('ping');
    const bin = randomBytes(200_000);
    ws.send(bin);
    const back = await new Promise<Buffer>((r) => ws.once('message', (d) => r(d as Buffer)));
    expect(back.equals(bin)).toBe(true);
    expect(h.proxy.metrics.snapshot().apps.a?.openStreams).toBe(1);
    ws.close();
    await new Promise((r) => ws.once('close', r));
    await sleep(50);
    expect(h.proxy.metrics.snapshot().apps.a?.openStreams).toBe(0);
  });

  it('refuses a websocket to an unknown host with 404', async () => {
    await expect(openWs(h.port, 'nobody.test')).rejects.toThrow(/404/);
  });

  it('delivers SSE event by event: headers and event 1 arrive before event 2 is sent', async () => {
    sseGates = { headers: gate(), second: gate() };
    secondSent = false;
    const events: string[] = [];
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: h.port, path: '/sse', headers: { host: 'a.test', accept: 'text/event-stream' }, agent: false }, resolve);
      req.on('error', reject);
      req.end();
    });
    // Headers came through although the backend has not written a byte of body yet.
    expect(res.headers['content-type']).toBe('text/event-stream');
    const first = new Promise<string>((r) => res.once('data', (d: Buffer) => r(d.toString())));
    sseGates.headers.release();
    events.push(await first);
    expect(secondSent).toBe(false);
    expect(events[0]).toBe('data: one\n\n');
    const rest = new Promise<string>((r) => {
      let s = '';
      res.on('data', (d: Buffer) => (s += d.toString()));
      res.on('end', () => r(s));
    });
    sseGates.second.release();
    expect(await rest).toBe('data: two\n\n');
  });

  it('streams a 10 MiB POST intact (Content-Length and chunked)', async () => {
    const body = randomBytes(10 << 20);
    const sha = createHash('sha256').update(body).digest('hex');
    const r = await send(h.port, { host: 'a.test', path: '/upload', method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
    expect(echoOf(r)).toMatchObject({ bodyBytes: body.length, bodySha256: sha, method: 'POST' });
    const chunked = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: h.port, method: 'PUT', path: '/upload', headers: { host: 'a.test', 'transfer-encoding': 'chunked' }, agent: false }, (res) => {
        let s = '';
        res.on('data', (d: Buffer) => (s += d.toString()));
        res.on('end', () => resolve(s));
      });
      req.on('error', reject);
      for (let i = 0; i < body.length; i += 1 << 20) req.write(body.subarray(i, i + (1 << 20)));
      req.end();
    });
    expect(JSON.parse(chunked)).toMatchObject({ bodyBytes: body.length, bodySha256: sha });
  });

  it('streams a 10 MiB response', async () => {
    const r = await send(h.port, { host: 'a.test', path: '/big' });
    expect(r.body.length).toBe(160 * 64 * 1024);
  });

  it('keeps repeated Set-Cookie headers, re-frames chunked bodies, and answers HEAD without a body', async () => {
    const r = await send(h.port, { host: 'a.test', path: '/cookies' });
    expect(r.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    expect(r.text).toBe('chunk1,chunk2');
    const head = await send(h.port, { host: 'a.test', path: '/big', method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(160 * 64 * 1024));
    expect(head.body.length).toBe(0);
  });

  it('answers 431 to a 32 KiB header', async () => {
    const r = await send(h.port, { host: 'a.test', headers: { 'x-big': 'a'.repeat(32 * 1024) } });
    expect(r.status).toBe(431);
  });

  it('answers 413 to a declared or streamed body over the limit, without reading it', async () => {
    const declared = await rawExchange(h.port, `POST /upload HTTP/1.1\r\nHost: a.test\r\nContent-Length: ${13 << 20}\r\n\r\n`);
    expect(declared).toMatch(/^HTTP\/1\.1 413 /);
    expect(declared).toMatch(/connection: close/i);
    const streamed = await rawExchange(h.port, 'POST /upload HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n', (s) => {
      const chunk = Buffer.alloc(1 << 20, 1);
      const frame = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
      let n = 0;
      const pump = () => {
        while (n < 14 && !s.destroyed) {
          n++;
          if (!s.write(frame)) return void s.once('drain', pump);
        }
      };
      pump();
    });
    expect(streamed).toMatch(/^HTTP\/1\.1 413 /);
  });

  it('answers 504 when the upstream does not answer in time, and cuts off a truncated response', async () => {
    const r = await send(h.port, { host: 'a.test', path: '/hang' });
    expect(r.status).toBe(504);
    await expect(send(h.port, { host: 'a.test', path: '/truncated' })).rejects.toThrow();
  });

  it('keeps serving others while a slowloris client dribbles headers, and drops the slow one', async () => {
    const slow = connect(h.port, '127.0.0.1');
    slow.on('error', () => undefined);
    const closed = new Promise<number>((r) => slow.on('close', () => r(Date.now())));
    const started = Date.now();
    slow.write('GET / HTTP/1.1\r\nHost: a.test\r\n');
    const drip = setInterval(() => slow.write('X-A: b\r\n'), 50);
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      expect((await send(h.port, { host: 'b.test' })).status).toBe(200);
      times.push(performance.now() - t);
    }
    expect(Math.max(...times)).toBeLessThan(250);
    const closedAt = await closed;
    clearInterval(drip);
    expect(closedAt - started).toBeLessThan(2500);
  });

  it('keeps a websocket to app A open while app B is rerouted, redeployed and removed', async () => {
    const { ws } = await openWs(h.port, 'a.test', '/ws/');
    let closed = false;
    ws.on('close', () => (closed = true));
    const b2 = await startBackend('b2');
    h.setRoutes([
      { app: 'a', createdAt: '2026-01-01T00:00:00Z', routes: [route('a.test'), route('a.test', '/ws', { stripPrefix: true })] },
      { app: 'b', createdAt: '2026-01-02T00:00:00Z', routes: [route('b.test', '/v2')] },
    ]);
    h.backends.set('b', serving(b2.port));
    expect(echoOf(await send(h.port, { host: 'b.test', path: '/v2' })).backend).toBe('b2');
    h.backends.set('b', { ...serving(), state: 'sleeping' });
    h.backends.delete('b');
    h.setRoutes([{ app: 'a', createdAt: '2026-01-01T00:00:00Z', routes: [route('a.test'), route('a.test', '/ws', { stripPrefix: true })] }]);
    await b2.close();
    ws.send('still here');
    expect(await nextMessage(ws)).toBe('still here');
    expect(closed).toBe(false);
    ws.close();
    h.backends.set('b', serving(b.port));
  });

  it('never reports an app idle while a websocket is open, and does once it closes', async () => {
    h.backends.set('a', { ...serving(a.port), idleAfterMs: 300 });
    const { ws } = await openWs(h.port, 'a.test', '/ws/');
    await sleep(800);
    expect(idled).toEqual([]);
    ws.close();
    await sleep(700);
    expect(idled).toEqual(['a']);
    h.backends.set('a', serving(a.port));
  });
});
