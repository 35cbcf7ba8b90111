// The last events of an object, newest last, for its status file. A repeat of the latest
// event bumps its count instead of pushing the others out (a flapping container must not
// erase the history that explains it).
import type { StatusEvent } from '../../src/api/types.generated.js';

export type { StatusEvent };
export const MAX_EVENTS = 20;

export function recordEvent(events: readonly StatusEvent[], e: Omit<StatusEvent, 'count'>): StatusEvent[] {
  const last = events.at(-1);
  if (last && last.type === e.type && last.reason === e.reason && last.message === e.message) {
    return [...events.slice(0, -1), { ...last, at: e.at, count: (last.count ?? 1) + 1 }];
  }
  return [...events, e].slice(-MAX_EVENTS);
}
