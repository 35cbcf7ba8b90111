// berth's memory of facts that cannot be re-observed from Docker or the manifests:
// generations and last good specs, deploy history, last activity, webhook deliveries, the
// build that was running. lowdb holds the document; writes go through a durable adapter
// (temp + fsync + rename + fsync dir), are batched, and happen only when content changed.
// A state file that cannot be used is moved aside and berth starts from the world.
import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { Low, type Adapter } from 'lowdb';
import { atomicWrite } from '../util/atomic-write.js';
import type { Logger } from '../util/logger.js';
import { emptyState, migrate, STATE_VERSION, type StateData } from './state-schema.js';

export const STATE_FILE = 'state.json';

class DurableJsonFile implements Adapter<StateData> {
  constructor(private readonly path: string) {}
  async read(): Promise<StateData | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    return migrate(JSON.parse(text));
  }
  async write(data: StateData): Promise<void> {
    await atomicWrite(this.path, `${JSON.stringify(data, null, 1)}\n`, 0o600);
  }
}

export interface StateStoreOptions {
  dir: string;
  log: Logger;
  /** Coalesce writes for this long (ms). */
  batchMs?: number;
  now?: () => Date;
}

export class StateStore {
  private readonly db: Low<StateData>;
  private lastWritten = '';
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private readonly batchMs: number;
  private readonly log: Logger;
  /** The last write error (e.g. disk full), cleared by the next successful write. */
  lastError: { message: string; at: string } | undefined;
  /** Set when the file found at start was unusable and was moved aside. */
  recoveredFrom: string | undefined;

  private constructor(private readonly opts: StateStoreOptions) {
    this.db = new Low(new DurableJsonFile(join(opts.dir, STATE_FILE)), emptyState());
    this.batchMs = opts.batchMs ?? 200;
    this.log = opts.log;
  }

  static async open(opts: StateStoreOptions): Promise<StateStore> {
    const store = new StateStore(opts);
    const path = join(opts.dir, STATE_FILE);
    try {
      await store.db.read();
      store.lastWritten = JSON.stringify(store.db.data);
    } catch (e) {
      const aside = `${path}.corrupt-${(opts.now?.() ?? new Date()).toISOString().replace(/[:.]/g, '-')}`;
      await rename(path, aside).catch(() => undefined);
      store.recoveredFrom = aside;
      store.db.data = emptyState();
      opts.log.error({ err: e, movedTo: aside }, 'state file unusable; moved aside, rebuilding from Docker and the manifests');
    }
    return store;
  }

  get data(): Readonly<StateData> {
    return this.db.data;
  }

  /** Mutate the state; the write is batched and skipped when nothing changed. */
  update(mutate: (d: StateData) => void): void {
    mutate(this.db.data);
    this.schedule();
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.batchMs);
  }

  /** Write now if anything changed; resolves when on disk. Never rejects (errors are kept in lastError). */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.writing = this.writing.then(async () => {
      const text = JSON.stringify(this.db.data);
      if (text === this.lastWritten) return;
      try {
        await this.db.write();
        this.lastWritten = text;
        if (this.lastError) this.log.info('state writes work again');
        this.lastError = undefined;
      } catch (e) {
        const message = (e as Error).message;
        if (this.lastError?.message !== message) this.log.error({ err: e }, 'cannot write the state file; will retry');
        this.lastError = { message, at: new Date().toISOString() };
        // Retry later rather than in a loop: the disk may stay full for a while.
        setTimeout(() => this.schedule(), 5_000).unref();
      }
    });
    return this.writing;
  }

  static readonly version = STATE_VERSION;
}
