// F11, F12, F13 of the fault catalogue, under a running berth: the ways editors write files
// (temp + rename, vim's backup rename, in-place writes in several chunks, delete then recreate)
// are each seen as one edit — no torn version deployed, the app never torn down, the requests
// never fail; the hostile manifest corpus creates nothing in Docker and leaves other apps alone;
// two apps claiming one host: the first keeps it (across a restart too), the second reports
// RouteConflict and takes over when the first is deleted.
import { describe, it, beforeAll, afterAll, expect } from 'vitest';
import { open, readFile, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sleep, waitFor } from '../helpers/berth-process.js';
import { IMAGES } from '../helpers/docker.js';
import { FaultEnv, condition } from '../helpers/fault-env.js';
import { appYaml } from '../helpers/berth-process.js';
import { checkInvariants, summary } from '../helpers/invariants.js';

const HOSTILE = new URL('../fixtures/hostile/', import.meta.url).pathname;
const envs: FaultEnv[] = [];

afterAll(async () => {
  for (const e of envs) await e.destroy();
});

describe('the write patterns of editors under a running berth (F11)', () => {
  let env: FaultEnv;
  let rev = 1;
  const file = () => join(env.dirs.manifests, 'ed.yaml');
  // The line that changes is the last one: a file cut before it is still a valid App (without env),
  // so acting on a torn file would deploy a version nobody wrote.
  const body = (n: number) => appYaml('ed', `image: ${IMAGES.httpdV1}\nroutes: [{host: ed.test}]\nresources: {memory: 32m}\nenv: {REV: "${n}"}`);

  beforeAll(async () => {
    env = await FaultEnv.create('fed');
    envs.push(env);
    await env.start();
    await writeFile(file(), body(rev));
    await env.waitReady('ed');
  });

  /**
   * One save in the editor's way: while it happens a client asks ed.test every 20 ms. Then:
   * exactly one new container (no torn or intermediate version), the old one retired, no request
   * failed, the app never deleted, and the new REV running.
   */
  async function save(pattern: string, write: (text: string) => Promise<void>): Promise<void> {
    rev++;
    const since = Date.now();
    let polling = true;
    const failures: string[] = [];
    let requests = 0;
    const poller = (async () => {
      while (polling) {
        const r = await env.call('ed.test', '/', { timeoutMs: 5000 }).catch((e: unknown) => ({ status: 0, text: String(e) }));
        requests++;
        if (r.status !== 200) failures.push(`${r.status} ${r.text.slice(0, 60)}`);
        await sleep(20);
      }
    })();
    await write(body(rev));
    await waitFor(`ed running REV=${rev}`, async () => {
      const cs = await env.containers('ed');
      if (cs.length !== 1 || cs[0]!.State !== 'running') return false;
      return (await env.inspect(cs[0]!.Id)).Config.Env.includes(`REV=${rev}`);
    }, 20_000, 50).catch(async (e: unknown) => {
      throw new Error(`${String(e)}; ed: ${summary(await env.status('ed'))}`);
    });
    await sleep(1500);
    polling = false;
    await poller;
    const events = await env.events(since, Date.now(), ['label=dev.berth.app=ed']);
    const creates = events.filter((e) => e.action === 'create');
    const destroys = events.filter((e) => e.action === 'destroy');
    const s = await env.status('ed');
    console.log(`${pattern}: ${creates.length} create(s), ${destroys.length} destroy(s), ${requests} requests, ${failures.length} failed; generation ${s?.metadata.generation}; ${summary(s)}`);
    expect(failures, `${pattern}: requests that failed during the save`).toEqual([]);
    expect(creates.length, `${pattern}: containers created for one save (a torn or deleted version deployed?)`).toBe(1);
    expect(destroys.length, `${pattern}: containers removed`).toBe(1);
    expect(s?.status.phase).toBe('Ready');
    expect(s?.status.events?.some((e) => e.reason === 'Deleting' && Date.parse(e.at) >= since - 1000), `${pattern}: the app was being deleted`).toBe(false);
    await checkInvariants(env, { apps: { ed: 1 }, label: pattern });
  }

  it('temp file + rename', async () => {
    await save('temp + rename', async (text) => {
      const tmp = join(env.dirs.manifests, '.ed.yaml.swp-tmp');
      await writeFile(tmp, text);
      await rename(tmp, file());
    });
  });

  it("vim's backup rename (rename to ed.yaml~, write ed.yaml, delete the backup, plus its 4913 probe)", async () => {
    await save('vim backup rename', async (text) => {
      const probe = join(env.dirs.manifests, '4913');
      await writeFile(probe, '');
      await unlink(probe);
      await rename(file(), `${file()}~`);
      const fh = await open(file(), 'w');
      await fh.writeFile(text);
      await fh.sync();
      await fh.close();
      await unlink(`${file()}~`);
    });
  });

  it('in-place writes in chunks 10 ms apart (truncate, then the file grows in four writes)', async () => {
    await save('in-place chunks', async (text) => {
      const fh = await open(file(), 'w');
      const size = Math.ceil(text.length / 4);
      for (let i = 0; i < text.length; i += size) {
        await fh.write(text.slice(i, i + size));
        await sleep(10);
      }
      await fh.close();
    });
  });

  it('a slow in-place writer (chunks 60 ms apart): whatever it read meanwhile, berth ends on the complete file', async () => {
    rev++;
    const since = Date.now();
    const text = body(rev);
    const fh = await open(file(), 'w');
    const size = Math.ceil(text.length / 4);
    for (let i = 0; i < text.length; i += size) {
      await fh.write(text.slice(i, i + size));
      await sleep(60);
    }
    await fh.close();
    const ok = await waitFor(`ed running REV=${rev}`, async () => {
      const cs = await env.containers('ed');
      return cs.length === 1 && cs[0]!.State === 'running' && (await env.inspect(cs[0]!.Id)).Config.Env.includes(`REV=${rev}`);
    }, 15_000, 100).then(() => true, () => false);
    const s = await env.status('ed');
    const creates = (await env.events(since, Date.now(), ['label=dev.berth.app=ed', 'event=create'])).length;
    console.log(`slow in-place writer: ${ok ? 'applied' : 'NOT applied'} within 15 s; ${creates} create(s); ${summary(s)}`);
    expect(ok, 'the complete file is applied once the writer is done').toBe(true);
    expect(s?.status.conditions.some((c) => c.type === 'Stalled'), 'no stale problem once the file is complete').toBe(false);
    await checkInvariants(env, { apps: { ed: 1 }, label: 'slow in-place writer' });
  });

  it('delete, then recreate 50 ms later', async () => {
    await save('delete + recreate (50 ms)', async (text) => {
      await unlink(file());
      await sleep(50);
      await writeFile(file(), text);
    });
  });

  it('delete, then recreate 150 ms later (F11: within 200 ms)', async () => {
    await save('delete + recreate (150 ms)', async (text) => {
      await unlink(file());
      await sleep(150);
      await writeFile(file(), text);
    });
  });
});

