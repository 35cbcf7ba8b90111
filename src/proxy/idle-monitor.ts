// Decides when a serving app has been idle for its idleAfterMs and says so once. One timer per
// app, armed for the time remaining, never a polling loop: requests only move a timestamp,
// and a timer that fires early (activity since) re-arms for what is left. An idle Pi wakes up
// once per idle period per app, not once a second. An app without any activity yet counts from
// when it was first seen serving — kept here, not in the tracker, so that activity persisted
// before a restart can still be restored after the app is already being watched.
import type { ActivityTracker } from './activity-tracker.js';
import type { BackendSource, Clock } from './types.js';

interface Watch {
  timer: NodeJS.Timeout | undefined;
  /** Monotonic time the armed timer fires. */
  due: number;
  /** Monotonic time the app was first seen serving: its idle clock until there is activity. */
  since: number;
  /** onIdle fired; it fires again only after new activity or a state change. */
  fired: boolean;
}

export class IdleMonitor {
  private readonly watches = new Map<string, Watch>();

  constructor(
    private readonly activity: ActivityTracker,
    private readonly backends: BackendSource,
    private readonly clock: Clock,
    private readonly onIdle: (app: string) => void,
  ) {
    activity.onQuiet = (app) => this.quiet(app);
  }

  /** The app's backend changed (state, idleAfterMs): re-evaluate from scratch. */
  refresh(app: string): void {
    const w = this.watches.get(app);
    if (w !== undefined) {
      this.disarm(w);
      w.fired = false;
    }
    this.evaluate(app);
  }

  close(): void {
    for (const w of this.watches.values()) this.disarm(w);
    this.watches.clear();
    this.activity.onQuiet = undefined;
  }

  /** A request ended with nothing else in flight (or activity was restored): any such activity counts as new. */
  private quiet(app: string): void {
    const w = this.watches.get(app);
    if (w?.timer !== undefined) {
      // New activity only moves the deadline later (the armed timer re-arms when it fires);
      // restored activity can move it earlier, and then the timer must be pulled in.
      const last = this.activity.lastActivity(app);
      const after = this.backends.get(app)?.idleAfterMs;
      if (last === undefined || after === undefined || last + after >= w.due) return;
      this.disarm(w);
    }
    if (w !== undefined) w.fired = false;
    this.evaluate(app);
  }

  private evaluate(app: string): void {
    const b = this.backends.get(app);
    const after = b?.idleAfterMs;
    if (b === undefined || b.state !== 'serving' || after === undefined || after <= 0) {
      const w = this.watches.get(app);
      if (w !== undefined) {
        this.disarm(w);
        this.watches.delete(app);
      }
      return;
    }
    let w = this.watches.get(app);
    if (w === undefined) {
      w = { timer: undefined, due: 0, since: this.clock.monotonic(), fired: false };
      this.watches.set(app, w);
    }
    if (w.fired || w.timer !== undefined || this.activity.inFlight(app) > 0) return;
    const last = this.activity.lastActivity(app) ?? w.since;
    const now = this.clock.monotonic();
    const remaining = last + after - now;
    if (remaining <= 0) {
      w.fired = true;
      this.onIdle(app);
      return;
    }
    const watch = w;
    watch.due = now + remaining;
    watch.timer = setTimeout(() => {
      watch.timer = undefined;
      this.evaluate(app);
    }, Math.ceil(remaining));
    watch.timer.unref();
  }

  private disarm(w: Watch): void {
    if (w.timer !== undefined) clearTimeout(w.timer);
    w.timer = undefined;
  }
}
