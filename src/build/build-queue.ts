// The build slot. Builds are the one thing that can take a Pi down (RAM), so they run
// `concurrency` at a time (1 by default), first come first served across apps, with:
//   - per-app coalescing: a newer revision replaces the app's queued one (keeping its place)
//     and cancels its running one; the same revision joins the existing build. A revision
//     that superseded another waits a short settle time (restarted by each newer one), so a
//     burst of pushes costs at most two builds: the one cut short and the last;
//   - memory admission: a build starts only when MemAvailable is above a threshold, else the
//     head of the queue waits with reason InsufficientMemory and is re-checked every few seconds;
//   - crash safety: which builds are in flight is handed to `persist` before each starts; a
//     build that was in flight when berth died is retried once (attempt 2), and refused with
//     BuildInterrupted if it was interrupted again, so nothing is stuck "running" forever.
// Idle, the queue holds no timers.
import { readFile } from 'node:fs/promises';
import type { Clock } from '../../controllers/ports/clock.js';
import { systemClock } from '../../controllers/ports/clock.js';
import { BerthError } from '../../controllers/ports/errors.js';

/** What the caller persists (e.g. in state) and hands back on the next start. */
export interface InFlightBuild {
  app: string;
  revision: string;
  /** ISO time. */
  startedAt: string;
  /** 1 for a first build, 2 for the retry after an interrupted one. */
  attempt: number;
}

export interface QueuedBuildInfo {
  app: string;
  revision: string;
  enqueuedAt: string;
  /** Why the head of the queue is not starting (e.g. InsufficientMemory). */
  waiting?: { reason: string; message: string };
}

export interface BuildQueueSnapshot {
  concurrency: number;
  running: { app: string; revision: string; startedAt: string; attempt: number }[];
  queued: QueuedBuildInfo[];
}

export interface BuildQueueOptions {
  /** Builds at once. Default 1. */
  concurrency?: number;
  /** Start a build only with at least this much MemAvailable. Default 256 MiB; 0 disables the check. */
  minMemAvailableBytes?: number;
  /** Bytes available, or undefined when unknown (then builds are admitted). Default: /proc/meminfo. */
  readMemAvailable?: () => Promise<number | undefined>;
  /** Default 5 s. */
  memoryRecheckMs?: number;
  /** How long a revision that superseded another waits for a newer one. Default 2 s. */
  settleMs?: number;
  /** How long a cancelled build may take to stop before its slot is given back anyway. Default 10 s. */
  abortGraceMs?: number;
  /** Called (and awaited) with the builds in flight before each build starts and after each ends. */
  persist?: (inFlight: InFlightBuild[]) => void | Promise<void>;
  /** What `persist` last recorded before berth stopped or died. */
  interrupted?: InFlightBuild[];
  clock?: Clock;
}

export interface EnqueueOptions {
  /** Build even if this revision was already interrupted twice (a user asked for a retry). */
  retry?: boolean;
  /** The caller gave up (e.g. its actor stopped): the build is dropped or cancelled as by cancel(). */
  signal?: AbortSignal;
}

export type BuildFn<T> = (signal: AbortSignal, info: { attempt: number }) => Promise<T>;

interface Job {
  app: string;
  revision: string;
  run: BuildFn<unknown>;
  attempt: number;
  enqueuedAt: Date;
  startedAt?: Date;
  /** Monotonic ms before which it does not start (settle time after superseding). */
  notBefore: number;
  waiting?: { reason: string; message: string };
  controller: AbortController;
  promise: Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

export class BuildQueue {
  private readonly concurrency: number;
  private readonly minMem: number;
  private readonly readMem: () => Promise<number | undefined>;
  private readonly recheckMs: number;
  private readonly settleMs: number;
  private readonly abortGraceMs: number;
  private readonly persistFn?: (inFlight: InFlightBuild[]) => void | Promise<void>;
  private readonly clock: Clock;
  private readonly queue: Job[] = [];
  /** By app; a cancelled build stays here (holding its slot) until its promise settles. */
  private readonly running = new Map<string, Job>();
  /** Builds in flight when berth last stopped, by app, until that app builds again. */
  private readonly interrupted = new Map<string, InFlightBuild>();
  private readonly listeners = new Set<(s: BuildQueueSnapshot) => void>();
  private wakeTimer: NodeJS.Timeout | undefined;
  private pumping = false;
  private pumpAgain = false;
  private stopped = false;

