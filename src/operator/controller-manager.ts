// Runs one controller per App and routes everything that should make one look again: desired
// changes, Docker events (debounced), Docker coming back. It renders status files, persists
// the facts controllers learn, and garbage-collects apps whose manifests vanished while
// berth was down — only after the first full scan of both the manifests and Docker.
import type { DesiredChange, DesiredEntry, DesiredStore } from '../desired/desired-store.js';
import type { StatusWriter } from '../status/status-writer.js';
import type { StateStore } from '../state/state-store.js';
import type { Logger } from '../util/logger.js';
import type { App, AppStatus, AppStatusFile, Condition, StatusEvent } from '../api/types.generated.js';
import type { ContainerRuntime } from '../../controllers/ports/container-runtime.js';
import type { AppFacts } from '../../controllers/app/app.machine.js';
import type { AppDesired } from '../../controllers/app/types.js';
import { pendingStatus } from '../../controllers/app/pending-status.js';
import { LABEL_APP, ownerLabels } from '../api/labels.js';
import { AppRunner, type AppRunnerDeps } from './app-runner.js';
import type { StatusExtras } from './traffic.js';
import type { Revisions } from './revisions.js';
import type { Repositories } from './repositories.js';

export interface ControllerManagerOptions {
  status: StatusWriter;
  desired: DesiredStore;
  state: StateStore;
  runtime: ContainerRuntime;
  deps: AppRunnerDeps;
  log: Logger;
  previousStatus: (rel: string) => Promise<unknown>;
  /** Called whenever an app's controller changed (status, serving containers). */
  onAppChange?: (name: string) => void;
  /** Called when the connection to Docker is won or lost. */
  onDockerChange?: (connected: boolean) => void;
  /** Called when an app's controller removed everything it made (the manifest is gone). */
  onAppDeleted?: (name: string) => void;
  /** Parts of an app's status owned by routing and certificates. */
  statusExtras?: (name: string) => StatusExtras | undefined;
  /** Revisions of built apps (git commits, context hashes). */
  revisions?: Revisions;
  /** GitRepository controllers. */
  repositories?: Repositories;
}

const STATUS_DIR = { App: 'apps', GitRepository: 'gitrepositories' } as const;
const EVENT_DEBOUNCE_MS = 100;

interface PreviousStatus {
  phase?: AppStatus['phase'];
  conditions?: Condition[];
  events?: StatusEvent[];
  idle?: { sleepingSince?: string };
}

export class ControllerManager {
  private readonly runners = new Map<string, AppRunner>();
  private readonly docs = new Map<string, AppStatusFile>();
  private readonly previous = new Map<string, PreviousStatus>();
  private readonly pendingReconcile = new Map<string, NodeJS.Timeout>();
  private started = false;
  private secrets: Record<string, Record<string, string>> = {};
  private readonly events = new AbortController();
  docker: { connected: boolean; since?: string; lastError?: string } = { connected: false };
  /** Counters for /metrics: reconciles by outcome, errors by reason. */
  readonly counters = { reconciles: new Map<string, number>(), errors: new Map<string, number>() };
  private readonly lastState = new Map<string, string>();

  constructor(private readonly opts: ControllerManagerOptions) {}

  /** Load previous status files (to keep condition times and events across restarts). */
  async loadPrevious(): Promise<void> {
    for (const [kind, dir] of Object.entries(STATUS_DIR)) {
      for (const name of await this.opts.status.list(dir)) {
        const doc = (await this.opts.previousStatus(`${dir}/${name}.yaml`)) as { kind?: string; status?: PreviousStatus } | undefined;
        if (doc?.kind === kind && doc.status) this.previous.set(`${dir}/${name}.yaml`, doc.status);
      }
    }
  }

