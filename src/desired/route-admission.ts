// Route claims are admitted like any other manifest rule: a route already served by another
// app makes the new version of the claimant invalid (RouteConflict), so the last good version
// keeps running. Apps keep the routes their applied version holds; among changed or new
// claims the earlier-created app wins, ties by name — deterministic, stable across restarts,
// and when the holder goes away the next claimant is admitted on the following pass.
import type { App } from '../api/types.generated.js';
import type { ObjectRecord } from '../state/state-schema.js';
import type { Problem } from '../manifests/loader.js';
import { routeClaimKey } from '../proxy/route-table.js';

export interface Candidate {
  name: string;
  /** The version applied so far (undefined: never applied). */
  applied: ObjectRecord | undefined;
  /** The version the manifests ask for now (may equal applied). */
  next: ObjectRecord;
  /** Where the manifest is, for the problem's position. */
  at: { file: string; line: number; col: number };
}

export interface Admission {
  /** Candidates whose new version is refused, with the problem to report. */
  refused: Map<string, Problem>;
}

function claims(rec: ObjectRecord | undefined): string[] {
  const app = rec?.object as App | undefined;
  return (app?.spec.routes ?? []).map((r) => routeClaimKey(r.host, r.path));
}

export function admitRoutes(candidates: Candidate[]): Admission {
  const owner = new Map<string, string>();
  const refused = new Map<string, Problem>();
  const unchanged = candidates.filter((c) => c.applied === c.next);
  const changed = candidates
    .filter((c) => c.applied !== c.next)
    .sort((a, b) => (a.next.createdAt === b.next.createdAt ? (a.name < b.name ? -1 : 1) : a.next.createdAt < b.next.createdAt ? -1 : 1));
  for (const c of unchanged) for (const k of claims(c.next)) if (!owner.has(k)) owner.set(k, c.name);
  for (const c of changed) {
    const mine = claims(c.next);
    const taken = mine.find((k) => owner.has(k) && owner.get(k) !== c.name);
    if (taken === undefined) {
      for (const k of mine) owner.set(k, c.name);
      continue;
    }
    refused.set(c.name, {
      ...c.at, reason: 'RouteConflict', kind: 'App', name: c.name,
      message: `route ${taken} is already served by app "${owner.get(taken)!}"; ${c.applied ? 'this version is not applied' : 'this app is not deployed'} until one of them gives it up`,
    });
    // The version that stays applied keeps its routes.
    for (const k of claims(c.applied)) if (!owner.has(k)) owner.set(k, c.name);
  }
  return { refused };
}
