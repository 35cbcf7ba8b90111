// Edits to the manifests folder made by the CLI (apply, delete): always validated first and
// written atomically, so the watcher never sees a half-written file.
import { readFile, unlink } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { atomicWrite } from '../util/atomic-write.js';
import { loadManifestFile, loadManifestText, formatProblem, type FileLoad } from './loader.js';
import { walk } from './manifest-watcher.js';
import type { Kind } from '../api/schemas.js';

/** Folder inside the manifests folder owned by berth (webhook revisions, synced repositories). */
export const WEBHOOK_DIR = '_webhook';

export async function loadFolder(dir: string): Promise<Map<string, FileLoad>> {
  const loads = new Map<string, FileLoad>();
  for (const f of await walk(dir)) loads.set(relative(dir, f), await loadManifestFile(f, relative(dir, f)));
  return loads;
}

function isOwnedByBerth(rel: string): boolean {
  return rel === WEBHOOK_DIR || rel.startsWith(`${WEBHOOK_DIR}/`);
}

export interface ApplyResult {
  target: string;
  changed: boolean;
}

/** Validate `text` (from `source`) and place it in the manifests folder. Throws with every problem listed. */
export async function applyManifest(dir: string, source: string, text: string): Promise<ApplyResult> {
  const load = loadManifestText(source, text);
  if (load.problems.length > 0) throw new Error(load.problems.map(formatProblem).join('\n'));
  if (load.objects.length === 0) throw new Error(`${source}: no manifest in it`);
  const folder = await loadFolder(dir);
  const owners = new Map<string, string>();
  for (const [rel, l] of folder) for (const o of l.objects) owners.set(`${o.kind}/${o.name}`, rel);
  const first = load.objects[0]!;
  const target = owners.get(`${first.kind}/${first.name}`) ?? (load.objects.length === 1 ? `${first.name}.yaml` : source.split('/').pop()!);
  if (isOwnedByBerth(target)) throw new Error(`${first.kind} "${first.name}" comes from ${target}, which berth writes; change it at its source`);
  for (const o of load.objects) {
    const owner = owners.get(`${o.kind}/${o.name}`);
    if (owner !== undefined && owner !== target) throw new Error(`${o.kind} "${o.name}" is already defined in ${owner}; apply one file per place`);
  }
  const existing = folder.get(target);
  if (existing) {
    const kept = new Set(load.objects.map((o) => `${o.kind}/${o.name}`));
    const lost = existing.objects.filter((o) => !kept.has(`${o.kind}/${o.name}`));
    if (lost.length > 0) throw new Error(`${target} also defines ${lost.map((o) => `${o.kind} "${o.name}"`).join(', ')}; edit that file directly`);
  }
  const path = join(dir, target);
  const before = await readFile(path, 'utf8').catch(() => undefined);
  if (before === text) return { target, changed: false };
  await atomicWrite(path, text);
  return { target, changed: true };
}

/** Remove an object's manifest: the file, or just its document in a multi-document file. */
export async function deleteManifest(dir: string, kind: Kind, name: string): Promise<string> {
  const folder = await loadFolder(dir);
  let owner: string | undefined;
  for (const [rel, l] of folder) if (l.objects.some((o) => o.kind === kind && o.name === name)) owner ??= rel;
  if (owner === undefined) throw new Error(`no ${kind} named "${name}" in ${dir}`);
  if (isOwnedByBerth(owner)) throw new Error(`${kind} "${name}" comes from ${owner}, which berth writes; remove it at its source (the git repository)`);
  const path = join(dir, owner);
  const load = folder.get(owner)!;
  if (load.objects.length === 1 && load.problems.length === 0) {
    await unlink(path);
    return owner;
  }
  const docs = parseAllDocuments(await readFile(path, 'utf8'));
  if (!Array.isArray(docs)) throw new Error(`${owner}: cannot parse`);
  const keep = docs.filter((d) => {
    const js = d.toJS() as { kind?: string; metadata?: { name?: string } } | null;
    return !(js?.kind === kind && js.metadata?.name === name);
  });
  await atomicWrite(path, keep.map((d) => d.toString()).join(''));
  return owner;
}
