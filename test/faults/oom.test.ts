// F21 of the fault catalogue: an app that runs out of memory. The kernel's OOM killer ends it,
// Docker's restart policy brings it back with its own doubling delay, and berth adds no restart
// of its own (no tight loop), says CrashLoopBackOff with the cause in the status, keeps running
// itself, and keeps every other app serving.
import { describe, it, afterAll, expect } from 'vitest';
import { FaultEnv } from '../helpers/fault-env.js';
import { checkInvariants, summary } from '../helpers/invariants.js';
import { IMAGES, buildBusyboxImage } from '../helpers/docker.js';
import { sleep, waitFor } from '../helpers/berth-process.js';

/**
 * Its first run serves for 10 s, then its main process allocates 128 MiB (over its 32 MiB limit)
 * and is OOM-killed; every later run allocates at once (a crash loop as tight as Docker allows).
 */
const OOM_IMAGE = 'berth-test/oom-after-10s:1';
const OOM_CMD = 'if [ ! -e /tmp/started ]; then touch /tmp/started; httpd -p 8080 -h /www; sleep 10; fi; exec dd if=/dev/zero of=/dev/null bs=128M count=1';

let env: FaultEnv | undefined;

afterAll(async () => {
  await env?.destroy();
});

describe('an app that runs out of memory (F21)', () => {
  it('Docker restarts it with a growing delay, berth starts nothing itself, reports CrashLoopBackOff, and the others keep serving', async () => {
    await buildBusyboxImage(OOM_IMAGE, { 'www/index.html': 'fat v1\n', 'tmp/.keep': '' }, [
      `CMD ["sh", "-c", "${OOM_CMD}"]`,
    ]);
    env = await FaultEnv.create('foom');
    await env.start();
    await env.writeApp('fat', `image: ${OOM_IMAGE}\nport: 8080\nroutes: [{host: fat.test}]\nresources: {memory: 32m}`);
    await env.writeApp('lean', `image: ${IMAGES.httpdV1}\nroutes: [{host: lean.test}]\nresources: {memory: 32m}`);
    await env.waitReady('fat');
    await env.waitReady('lean');
    const startsBefore = FaultEnv.metric(await env.metrics(), 'berth_docker_calls_total', 'method="startContainer"');
    const since = Date.now();

    const looping = await waitFor('fat: CrashLoopBackOff with the cause', async () => {
      const s = await env!.status('fat');
      const c = s?.status.conditions?.find((x) => x.type === 'ContainerReady');
      return c?.reason === 'CrashLoopBackOff' ? { s, c } : undefined;
    }, 30_000, 50);
    console.log(`out of memory: ${summary(looping.s)}: ${looping.c.message}`);
    expect(looping.c.message).toMatch(/out of memory/);
    expect(looping.s!.status.conditions?.find((x) => x.type === 'Ready')?.status).toBe('False');
    expect(looping.s!.status.phase, 'nothing serves while it crashes').toBe('Failed');

    // Watch 30 s of it. The other app answers all along; berth stays up.
    const answers: number[] = [];
    while (Date.now() - since < 30_000) {
      answers.push((await env.call('lean.test', '/').catch(() => ({ status: 0 }))).status);
      await sleep(500);
    }
    const starts = await env.events(since, Date.now(), ['event=start']);
    const ooms = await env.events(since, Date.now(), ['event=oom']);
    const berthStarts = FaultEnv.metric(await env.metrics(), 'berth_docker_calls_total', 'method="startContainer"') - startsBefore;
    const restartCount = (await env.inspect((await env.containers('fat'))[0]!.Id)).RestartCount;
    console.log(`30 s of OOM kills: ${ooms.length} oom event(s), ${starts.filter((e) => e.app === 'fat').length} start(s) (Docker's restart count ${restartCount}); berth's own start calls: ${berthStarts}; lean answered ${answers.filter((a) => a === 200).length}/${answers.length}`);
    expect(ooms.length, 'the kernel killed it for memory').toBeGreaterThanOrEqual(2);
    expect(berthStarts, 'berth adds no start to Docker restart policy').toBe(0);
    // Docker's delay doubles from 0.1 s: about 9 starts in 30 s. A loop of berth's own would be dozens.
    expect(starts.filter((e) => e.app === 'fat').length).toBeLessThanOrEqual(12);
    expect(answers.every((a) => a === 200), 'the other app kept serving').toBe(true);
    expect([env.berth!.proc.exitCode, env.berth!.proc.signalCode], 'berth is still running').toEqual([null, null]);

    // Fixed by a new version that fits: the rollout replaces it and the loop is over.
    await env.writeApp('fat', `image: ${IMAGES.httpdV2}\nroutes: [{host: fat.test}]\nresources: {memory: 32m}`);
    await env.waitReady('fat', { image: IMAGES.httpdV2 });
    expect((await env.call('fat.test', '/')).text).toBe('hello v2\n');
    await checkInvariants(env, { apps: { fat: 1, lean: 1 }, label: 'out of memory, then fixed' });
  }, 150_000);
});
