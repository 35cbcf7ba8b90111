// F1, F2, F3 of the fault catalogue: berth SIGKILLs itself (BERTH_FAULT) at every step of a
// rolling update, in the middle of state/status writes, and during a build; a plain kill -9
// lands during a slow RUN step. After each, the files on disk still parse (checked before the
// restart can rewrite them), the restarted berth converges, and the invariants hold.
//
// Temp files: atomicWrite leaves its `.<file>.<hex>.tmp` behind when killed between the temp
// write and the rename — one for each file being written at that moment (berth writes files
// concurrently, so one kill left apps/.roll.yaml.….tmp and apps/.steady.yaml.….tmp together).
// Tolerated after a kill: one per target file (every reader ignores hidden files); berth sweeps
// leftovers older than a minute at start (F3: "at most one .tmp sibling") — tested on its own.
//
// BERTH_FAULTS_HEAVY=1 runs more write points and kills at random offsets during a burst.
import { describe, it, beforeAll, afterAll, expect } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFile, readdir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { sleep, waitFor } from '../helpers/berth-process.js';
import { IMAGES } from '../helpers/docker.js';
import { FaultEnv } from '../helpers/fault-env.js';
import { checkFiles, checkInvariants } from '../helpers/invariants.js';
import { createTestRepo, type TestRepo } from '../helpers/git.js';

const HEAVY = process.env.BERTH_FAULTS_HEAVY === '1';
const envs: FaultEnv[] = [];
const repos: TestRepo[] = [];

afterAll(async () => {
  for (const e of envs) await e.destroy();
  for (const r of repos) await r.cleanup();
});

async function newEnv(prefix: string): Promise<FaultEnv> {
  const env = await FaultEnv.create(prefix);
  envs.push(env);
  return env;
}

const rollSpec = (image: string, rev = '1') => `image: ${image}
routes: [{host: roll.test}]
secretEnv: [CANARY]
env: {REV: "${rev}"}
healthCheck: {path: /healthz}
resources: {memory: 32m}`;
const steadySpec = `image: ${IMAGES.httpdV1}\nroutes: [{host: steady.test}]\nresources: {memory: 32m}`;

/** The files on disk right after the kill: they must parse (at most one new temp file per folder). */
async function expectFilesIntactAfterKill(env: FaultEnv, what: string, ignoreTmp: string[] = []): Promise<string[]> {
  const { problems, tmpLeftovers } = await checkFiles(env, { tolerateTmp: true, ignoreTmp });
  expect(problems, `files right after the kill at ${what}`).toEqual([]);
  return tmpLeftovers;
}

async function containersNow(env: FaultEnv): Promise<string> {
  return (await env.containers()).map((c) => `${c.Labels['dev.berth.app']}:${c.Image.replace('berth-test/', '')}:${c.State}`).sort().join(' ');
}

describe('kill -9 at each deploy step of a rolling update (F2)', () => {
  const POINTS = ['deploy:after-create', 'deploy:after-start', 'deploy:during-health', 'deploy:before-promote', 'deploy:before-stop', 'deploy:after-stop', 'deploy:after-remove'];
  let env: FaultEnv;
  let image: string = IMAGES.httpdV1;
  /** Temp files left by the kills so far: each iteration judges only its own (the sweep has its own test below). */
  let earlier: string[] = [];

  beforeAll(async () => {
    env = await newEnv('fkd');
    await env.setCanary('roll');
    await env.start();
    await env.writeApp('roll', rollSpec(image));
    await env.writeApp('steady', steadySpec);
    await env.waitReady('roll');
    await env.waitReady('steady');
    // The canary is real: it reached the app's own environment (and only there).
    const [c] = await env.containers('roll');
    expect((await env.inspect(c!.Id)).Config.Env).toContain(`CANARY=${env.canary}`);
  });

  for (const point of POINTS) {
    it(`${point}: converges after the restart, one container per app, invariants hold`, async () => {
      const steadyBefore = (await env.containers('steady')).map((c) => c.Id);
      image = image === IMAGES.httpdV1 ? IMAGES.httpdV2 : IMAGES.httpdV1;
      await env.stop();
      await env.startWithFault(point);
      await env.writeApp('roll', rollSpec(image));
      await env.waitFaultKill(point);
      const leftovers = (await expectFilesIntactAfterKill(env, point, earlier)).filter((f) => !earlier.includes(f));
      const atKill = await containersNow(env);
      const t0 = Date.now();
      await env.start();
      await env.waitReady('roll', { image });
      console.log(`${point}: containers at the kill: ${atKill}; converged ${Date.now() - t0} ms after the restart${leftovers.length ? `; temp files: ${leftovers.join(' ')}` : ''}`);
      await checkInvariants(env, { apps: { roll: 1, steady: 1 }, tolerateTmp: true, ignoreTmp: earlier, label: point });
      earlier = [...earlier, ...leftovers];
      expect((await env.status('roll'))?.status.history?.at(-1)).toMatchObject({ image, result: 'Succeeded' });
      // The other app was never touched.
      expect((await env.containers('steady')).map((c) => c.Id)).toEqual(steadyBefore);
    });
  }
});

