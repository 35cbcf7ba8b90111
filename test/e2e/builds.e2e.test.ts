// Issue 5 end to end: git push → live. Local bare repositories over file://, the built CLI
// against the shared Docker engine, webhooks signed with HMAC over plain HTTP. Each test runs
// its own berth (own instance label, folders, ports): the rollback test alone first (it times a
// deploy), then the others side by side.
//
// Builds are counted two ways: `docker events` tag events of images carrying the instance's
// label (one per *completed* build; a rollback re-tags nothing), and the build logs under
// <state>/builds/<app>/ (one per build *started*, with its start time on the first line and its
// end as the file's mtime: used to prove no two builds overlapped). Only objects carrying a
// test's instance label are ever removed.
import { describe, it, afterAll, type ExpectStatic } from 'vitest';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import { readFile, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { BerthProcess, berthCli, makeDirs, readYaml, removeDirs, sleep, waitFor, type BerthDirs } from '../helpers/berth-process.js';
import { IMAGES, cleanupInstance, docker, testInstance } from '../helpers/docker.js';
import { createTestRepo, git, type TestRepo } from '../helpers/git.js';
import { hmacHex, pushBody, signedHeaders as signed, type Forge } from '../helpers/forge-push.js';
import { expectValidStatusFile } from '../helpers/status-schema.js';
import type { AppStatusFile, Condition, GitRepositoryStatusFile, OperatorStatusFile } from '../../src/api/types.generated.js';

const SECRET = `e2e-${randomBytes(8).toString('hex')}`;
/** berth retry goes through the admin API, whose mutating endpoints need a token even on loopback. */
const ADMIN_TOKEN = randomBytes(16).toString('hex');

interface Env {
  instance: string;
  dirs: BerthDirs;
  berth: BerthProcess | undefined;
}

const envs: Env[] = [];
const repos: TestRepo[] = [];

afterAll(async () => {
  await Promise.all(envs.map(async (env) => void (await env.berth?.stop())));
  for (const env of envs) {
    await cleanupInstance(env.instance);
    await removeDirs(env.dirs);
  }
  await Promise.all(repos.map((r) => r.cleanup()));
});

/** A berth of its own (its own instance, folders and ports). */
async function startEnv(prefix: string): Promise<Env> {
  const env: Env = { instance: testInstance(prefix), dirs: await makeDirs(`berth-${prefix}-`), berth: undefined };
  envs.push(env);
  await startBerth(env);
  return env;
}

async function startBerth(env: Env): Promise<BerthProcess> {
  env.berth = await BerthProcess.start(env.dirs, { instance: env.instance, env: { BERTH_WEBHOOK_SECRET: SECRET, BERTH_ADMIN_TOKEN: ADMIN_TOKEN } });
  return env.berth;
}

async function newRepo(): Promise<TestRepo> {
  const r = await createTestRepo();
  repos.push(r);
  return r;
}

/** A FROM-scratch busybox httpd serving `body` at / — `extra` Dockerfile lines run after the page is copied (so they are never cached across revisions). */
function site(body: string, extra: string[] = []): Record<string, string | { copy: string; mode: number }> {
  return {
    busybox: { copy: '/bin/busybox', mode: 0o755 },
    'www/index.html': `${body}\n`,
    Dockerfile: ['FROM scratch', 'COPY busybox /bin/busybox', 'COPY www /www', ...extra, 'CMD ["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"]', ''].join('\n'),
  };
}

/** Commits `files` in the work tree without pushing; returns the commit id. */
async function commitLocally(repo: TestRepo, files: Record<string, string>): Promise<string> {
  for (const [path, content] of Object.entries(files)) await writeFile(join(repo.work, path), content);
  await git(repo.work, 'add', '-A');
  await git(repo.work, 'commit', '-q', '-m', 'local commit');
  return git(repo.work, 'rev-parse', 'HEAD');
}

/** A slow build step (the build slot is held for ≥ `seconds`). */
const slowStep = (seconds: number) => [`RUN ["/bin/busybox", "sleep", "${seconds}"]`];

function appYaml(name: string, spec: string): string {
  return `apiVersion: berth.dev/v1alpha1\nkind: App\nmetadata: {name: ${name}}\nspec:\n${spec.trim().split('\n').map((l) => `  ${l}`).join('\n')}\n`;
}

/** A built App following `repo`'s main branch, routed at <name>.test. */
function builtApp(name: string, repo: TestRepo): string {
  return appYaml(name, `build:\n  git: {url: "${repo.url}", branch: main}\nroutes: [{host: ${name}.test}]`);
}

async function writeManifest(env: Env, file: string, body: string): Promise<void> {
  const tmp = join(env.dirs.manifests, `.${file}.tmp`);
  await writeFile(tmp, body);
  await rename(tmp, join(env.dirs.manifests, file));
}

const statusOf = (env: Env, app: string) => readYaml<AppStatusFile>(join(env.dirs.status, 'apps', `${app}.yaml`));
const operatorOf = (env: Env) => readYaml<OperatorStatusFile>(join(env.dirs.status, 'operator.yaml'));
const condition = (s: AppStatusFile | undefined, type: string): Condition | undefined => s?.status.conditions.find((c) => c.type === type);
const revisionFile = (env: Env, app: string) => readYaml<{ kind: string; spec: { commit: string; source: string; delivery?: string } }>(join(env.dirs.manifests, '_webhook', `${app}.revision.yaml`));

const noKeepAlive = new Agent({ keepAlive: false, maxSockets: Infinity });

interface Reply {
  status: number;
  text: string;
  /** Time to the response head (ms). */
  firstByteMs: number;
}

/** One request to berth's public listener. */
function call(env: Env, opts: { host: string; path?: string; method?: string; headers?: Record<string, string>; body?: Buffer; timeoutMs?: number }): Promise<Reply> {
  const url = new URL(env.berth!.httpUrl);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request(
      { host: url.hostname, port: url.port, path: opts.path ?? '/', method: opts.method ?? 'GET', agent: noKeepAlive, headers: { host: opts.host, ...opts.headers } },
      (res) => {
        answered = true;
        const firstByteMs = performance.now() - t0;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString(), firstByteMs }));
        res.on('error', reject);
      },
    );
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error('no answer in time')));
    // A server refusing a large body answers and closes before reading it all (EPIPE/ECONNRESET
    // on our side), as curl also sees: the answer, if one came, is what counts.
    req.on('error', (e) => (answered ? undefined : setTimeout(() => reject(e), 300)));
    req.end(opts.body);
  });
}

