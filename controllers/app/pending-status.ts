// The status of an object berth has accepted but not reconciled yet — honest about it: Pending,
// with the manifest problems that stop it, if any.
import type { AppStatus, Condition } from '../../src/api/types.generated.js';
import { mergeConditions, type ConditionInput } from '../status/conditions.js';
import type { DesiredEntry } from '../../src/desired/desired-store.js';
import { formatProblem } from '../../src/manifests/loader.js';

/** The Stalled condition for manifest problems (InvalidSpec, DuplicateName), or undefined. */
export function manifestProblemCondition(entry: DesiredEntry): ConditionInput | undefined {
  const p = entry.problems[0];
  if (!p) return undefined;
  const more = entry.problems.length > 1 ? ` (and ${entry.problems.length - 1} more)` : '';
  const kept = entry.object ? '; the last good version stays applied' : '';
  return { type: 'Stalled', status: 'True', reason: p.reason, message: `${formatProblem(p)}${more}${kept}` };
}

export function pendingStatus(entry: DesiredEntry, previous: readonly Condition[] | undefined, now: string): AppStatus {
  const problem = manifestProblemCondition(entry);
  const never = entry.object === undefined;
  const conditions: ConditionInput[] = [
    never
      ? { type: 'Ready', status: 'False', reason: problem?.reason ?? 'InvalidSpec', message: 'the manifest has never been valid; fix it to deploy the app' }
      : { type: 'Ready', status: 'False', reason: 'Pending', message: 'waiting for the first reconcile' },
    ...(problem ? [problem] : []),
  ];
  return { phase: never ? 'Stalled' : 'Pending', conditions: mergeConditions(previous, conditions, now) };
}
