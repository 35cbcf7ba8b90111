import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../src/util/logger.js';
import { ProxyMetrics } from '../../src/proxy/metrics.js';
import { WakeCoordinator, type WakeWaiter } from '../../src/proxy/wake-coordinator.js';
import type { Clock, Waker } from '../../src/proxy/types.js';

const clock: Clock = { monotonic: () => Date.now(), now: () => new Date() };

interface Pending {
  resolve(): void;
  reject(e: Error): void;
  signal: AbortSignal;
}

function controllableWaker(): Waker & { calls: Pending[] } {
  const calls: Pending[] = [];
  return {
    calls,
    wake: (_app, signal) =>
      new Promise<void>((resolve, reject) => {
        calls.push({ resolve, reject, signal });
      }),
  };
}

function recorder(): WakeWaiter & { outcome: string | undefined } {
  const w = {
    outcome: undefined as string | undefined,
    ready: () => (w.outcome = 'ready'),
    failed: (s: number) => (w.outcome = `failed:${s}`),
  };
  return w;
}

describe('WakeCoordinator', () => {
  let waker: ReturnType<typeof controllableWaker>;
  let metrics: ProxyMetrics;
  let wakes: WakeCoordinator;

  beforeEach(() => {
    vi.useFakeTimers();
    waker = controllableWaker();
    metrics = new ProxyMetrics({ apps: () => [], activity: () => undefined, held: () => 0, upstreams: () => [] });
    wakes = new WakeCoordinator(waker, clock, metrics, silentLogger, { maxHeld: 3, backoff: { initialMs: 2000, maxMs: 8000 } });
  });
  afterEach(() => vi.useRealTimers());

  it('runs one wake for many waiters and releases them all when it resolves', async () => {
    const ws = [recorder(), recorder(), recorder()];
    for (const w of ws) expect(wakes.hold('a', 10_000, w).held).toBe(true);
    expect(waker.calls).toHaveLength(1);
    expect(wakes.held('a')).toBe(3);
    vi.advanceTimersByTime(250);
    waker.calls[0]!.resolve();
    await Promise.resolve();
    await Promise.resolve();
    expect(ws.map((w) => w.outcome)).toEqual(['ready', 'ready', 'ready']);
    expect(wakes.held('a')).toBe(0);
    expect(metrics.snapshot().apps.a).toMatchObject({ wakes: 1, wakeFailures: 0, wakeLatencyMs: { p50: 250 } });
  });

  it('caps the queue per app', () => {
    for (let i = 0; i < 3; i++) wakes.hold('a', 10_000, recorder());
    const over = wakes.hold('a', 10_000, recorder());
    expect(over).toMatchObject({ held: false, reason: 'QueueFull' });
  });

  it('forgets a waiter that gave up', () => {
    const w = wakes.hold('a', 10_000, recorder());
    if (w.held) w.cancel();
    expect(wakes.held('a')).toBe(0);
  });

  it('times out: waiters fail with Retry-After, the wake is aborted, and a backoff follows', async () => {
    const w = recorder();
    wakes.hold('a', 5000, w);
    vi.advanceTimersByTime(5000);
    expect(w.outcome).toBe('failed:2');
    expect(waker.calls[0]!.signal.aborted).toBe(true);
    expect(wakes.hold('a', 5000, recorder())).toMatchObject({ held: false, reason: 'WakeBackoff', retryAfterS: 2 });
    expect(waker.calls).toHaveLength(1);
    // A late resolution of the abandoned wake changes nothing.
    waker.calls[0]!.resolve();
    await Promise.resolve();
    expect(w.outcome).toBe('failed:2');
  });

  it('backs off exponentially after failures, up to the cap, and resets on success', async () => {
    const fail = async (expected: string) => {
      const w = recorder();
      expect(wakes.hold('a', 60_000, w).held).toBe(true);
      waker.calls.at(-1)!.reject(Object.assign(new Error('boom'), { reason: 'ImageMissing' }));
      await Promise.resolve();
      await Promise.resolve();
      expect(w.outcome).toBe(expected);
    };
    await fail('failed:2');
    vi.advanceTimersByTime(1999);
    expect(wakes.hold('a', 60_000, recorder()).held).toBe(false);
    vi.advanceTimersByTime(1);
    await fail('failed:4');
    vi.advanceTimersByTime(4000);
    await fail('failed:8');
    vi.advanceTimersByTime(8000);
    await fail('failed:8');
    expect(waker.calls).toHaveLength(4);
    vi.advanceTimersByTime(8000);
    const ok = recorder();
    wakes.hold('a', 60_000, ok);
    waker.calls.at(-1)!.resolve();
    await Promise.resolve();
    await Promise.resolve();
    expect(ok.outcome).toBe('ready');
    await fail('failed:2');
  });

  it('treats a waker that throws synchronously as a failed wake', async () => {
    const throwing = new WakeCoordinator({ wake: () => { throw new Error('sync'); } }, clock, metrics, silentLogger, { maxHeld: 3, backoff: { initialMs: 1000, maxMs: 1000 } });
    const w = recorder();
    throwing.hold('a', 1000, w);
    await Promise.resolve();
    await Promise.resolve();
    expect(w.outcome).toBe('failed:1');
  });
});