  /** Desired state changed (before start: only recorded; start() takes it from the store). */
  apply(changes: DesiredChange[]): void {
    if (!this.started) return;
    // Problems in synced files show in their repository's status.
    if (changes.length > 0) this.opts.repositories?.refresh();
    for (const c of changes) {
      if (c.kind === 'App') this.applyApp(c.name, c.entry);
      else if (c.kind === 'GitRepository') void this.opts.repositories?.apply(c.name, c.entry);
      // A new revision of a built app changes that app's desired state.
      else if (c.kind === 'AppRevision') this.reapply(c.name);
    }
  }

  /**
   * After the initial manifest scan: start a controller per app, watch Docker events, and
   * remove what belongs to apps that no longer exist (listed from Docker's own labels).
   */
  async start(): Promise<void> {
    this.started = true;
    for (const e of this.opts.desired.list('App')) this.applyApp(e.name, e);
    for (const e of this.opts.desired.list('GitRepository')) await this.opts.repositories?.apply(e.name, e);
    this.opts.runtime.watchEvents(
      ownerLabels(this.opts.deps.config.instance),
      (ev) => {
        const app = ev.attributes[LABEL_APP];
        if (app) this.reconcileSoon(app);
      },
      (connected, error) => this.dockerConnection(connected, error),
      this.events.signal,
    );
    await this.collectOrphans();
  }

  async stop(): Promise<void> {
    this.events.abort();
    for (const t of this.pendingReconcile.values()) clearTimeout(t);
    for (const r of this.runners.values()) r.stop();
    await this.opts.status.idle();
  }

  /** The full resync: remove what belongs to vanished apps, and every app looks again. */
  async resync(): Promise<string> {
    await this.collectOrphans();
    for (const name of this.runners.keys()) this.reconcileSoon(name);
    return `resynced ${this.runners.size} app(s)`;
  }

  /** Ask one app to look again (level-triggered: it re-observes everything). */
  reconcileSoon(name: string): void {
    if (this.pendingReconcile.has(name)) return;
    this.pendingReconcile.set(name, setTimeout(() => {
      this.pendingReconcile.delete(name);
      this.runners.get(name)?.actor.send({ type: 'reconcile' });
    }, EVENT_DEBOUNCE_MS));
  }

  /** The app's desired state changed for a reason outside its manifest (revision, secrets). */
  reapply(name: string): void {
    const entry = this.opts.desired.get('App', name);
    if (entry && this.runners.has(name)) this.applyApp(name, entry);
  }

  /** berth retry: forget a failed rollout or build and look again (re-reading a path build's context). */
  retry(name: string): boolean {
    this.opts.revisions?.forget(name);
    const r = this.runners.get(name);
    if (!r) return false;
    r.actor.send({ type: 'retry' });
    this.reapply(name);
    return true;
  }

  send(name: string, event: { type: 'wake' } | { type: 'idle' }): boolean {
    const r = this.runners.get(name);
    r?.actor.send(event);
    return r !== undefined;
  }

  runner(name: string): AppRunner | undefined {
    return this.runners.get(name);
  }

  private dockerConnection(connected: boolean, error?: Error): void {
    const was = this.docker.connected;
    this.docker = { connected, since: new Date().toISOString(), ...(error ? { lastError: error.message } : {}) };
    if (connected !== was) {
      if (connected) this.opts.log.info('connected to Docker');
      else this.opts.log.warn({ err: error }, 'lost the connection to Docker; apps keep running, berth waits for it');
      // Back: events may have been missed while away. Gone: an app backing off from the daemon's
      // last errors as it shut down should say DockerUnavailable now, not at its next retry.
      // Either way every app looks again at once.
      for (const r of this.runners.values()) r.actor.send({ type: 'docker.changed' });
      for (const name of this.runners.keys()) this.reconcileSoon(name);
    }
    this.opts.onDockerChange?.(connected);
  }

  /** New secret values (from secrets.json): apps whose referenced values changed roll forward. */
  setSecrets(secrets: Record<string, Record<string, string>>): void {
    const before = this.secrets;
    this.secrets = secrets;
    for (const [name, runner] of this.runners) {
      const entry = this.entries.get(name);
      const refs = entry?.object ? (entry.object as App).spec.secretEnv ?? [] : [];
      if (refs.some((k) => before[name]?.[k] !== secrets[name]?.[k])) runner.actor.send({ type: 'spec.changed', desired: this.desiredFor(entry!) });
    }
  }

