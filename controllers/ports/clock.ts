// Time as the controllers see it. Durations (idle, timeouts, backoff) use the monotonic
// clock; wall time is only for dates shown to people and certificate validity: a Pi
// without an RTC boots with a stale wall clock that jumps at NTP sync.
export interface Clock {
  /** Milliseconds, monotonic, arbitrary origin. */
  monotonic(): number;
  /** Wall-clock time. */
  now(): Date;
}

export const systemClock: Clock = {
  monotonic: () => performance.now(),
  now: () => new Date(),
};
