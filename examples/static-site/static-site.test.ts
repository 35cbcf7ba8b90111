// examples/static-site end to end: the built berth on a temporary folder, this example's
// app.yaml applied unchanged with `berth apply -f`, real Docker, requests through the proxy.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { berthCli, waitFor } from '../../test/helpers/berth-process.js';
import { docker } from '../../test/helpers/docker.js';
import {
  EXAMPLES, STAND_INS, appStatus, closeExampleEnv, condition, containerStates, exampleEnv, fileArgs, httpRequest, served, standIn, startBerth, waitPhase,
  type ExampleEnv,
  started,
} from '../../test/helpers/example-env.js';

const MANIFEST = join(EXAMPLES, 'static-site', 'app.yaml');
const { marker } = STAND_INS.nginx;
let env: ExampleEnv | undefined;

beforeAll(async () => {
  env = await exampleEnv('exsite');
  await standIn(env, 'nginx:1.27-alpine', 'nginx');
  await startBerth(env);
}, 180_000);

afterAll(() => closeExampleEnv(env), 60_000);

const must = () => started(env);

describe('examples/static-site', () => {
  it('serves nginx at site.lan over plain HTTP, as the README shows', async () => {
    const e = must();
    const applied = await berthCli(['apply', '-f', MANIFEST, ...fileArgs(e)]);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toContain('site.yaml');

    const ready = await waitPhase(e, 'site', 'Ready', 30_000);
    const r = await httpRequest(e, 'site.lan');
    expect(r.status).toBe(200);
    expect(r.body).toContain(marker);
    // Any case and any port in the Host header match the route.
    expect((await httpRequest(e, 'SITE.lan:8080')).body).toContain(marker);
    expect((await httpRequest(e, 'other.lan')).status).toBe(404);

    // The status the README tells the reader to look at.
    const port = new URL(e.berth?.httpUrl ?? '').port;
    expect(ready.status.url).toBe(`http://site.lan:${port}/`);
    expect(condition(ready, 'Ready')).toMatchObject({ status: 'True', reason: 'Available' });
    expect(condition(ready, 'ImageReady')).toMatchObject({ status: 'True', reason: 'Present' });
    expect(condition(ready, 'ContainerReady')).toMatchObject({ status: 'True', reason: 'Running' });
    expect(condition(ready, 'RouteReady')).toMatchObject({ status: 'True', reason: 'Routed', message: 'site.lan/' });
    expect(condition(ready, 'CertificateReady')).toBeUndefined();
    expect(ready.status.image?.ref).toBe('nginx:1.27-alpine');
    expect(ready.status.events?.map((ev) => ev.reason)).toEqual(expect.arrayContaining(['Creating', 'Deployed']));
    const table = await berthCli(['status', ...fileArgs(e)]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^NAME\s+PHASE\s+READY\s+URL\s+REVISION\s+AGE\s+MESSAGE$/m);
    expect(table.stdout).toMatch(new RegExp(`^site\\s+Ready\\s+True\\s+http://site\\.lan:${port}/\\s+-\\s+\\S+\\s+1/1 container\\(s\\) serving$`, 'm'));

    // The container: the example label and the memory limit from the manifest.
    const name = ready.status.containers?.[0]?.name ?? '';
    expect(name).toMatch(new RegExp(`^${e.instance}-site-[0-9a-f]+-0$`));
    const inspected = JSON.parse(await docker('inspect', '--format', '{{json .Config.Labels}}', name)) as Record<string, string>;
    expect(inspected.example).toBe('static-site');
    expect(Number(await docker('inspect', '--format', '{{.HostConfig.Memory}}', name))).toBe(64 * 1024 * 1024);
  });

  it('repairs a container removed behind its back', async () => {
    const e = must();
    const before = (await appStatus(e, 'site'))?.status.containers?.[0]?.name ?? '';
    await docker('rm', '-f', before);
    await waitFor('site serving again', async () => (await served(e, 'site.lan')).includes(marker), 30_000, 100);
    const s = await waitFor('ContainerMissing event', async () => {
      const st = await appStatus(e, 'site');
      return st?.status.phase === 'Ready' && st.status.events?.some((ev) => ev.reason === 'ContainerMissing') ? st : undefined;
    }, 15_000, 100);
    expect(s.status.containers).toHaveLength(1);
  });

  it('keeps serving through an invalid edit, and says where the mistake is', async () => {
    const e = must();
    const file = join(e.dirs.manifests, 'site.yaml');
    const good = await readFile(file, 'utf8');
    await writeFile(file, good.replace('  image: nginx', '  imagee: nginx'));
    const validate = await berthCli(['validate', e.dirs.manifests]);
    expect(validate.code).toBe(1);
    expect(validate.stdout + validate.stderr).toMatch(/site\.yaml:\d+:\d+: spec: unknown field "imagee" \(did you mean "image"\?\)/);
    const s = await waitFor('the problem in the status', async () => {
      const st = await appStatus(e, 'site');
      return condition(st, 'Stalled')?.reason === 'InvalidSpec' ? st : undefined;
    }, 10_000, 50);
    expect(condition(s, 'Stalled')?.message).toMatch(/site\.yaml:\d+:\d+/);
    // Still serving the last good version, but not as written: Degraded, Ready=True.
    expect(s.status.phase).toBe('Degraded');
    expect(condition(s, 'Ready')?.status).toBe('True');
    expect(await served(e, 'site.lan')).toContain(marker);
    await writeFile(file, good);
    await waitPhase(e, 'site', 'Ready', 10_000);
  });

  it('berth delete site removes the container and the route', async () => {
    const e = must();
    const del = await berthCli(['delete', 'site', ...fileArgs(e)]);
    expect(del.code, del.stderr).toBe(0);
    await waitFor('container removed', async () => (await containerStates(e, 'site')).length === 0, 30_000, 100);
    await waitFor('route gone', async () => (await httpRequest(e, 'site.lan')).status === 404, 10_000, 100);
  });
});
