// plan(desired, observed) -> the next step. Pure: the same inputs always give the same plan,
// and an unchanged, healthy world gives "converged" with no action (no mutating Docker call).
// The controller runs a step's actions, re-observes, and plans again until converged.
import { containerName, containerSpecFor, volumeName } from './container-spec.js';
import { hostPathProblem } from './host-path-policy.js';
import { RESTART_POLICY } from '../ports/container-runtime.js';
import type { Action, AppDesired, AppFactsView, Because, Observed, ObservedContainer, Plan, PlanConfig } from './types.js';

export interface PlanInput {
  /** undefined: the manifest is gone, remove what berth made. */
  desired: AppDesired | undefined;
  observed: Observed;
  facts: AppFactsView;
  /** false while the app sleeps (scale to zero). */
  wantRunning: boolean;
  /** A request is waiting for this app to wake (so a stopped container is not drift). */
  waking?: boolean;
  /** Containers (ids) verified healthy since they last started. */
  healthy: ReadonlySet<string>;
  /** Running containers (ids) whose health check failed since they last started: they need proof again. */
  unverified?: ReadonlySet<string>;
  config: PlanConfig;
}

const isUp = (c: ObservedContainer) => c.state === 'running' || c.state === 'restarting';
const policyChanged = (c: ObservedContainer) => c.restartPolicy !== undefined && c.restartPolicy !== RESTART_POLICY;
const restorePolicy = (c: ObservedContainer): Action => ({
  type: 'restoreRestartPolicy',
  container: c.id,
  because: { reason: 'RestartPolicyChanged', message: `found ${c.name} with restart policy "${c.restartPolicy || 'no'}"; putting ${RESTART_POLICY} back` },
});

export function plan(input: PlanInput): Plan {
  const { desired, observed, config } = input;
  if (!desired) return removeAll(input);
  const spec = desired.app.spec;
  if (spec.paused) return { kind: 'paused' };

  for (const hp of observed.hostPaths) {
    const problem = hostPathProblem(hp, config.allowHostPath);
    if (problem) return { kind: 'stalled', reason: 'ForbiddenHostPath', message: problem };
  }
  if (desired.missingSecrets.length > 0) {
    const names = desired.missingSecrets.join(', ');
    return { kind: 'stalled', reason: 'SecretNotFound', message: `secret ${names} is not set: run berth secret set ${desired.name} ${desired.missingSecrets[0]}=…` };
  }

  const setup: Action[] = [];
  if (!observed.networkExists) setup.push({ type: 'ensureNetwork' });
  for (const v of spec.volumes ?? []) {
    if (v.name !== undefined && !observed.volumes.some((o) => o.name === volumeName(config, desired.name, v.name!))) {
      setup.push({ type: 'ensureVolume', volume: volumeName(config, desired.name, v.name), reclaimPolicy: v.reclaimPolicy });
    }
  }
  if (setup.length > 0) return { kind: 'act', phase: 'Deploying', actions: setup };

  if (desired.image === undefined) return { kind: 'waiting', ...(desired.waiting ?? { reason: 'WaitingForRevision', message: 'waiting for the revision to build' }) };
  const { hash } = containerSpecFor(config, desired, 0);
  if (input.facts.failedHash === hash) return keepLastGood(input, hash);
  if (spec.replicas === 0) return stopAll(input, hash, { reason: 'ScaledToZero', message: 'replicas is 0' });
  if (!input.wantRunning) return stopAll(input, hash, { reason: 'Idle', message: 'no requests for a while; sleeping until the next one' });
  return rollout(input, desired, hash);
}

