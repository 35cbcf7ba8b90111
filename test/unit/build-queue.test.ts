import { describe, it, expect, vi, afterEach } from 'vitest';
import { BuildQueue, readMemAvailable, type InFlightBuild, type BuildQueueSnapshot } from '../../src/build/build-queue.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Fake builds that take `ms`, honour abort, and record concurrency and who ran. */
function recorder(ms = 30) {
  let active = 0;
  const r = {
    maxActive: 0,
    started: [] as string[],
    finished: [] as string[],
    build(app: string, rev: string, delay = ms) {
      return async (signal: AbortSignal): Promise<string> => {
        active++;
        r.maxActive = Math.max(r.maxActive, active);
        r.started.push(`${app}@${rev}`);
        try {
          await new Promise<void>((resolve, reject) => {
            const t = setTimeout(resolve, delay);
            signal.addEventListener('abort', () => {
              clearTimeout(t);
              // A real engine takes a moment to stop: the slot must stay held until it has.
              setTimeout(() => reject(new Error('aborted')), 20);
            });
          });
          r.finished.push(`${app}@${rev}`);
          return `berth/${app}:${rev}`;
        } finally {
          active--;
        }
      };
    },
  };
  return r;
}

const plenty = (): Promise<number> => Promise.resolve(8 * 2 ** 30);

afterEach(() => {
  vi.useRealTimers();
});