describe('the hostile manifest corpus dropped into a running berth (F13)', () => {
  it('creates nothing in Docker for it, reports each file, and leaves the running app alone', async () => {
    const env = await FaultEnv.create('fho');
    envs.push(env);
    await env.start();
    await env.writeApp('keep', `image: ${IMAGES.httpdV1}\nroutes: [{host: keep.test}]\nresources: {memory: 32m}`);
    const keep = await env.waitReady('keep');
    const [keepC] = await env.containers('keep');
    const since = Date.now();
    const files = (await readdir(HOSTILE)).filter((f) => f.endsWith('.yaml'));
    // The corpus names nginx; a local image instead, so that the one valid object in it ("fine",
    // beside an invalid document in second-doc-invalid.yaml) runs the same with or without a registry.
    await Promise.all(files.map(async (f) => writeFile(join(env.dirs.manifests, `hostile-${f}`), (await readFile(join(HOSTILE, f))).toString('latin1').replace(/\bimage: nginx\b/g, `image: ${IMAGES.httpdV1}`), 'latin1')));
    // Generated here: a 5 MiB file and 10 000-deep nesting.
    await writeFile(join(env.dirs.manifests, 'hostile-huge.yaml'), `${appYaml('huge', `image: ${IMAGES.httpdV1}`)}#${'x'.repeat(5 << 20)}\n`);
    await writeFile(join(env.dirs.manifests, 'hostile-deep.yaml'), `a: ${'['.repeat(10_000)}${']'.repeat(10_000)}\n`);
    const op = await waitFor('the corpus reported in operator.yaml', async () => {
      const o = await env.operator();
      return (o?.status.manifests?.problems?.length ?? 0) >= 15 && o?.status.manifests?.files === files.length + 3 ? o : undefined;
    }, 20_000, 100);
    await sleep(3000);
    const problems = op.status.manifests!.problems!;
    console.log(`hostile corpus: ${files.length + 2} files, ${problems.length} problems in operator.yaml; apps with a status: ${(await readdir(join(env.dirs.status, 'apps'))).join(' ')}`);
    expect(problems.join('\n')).toMatch(/^hostile-huge\.yaml:1:1: file is \d+ bytes/m);
    expect(problems.join('\n')).toMatch(/^hostile-alias-bomb\.yaml:1:1: too many alias expansions/m);
    expect(env.berth!.alive).toBe(true);
    // Nothing in Docker for the hostile objects: the only new container is "fine"'s; keep untouched.
    await env.waitReady('fine');
    const created = (await env.events(since, Date.now(), ['event=create'])).map((e) => e.app);
    expect(created, 'containers created for the corpus').toEqual(['fine']);
    expect((await env.containers('keep')).map((c) => c.Id)).toEqual([keepC!.Id]);
    expect((await env.status('keep'))?.metadata.generation).toBe(keep.metadata.generation);
    expect((await env.call('keep.test', '/')).status).toBe(200);
    console.log(`fine (the valid document of second-doc-invalid.yaml): ${summary(await env.status('fine'))}`);
    await checkInvariants(env, { apps: { keep: 1, fine: 1 }, label: 'hostile corpus' });
    // Gone again: every status of the corpus goes, keep stays.
    for (const f of await readdir(env.dirs.manifests)) if (f.startsWith('hostile-')) await unlink(join(env.dirs.manifests, f));
    await waitFor('statuses of the corpus removed', async () => (await readdir(join(env.dirs.status, 'apps'))).join(' ') === 'keep.yaml', 20_000, 100);
    await checkInvariants(env, { apps: { keep: 1 }, label: 'hostile corpus removed' });
  });
});

