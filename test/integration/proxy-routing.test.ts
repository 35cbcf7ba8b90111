// Routing through the proxy with real HTTP on loopback: hosts, paths, auth, redirects,
// reserved paths, forwarding headers and errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoOf, route, send, serving, startBackend, startProxy, type Backend, type Harness } from '../helpers/http-backends.js';

describe('proxy routing', () => {
  let site: Backend;
  let api: Backend;
  let wild: Backend;
  let h: Harness;

  beforeAll(async () => {
    [site, api, wild] = await Promise.all([startBackend('site'), startBackend('api'), startBackend('wild')]);
    h = await startProxy({ secrets: { api: { API_TOKEN: 'let-me-in' } }, options: { httpsPort: 8443 } });
    h.backends.set('site', serving(site.port));
    h.backends.set('api', serving(api.port));
    h.backends.set('wild', serving(wild.port));
    h.backends.set('secure', serving(site.port));
    h.setRoutes([
      { app: 'site', createdAt: '2026-01-01T00:00:00Z', routes: [route('app.test', '/')] },
      { app: 'api', createdAt: '2026-01-02T00:00:00Z', routes: [route('app.test', '/api', { stripPrefix: true }), route('app.test', '/private', { bearerSecret: 'API_TOKEN' })] },
      { app: 'wild', createdAt: '2026-01-03T00:00:00Z', routes: [route('*.wild.test')] },
      { app: 'secure', createdAt: '2026-01-04T00:00:00Z', routes: [route('secure.test', '/', { tls: true })] },
    ]);
  });
  afterAll(async () => {
    await h.close();
    await Promise.all([site.close(), api.close(), wild.close()]);
  });

  it('splits one host between two apps by path, stripping the prefix where asked', async () => {
    const root = await send(h.port, { host: 'app.test', path: '/index.html?x=1' });
    expect(echoOf(root)).toMatchObject({ backend: 'site', url: '/index.html?x=1' });
    const apiReply = await send(h.port, { host: 'APP.test:8080', path: '/api/users?id=7' });
    expect(echoOf(apiReply)).toMatchObject({ backend: 'api', url: '/users?id=7' });
    expect(echoOf(await send(h.port, { host: 'app.test', path: '/api' })).url).toBe('/');
    expect(echoOf(await send(h.port, { host: 'app.test', path: '/apix' })).backend).toBe('site');
  });

  it('serves a wildcard host at any depth', async () => {
    expect(echoOf(await send(h.port, { host: 'a.wild.test' })).backend).toBe('wild');
    expect(echoOf(await send(h.port, { host: 'x.y.wild.test' })).backend).toBe('wild');
    expect((await send(h.port, { host: 'wild.test' })).status).toBe(404);
  });

  it('answers an unknown host with a small 404 that names no internals, in the flavour asked for', async () => {
    const html = await send(h.port, { host: 'nobody.test', headers: { accept: 'text/html' } });
    expect(html.status).toBe(404);
    expect(html.headers['content-type']).toContain('text/html');
    const json = await send(h.port, { host: 'nobody.test', headers: { accept: 'application/json' } });
    expect(JSON.parse(json.text)).toMatchObject({ status: 404 });
    const plain = await send(h.port, { host: 'nobody.test' });
    for (const r of [html, json, plain]) {
      expect(r.text).not.toMatch(/127\.0\.0\.1|\bapi\b|wild|berth|:\d{4,5}/i);
      expect(r.body.length).toBeLessThan(1024);
    }
    expect(h.proxy.metrics.snapshot().unrouted).toBeGreaterThanOrEqual(3);
  });

  it('sets X-Forwarded-For/Proto/Host itself and drops spoofed ones and hop-by-hop headers', async () => {
    const r = await send(h.port, {
      rawHeaders: [
        'Host', 'app.test',
        'X-Forwarded-For', '6.6.6.6',
        'X-Forwarded-Proto', 'https',
        'X-Forwarded-Host', 'evil.test',
        'Forwarded', 'for=6.6.6.6;proto=https',
        'X-Real-IP', '6.6.6.6',
        'Connection', 'keep-alive, X-Drop-Me',
        'X-Drop-Me', 'secret',
        'Keep-Alive', 'timeout=99',
        'Proxy-Authorization', 'Basic Zm9v',
        'Cookie', 'a=1',
        'X-Custom', 'kept',
      ],
    });
    const e = echoOf(r);
    expect(e.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(e.headers['x-forwarded-proto']).toBe('http');
    expect(e.headers['x-forwarded-host']).toBe('app.test');
    for (const gone of ['forwarded', 'x-real-ip', 'x-drop-me', 'proxy-authorization']) expect(e.headers[gone]).toBeUndefined();
    expect(e.headers['keep-alive']).toBeUndefined();
    expect(e.headers.cookie).toBe('a=1');
    expect(e.headers['x-custom']).toBe('kept');
    // The backend answered with `Connection: keep-alive, x-secret-hop` and an x-secret-hop header.
    expect(r.headers['x-secret-hop']).toBeUndefined();
    expect(r.headers['keep-alive']).not.toBe('timeout=5');
    expect(r.headers['x-backend']).toBe('site');
  });

  it('requires the bearer token on a protected route, and passes Authorization on', async () => {
    const none = await send(h.port, { host: 'app.test', path: '/private' });
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    expect((await send(h.port, { host: 'app.test', path: '/private', headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const ok = await send(h.port, { host: 'app.test', path: '/private/x', headers: { authorization: 'Bearer let-me-in' } });
    expect(ok.status).toBe(200);
    expect(echoOf(ok).headers.authorization).toBe('Bearer let-me-in');
  });

  it('refuses dot segments that could slip past a protected prefix', async () => {
    expect((await send(h.port, { host: 'app.test', path: '/public/../private' })).status).toBe(400);
    expect((await send(h.port, { host: 'app.test', path: '/public/%2e%2e/private' })).status).toBe(400);
  });

  it('redirects plain HTTP to HTTPS for a TLS route, keeping path and query', async () => {
    const r = await send(h.port, { host: 'Secure.test:8080', path: '/a/b?c=d', method: 'POST', body: 'x' });
    expect(r.status).toBe(308);
    expect(r.headers.location).toBe('https://secure.test:8443/a/b?c=d');
  });

  it('reserves /_berth/ on every host and serves registered handlers and ACME challenges there', async () => {
    const remove = h.proxy.addReservedHandler('/_berth/webhook', (req, res, ctx) => {
      res.writeHead(202, { 'content-type': 'text/plain' });
      res.end(`hook ${req.method} ${ctx.host} ${ctx.secure}`);
    });
    h.proxy.addReservedHandler('/.well-known/acme-challenge/', (req, res) => {
      res.end(`token for ${req.url}`);
    });
    const hook = await send(h.port, { host: 'secure.test', path: '/_berth/webhook', method: 'POST', body: '{}' });
    expect(hook.status).toBe(202);
    expect(hook.text).toBe('hook POST secure.test false');
    // ACME answers on hosts without routes and is never redirected to HTTPS.
    expect((await send(h.port, { host: 'unknown.test', path: '/.well-known/acme-challenge/abc' })).text).toBe('token for /.well-known/acme-challenge/abc');
    expect((await send(h.port, { host: 'secure.test', path: '/.well-known/acme-challenge/abc' })).status).toBe(200);
    expect((await send(h.port, { host: 'app.test', path: '/_berth/healthz' })).text).toBe('ok\n');
    expect((await send(h.port, { host: 'app.test', path: '/_berth/other' })).status).toBe(404);
    remove();
    expect((await send(h.port, { host: 'app.test', path: '/_berth/webhook', method: 'POST' })).status).toBe(404);
    expect(() => h.proxy.addReservedHandler('/api', () => undefined)).toThrow();
  });

  it('turns a throwing reserved handler into a 500, not a crash', async () => {
    h.proxy.addReservedHandler('/_berth/broken', () => Promise.reject(new Error('oops')));
    expect((await send(h.port, { host: 'app.test', path: '/_berth/broken' })).status).toBe(500);
  });

  it('answers 502 when the backend is down, and round-robins over endpoints', async () => {
    const down = await startBackend('down');
    await down.close();
    h.backends.set('api', serving(down.port));
    const r = await send(h.port, { host: 'app.test', path: '/api/x', headers: { accept: 'application/json' } });
    expect(r.status).toBe(502);
    expect(JSON.parse(r.text)).toMatchObject({ status: 502 });
    expect(h.proxy.metrics.snapshot().apps.api?.upstreamErrors).toBeGreaterThanOrEqual(1);

    // A dead endpoint next to a live one: connection refused moves on to the live one.
    h.backends.set('api', serving(down.port, api.port));
    const backends = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const ok = await send(h.port, { host: 'app.test', path: '/api/x' });
      expect(ok.status).toBe(200);
      backends.add(echoOf(ok).backend);
    }
    expect(backends).toEqual(new Set(['api']));

    const second = await startBackend('api2');
    h.backends.set('api', serving(api.port, second.port));
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add(echoOf(await send(h.port, { host: 'app.test', path: '/api/x' })).backend);
    expect(seen).toEqual(new Set(['api', 'api2']));
    h.backends.set('api', serving(api.port));
    await second.close();
  });

  it('answers 503 with Retry-After for an app that is unavailable or unknown to the controller', async () => {
    h.backends.set('wild', { ...serving(), state: 'unavailable', reason: 'CrashLoop' });
    const r = await send(h.port, { host: 'a.wild.test' });
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('5');
    expect(r.text).not.toContain('CrashLoop');
    h.backends.delete('wild');
    expect((await send(h.port, { host: 'a.wild.test' })).status).toBe(503);
    h.backends.set('wild', serving(wild.port));
  });

  it('counts responses per app by status class', () => {
    const s = h.proxy.metrics.snapshot();
    expect(s.apps.site?.requests['2xx']).toBeGreaterThan(0);
    expect(s.apps.api?.requests['4xx']).toBeGreaterThanOrEqual(2);
    expect(s.apps.api?.requests['5xx']).toBeGreaterThanOrEqual(1);
  });
});
