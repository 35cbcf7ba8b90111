// Keep-alive connections to upstreams: one http.Agent per endpoint (host:port), bounded, and
// retired when no app lists that endpoint any more. A retired agent lets in-flight requests
// finish (an old container draining after a switch) but keeps no socket afterwards.
import { Agent } from 'node:http';
import type { Endpoint } from './types.js';

export interface Upstream {
  readonly host: string;
  readonly port: number;
  readonly key: string;
  readonly agent: Agent;
}

export interface PoolLimits {
  max: number;
  maxIdle: number;
  idleTimeoutMs: number;
}

interface AppPool {
  next: number;
  keys: Set<string>;
}

export class UpstreamPool {
  private readonly upstreams = new Map<string, Upstream>();
  // Endpoint objects are replaced, not edited, when backends change: caching by identity saves a key string per request.
  private byEndpoint = new WeakMap<Endpoint, Upstream>();
  private readonly apps = new Map<string, AppPool>();

  constructor(private readonly limits: PoolLimits) {}

  /** The next endpoint of `app` in round-robin order, skipping `avoid` when another exists. */
  pick(app: string, endpoints: readonly Endpoint[], avoid?: Upstream): Upstream | undefined {
    const n = endpoints.length;
    if (n === 0) return undefined;
    let pool = this.apps.get(app);
    if (pool === undefined) {
      pool = { next: 0, keys: new Set() };
      this.apps.set(app, pool);
    }
    let up = this.upstreamFor(pool, endpoints[pool.next++ % n] as Endpoint);
    if (avoid !== undefined && up === avoid && n > 1) up = this.upstreamFor(pool, endpoints[pool.next++ % n] as Endpoint);
    if (pool.next > 1e9) pool.next = 0;
    return up;
  }

  /** The app now has these endpoints (or none): retire agents no app uses any more. */
  update(app: string, endpoints: readonly Endpoint[]): void {
    const pool = this.apps.get(app);
    if (pool === undefined) return;
    const live = new Set(endpoints.map(keyOf));
    const gone = [...pool.keys].filter((k) => !live.has(k));
    pool.keys = new Set([...pool.keys].filter((k) => live.has(k)));
    if (endpoints.length === 0) this.apps.delete(app);
    for (const key of gone) {
      if ([...this.apps.values()].some((p) => p.keys.has(key))) continue;
      const up = this.upstreams.get(key);
      if (up === undefined) continue;
      this.upstreams.delete(key);
      retire(up.agent);
    }
    this.byEndpoint = new WeakMap();
  }

  /** Sockets per upstream, for metrics: active and idle. */
  stats(): { endpoint: string; active: number; idle: number }[] {
    return [...this.upstreams.values()].map((u) => ({ endpoint: u.key, active: countSockets(u.agent.sockets), idle: countSockets(u.agent.freeSockets) }));
  }

  close(): void {
    for (const up of this.upstreams.values()) up.agent.destroy();
    this.upstreams.clear();
    this.apps.clear();
    this.byEndpoint = new WeakMap();
  }

  private upstreamFor(pool: AppPool, ep: Endpoint): Upstream {
    let up = this.byEndpoint.get(ep);
    if (up !== undefined) return up;
    const key = keyOf(ep);
    up = this.upstreams.get(key);
    if (up === undefined) {
      const agent = new Agent({
        keepAlive: true,
        maxSockets: this.limits.max,
        maxFreeSockets: this.limits.maxIdle,
        // Idle sockets only; a shorter Keep-Alive hint from the upstream wins (Node's agent reads it).
        timeout: this.limits.idleTimeoutMs,
        // Reuse the most recently used socket so surplus ones idle out.
        scheduling: 'lifo',
      });
      up = { host: ep.host, port: ep.port, key, agent };
      this.upstreams.set(key, up);
    }
    pool.keys.add(key);
    this.byEndpoint.set(ep, up);
    return up;
  }
}

function keyOf(ep: Endpoint): string {
  return `${ep.host}:${ep.port}`;
}

function retire(agent: Agent): void {
  agent.maxFreeSockets = 0;
  for (const list of Object.values(agent.freeSockets)) for (const s of list ?? []) s.destroy();
}

function countSockets(sets: NodeJS.ReadOnlyDict<unknown[]>): number {
  let n = 0;
  for (const list of Object.values(sets)) n += list?.length ?? 0;
  return n;
}
