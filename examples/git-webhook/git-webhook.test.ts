// examples/git-webhook end to end: a bare repository (file://) made from examples/git-webhook/site/,
// this example's app.yaml with only the git url and the BASE build argument changed (a local
// busybox stand-in for nginx:1.27-alpine, so the build needs no registry), the built berth with
// BERTH_WEBHOOK_SECRET, and a GitHub push signed with it.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { berthCli, readYaml, waitFor } from '../../test/helpers/berth-process.js';
import { createTestRepo, type TestRepo } from '../../test/helpers/git.js';
import { docker } from '../../test/helpers/docker.js';
import {
  EXAMPLES, apply, appStatus, closeExampleEnv, condition, containerStates, editedManifest, exampleEnv, fileArgs, githubPush, httpRequest, privateStandIn, served, startBerth,
  type ExampleEnv,
} from '../../test/helpers/example-env.js';
import type { OperatorStatusFile } from '../../src/api/types.generated.js';

const SECRET = randomBytes(24).toString('hex');
const HOST = 'hello.example.com';
let env: ExampleEnv | undefined;
let repo: TestRepo | undefined;
let rev1 = '';

beforeAll(async () => {
  env = await exampleEnv('exhook');
  const base = await privateStandIn(env, 'nginx');
  const r = await createTestRepo();
  repo = r;
  env.cleanups.push(() => r.cleanup());
  // The repository holds exactly what examples/git-webhook/site/ holds.
  const site = join(EXAMPLES, 'git-webhook', 'site');
  rev1 = await r.commit({ Dockerfile: { copy: join(site, 'Dockerfile') }, 'index.html': { copy: join(site, 'index.html') } }, { message: 'revision 1' });
  await startBerth(env, { env: { BERTH_WEBHOOK_SECRET: SECRET } });
  await apply(env, await editedManifest('git-webhook', 'app.yaml', [
    [['spec', 'build', 'git', 'url'], r.url],
    [['spec', 'build', 'args'], { BASE: base }],
  ]));
}, 180_000);

afterAll(() => closeExampleEnv(env), 60_000);

function must(): { e: ExampleEnv; r: TestRepo } {
  if (!env?.berth || !repo) throw new Error('berth did not start');
  return { e: env, r: repo };
}

const revisionFile = (e: ExampleEnv) => readYaml<{ kind: string; spec: { commit: string; source: string } }>(join(e.dirs.manifests, '_webhook', 'hello.revision.yaml'));

/** Waits until the route serves `text`; on a timeout the error carries the app's status and berth's last log lines. */
async function waitServing(e: ExampleEnv, text: string, timeoutMs: number): Promise<void> {
  try {
    await waitFor(`${HOST} serving "${text}"`, async () => (await served(e, HOST)).includes(text), timeoutMs, 100);
  } catch (err) {
    const s = await appStatus(e, 'hello');
    const onDisk = await revisionFile(e);
    // Seen on a loaded machine: berth wrote the AppRevision into a new _webhook/ folder, the
    // watcher never reported it, and the app waits in ResolvingRevision until something rewrites
    // the file (a push) or rescans the folder. Open bug: src/manifests/manifest-watcher.ts.
    const missed = onDisk && condition(s, 'ImageReady')?.reason === 'ResolvingRevision'
      ? `berth wrote _webhook/hello.revision.yaml (${onDisk.spec.commit}) but still says ResolvingRevision: its manifest watcher missed the file\n`
      : '';
    throw new Error(`${missed}${String(err)}\nstatus: ${JSON.stringify(s?.status, null, 1)}\nlogs: ${e.berth?.logs().slice(-4000) ?? ''}`, { cause: err });
  }
}

