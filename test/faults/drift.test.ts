// F6, F7, F8 of the fault catalogue: drift behind berth's back (every kind the catalogue names),
// a container berth did not create squatting an app's name, the instance network removed, and
// the image of a sleeping app removed. berth repairs what is its own within seconds (events, or
// at worst one 2 s resync), never "heals" a sleeping app awake, never touches what is not its own,
// and the invariants hold after each fault.
import { describe, it, beforeAll, afterAll, expect } from 'vitest';
import { randomBytes } from 'node:crypto';
import { sleep, waitFor } from '../helpers/berth-process.js';
import { IMAGES } from '../helpers/docker.js';
import { FaultEnv, condition, type Reply } from '../helpers/fault-env.js';
import { checkInvariants, summary } from '../helpers/invariants.js';
import { createTestRepo, type TestRepo } from '../helpers/git.js';

const envs: FaultEnv[] = [];
const repos: TestRepo[] = [];

afterAll(async () => {
  for (const e of envs) await e.destroy();
  for (const r of repos) await r.cleanup();
});

const webSpec = `image: ${IMAGES.httpdV1}\nreplicas: 2\nroutes: [{host: web.test}]\nhealthCheck: {path: /healthz}\nresources: {memory: 32m}`;
const napSpec = `image: ${IMAGES.httpdV1}\nroutes: [{host: nap.test}]\nidle: {after: 2s}\nresources: {memory: 32m}`;
const APPS = { web: 2, nap: { running: 0, stopped: 1 } };

