// The desired state: every manifest object berth accepted, with a generation that moves only
// when its spec hash changes, persisted so it survives restarts. Built from the loads of all
// manifest files:
//   - a name belongs to the file that defined it first (persisted), so a duplicate is an
//     error on the later file, deterministically and stably across restarts;
//   - an invalid edit keeps the last good version and reports why;
//   - an object disappears only when its file is gone or no longer defines it, and only
//     after the initial full scan (never garbage-collect on a partial view).
import type { AnyObject, Kind } from '../api/schemas.js';
import type { FileLoad, Problem } from '../manifests/loader.js';
import type { StateStore } from '../state/state-store.js';
import { objectKey, type ObjectRecord } from '../state/state-schema.js';
import { admitRoutes } from './route-admission.js';

export interface DesiredEntry {
  key: string;
  kind: Kind;
  name: string;
  /** 0 while the object has never been valid. */
  generation: number;
  specHash: string;
  createdAt: string;
  file: string;
  /** The last good version; undefined when it has never been valid. */
  object: AnyObject | undefined;
  /** Why the manifest as written now is not (fully) applied: InvalidSpec, DuplicateName. */
  problems: Problem[];
}

export interface DesiredChange {
  key: string;
  kind: Kind;
  name: string;
  /** The new entry, or undefined when the object was deleted. */
  entry: DesiredEntry | undefined;
}

interface Candidates {
  valid: FileLoad['objects'];
  claims: Problem[];
}

export class DesiredStore {
  private entries = new Map<string, DesiredEntry>();
  private orphanProblems: Problem[] = [];

  constructor(
    private readonly state: Pick<StateStore, 'data' | 'update'>,
    private readonly now: () => Date = () => new Date(),
  ) {
    for (const rec of Object.values(state.data.objects)) this.entries.set(objectKey(rec.kind, rec.name), fromRecord(rec, []));
  }

  get(kind: Kind, name: string): DesiredEntry | undefined {
    return this.entries.get(objectKey(kind, name));
  }