  constructor(opts: BuildQueueOptions = {}) {
    this.concurrency = Math.max(1, opts.concurrency ?? 1);
    this.minMem = opts.minMemAvailableBytes ?? 256 << 20;
    this.readMem = opts.readMemAvailable ?? readMemAvailable;
    this.recheckMs = opts.memoryRecheckMs ?? 5000;
    this.settleMs = opts.settleMs ?? 2000;
    this.abortGraceMs = opts.abortGraceMs ?? 10_000;
    this.persistFn = opts.persist;
    this.clock = opts.clock ?? systemClock;
    for (const r of opts.interrupted ?? []) this.interrupted.set(r.app, r);
  }

  /**
   * Queues a build of `revision` for `app`; resolves with what `run` returns. Rejects with
   * Superseded/Cancelled (waiting) when a newer revision or cancel() replaced it, with
   * BuildInterrupted (stalled) when this revision was interrupted by restarts twice, or with
   * what `run` threw.
   */
  enqueue<T>(app: string, revision: string, run: BuildFn<T>, opts: EnqueueOptions = {}): Promise<T> {
    if (this.stopped) return Promise.reject(new BerthError('waiting', 'Cancelled', 'the build queue is stopped'));
    const current = this.running.get(app);
    if (current && current.revision === revision && !current.controller.signal.aborted) return current.promise as Promise<T>;
    const queuedAt = this.queue.findIndex((j) => j.app === app);
    const queued = this.queue[queuedAt];
    if (queued && queued.revision === revision) return queued.promise as Promise<T>;

    let attempt = 1;
    const prior = this.interrupted.get(app);
    if (prior && prior.revision !== revision) this.interrupted.delete(app);
    else if (prior) {
      if (prior.attempt >= 2 && !opts.retry) {
        return Promise.reject(
          new BerthError('stalled', 'BuildInterrupted', `the build of ${revision.slice(0, 12)} was interrupted by a berth restart twice; not retrying until a new revision or a retry`),
        );
      }
      attempt = opts.retry ? 1 : prior.attempt + 1;
    }

    const supersedes = queued !== undefined || (current !== undefined && current.revision !== revision);
    const job = this.newJob(app, revision, run, attempt, supersedes ? this.clock.monotonic() + this.settleMs : 0);
    if (queued) {
      // The newer revision takes the older one's place: spamming pushes must not push an app back.
      this.queue[queuedAt] = job;
      queued.reject(new BerthError('waiting', 'Superseded', `superseded by ${revision.slice(0, 12)} before it started`));
    } else this.queue.push(job);
    if (current && !current.controller.signal.aborted) {
      current.controller.abort(new BerthError('waiting', 'Superseded', `superseded by ${revision.slice(0, 12)}`));
    }
    this.changed();
    this.kick();
    if (opts.signal) this.cancelOnAbort(job, opts.signal);
    return job.promise as Promise<T>;
  }

