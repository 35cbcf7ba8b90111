import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { BuildOptions, ImageInfo } from '../../controllers/ports/container-runtime.js';
import { BerthError } from '../../controllers/ports/errors.js';
import { BuildFailedError, ImageBuilder, imageTag, listBuildLogs, type BuildRuntime } from '../../src/build/image-builder.js';
import { registerSecretValue } from '../../src/util/logger.js';

const REV = 'a'.repeat(40);
let state: string;
let ctxDir: string;

/** A runtime that replays `lines` as the engine's progress and then records the image (or not). */
function fakeRuntime(lines: string[], opts: { fail?: BerthError; hang?: boolean; noImage?: boolean } = {}): BuildRuntime & { calls: BuildOptions[]; bytes: number } {
  const images = new Map<string, ImageInfo>();
  const rt = {
    calls: [] as BuildOptions[],
    bytes: 0,
    async buildImage(context: Readable, o: BuildOptions, _signal?: AbortSignal, onLine?: (line: string) => void): Promise<void> {
      rt.calls.push(o);
      for await (const chunk of context as AsyncIterable<Buffer>) rt.bytes += chunk.length;
      for (const l of lines) onLine?.(l);
      if (opts.hang) await new Promise(() => undefined); // an engine that never answers, even when aborted
      if (opts.fail) throw opts.fail;
      if (!opts.noImage) images.set(o.tag, { id: 'sha256:feed', tags: [o.tag], labels: o.labels, created: 0 });
    },
    inspectImage: (ref: string): Promise<ImageInfo | undefined> => Promise.resolve(images.get(ref)),
  };
  return rt;
}

beforeEach(async () => {
  state = await mkdtemp(join(tmpdir(), 'berth-state-'));
  ctxDir = await mkdtemp(join(tmpdir(), 'berth-ctx-'));
  await writeFile(join(ctxDir, 'Dockerfile'), 'FROM scratch\n');
});
afterEach(async () => {
  await rm(state, { recursive: true, force: true });
  await rm(ctxDir, { recursive: true, force: true });
});

const req = { app: 'web', instance: 'i1', revision: REV, contextDir: '' };

