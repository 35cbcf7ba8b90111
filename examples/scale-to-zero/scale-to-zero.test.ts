// examples/scale-to-zero end to end: this example's app.yaml with idle.after shortened to 3 s,
// the built berth on a temporary folder, real Docker, requests through the proxy.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { berthCli, waitFor } from '../../test/helpers/berth-process.js';
import { docker } from '../../test/helpers/docker.js';
import {
  STAND_INS, apply, appStatus, closeExampleEnv, condition, containerStates, editedManifest, exampleEnv, fileArgs, httpRequest, standIn, startBerth, waitPhase,
  type ExampleEnv,
  started,
} from '../../test/helpers/example-env.js';
import type { AppStatusFile } from '../../src/api/types.generated.js';

const { marker } = STAND_INS.nginx;
let env: ExampleEnv | undefined;

beforeAll(async () => {
  env = await exampleEnv('exidle');
  await standIn(env, 'nginx:1.27-alpine', 'nginx');
  await startBerth(env); // default --resync (5m): sleeping must not depend on it
}, 180_000);

afterAll(() => closeExampleEnv(env), 60_000);

const must = () => started(env);

/** Docker events of one kind for the app's containers between two times (seconds). */
async function containerEvents(e: ExampleEnv, event: string, since: number, until: number): Promise<string[]> {
  const wait = until - Date.now() / 1000;
  if (wait > 0) await new Promise((r) => setTimeout(r, wait * 1000 + 100));
  const out = await docker('events', '--since', since.toFixed(3), '--until', until.toFixed(3), '--filter', `label=dev.berth.instance=${e.instance}`,
    '--filter', 'label=dev.berth.app=docs', '--filter', 'type=container', '--filter', `event=${event}`, '--format', '{{.Actor.ID}}');
  return out.split('\n').filter(Boolean);
}

/**
 * Asleep and settled: phase Sleeping, Ready=True/Sleeping, no step still running, the container
 * stopped. (While the container stops, and until berth has observed it stopped, the status
 * already says Sleeping with Ready still Available.)
 */
function waitAsleep(e: ExampleEnv): Promise<AppStatusFile> {
  return waitFor('docs asleep', async () => {
    const s = await appStatus(e, 'docs');
    const settled = s?.status.phase === 'Sleeping' && condition(s, 'Ready')?.reason === 'Sleeping' && !condition(s, 'Reconciling')
      && (await containerStates(e, 'docs')).join() === 'exited';
    return settled ? s : undefined;
  }, 20_000, 100);
}

describe('examples/scale-to-zero', () => {
  it('sleeps after idle.after, and one request wakes it with X-Berth-Cold-Start: true', async () => {
    const e = must();
    const manifest = await editedManifest('scale-to-zero', 'app.yaml', [[['spec', 'idle', 'after'], '3s']]);
    expect(manifest).toContain('wakeTimeout: 60s');
    await apply(e, manifest);

    const ready = await waitPhase(e, 'docs', 'Ready', 30_000);
    const first = await httpRequest(e, 'docs.lan');
    expect(first.status).toBe(200);
    expect(first.body).toContain(marker);
    expect(first.headers['x-berth-cold-start']).toBeUndefined();
    const containerId = ready.status.containers?.[0]?.id ?? '';
    expect(containerId).not.toBe('');

    // Asleep: the container is stopped (not removed) and the status says so; the route stays.
    const t0 = Date.now();
    const asleep = await waitAsleep(e);
    console.log(`docs: asleep ${Date.now() - t0} ms after its last request (idle.after 3s)`);
    expect(condition(asleep, 'Ready')).toMatchObject({ status: 'True', reason: 'Sleeping', message: 'asleep; the next request wakes it' });
    expect(condition(asleep, 'ContainerReady')?.reason).toBe('Sleeping');
    expect(condition(asleep, 'RouteReady')).toMatchObject({ status: 'True', reason: 'Routed' });
    expect(asleep.status.idle?.after).toBe('3s');
    expect(asleep.status.idle?.sleepingSince).toBeDefined();
    expect(asleep.status.events?.map((ev) => ev.reason)).toContain('Idle');
    const table = await berthCli(['status', ...fileArgs(e)]);
    expect(table.stdout).toMatch(/^docs\s+Sleeping\s+True\s+http:\/\/docs\.lan:\d+\/\s+-\s+\S+\s+asleep; the next request wakes it$/m);

    // Five requests at once to the sleeping app: one start, all answered, all marked cold.
    const since = Date.now() / 1000;
    const replies = await Promise.all(Array.from({ length: 5 }, (_, i) => httpRequest(e, 'docs.lan', { path: i === 0 ? '/' : `/?n=${i}`, timeoutMs: 60_000 })));
    const until = Date.now() / 1000;
    console.log(`docs: 5 requests through a wake in ${Math.round((until - since) * 1000)} ms`);
    for (const r of replies) {
      expect(r.status).toBe(200);
      expect(r.body).toContain(marker);
      expect(r.headers['x-berth-cold-start']).toBe('true');
    }
    expect(await containerEvents(e, 'start', since, until + 0.5)).toHaveLength(1);
    expect(await containerEvents(e, 'create', since, until + 0.5)).toHaveLength(0);

    const woken = await waitPhase(e, 'docs', 'Ready', 10_000);
    expect(woken.status.containers?.map((c) => c.id)).toEqual([containerId]);
    expect(woken.status.events?.map((ev) => ev.reason)).toContain('Waking');
    const warm = await httpRequest(e, 'docs.lan');
    expect(warm.status).toBe(200);
    expect(warm.headers['x-berth-cold-start']).toBeUndefined();
  });

  it('sleeps again after the wake, and removing idle starts it for good', async () => {
    const e = must();
    await waitAsleep(e);
    const always = await editedManifest('scale-to-zero', 'app.yaml', [[['spec', 'idle'], undefined]]);
    expect(always).not.toContain('idle');
    await apply(e, always);
    await waitFor('docs running without a request', async () => (await appStatus(e, 'docs'))?.status.phase === 'Ready' && (await containerStates(e, 'docs')).join() === 'running', 20_000, 100);
    expect((await httpRequest(e, 'docs.lan')).headers['x-berth-cold-start']).toBeUndefined();
  });
});
