// Counters the proxy keeps per app, cheap to bump on the hot path; snapshot() is what the lead
// renders into Prometheus text and status files.

/** The last `size` samples in a ring; quantiles are computed on snapshot, not per sample. */
export class Reservoir {
  private readonly samples: Float64Array;
  private count = 0;

  constructor(size = 256) {
    this.samples = new Float64Array(size);
  }

  add(v: number): void {
    this.samples[this.count % this.samples.length] = v;
    this.count++;
  }

  quantile(q: number): number | undefined {
    const n = Math.min(this.count, this.samples.length);
    if (n === 0) return undefined;
    const sorted = this.samples.slice(0, n).sort();
    return sorted[Math.min(n - 1, Math.ceil(q * n) - 1)];
  }
}

type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx';
const CLASSES: readonly StatusClass[] = ['1xx', '2xx', '3xx', '4xx', '5xx'];

export interface AppCounters {
  /** Responses by status class, including berth's own (401, 502, 503…). */
  responses: Record<StatusClass, number>;
  wakes: number;
  wakeFailures: number;
  /** Responses delivered after waiting for a wake. */
  coldStarts: number;
  /** Connection failures and timeouts towards the app's containers. */
  upstreamErrors: number;
  wakeLatency: Reservoir;
}

export interface AppMetricsSnapshot {
  requests: Record<StatusClass, number> & { total: number };
  inFlight: number;
  openStreams: number;
  held: number;
  wakes: number;
  wakeFailures: number;
  coldStarts: number;
  upstreamErrors: number;
  /** Request to serving, over the last 256 wakes, ms; undefined before the first. */
  wakeLatencyMs: { p50: number | undefined; p95: number | undefined };
  lastActivity: string | undefined;
}

export interface ProxyMetricsSnapshot {
  apps: Record<string, AppMetricsSnapshot>;
  /** Requests for hosts/paths no route matches. */
  unrouted: number;
  upstreams: { endpoint: string; active: number; idle: number }[];
}

export interface SnapshotSources {
  /** Apps with activity but maybe no counted response yet (an open websocket). */
  apps(): string[];
  activity(app: string): { inFlight: number; openStreams: number; lastActivity: Date } | undefined;
  held(app: string): number;
  upstreams(): { endpoint: string; active: number; idle: number }[];
}

export class ProxyMetrics {
  private readonly apps = new Map<string, AppCounters>();
  unrouted = 0;

  constructor(private readonly sources: SnapshotSources) {}

  app(name: string): AppCounters {
    let c = this.apps.get(name);
    if (c === undefined) {
      c = { responses: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }, wakes: 0, wakeFailures: 0, coldStarts: 0, upstreamErrors: 0, wakeLatency: new Reservoir() };
      this.apps.set(name, c);
    }
    return c;
  }

  response(name: string, status: number): void {
    const cls = CLASSES[((status / 100) | 0) - 1];
    if (cls !== undefined) this.app(name).responses[cls]++;
  }

  snapshot(): ProxyMetricsSnapshot {
    const apps: Record<string, AppMetricsSnapshot> = {};
    const names = new Set([...this.apps.keys(), ...this.sources.apps()]);
    for (const name of [...names].sort()) {
      const c = this.app(name);
      const act = this.sources.activity(name);
      const r = c.responses;
      apps[name] = {
        requests: { ...r, total: r['1xx'] + r['2xx'] + r['3xx'] + r['4xx'] + r['5xx'] },
        inFlight: act?.inFlight ?? 0,
        openStreams: act?.openStreams ?? 0,
        held: this.sources.held(name),
        wakes: c.wakes,
        wakeFailures: c.wakeFailures,
        coldStarts: c.coldStarts,
        upstreamErrors: c.upstreamErrors,
        wakeLatencyMs: { p50: c.wakeLatency.quantile(0.5), p95: c.wakeLatency.quantile(0.95) },
        lastActivity: act?.lastActivity.toISOString(),
      };
    }
    return { apps, unrouted: this.unrouted, upstreams: this.sources.upstreams() };
  }
}
