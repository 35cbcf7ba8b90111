// One XState machine per App. It owns phase and time — when to look again, how long to back
// off, when to give up until the spec changes — and does I/O only in invoked promise actors
// (observe, execute) that honour their abort signal. Every pass re-observes the world and
// re-plans (level-triggered); no snapshot is persisted: on start an app re-derives its state.
import { assign, fromPromise, setup } from 'xstate';
import type { Clock } from '../ports/clock.js';
import { asBerthError, type ErrorKind } from '../ports/errors.js';
import { recordEvent, type StatusEvent } from '../status/event-log.js';
import { plan } from './plan.js';
import type { ExecResult } from './executor.js';
import type { AppDesired, AppFactsView, Observed, Plan, PlanConfig, WorkPhase } from './types.js';
import type { DeployRecord } from '../../src/state/state-schema.js';

export const BACKOFF_BASE_MS = 1000;
export const BACKOFF_CAP_MS = 5 * 60_000;
/** A failure after this long of uninterrupted health starts the backoff from the beginning. */
export const HEALTHY_RESET_MS = 60_000;
const MAX_HISTORY = 10;

export interface AppFacts extends AppFactsView {
  history: DeployRecord[];
  sleepingSince?: string;
}

export interface AppMachineInput {
  name: string;
  desired: AppDesired | undefined;
  facts: AppFacts;
  config: PlanConfig;
  clock: Clock;
  random: () => number;
  resyncMs: number;
  events?: StatusEvent[];
}

export interface LastError {
  kind: ErrorKind;
  reason: string;
  message: string;
  at: string;
}

export interface AppContext extends AppMachineInput {
  observed: Observed | undefined;
  plan: Plan | undefined;
  wantRunning: boolean;
  /** Set by a wake request until the app serves again (phase Waking). */
  waking: boolean;
  healthy: string[];
  /** Running containers whose health check failed since they last started (no traffic until one passes). */
  unverified: string[];
  work: { phase: WorkPhase; step: string } | undefined;
  attempt: number;
  retryDelayMs: number;
  retryAt: string | undefined;
  resyncDelayMs: number;
  healthySinceMono: number | undefined;
  lastError: LastError | undefined;
  events: StatusEvent[];
}

export type AppEvent =
  | { type: 'spec.changed'; desired: AppDesired | undefined }
  | { type: 'reconcile' }
  | { type: 'retry' }
  | { type: 'wake' }
  | { type: 'idle' }
  | { type: 'docker.changed' };

export interface ObserveInput {
  name: string;
  desired: AppDesired | undefined;
}

export interface ExecuteInput {
  name: string;
  desired: AppDesired | undefined;
  actions: Extract<Plan, { kind: 'act' }>['actions'];
}

function describeStep(p: Extract<Plan, { kind: 'act' }>): string {
  const kinds = [...new Set(p.actions.map((a) => a.type))];
  return kinds.join(', ');
}

