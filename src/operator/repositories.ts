// GitRepository controllers at run time: one actor per repository, its status file, and the
// synced folder (manifests/_webhook/<name>/) it owns — removed with the repository, so the
// apps it brought go away with it. Invalid synced files show in the repository's status;
// like any manifest, they never touch what runs.
import { rm } from 'node:fs/promises';
import { createActor, fromPromise, type Actor } from 'xstate';
import { repositoryMachine, type RepositorySpec } from '../../controllers/gitrepository/gitrepository.machine.js';
import { mergeConditions, type ConditionInput } from '../../controllers/status/conditions.js';
import { manifestProblemCondition } from '../../controllers/app/pending-status.js';
import type { DesiredEntry, DesiredStore } from '../desired/desired-store.js';
import type { StatusWriter } from '../status/status-writer.js';
import type { GitRepository, GitRepositoryStatus, GitRepositoryStatusFile, StatusEvent, Condition } from '../api/types.generated.js';
import { parseDuration } from '../api/quantities.js';
import { formatProblem } from '../manifests/loader.js';
import { WEBHOOK_DIR } from '../webhook/revision-manifest.js';
import type { Clock } from '../../controllers/ports/clock.js';
import type { Logger } from '../util/logger.js';
import { repositoryFolder, syncRepository, type RepositorySyncDeps } from './repository-sync.js';

type RepositoryActor = Actor<typeof repositoryMachine>;

export interface RepositoriesOptions extends RepositorySyncDeps {
  desired: DesiredStore;
  status: StatusWriter;
  clock: Clock;
  log: Logger;
  previousStatus: (rel: string) => Promise<unknown>;
}

function specOf(entry: DesiredEntry): RepositorySpec {
  const s = (entry.object as GitRepository).spec;
  return { url: s.url, branch: s.branch, path: s.path, intervalMs: parseDuration(s.interval) };
}

export class Repositories {
  private readonly actors = new Map<string, RepositoryActor>();
  private readonly docs = new Map<string, GitRepositoryStatusFile>();

  constructor(private readonly opts: RepositoriesOptions) {}

  /** A GitRepository was added, changed or deleted. */
  async apply(name: string, entry: DesiredEntry | undefined): Promise<void> {
    const actor = this.actors.get(name);
    const rel = `gitrepositories/${name}.yaml`;
    if (!entry) {
      actor?.stop();
      this.actors.delete(name);
      this.docs.delete(rel);
      await this.opts.status.remove(rel);
      // The repository's manifests leave with it (and so do the apps they defined).
      await rm(repositoryFolder(this.opts.manifestsDir, name), { recursive: true, force: true });
      return;
    }
    if (!entry.object) return this.render(name, entry);
    const spec = specOf(entry);
    if (actor) {
      const cur = actor.getSnapshot().context.spec;
      if (JSON.stringify(cur) !== JSON.stringify(spec)) actor.send({ type: 'spec.changed', spec, generation: entry.generation });
      return this.render(name, entry);
    }
    const prev = (await this.opts.previousStatus(rel)) as { status?: { commit?: string; events?: StatusEvent[] } } | undefined;
    const machine = repositoryMachine.provide({
      actors: { sync: fromPromise(({ input, signal }) => syncRepository(input, this.opts, signal)) },
    });
    const a = createActor(machine, {
      input: {
        name, spec, generation: entry.generation, clock: this.opts.clock, random: Math.random,
        previous: { ...(prev?.status?.commit ? { commit: prev.status.commit } : {}), ...(prev?.status?.events ? { events: prev.status.events } : {}) },
      },
    });
    this.actors.set(name, a);
    a.subscribe(() => void this.render(name, this.opts.desired.get('GitRepository', name)));
    a.start();
  }

  /** A webhook push for this repository: sync now. */
  sync(name: string): boolean {
    const a = this.actors.get(name);
    a?.send({ type: 'sync' });
    return a !== undefined;
  }