describe('kill -9 in the middle of state and status writes (F3)', () => {
  const NS = HEAVY ? [1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 25, 30, 40] : [1, 3, 6, 12, 24];

  for (const n of NS) {
    it(`write:before-rename@${n}: every file parses after the kill, the restarted berth converges`, async () => {
      const env = await newEnv(`fkw${n}`);
      await env.setCanary('roll');
      await env.writeApp('roll', rollSpec(IMAGES.httpdV1));
      await env.writeApp('steady', steadySpec);
      // Killed during start-up (n small) or during the rollout of an edit (n larger).
      const b = await env.startWithFault(`write:before-rename@${n}`);
      if (b) {
        // Edits until it dies: each rollout writes status files and the state.
        for (let i = 2; b.alive && i < 60; i++) {
          await sleep(500);
          if (b.alive) await env.writeApp('roll', rollSpec(i % 2 ? IMAGES.httpdV2 : IMAGES.httpdV1, String(i)));
        }
        await env.waitFaultKill('write:before-rename', 10_000);
      }
      const leftovers = await expectFilesIntactAfterKill(env, `write #${n}`);
      expect(leftovers.length, 'the killed write left its temp file (the fault point fired between write and rename)').toBeGreaterThanOrEqual(1);
      await env.start();
      await env.waitReady('roll');
      await env.waitReady('steady');
      console.log(`write:before-rename@${n}: killed ${b ? 'while running' : 'during start-up'}; temp file left: ${leftovers.join(' ')}`);
      await checkInvariants(env, { apps: { roll: 1, steady: 1 }, tolerateTmp: true, label: `write@${n}` });
      await env.stop();
    });
  }

  if (HEAVY) {
    it('a burst of edits with kill -9 at random moments, 10 rounds: files always parse, converges each time', async () => {
      const env = await newEnv('fkr');
      await env.setCanary('roll');
      await env.start();
      await env.writeApp('steady', steadySpec);
      let earlier: string[] = [];
      for (let round = 0; round < 10; round++) {
        for (let i = 0; i < 5; i++) await env.writeApp('roll', rollSpec(i % 2 ? IMAGES.httpdV2 : IMAGES.httpdV1, `${round}-${i}`));
        await sleep(Math.random() * 200);
        await env.kill9();
        const { problems, tmpLeftovers } = await checkFiles(env, { tolerateTmp: true, ignoreTmp: earlier });
        expect(problems, `round ${round}`).toEqual([]);
        const mine = tmpLeftovers.filter((f) => !earlier.includes(f));
        await env.start();
        await env.waitReady('roll', { image: IMAGES.httpdV1 });
        await checkInvariants(env, { apps: { roll: 1, steady: 1 }, tolerateTmp: true, ignoreTmp: earlier, quietMs: 0, label: `random kill ${round}` });
        earlier = [...earlier, ...mine];
      }
      await checkInvariants(env, { apps: { roll: 1, steady: 1 }, tolerateTmp: true, ignoreTmp: earlier, label: 'random kills' });
    });
  }

  it('temp files left by earlier kills are swept at the next start (once older than a minute)', async () => {
    const env = await newEnv('fkt');
    await env.writeApp('steady', steadySpec);
    // Two start-ups, each killed at its first write: two leftovers for the same file.
    for (let i = 0; i < 2; i++) {
      const b = await env.startWithFault('write:before-rename@1');
      if (b) await env.waitFaultKill('write:before-rename');
    }
    const left = (await checkFiles(env, { tolerateTmp: true })).tmpLeftovers;
    expect(left.length, 'leftovers of the two kills').toBeGreaterThanOrEqual(2);
    // berth spares temp files younger than a minute (a `berth secret set` may be writing one as it
    // starts): these are made to look two minutes old rather than waited for.
    const old = new Date(Date.now() - 120_000);
    for (const f of left) {
      const [root, ...rest] = f.split('/');
      await utimes(join(root === 'state' ? env.dirs.state : root === 'status' ? env.dirs.status : env.dirs.manifests, ...rest), old, old);
    }
    await env.start();
    await env.waitReady('steady');
    console.log(`temp files of two killed writes: ${left.join(' ')}; after a clean start: ${JSON.stringify((await checkFiles(env, { tolerateTmp: true })).tmpLeftovers)}`);
    await checkInvariants(env, { apps: { steady: 1 }, label: 'stale temp files swept' });
  });
});

