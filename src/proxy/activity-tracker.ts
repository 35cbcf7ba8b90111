// Activity per app, for scale to zero: requests in flight, open websockets and event streams,
// and the monotonic time of the last request start or end. An open websocket keeps an app
// awake however quiet it is (sablier#402).
import type { Clock } from './types.js';

interface Activity {
  inFlight: number;
  streams: number;
  /** Monotonic ms. */
  last: number;
}

export interface ActivitySnapshot {
  /** Requests in flight, including open websockets and event streams. */
  inFlight: number;
  /** Open websockets and event streams. */
  openStreams: number;
  lastActivity: Date;
}

export class ActivityTracker {
  private readonly apps = new Map<string, Activity>();
  /** Set by the idle monitor: called when an app's in-flight count drops to 0 or its activity is restored. */
  onQuiet: ((app: string) => void) | undefined;

  constructor(private readonly clock: Clock) {}

  begin(app: string): void {
    const a = this.record(app);
    a.inFlight++;
    a.last = this.clock.monotonic();
  }

  end(app: string, stream = false): void {
    const a = this.apps.get(app);
    if (a === undefined) return;
    a.inFlight--;
    if (stream) a.streams--;
    a.last = this.clock.monotonic();
    if (a.inFlight === 0) this.onQuiet?.(app);
  }

  /** A request in flight turned into a long-lived stream (websocket, event stream); pass stream=true to end(). */
  markStream(app: string): void {
    const a = this.apps.get(app);
    if (a !== undefined) a.streams++;
  }

  /** Last activity on the monotonic clock, or undefined when none was seen or restored. */
  lastActivity(app: string): number | undefined {
    return this.apps.get(app)?.last;
  }

  /** Last activity as wall time, to persist so a restart neither wakes nor forgets to sleep an app. */
  lastActivityWallTime(app: string): Date | undefined {
    const a = this.apps.get(app);
    return a === undefined ? undefined : this.toWall(a.last);
  }

  inFlight(app: string): number {
    return this.apps.get(app)?.inFlight ?? 0;
  }

  isIdle(app: string, afterMs: number): boolean {
    const a = this.apps.get(app);
    if (a === undefined) return false;
    return a.inFlight === 0 && this.clock.monotonic() - a.last >= afterMs;
  }

  /** Seeds the last activity from persisted wall time (a future time, after a clock jump back, counts as now). */
  restore(app: string, lastActivityWall: Date): void {
    const a = this.record(app);
    const ago = Math.max(0, this.clock.now().getTime() - lastActivityWall.getTime());
    a.last = this.clock.monotonic() - ago;
    if (a.inFlight === 0) this.onQuiet?.(app);
  }

  snapshot(app: string): ActivitySnapshot | undefined {
    const a = this.apps.get(app);
    return a === undefined ? undefined : { inFlight: a.inFlight, openStreams: a.streams, lastActivity: this.toWall(a.last) };
  }

  appNames(): string[] {
    return [...this.apps.keys()];
  }

  private record(app: string): Activity {
    let a = this.apps.get(app);
    if (a === undefined) {
      a = { inFlight: 0, streams: 0, last: this.clock.monotonic() };
      this.apps.set(app, a);
    }
    return a;
  }

  private toWall(mono: number): Date {
    return new Date(this.clock.now().getTime() - (this.clock.monotonic() - mono));
  }
}