/** What the app's route serves now ('' when it does not answer 200). */
async function served(env: Env, app: string): Promise<string> {
  try {
    const r = await call(env, { host: `${app}.test`, timeoutMs: 3000 });
    return r.status === 200 ? r.text.trim() : '';
  } catch {
    return '';
  }
}

const waitServing = (env: Env, app: string, body: string, timeoutMs: number) =>
  waitFor(`${app} serving ${body}`, async () => (await served(env, app)) === body, timeoutMs, 50);

const hmac = (body: Buffer, key = SECRET) => hmacHex(body, key);
const signedHeaders = (forge: Forge, body: Buffer, delivery?: string) => signed(forge, body, SECRET, delivery);

async function webhook(env: Env, headers: Record<string, string>, body: Buffer): Promise<{ status: number; json: { outcome?: string; reason?: string } }> {
  const r = await call(env, { host: 'forge.example', path: '/_berth/webhook', method: 'POST', headers: { ...headers, 'content-length': String(body.length) }, body });
  let json: { outcome?: string; reason?: string } = {};
  try {
    json = JSON.parse(r.text) as typeof json;
  } catch {
    // a non-JSON answer is asserted on by the caller through `status`
  }
  return { status: r.status, json };
}

/** A signed push for `repo`'s branch from `forge` (a fresh delivery id unless given). */
async function push(env: Env, forge: Forge, repo: TestRepo, after: string, opts: { branch?: string; delivery?: string } = {}) {
  const body = pushBody(forge, repo, opts.branch ?? 'main', after);
  return webhook(env, signedHeaders(forge, body, opts.delivery), body);
}

const nowSeconds = () => Date.now() / 1000;

/** Images tagged by builds of this instance (one tag event per completed build) between two times. */
async function tagEvents(env: Env, since: number, until = nowSeconds()): Promise<string[]> {
  const wait = until - nowSeconds();
  if (wait > 0) await sleep(wait * 1000 + 50);
  const out = await docker(
    'events', '--since', since.toFixed(3), '--until', until.toFixed(3),
    '--filter', `label=dev.berth.instance=${env.instance}`, '--filter', 'type=image', '--filter', 'event=tag',
    '--format', '{{index .Actor.Attributes "name"}}',
  );
  return out.split('\n').filter(Boolean);
}

interface BuildLog {
  file: string;
  revision: string;
  startedMs: number;
  endedMs: number;
  succeeded: boolean;
  text: string;
}