  /** Secret values an app may use: its own only. */
  secretsOf(app: string): Record<string, string> {
    return this.secrets[app] ?? {};
  }

  private desiredFor(entry: DesiredEntry): AppDesired | undefined {
    if (!entry.object) return undefined;
    const app = entry.object as App;
    const own = this.secretsOf(entry.name);
    const secrets: Record<string, string> = {};
    const missingSecrets: string[] = [];
    for (const k of app.spec.secretEnv ?? []) {
      if (own[k] !== undefined) secrets[k] = own[k];
      else missingSecrets.push(k);
    }
    const built = app.spec.build && this.opts.revisions ? this.opts.revisions.resolve(entry) : { image: app.spec.image };
    return { name: entry.name, generation: entry.generation, app, problems: entry.problems, secrets, missingSecrets, ...built, image: built.image };
  }

  private applyApp(name: string, entry: DesiredEntry | undefined): void {
    const rel = `apps/${name}.yaml`;
    const runner = this.runners.get(name);
    const desired = entry ? this.desiredFor(entry) : undefined;
    if (runner) {
      if (!entry) this.entries.delete(name);
      else this.entries.set(name, entry);
      // A spec change aborts in-flight work (even a build): only send one when what the
      // controller acts on changed; a new manifest problem only needs the status redrawn.
      if (actsOn(desired) !== actsOn(runner.context.desired)) runner.actor.send({ type: 'spec.changed', desired });
      this.render(name);
      return;
    }
    if (!entry) {
      this.docs.delete(rel);
      void this.opts.status.remove(rel);
      return;
    }
    this.entries.set(name, entry);
    if (!desired) {
      this.renderPending(name, entry);
      return;
    }
    this.spawn(name, desired);
  }

  private readonly entries = new Map<string, DesiredEntry>();

  private spawn(name: string, desired: AppDesired | undefined): void {
    const rel = `apps/${name}.yaml`;
    const persisted = this.opts.state.data.apps[name];
    // No record in state.json (it was corrupt and moved aside): the status file still says whether
    // the app was asleep, and a restart must not wake what only a request may wake.
    const sleepingSince = persisted ? undefined : this.previous.get(rel)?.idle?.sleepingSince;
    const facts: AppFacts = { ...persisted, ...(sleepingSince ? { sleepingSince } : {}), history: persisted?.history ?? [] };
    const runner = new AppRunner({
      name, desired, facts, previousEvents: this.previous.get(rel)?.events ?? [], deps: this.opts.deps,
      onChange: (r) => this.changed(r),
    });
    this.runners.set(name, runner);
    runner.start();
  }

  private count(r: AppRunner): void {
    const state = r.state;
    const before = this.lastState.get(r.name);
    if (state === before) return;
    this.lastState.set(r.name, state);
    const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
    if (state === 'ready' || state === 'sleeping') bump(this.counters.reconciles, 'converged');
    else if (state === 'backoff') {
      bump(this.counters.reconciles, 'error');
      bump(this.counters.errors, r.context.lastError?.reason ?? 'Unknown');
    } else if (state === 'stalled') bump(this.counters.reconciles, 'stalled');
  }

  private changed(r: AppRunner): void {
    this.count(r);
    if (r.done) {
      this.runners.delete(r.name);
      this.entries.delete(r.name);
      this.docs.delete(`apps/${r.name}.yaml`);
      void this.opts.status.remove(`apps/${r.name}.yaml`);
      this.opts.state.update((d) => void delete d.apps[r.name]);
      this.opts.onAppChange?.(r.name);
      this.opts.onAppDeleted?.(r.name);
      return;
    }
    this.persistFacts(r);
    this.render(r.name);
    this.opts.onAppChange?.(r.name);
  }

