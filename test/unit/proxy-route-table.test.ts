import { describe, expect, it } from 'vitest';
import { buildRouteTable, normalizeHost, type RouteSource, type RouteSpec } from '../../src/proxy/route-table.js';

const r = (host: string, path = '/', extra: Partial<RouteSpec> = {}): RouteSpec => ({ host, path, stripPrefix: false, tls: false, ...extra });

const sources: RouteSource[] = [
  { app: 'site', createdAt: '2026-01-01T00:00:00Z', routes: [r('example.com'), r('Shop.Example.com', '/')] },
  { app: 'api', createdAt: '2026-01-02T00:00:00Z', routes: [r('example.com', '/api/', { stripPrefix: true }), r('example.com', '/api/v2')] },
  { app: 'docs', createdAt: '2026-01-03T00:00:00Z', routes: [r('*.example.com'), r('*.docs.example.com', '/')] },
  { app: 'catchall', createdAt: '2026-01-04T00:00:00Z', routes: [r('*.com', '/only')] },
];

describe('buildRouteTable matching', () => {
  const { table, conflicts } = buildRouteTable(sources);

  it.each([
    // [host header, target, app, strippedPath]
    ['example.com', '/', 'site', '/'],
    ['example.com', '/index.html?x=1', 'site', '/index.html?x=1'],
    ['EXAMPLE.com:8080', '/', 'site', '/'],
    ['example.com.', '/', 'site', '/'],
    ['example.com', '/api', 'api', '/'],
    ['example.com', '/api/', 'api', '/'],
    ['example.com', '/api?q=1', 'api', '/?q=1'],
    ['example.com', '/api/users/7', 'api', '/users/7'],
    ['example.com', '/apix', 'site', '/apix'],
    ['example.com', '/api/v2/x', 'api', '/api/v2/x'],
    ['example.com', '/api/v2', 'api', '/api/v2'],
    ['example.com', '/api/v20', 'api', '/v20'],
    ['shop.example.com', '/cart', 'site', '/cart'],
    ['blog.example.com', '/', 'docs', '/'],
    ['a.b.example.com', '/x', 'docs', '/x'],
    ['v1.docs.example.com', '/x', 'docs', '/x'],
    ['other.com', '/only/x', 'catchall', '/only/x'],
    ['blog.example.com', '/only', 'docs', '/only'],
  ])('%s%s → %s %s', (host, target, app, stripped) => {
    const m = table.match(host, target);
    expect(m?.app).toBe(app);
    expect(m?.strippedPath).toBe(stripped);
  });

  it.each([
    ['example.org', '/'],
    ['com', '/only'],
    ['other.com', '/'],
    ['evil"<x>.example.com', '/'],
    ['', '/'],
  ])('%s%s matches nothing', (host, target) => {
    expect(table.match(host, target)).toBeUndefined();
  });

  it('a wildcard does not match its bare domain', () => {
    const t = buildRouteTable([{ app: 'w', createdAt: '2026-01-01T00:00:00Z', routes: [r('*.lan')] }]).table;
    expect(t.match('lan', '/')).toBeUndefined();
    expect(t.match('x.lan', '/')?.app).toBe('w');
  });

  it('has no conflicts and lists the routes per app', () => {
    expect(conflicts).toEqual([]);
    expect(table.routesFor('api').map((x) => x.path)).toEqual(['/api', '/api/v2']);
    expect(table.routesFor('nobody')).toEqual([]);
  });

  it('is immutable', () => {
    expect(Object.isFrozen(table)).toBe(true);
    expect(Object.isFrozen(table.routes)).toBe(true);
    expect(Object.isFrozen(table.routes[0])).toBe(true);
  });
});

describe('buildRouteTable conflicts', () => {
  it('gives a host+path to the earliest createdAt, whatever the input order', () => {
    const a: RouteSource = { app: 'zeta', createdAt: '2026-01-01T00:00:00Z', routes: [r('x.test', '/')] };
    const b: RouteSource = { app: 'alpha', createdAt: '2026-02-01T00:00:00Z', routes: [r('X.test', '/'), r('x.test', '/own')] };
    for (const input of [[a, b], [b, a]]) {
      const { table, conflicts } = buildRouteTable(input);
      expect(table.match('x.test', '/')?.app).toBe('zeta');
      expect(table.match('x.test', '/own')?.app).toBe('alpha');
      expect(conflicts).toEqual([{ app: 'alpha', host: 'x.test', path: '/', winner: 'zeta' }]);
    }
  });

  it('breaks a createdAt tie by app name, and compares times, not strings', () => {
    const same = '2026-01-01T00:00:00Z';
    const { conflicts } = buildRouteTable([
      { app: 'b', createdAt: same, routes: [r('t.test', '/p/')] },
      { app: 'a', createdAt: '2026-01-01T00:00:00.000+00:00', routes: [r('t.test', '/p')] },
      { app: 'c', createdAt: same, routes: [r('t.test', '/p')] },
    ]);
    expect(conflicts).toEqual([
      { app: 'b', host: 't.test', path: '/p', winner: 'a' },
      { app: 'c', host: 't.test', path: '/p', winner: 'a' },
    ]);
  });

  it('promotes the loser when the winner is removed', () => {
    const loser: RouteSource = { app: 'late', createdAt: '2026-03-01T00:00:00Z', routes: [r('p.test')] };
    const { table } = buildRouteTable([loser]);
    expect(table.match('p.test', '/')?.app).toBe('late');
  });

  it('does not count the same app listing a host+path twice', () => {
    const { table, conflicts } = buildRouteTable([{ app: 'dup', createdAt: '2026-01-01T00:00:00Z', routes: [r('d.test', '/a'), r('D.test', '/a/', { stripPrefix: true })] }]);
    expect(conflicts).toEqual([]);
    expect(table.routes).toHaveLength(1);
    expect(table.match('d.test', '/a/x')?.strippedPath).toBe('/a/x');
  });

  it('ranks an unparseable createdAt last', () => {
    const { conflicts } = buildRouteTable([
      { app: 'a', createdAt: 'garbage', routes: [r('g.test')] },
      { app: 'b', createdAt: '2030-01-01T00:00:00Z', routes: [r('g.test')] },
    ]);
    expect(conflicts).toEqual([{ app: 'a', host: 'g.test', path: '/', winner: 'b' }]);
  });
});

describe('normalizeHost', () => {
  it.each([
    ['Example.COM', 'example.com'],
    ['example.com:8443', 'example.com'],
    ['example.com.', 'example.com'],
    ['[::1]:8080', '[::1]'],
    ['127.0.0.1:80', '127.0.0.1'],
  ])('%s → %s', (input, out) => expect(normalizeHost(input)).toBe(out));
});