export const appMachine = setup({
  // XState's way to declare the machine's types; the assertion is the API, not a cast.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
  types: {} as { context: AppContext; events: AppEvent; input: AppMachineInput },
  actors: {
    // Implementations are provided by the controller manager (real Docker) or by tests.
    observe: fromPromise<Observed, ObserveInput>(() => Promise.reject(new Error('observe is not provided'))),
    execute: fromPromise<ExecResult, ExecuteInput>(() => Promise.reject(new Error('execute is not provided'))),
  },
  delays: {
    retryDelay: ({ context }) => context.retryDelayMs,
    resync: ({ context }) => context.resyncDelayMs,
  },
  guards: {
    act: ({ context }) => context.plan?.kind === 'act',
    serving: ({ context }) => context.plan?.kind === 'converged' && context.plan.serving,
    notServing: ({ context }) => context.plan?.kind === 'converged' && !context.plan.serving,
    stalledPlan: ({ context }) => context.plan?.kind === 'stalled',
    waitingPlan: ({ context }) => context.plan?.kind === 'waiting',
    paused: ({ context }) => context.plan?.kind === 'paused',
    deleted: ({ context }) => context.plan?.kind === 'deleted',
    stalledError: ({ context }) => context.lastError?.kind === 'stalled',
    canSleep: ({ context }) => context.desired?.app.spec.idle !== undefined && context.wantRunning,
    asleep: ({ context }) => !context.wantRunning,
  },
  actions: {
    applyPlan: assign(({ context, event }) => {
      const observed = (event as unknown as { output: Observed }).output;
      const running = new Set(observed.containers.filter((c) => c.state === 'running').map((c) => c.id));
      const healthy = context.healthy.filter((id) => running.has(id));
      const unverified = context.unverified.filter((id) => running.has(id));
      const p = plan({ desired: context.desired, observed, facts: context.facts, wantRunning: context.wantRunning, waking: context.waking, healthy: new Set(healthy), unverified: new Set(unverified), config: context.config });
      return { observed, healthy, unverified, plan: p, work: p.kind === 'act' ? { phase: context.waking && p.phase === 'Deploying' ? ('Waking' as const) : p.phase, step: describeStep(p) } : undefined };
    }),
    applyResult: assign(({ context, event }) => {
      const r = (event as unknown as { output: ExecResult }).output;
      const at = context.clock.now().toISOString();
      let events = context.events;
      for (const e of r.events) events = recordEvent(events, { at, ...e });
      let facts = context.facts;
      if (r.promoted) {
        facts = { ...facts, activeHash: r.promoted, history: pushHistory(facts.history, { ...revisionOf(context.desired), at, result: 'Succeeded' }) };
      }
      if (r.rolloutFailed) {
        // A new version whose containers failed was rolled back; a failed build never ran.
        const rolledBack = facts.activeHash !== undefined && facts.activeHash !== r.rolloutFailed.hash && ['ContainerExited', 'HealthCheckTimeout'].includes(r.rolloutFailed.reason);
        const result = rolledBack ? 'RolledBack' : 'Failed';
        facts = {
          ...facts,
          failedHash: r.rolloutFailed.hash,
          failedReason: { reason: r.rolloutFailed.reason, message: r.rolloutFailed.message },
          history: pushHistory(facts.history, { ...revisionOf(context.desired), at, result, message: r.rolloutFailed.message }),
        };
      }
      // The containers just verified healthy, as inspected then: traffic can flow to them before the next observe.
      let observed = context.observed;
      if (observed && r.verified?.length) {
        const byId = new Map(r.verified.map((c) => [c.id, c]));
        observed = { ...observed, containers: observed.containers.map((c) => (byId.has(c.id) ? { ...c, state: byId.get(c.id)!.state, networks: byId.get(c.id)!.networks } : c)) };
      }
      return { events, facts, observed, healthy: [...new Set([...context.healthy, ...r.healthy])], unverified: context.unverified.filter((id) => !r.healthy.includes(id)) };
    }),
    recordError: assign(({ context, event }) => {
      const err = asBerthError((event as unknown as { error: unknown }).error);
      const now = context.clock.monotonic();
      // A long healthy stretch since the last failure: start the backoff over.
      const fresh = context.healthySinceMono !== undefined && now - context.healthySinceMono >= HEALTHY_RESET_MS;
      const attempt = (fresh ? 0 : context.attempt) + 1;
      const base = Math.min(BACKOFF_BASE_MS * 2 ** (attempt - 1), BACKOFF_CAP_MS);
      const retryDelayMs = Math.round(base * (0.8 + 0.4 * context.random()));
      const at = context.clock.now();
      const lastError: LastError = { kind: err.kind, reason: err.reason, message: err.message, at: at.toISOString() };
      // Containers a failed health wait was for stay running but get no traffic until they pass one.
      const waited = context.plan?.kind === 'act' && err.reason === 'HealthCheckTimeout' ? context.plan.actions.flatMap((a) => (a.type === 'waitHealthy' ? a.containers : [])) : [];
      return {
        lastError,
        unverified: [...new Set([...context.unverified, ...waited])],
        attempt,
        retryDelayMs,
        retryAt: err.kind === 'stalled' ? undefined : new Date(at.getTime() + retryDelayMs).toISOString(),
        healthySinceMono: undefined,
        work: undefined,
        events: recordEvent(context.events, { at: at.toISOString(), type: 'Warning', reason: err.reason, message: err.message }),
      };
    }),
    settle: assign(({ context }) => ({
      lastError: undefined,
      retryAt: undefined,
      waking: context.waking && context.plan?.kind === 'converged' && context.plan.serving ? false : context.waking,
      work: undefined,
      healthySinceMono: context.healthySinceMono ?? context.clock.monotonic(),
      resyncDelayMs: Math.round(context.resyncMs * (0.8 + 0.4 * context.random())),
    })),
    setSpec: assign(({ context, event }) => {
      const desired = (event as Extract<AppEvent, { type: 'spec.changed' }>).desired;
      // A new spec gets a fresh start: no inherited backoff.
      return { desired, attempt: 0, retryAt: undefined, ...(desired?.app.spec.idle === undefined ? { wantRunning: true, waking: false } : {}), facts: context.facts };
    }),
    clearFailure: assign(({ context }) => {
      const { failedHash: _h, failedReason: _r, ...facts } = context.facts;
      return { facts: { ...facts, history: context.facts.history }, attempt: 0, retryAt: undefined, lastError: undefined };
    }),
    wake: assign(({ context }) => {
      const { sleepingSince: _s, ...facts } = context.facts;
      return { wantRunning: true, waking: true, facts: { ...facts, history: context.facts.history } };
    }),
    sleep: assign(({ context }) => ({ wantRunning: false, facts: { ...context.facts, sleepingSince: context.clock.now().toISOString() } })),
  },
}).createMachine({
  id: 'app',
  context: ({ input }) => ({
    ...input,
    observed: undefined,
    plan: undefined,
    // An app berth put to sleep before a restart stays asleep; everything else runs.
    wantRunning: input.facts.sleepingSince === undefined || input.desired?.app.spec.idle === undefined,
    waking: false,
    healthy: [],
    unverified: [],
    work: undefined,
    attempt: 0,
    retryDelayMs: BACKOFF_BASE_MS,
    retryAt: undefined,
    resyncDelayMs: input.resyncMs,
    healthySinceMono: undefined,
    lastError: undefined,
    events: input.events ?? [],
  }),
  initial: 'observing',
  on: {
    'spec.changed': { target: '.observing', reenter: true, actions: 'setSpec' },
    retry: { target: '.observing', reenter: true, actions: 'clearFailure' },
    wake: { guard: 'asleep', target: '.observing', reenter: true, actions: 'wake' },
    // The idle timer fires once: if a pass is running (a resync, a repair) when it does, remember
    // it rather than drop it — the pass's next plan stops the app. (In ready, the state's own
    // handler starts that pass at once.)
    idle: { guard: 'canSleep', actions: 'sleep' },
  },
  states: {
    observing: {
      invoke: {
        src: 'observe',
        input: ({ context }) => ({ name: context.name, desired: context.desired }),
        onDone: { target: 'deciding', actions: 'applyPlan' },
        onError: { target: 'failing', actions: 'recordError' },
      },
    },
    deciding: {
      always: [
        { guard: 'act', target: 'acting' },
        { guard: 'serving', target: 'ready' },
        { guard: 'notServing', target: 'sleeping' },
        { guard: 'stalledPlan', target: 'stalled' },
        { guard: 'waitingPlan', target: 'waiting' },
        { guard: 'paused', target: 'paused' },
        { guard: 'deleted', target: 'deleted' },
      ],
    },
    acting: {
      invoke: {
        src: 'execute',
        input: ({ context }) => ({
          name: context.name,
          desired: context.desired,
          actions: context.plan?.kind === 'act' ? context.plan.actions : [],
        }),
        onDone: { target: 'observing', actions: 'applyResult' },
        onError: { target: 'failing', actions: 'recordError' },
      },
    },
    failing: {
      always: [{ guard: 'stalledError', target: 'stalled' }, { target: 'backoff' }],
    },
    backoff: {
      after: { retryDelay: 'observing' },
      on: { 'docker.changed': 'observing' },
    },
    ready: {
      entry: 'settle',
      after: { resync: 'observing' },
      on: {
        reconcile: 'observing',
        idle: { guard: 'canSleep', target: 'observing', actions: 'sleep' },
      },
    },
    sleeping: {
      entry: 'settle',
      after: { resync: 'observing' },
      on: { reconcile: 'observing' },
    },
    stalled: {
      on: { reconcile: 'observing' },
    },
    // Waiting for an input (a build revision) that arrives as a spec change.
    waiting: {
      on: { reconcile: 'observing' },
    },
    paused: {},
    deleted: { type: 'final' },
  },
});

function pushHistory(history: DeployRecord[], r: DeployRecord): DeployRecord[] {
  return [...history, r].slice(-MAX_HISTORY);
}

function revisionOf(desired: AppDesired | undefined): { image: string; revision?: string } {
  return { image: desired?.image ?? '', ...(desired?.revision !== undefined ? { revision: desired.revision } : {}) };
}