  private cancelOnAbort(job: Job, signal: AbortSignal): void {
    const onAbort = (): void => {
      if (this.queue.includes(job) || this.running.get(job.app) === job) this.cancel(job.app, 'the build was no longer wanted');
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    void job.promise.catch(() => undefined).finally(() => signal.removeEventListener('abort', onAbort));
  }

  /** Drops the app's queued build and cancels its running one (app deleted or paused). */
  cancel(app: string, why = 'cancelled'): void {
    const i = this.queue.findIndex((j) => j.app === app);
    if (i >= 0) this.queue.splice(i, 1)[0]!.reject(new BerthError('waiting', 'Cancelled', why));
    this.running.get(app)?.controller.abort(new BerthError('waiting', 'Cancelled', why));
    if (this.interrupted.delete(app)) void this.persist();
    this.changed();
  }

  snapshot(): BuildQueueSnapshot {
    return {
      concurrency: this.concurrency,
      running: [...this.running.values()].map((j) => ({ app: j.app, revision: j.revision, startedAt: (j.startedAt ?? j.enqueuedAt).toISOString(), attempt: j.attempt })),
      queued: this.queue.map((j) => ({ app: j.app, revision: j.revision, enqueuedAt: j.enqueuedAt.toISOString(), ...(j.waiting ? { waiting: j.waiting } : {}) })),
    };
  }

  /** Called with a fresh snapshot on every change. Returns an unsubscribe function. */
  onChange(listener: (s: BuildQueueSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Graceful shutdown: queued builds are rejected, running ones cancelled and awaited. They
   * are not recorded as interrupted: a build berth stopped on purpose starts fresh next time.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clearWake();
    for (const j of this.queue.splice(0)) j.reject(new BerthError('waiting', 'Cancelled', 'berth is stopping'));
    const running = [...this.running.values()];
    for (const j of running) j.controller.abort(new BerthError('waiting', 'Cancelled', 'berth is stopping'));
    await Promise.allSettled(running.map((j) => j.promise));
    this.changed();
  }

  private newJob(app: string, revision: string, run: BuildFn<unknown>, attempt: number, notBefore: number): Job {
    let resolve!: (v: unknown) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<unknown>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // A superseded build's promise may have no listener left; its rejection is not a crash.
    promise.catch(() => undefined);
    return { app, revision, run, attempt, notBefore, enqueuedAt: this.clock.now(), controller: new AbortController(), promise, resolve, reject };
  }

  private kick(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void (async () => {
      try {
        do {
          this.pumpAgain = false;
          await this.fillSlots();
        } while (this.pumpAgain);
      } finally {
        this.pumping = false;
      }
    })();
  }

  private async fillSlots(): Promise<void> {
    this.clearWake();
    while (!this.stopped && this.running.size < this.concurrency) {
      // FIFO, skipping an app whose cancelled build is still winding down (one build per app)
      // and revisions still settling.
      const now = this.clock.monotonic();
      const eligible = this.queue.filter((j) => !this.running.has(j.app));
      const job = eligible.find((j) => j.notBefore <= now);
      if (!job) {
        if (eligible.length > 0) this.wakeIn(Math.min(...eligible.map((j) => j.notBefore)) - now);
        return;
      }
      if (this.minMem > 0) {
        const available = await this.readMem().catch(() => undefined);
        if (!this.queue.includes(job)) continue; // replaced or cancelled meanwhile
        if (available !== undefined && available < this.minMem) {
          const message = `waiting for memory: ${mib(available)} MiB available, builds need ${mib(this.minMem)} MiB`;
          if (job.waiting?.message !== message) {
            job.waiting = { reason: 'InsufficientMemory', message };
            this.changed();
          }
          this.wakeIn(this.recheckMs);
          return;
        }
      }
      this.queue.splice(this.queue.indexOf(job), 1);
      delete job.waiting;
      job.startedAt = this.clock.now();
      this.running.set(job.app, job);
      this.interrupted.delete(job.app);
      this.changed();
      await this.persist();
      this.start(job);
    }
  }

  private start(job: Job): void {
    const signal = job.controller.signal;
    // A build cancelled while its start was being persisted never runs.
    const run = Promise.resolve().then(() => (signal.aborted ? undefined : job.run(signal, { attempt: job.attempt })));
    // A build that ignores its cancellation must not hold the slot forever.
    const gaveUp = new Promise<never>((_, reject) => {
      signal.addEventListener('abort', () => setTimeout(() => reject(asError(signal.reason)), this.abortGraceMs).unref(), { once: true });
    });
    Promise.race([run, gaveUp])
      .then(
        (v) => (signal.aborted ? job.reject(signal.reason) : job.resolve(v)),
        // A cancelled build reports why it was cancelled, not the abort error it died of.
        (e) => job.reject(signal.aborted ? signal.reason : e),
      )
      .finally(async () => {
        this.running.delete(job.app);
        this.changed();
        await this.persist();
        this.kick();
      })
      .catch(() => undefined);
  }

  private async persist(): Promise<void> {
    if (!this.persistFn) return;
    const inFlight: InFlightBuild[] = [...this.running.values()].map((j) => ({ app: j.app, revision: j.revision, startedAt: (j.startedAt ?? j.enqueuedAt).toISOString(), attempt: j.attempt }));
    // Interrupted builds not yet retried stay recorded: a second crash must still count.
    for (const r of this.interrupted.values()) if (!this.running.has(r.app)) inFlight.push(r);
    try {
      await this.persistFn(inFlight);
    } catch {
      // Persistence is best effort: a full disk must not stop builds; the next change retries.
    }
  }

  private changed(): void {
    if (this.listeners.size === 0) return;
    const s = this.snapshot();
    for (const l of this.listeners) {
      try {
        l(s);
      } catch {
        // A listener's bug must not break the queue.
      }
    }
  }

  private wakeIn(ms: number): void {
    this.clearWake();
    this.wakeTimer = setTimeout(
      () => {
        this.wakeTimer = undefined;
        this.kick();
      },
      Math.max(0, Math.ceil(ms)),
    );
    this.wakeTimer.unref();
  }

  private clearWake(): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
  }
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

function mib(n: number): number {
  return Math.round(n / (1 << 20));
}

/** MemAvailable from /proc/meminfo in bytes; undefined where there is none (not Linux, old kernel). */
export async function readMemAvailable(path = '/proc/meminfo'): Promise<number | undefined> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const m = /^MemAvailable:\s+(\d+)\s*kB/m.exec(text);
  return m ? Number(m[1]) * 1024 : undefined;
}
