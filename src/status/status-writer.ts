// Status files: YAML, written atomically, and only when their content changes — compared with
// what is on disk, so a restart with nothing changed writes nothing (an SD card must not be
// worn down by a quiet system). Writes to one file are serialised; different files proceed
// independently.
import { readFile, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { atomicWrite } from '../util/atomic-write.js';
import { scrub, type Logger } from '../util/logger.js';

export function renderStatus(doc: unknown): string {
  // Secret values never reach a status file, whatever message carried them (the logger's registry).
  return scrub(stringify(doc, { lineWidth: 0, aliasDuplicateObjects: false }));
}

export class StatusWriter {
  /** Path -> content last known to be on disk (undefined: not yet read). */
  private readonly onDisk = new Map<string, string | null>();
  private readonly queues = new Map<string, Promise<void>>();
  /** Number of files actually written (tests and metrics use it). */
  writes = 0;

  constructor(
    readonly dir: string,
    private readonly log: Logger,
  ) {}

  /** Write `rel` (e.g. "apps/blog.yaml") if its rendered content differs from the file. */
  write(rel: string, doc: unknown): Promise<void> {
    const text = renderStatus(doc);
    return this.enqueue(rel, async (path) => {
      if ((await this.current(rel, path)) === text) return;
      await atomicWrite(path, text);
      this.onDisk.set(rel, text);
      this.writes++;
    });
  }

  remove(rel: string): Promise<void> {
    return this.enqueue(rel, async (path) => {
      if ((await this.current(rel, path)) === null) return;
      await unlink(path).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
      this.onDisk.set(rel, null);
    });
  }

  /** Names (without .yaml) of the status files present in a sub-folder, e.g. "apps". */
  async list(sub: string): Promise<string[]> {
    try {
      return (await readdir(join(this.dir, sub))).filter((f) => f.endsWith('.yaml') && !f.startsWith('.')).map((f) => f.slice(0, -5));
    } catch {
      return [];
    }
  }

  /** Wait for every queued write. */
  async idle(): Promise<void> {
    while (this.queues.size > 0) await Promise.all(this.queues.values());
  }

  private async current(rel: string, path: string): Promise<string | null> {
    if (!this.onDisk.has(rel)) {
      this.onDisk.set(rel, await readFile(path, 'utf8').catch(() => null));
    }
    return this.onDisk.get(rel)!;
  }

  private enqueue(rel: string, job: (path: string) => Promise<void>): Promise<void> {
    const path = join(this.dir, rel);
    const prev = this.queues.get(rel) ?? Promise.resolve();
    const next = prev.then(() => job(path)).catch((e: unknown) => {
      // Forget what we believed was on disk: the next write re-reads it.
      this.onDisk.delete(rel);
      this.log.error({ err: e, file: path }, 'cannot write status file');
    });
    this.queues.set(rel, next);
    void next.finally(() => {
      if (this.queues.get(rel) === next) this.queues.delete(rel);
    });
    return next;
  }
}
