// Carries out one step's actions against the container runtime, in order, honouring the abort
// signal. Every action is idempotent, so a step cut short (spec change, crash, kill -9) is
// simply planned again from what the world then looks like.
import type { ContainerRuntime, ContainerDetails } from '../ports/container-runtime.js';
import type { HealthProber } from '../ports/health-prober.js';
import type { ImageBuilderPort } from '../ports/image-builder.js';
import type { Clock } from '../ports/clock.js';
import { BerthError, isBerthError } from '../ports/errors.js';
import { isOwned } from '../../src/api/labels.js';
import { volumeLabels } from './container-spec.js';
import { faultPoint } from '../../src/util/fault-point.js';
import type { Action, AppDesired, PlanConfig } from './types.js';

export interface ExecutorDeps {
  runtime: ContainerRuntime;
  prober: HealthProber;
  clock: Clock;
  config: PlanConfig;
  /** Resolves after ms, or rejects when the signal aborts. */
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** For apps built from source; absent where nothing is built. */
  builder?: ImageBuilderPort;
}

export interface ExecEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface ExecResult {
  events: ExecEvent[];
  /** Containers verified healthy (ids). */
  healthy: string[];
  promoted?: string;
  /** The new version failed in a way that will not change by retrying the same spec. */
  rolloutFailed?: { hash: string; reason: string; message: string };
  /** The healthy containers as last inspected (running, with addresses): lets traffic flow before the next observe. */
  verified?: ContainerDetails[];
}

export async function execute(actions: Action[], desired: AppDesired | undefined, deps: ExecutorDeps, signal: AbortSignal): Promise<ExecResult> {
  const result: ExecResult = { events: [], healthy: [] };
  const { runtime, config } = deps;
  const note = (reason: string, message: string, type: ExecEvent['type'] = 'Normal') => result.events.push({ type, reason, message });
  const app = desired?.name ?? '';

  for (const a of actions) {
    signal.throwIfAborted();
    switch (a.type) {
      case 'ensureNetwork':
        await runtime.ensureNetwork(config.network, { 'dev.berth.managed-by': 'berth', 'dev.berth.instance': config.instance }, signal);
        break;
      case 'ensureVolume':
        await runtime.ensureVolume(a.volume, volumeLabels(config, app, a.reclaimPolicy), signal);
        note('VolumeCreated', `volume ${a.volume} is ready`);
        break;
      case 'pullImage':
        await runtime.pullImage(a.ref, signal);
        note('ImagePulled', `pulled ${a.ref}`);
        break;
      case 'buildImage': {
        if (!deps.builder) throw new BerthError('stalled', 'BuildUnavailable', 'this berth cannot build images');
        try {
          await deps.builder.build(a.build, signal);
        } catch (e) {
          // A failing build will fail the same way again: the last good version keeps serving.
          if (!isBerthError(e) || e.kind !== 'stalled') throw e;
          result.rolloutFailed = { hash: a.hash, reason: e.reason, message: e.message };
          note(e.reason, e.message, 'Warning');
          return result;
        }
        note('Built', `built ${a.build.image} from ${'git' in a.build.source ? `commit ${a.build.revision.slice(0, 12)}` : `${a.build.source.path} (content ${a.build.revision.slice(0, 12)})`}`);
        break;
      }
      case 'createContainer':
        await createOrAdopt(runtime, a.spec, config.instance, signal);
        faultPoint('deploy:after-create');
        note(a.because.reason, a.because.message, a.because.reason === 'ContainerMissing' ? 'Warning' : 'Normal');
        break;
      case 'startContainer':
        try {
          await runtime.startContainer(a.container, signal);
        } catch (e) {
          // Its network was removed (and recreated) behind berth's back: a stopped container still
          // points at the old one and Docker can never start it again. Remove it; the next pass
          // creates it anew on the current network (named volumes are kept).
          if (!isBerthError(e) || e.reason !== 'NotFound' || !/network \S+ not found/.test(e.message)) throw e;
          await runtime.removeContainer(a.container, signal);
          note('NetworkDisconnected', `${a.container} pointed at a network that no longer exists; recreating it`, 'Warning');
          return result;
        }
        faultPoint('deploy:after-start');
        if (a.because.reason === 'Waking') note(a.because.reason, a.because.message);
        else if (a.because.reason !== 'Starting') note(a.because.reason, a.because.message, 'Warning');
        break;
      case 'connectNetwork':
        await runtime.connectNetwork(config.network, a.container, a.aliases, signal);
        note(a.because.reason, a.because.message, 'Warning');
        break;
      case 'restoreRestartPolicy':
        await runtime.restoreRestartPolicy(a.container, signal);
        note(a.because.reason, a.because.message, 'Warning');
        break;
      case 'waitHealthy': {
        const outcome = await waitHealthy(a, desired!, deps, signal);
        if (outcome.ok) {
          result.healthy.push(...outcome.ids);
          result.verified = [...(result.verified ?? []), ...outcome.containers];
          break;
        }
        if (!a.rollout) throw new BerthError('transient', outcome.reason, outcome.message);
        // Roll back: remove the failed containers; the previous version (if any) keeps serving.
        for (const id of a.containers) await runtime.removeContainer(id, signal).catch(() => undefined);
        result.rolloutFailed = { hash: a.hash, reason: outcome.reason, message: outcome.message };
        note(outcome.reason, outcome.message, 'Warning');
        return result;
      }
      case 'promote':
        faultPoint('deploy:before-promote');
        result.promoted = a.hash;
        note('Deployed', `${app} is serving the new version${desired?.revision ? ` (revision ${desired.revision.slice(0, 12)})` : ''}`);
        break;
      case 'stopContainer':
        faultPoint('deploy:before-stop');
        await runtime.stopContainer(a.container, a.timeoutSeconds, signal);
        faultPoint('deploy:after-stop');
        if (a.because.reason === 'Idle' || a.because.reason === 'ScaledToZero') note(a.because.reason, a.because.message);
        break;
      case 'removeContainer':
        await runtime.removeContainer(a.container, signal);
        faultPoint('deploy:after-remove');
        note(a.because.reason, a.because.message);
        break;
      case 'removeVolume':
        await runtime.removeVolume(a.volume, signal);
        note('VolumeDeleted', `removed volume ${a.volume} (reclaimPolicy: Delete)`);
        break;
    }
  }
  return result;
}

