// Validate manifest files and folders the way the operator would see them together: each
// file alone, then names across files (a duplicate is an error on the later file).
import { stat } from 'node:fs/promises';

import { loadManifestFile, type FileLoad, type Problem } from './loader.js';
import { walk } from './manifest-watcher.js';
import { DesiredStore } from '../desired/desired-store.js';
import { emptyState, type StateData } from '../state/state-schema.js';

export interface ValidationResult {
  files: string[];
  objects: number;
  problems: Problem[];
}

export async function validatePaths(paths: string[]): Promise<ValidationResult> {
  const files: string[] = [];
  for (const p of paths) {
    const st = await stat(p).catch(() => undefined);
    if (!st) throw new Error(`${p}: no such file or folder`);
    if (st.isDirectory()) files.push(...(await walk(p)));
    else files.push(p);
  }
  const loads = new Map<string, FileLoad>();
  for (const f of files) loads.set(f, await loadManifestFile(f, f));
  const data: StateData = emptyState();
  const desired = new DesiredStore({ data, update: (m: (d: StateData) => void) => m(data) });
  desired.apply(loads, true);
  const problems = [
    ...desired.fileProblems(),
    ...desired.list().flatMap((e) => e.problems),
  ].sort((a, b) => (a.file === b.file ? a.line - b.line || a.col - b.col : a.file < b.file ? -1 : 1));
  return { files, objects: desired.list().filter((e) => e.object).length, problems };
}