describe('build queue', () => {
  it('runs one build at a time, first come first served across apps', async () => {
    const r = recorder();
    const q = new BuildQueue({ readMemAvailable: plenty });
    const results = await Promise.all([q.enqueue('a', '1', r.build('a', '1')), q.enqueue('b', '1', r.build('b', '1')), q.enqueue('c', '1', r.build('c', '1'))]);
    expect(results).toEqual(['berth/a:1', 'berth/b:1', 'berth/c:1']);
    expect(r.started).toEqual(['a@1', 'b@1', 'c@1']);
    expect(r.maxActive).toBe(1);
  });

  it('joins a second request for the same revision instead of building twice', async () => {
    const r = recorder();
    const q = new BuildQueue({ readMemAvailable: plenty });
    const p1 = q.enqueue('a', '1', r.build('a', '1'));
    const p2 = q.enqueue('a', '1', r.build('a', '1'));
    expect(await p2).toBe(await p1);
    expect(r.started).toEqual(['a@1']);
  });

  it('replaces a queued older revision in place and rejects it as Superseded', async () => {
    const r = recorder();
    const q = new BuildQueue({ readMemAvailable: plenty, settleMs: 0 });
    const a = q.enqueue('a', '1', r.build('a', '1'));
    const b1 = q.enqueue('b', '1', r.build('b', '1'));
    const c = q.enqueue('c', '1', r.build('c', '1'));
    const b2 = q.enqueue('b', '2', r.build('b', '2'));
    await expect(b1).rejects.toMatchObject({ kind: 'waiting', reason: 'Superseded' });
    expect(q.snapshot().queued.map((j) => `${j.app}@${j.revision}`)).toEqual(['b@2', 'c@1']);
    await Promise.all([a, b2, c]);
    expect(r.started).toEqual(['a@1', 'b@2', 'c@1']);
  });

  it('cancels a running build when a newer revision arrives, and starts the newer only after the old one stopped', async () => {
    const r = recorder(200);
    const q = new BuildQueue({ readMemAvailable: plenty, settleMs: 50 });
    const old = q.enqueue('a', '1', r.build('a', '1'));
    await sleep(30);
    const newer = q.enqueue('a', '2', r.build('a', '2', 30));
    await expect(old).rejects.toMatchObject({ reason: 'Superseded' });
    expect(await newer).toBe('berth/a:2');
    expect(r.maxActive).toBe(1);
    expect(r.finished).toEqual(['a@2']);
  });

  it('under 10 pushes in 2 s for one app while two others build: one build at a time, at most 2 for the spammed app, the last revision built', async () => {
    const r = recorder(150);
    const q = new BuildQueue({ readMemAvailable: plenty });
    let busiest = 0;
    q.onChange((s) => (busiest = Math.max(busiest, s.running.length)));
    const others = [q.enqueue('a', '1', r.build('a', '1', 400)), q.enqueue('b', '1', r.build('b', '1', 400))];
    const spam: Promise<string>[] = [];
    for (let i = 1; i <= 10; i++) {
      spam.push(q.enqueue('c', `${i}`, r.build('c', `${i}`)));
      await sleep(180);
    }
    const outcomes = await Promise.allSettled([...others, ...spam]);
    expect(outcomes.slice(0, 2).every((o) => o.status === 'fulfilled')).toBe(true);
    expect(outcomes.at(-1)).toEqual({ status: 'fulfilled', value: 'berth/c:10' });
    expect(r.maxActive).toBe(1);
    expect(busiest).toBe(1);
    expect(r.started.filter((s) => s.startsWith('c@')).length).toBeLessThanOrEqual(2);
    expect(r.finished.filter((s) => s.startsWith('c@'))).toEqual(['c@10']);
  });

  it('lets a burst for an app settle: a spammed app whose slot is free still builds at most twice', async () => {
    const r = recorder(300);
    const q = new BuildQueue({ readMemAvailable: plenty, settleMs: 500 });
    const all: Promise<string>[] = [];
    for (let i = 1; i <= 10; i++) {
      all.push(q.enqueue('c', `${i}`, r.build('c', `${i}`)));
      await sleep(150);
    }
    expect(q.snapshot().queued.map((j) => j.revision)).toEqual(['10']);
    await Promise.allSettled(all);
    expect(r.started).toEqual(['c@1', 'c@10']);
    expect(r.finished).toEqual(['c@10']);
    expect(r.maxActive).toBe(1);
  });

  it('with concurrency 2 builds two apps at once but never one app twice', async () => {
    const r = recorder(100);
    const q = new BuildQueue({ concurrency: 2, readMemAvailable: plenty, settleMs: 0 });
    const p = [q.enqueue('a', '1', r.build('a', '1')), q.enqueue('b', '1', r.build('b', '1'))];
    await sleep(20);
    expect(q.snapshot().running.map((j) => j.app)).toEqual(['a', 'b']);
    p.push(q.enqueue('a', '2', r.build('a', '2')));
    await Promise.allSettled(p);
    expect(r.maxActive).toBe(2);
    expect(r.finished.sort()).toEqual(['a@2', 'b@1']);
  });

  it('waits with reason InsufficientMemory while MemAvailable is low, re-checks, then builds; idle it holds no timer', async () => {
    vi.useFakeTimers();
    let available = 100 << 20;
    const reads: number[] = [];
    const q = new BuildQueue({
      minMemAvailableBytes: 300 << 20,
      memoryRecheckMs: 5000,
      readMemAvailable: () => {
        reads.push(available);
        return Promise.resolve(available);
      },
    });
    const snapshots: BuildQueueSnapshot[] = [];
    q.onChange((s) => snapshots.push(s));
    let done = false;
    const p = q.enqueue('a', '1', () => Promise.resolve('ok')).then((v) => {
      done = true;
      return v;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(q.snapshot().queued[0]?.waiting).toEqual({ reason: 'InsufficientMemory', message: 'waiting for memory: 100 MiB available, builds need 300 MiB' });
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(15_000);
    expect(done).toBe(false);
    expect(reads.length).toBe(4); // first check + one every 5 s, no busy loop
    available = 1 << 30;
    await vi.advanceTimersByTimeAsync(5000);
    expect(await p).toBe('ok');
    expect(snapshots.some((s) => s.running.length === 1)).toBe(true);
    expect(q.snapshot()).toEqual({ concurrency: 1, running: [], queued: [] });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('admits builds when MemAvailable cannot be read', async () => {
    const q = new BuildQueue({ readMemAvailable: () => Promise.resolve(undefined) });
    expect(await q.enqueue('a', '1', () => Promise.resolve(1))).toBe(1);
  });

  it('reads MemAvailable from /proc/meminfo', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-mem-'));
    await writeFile(join(dir, 'meminfo'), 'MemTotal:        3884000 kB\nMemFree:          100000 kB\nMemAvailable:     524288 kB\n');
    expect(await readMemAvailable(join(dir, 'meminfo'))).toBe(512 << 20);
    expect(await readMemAvailable(join(dir, 'missing'))).toBeUndefined();
    await rm(dir, { recursive: true });
  });

  it('records in-flight builds before they start and clears them after', async () => {
    const records: InFlightBuild[][] = [];
    const q = new BuildQueue({ readMemAvailable: plenty, persist: (r) => void records.push(r) });
    let seenAtStart: InFlightBuild[] | undefined;
    await q.enqueue('a', 'r1', () => {
      seenAtStart = records.at(-1);
      return Promise.resolve();
    });
    await sleep(5);
    expect(seenAtStart).toEqual([{ app: 'a', revision: 'r1', startedAt: expect.any(String), attempt: 1 }]);
    expect(records.at(-1)).toEqual([]);
  });

  it('retries a build interrupted by a crash once (attempt 2), and refuses a second interruption as BuildInterrupted', async () => {
    const crashed: InFlightBuild = { app: 'a', revision: 'r1', startedAt: '2026-01-01T00:00:00.000Z', attempt: 1 };
    const records: InFlightBuild[][] = [];
    // First restart: the build is retried as attempt 2, recorded as such while it runs.
    const q1 = new BuildQueue({ readMemAvailable: plenty, interrupted: [crashed], persist: (r) => void records.push(r) });
    let attempt = 0;
    let during: InFlightBuild[] | undefined;
    await q1.enqueue('a', 'r1', (_s, info) => {
      attempt = info.attempt;
      during = records.at(-1);
      return Promise.resolve();
    });
    expect(attempt).toBe(2);
    expect(during).toEqual([{ ...crashed, startedAt: expect.any(String), attempt: 2 }]);

    // Second restart, after berth died again during attempt 2: no third try, a stalled reason instead.
    const q2 = new BuildQueue({ readMemAvailable: plenty, interrupted: [{ ...crashed, attempt: 2 }] });
    const run = vi.fn(() => Promise.resolve());
    await expect(q2.enqueue('a', 'r1', run)).rejects.toMatchObject({ kind: 'stalled', reason: 'BuildInterrupted' });
    expect(run).not.toHaveBeenCalled();
    // A user's retry, or a new revision, builds again.
    await q2.enqueue('a', 'r1', run, { retry: true });
    const q3 = new BuildQueue({ readMemAvailable: plenty, interrupted: [{ ...crashed, attempt: 2 }] });
    await q3.enqueue('a', 'r2', run);
    expect(run).toHaveBeenCalledTimes(2);
  });

  it('keeps unretried interrupted builds recorded, so a second crash still counts', async () => {
    const records: InFlightBuild[][] = [];
    const crashed: InFlightBuild = { app: 'b', revision: 'r9', startedAt: '2026-01-01T00:00:00.000Z', attempt: 1 };
    const q = new BuildQueue({ readMemAvailable: plenty, interrupted: [crashed], persist: (r) => void records.push(r) });
    await q.enqueue('a', 'r1', () => Promise.resolve());
    expect(records[0]).toEqual([expect.objectContaining({ app: 'a' }), crashed]);
    await sleep(5);
    expect(records.at(-1)).toEqual([crashed]);
    q.cancel('b');
    expect(records.at(-1)).toEqual([]);
  });

  it('cancel() drops a queued build and aborts a running one', async () => {
    const r = recorder(500);
    const q = new BuildQueue({ readMemAvailable: plenty });
    const a = q.enqueue('a', '1', r.build('a', '1'));
    const b = q.enqueue('b', '1', r.build('b', '1'));
    await sleep(10);
    q.cancel('b', 'app deleted');
    q.cancel('a', 'app deleted');
    await expect(b).rejects.toMatchObject({ reason: 'Cancelled', message: 'app deleted' });
    await expect(a).rejects.toMatchObject({ reason: 'Cancelled' });
    expect(r.started).toEqual(['a@1']);
  });

  it('drops a build whose caller gave up (its abort signal)', async () => {
    const r = recorder(300);
    const q = new BuildQueue({ readMemAvailable: plenty });
    const ac = new AbortController();
    const a = q.enqueue('a', '1', r.build('a', '1'), { signal: ac.signal });
    const b = q.enqueue('b', '1', r.build('b', '1'));
    await sleep(10);
    ac.abort();
    await expect(a).rejects.toMatchObject({ reason: 'Cancelled' });
    expect(await b).toBe('berth/b:1');
  });

  it('gives the slot back when a cancelled build ignores its cancellation', async () => {
    const q = new BuildQueue({ readMemAvailable: plenty, settleMs: 0, abortGraceMs: 100 });
    const stuck = q.enqueue('a', '1', () => new Promise<string>(() => undefined));
    await sleep(10);
    const next = q.enqueue('a', '2', () => Promise.resolve('built'));
    await expect(stuck).rejects.toMatchObject({ reason: 'Superseded' });
    expect(await next).toBe('built');
  });

  it('stop() cancels everything and does not record the builds as interrupted', async () => {
    const records: InFlightBuild[][] = [];
    const r = recorder(500);
    const q = new BuildQueue({ readMemAvailable: plenty, persist: (x) => void records.push(x) });
    const a = q.enqueue('a', '1', r.build('a', '1'));
    const b = q.enqueue('b', '1', r.build('b', '1'));
    await sleep(10);
    await q.stop();
    await expect(a).rejects.toMatchObject({ reason: 'Cancelled' });
    await expect(b).rejects.toMatchObject({ reason: 'Cancelled' });
    await sleep(5);
    expect(records.at(-1)).toEqual([]);
    await expect(q.enqueue('c', '1', r.build('c', '1'))).rejects.toMatchObject({ reason: 'Cancelled' });
  });

  it('a failing build rejects with its error and the queue goes on', async () => {
    const q = new BuildQueue({ readMemAvailable: plenty });
    const failing = q.enqueue('a', '1', () => Promise.reject(new Error('boom')));
    const next = q.enqueue('b', '1', () => Promise.resolve('fine'));
    await expect(failing).rejects.toThrow('boom');
    expect(await next).toBe('fine');
  });
});
