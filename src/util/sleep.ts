// A timer promise that rejects with an AbortError when its signal aborts.
import { setTimeout as delay } from 'node:timers/promises';

export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return delay(ms, undefined, signal ? { signal } : undefined);
}