describe('two apps claim one host (F12)', () => {
  it('the first keeps it (across a restart), the second reports RouteConflict and takes over when the first is deleted', async () => {
    const env = await FaultEnv.create('fdu');
    envs.push(env);
    await env.start();
    await env.writeApp('first', `image: ${IMAGES.httpdV1}\nroutes: [{host: dup.test}]\nresources: {memory: 32m}`);
    await env.waitReady('first');
    await sleep(1100); // a later creation time, to the second
    await env.writeApp('second', `image: ${IMAGES.httpdV2}\nroutes: [{host: dup.test}]\nresources: {memory: 32m}`);
    const conflict = async () => waitFor('second: RouteConflict', async () => {
      const s = await env.status('second');
      return JSON.stringify(s?.status.conditions ?? []).includes('RouteConflict') ? s : undefined;
    }, 15_000, 100);
    const s2 = await conflict();
    console.log(`second: ${summary(s2)}; ${s2.status.conditions.find((c) => c.reason === 'RouteConflict')?.message}`);
    expect(condition(s2, 'Ready')?.status).not.toBe('True');
    expect((await env.call('dup.test', '/')).text).toBe('hello v1\n');
    const apps = { first: 1, second: (await env.containers('second')).length };
    await checkInvariants(env, { apps, label: 'duplicate host' });

    // Across a restart: the same winner.
    await env.restart();
    await env.waitReady('first');
    await conflict();
    await sleep(2000);
    expect((await env.call('dup.test', '/')).text).toBe('hello v1\n');
    await checkInvariants(env, { apps, label: 'duplicate host, after a restart' });

    // The first goes: the second takes the host.
    const t0 = Date.now();
    await unlink(join(env.dirs.manifests, 'first.yaml'));
    await env.waitReady('second');
    await waitFor('dup.test served by second', async () => (await env.call('dup.test', '/')).text === 'hello v2\n', 15_000, 100);
    console.log(`first deleted: second serves dup.test ${Date.now() - t0} ms later`);
    expect(JSON.stringify((await env.status('second'))?.status.conditions)).not.toContain('RouteConflict');
    await checkInvariants(env, { apps: { second: 1 }, label: 'duplicate host, first deleted' });
  });
});