/** The build logs berth kept for an app, oldest first. */
async function buildLogs(env: Env, app: string): Promise<BuildLog[]> {
  const dir = join(env.dirs.state, 'builds', app);
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.log')).sort();
  return Promise.all(names.map(async (n) => {
    const file = join(dir, n);
    const [text, st] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
    const started = /started (\S+)$/m.exec(text)?.[1];
    return {
      file, text,
      revision: /-([0-9a-f]{12})\.log$/.exec(n)?.[1] ?? '',
      startedMs: started ? Date.parse(started) : NaN,
      endedMs: st.mtimeMs,
      succeeded: /^# succeeded in /m.test(text),
    };
  }));
}

async function appContainers(env: Env, app?: string): Promise<string[]> {
  const filters = ['--filter', `label=dev.berth.instance=${env.instance}`, ...(app ? ['--filter', `label=dev.berth.app=${app}`] : [])];
  return (await docker('ps', '-aq', ...filters)).split('\n').filter(Boolean);
}

async function waitReadyRevision(env: Env, app: string, commit: string, timeoutMs: number): Promise<AppStatusFile> {
  return waitFor(`${app} Ready at ${commit.slice(0, 12)}`, async () => {
    const s = await statusOf(env, app);
    return s?.status.phase === 'Ready' && s.status.revision === commit && condition(s, 'Ready')?.status === 'True' ? s : undefined;
  }, timeoutMs, 50);
}

async function expectNoBuildsSince(expect: ExpectStatic, env: Env, since: number, why: string): Promise<void> {
  expect(await tagEvents(env, since), why).toEqual([]);
}

// Alone, before the others: it times a rollback, and six berths building side by side on a
// small machine would time the machine instead.
describe('a failing build, rollback and retry', () => {
  it('a failing build keeps the last good revision serving and is not retried in a loop; rollback reuses a kept image in seconds; retry re-fails once', async ({ expect }) => {
    const env = await startEnv('e2ef');
    const files = ['--manifests', env.dirs.manifests, '--status', env.dirs.status, '--state', env.dirs.state];
    const repo = await newRepo();
    const c1 = await repo.commit(site('good-1'));
    await writeManifest(env, 'roll.yaml', builtApp('roll', repo));
    await waitServing(env, 'roll', 'good-1', 45_000);
    await waitReadyRevision(env, 'roll', c1, 5000);
    const c2 = await repo.commit(site('good-2'));
    expect((await push(env, 'github', repo, c2)).status).toBe(202);
    await waitServing(env, 'roll', 'good-2', 30_000);
    await waitReadyRevision(env, 'roll', c2, 5000);

    // berth rollback: back to good-1 from the kept image, no build.
    const beforeRollback = nowSeconds();
    const t0 = performance.now();
    const rb = await berthCli(['rollback', 'roll', ...files]);
    expect(rb.code, rb.stderr).toBe(0);
    await waitServing(env, 'roll', 'good-1', 20_000);
    const rollbackMs = performance.now() - t0;
    await waitReadyRevision(env, 'roll', c1, 5000);
    expect(rollbackMs, 'rollback in seconds').toBeLessThan(10_000);
    expect((await revisionFile(env, 'roll'))?.spec).toMatchObject({ commit: c1, source: 'rollback' });
    await expectNoBuildsSince(expect, env, beforeRollback, 'rollback builds nothing');
    expect((await buildLogs(env, 'roll')).length).toBe(2);
    const history = await berthCli(['history', 'roll', '--json', ...files]);
    expect((JSON.parse(history.stdout) as { revision?: string; result: string }[]).filter((h) => h.result === 'Succeeded').map((h) => h.revision)).toEqual([c1, c2, c1]);

    // A commit whose build fails: good-1 keeps serving, Ready=True, Degraded, BuildFailed with the log tail.
    const c3 = await repo.commit(site('bad-3', ['RUN ["/bin/busybox", "sh", "-c", "echo the-build-breaks-here; exit 3"]']));
    expect((await push(env, 'github', repo, c3)).status).toBe(202);
    const failed = await waitFor('BuildFailed', async () => {
      const s = await statusOf(env, 'roll');
      return condition(s, 'Stalled')?.reason === 'BuildFailed' ? s : undefined;
    }, 30_000, 50);
    expect(failed.status.phase).toBe('Degraded');
    expect(condition(failed, 'Ready')).toMatchObject({ status: 'True' });
    expect(condition(failed, 'ImageReady')).toMatchObject({ status: 'False', reason: 'BuildFailed' });
    expect(condition(failed, 'Stalled')?.message).toContain('the-build-breaks-here');
    expectValidStatusFile(failed);
    expect(await served(env, 'roll')).toBe('good-1');
    // The running revision is still good-1's commit (status.revision is "the commit running").
    const failedRevision = failed.status.revision;

    const attempts = async () => (await buildLogs(env, 'roll')).filter((l) => l.revision === c3.slice(0, 12));
    await sleep(8000);
    expect((await attempts()).length, 'a deterministic failure is not retried on its own').toBe(1);
    expect((await attempts())[0]!.succeeded).toBe(false);
    expect(await served(env, 'roll')).toBe('good-1');

    // berth retry: one more attempt, which fails the same way, once.
    const admin = env.berth!.adminUrl.replace('http://', '');
    const retry = await berthCli(['retry', 'roll', '--admin', admin], { env: { BERTH_ADMIN_TOKEN: ADMIN_TOKEN } });
    expect(retry.code, retry.stderr).toBe(0);
    await waitFor('the retried build', async () => (await attempts()).length === 2, 30_000, 100);
    await waitFor('BuildFailed again', async () => condition(await statusOf(env, 'roll'), 'Stalled')?.reason === 'BuildFailed', 15_000, 100);
    await sleep(6000);
    expect((await attempts()).length, 'retry fails once, no loop').toBe(2);
    const after = await statusOf(env, 'roll');
    expect(after?.status.phase).toBe('Degraded');
    expect(condition(after, 'Ready')?.status).toBe('True');
    expect(await served(env, 'roll')).toBe('good-1');

    // Out of the failure: rollback --to good-2 (kept image), no build, Ready again.
    const beforeSecond = nowSeconds();
    const t1 = performance.now();
    const rb2 = await berthCli(['rollback', 'roll', '--to', c2.slice(0, 12), ...files]);
    expect(rb2.code, rb2.stderr).toBe(0);
    await waitServing(env, 'roll', 'good-2', 20_000);
    const rollback2Ms = performance.now() - t1;
    await waitReadyRevision(env, 'roll', c2, 5000);
    await expectNoBuildsSince(expect, env, beforeSecond, 'rollback --to builds nothing');
    console.log(`[builds.e2e] rollback (kept image, no build): ${Math.round(rollbackMs)} ms; out of BuildFailed: ${Math.round(rollback2Ms)} ms`);
    expect(failedRevision, 'status.revision while BuildFailed names the commit running, not the one that failed').toBe(c1);
  }, 180_000);
});

