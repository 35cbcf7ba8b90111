// Wake on request, single flight: however many requests arrive for a sleeping app, one
// waker.wake() runs; the requests wait on it and are released together the moment it resolves.
// A failed or timed-out wake starts a backoff during which requests get 503 at once, so a
// broken app is never restarted in a tight loop (peers.md §3, reliability.md F16/F17).
import type { Logger } from '../util/logger.js';
import type { ProxyMetrics } from './metrics.js';
import type { Clock, Waker } from './types.js';

export interface WakeWaiter {
  ready(): void;
  failed(retryAfterS: number): void;
}

export type HoldOutcome =
  | { held: true; cancel(): void }
  | { held: false; reason: 'QueueFull' | 'WakeBackoff'; retryAfterS: number };

interface Flight {
  app: string;
  waiters: Set<WakeWaiter>;
  abort: AbortController;
  timer: NodeJS.Timeout;
  started: number;
  settled: boolean;
}

interface Backoff {
  failures: number;
  until: number;
}

export interface WakeLimits {
  maxHeld: number;
  backoff: { initialMs: number; maxMs: number };
}

export class WakeCoordinator {
  private readonly flights = new Map<string, Flight>();
  private readonly backoffs = new Map<string, Backoff>();

  constructor(
    private readonly waker: Waker,
    private readonly clock: Clock,
    private readonly metrics: ProxyMetrics,
    private readonly log: Logger,
    private readonly limits: WakeLimits,
  ) {}

  /** Queues `waiter` on the app's wake, starting one when none is running. */
  hold(app: string, wakeTimeoutMs: number, waiter: WakeWaiter): HoldOutcome {
    const refused = this.refusal(app);
    if (refused !== undefined) return refused;
    const flight = this.flights.get(app) ?? this.start(app, wakeTimeoutMs);
    if (flight.waiters.size >= this.limits.maxHeld) {
      return { held: false, reason: 'QueueFull', retryAfterS: Math.max(1, Math.ceil((flight.started + wakeTimeoutMs - this.clock.monotonic()) / 1000)) };
    }
    flight.waiters.add(waiter);
    return { held: true, cancel: () => flight.waiters.delete(waiter) };
  }

  /** Starts a wake without holding anything (a request too large to hold). Undefined when started or already running. */
  nudge(app: string, wakeTimeoutMs: number): { retryAfterS: number } | undefined {
    const refused = this.refusal(app);
    if (refused !== undefined) return refused;
    if (!this.flights.has(app)) this.start(app, wakeTimeoutMs);
    return undefined;
  }

  held(app: string): number {
    return this.flights.get(app)?.waiters.size ?? 0;
  }

  /** Gives up every running wake: waiters get 503. */
  close(): void {
    for (const f of [...this.flights.values()]) this.settle(f, new Error('proxy closing'), false);
  }

  private refusal(app: string): (HoldOutcome & { held: false }) | undefined {
    const b = this.backoffs.get(app);
    const now = this.clock.monotonic();
    if (b === undefined || now >= b.until) return undefined;
    return { held: false, reason: 'WakeBackoff', retryAfterS: Math.max(1, Math.ceil((b.until - now) / 1000)) };
  }

  private start(app: string, wakeTimeoutMs: number): Flight {
    const flight: Flight = {
      app,
      waiters: new Set(),
      abort: new AbortController(),
      timer: setTimeout(() => this.settle(flight, Object.assign(new Error(`not serving after ${wakeTimeoutMs} ms`), { reason: 'WakeTimeout' }), true), wakeTimeoutMs),
      started: this.clock.monotonic(),
      settled: false,
    };
    flight.timer.unref();
    this.flights.set(app, flight);
    this.metrics.app(app).wakes++;
    this.log.info({ app }, 'waking app for a request');
    let wake: Promise<void>;
    try {
      wake = this.waker.wake(app, flight.abort.signal);
    } catch (e) {
      wake = Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    wake.then(
      () => this.settle(flight, undefined, true),
      (e: unknown) => this.settle(flight, e, true),
    );
    return flight;
  }

  private settle(flight: Flight, error: unknown, backoff: boolean): void {
    if (flight.settled) return;
    flight.settled = true;
    clearTimeout(flight.timer);
    this.flights.delete(flight.app);
    const app = flight.app;
    const counters = this.metrics.app(app);
    if (error === undefined) {
      const ms = this.clock.monotonic() - flight.started;
      counters.wakeLatency.add(ms);
      this.backoffs.delete(app);
      this.log.info({ app, ms: Math.round(ms), held: flight.waiters.size }, 'app woke');
      for (const w of flight.waiters) w.ready();
      return;
    }
    flight.abort.abort();
    let retryAfterS = 1;
    if (backoff) {
      counters.wakeFailures++;
      const prev = this.backoffs.get(app);
      const failures = (prev?.failures ?? 0) + 1;
      const { initialMs, maxMs } = this.limits.backoff;
      const delay = Math.min(maxMs, initialMs * 2 ** (failures - 1));
      this.backoffs.set(app, { failures, until: this.clock.monotonic() + delay });
      retryAfterS = Math.max(1, Math.ceil(delay / 1000));
      this.log.warn({ app, reason: reasonOf(error), err: error, retryInMs: delay }, 'wake failed');
    }
    for (const w of flight.waiters) w.failed(retryAfterS);
  }
}

function reasonOf(e: unknown): string {
  const r = (e as { reason?: unknown } | null)?.reason;
  return typeof r === 'string' ? r : 'WakeFailed';
}
