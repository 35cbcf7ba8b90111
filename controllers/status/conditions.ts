// Kubernetes-style conditions. A condition's lastTransitionTime moves only when its status,
// reason or message changes, so rewriting an unchanged world never changes a status file.
import type { Condition } from '../../src/api/types.generated.js';

export type { Condition };
export type ConditionStatus = Condition['status'];

export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

/**
 * The new condition list: `next` in order, each keeping its previous lastTransitionTime when
 * nothing about it changed. Ready is always first.
 */
export function mergeConditions(previous: readonly Condition[] | undefined, next: ConditionInput[], now: string, observedGeneration?: number): Condition[] {
  const prev = new Map((previous ?? []).map((c) => [c.type, c]));
  const out = next.map((c): Condition => {
    const p = prev.get(c.type);
    const same = p && p.status === c.status && p.reason === c.reason && p.message === c.message;
    return {
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message,
      lastTransitionTime: same ? p.lastTransitionTime : now,
      ...(observedGeneration !== undefined ? { observedGeneration } : {}),
    };
  });
  return out.sort((a, b) => (a.type === 'Ready' ? -1 : b.type === 'Ready' ? 1 : 0));
}
