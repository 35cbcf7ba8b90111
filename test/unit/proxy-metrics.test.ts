import { describe, expect, it } from 'vitest';
import { ProxyMetrics, Reservoir } from '../../src/proxy/metrics.js';

describe('Reservoir', () => {
  it('answers quantiles over the last samples only', () => {
    const r = new Reservoir(100);
    expect(r.quantile(0.5)).toBeUndefined();
    for (let i = 1; i <= 100; i++) r.add(i);
    expect(r.quantile(0.5)).toBe(50);
    expect(r.quantile(0.95)).toBe(95);
    for (let i = 0; i < 100; i++) r.add(1000);
    expect(r.quantile(0.5)).toBe(1000);
  });
});

describe('ProxyMetrics', () => {
  it('counts responses by class and snapshots per app in name order', () => {
    const m = new ProxyMetrics({ apps: () => ['c'], activity: () => undefined, held: (app) => (app === 'b' ? 3 : 0), upstreams: () => [] });
    m.response('b', 200);
    m.response('b', 204);
    m.response('b', 503);
    m.response('a', 404);
    m.app('b').wakes++;
    m.app('b').wakeLatency.add(300);
    const s = m.snapshot();
    expect(Object.keys(s.apps)).toEqual(['a', 'b', 'c']);
    expect(s.apps.b).toMatchObject({ requests: { '2xx': 2, '5xx': 1, total: 3 }, held: 3, wakes: 1, wakeLatencyMs: { p50: 300, p95: 300 } });
    expect(s.apps.a?.requests['4xx']).toBe(1);
  });
});
