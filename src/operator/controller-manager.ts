// Routes desired-state changes to the objects' controllers and renders their status files.
import type { DesiredChange, DesiredStore } from '../desired/desired-store.js';
import type { StatusWriter } from '../status/status-writer.js';
import type { Logger } from '../util/logger.js';
import type { AppStatusFile, Condition, GitRepositoryStatusFile } from '../api/types.generated.js';
import { pendingStatus } from '../../controllers/app/pending-status.js';

export interface ControllerManagerOptions {
  status: StatusWriter;
  desired: DesiredStore;
  log: Logger;
  previousStatus: (rel: string) => Promise<unknown>;
}

const STATUS_DIR = { App: 'apps', GitRepository: 'gitrepositories' } as const;

export class ControllerManager {
  private readonly docs = new Map<string, AppStatusFile | GitRepositoryStatusFile>();
  private readonly previous = new Map<string, Condition[]>();

  constructor(private readonly opts: ControllerManagerOptions) {}

  apply(changes: DesiredChange[]): void {
    for (const c of changes) {
      if (c.kind === 'AppRevision') continue;
      const rel = `${STATUS_DIR[c.kind]}/${c.name}.yaml`;
      if (!c.entry) {
        this.docs.delete(rel);
        void this.opts.status.remove(rel);
        continue;
      }
      void this.render(rel, c);
    }
  }

  private async render(rel: string, c: DesiredChange): Promise<void> {
    const entry = c.entry!;
    if (!this.previous.has(rel)) {
      const prev = (await this.opts.previousStatus(rel)) as { status?: { conditions?: Condition[] } } | undefined;
      this.previous.set(rel, Array.isArray(prev?.status?.conditions) ? prev.status.conditions : []);
    }
    const now = new Date().toISOString();
    const status = pendingStatus(entry, this.docs.get(rel)?.status.conditions ?? this.previous.get(rel), now);
    const metadata = { name: entry.name, generation: entry.generation, file: entry.file };
    const doc = c.kind === 'App'
      ? ({ apiVersion: 'berth.dev/v1alpha1', kind: 'App', metadata, status } satisfies AppStatusFile)
      : ({ apiVersion: 'berth.dev/v1alpha1', kind: 'GitRepository', metadata, status: { ...status, phase: status.phase === 'Stalled' ? 'Stalled' : 'Pending' } } satisfies GitRepositoryStatusFile);
    this.docs.set(rel, doc);
    await this.opts.status.write(rel, doc);
  }

  /** Remove status files of objects that no longer exist (after the initial scan only). */
  async collectOrphanStatus(): Promise<void> {
    for (const [kind, dir] of Object.entries(STATUS_DIR) as [keyof typeof STATUS_DIR, string][]) {
      for (const name of await this.opts.status.list(dir)) {
        if (!this.opts.desired.get(kind, name)) await this.opts.status.remove(`${dir}/${name}.yaml`);
      }
    }
  }

  appStatuses(): AppStatusFile[] {
    return [...this.docs.values()].filter((d): d is AppStatusFile => d.kind === 'App').sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  }

  phaseCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const d of this.appStatuses()) counts[d.status.phase] = (counts[d.status.phase] ?? 0) + 1;
    return counts;
  }

  metrics(): string {
    const lines = ['# HELP berth_apps Apps by phase.', '# TYPE berth_apps gauge'];
    for (const [phase, n] of Object.entries(this.phaseCounts())) lines.push(`berth_apps{phase="${phase}"} ${n}`);
    return `${lines.join('\n')}\n`;
  }
}