describe.concurrent('git push → live (issue 5)', () => {
  it('a signed push goes live; forged, oversized, other-branch, replayed and older deliveries change nothing; Gitea and GitLab accepted', async ({ expect }) => {
    const env = await startEnv('e2eb');
    const repo = await newRepo();
    const c1 = await repo.commit(site('rev1'));
    await writeManifest(env, 'web.yaml', builtApp('web', repo));
    await waitServing(env, 'web', 'rev1', 45_000);
    const first = await waitReadyRevision(env, 'web', c1, 5000);
    expectValidStatusFile(first);
    expect((await revisionFile(env, 'web'))?.spec).toMatchObject({ commit: c1, source: 'initial' });

    // Push rev2 and tell berth: 202, live within 30 s, and the revision file says so.
    const c2 = await repo.commit(site('rev2'));
    const pushed = nowSeconds();
    const t0 = performance.now();
    const delivery2 = randomUUID();
    const accepted = await push(env, 'github', repo, c2, { delivery: delivery2 });
    expect(accepted.status).toBe(202);
    await waitServing(env, 'web', 'rev2', 30_000);
    const pushToLiveMs = performance.now() - t0;
    expect(pushToLiveMs).toBeLessThan(30_000);
    const s2 = await waitReadyRevision(env, 'web', c2, 5000);
    expect(s2.status.image?.ref).toBe(`berth/web:${c2.slice(0, 12)}`);
    expect((await revisionFile(env, 'web'))?.spec).toMatchObject({ commit: c2, source: 'webhook', delivery: delivery2 });
    expect((await revisionFile(env, 'web'))?.kind).toBe('AppRevision');
    // The build counter itself: exactly this build was seen.
    expect(await tagEvents(env, pushed)).toEqual([`berth/web:${c2.slice(0, 12)}`]);

    // The branch moves on (rev3), but nothing below may make berth notice.
    const c3 = await repo.commit(site('rev3'));
    const quiet = nowSeconds();
    const body = pushBody('github', repo, 'main', c3);
    const good = signedHeaders('github', body);
    const { 'x-hub-signature-256': _sig, ...unsigned } = good;
    const sha1 = createHmac('sha1', SECRET).update(body).digest('hex');
    // One byte of the commit id changed: still valid JSON, no longer what was signed.
    const altered = Buffer.from(body);
    const at = altered.indexOf(c3);
    altered[at] = altered[at] === 0x30 ? 0x31 : 0x30;
    const forged: [string, Record<string, string>, Buffer][] = [
      ['bad signature', { ...good, 'x-hub-signature-256': `sha256=${hmac(body, 'not-the-secret')}` }, body],
      ['missing signature', unsigned, body],
      ['SHA-1 only', { ...unsigned, 'x-hub-signature': `sha1=${sha1}` }, body],
      ['truncated signature', { ...good, 'x-hub-signature-256': good['x-hub-signature-256']!.slice(0, 40) }, body],
      ['body altered by one byte', good, altered],
      ['Gitea with a bad signature', { ...signedHeaders('gitea', body), 'x-gitea-signature': hmac(body, 'wrong') }, body],
      ['GitLab with a bad token', { ...signedHeaders('gitlab', pushBody('gitlab', repo, 'main', c3)), 'x-gitlab-token': 'wrong' }, pushBody('gitlab', repo, 'main', c3)],
    ];
    for (const [why, headers, b] of forged) {
      const r = await webhook(env, headers, b);
      expect(r.status, why).toBe(401);
      expect(r.json.outcome, why).toBe('rejected');
    }
    const big = pushBody('github', repo, 'main', c3, 2 << 20);
    expect((await webhook(env, signedHeaders('github', big), big)).status, '2 MiB body').toBe(413);
    await repo.commit(site('on another branch'), { branch: 'feature' });
    const other = await push(env, 'github', repo, c3, { branch: 'feature' });
    expect(other.status, 'another branch').toBe(200);
    expect(other.json).toMatchObject({ outcome: 'ignored' });
    await git(repo.work, 'checkout', '-q', 'main');
    // status/operator.yaml keeps the last 20 deliveries with their outcome and reason.
    const op = await operatorOf(env);
    expectValidStatusFile(op);
    const recent = (op?.status.webhook?.deliveries ?? []).slice(-(forged.length + 2));
    expect(recent.map((d) => `${d.status} ${d.outcome}`)).toEqual([...forged.map(() => '401 rejected'), '413 rejected', '200 ignored']);
    expect(recent.at(-1)?.reason).toMatch(/feature/);
    // GitHub's redelivery of the accepted push, ten times.
    for (let i = 0; i < 10; i++) {
      const r = await push(env, 'github', repo, c2, { delivery: delivery2 });
      expect(r.status, `replay ${i}`).toBe(200);
      expect(r.json.reason).toMatch(/replay/);
    }
    await sleep(3000);
    await expectNoBuildsSince(expect, env, quiet, 'no build from rejected, ignored or replayed deliveries');
    expect(await served(env, 'web')).toBe('rev2');
    expect((await revisionFile(env, 'web'))?.spec.commit).toBe(c2);

    // Gitea (X-Gitea-Signature) is accepted, and berth builds the branch head — once, although
    // the same delivery arrives ten times at once.
    const giteaBody = pushBody('gitea', repo, 'main', c3);
    const giteaHeaders = signedHeaders('gitea', giteaBody);
    const beforeGitea = nowSeconds();
    const copies = await Promise.all(Array.from({ length: 10 }, () => webhook(env, giteaHeaders, giteaBody)));
    expect(copies.map((a) => a.status).sort()).toEqual([...Array<number>(9).fill(200), 202]);
    await waitServing(env, 'web', 'rev3', 30_000);
    await waitReadyRevision(env, 'web', c3, 5000);
    await sleep(1500);
    expect(await tagEvents(env, beforeGitea), 'one build for ten copies of a delivery').toEqual([`berth/web:${c3.slice(0, 12)}`]);

    // GitLab (X-Gitlab-Token) too.
    const c4 = await repo.commit(site('rev4'));
    expect((await push(env, 'gitlab', repo, c4)).status).toBe(202);
    await waitServing(env, 'web', 'rev4', 30_000);
    await waitReadyRevision(env, 'web', c4, 5000);

    // An older push delivered after the newer one (a new delivery id, `after` = rev2): berth
    // resolves the branch head itself, so nothing rolls back and nothing builds.
    const late = nowSeconds();
    const older = await push(env, 'github', repo, c2);
    expect(older.status).toBe(202);
    await sleep(3000);
    expect(await served(env, 'web')).toBe('rev4');
    expect((await revisionFile(env, 'web'))?.spec.commit).toBe(c4);
    expect((await statusOf(env, 'web'))?.status.revision).toBe(c4);
    await expectNoBuildsSince(expect, env, late, 'no build from an older delivery');
    console.log(`[builds.e2e] push→live (GitHub webhook, tiny busybox image): ${Math.round(pushToLiveMs)} ms`);
  }, 150_000);

  it('10 pushes within 2 s to one app while two others build: never two builds at once, at most 2 builds of it, the last commit deployed', async ({ expect }) => {
    const env = await startEnv('e2eq');
    const [spamRepo, slowA, slowB] = await Promise.all([newRepo(), newRepo(), newRepo()]);
    await spamRepo.commit(site('spam-0'));
    await writeManifest(env, 'spam.yaml', builtApp('spam', spamRepo));
    await waitServing(env, 'spam', 'spam-0', 45_000);

    // The build slot as status/operator.yaml shows it, every 50 ms from here on.
    const samples: { at: number; running: string[] }[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const q = (await operatorOf(env))?.status.buildQueue;
        if (q) samples.push({ at: Date.now(), running: (q.running ?? []).map((r) => r.app) });
        await sleep(50);
      }
    })();

    const nonce = randomBytes(4).toString('hex');
    await slowA.commit(site(`slow-a ${nonce}`, slowStep(3)));
    await slowB.commit(site(`slow-b ${nonce}`, slowStep(3)));
    await writeManifest(env, 'slow-a.yaml', builtApp('slow-a', slowA));
    await writeManifest(env, 'slow-b.yaml', builtApp('slow-b', slowB));
    await waitFor('a slow build in the slot', async () => (await operatorOf(env))?.status.buildQueue?.running?.some((r) => r.app.startsWith('slow-')), 30_000, 50);

    // Ten commits made and uploaded beforehand (to a ref nobody follows); the burst is the
    // server side of ten pushes — main moving to each commit in turn, each followed by its
    // webhook — so that spawning git under load cannot stretch it past 2 s.
    const commits: string[] = [];
    for (let i = 1; i <= 10; i++) commits.push(await commitLocally(spamRepo, { 'www/index.html': `spam-${i}\n` }));
    await git(spamRepo.work, 'push', '-q', '--force', spamRepo.bare, `${commits.at(-1)!}:refs/heads/staging`);
    const burstStart = Date.now();
    const since = nowSeconds();
    const answers: Promise<{ status: number }>[] = [];
    for (const c of commits) {
      await git(spamRepo.bare, 'update-ref', 'refs/heads/main', c);
      answers.push(push(env, 'github', spamRepo, c));
    }
    expect((await Promise.all(answers)).map((a) => a.status)).toEqual(commits.map(() => 202));
    const burstMs = Date.now() - burstStart;
    expect(burstMs, '10 pushes (commit + webhook each) within 2 s').toBeLessThan(2000);
    const last = commits.at(-1)!;

    await waitServing(env, 'spam', 'spam-10', 90_000);
    await waitReadyRevision(env, 'spam', last, 10_000);
    await Promise.all([waitServing(env, 'slow-a', `slow-a ${nonce}`, 60_000), waitServing(env, 'slow-b', `slow-b ${nonce}`, 60_000)]);
    await sleep(500);
    sampling = false;
    await sampler;

    // Never two builds at once: in the sampled queue ...
    expect(samples.length).toBeGreaterThan(50);
    expect(samples.filter((s) => s.running.length > 0).map((s) => s.running[0]), 'the sampler saw builds run').toEqual(expect.arrayContaining(['slow-a', 'slow-b', 'spam']));
    expect(Math.max(...samples.map((s) => s.running.length))).toBe(1);
    // ... and in the build logs' own times (start line → last write), over all three apps.
    const logs = (await Promise.all(['spam', 'slow-a', 'slow-b'].map((a) => buildLogs(env, a)))).flat().sort((a, b) => a.startedMs - b.startedMs);
    for (let i = 1; i < logs.length; i++) {
      expect(logs[i]!.startedMs, `${logs[i]!.file} started before ${logs[i - 1]!.file} ended`).toBeGreaterThanOrEqual(logs[i - 1]!.endedMs - 5);
    }
    // At most two builds of the spammed app (the one cut short and the last), the last one deployed.
    const spamBuilds = (await buildLogs(env, 'spam')).filter((l) => l.startedMs >= burstStart - 1000);
    expect(spamBuilds.length).toBeGreaterThanOrEqual(1);
    expect(spamBuilds.length).toBeLessThanOrEqual(2);
    expect(spamBuilds.at(-1)).toMatchObject({ revision: last.slice(0, 12), succeeded: true });
    const tagged = (await tagEvents(env, since)).filter((t) => t.startsWith('berth/spam:'));
    expect(tagged.length).toBeLessThanOrEqual(2);
    expect(tagged).toContain(`berth/spam:${last.slice(0, 12)}`);
    expect((await revisionFile(env, 'spam'))?.spec.commit).toBe(last);
    const op = await operatorOf(env);
    expect(op?.status.buildQueue).toMatchObject({ running: [], queued: [] });
    console.log(`[builds.e2e] burst: ${burstMs} ms for 10 pushes; ${spamBuilds.length} build(s) of spam; ${samples.length} samples, max running ${Math.max(...samples.map((s) => s.running.length))}`);
  }, 180_000);

  it('kill -9 during a build: after restart the build completes exactly once and nothing is left half-done', async ({ expect }) => {
    const env = await startEnv('e2ek');
    const repo = await newRepo();
    const nonce = randomBytes(4).toString('hex');
    const c1 = await repo.commit(site(`survivor ${nonce}`, slowStep(5)));
    const since = nowSeconds();
    await writeManifest(env, 'slow.yaml', builtApp('slow', repo));
    // Inside the slow RUN step: the build log names the step's container.
    const stepContainer = await waitFor('the RUN step', async () => /Running in ([0-9a-f]{12})/.exec((await buildLogs(env, 'slow'))[0]?.text ?? '')?.[1], 45_000, 50);
    expect((await operatorOf(env))?.status.buildQueue?.running?.map((r) => r.app)).toEqual(['slow']);
    await sleep(500 + Math.random() * 2000);
    await env.berth!.kill9();

    await startBerth(env);
    await waitServing(env, 'slow', `survivor ${nonce}`, 60_000);
    await waitReadyRevision(env, 'slow', c1, 5000);
    await sleep(1000);

    expect(await tagEvents(env, since), 'the image was built (tagged) exactly once').toEqual([`berth/slow:${c1.slice(0, 12)}`]);
    const logs = await buildLogs(env, 'slow');
    expect(logs.map((l) => l.succeeded), 'the killed build, then its one retry').toEqual([false, true]);
    expect(await readdir(join(env.dirs.state, 'checkouts')).catch(() => []), 'no checkout left behind').toEqual([]);
    const filter = `label=dev.berth.instance=${env.instance}`;
    expect((await docker('images', '-q', '--filter', 'dangling=true', '--filter', filter)).split('\n').filter(Boolean), 'no untagged image of the instance').toEqual([]);
    expect((await docker('images', '--format', '{{.Repository}}:{{.Tag}}', '--filter', filter)).split('\n').filter(Boolean)).toEqual([`berth/slow:${c1.slice(0, 12)}`]);
    expect((await appContainers(env)).length, 'exactly one container').toBe(1);
    expect(await docker('ps', '-aq', '--filter', `id=${stepContainer}`), 'the killed build\'s RUN container is gone').toBe('');
    const op = await operatorOf(env);
    expect(op?.status.buildQueue).toMatchObject({ running: [], queued: [] });
    const state = JSON.parse(await readFile(join(env.dirs.state, 'state.json'), 'utf8')) as { extra?: { builds?: unknown[] } };
    expect(state.extra?.builds ?? [], 'no build recorded in flight').toEqual([]);
  }, 150_000);

  it('a GitRepository: a signed push adds a third app and deletes one (three → two as in the repo); an invalid file shows in its status without touching what runs', async ({ expect }) => {
    const env = await startEnv('e2eg');
    const repo = await newRepo();
    const app = (name: string, image: string) => appYaml(name, `image: ${image}\nroutes: [{host: ${name}.test}]`);
    const c1 = await repo.commit({ 'apps/one.yaml': app('one', IMAGES.httpdV1), 'apps/two.yaml': app('two', IMAGES.httpdV2), 'README.md': '# not a manifest\n' });
    await writeManifest(env, 'infra.yaml', `apiVersion: berth.dev/v1alpha1\nkind: GitRepository\nmetadata: {name: infra}\nspec: {url: "${repo.url}", branch: main, path: apps/, interval: 1h}\n`);
    const repoStatus = () => readYaml<GitRepositoryStatusFile>(join(env.dirs.status, 'gitrepositories', 'infra.yaml'));
    await Promise.all([waitServing(env, 'one', 'hello v1', 45_000), waitServing(env, 'two', 'hello v2', 45_000)]);
    const synced = await waitFor('infra synced', async () => {
      const s = await repoStatus();
      return s?.status.commit === c1 && s.status.phase === 'Ready' ? s : undefined;
    }, 10_000);
    expectValidStatusFile(synced);
    const [oneBefore] = await appContainers(env, 'one');

    // Add three, delete two, push, signed webhook.
    const c2 = await repo.commit({ 'apps/two.yaml': null, 'apps/three.yaml': app('three', IMAGES.httpdV1) });
    expect((await push(env, 'github', repo, c2)).status).toBe(202);
    await waitServing(env, 'three', 'hello v1', 30_000);
    await waitFor('two removed', async () => (await appContainers(env, 'two')).length === 0 && (await statusOf(env, 'two')) === undefined, 30_000, 100);
    expect(await appContainers(env, 'one')).toEqual([oneBefore]);
    expect(await served(env, 'two')).toBe('');
    const apps = (await readdir(join(env.dirs.status, 'apps'))).sort();
    expect(apps).toEqual(['one.yaml', 'three.yaml']);
    expect((await appContainers(env)).length).toBe(2);
    await waitFor('infra at c2', async () => (await repoStatus())?.status.commit === c2, 10_000);
    // Hidden names are berth's temp files (the watcher ignores them). One was seen here once under
    // load after the status showed c2: a write still in flight, from an overlapping sync?
    expect((await readdir(join(env.dirs.manifests, '_webhook', 'infra'))).filter((f) => !f.startsWith('.')).sort()).toEqual(['one.yaml', 'three.yaml']);

    // An invalid file upstream: reported in the repository's status, what runs is untouched.
    const running = (await appContainers(env)).sort();
    const c3 = await repo.commit({ 'apps/broken.yaml': 'apiVersion: berth.dev/v1alpha1\nkind: App\nmetadata: {name: broken}\nspec: {image: 42, bogus: true}\n' });
    expect((await push(env, 'gitea', repo, c3)).status).toBe(202);
    const withProblem = await waitFor('the problem in the status', async () => {
      const s = await repoStatus();
      return s?.status.commit === c3 && (s.status.problems ?? []).some((p) => p.includes('broken.yaml')) ? s : undefined;
    }, 30_000, 100);
    expectValidStatusFile(withProblem);
    await sleep(2000);
    expect((await appContainers(env)).sort()).toEqual(running);
    expect(await served(env, 'one')).toBe('hello v1');
    expect(await served(env, 'three')).toBe('hello v1');
    console.log(`[builds.e2e] GitRepository problems: ${JSON.stringify(withProblem.status.problems)}`);
  }, 150_000);

  it('a manifest that a GitRepository sync writes into a folder that did not exist reaches berth (20 pushes, each adding one app in a new folder)', async ({ expect }) => {
    // The watcher race itself: a file renamed into a folder created after berth started, before
    // the watcher watches that folder, must still be reported.
    const env = await startEnv('e2ew');
    const repo = await newRepo();
    const repoStatus = () => readYaml<GitRepositoryStatusFile>(join(env.dirs.status, 'gitrepositories', 'many.yaml'));
    const file = (i: number) => ({ [`apps/d${i}/app-${i}.yaml`]: appYaml(`app-${i}`, `image: ${IMAGES.httpdV1}\nreplicas: 0`) });
    const missed: string[] = [];
    for (let i = 0; i < 20; i++) {
      const c = await repo.commit(file(i));
      if (i === 0) await writeManifest(env, 'many.yaml', `apiVersion: berth.dev/v1alpha1\nkind: GitRepository\nmetadata: {name: many}\nspec: {url: "${repo.url}", branch: main, path: apps/, interval: 1h}\n`);
      else expect((await push(env, 'github', repo, c)).status).toBe(202);
      await waitFor(`sync of push ${i}`, async () => (await repoStatus())?.status.commit === c, 30_000, 50);
      const seen = await waitFor(`app-${i}`, async () => (await statusOf(env, `app-${i}`)) !== undefined, 5000, 50).catch(() => false);
      if (!seen) missed.push(`_webhook/many/d${i}/app-${i}.yaml`);
    }
    const op = await operatorOf(env);
    expect({ missed, watcherFiles: op?.status.manifests?.files }, 'synced files the manifest watcher never reported').toEqual({ missed: [], watcherFiles: 20 + 1 });
  }, 150_000);
});

