// F19 of the fault catalogue: berth's wall clock jumps (libfaketime, LD_PRELOAD, offset read from
// FAKETIME_TIMESTAMP_FILE at every call; the monotonic clock left alone) two days forward, then one
// day back, under a running berth with an idle app, a sleeping app, an always-on app and an app
// backing off. Nothing sleeps or wakes because of a jump, the idle app falls asleep on its
// monotonic schedule, and the backoff keeps its pace.
import { describe, it, afterAll, expect } from 'vitest';
import { existsSync } from 'node:fs';
import { unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sleep, waitFor } from '../helpers/berth-process.js';
import { IMAGES } from '../helpers/docker.js';
import { FaultEnv } from '../helpers/fault-env.js';
import { checkInvariants, summary } from '../helpers/invariants.js';

const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1';
let env: FaultEnv | undefined;

afterAll(async () => {
  await env?.destroy();
});

describe('clock jumps (F19)', () => {
  it('two days forward and one back: no mass sleep or wake, idle timers and backoff on the monotonic clock', async () => {
    expect(existsSync(LIBFAKETIME), `${LIBFAKETIME} (Debian package faketime)`).toBe(true);
    env = await FaultEnv.create('fcl');
    const clock = join(env.dirs.root, 'faketime');
    await writeFile(clock, '+0\n');
    await env.start({ LD_PRELOAD: LIBFAKETIME, FAKETIME_TIMESTAMP_FILE: clock, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' });
    const pulls = async () => FaultEnv.metric(await env!.metrics(), 'berth_docker_calls_total', 'method="pullImage"');
    await env.writeApp('awake', `image: ${IMAGES.httpdV1}\nroutes: [{host: awake.test}]\nidle: {after: 20s}\nresources: {memory: 32m}`);
    await env.writeApp('asleep', `image: ${IMAGES.httpdV1}\nroutes: [{host: asleep.test}]\nidle: {after: 2s}\nresources: {memory: 32m}`);
    await env.writeApp('always', `image: ${IMAGES.httpdV1}\nroutes: [{host: always.test}]\nresources: {memory: 32m}`);
    // Cannot be pulled here (no such image, no registry): it backs off, 1 s doubling.
    await env.writeApp('retry', `image: berth-faults/missing-${env.instance}:1\nresources: {memory: 32m}`);
    await env.waitReady('awake');
    await env.waitReady('always');
    await env.waitAsleep('asleep', { poke: 'asleep.test' });
    // berth's wall clock now, as the time of a log line it writes on demand (an invalid manifest, removed again).
    let probes = 0;
    const berthClock = async (): Promise<number> => {
      const file = join(env!.dirs.manifests, `clock-probe-${++probes}.yaml`);
      const mark = env!.berth!.logs().length;
      await writeFile(file, 'not: [a manifest\n');
      const line = await waitFor('berth logs the probe', () => env!.berth!.logs().slice(mark).split('\n').find((l) => l.includes(`clock-probe-${probes}.yaml`)), 5000, 20);
      await unlink(file);
      return Date.parse(/"time":"([^"]+)"/.exec(line)![1]!) - Date.now();
    };
    expect(Math.abs(await berthClock())).toBeLessThan(10_000);

    const lastRequest = Date.now();
    expect((await env.call('awake.test', '/')).status).toBe(200);
    const since = Date.now();
    const pullsAtJump = await pulls();

    // +2 days.
    await writeFile(clock, '+2d\n');
    await sleep(3000);
    const jumpedBy = await berthClock();
    console.log(`wall clock of berth after the forward jump: ${(jumpedBy / 86_400_000).toFixed(2)} days ahead`);
    expect(jumpedBy).toBeGreaterThan(1.9 * 86_400_000);
    expect((await env.status('awake'))?.status.phase, 'awake after +2 d').toBe('Ready');
    const pullsAfterForward = await pulls();

    // -1 day (now +1 d).
    await writeFile(clock, '+1d\n');
    await sleep(3000);
    const nowAhead = await berthClock();
    console.log(`after the backward jump: ${(nowAhead / 86_400_000).toFixed(2)} days ahead`);
    expect(Math.abs(nowAhead - 86_400_000)).toBeLessThan(0.1 * 86_400_000);
    expect((await env.status('awake'))?.status.phase, 'awake after -1 d').toBe('Ready');
    const afterJumps = (await env.events(since, Date.now())).map((e) => `${e.action} ${e.app}`);
    console.log(`container events during the jumps: ${afterJumps.join(', ') || 'none'}; pulls of the backing-off app: ${pullsAtJump} before, ${pullsAfterForward} 3 s after +2 d`);
    expect(afterJumps, 'no container started or stopped by a jump').toEqual([]);
    expect(pullsAfterForward - pullsAtJump, 'a forward jump does not fire the backoff early (burst of pulls)').toBeLessThanOrEqual(2);

    // awake falls asleep 20 s after its last request (monotonic), not at a jump, not a day late.
    const stopped = await waitFor('awake asleep', async () => {
      const ev = (await env!.events(since, Date.now(), ['label=dev.berth.app=awake', 'event=die']))[0];
      return ev;
    }, 40_000, 500);
    const after = stopped.at - lastRequest;
    console.log(`awake stopped ${after} ms after its last request (idle.after 20 s, resync 2 s); awake: ${summary(await env.status('awake'))}`);
    expect(after).toBeGreaterThan(19_000);
    expect(after).toBeLessThan(28_000);
    // The backoff kept going after the backward jump (a wall-clock timer would wait a day).
    const pullsBefore = await pulls();
    await waitFor('another pull attempt after the backward jump', async () => (await pulls()) > pullsBefore, 70_000, 1000);
    console.log(`retry: ${await pulls()} pull attempts in all; ${summary(await env.status('retry'))}`);
    await env.waitAsleep('awake');
    expect((await env.status('asleep'))?.status.phase).toBe('Sleeping');
    await checkInvariants(env, {
      apps: { awake: { running: 0, stopped: 1 }, asleep: { running: 0, stopped: 1 }, always: 1, retry: 0 },
      allowCalls: ['pullImage'], label: 'clock jumps',
    });
  }, 180_000);
});