describe('examples/git-webhook', () => {
  it('builds the branch head on the first deploy and serves it', async () => {
    const { e } = must();
    await waitServing(e, 'This is revision 1.', 45_000);
    const s = await waitFor('hello Ready', async () => {
      const st = await appStatus(e, 'hello');
      return st?.status.phase === 'Ready' && st.status.revision === rev1 ? st : undefined;
    }, 10_000, 100);
    expect(s.status.image?.ref).toBe(`berth/hello:${rev1.slice(0, 12)}`);
    expect(condition(s, 'ImageReady')?.status).toBe('True');
    expect(await revisionFile(e)).toMatchObject({ kind: 'AppRevision', spec: { commit: rev1, source: 'initial' } });
    const table = await berthCli(['status', ...fileArgs(e)]);
    expect(table.stdout).toMatch(new RegExp(`^hello\\s+Ready\\s+True\\s+http://hello\\.example\\.com:\\d+/\\s+${rev1.slice(0, 12)}\\s`, 'm'));
  });

  it('a signed GitHub push (202) deploys the new commit; a bad signature gets 401', async () => {
    const { e, r } = must();
    const page = await readFile(join(EXAMPLES, 'git-webhook', 'site', 'index.html'), 'utf8');
    const rev2 = await r.commit({ 'index.html': page.replace('This is revision 1.', 'This is revision 2.') }, { message: 'revision 2' });

    const forged = githubPush('not-the-secret', r.url, 'main', rev2);
    expect((await httpRequest(e, 'berth.example.com', { method: 'POST', path: '/_berth/webhook', headers: forged.headers, body: forged.body })).status).toBe(401);

    const push = githubPush(SECRET, r.url, 'main', rev2);
    const t0 = Date.now();
    const answer = await httpRequest(e, 'berth.example.com', { method: 'POST', path: '/_berth/webhook', headers: push.headers, body: push.body });
    expect(answer.status, answer.body).toBe(202);
    await waitServing(e, 'This is revision 2.', 60_000);
    console.log(`git-webhook: push -> revision 2 served in ${Date.now() - t0} ms`);

    const s = await waitFor('hello Ready at rev2', async () => {
      const st = await appStatus(e, 'hello');
      return st?.status.phase === 'Ready' && st.status.revision === rev2 ? st : undefined;
    }, 10_000, 100);
    expect(s.status.history?.map((h) => h.revision)).toEqual([rev1, rev2]);
    expect(await revisionFile(e)).toMatchObject({ spec: { commit: rev2, source: 'webhook' } });
    const op = await readYaml<OperatorStatusFile>(join(e.dirs.status, 'operator.yaml'));
    expect(JSON.stringify(op?.status)).toContain(push.headers['x-github-delivery']);

    // A push to another branch is ignored (200, with the reason).
    const other = githubPush(SECRET, r.url, 'feature', rev2);
    const ignored = await httpRequest(e, 'berth.example.com', { method: 'POST', path: '/_berth/webhook', headers: other.headers, body: other.body });
    expect(ignored.status).toBe(200);
  });

  it('berth history lists both revisions and berth rollback serves revision 1 again without a build', async () => {
    const { e } = must();
    const history = await berthCli(['history', 'hello', ...fileArgs(e)]);
    expect(history.code, history.stderr).toBe(0);
    expect(history.stdout).toContain(rev1.slice(0, 12));
    const builds = async () => (await readdir(join(e.dirs.state, 'builds', 'hello'))).length;
    const buildsBefore = await builds();
    expect(buildsBefore).toBe(2);
    const rollback = await berthCli(['rollback', 'hello', ...fileArgs(e)]);
    expect(rollback.code, rollback.stderr + rollback.stdout).toBe(0);
    await waitServing(e, 'This is revision 1.', 30_000);
    expect(await revisionFile(e)).toMatchObject({ spec: { commit: rev1, source: 'rollback' } });
    expect(await builds()).toBe(buildsBefore);
  });

  it('berth delete hello removes the container, the route and the images berth built', async () => {
    const { e } = must();
    const images = async () => (await docker('images', '-q', '--filter', `label=dev.berth.instance=${e.instance}`, '--filter', 'label=dev.berth.app=hello')).split('\n').filter(Boolean);
    expect((await images()).length).toBeGreaterThan(0);
    const del = await berthCli(['delete', 'hello', ...fileArgs(e)]);
    expect(del.code, del.stderr).toBe(0);
    await waitFor('hello removed', async () => (await appStatus(e, 'hello')) === undefined && (await containerStates(e, 'hello')).length === 0, 30_000, 100);
    expect((await httpRequest(e, HOST)).status).toBe(404);
    await waitFor('its images removed', async () => (await images()).length === 0, 15_000, 100);
  });
});
