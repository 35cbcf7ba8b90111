// The App's status as a pure function of what the controller knows: phase for people,
// Kubernetes-style conditions (Ready always first, summarising the others) with reasons a
// user can act on, and the facts around them. Computing it twice from the same inputs gives
// the same document, so an unchanged world never rewrites a status file.
import type { AppStatus } from '../../src/api/types.generated.js';
import type { DesiredEntry } from '../../src/desired/desired-store.js';
import { mergeConditions, type Condition, type ConditionInput } from '../status/conditions.js';
import { manifestProblemCondition, pendingStatus } from './pending-status.js';
import { containerSpecFor } from './container-spec.js';
import { servingContainers } from './serving.js';
import type { AppContext } from './app.machine.js';
import type { ObservedContainer } from './types.js';

export type MachineState = 'observing' | 'deciding' | 'acting' | 'failing' | 'backoff' | 'ready' | 'sleeping' | 'stalled' | 'waiting' | 'paused' | 'deleted';

export interface AppStatusInput {
  entry: DesiredEntry;
  machine: { state: MachineState; context: AppContext } | undefined;
  /** Phase last reported: kept while the machine only looks again (observing). */
  previousPhase: AppStatus['phase'] | undefined;
  previousConditions: readonly Condition[] | undefined;
  now: string;
  /** Extra conditions owned by other controllers (RouteReady, CertificateReady), and fields. */
  extraConditions?: ConditionInput[];
  url?: string;
}

/** Failures of a new version's containers; any other recorded failure is a build's (BuildFailed, DockerfileNotFound…). */
const FAILED_ROLLOUT = new Set(['ContainerExited', 'HealthCheckTimeout', 'RolloutFailed']);

export function appStatus(input: AppStatusInput): AppStatus {
  const { entry, machine, now } = input;
  if (!machine || !machine.context.observed) return withExtras(unobservedStatus(input), input);
  const ctx = machine.context;
  const d = ctx.desired;
  const spec = d?.app.spec;
  const observed = ctx.observed!;
  const hash = d?.image !== undefined ? containerSpecFor(ctx.config, d, 0).hash : undefined;
  const serving = servingContainers(observed, ctx.facts, ctx.healthy, ctx.config.network, ctx.unverified);
  const cur = observed.containers.filter((c) => c.hash === hash);
  const failed = hash !== undefined && ctx.facts.failedHash === hash;
  const dockerDown = ctx.lastError?.reason === 'DockerUnavailable';
  const planStalled = ctx.plan?.kind === 'stalled' ? ctx.plan : undefined;
  const replicas = spec?.replicas ?? 0;

  // Stalled: whatever needs a person.
  let stalled: ConditionInput | undefined = manifestProblemCondition(entry);
  if (!stalled && failed) {
    const why = ctx.facts.failedReason;
    const reason = why && !FAILED_ROLLOUT.has(why.reason) ? why.reason : 'RolloutFailed';
    const next = reason === 'RolloutFailed' ? `change the spec or run berth retry ${ctx.name}` : `push a new commit or run berth retry ${ctx.name}`;
    stalled = { type: 'Stalled', status: 'True', reason, message: `${why?.message ?? 'the new version failed'}; ${serving.length > 0 ? 'the previous version keeps serving; ' : ''}${next}` };
  }
  if (!stalled && planStalled) stalled = { type: 'Stalled', status: 'True', reason: planStalled.reason, message: planStalled.message };
  if (!stalled && ctx.lastError && (ctx.lastError.kind === 'stalled' || ctx.lastError.reason === 'Conflict') && machine.state !== 'ready') {
    stalled = { type: 'Stalled', status: 'True', reason: ctx.lastError.reason, message: ctx.lastError.message };
  }

  const looping = crashLoop(cur);
  const phase = phaseOf(input, serving.length > 0, failed, stalled, looping);

  let ready: ConditionInput;
  if (machine.state === 'paused') ready = { type: 'Ready', status: 'Unknown', reason: 'Paused', message: 'spec.paused is true: berth leaves the app as it is' };
  else if (dockerDown) ready = { type: 'Ready', status: 'Unknown', reason: 'DockerUnavailable', message: `${ctx.lastError!.message}; waiting for Docker, nothing is torn down` };
  else if (serving.length > 0 && phase !== 'Sleeping') {
    ready = { type: 'Ready', status: 'True', reason: 'Available', message: failed ? 'the previous version is serving' : `${serving.length}/${replicas} container(s) serving` };
  } else if (phase === 'Sleeping') {
    ready = replicas === 0
      ? { type: 'Ready', status: 'False', reason: 'ScaledToZero', message: 'replicas is 0: no container runs' }
      : ctx.observed && !ctx.observed.image
        // Someone removed the image: the wake must pull or build it first, which can fail.
        ? { type: 'Ready', status: 'True', reason: 'Sleeping', message: 'asleep; the next request wakes it once its image, which is gone, is pulled or built again' }
        : { type: 'Ready', status: 'True', reason: 'Sleeping', message: 'asleep; the next request wakes it' };
  } else {
    const waiting = ctx.plan?.kind === 'waiting' ? ctx.plan : undefined;
    const reason = stalled?.reason ?? ctx.lastError?.reason ?? waiting?.reason ?? (looping ? 'CrashLoopBackOff' : ['Waking', 'Pending', 'Building'].includes(phase) ? phase : 'Deploying');
    const message = stalled?.message ?? ctx.lastError?.message ?? waiting?.message ?? looping ?? (ctx.work ? `${ctx.work.phase.toLowerCase()}: ${ctx.work.step}` : 'starting');
    ready = { type: 'Ready', status: 'False', reason, message };
  }

  const conditions: ConditionInput[] = [ready, imageCondition(input), containerCondition(input, cur.length, serving.length, phase, looping)];
  if (machine.state === 'acting' && ctx.work) conditions.push({ type: 'Reconciling', status: 'True', reason: ctx.work.phase, message: ctx.work.step });
  if (stalled) conditions.push(stalled);
  conditions.push(...(input.extraConditions ?? []));

  const status: AppStatus = {
    observedGeneration: d ? d.generation : entry.generation,
    phase,
    conditions: mergeConditions(input.previousConditions, conditions, now),
  };
  if (input.url) status.url = input.url;
  // The commit running: while a new revision failed (its build or its containers), the previous
  // one keeps serving, and that is the one to report (and for berth rollback to step back from).
  const running = failed && serving.length > 0 ? servingRevision(ctx.facts.history, serving) : undefined;
  const revision = running ?? d?.revision;
  if (revision) status.revision = revision;
  if (d?.image !== undefined) status.image = { ref: d.image, ...(observed.image ? { id: observed.image.id } : {}) };
  if (observed.containers.length > 0) {
    status.containers = observed.containers.map((c) => ({
      name: c.name, id: c.id.slice(0, 12), state: c.state, specHash: c.hash,
      ...(c.networks[ctx.config.network] ? { ip: c.networks[ctx.config.network] } : {}),
    }));
  }
  if (spec?.idle) status.idle = { after: spec.idle.after, ...(ctx.facts.sleepingSince ? { sleepingSince: ctx.facts.sleepingSince } : {}) };
  if (ctx.lastError) status.lastError = { reason: ctx.lastError.reason, message: ctx.lastError.message, at: ctx.lastError.at };
  if (machine.state === 'backoff' && ctx.retryAt) status.retry = { attempt: ctx.attempt, nextAt: ctx.retryAt };
  if (ctx.facts.history.length > 0) status.history = ctx.facts.history;
  if (ctx.events.length > 0) status.events = ctx.events;
  return status;
}

