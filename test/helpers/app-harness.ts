// Fast machine tests of the App controller: the real machine, planner and executor over the
// in-memory runtime, with XState's simulated clock for timers and a virtual monotonic clock
// for the executor (so start periods pass without waiting).
import { createActor, fromPromise, SimulatedClock, waitFor, type Actor } from 'xstate';
import { setImmediate as tick } from 'node:timers/promises';
import { appMachine, type AppFacts } from '../../controllers/app/app.machine.js';
import { observe } from '../../controllers/app/observe.js';
import { execute, type ExecutorDeps } from '../../controllers/app/executor.js';
import { appStatus, type MachineState } from '../../controllers/app/app-status.js';
import type { AppDesired, PlanConfig } from '../../controllers/app/types.js';
import type { HealthProber } from '../../controllers/ports/health-prober.js';
import { loadManifestText } from '../../src/manifests/loader.js';
import type { App, AppStatus } from '../../src/api/types.generated.js';
import type { DesiredEntry } from '../../src/desired/desired-store.js';
import { MemoryRuntime } from './memory-runtime.js';

export const CONFIG: PlanConfig = { instance: 'mt', network: 'mt', allowHostPath: [] };
const EPOCH = Date.parse('2026-01-01T00:00:00Z');

export function desiredFrom(yaml: string, generation = 1): AppDesired {
  const load = loadManifestText('t.yaml', yaml);
  if (load.problems.length) throw new Error(load.problems.map((p) => p.message).join('\n'));
  const app = load.objects[0]!.object as App;
  return { name: app.metadata.name, generation, app, problems: [], image: app.spec.image, secrets: {}, missingSecrets: [] };
}

export class Harness {
  readonly runtime: MemoryRuntime;
  readonly clock = new SimulatedClock();
  /** Extra monotonic time consumed by the executor's sleeps. */
  private slept = 0;
  /** IPs that accept no connection (an app that never listens). */
  readonly silent = new Set<string>();
  actor!: Actor<typeof appMachine>;
  random = () => 0.5;

  constructor() {
    this.runtime = new MemoryRuntime({ now: () => this.now() });
  }

  now(): Date {
    return new Date(EPOCH + this.clock.now() + this.slept);
  }

  readonly prober: HealthProber = {
    probe: (p) => {
      const c = this.runtime.allContainers().find((x) => Object.values(x.networks).includes(p.host));
      const ok = c !== undefined && c.state === 'running' && !this.silent.has(c.image);
      return Promise.resolve({ ok, detail: ok ? 'ok' : `TCP ${p.host}:${p.port}: ECONNREFUSED` });
    },
  };

  deps(): ExecutorDeps {
    return {
      runtime: this.runtime,
      prober: this.prober,
      config: CONFIG,
      clock: { monotonic: () => this.clock.now() + this.slept, now: () => this.now() },
      sleep: async (ms, signal) => {
        signal?.throwIfAborted();
        this.slept += ms;
        await tick();
        signal?.throwIfAborted();
      },
    };
  }

  start(desired: AppDesired | undefined, facts: Partial<AppFacts> = {}, name = desired?.name ?? 'app'): Actor<typeof appMachine> {
    const deps = this.deps();
    const machine = appMachine.provide({
      actors: {
        observe: fromPromise(({ input, signal }) => observe(input.name, input.desired, this.runtime, CONFIG, signal)),
        execute: fromPromise(({ input, signal }) => execute(input.actions, input.desired, deps, signal)),
      },
    });
    this.actor = createActor(machine, {
      clock: this.clock,
      input: { name, desired, facts: { history: [], ...facts }, config: CONFIG, clock: deps.clock, random: () => this.random(), resyncMs: 60_000 },
    });
    this.actor.start();
    return this.actor;
  }

  get state(): MachineState {
    return this.actor.getSnapshot().value;
  }

  async until(state: MachineState | MachineState[], timeoutMs = 5000): Promise<void> {
    const wanted = Array.isArray(state) ? state : [state];
    await waitFor(this.actor, (s) => wanted.includes(s.value), { timeout: timeoutMs });
  }

  /** Advance simulated time (fires XState timers) and let promises run. */
  async advance(ms: number): Promise<void> {
    this.clock.increment(ms);
    for (let i = 0; i < 20; i++) await tick();
  }

  status(generation = 1): AppStatus {
    const s = this.actor.getSnapshot();
    const entry: DesiredEntry = {
      key: 'App/x', kind: 'App', name: s.context.name, generation, specHash: 'h', createdAt: '', file: 'x.yaml',
      object: s.context.desired?.app, problems: [],
    };
    return appStatus({ entry, machine: { state: this.state, context: s.context }, previousPhase: undefined, previousConditions: undefined, now: this.now().toISOString() });
  }

  condition(type: string) {
    return this.status().conditions.find((c) => c.type === type);
  }

  /** The app's containers in the runtime. */
  containers(app = 'app') {
    return this.runtime.allContainers().filter((c) => c.labels['dev.berth.app'] === app);
  }
}
