// One XState machine per GitRepository: sync on start, on every spec change, on a webhook
// push ("sync"), and every spec.interval; transient failures back off (1 s doubling to
// 5 min, jittered); a missing branch or path stalls until the spec changes or a push.
import { assign, fromPromise, setup } from 'xstate';
import type { Clock } from '../ports/clock.js';
import { asBerthError } from '../ports/errors.js';
import { recordEvent, type StatusEvent } from '../status/event-log.js';
import type { LastError } from '../app/app.machine.js';

export interface RepositorySpec {
  url: string;
  branch: string;
  path: string;
  intervalMs: number;
}

export interface SyncOutput {
  commit: string;
  files: string[];
  changed: { added: string[]; updated: string[]; removed: string[] };
  skipped: string[];
}

export interface SyncInput {
  name: string;
  spec: RepositorySpec;
  /** The commit last synced, so an unchanged head costs only an ls-remote. */
  lastCommit: string | undefined;
}

export interface RepositoryContext {
  name: string;
  spec: RepositorySpec;
  generation: number;
  clock: Clock;
  random: () => number;
  commit: string | undefined;
  syncedAt: string | undefined;
  files: string[];
  skipped: string[];
  lastError: LastError | undefined;
  attempt: number;
  retryDelayMs: number;
  retryAt: string | undefined;
  events: StatusEvent[];
}

export type RepositoryEvent = { type: 'spec.changed'; spec: RepositorySpec; generation: number } | { type: 'sync' };

export interface RepositoryInput {
  name: string;
  spec: RepositorySpec;
  generation: number;
  clock: Clock;
  random: () => number;
  previous?: { commit?: string; events?: StatusEvent[] };
}

export const repositoryMachine = setup({
  // XState's way to declare the machine's types; the assertion is the API, not a cast.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
  types: {} as { context: RepositoryContext; events: RepositoryEvent; input: RepositoryInput },
  actors: {
    sync: fromPromise<SyncOutput, SyncInput>(() => Promise.reject(new Error('sync is not provided'))),
  },
  delays: {
    interval: ({ context }) => context.spec.intervalMs,
    retryDelay: ({ context }) => context.retryDelayMs,
  },
  guards: {
    stalledError: ({ context }) => context.lastError?.kind === 'stalled',
  },
  actions: {
    synced: assign(({ context, event }) => {
      const out = (event as unknown as { output: SyncOutput }).output;
      const at = context.clock.now().toISOString();
      const n = out.changed.added.length + out.changed.updated.length + out.changed.removed.length;
      const events = n > 0 || out.commit !== context.commit
        ? recordEvent(context.events, { at, type: 'Normal', reason: 'Synced', message: `synced ${out.commit.slice(0, 12)}: ${out.changed.added.length} added, ${out.changed.updated.length} updated, ${out.changed.removed.length} removed` })
        : context.events;
      return { commit: out.commit, files: out.files, skipped: out.skipped, syncedAt: n > 0 || out.commit !== context.commit ? at : (context.syncedAt ?? at), lastError: undefined, attempt: 0, retryAt: undefined, events };
    }),
    failed: assign(({ context, event }) => {
      const err = asBerthError((event as unknown as { error: unknown }).error, 'SyncFailed');
      const attempt = context.attempt + 1;
      const retryDelayMs = Math.round(Math.min(1000 * 2 ** (attempt - 1), 300_000) * (0.8 + 0.4 * context.random()));
      const at = context.clock.now();
      return {
        attempt, retryDelayMs,
        retryAt: err.kind === 'stalled' ? undefined : new Date(at.getTime() + retryDelayMs).toISOString(),
        lastError: { kind: err.kind, reason: err.reason, message: err.message, at: at.toISOString() },
        events: recordEvent(context.events, { at: at.toISOString(), type: 'Warning', reason: err.reason, message: err.message }),
      };
    }),
    setSpec: assign(({ event }) => {
      const e = event as Extract<RepositoryEvent, { type: 'spec.changed' }>;
      return { spec: e.spec, generation: e.generation, attempt: 0 };
    }),
  },
}).createMachine({
  id: 'gitrepository',
  context: ({ input }) => ({
    name: input.name, spec: input.spec, generation: input.generation, clock: input.clock, random: input.random,
    commit: input.previous?.commit, syncedAt: undefined, files: [], skipped: [], lastError: undefined,
    attempt: 0, retryDelayMs: 1000, retryAt: undefined, events: input.previous?.events ?? [],
  }),
  initial: 'syncing',
  on: {
    'spec.changed': { target: '.syncing', reenter: true, actions: 'setSpec' },
    sync: { target: '.syncing', reenter: true },
  },
  states: {
    syncing: {
      invoke: {
        src: 'sync',
        input: ({ context }) => ({ name: context.name, spec: context.spec, lastCommit: context.commit }),
        onDone: { target: 'synced', actions: 'synced' },
        onError: { target: 'failing', actions: 'failed' },
      },
    },
    synced: { after: { interval: 'syncing' } },
    failing: { always: [{ guard: 'stalledError', target: 'stalled' }, { target: 'backoff' }] },
    backoff: { after: { retryDelay: 'syncing' } },
    stalled: {},
  },
});
