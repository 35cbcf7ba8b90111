// Issue 2 end to end: the built CLI watching a real folder, writing real status files.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { writeFile, stat, copyFile, readdir, unlink, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BerthProcess, berthCli, makeDirs, removeDirs, readYaml, sleep, waitFor, type BerthDirs } from '../helpers/berth-process.js';
import { IMAGES, cleanupInstance, testInstance } from '../helpers/docker.js';
import { expectValidStatusFile } from '../helpers/status-schema.js';
import type { AppStatusFile, OperatorStatusFile } from '../../src/api/types.generated.js';

const HOSTILE = new URL('../fixtures/hostile/', import.meta.url).pathname;

const app = (name: string, image: string = IMAGES.httpdV1, extra = '') => `apiVersion: berth.dev/v1alpha1
kind: App
metadata: {name: ${name}}
spec:
  image: ${image}${extra}
`;

let dirs: BerthDirs;
let berth: BerthProcess;
const instance = testInstance('e2em');

const statusOf = (name: string) => readYaml<AppStatusFile>(join(dirs.status, 'apps', `${name}.yaml`));

beforeAll(async () => {
  dirs = await makeDirs();
  berth = await BerthProcess.start(dirs, { instance });
});
afterAll(async () => {
  await berth?.stop();
  await cleanupInstance(instance);
  await removeDirs(dirs);
});

