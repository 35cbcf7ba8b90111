// The route table: a pure function of every app's routes, rebuilt whole and swapped in by
// reference (Traefik/caddy-docker-proxy style), so a request keeps the table it started with
// and one app's change never touches another app's connections.
//
// Matching: host first (exact, then `*.suffix` wildcards from the longest suffix down; a
// wildcard covers one or more labels), then the longest path prefix on whole segments. When
// the most specific host has no matching path the next less specific host is tried, so a
// `*.example.com` catch-all still answers paths an exact host does not route.

export interface RouteSpec {
  host: string;
  path: string;
  stripPrefix: boolean;
  /** Name of the app secret holding the bearer token; absent = no auth. */
  bearerSecret?: string;
  tls: boolean;
}

export interface RouteSource {
  app: string;
  /** ISO time the app was first accepted; the earliest claim of a host+path wins. */
  createdAt: string;
  routes: readonly RouteSpec[];
}

/** A route as served: host lower-cased, path without trailing slash ('/' for the root). */
export interface Route extends Readonly<RouteSpec> {
  readonly app: string;
}

export interface RouteMatch {
  app: string;
  route: Route;
  /** The request target (path and query) to send upstream, with the prefix removed when stripPrefix. */
  strippedPath: string;
}

export interface RouteConflict {
  app: string;
  host: string;
  path: string;
  winner: string;
}

export interface RouteTable {
  /** `host` is the Host header (any case, optional :port); `target` the request target (path + query). */
  match(host: string, target: string): RouteMatch | undefined;
  readonly routes: readonly Route[];
  routesFor(app: string): readonly Route[];
}

export function buildRouteTable(sources: readonly RouteSource[]): { table: RouteTable; conflicts: RouteConflict[] } {
  const ordered = [...sources].sort(byClaimOrder);
  const owners = new Map<string, string>();
  const winners: Route[] = [];
  const conflicts: RouteConflict[] = [];
  for (const source of ordered) {
    for (const spec of source.routes) {
      const host = normalizeRouteHost(spec.host);
      const path = normalizeRoutePath(spec.path);
      const key = `${host} ${path}`;
      const owner = owners.get(key);
      if (owner === undefined) {
        owners.set(key, source.app);
        winners.push(Object.freeze({ ...spec, app: source.app, host, path }));
      } else if (owner !== source.app) {
        conflicts.push({ app: source.app, host, path, winner: owner });
      }
    }
  }
  return { table: new FrozenRouteTable(winners), conflicts };
}

/** The Host header's host name: lower-cased, port and trailing dot removed; IPv6 literals keep their brackets. */
export function normalizeHost(header: string): string {
  let end = header.length;
  if (header.charCodeAt(0) === 0x5b /* [ */) {
    const close = header.indexOf(']');
    if (close > 0) end = close + 1;
  } else {
    const colon = header.indexOf(':');
    if (colon >= 0) end = colon;
  }
  if (end > 0 && header.charCodeAt(end - 1) === 0x2e /* . */) end--;
  return (end === header.length ? header : header.slice(0, end)).toLowerCase();
}

function normalizeRouteHost(host: string): string {
  return normalizeHost(host.trim());
}

/** The identity of a route claim (host and path as the table compares them), for admission checks. */
export function routeClaimKey(host: string, path: string): string {
  return `${normalizeRouteHost(host)}${normalizeRoutePath(path)}`;
}

function normalizeRoutePath(path: string): string {
  let p = path.trim();
  if (!p.startsWith('/')) p = `/${p}`;
  while (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

function byClaimOrder(a: RouteSource, b: RouteSource): number {
  const ta = claimTime(a.createdAt);
  const tb = claimTime(b.createdAt);
  if (ta !== tb) return ta < tb ? -1 : 1;
  // Code-unit order, not localeCompare: the same on every machine and locale.
  return a.app < b.app ? -1 : a.app > b.app ? 1 : 0;
}

function claimTime(iso: string): number {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t;
}

// Wildcard suffixes only ever match hosts made of DNS label characters, so a crafted Host
// header cannot ride a wildcard into a redirect Location or a log line.
const DNS_NAME = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;

class FrozenRouteTable implements RouteTable {
  readonly routes: readonly Route[];
  private readonly exact = new Map<string, Route[]>();
  private readonly wildcard = new Map<string, Route[]>();
  private readonly byApp = new Map<string, Route[]>();

  constructor(routes: Route[]) {
    this.routes = Object.freeze(routes);
    for (const r of routes) {
      const isWildcard = r.host.startsWith('*.');
      const map = isWildcard ? this.wildcard : this.exact;
      const key = isWildcard ? r.host.slice(2) : r.host;
      const list = map.get(key) ?? [];
      list.push(r);
      map.set(key, list);
      const mine = this.byApp.get(r.app) ?? [];
      mine.push(r);
      this.byApp.set(r.app, mine);
    }
    // Longest path first; equal lengths cannot both match one request (paths are unique per host).
    for (const list of [...this.exact.values(), ...this.wildcard.values()]) list.sort((a, b) => b.path.length - a.path.length);
    Object.freeze(this);
  }

  match(hostHeader: string, target: string): RouteMatch | undefined {
    const host = normalizeHost(hostHeader);
    const exact = this.exact.get(host);
    if (exact !== undefined) {
      const m = matchPath(exact, target);
      if (m !== undefined) return m;
    }
    if (this.wildcard.size === 0 || !DNS_NAME.test(host)) return undefined;
    for (let dot = host.indexOf('.'); dot !== -1; dot = host.indexOf('.', dot + 1)) {
      const list = this.wildcard.get(host.slice(dot + 1));
      if (list === undefined) continue;
      const m = matchPath(list, target);
      if (m !== undefined) return m;
    }
    return undefined;
  }

  routesFor(app: string): readonly Route[] {
    return this.byApp.get(app) ?? [];
  }
}

function matchPath(routes: readonly Route[], target: string): RouteMatch | undefined {
  for (const route of routes) {
    const p = route.path;
    if (p === '/') return { app: route.app, route, strippedPath: target };
    if (!target.startsWith(p)) continue;
    const next = target.charCodeAt(p.length);
    // A whole segment: '/api' matches '/api', '/api/…' and '/api?…', never '/apix'.
    if (target.length !== p.length && next !== 0x2f /* / */ && next !== 0x3f /* ? */) continue;
    if (!route.stripPrefix) return { app: route.app, route, strippedPath: target };
    const rest = target.slice(p.length);
    return { app: route.app, route, strippedPath: rest.charCodeAt(0) === 0x2f ? rest : `/${rest}` };
  }
  return undefined;
}
