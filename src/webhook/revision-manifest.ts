// The webhook's only output: files in the folder berth owns inside the watched folder
// (manifests/_webhook/). The watcher picks them up like any edit, so a restart, a replay or
// a person reading the folder sees the same truth. Files are written atomically and only
// when their content changes (an SD card must not wear down on repeated pushes).
import { lstat, mkdir, readFile, readdir, rm, rmdir } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { parse, stringify } from 'yaml';
import { BerthError } from '../../controllers/ports/errors.js';
import type { AppRevision, AppRevisionSpec } from '../api/types.generated.js';
import { atomicWrite } from '../util/atomic-write.js';
import { listFiles } from '../git/git-source.js';
import { WEBHOOK_DIR } from '../manifests/manifest-files.js';

export { WEBHOOK_DIR };

const HEADER = '# written by berth; do not edit\n';
const NAME_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function appRevisionPath(manifestsDir: string, app: string): string {
  return join(manifestsDir, WEBHOOK_DIR, `${app}.revision.yaml`);
}

/**
 * Writes manifests/_webhook/<app>.revision.yaml (kind AppRevision). Returns false when the
 * file already pins the same commit from the same source: a new delivery id alone is not a
 * change (no rewrite, no new generation for the same commit).
 */
export async function writeAppRevision(manifestsDir: string, app: string, spec: AppRevisionSpec): Promise<boolean> {
  if (!NAME_RE.test(app)) throw new BerthError('stalled', 'InvalidName', `invalid app name ${JSON.stringify(app)}`);
  if (!/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(spec.commit)) throw new BerthError('stalled', 'InvalidCommit', `not a full commit id: ${JSON.stringify(spec.commit)}`);
  const path = appRevisionPath(manifestsDir, app);
  const current = await readCurrentSpec(path);
  if (current && current.commit === spec.commit && current.url === spec.url && current.branch === spec.branch && current.source === spec.source) {
    return false;
  }
  const doc: AppRevision = {
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'AppRevision',
    metadata: { name: app },
    spec: {
      commit: spec.commit,
      ...(spec.url !== undefined ? { url: spec.url } : {}),
      ...(spec.branch !== undefined ? { branch: spec.branch } : {}),
      source: spec.source,
      ...(spec.delivery !== undefined ? { delivery: spec.delivery } : {}),
    },
  };
  // lineWidth 0: a long URL stays on one line.
  await atomicWrite(path, HEADER + stringify(doc, { lineWidth: 0 }));
  return true;
}

/** Removes the app's revision file (the App was deleted). True when there was one. */
export async function removeAppRevision(manifestsDir: string, app: string): Promise<boolean> {
  if (!NAME_RE.test(app)) return false;
  const path = appRevisionPath(manifestsDir, app);
  const existed = await lstat(path).then(
    () => true,
    () => false,
  );
  await rm(path, { force: true });
  return existed;
}

async function readCurrentSpec(path: string): Promise<Partial<AppRevisionSpec> | undefined> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const doc = parse(text, { maxAliasCount: 0 }) as { spec?: Partial<AppRevisionSpec> } | null;
    return doc?.spec ?? undefined;
  } catch {
    return undefined; // unreadable: rewrite it
  }
}

export interface SyncOptions {
  /** Per file; larger files are skipped and reported. Default 1 MiB (the watcher's own limit). */
  maxFileBytes?: number;
  /** Default 1000. */
  maxFiles?: number;
}

export interface SyncResult {
  added: string[];
  updated: string[];
  removed: string[];
  unchanged: number;
  skipped: { path: string; reason: string }[];
}

/**
 * Mirrors the `.yaml`/`.yml` files under `subPath` of a checkout into `destDir`
 * (manifests/_webhook/<repository name>/), keeping the folder structure: new and changed
 * files are written atomically, files gone upstream are removed, symlinks are never followed,
 * oversized files are skipped. A missing `subPath` throws (PathNotFound) and removes nothing.
 */
export async function syncRepositoryManifests(checkoutDir: string, subPath: string, destDir: string, opts: SyncOptions = {}): Promise<SyncResult> {
  const maxFileBytes = opts.maxFileBytes ?? 1 << 20;
  const listed = await listFiles(checkoutDir, subPath, { extensions: ['.yaml', '.yml'], ...(opts.maxFiles ? { maxFiles: opts.maxFiles } : {}) });
  const result: SyncResult = { added: [], updated: [], removed: [], unchanged: 0, skipped: [...listed.skipped.filter((s) => /\.ya?ml$/.test(s.path))] };
  const wanted = new Set<string>();
  for (const f of listed.files) {
    if (f.size > maxFileBytes) {
      result.skipped.push({ path: f.path, reason: `larger than ${maxFileBytes} bytes` });
      continue;
    }
    wanted.add(f.path);
    const content = await readFile(join(listed.dir, f.path));
    const target = join(destDir, f.path);
    const existing = await readFile(target).catch(() => undefined);
    if (existing?.equals(content)) {
      result.unchanged++;
      continue;
    }
    await atomicWrite(target, content);
    (existing ? result.updated : result.added).push(f.path);
  }

  // Whatever else is in the owned folder is gone upstream (or was never ours to keep).
  const present = await listOwned(destDir);
  for (const p of present.files) {
    if (wanted.has(p)) continue;
    await rm(join(destDir, p), { force: true });
    result.removed.push(p);
  }
  for (const d of present.dirs.reverse()) await rmdir(join(destDir, d)).catch(() => undefined); // only empty ones go
  return result;
}

/** Files (any name) and folders under `dir`, relative, folders parents first. */
async function listOwned(dir: string): Promise<{ files: string[]; dirs: string[] }> {
  const files: string[] = [];
  const dirs: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(join(dir, rel), { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const p = rel ? `${rel}${sep}${e.name}` : e.name;
      if (e.isDirectory()) {
        dirs.push(p);
        await walk(p);
      } else files.push(p.split(sep).join('/')); // leftover temp files of a killed write included
    }
  };
  await mkdir(dir, { recursive: true });
  await walk('');
  return { files, dirs };
}
