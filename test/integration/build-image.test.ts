// Real Docker builds of FROM-scratch busybox contexts checked out from a local git repository.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerContainerRuntime } from '../../src/docker/docker-container-runtime.js';
import { CliGitSource } from '../../src/git/git-source.js';
import { BuildFailedError, ImageBuilder, listBuildLogs } from '../../src/build/image-builder.js';
import { hashBuildContext, scanBuildContext } from '../../src/build/build-context.js';
import { cleanupInstance, docker, requireDocker, testInstance } from '../helpers/docker.js';
import { busyboxContext, createTestRepo, type TestRepo } from '../helpers/git.js';

const instance = testInstance('bld');
const runtime = DockerContainerRuntime.fromDockerHost(process.env.DOCKER_HOST);
const git = new CliGitSource();
let repo: TestRepo;
let state: string;
let builder: ImageBuilder;

beforeAll(async () => {
  await requireDocker();
  repo = await createTestRepo();
  state = await mkdtemp(join(tmpdir(), 'berth-build-state-'));
  builder = new ImageBuilder(runtime, { stateDir: state });
});
afterAll(async () => {
  await cleanupInstance(instance);
  await repo?.cleanup();
  await rm(state, { recursive: true, force: true });
});

async function checkout(commit: string): Promise<string> {
  const dir = join(state, 'git', commit.slice(0, 12));
  await git.checkout(repo.url, commit, dir);
  return dir;
}

describe('image builds against real Docker', () => {
  it('builds a commit as berth/<app>:<commit12> with ownership labels, and it runs', async () => {
    const unique = `hello ${instance} ${Date.now()}`;
    // The unique file comes first, so no layer is cached: a cold build, as on a first push.
    const commit = await repo.commit({
      ...busyboxContext(unique),
      Dockerfile: ['FROM scratch', 'COPY msg.txt /msg.txt', 'COPY busybox /bin/busybox', 'RUN ["/bin/busybox", "--install", "-s", "/bin"]', 'CMD ["cat", "/msg.txt"]', ''].join('\n'),
      '.dockerignore': 'notes/\n',
      'notes/big.txt': 'x'.repeat(100_000),
    });
    const t0 = performance.now();
    const dir = await checkout(commit);
    const checkoutMs = performance.now() - t0;
    const res = await builder.build({ app: `${instance}-web`, instance, revision: commit, contextDir: dir, dockerfile: 'Dockerfile', buildArgs: {} });
    console.log(`checkout ${checkoutMs.toFixed(0)} ms, cold build ${res.durationMs} ms, context ${res.contextBytes} bytes`);

    expect(res.tag).toBe(`berth/${instance}-web:${commit.slice(0, 12)}`);
    expect(res.contextBytes).toBeLessThan(3 << 20); // notes/ was ignored
    const labels = JSON.parse(await docker('image', 'inspect', '--format', '{{json .Config.Labels}}', res.tag)) as Record<string, string>;
    expect(labels).toMatchObject({ 'dev.berth.managed-by': 'berth', 'dev.berth.instance': instance, 'dev.berth.app': `${instance}-web`, 'dev.berth.revision': commit });
    expect(res.imageId).toBe(await docker('image', 'inspect', '--format', '{{.Id}}', res.tag));
    const out = await docker('run', '--rm', '--label', `dev.berth.instance=${instance}`, res.tag);
    expect(out).toBe(unique);

    const warm = await builder.build({ app: `${instance}-web`, instance, revision: commit, contextDir: dir, dockerfile: 'Dockerfile', buildArgs: {} });
    console.log(`same build again (cached): ${warm.durationMs} ms`);
    expect(warm.imageId).toBe(res.imageId);
  });

  it('reports a failing RUN as BuildFailed with the step and message, and tags nothing', async () => {
    const commit = await repo.commit(busyboxContext('broken', ['RUN ["/bin/busybox", "sh", "-c", "echo about to fail; exit 3"]']));
    const app = `${instance}-broken`;
    const e = await builder.build({ app, instance, revision: commit, contextDir: await checkout(commit), buildArgs: {} }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BuildFailedError);
    const err = e as BuildFailedError;
    expect([err.kind, err.reason]).toEqual(['stalled', 'BuildFailed']);
    expect(err.message).toMatch(/^Step 4\/\d+ : RUN \["\/bin\/busybox", "sh", "-c", "echo about to fail; exit 3"\]: .*returned a non-zero code: 3$/);
    expect(err.logTail).toContain('about to fail');
    const logs = await listBuildLogs(state, app);
    expect(logs).toHaveLength(1);
    expect(await readFile(logs[0]!, 'utf8')).toContain('# failed: Step 4/');
    await expect(docker('image', 'inspect', `berth/${app}:${commit.slice(0, 12)}`)).rejects.toThrow();
  });

  it('stops a hung build at the timeout and the engine stops its step', async () => {
    const marker = 600 + Math.floor(Math.random() * 300);
    const commit = await repo.commit(busyboxContext('hang', [`RUN ["/bin/busybox", "sleep", "${marker}"]`]));
    const quick = new ImageBuilder(runtime, { stateDir: state, timeoutMs: 3000 });
    const t0 = performance.now();
    const e = (await quick.build({ app: `${instance}-hung`, instance, revision: commit, contextDir: await checkout(commit), buildArgs: {} }).catch((x: unknown) => x)) as BuildFailedError;
    expect([e.kind, e.reason]).toEqual(['stalled', 'BuildTimeout']);
    expect(performance.now() - t0).toBeLessThan(8000);
    // The engine cancels the build when the request goes away; its step container must not live on.
    let stillRunning = true;
    for (let i = 0; i < 40 && stillRunning; i++) {
      stillRunning = (await docker('ps', '--no-trunc', '--format', '{{.Command}}')).includes(`sleep ${marker}`);
      if (stillRunning) await new Promise((r) => setTimeout(r, 250));
    }
    expect(stillRunning).toBe(false);
  });

  it('builds a local folder tagged by its content hash', async () => {
    const commit = await repo.commit(busyboxContext('from a path'));
    const dir = await checkout(commit);
    const hash = await hashBuildContext(await scanBuildContext(dir), { dockerfile: 'Dockerfile', buildArgs: {} });
    const res = await builder.build({ app: `${instance}-path`, instance, revision: hash, contextDir: dir, buildArgs: {} });
    expect(res.tag).toBe(`berth/${instance}-path:${hash.slice(0, 12)}`);
  });
});