describe('kill -9 during a build (F1)', () => {
  let env: FaultEnv;
  /** Temp files the kills left (judged per kill; the sweep is tested above). */
  let earlier: string[] = [];
  const filesAfterKill = async () => {
    const { problems, tmpLeftovers } = await checkFiles(env, { tolerateTmp: true, ignoreTmp: earlier });
    expect(problems).toEqual([]);
    return tmpLeftovers.filter((f) => !earlier.includes(f));
  };

  beforeAll(async () => {
    env = await newEnv('fkb');
    await env.start();
  });

  /** A busybox site built from a fresh file:// repository, with an optional slow RUN step. */
  async function repoWith(body: string, slowSeconds = 0): Promise<TestRepo> {
    const r = await createTestRepo();
    repos.push(r);
    await r.commit({
      busybox: { copy: '/bin/busybox', mode: 0o755 },
      'www/index.html': `${body}\n`,
      Dockerfile: ['FROM scratch', 'COPY busybox /bin/busybox', 'COPY www /www', ...(slowSeconds ? [`RUN ["/bin/busybox", "sleep", "${slowSeconds}"]`] : []), 'CMD ["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"]', ''].join('\n'),
    });
    return r;
  }

  const builtSpec = (name: string, repo: TestRepo) => `build:\n  git: {url: "${repo.url}", branch: main}\nroutes: [{host: ${name}.test}]\nresources: {memory: 32m}`;

  async function tagEvents(sinceMs: number): Promise<string[]> {
    const out = await env.docker('events', '--since', (sinceMs / 1000).toFixed(3), '--until', (Date.now() / 1000).toFixed(3),
      '--filter', `label=dev.berth.instance=${env.instance}`, '--filter', 'type=image', '--filter', 'event=tag', '--format', '{{index .Actor.Attributes "name"}}');
    return out.split('\n').filter(Boolean);
  }

  async function served(app: string): Promise<string> {
    const r = await env.call(`${app}.test`, '/').catch(() => undefined);
    return r?.status === 200 ? r.text.trim() : '';
  }

  async function expectNoBuildInFlight(): Promise<void> {
    const state = JSON.parse(await readFile(join(env.dirs.state, 'state.json'), 'utf8')) as { extra?: { builds?: unknown[] } };
    expect(state.extra?.builds ?? [], 'no build recorded in flight').toEqual([]);
    expect(await readdir(join(env.dirs.state, 'checkouts')).catch(() => []), 'no checkout left behind').toEqual([]);
    expect((await env.operator())?.status.buildQueue).toMatchObject({ running: [], queued: [] });
  }

  it('build:started — the interrupted build runs again once after the restart and goes live', async () => {
    const nonce = randomBytes(4).toString('hex');
    const repo = await repoWith(`first ${nonce}`);
    const since = Date.now();
    await env.stop();
    await env.startWithFault('build:started');
    await env.writeApp('first', builtSpec('first', repo));
    await env.waitFaultKill('build:started', 60_000);
    const mine = await filesAfterKill();
    await env.start();
    await waitFor('first serving', async () => (await served('first')) === `first ${nonce}`, 60_000, 100);
    await sleep(500);
    expect(await tagEvents(since), 'one image built').toHaveLength(1);
    await expectNoBuildInFlight();
    await checkInvariants(env, { apps: { first: 1 }, tolerateTmp: true, label: 'build:started' });
    earlier = [...earlier, ...mine];
  });

  it('a plain kill -9 during a slow RUN step — built once after the restart, the step container gone, nothing dangling', async () => {
    const nonce = randomBytes(4).toString('hex');
    const repo = await repoWith(`slow ${nonce}`, 4);
    const since = Date.now();
    await env.writeApp('slow', builtSpec('slow', repo));
    const logOf = async () => {
      const dir = join(env.dirs.state, 'builds', 'slow');
      const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.log')).sort();
      return names.length ? readFile(join(dir, names.at(-1)!), 'utf8') : '';
    };
    const step = await waitFor('the slow RUN step', async () => /Running in ([0-9a-f]{12})/.exec(await logOf())?.[1], 60_000, 50);
    await sleep(500 + Math.random() * 1500);
    await env.kill9();
    const mine = await filesAfterKill();
    await env.start();
    await waitFor('slow serving', async () => (await served('slow')) === `slow ${nonce}`, 90_000, 100);
    await sleep(1000);
    expect(await tagEvents(since), 'the image was tagged exactly once').toEqual([expect.stringMatching(/^berth\/slow:[0-9a-f]{12}$/)]);
    expect(await env.docker('ps', '-aq', '--filter', `id=${step}`), 'the killed build\'s RUN container is gone').toBe('');
    await expectNoBuildInFlight();
    await checkInvariants(env, { apps: { first: 1, slow: 1 }, tolerateTmp: true, ignoreTmp: earlier, label: 'kill during RUN' });
    earlier = [...earlier, ...mine];
  });
});