function phaseOf(input: AppStatusInput, serving: boolean, failed: boolean, stalled: ConditionInput | undefined, looping: string | undefined): AppStatus['phase'] {
  const { state, context: ctx } = input.machine!;
  switch (state) {
    case 'paused':
      return 'Paused';
    case 'acting':
      return ctx.work?.phase ?? 'Deploying';
    case 'ready':
      if (failed || stalled) return 'Degraded';
      // Docker is restarting a crashed container: not Ready, whatever the last pass verified.
      if (looping) return serving ? 'Degraded' : 'Failed';
      return 'Ready';
    case 'sleeping':
      return 'Sleeping';
    case 'backoff':
      return serving ? 'Degraded' : 'Failed';
    case 'stalled':
      if (serving) return 'Degraded';
      return stalled && (FAILED_ROLLOUT.has(stalled.reason) || failed) ? 'Failed' : 'Stalled';
    case 'waiting':
      return ctx.desired?.app.spec.build ? 'Building' : 'Pending';
    case 'deleted':
      return 'Deleting';
    default:
      return input.previousPhase ?? 'Pending';
  }
}

function imageCondition(input: AppStatusInput): ConditionInput {
  const ctx = input.machine!.context;
  const ref = ctx.desired?.image;
  if (ref === undefined) {
    const w = ctx.plan?.kind === 'waiting' ? ctx.plan : undefined;
    return { type: 'ImageReady', status: 'False', reason: w?.reason ?? 'WaitingForRevision', message: w?.message ?? 'waiting for the revision to build' };
  }
  const why = ctx.facts.failedReason;
  if (why && !FAILED_ROLLOUT.has(why.reason) && ctx.desired && ctx.facts.failedHash === containerSpecFor(ctx.config, ctx.desired, 0).hash) {
    return { type: 'ImageReady', status: 'False', reason: why.reason, message: why.message };
  }
  if (ctx.observed?.image) return { type: 'ImageReady', status: 'True', reason: 'Present', message: `${ref} is present (${ctx.observed.image.id.replace(/^sha256:/, '').slice(0, 12)})` };
  const err = ctx.lastError;
  if (err && ['ImagePullFailed', 'InvalidImageName', 'ImageNotFound'].includes(err.reason)) return { type: 'ImageReady', status: 'False', reason: err.reason, message: err.message };
  if (ctx.work?.step.includes('pullImage')) return { type: 'ImageReady', status: 'False', reason: 'Pulling', message: `pulling ${ref}` };
  if (ctx.work?.step.includes('buildImage')) return { type: 'ImageReady', status: 'False', reason: 'Building', message: `building ${ref}` };
  return { type: 'ImageReady', status: 'False', reason: 'NotPresent', message: `${ref} is not present yet` };
}