describe('image builder', () => {
  it('tags berth/<app>:<rev12>, labels ownership and revision, and saves the log', async () => {
    const rt = fakeRuntime(['{"stream":"Step 1/1 : FROM scratch\\n"}', '{"stream":" ---> Running\\n"}']);
    const lines: string[] = [];
    const res = await new ImageBuilder(rt, { stateDir: state }).build({ ...req, contextDir: ctxDir, labels: { 'dev.berth.spec-hash': 'h', 'dev.berth.app': 'spoofed' } }, undefined, (l) => lines.push(l));
    expect(res.tag).toBe(`berth/web:${REV.slice(0, 12)}`);
    expect(imageTag('web', REV)).toBe(res.tag);
    expect(res.imageId).toBe('sha256:feed');
    expect(rt.calls[0]!.labels).toEqual({
      'dev.berth.spec-hash': 'h',
      'dev.berth.managed-by': 'berth',
      'dev.berth.instance': 'i1',
      'dev.berth.app': 'web',
      'dev.berth.revision': REV,
    });
    expect(rt.bytes).toBeGreaterThan(0);
    expect(lines).toContain('Step 1/1 : FROM scratch');
    const logs = await listBuildLogs(state, 'web');
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(new RegExp(`/builds/web/\\d{8}T\\d{6}\\.\\d{3}Z-${REV.slice(0, 12)}\\.log$`));
    expect(await readFile(logs[0]!, 'utf8')).toMatch(/Step 1\/1 : FROM scratch\n[\s\S]*# succeeded/);
  });

  it('detects a failure in the progress stream even when the engine answers success', async () => {
    const rt = fakeRuntime([
      '{"stream":"Step 2/3 : RUN false\\n"}',
      '{"errorDetail":{"code":1,"message":"The command \'/bin/sh -c false\' returned a non-zero code: 1"},"error":"The command \'/bin/sh -c false\' returned a non-zero code: 1"}',
    ]);
    const e = await new ImageBuilder(rt, { stateDir: state }).build({ ...req, contextDir: ctxDir }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BuildFailedError);
    const err = e as BuildFailedError;
    expect([err.kind, err.reason]).toEqual(['stalled', 'BuildFailed']);
    expect(err.message).toBe("Step 2/3 : RUN false: The command '/bin/sh -c false' returned a non-zero code: 1");
    expect(err.logTail).toContain('Step 2/3 : RUN false');
    expect(await readFile(err.logFile, 'utf8')).toContain('# failed: Step 2/3 : RUN false');
  });

  it('keeps the adapter\'s BuildFailed and a missing Dockerfile as stalled build failures with the log tail', async () => {
    const adapterFailure = new BerthError('stalled', 'BuildFailed', 'Step 1/2 : COPY nope /: COPY failed: file not found');
    const e1 = (await new ImageBuilder(fakeRuntime(['Step 1/2 : COPY nope /'], { fail: adapterFailure }), { stateDir: state })
      .build({ ...req, contextDir: ctxDir })
      .catch((x: unknown) => x)) as BuildFailedError;
    expect([e1.constructor, e1.reason, e1.message]).toEqual([BuildFailedError, 'BuildFailed', adapterFailure.message]);
    expect(e1.logTail).toContain('COPY nope');

    await rm(join(ctxDir, 'Dockerfile'));
    const e2 = (await new ImageBuilder(fakeRuntime([]), { stateDir: state }).build({ ...req, contextDir: ctxDir }).catch((x: unknown) => x)) as BuildFailedError;
    expect([e2.constructor, e2.kind, e2.reason]).toEqual([BuildFailedError, 'stalled', 'DockerfileNotFound']);
  });

  it('passes transient engine errors through unchanged (they are retried with backoff)', async () => {
    const down = new BerthError('transient', 'DockerUnavailable', 'connect ENOENT /var/run/docker.sock');
    await expect(new ImageBuilder(fakeRuntime([], { fail: down }), { stateDir: state }).build({ ...req, contextDir: ctxDir })).rejects.toBe(down);
  });

  it('fails a build that reports success without producing the image', async () => {
    await expect(new ImageBuilder(fakeRuntime([], { noImage: true }), { stateDir: state }).build({ ...req, contextDir: ctxDir })).rejects.toMatchObject({ reason: 'BuildFailed' });
  });

  it('stops waiting for a hung build at the timeout', async () => {
    const t0 = performance.now();
    const e = (await new ImageBuilder(fakeRuntime(['{"stream":"Step 1/1 : RUN sleep 3600\\n"}'], { hang: true }), { stateDir: state, timeoutMs: 200 })
      .build({ ...req, contextDir: ctxDir })
      .catch((x: unknown) => x)) as BuildFailedError;
    expect([e.kind, e.reason]).toEqual(['stalled', 'BuildTimeout']);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('returns the caller\'s abort (not a failure) when the caller cancels', async () => {
    const ac = new AbortController();
    const p = new ImageBuilder(fakeRuntime([], { hang: true }), { stateDir: state }).build({ ...req, contextDir: ctxDir }, ac.signal);
    setTimeout(() => ac.abort(), 50);
    const e = (await p.catch((x: unknown) => x)) as Error;
    expect(e.name).toBe('AbortError');
    expect(e).not.toBeInstanceOf(BuildFailedError);
  });

  it('caps the saved output: the head, a "truncated" marker, then the tail', async () => {
    const lines = Array.from({ length: 20_000 }, (_, i) => JSON.stringify({ stream: `line ${i} ${'x'.repeat(480)}\n` }));
    const res = await new ImageBuilder(fakeRuntime(lines), { stateDir: state, logHeadBytes: 64 << 10, logTailBytes: 16 << 10, logTailLines: 200 }).build({ ...req, contextDir: ctxDir });
    const text = await readFile(res.logFile, 'utf8');
    expect(text.length).toBeLessThan((64 + 16 + 2) << 10);
    expect(text).toContain('line 0 ');
    expect(text).toMatch(/\[\.\.\. \d+ lines truncated \.\.\.\]/);
    expect(text).toContain('line 19999 ');
    expect(text.trimEnd().split('\n').at(-1)).toMatch(/^# succeeded/);
  });

  it('keeps the last N logs per app', async () => {
    const b = new ImageBuilder(fakeRuntime([]), { stateDir: state, keepLogs: 3 });
    for (let i = 0; i < 5; i++) {
      await b.build({ ...req, revision: `${i}`.repeat(40), contextDir: ctxDir });
      await new Promise((r) => setTimeout(r, 5)); // distinct timestamps
    }
    const logs = await listBuildLogs(state, 'web');
    expect(logs.map((l) => l.slice(-16, -4))).toEqual(['222222222222', '333333333333', '444444444444']);
  });

  it('scrubs registered secret values from the log', async () => {
    registerSecretValue('hunter2-canary');
    const res = await new ImageBuilder(fakeRuntime(['{"stream":"token is hunter2-canary\\n"}']), { stateDir: state }).build({ ...req, contextDir: ctxDir });
    const text = await readFile(res.logFile, 'utf8');
    expect(text).not.toContain('hunter2-canary');
    expect(text).toContain('token is [redacted]');
  });

  it('refuses names and revisions that would make odd paths or tags', async () => {
    const b = new ImageBuilder(fakeRuntime([]), { stateDir: state });
    await expect(b.build({ ...req, app: '../x', contextDir: ctxDir })).rejects.toMatchObject({ reason: 'InvalidName' });
    await expect(b.build({ ...req, revision: 'main', contextDir: ctxDir })).rejects.toMatchObject({ reason: 'InvalidRevision' });
  });
});
