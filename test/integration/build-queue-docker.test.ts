// The build slot with real git checkouts and real Docker builds: 10 pushes within 2 s to one
// app while two other apps build.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerContainerRuntime } from '../../src/docker/docker-container-runtime.js';
import type { BuildRuntime } from '../../src/build/image-builder.js';
import { ImageBuilder } from '../../src/build/image-builder.js';
import { BuildQueue } from '../../src/build/build-queue.js';
import { CliGitSource } from '../../src/git/git-source.js';
import { cleanupInstance, docker, requireDocker, testInstance } from '../helpers/docker.js';
import { busyboxContext, createTestRepo, type TestRepo } from '../helpers/git.js';

const instance = testInstance('bq');
const repos: TestRepo[] = [];
let state: string;

beforeAll(async () => {
  await requireDocker();
  state = await mkdtemp(join(tmpdir(), 'berth-bq-state-'));
});
afterAll(async () => {
  await cleanupInstance(instance);
  for (const r of repos) await r.cleanup();
  await rm(state, { recursive: true, force: true });
});

describe('build slot with real builds', () => {
  it('10 pushes in 2 s to one app while two others build: one build at a time, at most 2 builds for it, its last commit built', async () => {
    const real = DockerContainerRuntime.fromDockerHost(process.env.DOCKER_HOST);
    let active = 0;
    let maxActive = 0;
    const dockerBuilds: string[] = [];
    // Counts what reaches the engine: the proof of "never two builds at once".
    const counting: BuildRuntime = {
      inspectImage: (ref, signal) => real.inspectImage(ref, signal),
      async buildImage(context, opts, signal, onLine) {
        active++;
        maxActive = Math.max(maxActive, active);
        dockerBuilds.push(opts.labels['dev.berth.app']!);
        try {
          await real.buildImage(context, opts, signal, onLine);
        } finally {
          active--;
        }
      },
    };
    const builder = new ImageBuilder(counting, { stateDir: state });
    const git = new CliGitSource();
    const queue = new BuildQueue();

    const apps = ['a', 'b', 'c'].map((n) => `${instance}-${n}`);
    for (let i = 0; i < 3; i++) repos.push(await createTestRepo());
    const build = (app: string, repo: TestRepo, commit: string) => async (signal: AbortSignal) => {
      const dir = join(state, 'git', app, commit.slice(0, 12));
      await git.checkout(repo.url, commit, dir, signal);
      // A slow step keeps the two other apps busy while the third is spammed.
      return builder.build({ app, instance, revision: commit, contextDir: dir, buildArgs: {} }, signal);
    };
    const slow = ['RUN ["/bin/busybox", "sleep", "1"]'];
    const ca = await repos[0]!.commit(busyboxContext(`a ${instance}`, slow));
    const cb = await repos[1]!.commit(busyboxContext(`b ${instance}`, slow));
    const spamCommits: string[] = [];
    for (let i = 1; i <= 10; i++) spamCommits.push(await repos[2]!.commit(busyboxContext(`c${i} ${instance}`)));

    const others = [queue.enqueue(apps[0]!, ca, build(apps[0]!, repos[0]!, ca)), queue.enqueue(apps[1]!, cb, build(apps[1]!, repos[1]!, cb))];
    const spam: Promise<{ tag: string }>[] = [];
    const t0 = performance.now();
    for (const c of spamCommits) {
      spam.push(queue.enqueue(apps[2]!, c, build(apps[2]!, repos[2]!, c)));
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(performance.now() - t0).toBeLessThan(2500);
    const results = await Promise.allSettled([...others, ...spam]);

    expect(results.slice(0, 2).map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
    const last = results.at(-1)!;
    expect(last.status).toBe('fulfilled');
    const lastCommit = spamCommits.at(-1)!;
    expect((last as PromiseFulfilledResult<{ tag: string }>).value.tag).toBe(`berth/${apps[2]}:${lastCommit.slice(0, 12)}`);
    expect(results.slice(2, -1).every((r) => r.status === 'rejected')).toBe(true);
    expect(maxActive).toBe(1);
    expect(dockerBuilds.filter((a) => a === apps[2]).length).toBeLessThanOrEqual(2);
    const out = await docker('run', '--rm', '--label', `dev.berth.instance=${instance}`, `berth/${apps[2]}:${lastCommit.slice(0, 12)}`);
    expect(out).toBe(`c10 ${instance}`);
    console.log(`engine builds: ${dockerBuilds.map((a) => a.slice(-1)).join(' ')}; total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  });
});