function rollout(input: PlanInput, desired: AppDesired, hash: string): Plan {
  const { observed, facts, healthy, config } = input;
  const spec = desired.app.spec;
  const cur = observed.containers.filter((c) => c.hash === hash);
  const old = observed.containers.filter((c) => c.hash !== hash);
  const deployed = facts.activeHash === hash;
  const phase = 'Deploying';

  // Waking or first start needs the image before anything else.
  if (!observed.image) {
    return desired.build
      ? { kind: 'act', phase: 'Building', actions: [{ type: 'buildImage', build: desired.build, hash }] }
      : { kind: 'act', phase, actions: [{ type: 'pullImage', ref: desired.image! }] };
  }

  if (spec.deploy.strategy === 'recreate' && old.length > 0 && cur.length < spec.replicas) {
    return { kind: 'act', phase, actions: old.flatMap((c) => retire(c, spec.deploy.stopTimeoutSeconds, { reason: 'Replacing', message: `recreate: stopping ${c.name} before starting the new version` })) };
  }

  const actions: Action[] = [];
  const waitFor: string[] = [];
  for (let replica = 0; replica < spec.replicas; replica++) {
    const mine = cur.filter((c) => c.replica === replica);
    const c = mine[0];
    for (const dup of mine.slice(1)) actions.push(...retire(dup, 0, { reason: 'Duplicate', message: `${dup.name} duplicates replica ${replica}; removing it` }));
    const name = containerName(config, desired.name, hash, replica);
    if (!c) {
      const because: Because = deployed
        ? { reason: 'ContainerMissing', message: `${name} was gone; creating it again` }
        : { reason: 'Creating', message: `creating ${name} (image ${desired.image})` };
      actions.push({ type: 'createContainer', spec: containerSpecFor(config, desired, replica).spec, because });
      actions.push({ type: 'startContainer', container: name, because: { reason: 'Starting', message: `starting ${name}` } });
      waitFor.push(name);
    } else if (!isUp(c)) {
      const because: Because = input.waking
        ? { reason: 'Waking', message: `a request is waiting: starting ${c.name}` }
        : healthy.has(c.id) || deployed
          ? { reason: 'ContainerStopped', message: `found ${c.name} ${c.state}; starting it` }
          : { reason: 'Starting', message: `starting ${c.name}` };
      actions.push({ type: 'startContainer', container: c.id, because });
      waitFor.push(c.id);
    } else if (!(config.network in c.networks)) {
      actions.push({ type: 'connectNetwork', container: c.id, aliases: [desired.name], because: { reason: 'NetworkDisconnected', message: `found ${c.name} disconnected from ${config.network}; reconnecting it` } });
    } else if (policyChanged(c)) {
      actions.push(restorePolicy(c));
    } else if (!healthy.has(c.id) && (!deployed || input.unverified?.has(c.id) === true)) {
      // A promoted container that keeps running needs no new proof (e.g. after a berth restart),
      // unless it failed one since it started (a wake that never got ready).
      waitFor.push(c.id);
    }
  }
  for (const extra of cur.filter((c) => c.replica >= spec.replicas)) {
    actions.push(...retire(extra, spec.deploy.stopTimeoutSeconds, { reason: 'ScaledDown', message: `replicas is ${spec.replicas}; removing ${extra.name}` }));
  }
  if (waitFor.length > 0) {
    const startPeriodMs = spec.healthCheck.startPeriodSeconds * 1000;
    actions.push({ type: 'waitHealthy', containers: waitFor, hash, startPeriodMs, rollout: !deployed });
  }
  if (actions.length > 0) {
    if (!deployed && waitFor.length > 0) actions.push({ type: 'promote', hash });
    return { kind: 'act', phase, actions };
  }
  if (!deployed) return { kind: 'act', phase, actions: [{ type: 'promote', hash }] };
  // The new version serves: retire the old one (the route already points at the new one).
  if (old.length > 0) {
    return { kind: 'act', phase, actions: old.flatMap((c) => retire(c, spec.deploy.stopTimeoutSeconds, { reason: 'Retiring', message: `retiring ${c.name} of the previous version` })) };
  }
  return { kind: 'converged', serving: true };
}

/** The new version failed for good: keep whatever of the last good version exists serving, remove the rest. */
function keepLastGood(input: PlanInput, failedHash: string): Plan {
  const { observed, facts, config } = input;
  const keepHash = facts.activeHash !== failedHash ? facts.activeHash : undefined;
  const keep = observed.containers.filter((c) => c.hash === keepHash);
  const actions: Action[] = [];
  for (const c of observed.containers.filter((x) => x.hash !== keepHash)) {
    actions.push(...retire(c, 0, { reason: 'RolloutFailed', message: `removing ${c.name} of the failed version` }));
  }
  for (const c of keep) {
    if (!isUp(c)) actions.push({ type: 'startContainer', container: c.id, because: { reason: 'ContainerStopped', message: `found ${c.name} ${c.state}; starting it` } });
    else if (!(config.network in c.networks)) {
      actions.push({ type: 'connectNetwork', container: c.id, aliases: [input.desired!.name], because: { reason: 'NetworkDisconnected', message: `found ${c.name} disconnected from ${config.network}; reconnecting it` } });
    } else if (policyChanged(c)) actions.push(restorePolicy(c));
  }
  if (actions.length > 0) return { kind: 'act', phase: 'Deploying', actions };
  if (keep.length === 0) {
    const why = facts.failedReason;
    return { kind: 'stalled', reason: why?.reason ?? 'RolloutFailed', message: why?.message ?? 'the new version failed and no earlier version is running' };
  }
  return { kind: 'converged', serving: true };
}

/** Asleep or scaled to zero: the current version's containers stop (kept for a fast start), others go. */
function stopAll(input: PlanInput, hash: string, because: Because): Plan {
  const actions: Action[] = [];
  for (const c of input.observed.containers) {
    if (c.hash !== hash) actions.push(...retire(c, input.desired!.app.spec.deploy.stopTimeoutSeconds, { reason: 'Retiring', message: `removing ${c.name} of a previous version` }));
    else if (isUp(c)) actions.push({ type: 'stopContainer', container: c.id, timeoutSeconds: input.desired!.app.spec.deploy.stopTimeoutSeconds, because: { reason: because.reason, message: `${because.message}: stopping ${c.name}` } });
  }
  if (actions.length > 0) return { kind: 'act', phase: 'Sleeping', actions };
  return { kind: 'converged', serving: false };
}

function removeAll(input: PlanInput): Plan {
  const actions: Action[] = [];
  for (const c of input.observed.containers) actions.push(...retire(c, 10, { reason: 'Deleting', message: `the manifest is gone; removing ${c.name}` }));
  for (const v of input.observed.volumes) if (v.reclaimPolicy === 'Delete') actions.push({ type: 'removeVolume', volume: v.name });
  return actions.length > 0 ? { kind: 'act', phase: 'Deleting', actions } : { kind: 'deleted' };
}

function retire(c: ObservedContainer, timeoutSeconds: number, because: Because): Action[] {
  const stop: Action[] = isUp(c) && timeoutSeconds > 0 ? [{ type: 'stopContainer', container: c.id, timeoutSeconds, because }] : [];
  return [...stop, { type: 'removeContainer', container: c.id, because }];
}