  private persistFacts(r: AppRunner): void {
    const f = r.facts();
    const next = {
      ...(f.activeHash !== undefined ? { activeHash: f.activeHash } : {}),
      ...(f.failedHash !== undefined ? { failedHash: f.failedHash, failedReason: f.failedReason } : {}),
      ...(f.sleepingSince !== undefined ? { sleepingSince: f.sleepingSince } : {}),
      ...(f.history.length > 0 ? { history: f.history } : {}),
    };
    const prev = this.opts.state.data.apps[r.name];
    const merged = { ...prev, ...next };
    if (prev?.lastActivity !== undefined) merged.lastActivity = prev.lastActivity;
    for (const k of ['activeHash', 'failedHash', 'failedReason', 'sleepingSince', 'history'] as const) if (!(k in next)) delete merged[k];
    if (JSON.stringify(prev) !== JSON.stringify(merged)) this.opts.state.update((d) => void (d.apps[r.name] = merged));
  }

  /** Render an app's status again (routing, certificate or traffic facts changed). */
  rerender(name: string): void {
    if (this.runners.has(name)) this.render(name);
  }

  private render(name: string): void {
    const rel = `apps/${name}.yaml`;
    const entry = this.entries.get(name);
    const runner = this.runners.get(name);
    if (!entry || !runner) return;
    const last = this.docs.get(rel);
    const previous = last ? last.status : this.previous.get(rel);
    // After a restart, the file on disk says more than "not observed yet": keep it until the first
    // look — or until looking fails (Docker down), which the file must then say.
    if (!last && previous && !runner.context.observed && !runner.context.lastError) return;
    const status = runner.status(entry, previous, this.opts.statusExtras?.(name));
    const doc: AppStatusFile = { apiVersion: 'berth.dev/v1alpha1', kind: 'App', metadata: { name, generation: entry.generation, file: entry.file }, status };
    this.docs.set(rel, doc);
    void this.opts.status.write(rel, doc);
  }

  private renderPending(name: string, entry: DesiredEntry): void {
    const rel = `apps/${name}.yaml`;
    const previous = (this.docs.get(rel))?.status ?? this.previous.get(rel);
    const status = pendingStatus(entry, previous?.conditions, new Date().toISOString());
    const doc: AppStatusFile = { apiVersion: 'berth.dev/v1alpha1', kind: 'App', metadata: { name, generation: entry.generation, file: entry.file }, status };
    this.docs.set(rel, doc);
    void this.opts.status.write(rel, doc);
  }

  /** Apps berth has containers for (by label) but no manifest for: remove them; and stale status files. */
  private async collectOrphans(): Promise<void> {
    try {
      const containers = await this.opts.runtime.listContainers(ownerLabels(this.opts.deps.config.instance));
      const names = new Set(containers.map((c) => c.labels[LABEL_APP]).filter((n): n is string => n !== undefined));
      for (const name of names) {
        if (!this.runners.has(name) && !this.opts.desired.get('App', name)) {
          this.opts.log.info({ app: name }, 'removing containers of an app whose manifest is gone');
          this.entries.set(name, { key: `App/${name}`, kind: 'App', name, generation: 0, specHash: '', createdAt: '', file: '', object: undefined, problems: [] });
          this.spawn(name, undefined);
        }
      }
    } catch (e) {
      this.opts.log.warn({ err: e }, 'cannot list containers to collect orphans; will retry on the next resync');
    }
    for (const [kind, dir] of Object.entries(STATUS_DIR) as [keyof typeof STATUS_DIR, string][]) {
      for (const name of await this.opts.status.list(dir)) {
        if (!this.opts.desired.get(kind, name) && !this.runners.has(name)) await this.opts.status.remove(`${dir}/${name}.yaml`);
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
}

/** The part of the desired state a controller acts on (problems only show in the status). */
function actsOn(d: AppDesired | undefined): string {
  if (!d) return '';
  const { problems: _p, ...rest } = d;
  return JSON.stringify(rest);
}
