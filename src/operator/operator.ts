// The composition root of `berth run`: wires the manifest watcher, desired store, state,
// status files and listeners, and owns start-up and shutdown order.
import { mkdir, chmod, readFile, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { Server } from 'node:http';
import type { RunConfig } from '../config/config.js';
import type { Logger } from '../util/logger.js';
import { StateStore, STATE_FILE } from '../state/state-store.js';
import { StatusWriter } from '../status/status-writer.js';
import { DesiredStore } from '../desired/desired-store.js';
import { ManifestWatcher } from '../manifests/manifest-watcher.js';
import { formatProblem } from '../manifests/loader.js';
import { WEBHOOK_DIR } from '../manifests/manifest-files.js';
import { startAdminServer, send } from '../admin/admin-server.js';
import { packageVersion } from '../util/package-root.js';
import { ControllerManager } from './controller-manager.js';
import type { OperatorStatusFile } from '../api/types.generated.js';
import { DockerContainerRuntime } from '../docker/docker-container-runtime.js';
import { countingRuntime } from '../docker/counting-runtime.js';
import { healthProber } from '../health/health-prober.js';
import { systemClock } from '../../controllers/ports/clock.js';
import { abortableSleep } from '../util/sleep.js';
import { renderMetrics } from './metrics.js';
import { boundAddress } from './bound-address.js';
import { Traffic } from './traffic.js';
import { BuildService } from './build-service.js';
import { Revisions } from './revisions.js';
import { Repositories } from './repositories.js';
import { createWebhook, WEBHOOK_PATH } from './webhook.js';
import { CliGitSource } from '../git/git-source.js';
import type { App } from '../api/types.generated.js';
import { Schedules, backupState } from './schedules.js';
import { loadKeyRing, readAllSecrets, watchSecrets } from '../secrets/secret-store.js';
import { registerSecretValue } from '../util/logger.js';
import { removeStaleTemps } from '../util/atomic-write.js';

export interface Operator {
  stop(): Promise<void>;
  readonly admin: Server;
}

export async function startOperator(config: RunConfig, log: Logger): Promise<Operator> {
  const startedAt = new Date().toISOString();
  await mkdir(config.state, { recursive: true, mode: 0o700 });
  await chmod(config.state, 0o700);
  // berth writes revisions and synced repositories into _webhook/: made up front, so its first
  // file never lands in a folder the watcher has only just started to watch.
  await mkdir(join(config.manifests, WEBHOOK_DIR), { recursive: true });
  await mkdir(config.status, { recursive: true });
  // Temp files of writes a crash interrupted (never renamed) would otherwise pile up forever.
  for (const dir of [config.state, config.status, join(config.status, 'apps'), join(config.status, 'gitrepositories'), join(config.manifests, WEBHOOK_DIR)]) await removeStaleTemps(dir);

  const state = await StateStore.open({ dir: config.state, log: log.child({ component: 'state' }) });
  const status = new StatusWriter(config.status, log.child({ component: 'status' }));
  const desired = new DesiredStore(state);
  const dockerCalls = new Map<string, number>();
  const runtime = countingRuntime(DockerContainerRuntime.fromDockerHost(config.docker), dockerCalls);
  // Host-path roots are compared with resolved paths, so resolve the roots too.
  const allowHostPath = await Promise.all(config.allowHostPath.map((p) => realpath(p).catch(() => p)));
  const git = new CliGitSource();
  const builds = new BuildService({
    runtime, git, state, stateDir: config.state, instance: config.instance, concurrency: config.buildConcurrency, log: log.child({ component: 'builds' }),
    keepImages: (app) => (desired.get('App', app)?.object as App | undefined)?.spec.build?.keepImages ?? 2,
  });
  // operator.yaml follows Docker's connection and the apps' phases (written at most every 100 ms,
  // and only once everything it names exists).
  let live = false;
  let operatorTimer: NodeJS.Timeout | undefined;
  const operatorStatusSoon = (): void => {
    if (!live || operatorTimer) return;
    operatorTimer = setTimeout(() => {
      operatorTimer = undefined;
      writeOperatorStatus();
    }, 100);
  };
  // The traffic layer and the manager report to each other: wired after both exist.
  const late: { traffic?: Traffic; manager?: ControllerManager } = {};
  const revisions = new Revisions({ git, manifestsDir: config.manifests, desired, log: log.child({ component: 'revisions' }), onChange: (app) => late.manager?.reapply(app) });
  const previousStatus = (rel: string) => readPrevious(config.status, rel);
  const repositories = new Repositories({ git, manifestsDir: config.manifests, stateDir: config.state, desired, status, clock: systemClock, log: log.child({ component: 'repositories' }), previousStatus });
  const manager = new ControllerManager({
    status, desired, state, runtime, log: log.child({ component: 'controllers' }), revisions, repositories, previousStatus,
    onAppChange: (name) => {
      late.traffic?.appChanged(name);
      operatorStatusSoon();
    },
    onDockerChange: operatorStatusSoon,
    // What berth built for an app goes with it.
    onAppDeleted: (name) => void builds.prune(name, 0).catch((e: unknown) => log.warn({ err: e, app: name }, 'cannot remove the images of a deleted app')),
    statusExtras: (name) => late.traffic?.extras(name),
    deps: {
      runtime, prober: healthProber, clock: systemClock, sleep: abortableSleep, builder: builds,
      config: { instance: config.instance, network: config.instance, allowHostPath },
      resyncMs: config.resyncMs, random: Math.random, log: log.child({ component: 'apps' }),
    },
  });
  late.manager = manager;
  await manager.loadPrevious();

  const ring = (await loadKeyRing(config.state, process.env, true))!;
  const loadSecrets = async () => {
    const { secrets, errors } = await readAllSecrets(config.state, ring);
    for (const values of Object.values(secrets)) for (const v of Object.values(values)) registerSecretValue(v);
    for (const e of errors) log.error(e);
    manager.setSecrets(secrets);
  };
  await loadSecrets();
  const traffic = await Traffic.start(config, manager, desired, state, log.child({ component: 'traffic' }));
  late.traffic = traffic;
  const webhook = createWebhook({
    secret: config.webhookSecret, desired, state, revisions, repositories, log: log.child({ component: 'webhook' }),
    onDelivery: () => writeOperatorStatus(),
  });
  traffic.proxy.addReservedHandler(WEBHOOK_PATH, (req, res) => webhook(req, res));
  builds.queue.onChange(() => writeOperatorStatus());
  const secretsWatcher = watchSecrets(config.state, () => {
    void loadSecrets().catch((e: unknown) => log.error({ err: e }, 'cannot reload secrets'));
  });

  let scanned = false;
  const watcher = new ManifestWatcher({
    dir: config.manifests,
    log: log.child({ component: 'manifests' }),
    onChange: (loads, initial) => {
      const changes = desired.apply(loads, scanned || initial);
      for (const p of desired.fileProblems()) log.warn({ problem: formatProblem(p) }, 'invalid manifest');
      manager.apply(changes);
      if (scanned) void traffic.desiredChanged().then(writeOperatorStatus);
      writeOperatorStatus();
    },
  });

  const admin = await startAdminServer({
    address: config.admin,
    token: config.adminToken,
    log: log.child({ component: 'admin' }),
    health: () => ({
      ok: true,
      body: { status: manager.docker.connected ? 'ok' : 'degraded', version: packageVersion, manifestsScanned: scanned, docker: manager.docker },
    }),
    metrics: () => renderMetrics(manager, traffic.metrics(), builds.snapshot(), dockerCalls),
    get: {
      '/api/v1/apps': (_req, res) => send(res, 200, manager.appStatuses()),
      '/api/v1/operator': (_req, res) => send(res, 200, operatorDoc()),
      '/api/v1/apps/:name': (_req, res, { name }) => {
        const s = manager.appStatuses().find((a) => a.metadata.name === name);
        send(res, s ? 200 : 404, s ?? { error: `no app named ${JSON.stringify(name)}` });
      },
    },
    post: {
      '/api/v1/apps/:name/retry': (_req, res, { name }) => {
        const ok = manager.retry(name!);
        send(res, ok ? 202 : 404, ok ? { retrying: name } : { error: `no app named ${JSON.stringify(name)}` });
      },
    },
  });

  function writeOperatorStatus(): void {
    void status.write('operator.yaml', operatorDoc());
  }

  function operatorDoc(): OperatorStatusFile {
    return {
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'Operator',
      status: {
        version: packageVersion,
        startedAt,
        pid: process.pid,
        instance: config.instance,
        listeners: { admin: boundAddress(admin), ...traffic.listeners() },
        docker: {
          connected: manager.docker.connected,
          endpoint: config.docker ?? 'unix:///var/run/docker.sock',
          ...(manager.docker.since ? { since: manager.docker.since } : {}),
          ...(manager.docker.lastError && !manager.docker.connected ? { lastError: manager.docker.lastError } : {}),
        },
        apps: manager.phaseCounts(),
        buildQueue: buildQueueStatus(builds),
        webhook: { configured: config.webhookSecret !== undefined, deliveries: webhook.deliveries().slice(-20) },
        jobs: schedules.jobs(),
        manifests: {
          folder: config.manifests,
          files: watcher.current().size,
          problems: desired.fileProblems().map(formatProblem),
        },
        state: {
          file: join(config.state, STATE_FILE),
          ...(state.lastError ? { lastError: state.lastError.message } : {}),
          ...(state.recoveredFrom ? { recoveredFrom: state.recoveredFrom } : {}),
        },
      },
    };
  }

  const schedules = new Schedules(
    [
      {
        name: 'full-resync', schedule: '17 */6 * * *',
        run: async () => {
          await watcher.rescan();
          return manager.resync();
        },
      },
      {
        name: 'prune-images', schedule: '43 3 * * *',
        run: async () => {
          const apps = await builds.builtApps();
          for (const app of apps) await builds.prune(app, desired.get('App', app)?.object ? undefined : 0);
          return `pruned old images of ${apps.length} built app(s)`;
        },
      },
      { name: 'backup-state', schedule: '7 4 * * *', run: () => backupState(config.state) },
    ],
    log.child({ component: 'schedules' }),
    () => writeOperatorStatus(),
  );

  await watcher.start();
  scanned = true;
  await manager.start();
  await traffic.desiredChanged();
  live = true;
  writeOperatorStatus();
  log.info({ manifests: config.manifests, status: config.status, admin: boundAddress(admin) }, 'berth is running');

  return {
    admin,
    async stop() {
      live = false;
      clearTimeout(operatorTimer);
      secretsWatcher.close();
      await schedules.stop();
      await watcher.close();
      await traffic.stop();
      await manager.stop();
      repositories.stop();
      revisions.stop();
      await builds.stop();
      await new Promise<void>((resolve) => admin.close(() => resolve()));
      admin.closeAllConnections();
      await status.idle();
      await state.flush();
    },
  };
}

function buildQueueStatus(builds: BuildService): NonNullable<OperatorStatusFile['status']['buildQueue']> {
  const q = builds.snapshot();
  return {
    running: q.running.map((r) => ({ app: r.app, revision: r.revision, startedAt: r.startedAt })),
    queued: q.queued.map((r) => ({ app: r.app, revision: r.revision, since: r.enqueuedAt })),
    ...(q.queued[0]?.waiting ? { waitingReason: `${q.queued[0].waiting.reason}: ${q.queued[0].waiting.message}` } : {}),
  };
}

/** The status file as it was on disk (to keep condition transition times across restarts). */
async function readPrevious(dir: string, rel: string): Promise<unknown> {
  try {
    return parse(await readFile(join(dir, rel), 'utf8'));
  } catch {
    return undefined;
  }
}