describe('berth run with a manifests folder', () => {
  it('writes an app status file within a second of the manifest appearing', async () => {
    const t0 = Date.now();
    await writeFile(join(dirs.manifests, 'web.yaml'), app('web'));
    const doc = await waitFor('status/apps/web.yaml', () => statusOf('web'), 5000, 10);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(doc.metadata).toMatchObject({ name: 'web', generation: 1, file: 'web.yaml' });
    expectValidStatusFile(doc);
  });

  it('advances the generation when the spec changes, and rewrites nothing when only a comment changes', async () => {
    await writeFile(join(dirs.manifests, 'gen.yaml'), app('gen'));
    await waitFor('gen status', () => statusOf('gen'));
    await writeFile(join(dirs.manifests, 'gen.yaml'), app('gen', IMAGES.httpdV1, '\n  env: {A: "1"}'));
    await waitFor('generation 2 rolled out', async () => {
      const s = await statusOf('gen');
      return s?.metadata.generation === 2 && s.status.observedGeneration === 2 && s.status.phase === 'Ready' && s.status.containers?.length === 1;
    }, 30_000);
    const path = join(dirs.status, 'apps', 'gen.yaml');
    // Settled: the file stays as it is for a while before the comment edit.
    await waitFor('a settled status file', async () => {
      const m = (await stat(path)).mtimeMs;
      await sleep(700);
      return (await stat(path)).mtimeMs === m;
    }, 30_000);
    const before = (await stat(path)).mtimeMs;
    const content = await readFile(path, 'utf8');
    await writeFile(join(dirs.manifests, 'gen.yaml'), `# only a comment\n${app('gen', IMAGES.httpdV1, '\n  env: {A: "1"}')}`);
    await sleep(1000);
    expect((await stat(path)).mtimeMs).toBe(before);
    expect(await readFile(path, 'utf8')).toBe(content);
  });

  it('survives the whole hostile corpus: each file rejected with its location, other apps untouched', async () => {
    await writeFile(join(dirs.manifests, 'keep.yaml'), app('keep'));
    const keep = await waitFor('keep status', () => statusOf('keep'));
    const files = (await readdir(HOSTILE)).filter((f) => f.endsWith('.yaml'));
    await Promise.all(files.map((f) => copyFile(join(HOSTILE, f), join(dirs.manifests, `hostile-${f}`))));
    // Generated at test time rather than committed: a 5 MiB file and 10 000-deep nesting.
    await writeFile(join(dirs.manifests, 'hostile-huge.yaml'), `${app('huge')}#${'x'.repeat(5 << 20)}\n`);
    await writeFile(join(dirs.manifests, 'hostile-deep.yaml'), `a: ${'['.repeat(10_000)}${']'.repeat(10_000)}\n`);
    const op = await waitFor('problems in operator.yaml', async () => {
      const o = await readYaml<OperatorStatusFile>(join(dirs.status, 'operator.yaml'));
      return (o?.status.manifests?.problems?.length ?? 0) >= 10 ? o : undefined;
    });
    const problems = op.status.manifests!.problems!.join('\n');
    expect(problems).toMatch(/^hostile-huge\.yaml:1:1: file is \d+ bytes; manifests are limited/m);
    expect(problems).toMatch(/^hostile-deep\.yaml:1:68: nested more than 64 levels deep/m);
    expect(problems).toMatch(/^hostile-alias-bomb\.yaml:1:1: too many alias expansions/m);
    expect(problems).toMatch(/^hostile-name-dotdot\.yaml:3:18: metadata\.name: "\.\.\/x" is not valid/m);
    expect(berth.alive).toBe(true);
    expect((await fetch(`${berth.adminUrl}/healthz`)).status).toBe(200);
    // Objects named "a" from many hostile files: one status, stalled with the first problem.
    const a = await waitFor('status of a', () => statusOf('a'));
    expect(a.status.conditions.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True' });
    const keepAfter = await statusOf('keep');
    expect(keepAfter?.metadata.generation).toBe(keep.metadata.generation);
    expect((await readdir(join(dirs.status, 'apps'))).some((f) => f.includes('..'))).toBe(false);
    await Promise.all([...files.map((f) => `hostile-${f}`), 'hostile-huge.yaml', 'hostile-deep.yaml'].map((f) => unlink(join(dirs.manifests, f))));
    await waitFor('status of a removed', async () => (await statusOf('a')) === undefined);
  });

  it('answers /healthz on the admin listener', async () => {
    const res = await fetch(`${berth.adminUrl}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok' });
  });

  it('removes the status file when the manifest is deleted', async () => {
    await writeFile(join(dirs.manifests, 'gone.yaml'), app('gone'));
    await waitFor('gone status', () => statusOf('gone'));
    await unlink(join(dirs.manifests, 'gone.yaml'));
    await waitFor('gone status removed', async () => (await statusOf('gone')) === undefined);
  });
});

describe('the berth CLI', () => {
  it('validates: exit 0 when valid, 1 with file:line:col when not, 2 on usage errors', async () => {
    const ok = await berthCli(['validate', join(HOSTILE, '..', '..', '..', 'examples', 'static-site')]);
    expect([ok.code, ok.stdout]).toEqual([0, '']);
    const bad = await berthCli(['validate', join(HOSTILE, 'port-range.yaml')]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe(`${join(HOSTILE, 'port-range.yaml')}:6:9: spec.port: must be <= 65535\n`);
    expect((await berthCli(['validate', '--bogus'])).code).toBe(2);
    expect((await berthCli(['frobnicate'])).code).toBe(2);
  });

  it('answers --help on every command and --version', async () => {
    const top = await berthCli(['--help']);
    const commands = [...top.stdout.matchAll(/^ {2}([a-z]+) {2,}/gm)].map((m) => m[1]!);
    expect(commands.length).toBeGreaterThanOrEqual(5);
    for (const c of commands) {
      const r = await berthCli([c, '--help']);
      expect([c, r.code, r.stdout.startsWith(`Usage: berth ${c}`)]).toEqual([c, 0, true]);
    }
    expect((await berthCli(['--version'])).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it('prints the status table and one app in detail, and exits 1 for an unknown app', async () => {
    const table = await berthCli(['status', '--status', dirs.status]);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^NAME\s+PHASE\s+READY\s+URL\s+REVISION\s+AGE\s+MESSAGE$/);
    expect(table.stdout).toMatch(/^web\s+/m);
    const one = await berthCli(['status', 'web', '--json', '--status', dirs.status]);
    expect(JSON.parse(one.stdout)).toMatchObject({ kind: 'App', metadata: { name: 'web' } });
    expect((await berthCli(['status', 'nope', '--status', dirs.status])).code).toBe(1);
  });

  it('applies a valid file atomically and refuses an invalid one without writing', async () => {
    const d = await makeDirs();
    try {
      const good = join(d.root, 'svc.yaml');
      await writeFile(good, app('svc'));
      const r = await berthCli(['apply', '-f', good, '--manifests', d.manifests]);
      expect([r.code, r.stdout]).toEqual([0, 'applied: svc.yaml\n']);
      const bad = join(d.root, 'bad.yaml');
      await writeFile(bad, app('svc', 'nginx', '\n  port: 0'));
      const r2 = await berthCli(['apply', '-f', bad, '--manifests', d.manifests]);
      expect(r2.code).toBe(1);
      expect(r2.stderr).toMatch(/bad\.yaml:6:9: spec\.port: must be >= 1/);
      expect(await readFile(join(d.manifests, 'svc.yaml'), 'utf8')).toBe(app('svc'));
      const del = await berthCli(['delete', 'svc', '--manifests', d.manifests]);
      expect([del.code, await readdir(d.manifests)]).toEqual([0, []]);
      expect((await berthCli(['delete', 'svc', '--manifests', d.manifests])).code).toBe(1);
    } finally {
      await removeDirs(d);
    }
  });
});
