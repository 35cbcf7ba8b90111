import { describe, expect, it } from 'vitest';
import { UpstreamPool } from '../../src/proxy/upstream-pool.js';

const limits = { max: 8, maxIdle: 4, idleTimeoutMs: 1000 };

describe('UpstreamPool', () => {
  it('round-robins over endpoints and reuses one agent per endpoint', () => {
    const pool = new UpstreamPool(limits);
    const eps = [{ host: '10.0.0.1', port: 80 }, { host: '10.0.0.2', port: 80 }];
    const picks = [1, 2, 3, 4].map(() => pool.pick('a', eps)!.key);
    expect(picks).toEqual(['10.0.0.1:80', '10.0.0.2:80', '10.0.0.1:80', '10.0.0.2:80']);
    expect(pool.pick('b', [{ host: '10.0.0.1', port: 80 }])!.agent).toBe(pool.pick('a', eps)!.agent);
    pool.close();
  });

  it('skips the endpoint that just failed when there is another', () => {
    const pool = new UpstreamPool(limits);
    const eps = [{ host: '10.0.0.1', port: 80 }, { host: '10.0.0.2', port: 80 }];
    const first = pool.pick('a', eps)!;
    expect(pool.pick('a', eps, first)!.key).not.toBe(first.key);
    expect(pool.pick('a', [eps[0]!], first)!.key).toBe(first.key);
    pool.close();
  });

  it('retires an endpoint no app lists any more, keeping shared ones', () => {
    const pool = new UpstreamPool(limits);
    const shared = { host: '10.0.0.9', port: 80 };
    const old = pool.pick('a', [{ host: '10.0.0.1', port: 80 }])!;
    pool.pick('b', [shared]);
    pool.pick('a', [shared]);
    pool.update('a', [shared]);
    expect(pool.stats().map((s) => s.endpoint)).toEqual(['10.0.0.9:80']);
    expect(old.agent.maxFreeSockets).toBe(0);
    pool.update('a', []);
    expect(pool.stats().map((s) => s.endpoint)).toEqual(['10.0.0.9:80']);
    pool.update('b', []);
    expect(pool.stats()).toEqual([]);
    pool.close();
  });
});