/**
 * A container Docker is restarting (it exited, and its restart policy brings it back after a
 * delay that doubles up to a minute): why, as a message; undefined when none is.
 */
function crashLoop(containers: readonly ObservedContainer[]): string | undefined {
  const c = containers.find((x) => x.state === 'restarting');
  if (!c) return undefined;
  const why = c.oomKilled ? 'out of memory: more than resources.memory' : `exit code ${c.exitCode ?? '?'}`;
  return `${c.name} keeps exiting (${why}); Docker has restarted it ${c.restartCount ?? 0} time(s), waiting longer each time`;
}

function containerCondition(input: AppStatusInput, current: number, serving: number, phase: AppStatus['phase'], looping: string | undefined): ConditionInput {
  const ctx = input.machine!.context;
  const replicas = ctx.desired?.app.spec.replicas ?? 0;
  if (ctx.lastError?.reason === 'Conflict') return { type: 'ContainerReady', status: 'False', reason: 'Conflict', message: ctx.lastError.message };
  if (phase === 'Sleeping') return { type: 'ContainerReady', status: 'False', reason: replicas === 0 ? 'ScaledToZero' : 'Sleeping', message: 'no container runs' };
  const running = ctx.observed!.containers.filter((c) => c.state === 'running').length;
  if (looping && serving < replicas) return { type: 'ContainerReady', status: 'False', reason: 'CrashLoopBackOff', message: looping };
  if (serving >= replicas && replicas > 0 && current >= replicas) return { type: 'ContainerReady', status: 'True', reason: 'Running', message: `${serving}/${replicas} running and healthy` };
  if (serving > 0) return { type: 'ContainerReady', status: 'True', reason: 'Running', message: `${serving} serving, ${running} running, ${replicas} wanted` };
  return { type: 'ContainerReady', status: 'False', reason: phase === 'Failed' ? 'NotRunning' : 'Starting', message: `${running} running, ${replicas} wanted` };
}

/**
 * Not observed yet: Pending — unless looking failed (Docker unreachable, say): then Ready says
 * so, with the error and the next retry, and the phase last reported is kept.
 */
function unobservedStatus(input: AppStatusInput): AppStatus {
  const { entry, machine, now } = input;
  const err = machine?.context.lastError;
  if (!machine || !err || !entry.object) return pendingStatus(entry, input.previousConditions, now);
  const ctx = machine.context;
  const ready: ConditionInput = err.reason === 'DockerUnavailable'
    ? { type: 'Ready', status: 'Unknown', reason: 'DockerUnavailable', message: `${err.message}; waiting for Docker, nothing is torn down` }
    : { type: 'Ready', status: 'False', reason: err.reason, message: err.message };
  const problem = manifestProblemCondition(entry);
  const status: AppStatus = {
    observedGeneration: ctx.desired?.generation ?? entry.generation,
    phase: input.previousPhase ?? 'Pending',
    conditions: mergeConditions(input.previousConditions, [ready, ...(problem ? [problem] : [])], now),
    lastError: { reason: err.reason, message: err.message, at: err.at },
  };
  if (machine.state === 'backoff' && ctx.retryAt) status.retry = { attempt: ctx.attempt, nextAt: ctx.retryAt };
  if (ctx.facts.history.length > 0) status.history = ctx.facts.history;
  if (ctx.events.length > 0) status.events = ctx.events;
  return status;
}

function withExtras(status: AppStatus, input: AppStatusInput): AppStatus {
  if (!input.extraConditions?.length && !input.url) return status;
  const conditions = mergeConditions(input.previousConditions, [...status.conditions, ...(input.extraConditions ?? [])], input.now);
  return { ...status, conditions, ...(input.url ? { url: input.url } : {}) };
}

/** The revision of the newest successful deploy whose image a serving container runs. */
function servingRevision(history: readonly { revision?: string; image: string; result: string }[], serving: readonly { image: string }[]): string | undefined {
  const images = new Set(serving.map((c) => c.image));
  return [...history].reverse().find((h) => h.result === 'Succeeded' && h.revision !== undefined && images.has(h.image))?.revision;
}