/** Create; if the deterministic name is taken, adopt it when it is ours (a create before a crash), else refuse. */
async function createOrAdopt(runtime: ContainerRuntime, spec: Parameters<ContainerRuntime['createContainer']>[0], instance: string, signal: AbortSignal): Promise<void> {
  try {
    await runtime.createContainer(spec, signal);
  } catch (e) {
    if (!isBerthError(e) || e.reason !== 'Conflict') throw e;
    const existing = await runtime.inspectContainer(spec.name, signal);
    if (existing && isOwned(existing.labels, instance)) return;
    throw new BerthError('waiting', 'Conflict', `a container named ${spec.name} exists that berth did not create; remove or rename it (berth never touches containers it does not own)`);
  }
}

type HealthOutcome = { ok: true; ids: string[]; containers: ContainerDetails[] } | { ok: false; reason: string; message: string };

/** Probe often while a start is young (an app's listen is usually 50-500 ms away), sparingly later. */
const FAST_PROBE_MS = 10;
const FAST_PHASE_MS = 3000;
const SLOW_PROBE_MAX_MS = 500;
/** Re-inspect (exit, restart, health status) at most this often; a refused TCP probe costs nothing, an inspect is a Docker call. */
const INSPECT_EVERY_MS = 250;

/** Poll the containers until each answers its health probe, exits, or the start period ends. */
async function waitHealthy(a: Extract<Action, { type: 'waitHealthy' }>, desired: AppDesired, deps: ExecutorDeps, signal: AbortSignal): Promise<HealthOutcome> {
  const { runtime, prober, clock, config } = deps;
  const hc = desired.app.spec.healthCheck;
  const started = clock.monotonic();
  const deadline = started + a.startPeriodMs;
  const pending = new Set(a.containers);
  const ids: string[] = [];
  const containers: ContainerDetails[] = [];
  const inspected = new Map<string, { at: number; c: ContainerDetails }>();
  let delay = FAST_PROBE_MS;
  let last = 'no probe ran yet';
  for (;;) {
    for (const ref of [...pending]) {
      const seen = inspected.get(ref);
      const fresh = seen !== undefined && clock.monotonic() - seen.at < INSPECT_EVERY_MS && seen.c.state === 'running';
      const c = fresh ? seen.c : await runtime.inspectContainer(ref, signal);
      if (!c) throw new BerthError('transient', 'ContainerMissing', `container ${ref} disappeared while starting`);
      if (!fresh) inspected.set(ref, { at: clock.monotonic(), c });
      // A new container that restarted even once crashed; an old one may carry restarts from its past.
      if (c.state === 'exited' || c.state === 'dead' || (a.rollout && c.restartCount > 0)) {
        // Once Docker has started it again, the engine shows exit code 0: the real one is gone.
        const how = c.state === 'running' ? `exited and Docker restarted it (${c.restartCount}×)` : `exited with code ${c.exitCode}`;
        return { ok: false, reason: 'ContainerExited', message: `${c.name} ${how}${c.oomKilled ? ' (out of memory)' : ''} before becoming healthy${await logTail(runtime, c, Object.values(desired.secrets), signal)}` };
      }
      if (c.state !== 'running' || c.health === 'starting') continue;
      if (c.health === 'unhealthy') {
        last = `Docker HEALTHCHECK reports ${c.name} unhealthy`;
        continue;
      }
      const ip = c.networks[config.network];
      if (!ip) {
        last = `${c.name} has no address on ${config.network} yet`;
        continue;
      }
      faultPoint('deploy:during-health');
      const r = await prober.probe({ host: ip, port: desired.app.spec.port, ...(hc.path !== undefined ? { path: hc.path } : {}), timeoutMs: hc.timeoutSeconds * 1000 }, signal);
      last = r.detail;
      if (r.ok) {
        pending.delete(ref);
        ids.push(c.id);
        containers.push(c);
      }
    }
    if (pending.size === 0) return { ok: true, ids, containers };
    if (clock.monotonic() >= deadline) {
      return { ok: false, reason: 'HealthCheckTimeout', message: `not healthy within ${Math.round(a.startPeriodMs / 1000)}s (startPeriodSeconds): ${last}` };
    }
    await deps.sleep(delay, signal);
    if (clock.monotonic() - started >= FAST_PHASE_MS) delay = Math.min(Math.round(delay * 1.5), SLOW_PROBE_MAX_MS);
  }
}

/**
 * The last lines a failed container printed, for the status message. The app may print its own
 * environment: its secret values are replaced before the text reaches status, state or logs.
 */
async function logTail(runtime: ContainerRuntime, c: ContainerDetails, secrets: string[], signal: AbortSignal): Promise<string> {
  try {
    const stream = await runtime.containerLogs(c.id, { follow: false, tail: 10, signal });
    let text = '';
    for await (const chunk of stream) text += String(chunk);
    for (const v of secrets) if (v !== '') text = text.split(v).join('[redacted]');
    const lines = text.trim().split('\n').filter(Boolean).slice(-5);
    return lines.length > 0 ? `; last output: ${lines.join(' | ').slice(0, 500)}` : '';
  } catch {
    return '';
  }
}
