// examples/gitrepository end to end: a bare repository (file://) made from exactly the files in
// examples/gitrepository/repo/, this example's infra.yaml with only the url changed, the built
// berth with BERTH_WEBHOOK_SECRET; both synced apps come up and serve over HTTPS (local CA), and a
// signed push that deletes one of them removes that app.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { berthCli, waitFor } from '../../test/helpers/berth-process.js';
import { createTestRepo, type TestRepo } from '../../test/helpers/git.js';
import {
  EXAMPLES, STAND_INS, apply, appStatus, closeExampleEnv, condition, containerStates, editedManifest, exampleEnv, fileArgs, githubPush, httpRequest, httpsRequest,
  repositoryStatus, standIn, startBerth, type ExampleEnv,
} from '../../test/helpers/example-env.js';

const SECRET = randomBytes(24).toString('hex');
let env: ExampleEnv | undefined;
let repo: TestRepo | undefined;
let rev1 = '';

/** Every file under `dir`, as paths relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((d) => d.isFile()).map((d) => relative(dir, join(d.parentPath, d.name))).sort();
}

beforeAll(async () => {
  env = await exampleEnv('exrepo');
  await standIn(env, 'nginx:1.27-alpine', 'nginx');
  await standIn(env, 'traefik/whoami:v1.10', 'whoami');
  const r = await createTestRepo();
  repo = r;
  env.cleanups.push(() => r.cleanup());
  const content = join(EXAMPLES, 'gitrepository', 'repo');
  const files = await filesUnder(content);
  expect(files).toEqual(['apps/web.yaml', 'apps/whoami.yaml']);
  rev1 = await r.commit(Object.fromEntries(files.map((f) => [f, { copy: join(content, f) }])), { message: 'two apps' });
  await startBerth(env, { env: { BERTH_WEBHOOK_SECRET: SECRET } });
  await apply(env, await editedManifest('gitrepository', 'infra.yaml', [[['spec', 'url'], r.url]]));
}, 240_000);

afterAll(() => closeExampleEnv(env), 60_000);

function must(): { e: ExampleEnv; r: TestRepo } {
  if (!env?.berth || !repo) throw new Error('berth did not start');
  return { e: env, r: repo };
}

async function httpsPort(e: ExampleEnv): Promise<number> {
  const address = await waitFor('the HTTPS listener', async () => (await e.berth?.listeners())?.https, 10_000, 50);
  return Number(address.split(':').pop());
}

describe('examples/gitrepository', () => {
  it('syncs apps/ and both apps come up Ready, serving home.lan over HTTPS', async () => {
    const { e } = must();
    const synced = await waitFor('infra Ready', async () => {
      const s = await repositoryStatus(e, 'infra');
      return s?.status.phase === 'Ready' ? s : undefined;
    }, 30_000, 100);
    expect(synced.status.commit).toBe(rev1);
    expect(condition(synced, 'Ready')).toMatchObject({ status: 'True', reason: 'Synced' });
    expect(synced.status.files).toEqual(['web.yaml', 'whoami.yaml']);
    expect(synced.status.problems).toBeUndefined();
    expect(await filesUnder(join(e.dirs.manifests, '_webhook', 'infra'))).toEqual(['web.yaml', 'whoami.yaml']);

    for (const app of ['web', 'whoami']) {
      await waitFor(`${app} Ready with its certificate`, async () => {
        const s = await appStatus(e, app);
        return s?.status.phase === 'Ready' && condition(s, 'CertificateReady')?.status === 'True';
      }, 45_000, 100);
    }
    expect((await appStatus(e, 'web'))?.metadata.file).toBe('_webhook/infra/web.yaml');
    const table = await berthCli(['status', ...fileArgs(e)]);
    expect(table.stdout).toMatch(/^web\s+Ready\s+True\s+https:\/\/home\.lan:\d+\/\s/m);
    expect(table.stdout).toMatch(/^whoami\s+Ready\s+True\s+https:\/\/home\.lan:\d+\/whoami\s/m);

    const ca = (await berthCli(['ca', 'export', ...fileArgs(e)])).stdout;
    const port = await httpsPort(e);
    const web = await httpsRequest(port, 'home.lan', ca, '/');
    expect(web.status).toBe(200);
    expect(web.body).toContain(STAND_INS.nginx.marker);
    const whoami = await httpsRequest(port, 'home.lan', ca, '/whoami/');
    expect(whoami.status).toBe(200);
    expect(whoami.body).toContain(STAND_INS.whoami.marker);
  });

  it('a signed push that deletes apps/whoami.yaml (202) removes that app and keeps the other', async () => {
    const { e, r } = must();
    const rev2 = await r.commit({ 'apps/whoami.yaml': null }, { message: 'retire whoami' });
    const push = githubPush(SECRET, r.url, 'main', rev2);
    const answer = await httpRequest(e, 'berth.example.com', { method: 'POST', path: '/_berth/webhook', headers: push.headers, body: push.body });
    expect(answer.status, answer.body).toBe(202);

    await waitFor('infra at rev2', async () => (await repositoryStatus(e, 'infra'))?.status.commit === rev2, 20_000, 100);
    await waitFor('whoami removed', async () => (await appStatus(e, 'whoami')) === undefined && (await containerStates(e, 'whoami')).length === 0, 30_000, 100);
    expect(await filesUnder(join(e.dirs.manifests, '_webhook', 'infra'))).toEqual(['web.yaml']);
    expect((await appStatus(e, 'web'))?.status.phase).toBe('Ready');
    const ca = (await berthCli(['ca', 'export', ...fileArgs(e)])).stdout;
    const port = await httpsPort(e);
    expect((await httpsRequest(port, 'home.lan', ca, '/')).body).toContain(STAND_INS.nginx.marker);
    // /whoami now falls to the longest remaining prefix: web's /.
    expect((await httpsRequest(port, 'home.lan', ca, '/whoami/')).status).toBe(404);
  });

  it('an invalid file pushed shows in the repository\'s problems and touches nothing that runs', async () => {
    const { e, r } = must();
    const web = await appStatus(e, 'web');
    const rev3 = await r.commit({ 'apps/broken.yaml': 'apiVersion: berth.dev/v1alpha1\nkind: App\nmetadata: {name: broken}\nspec:\n  imagee: nginx:1.27-alpine\n' }, { message: 'a typo' });
    const push = githubPush(SECRET, r.url, 'main', rev3);
    expect((await httpRequest(e, 'berth.example.com', { method: 'POST', path: '/_berth/webhook', headers: push.headers, body: push.body })).status).toBe(202);
    const s = await waitFor('the problem reported', async () => {
      const st = await repositoryStatus(e, 'infra');
      return st?.status.commit === rev3 && st.status.problems?.length ? st : undefined;
    }, 20_000, 100);
    expect(s.status.problems?.join('\n')).toMatch(/_webhook\/infra\/broken\.yaml:\d+:\d+: .*imagee/);
    const after = await appStatus(e, 'web');
    expect(after?.status.phase).toBe('Ready');
    expect(after?.status.containers?.map((c) => c.id)).toEqual(web?.status.containers?.map((c) => c.id));
    expect(await containerStates(e, 'broken')).toEqual([]);
  });

  it('synced manifests are berth\'s: berth delete refuses them; deleting the GitRepository removes its apps', async () => {
    const { e } = must();
    const refused = await berthCli(['delete', 'web', ...fileArgs(e)]);
    expect(refused.code).toBe(1);
    expect(refused.stderr + refused.stdout).toMatch(/git repository/);

    const del = await berthCli(['delete', 'GitRepository/infra', ...fileArgs(e)]);
    expect(del.code, del.stderr).toBe(0);
    await waitFor('web removed with the repository', async () => (await appStatus(e, 'web')) === undefined && (await containerStates(e, 'web')).length === 0, 30_000, 100);
    expect(await repositoryStatus(e, 'infra')).toBeUndefined();
    expect(await filesUnder(join(e.dirs.manifests, '_webhook', 'infra')).catch(() => [])).toEqual([]);
  });
});