  list(kind?: Kind): DesiredEntry[] {
    const all = [...this.entries.values()];
    return (kind ? all.filter((e) => e.kind === kind) : all).sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  /** Problems that belong to no object (unreadable files, unknown kinds, bad names). */
  fileProblems(): Problem[] {
    return this.orphanProblems;
  }

  /**
   * Recompute from the loads of all manifest files (relative paths). `gc` false while the
   * initial scan is incomplete: nothing is deleted then. Returns what changed.
   */
  apply(loads: ReadonlyMap<string, FileLoad>, gc: boolean): DesiredChange[] {
    const files = [...loads.keys()].sort();
    const incomplete = new Set(files.filter((f) => !loads.get(f)!.complete));
    const byKey = new Map<string, Candidates>();
    const orphans: Problem[] = [];
    const candidates = (key: string) => byKey.get(key) ?? byKey.set(key, { valid: [], claims: [] }).get(key)!;
    for (const file of files) {
      const load = loads.get(file)!;
      for (const o of load.objects) candidates(objectKey(o.kind, o.name)).valid.push(o);
      for (const p of load.problems) {
        if (p.kind !== undefined && p.name !== undefined) candidates(objectKey(p.kind, p.name)).claims.push(p);
        else orphans.push(p);
      }
    }

    const records = this.state.data.objects;
    const changes: DesiredChange[] = [];
    const nextEntries = new Map<string, DesiredEntry>();
    const keys = new Set([...byKey.keys(), ...Object.keys(records)]);
    const recordUpdates: Record<string, ObjectRecord | undefined> = {};
    const tentative: { key: string; rec: ObjectRecord | undefined; next: ObjectRecord | undefined; problems: Problem[]; owner: string; at?: { file: string; line: number; col: number } }[] = [];

    for (const key of [...keys].sort()) {
      const rec = records[key];
      const c = byKey.get(key) ?? { valid: [], claims: [] };
      const owner = this.ownerOf(rec, c, loads, incomplete);
      if (owner === undefined) {
        if (rec && !gc) nextEntries.set(key, this.entries.get(key) ?? fromRecord(rec, []));
        else if (rec) recordUpdates[key] = undefined;
        continue;
      }
      const valid = c.valid.find((o) => o.file === owner);
      const problems: Problem[] = c.claims.filter((p) => p.file === owner);
      // A file that could not be read whole may hold this object's invalid edit.
      if (!valid && incomplete.has(owner)) problems.push(...loads.get(owner)!.problems.filter((p) => p.kind === undefined || p.name === undefined));
      for (const dup of c.valid.filter((o) => o.file !== owner)) {
        problems.push({
          file: dup.file, line: dup.line, col: dup.col, reason: 'DuplicateName', kind: dup.kind, name: dup.name,
          message: `${dup.kind} "${dup.name}" is already defined in ${owner}; this definition is ignored`,
        });
      }
      let next: ObjectRecord | undefined = rec;
      if (valid) {
        if (!rec) {
          next = { kind: valid.kind, name: valid.name, file: owner, generation: 1, specHash: valid.specHash, createdAt: this.now().toISOString(), object: valid.object };
        } else if (rec.specHash !== valid.specHash || rec.file !== owner) {
          next = { ...rec, file: owner, object: valid.object, specHash: valid.specHash, generation: rec.specHash !== valid.specHash ? rec.generation + 1 : rec.generation };
        }
      }
      tentative.push({ key, rec, next, problems, owner, ...(valid ? { at: { file: valid.file, line: valid.line, col: valid.col } } : {}) });
    }

    // Routes are admitted across apps: a version claiming another app's route is refused.
    const { refused } = admitRoutes(
      tentative.filter((t) => t.next?.kind === 'App').map((t) => ({ name: t.next!.name, applied: t.rec, next: t.next!, at: t.at ?? { file: t.owner, line: 1, col: 1 } })),
    );
    for (const t of tentative) {
      const refusal = t.next?.kind === 'App' ? refused.get(t.next.name) : undefined;
      if (refusal) {
        t.next = t.rec;
        t.problems.push(refusal);
      }
      if (t.next !== t.rec) recordUpdates[t.key] = t.next;
      const [kind, name] = splitKey(t.key);
      nextEntries.set(t.key, t.next
        ? fromRecord(t.next, t.problems)
        : { key: t.key, kind, name, generation: 0, specHash: '', createdAt: '', file: t.owner, object: undefined, problems: t.problems });
    }

    for (const key of new Set([...this.entries.keys(), ...nextEntries.keys()])) {
      const before = this.entries.get(key);
      const after = nextEntries.get(key);
      if (!sameEntry(before, after)) {
        const [kind, name] = splitKey(key);
        changes.push({ key, kind, name, entry: after });
      }
    }
    if (Object.keys(recordUpdates).length > 0) {
      this.state.update((d) => {
        for (const [key, rec] of Object.entries(recordUpdates)) {
          if (rec) d.objects[key] = rec;
          else delete d.objects[key];
        }
      });
    }
    this.entries = nextEntries;
    this.orphanProblems = orphans;
    return changes;
  }

  /** The file that owns a name: the persisted owner while it still claims it, else the first file (path order) defining it. */
  private ownerOf(rec: ObjectRecord | undefined, c: Candidates, loads: ReadonlyMap<string, FileLoad>, incomplete: Set<string>): string | undefined {
    if (rec && loads.has(rec.file)) {
      const stillClaims = c.valid.some((o) => o.file === rec.file) || c.claims.some((p) => p.file === rec.file) || incomplete.has(rec.file);
      if (stillClaims) return rec.file;
    }
    return c.valid[0]?.file ?? c.claims[0]?.file;
  }
}

function fromRecord(rec: ObjectRecord, problems: Problem[]): DesiredEntry {
  return {
    key: objectKey(rec.kind, rec.name), kind: rec.kind, name: rec.name, generation: rec.generation, specHash: rec.specHash,
    createdAt: rec.createdAt, file: rec.file, object: rec.object, problems,
  };
}

function splitKey(key: string): [Kind, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i) as Kind, key.slice(i + 1)];
}

function sameEntry(a: DesiredEntry | undefined, b: DesiredEntry | undefined): boolean {
  if (!a || !b) return a === b;
  return (
    a.generation === b.generation && a.specHash === b.specHash && a.file === b.file &&
    JSON.stringify(a.problems) === JSON.stringify(b.problems)
  );
}