  /** Problems in the repository's synced files changed: redraw its status. */
  refresh(): void {
    for (const name of this.actors.keys()) void this.render(name, this.opts.desired.get('GitRepository', name));
  }

  stop(): void {
    for (const a of this.actors.values()) a.stop();
  }

  private async render(name: string, entry: DesiredEntry | undefined): Promise<void> {
    if (!entry) return;
    const rel = `gitrepositories/${name}.yaml`;
    const prevDoc = this.docs.get(rel) ?? ((await this.opts.previousStatus(rel)) as GitRepositoryStatusFile | undefined);
    const previous: Condition[] | undefined = prevDoc?.status?.conditions;
    const now = this.opts.clock.now().toISOString();
    const snap = this.actors.get(name)?.getSnapshot();
    const ctx = snap?.context;
    const folder = `${WEBHOOK_DIR}/${name}/`;
    const problems = [
      ...this.opts.desired.fileProblems().filter((p) => p.file.startsWith(folder)),
      ...this.opts.desired.list().flatMap((e) => e.problems).filter((p) => p.file.startsWith(folder)),
    ].map(formatProblem);
    const conditions: ConditionInput[] = [];
    const manifest = manifestProblemCondition(entry);
    let phase: GitRepositoryStatus['phase'] = 'Pending';
    if (!ctx) {
      conditions.push({ type: 'Ready', status: 'False', reason: manifest?.reason ?? 'Pending', message: manifest ? 'the manifest has never been valid' : 'waiting for the first sync' });
      phase = manifest ? 'Stalled' : 'Pending';
    } else if (ctx.lastError) {
      conditions.push({ type: 'Ready', status: 'False', reason: ctx.lastError.reason, message: ctx.lastError.message });
      phase = snap.value === 'stalled' ? 'Stalled' : 'Failed';
      if (snap.value === 'stalled') conditions.push({ type: 'Stalled', status: 'True', reason: ctx.lastError.reason, message: ctx.lastError.message });
    } else if (ctx.commit && ctx.syncedAt) {
      conditions.push({ type: 'Ready', status: 'True', reason: 'Synced', message: `${ctx.files.length} manifest file(s) from ${ctx.commit.slice(0, 12)}${problems.length ? `; ${problems.length} problem(s)` : ''}` });
      phase = 'Ready';
    } else {
      conditions.push({ type: 'Ready', status: 'False', reason: 'Syncing', message: `syncing ${entry.object ? (entry.object as GitRepository).spec.url : ''}` });
    }
    if (snap?.value === 'syncing' && ctx?.syncedAt) conditions.push({ type: 'Reconciling', status: 'True', reason: 'Syncing', message: 'looking for new commits' });
    if (manifest) conditions.push(manifest);
    const spec = (entry.object as GitRepository | undefined)?.spec;
    const status: GitRepositoryStatus = {
      observedGeneration: entry.generation,
      phase,
      conditions: mergeConditions(previous, conditions, now),
      ...(spec ? { url: spec.url, branch: spec.branch } : {}),
      ...(ctx?.commit ? { commit: ctx.commit } : {}),
      ...(ctx?.syncedAt ? { syncedAt: ctx.syncedAt } : {}),
      ...(ctx?.files.length ? { files: ctx.files } : {}),
      ...(problems.length || ctx?.skipped.length ? { problems: [...problems, ...(ctx?.skipped ?? [])] } : {}),
      ...(ctx?.lastError ? { lastError: { reason: ctx.lastError.reason, message: ctx.lastError.message, at: ctx.lastError.at } } : {}),
      ...(snap?.value === 'backoff' && ctx?.retryAt ? { retry: { attempt: ctx.attempt, nextAt: ctx.retryAt } } : {}),
      ...(ctx?.events.length ? { events: ctx.events } : {}),
    };
    const doc: GitRepositoryStatusFile = { apiVersion: 'berth.dev/v1alpha1', kind: 'GitRepository', metadata: { name, generation: entry.generation, file: entry.file }, status };
    this.docs.set(rel, doc);
    await this.opts.status.write(rel, doc);
  }
}
