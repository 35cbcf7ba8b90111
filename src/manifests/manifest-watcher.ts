// Watches the manifests folder (recursively, .yaml/.yml only) and keeps the latest load of
// every file. Editor saves (temp file + rename), partial writes and delete-then-recreate are
// absorbed by a short debounce plus a settle check (a file is read only once it has not been
// modified for a moment), and a file whose bytes did not change is not reported again.
// Nothing is reported before the initial full scan is complete.
import { watch, type FSWatcher } from 'chokidar';
import { stat, readdir } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, relative, sep, basename } from 'node:path';
import { loadManifestFile, loadManifestText, MAX_FILE_BYTES, type FileLoad } from './loader.js';
import type { Logger } from '../util/logger.js';

export interface ManifestWatcherOptions {
  dir: string;
  log: Logger;
  /** Called with all current loads (keyed by path relative to dir) whenever any file changed. */
  onChange: (loads: ReadonlyMap<string, FileLoad>, initial: boolean) => void;
  debounceMs?: number;
  /** A file modified less than this long ago is still being written: read it later. */
  settleMs?: number;
  /** A file gone for less than this long may be an editor's delete-then-recreate: look again before dropping it. */
  deleteGraceMs?: number;
}

export function isManifestPath(path: string): boolean {
  return /\.ya?ml$/i.test(path) && !basename(path).startsWith('.');
}

export class ManifestWatcher {
  private watcher: FSWatcher | undefined;
  private readonly loads = new Map<string, FileLoad>();
  private readonly digests = new Map<string, string>();
  private readonly dirty = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private readonly dirTimers = new Set<NodeJS.Timeout>();
  private ready = false;
  private flushing: Promise<void> = Promise.resolve();
  private readonly debounceMs: number;
  private readonly settleMs: number;
  private readonly deleteGraceMs: number;
  /** Loaded files found missing, and since when (monotonic ms). */
  private readonly missingSince = new Map<string, number>();

  constructor(private readonly opts: ManifestWatcherOptions) {
    this.debounceMs = opts.debounceMs ?? 25;
    this.settleMs = opts.settleMs ?? 25;
    this.deleteGraceMs = opts.deleteGraceMs ?? 500;
  }

  /** Resolves once the initial scan has been loaded and reported. */
  async start(): Promise<void> {
    const { dir } = this.opts;
    this.watcher = watch(dir, {
      ignoreInitial: false,
      atomic: true,
      // Hidden files and folders are editor swap/temp files (and berth's own temp files).
      ignored: (p, stats) => {
        const rel = relative(dir, p);
        if (rel === '') return false;
        if (rel.split(sep).some((s) => s.startsWith('.'))) return true;
        return stats?.isFile() === true && !isManifestPath(p);
      },
    });
    this.watcher.on('all', (event, path) => {
      if (event === 'add' || event === 'change' || event === 'unlink') this.mark(path);
      else if (event === 'addDir' && this.ready) this.recheckDir(path);
    });
    this.watcher.on('error', (e) => {
      // ENOSPC here means the inotify watch limit, not a full disk.
      this.opts.log.error({ err: e }, 'manifest watcher error; rescanning the folder');
      void this.rescan();
    });
    await new Promise<void>((resolve) => this.watcher!.once('ready', () => resolve()));
    this.ready = true;
    await this.flush(true);
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    for (const t of this.dirTimers) clearTimeout(t);
    await this.watcher?.close();
    await this.flushing;
  }

  current(): ReadonlyMap<string, FileLoad> {
    return this.loads;
  }

  /** Re-walk the folder (periodic safety net, or after a watcher error). */
  async rescan(): Promise<void> {
    const found = await walk(this.opts.dir);
    for (const p of found) this.dirty.add(p);
    for (const rel of this.loads.keys()) this.dirty.add(join(this.opts.dir, rel));
    this.schedule(0);
  }

  /**
   * chokidar lists a new folder before it watches it (paulmillr/chokidar#1471, still in 5.0.0):
   * a file renamed into it in between — berth's own atomic writes into manifests/_webhook/ — is
   * never reported. Walk the folder again once its watch is surely up.
   */
  private recheckDir(dir: string): void {
    for (const ms of [200, 2000]) {
      const timer = setTimeout(() => {
        this.dirTimers.delete(timer);
        void walk(dir).then((found) => {
          const missed = found.filter((p) => !this.loads.has(relative(this.opts.dir, p)));
          for (const p of missed) this.dirty.add(p);
          if (missed.length > 0) this.schedule(0);
        });
      }, ms);
      timer.unref();
      this.dirTimers.add(timer);
    }
  }

  private mark(path: string): void {
    if (!isManifestPath(path)) return;
    this.dirty.add(path);
    if (this.ready) this.schedule(this.debounceMs);
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush(false);
    }, ms);
  }

  private flush(initial: boolean): Promise<void> {
    this.flushing = this.flushing.then(() => this.flushNow(initial)).catch((e: unknown) => {
      this.opts.log.error({ err: e }, 'failed to load manifests');
    });
    return this.flushing;
  }

  private async flushNow(initial: boolean): Promise<void> {
    const paths = [...this.dirty];
    this.dirty.clear();
    let changed = false;
    // When to look again at paths that are not settled yet (the soonest wins).
    let lookAgainIn = Infinity;
    for (const path of paths) {
      const rel = relative(this.opts.dir, path);
      let st;
      try {
        st = await stat(path);
      } catch {
        st = undefined;
      }
      if (!st?.isFile()) {
        if (!initial && this.loads.has(rel)) {
          const since = this.missingSince.get(rel) ?? performance.now();
          this.missingSince.set(rel, since);
          const left = this.deleteGraceMs - (performance.now() - since);
          if (left > 0) {
            // Maybe an editor's delete-then-recreate: the recreate is an event of its own, so one
            // more look when the grace ends is enough.
            this.dirty.add(path);
            lookAgainIn = Math.min(lookAgainIn, left);
            continue;
          }
        }
        this.missingSince.delete(rel);
        changed = this.loads.delete(rel) || changed;
        this.digests.delete(rel);
        continue;
      }
      this.missingSince.delete(rel);
      if (!initial && Date.now() - st.mtimeMs < this.settleMs) {
        // Still being written: look again shortly rather than act on a torn file.
        this.dirty.add(path);
        lookAgainIn = Math.min(lookAgainIn, this.settleMs);
        continue;
      }
      const load = await this.read(path, rel, st.size);
      if (load) {
        this.loads.set(rel, load);
        changed = true;
      }
    }
    if (lookAgainIn !== Infinity) this.schedule(lookAgainIn);
    if (changed || initial) this.opts.onChange(this.loads, initial);
  }

  /** Loads a file, or returns undefined when its bytes are the same as last time. */
  private async read(path: string, rel: string, size: number): Promise<FileLoad | undefined> {
    if (size > MAX_FILE_BYTES) {
      this.digests.delete(rel);
      return loadManifestFile(path, rel);
    }
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch {
      return loadManifestFile(path, rel);
    }
    const digest = createHash('sha256').update(bytes).digest('hex');
    if (this.digests.get(rel) === digest && this.loads.has(rel)) return undefined;
    this.digests.set(rel, digest);
    return bytes.length > MAX_FILE_BYTES ? loadManifestFile(path, rel) : loadManifestText(rel, bytes.toString('utf8'));
  }
}

/** All manifest files under dir (hidden entries skipped), for rescans and `berth validate DIR`. */
export async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if ((e.isFile() || e.isSymbolicLink()) && isManifestPath(p)) out.push(p);
  }
  return out.sort();
}