describe('drift of every kind (F6, F8)', () => {
  let env: FaultEnv;

  beforeAll(async () => {
    env = await FaultEnv.create('fdr');
    envs.push(env);
    await env.start();
    await env.writeApp('web', webSpec);
    await env.writeApp('nap', napSpec);
    await env.waitReady('web', { replicas: 2 });
    await env.waitAsleep('nap', { poke: 'nap.test' });
  });

  /** One drift: act on web's first container, wait until berth repaired it (and said so, if `reason`), then the invariants. */
  async function drift(what: string, act: (c: { id: string; name: string }) => Promise<unknown>, reason?: string, extra?: () => Promise<boolean>): Promise<void> {
    const [c] = (await env.containers('web')).filter((x) => x.State === 'running');
    const target = { id: c!.Id, name: c!.Names[0]!.replace(/^\//, '') };
    const since = new Date().toISOString();
    const t0 = Date.now();
    await act(target);
    const healed = await waitFor(`${what} repaired`, async () => {
      const s = await env.status('web');
      if (s?.status.phase !== 'Ready' || condition(s, 'Ready')?.status !== 'True') return undefined;
      const ev = reason ? s.status.events?.find((e) => e.reason === reason && e.at >= since) : undefined;
      if (reason && !ev) return undefined;
      const cs = await env.containers('web');
      if (cs.length !== 2 || cs.some((x) => x.State !== 'running')) return undefined;
      if (extra && !(await extra())) return undefined;
      return { ms: Date.now() - t0, ev };
    }, 15_000, 50).catch(async (e: unknown) => {
      throw new Error(`${String(e)}\nweb: ${summary(await env.status('web'))}; containers ${(await env.containers('web')).map((x) => `${x.Names[0]} ${x.State}`).join(', ')}`);
    });
    console.log(`${what}: repaired in ${healed.ms} ms${healed.ev ? ` (${healed.ev.reason}: ${healed.ev.message})` : ''}`);
    await checkInvariants(env, { apps: APPS, label: what });
    // The sleeping app was not "healed" awake by any of this.
    expect((await env.status('nap'))?.status.phase).toBe('Sleeping');
  }

  it('docker rm -f: recreated', async () => {
    await drift('docker rm -f', (c) => env.docker('rm', '-f', c.id), 'ContainerMissing');
  });

  it('docker kill: running again', async () => {
    await drift('docker kill', (c) => env.docker('kill', c.id));
  });

  it('docker stop: started again', async () => {
    await drift('docker stop', (c) => env.docker('stop', '-t', '1', c.id), 'ContainerStopped');
  });

  it('docker rename: still one container per replica, serving', async () => {
    let renamed = '';
    await drift('docker rename', async (c) => {
      renamed = `${c.name}-renamed`;
      await env.docker('rename', c.id, renamed);
    });
    const names = (await env.containers('web')).map((c) => c.Names[0]!.replace(/^\//, ''));
    console.log(`after docker rename: containers ${names.join(', ')} (berth ${names.includes(renamed) ? 'kept the renamed container' : 'replaced it'})`);
  });

  it('docker network disconnect: reconnected', async () => {
    await drift('docker network disconnect', (c) => env.docker('network', 'disconnect', env.instance, c.id), 'NetworkDisconnected', async () => {
      const cs = await env.containers('web');
      return cs.every((x) => env.instance in (x.NetworkSettings?.Networks ?? {}));
    });
  });

  it('docker update --restart=no: berth notices and puts its restart policy back', async () => {
    const [c] = await env.containers('web');
    await env.docker('update', '--restart=no', c!.Id);
    try {
      // Repaired = every container serving the app has unless-stopped again (updated, or replaced).
      const fixed = await waitFor('restart policy unless-stopped again', async () => {
        const cs = await env.containers('web');
        if (cs.length !== 2) return false;
        const policies = await Promise.all(cs.map(async (x) => (await env.inspect(x.Id)).HostConfig.RestartPolicy?.Name));
        return policies.every((p) => p === 'unless-stopped');
      }, 10_000, 200).then(() => true, () => false);
      const policy = await env.inspect(c!.Id).then((i) => i.HostConfig.RestartPolicy?.Name, () => 'container replaced');
      console.log(`docker update --restart=no: ${fixed ? 'repaired' : 'NOT noticed'} within 10 s (the container's policy now: ${policy})`);
      expect(fixed, 'berth repairs a container whose restart policy was changed behind its back (F6)').toBe(true);
      await checkInvariants(env, { apps: APPS, label: 'docker update --restart=no' });
    } finally {
      // Whatever berth did, the next scenarios start from a clean container.
      await env.docker('update', '--restart=unless-stopped', c!.Id).catch(() => undefined);
    }
  });

  it('an unmanaged container squatting the name: Conflict, never removed; berth recovers once it is gone', async () => {
    await env.writeApp('squat', `image: ${IMAGES.httpdV1}\nroutes: [{host: squat.test}]\nresources: {memory: 32m}`);
    const first = await env.waitReady('squat');
    const name = first.status.containers![0]!.name;
    await env.stop();
    await env.docker('rm', '-f', name);
    const squatter = await env.docker('create', '--name', name, '--label', `berth-faults.owner=${env.instance}`, IMAGES.httpdV1);
    await env.start();
    const s = await waitFor('squat: Stalled Conflict', async () => {
      const st = await env.status('squat');
      return condition(st, 'Stalled')?.reason === 'Conflict' ? st : undefined;
    }, 15_000, 50);
    console.log(`squatter: ${summary(s)}; ${condition(s, 'Stalled')!.message}`);
    expect(condition(s, 'Stalled')!.message).toContain(name);
    expect(condition(s, 'Ready')?.status).not.toBe('True');
    // The squatter is not berth's: not in the instance's containers, and untouched after a few resyncs.
    // (berth tries its create again at each resync: it fails with 409, creates nothing, and is how it notices the name is free again.)
    await checkInvariants(env, { apps: { ...APPS, squat: 0 }, allowCalls: ['createContainer'], label: 'squatter' });
    expect(await env.docker('inspect', '-f', '{{.Id}} {{.State.Status}}', name)).toBe(`${squatter} created`);
    await env.docker('rm', '-f', squatter);
    const t0 = Date.now();
    await env.waitReady('squat', { timeoutMs: 30_000 });
    console.log(`squatter removed by its owner: squat Ready ${Date.now() - t0} ms later`);
    await checkInvariants(env, { apps: { ...APPS, squat: 1 }, label: 'squatter gone' });
  });
  it('the instance network removed (containers force-disconnected first): recreated and reconnected (F8)', async () => {
    const before = await env.docker('network', 'inspect', '-f', '{{.Id}}', env.instance);
    const t0 = Date.now();
    // berth reconnects a disconnected container within milliseconds: disconnect all and remove at once, through the API, until it goes.
    await waitFor('the network removed', async () => {
      const net = env.engine.getNetwork(env.instance);
      const info = (await net.inspect()) as { Containers?: Record<string, unknown> };
      await Promise.all(Object.keys(info.Containers ?? {}).map((id) => net.disconnect({ Container: id, Force: true }).catch(() => undefined)));
      return net.remove().then(() => true, () => false);
    }, 10_000, 0);
    const ms = await waitFor('network recreated, every container reconnected, web serving', async () => {
      const id = await env.docker('network', 'inspect', '-f', '{{.Id}}', env.instance).catch(() => '');
      if (!id || id === before) return undefined;
      const cs = await env.containers('web');
      if (cs.length !== 2 || cs.some((x) => x.State !== 'running' || !(env.instance in (x.NetworkSettings?.Networks ?? {})))) return undefined;
      // Every running container of the instance (squat's too, when that scenario ran) is back on it.
      if ((await env.containers()).some((x) => x.State === 'running' && !(env.instance in (x.NetworkSettings?.Networks ?? {})))) return undefined;
      const r = await env.call('web.test', '/').catch(() => undefined);
      return r?.status === 200 ? Date.now() - t0 : undefined;
    }, 20_000, 100);
    console.log(`network removed: recreated, web reconnected and serving in ${ms} ms`);
    // (squat exists when the squatter scenario ran before this one)
    await checkInvariants(env, { apps: { ...APPS, squat: (await env.containers('squat')).length }, label: 'network removed' });
    // The sleeping app (its container was disconnected from the removed network too) wakes on the new one.
    const t1 = Date.now();
    const answers: string[] = [];
    const woke = await waitFor('nap wakes on the new network', async () => {
      const r: Reply = await env.call('nap.test', '/', { timeoutMs: 20_000 }).catch((e: unknown) => ({ status: 0, text: String(e), ms: 0, headers: {} }));
      answers.push(`${r.status} after ${Math.round(r.ms)} ms`);
      return r.status === 200 ? r : (await sleep(1000), undefined);
    }, 30_000, 0).catch(async (e: unknown) => {
      throw new Error(`${String(e)}; answers: ${answers.join(', ')}; nap: ${summary(await env.status('nap'))} ${JSON.stringify((await env.status('nap'))?.status.lastError)}\n${env.berth!.logs().split('\n').filter((l) => l.includes('"nap"')).slice(-15).join('\n')}`);
    });
    console.log(`nap woke ${Date.now() - t1} ms after the first request (answers: ${answers.join(', ')}; cold start: ${String(woke.headers['x-berth-cold-start'])})`);
    await env.waitAsleep('nap', { poke: 'nap.test' });
  });
});

describe('the image of a sleeping app removed (F7)', () => {
  let env: FaultEnv;

  beforeAll(async () => {
    env = await FaultEnv.create('fim');
    envs.push(env);
    await env.start();
  });

  it('a pulled image: the request gets a clear 503 + Retry-After with the reason in the status, no crash loop; serves again once the image is back', async () => {
    const tag = `berth-faults/gone-${env.instance}:1`;
    await env.buildImage(tag, 'gone v1\n');
    await env.writeApp('gone', `image: ${tag}\nroutes: [{host: gone.test}]\nidle: {after: 2s, wakeTimeout: 10s}\nresources: {memory: 32m}`);
    await env.waitReady('gone');
    await env.waitAsleep('gone', { poke: 'gone.test' });
    await env.docker('rmi', '-f', tag);
    // A resync later, before any request: berth has seen the image go. The status must say the
    // wake now needs the image first (it may fail: here no registry has it).
    await sleep(3000);
    const pre = await env.status('gone');
    console.log(`image removed, before any request: ${summary(pre)}: ${condition(pre, 'Ready')?.message}`);
    expect(condition(pre, 'ImageReady')?.status).toBe('False');
    expect(condition(pre, 'Ready')?.message).toMatch(/image.*gone/);
    const since = Date.now();
    const r = await env.call('gone.test', '/', { timeoutMs: 20_000 });
    const s = await env.status('gone');
    console.log(`image removed while sleeping: the request got ${r.status} after ${Math.round(r.ms)} ms (Retry-After ${String(r.headers['retry-after'])}): ${r.text.trim().slice(0, 200)}; status ${summary(s)}; lastError ${JSON.stringify(s?.status.lastError)}`);
    if (r.status === 200) {
      // berth started the stopped container (its image is still there by id): also fine.
      expect(r.text).toBe('gone v1\n');
    } else {
      expect(r.status).toBe(503);
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      // After the failed wake the status says why: not Ready, with the image as the reason.
      const st = await waitFor('not Ready, the image named as the reason', async () => {
        const x = await env.status('gone');
        return x && x.status.phase !== 'Waking' && condition(x, 'Ready')?.status !== 'True' && /Image|Pull/.test(JSON.stringify(x.status.conditions)) ? x : undefined;
      }, 10_000, 100).catch(async (e: unknown) => {
        throw new Error(`${String(e)}: ${summary(await env.status('gone'))}`);
      });
      console.log(`gone after the failed wake: ${summary(st)}`);
      // No crash loop: requests keep getting quick answers, and the container is not restarted over and over.
      for (let i = 0; i < 5; i++) {
        const again = await env.call('gone.test', '/', { timeoutMs: 15_000 });
        expect([503, 200]).toContain(again.status);
        await sleep(500);
      }
      const starts = (await env.events(since, Date.now())).filter((e) => e.action === 'start');
      expect(starts.length, 'start events while the image is missing').toBeLessThanOrEqual(1);
      expect(env.berth!.alive).toBe(true);
      // The image comes back (rmi -f deleted it: built again): the next request serves.
      await env.buildImage(tag, 'gone v1\n');
      const ok = await waitFor('gone serving again', async () => {
        const x = await env.call('gone.test', '/', { timeoutMs: 15_000 }).catch(() => undefined);
        return x?.status === 200 ? x : undefined;
      }, 90_000, 1000);
      expect(ok.text).toBe('gone v1\n');
    }
    await env.waitAsleep('gone', { poke: 'gone.test' });
    await checkInvariants(env, { apps: { gone: { running: 0, stopped: 1 } }, label: 'image removed (pulled app)' });
  });

  it('a built image: the next request rebuilds it and serves', async () => {
    const repo = await createTestRepo();
    repos.push(repo);
    const nonce = randomBytes(4).toString('hex');
    await repo.commit({
      busybox: { copy: '/bin/busybox', mode: 0o755 },
      'www/index.html': `built ${nonce}\n`,
      Dockerfile: ['FROM scratch', 'COPY busybox /bin/busybox', 'COPY www /www', 'CMD ["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"]', ''].join('\n'),
    });
    await env.writeApp('built', `build:\n  git: {url: "${repo.url}", branch: main}\nroutes: [{host: built.test}]\nidle: {after: 2s, wakeTimeout: 60s}\nresources: {memory: 32m}`);
    const ready = await env.waitReady('built', { timeoutMs: 60_000 });
    const tag = ready.status.image!.ref;
    await env.waitAsleep('built', { poke: 'built.test' });
    await env.docker('rmi', '-f', tag);
    const r = await env.call('built.test', '/', { timeoutMs: 60_000 });
    console.log(`built image removed while sleeping: the request got ${r.status} after ${Math.round(r.ms)} ms; status ${summary(await env.status('built'))}`);
    expect(r.status).toBe(200);
    expect(r.text).toBe(`built ${nonce}\n`);
    expect(await env.docker('image', 'inspect', '-f', '{{.Id}}', tag)).toMatch(/^sha256:/);
    await env.waitAsleep('built', { poke: 'built.test' });
    await checkInvariants(env, { apps: { gone: { running: 0, stopped: 1 }, built: { running: 0, stopped: 1 } }, label: 'image removed (built app)' });
  });
});
