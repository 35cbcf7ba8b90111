// One App's controller at run time: its XState actor with the real observe/execute actors
// wired in, and what the rest of berth reads from it (status, facts to persist, backends).
import { createActor, fromPromise, type Actor } from 'xstate';
import { appMachine, type AppFacts, type AppMachineInput } from '../../controllers/app/app.machine.js';
import { appStatus, type MachineState } from '../../controllers/app/app-status.js';
import { observe } from '../../controllers/app/observe.js';
import { execute, type ExecutorDeps } from '../../controllers/app/executor.js';
import { servingContainers } from '../../controllers/app/serving.js';
import type { AppDesired, ObservedContainer } from '../../controllers/app/types.js';
import type { DesiredEntry } from '../desired/desired-store.js';
import type { AppStatus, Condition } from '../api/types.generated.js';
import type { StatusEvent } from '../../controllers/status/event-log.js';
import type { Logger } from '../util/logger.js';
import type { StatusExtras } from './traffic.js';

export type AppActor = Actor<typeof appMachine>;

export interface AppRunnerDeps extends ExecutorDeps {
  resyncMs: number;
  random: () => number;
  log: Logger;
}

export interface AppRunnerOptions {
  name: string;
  desired: AppDesired | undefined;
  facts: AppFacts;
  previousEvents: StatusEvent[];
  deps: AppRunnerDeps;
  /** Called after every transition. */
  onChange: (runner: AppRunner) => void;
}

export class AppRunner {
  readonly actor: AppActor;
  /** The newest event already logged, to log each status event exactly once. */
  private lastLogged: StatusEvent | undefined;

  constructor(private readonly opts: AppRunnerOptions) {
    const { deps } = opts;
    const machine = appMachine.provide({
      actors: {
        observe: fromPromise(({ input, signal }) => observe(input.name, input.desired, deps.runtime, deps.config, signal)),
        execute: fromPromise(({ input, signal }) => execute(input.actions, input.desired, deps, signal)),
      },
    });
    const input: AppMachineInput = {
      name: opts.name, desired: opts.desired, facts: opts.facts, config: deps.config, clock: deps.clock,
      random: deps.random, resyncMs: deps.resyncMs, events: opts.previousEvents,
    };
    this.actor = createActor(machine, { input });
    this.lastLogged = opts.previousEvents.at(-1);
    this.actor.subscribe({
      next: () => {
        this.logNewEvents();
        opts.onChange(this);
      },
      error: (e) => deps.log.error({ err: e, app: opts.name }, 'app controller crashed'),
    });
  }

  start(): void {
    this.actor.start();
  }

  stop(): void {
    this.actor.stop();
  }

  get name(): string {
    return this.opts.name;
  }

  get state(): MachineState {
    return this.actor.getSnapshot().value;
  }

  get done(): boolean {
    return this.actor.getSnapshot().status === 'done';
  }

  get context() {
    return this.actor.getSnapshot().context;
  }

  facts(): AppFacts {
    return this.context.facts;
  }

  /** Containers that should receive traffic now. */
  serving(): ObservedContainer[] {
    const c = this.context;
    return servingContainers(c.observed, c.facts, c.healthy, c.config.network, c.unverified);
  }

  status(entry: DesiredEntry, previous: { phase?: AppStatus['phase']; conditions?: Condition[] } | undefined, extras: StatusExtras | undefined): AppStatus {
    const status = appStatus({
      entry,
      machine: { state: this.state, context: this.context },
      previousPhase: previous?.phase,
      previousConditions: previous?.conditions,
      now: this.opts.deps.clock.now().toISOString(),
      ...(extras ? { extraConditions: extras.conditions } : {}),
      ...(extras?.url ? { url: extras.url } : {}),
    });
    if (!extras) return status;
    const { lastActivity, ...fields } = extras.fields;
    return { ...status, ...fields, ...(status.idle && lastActivity ? { idle: { ...status.idle, lastActivity } } : {}) };
  }

  private logNewEvents(): void {
    const events = this.context.events;
    const last = events.at(-1);
    if (last === this.lastLogged) return;
    // Events are immutable objects: everything after the last logged one is new (if it was
    // pushed out of the bounded log, at least the newest is logged).
    const i = this.lastLogged ? events.indexOf(this.lastLogged) : -1;
    const from = !this.lastLogged ? 0 : i >= 0 ? i + 1 : events.length - 1;
    for (const e of events.slice(from)) {
      const line = { app: this.opts.name, reason: e.reason, ...(e.count ? { count: e.count } : {}) };
      if (e.type === 'Warning') this.opts.deps.log.warn(line, e.message);
      else this.opts.deps.log.info(line, e.message);
    }
    this.lastLogged = last;
  }
}
