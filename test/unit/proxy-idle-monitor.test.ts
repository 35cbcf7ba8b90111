import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ActivityTracker } from '../../src/proxy/activity-tracker.js';
import { BackendRegistry } from '../../src/proxy/backend-registry.js';
import { IdleMonitor } from '../../src/proxy/idle-monitor.js';
import type { AppBackend, Clock } from '../../src/proxy/types.js';

// Simulated time: vitest's fake timers drive setTimeout and Date together; the monotonic clock reads Date.
const clock: Clock = { monotonic: () => Date.now(), now: () => new Date() };
const MIN = 60_000;

function serving(idleAfterMs?: number): AppBackend {
  return { state: 'serving', endpoints: [{ host: '127.0.0.1', port: 1 }], wakeTimeoutMs: 1000, ...(idleAfterMs === undefined ? {} : { idleAfterMs }) };
}

describe('IdleMonitor', () => {
  let backends: BackendRegistry;
  let activity: ActivityTracker;
  let idle: string[];
  let monitor: IdleMonitor;

  beforeEach(() => {
    vi.useFakeTimers({ now: new Date('2026-06-01T12:00:00Z') });
    backends = new BackendRegistry();
    activity = new ActivityTracker(clock);
    idle = [];
    monitor = new IdleMonitor(activity, backends, clock, (app) => idle.push(app));
    backends.subscribe((app) => monitor.refresh(app));
  });
  afterEach(() => {
    monitor.close();
    vi.useRealTimers();
  });

  it('fires once after the idle period of a serving app, with one timer and no polling', () => {
    backends.set('blog', serving(5 * MIN));
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(5 * MIN - 1);
    expect(idle).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(idle).toEqual(['blog']);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(60 * MIN);
    expect(idle).toEqual(['blog']);
  });

  it('counts from the last request, re-arming only for the time left', () => {
    backends.set('blog', serving(5 * MIN));
    vi.advanceTimersByTime(4 * MIN);
    activity.begin('blog');
    activity.end('blog');
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(1 * MIN);
    expect(idle).toEqual([]);
    vi.advanceTimersByTime(4 * MIN);
    expect(idle).toEqual(['blog']);
  });

  it('never fires while a request or websocket is open, then counts from its end', () => {
    backends.set('chat', serving(1000));
    activity.begin('chat');
    activity.markStream('chat');
    vi.advanceTimersByTime(60 * MIN);
    expect(idle).toEqual([]);
    expect(activity.isIdle('chat', 1000)).toBe(false);
    activity.end('chat', true);
    vi.advanceTimersByTime(999);
    expect(idle).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(idle).toEqual(['chat']);
    expect(activity.isIdle('chat', 1000)).toBe(true);
  });

  it('fires again after new activity, not before', () => {
    backends.set('a', serving(1000));
    vi.advanceTimersByTime(1000);
    expect(idle).toEqual(['a']);
    activity.begin('a');
    activity.end('a');
    vi.advanceTimersByTime(1000);
    expect(idle).toEqual(['a', 'a']);
  });

  it('ignores apps without idleAfterMs or not serving, and re-arms when one starts serving again', () => {
    backends.set('always-on', serving());
    backends.set('sleeper', { ...serving(1000), state: 'sleeping', endpoints: [] });
    vi.advanceTimersByTime(10_000);
    expect(idle).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
    backends.set('sleeper', serving(1000));
    vi.advanceTimersByTime(1000);
    expect(idle).toEqual(['sleeper']);
  });

  it('after a restart, restored activity neither forgets to sleep nor sleeps early', () => {
    activity.restore('old', new Date(Date.now() - 10 * MIN));
    activity.restore('recent', new Date(Date.now() - 4 * MIN));
    activity.restore('future', new Date(Date.now() + 60 * MIN));
    backends.set('old', serving(5 * MIN));
    backends.set('recent', serving(5 * MIN));
    backends.set('future', serving(5 * MIN));
    expect(idle).toEqual(['old']);
    vi.advanceTimersByTime(1 * MIN);
    expect(idle).toEqual(['old', 'recent']);
    vi.advanceTimersByTime(4 * MIN);
    expect(idle).toEqual(['old', 'recent', 'future']);
  });

  it('after a restart, activity restored once the app is already watched still counts (backends may arrive first)', () => {
    backends.set('late', serving(5 * MIN));
    backends.set('idle-long-ago', serving(5 * MIN));
    vi.advanceTimersByTime(1000);
    // Watching alone is not activity: there is nothing to persist, and a restore still applies.
    expect(activity.lastActivity('late')).toBeUndefined();
    activity.restore('late', new Date(Date.now() - 3 * MIN));
    activity.restore('idle-long-ago', new Date(Date.now() - 60 * MIN));
    expect(idle).toEqual(['idle-long-ago']);
    vi.advanceTimersByTime(2 * MIN - 1);
    expect(idle).toEqual(['idle-long-ago']);
    vi.advanceTimersByTime(1);
    expect(idle).toEqual(['idle-long-ago', 'late']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps one timer while requests come and go (no re-arming per request)', () => {
    backends.set('busy', serving(5 * MIN));
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    for (let i = 0; i < 100; i++) {
      activity.begin('busy');
      activity.end('busy');
      vi.advanceTimersByTime(1000);
    }
    expect(setTimeoutSpy).not.toHaveBeenCalled();
    setTimeoutSpy.mockRestore();
    vi.advanceTimersByTime(5 * MIN);
    expect(idle).toEqual(['busy']);
  });

  it('reports last activity as wall time for persistence', () => {
    activity.begin('p');
    activity.end('p');
    const at = Date.now();
    vi.advanceTimersByTime(30_000);
    expect(activity.lastActivityWallTime('p')?.getTime()).toBe(at);
    expect(activity.snapshot('p')).toMatchObject({ inFlight: 0, openStreams: 0 });
  });
});
