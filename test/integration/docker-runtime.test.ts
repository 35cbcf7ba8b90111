// The Docker adapter against the real engine: lifecycle, error classification, the security
// defaults as `docker inspect` shows them, pulls, builds, logs and the event stream (including
// a reconnect after the socket drops, through a proxy we cut, never the shared dockerd).
import { createHash } from 'node:crypto';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerSpec, RuntimeEvent } from '../../controllers/ports/container-runtime.js';
import { BerthError } from '../../controllers/ports/errors.js';
import { LABEL_APP, ownerLabels } from '../../src/api/labels.js';
import { DockerContainerRuntime } from '../../src/docker/docker-container-runtime.js';
import { IMAGES, cleanupInstance, docker, requireDocker, testInstance } from '../helpers/docker.js';

const instance = testInstance('rt');
const labels = ownerLabels(instance);
const runtime = new DockerContainerRuntime();
let serial = 0;

function spec(overrides: Partial<ContainerSpec> = {}): ContainerSpec {
  serial += 1;
  return {
    name: `${instance}-c${serial}`,
    image: IMAGES.httpdV1,
    labels: ownerLabels(instance, `app${serial}`),
    env: ['GREETING=hello'],
    port: 80,
    memoryBytes: 64 * 1024 * 1024,
    nanoCpus: 250_000_000,
    pidsLimit: 64,
    mounts: [],
    network: instance,
    aliases: [`app${serial}`],
    stopTimeoutSeconds: 2,
    ...overrides,
  };
}

function reasonOf(p: Promise<unknown>): Promise<{ kind: string; reason: string; message: string }> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => {
      expect(e).toBeInstanceOf(BerthError);
      const b = e as BerthError;
      return { kind: b.kind, reason: b.reason, message: b.message };
    },
  );
}

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function readAll(stream: Readable): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text;
}

function firstLine(text: string): string | undefined {
  return text.includes('\n') ? text.slice(0, text.indexOf('\n')) : undefined;
}

function buildContext(dockerfile: string): Readable {
  const pack = tar.pack();
  pack.entry({ name: 'Dockerfile' }, dockerfile);
  pack.finalize();
  return pack as unknown as Readable;
}

beforeAll(async () => {
  await requireDocker();
  await runtime.ensureNetwork(instance, labels);
});

afterAll(async () => {
  await cleanupInstance(instance);
});

describe('DockerContainerRuntime on the real engine', () => {
  it('creates, starts, stops and removes a container; 304 and "already gone" are success', async () => {
    const s = spec();
    const t0 = performance.now();
    const id = await runtime.createContainer(s);
    const t1 = performance.now();
    await runtime.startContainer(id);
    const t2 = performance.now();
    console.info(`create ${Math.round(t1 - t0)} ms, start ${Math.round(t2 - t1)} ms`);

    await runtime.startContainer(id);
    expect((await runtime.inspectContainer(id))?.state).toBe('running');
    const t3 = performance.now();
    await runtime.stopContainer(id, 5);
    console.info(`stop ${Math.round(performance.now() - t3)} ms (Init forwards SIGTERM)`);
    await runtime.stopContainer(id, 5);
    expect((await runtime.inspectContainer(id))?.state).toBe('exited');
    await runtime.removeContainer(id);
    await runtime.removeContainer(id);
    expect(await runtime.inspectContainer(id)).toBeUndefined();
  });

  it('reports Conflict when an unmanaged container squats the name, and leaves it alone', async () => {
    const s = spec();
    await docker('create', '--name', s.name, '--label', `dev.berth.instance=${instance}`, IMAGES.httpdV1);
    expect(await reasonOf(runtime.createContainer(s))).toMatchObject({ kind: 'waiting', reason: 'Conflict' });
    expect(await docker('inspect', '--format', '{{.State.Status}}', s.name)).toBe('created');
  });

  it('inspects and lists what the reconciler needs', async () => {
    const s = spec();
    const id = await runtime.createContainer(s);
    await runtime.startContainer(id);
    const details = await runtime.inspectContainer(id);
    expect(details).toMatchObject({
      id,
      name: s.name,
      // The engine adds the image's labels (dev.berth.test here).
      labels: { ...s.labels, 'dev.berth.test': '1' },
      image: IMAGES.httpdV1,
      state: 'running',
      exitCode: 0,
      oomKilled: false,
      restartCount: 0,
    });
    expect(details?.imageId).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(details?.env).toContain('GREETING=hello');
    expect(details?.networks[instance]).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(Date.parse(details?.startedAt ?? '')).toBeGreaterThan(0);
    expect(details?.finishedAt).toBeUndefined();
    expect(Math.abs((details?.created ?? 0) - Date.now() / 1000)).toBeLessThan(120);

    const listed = await runtime.listContainers({ [LABEL_APP]: s.labels[LABEL_APP]!, ...labels });
    expect(listed).toEqual([
      {
        id,
        name: s.name,
        labels: details?.labels,
        image: IMAGES.httpdV1,
        imageId: details?.imageId,
        state: 'running',
        created: details?.created,
        networks: { [instance]: details?.networks[instance] },
      },
    ]);
    // The alias resolves for other containers on the network.
    const client = await runtime.createContainer(spec({ command: ['wget', '-qO-', `http://${s.aliases[0]}/`] }));
    await runtime.startContainer(client);
    // One-shot commands are restarted by the unless-stopped policy: read the first run's output.
    const fetched = await waitFor('the client output', async () => firstLine(await readAll(await runtime.containerLogs(client, { follow: false }))));
    expect(fetched).toBe('hello v1');
  });

  it('applies the security defaults whatever the spec, as docker inspect shows', async () => {
    const s = spec({ memoryBytes: 96 * 1024 * 1024, nanoCpus: 500_000_000, pidsLimit: 77 });
    const id = await runtime.createContainer(s);
    const [info] = JSON.parse(await docker('inspect', id)) as [
      { HostConfig: Record<string, unknown>; Config: { ExposedPorts: Record<string, unknown>; StopTimeout: number } },
    ];
    expect(info.HostConfig).toMatchObject({
      Init: true,
      Privileged: false,
      SecurityOpt: ['no-new-privileges'],
      Memory: 96 * 1024 * 1024,
      MemorySwap: 96 * 1024 * 1024,
      NanoCpus: 500_000_000,
      PidsLimit: 77,
      RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 },
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
      NetworkMode: instance,
      PublishAllPorts: false,
      IpcMode: 'private',
    });
    expect(info.HostConfig.CapAdd ?? null).toBeNull();
    expect(info.HostConfig.PortBindings ?? {}).toEqual({});
    expect(info.Config.ExposedPorts).toEqual({ '80/tcp': {} });
    expect(info.Config.StopTimeout).toBe(2);
  });

  it('refuses forbidden mounts and network modes before asking the engine', async () => {
    for (const source of ['/', '/etc', '/var/run/docker.sock', '/proc', '/srv/../dev']) {
      const s = spec({ mounts: [{ type: 'bind', source, target: '/host', readOnly: true }] });
      expect(await reasonOf(runtime.createContainer(s))).toMatchObject({ kind: 'stalled', reason: 'ForbiddenMount' });
      expect(await docker('ps', '-aq', '--filter', `name=^${s.name}$`)).toBe('');
    }
    for (const network of ['host', 'none', 'container:abc']) {
      expect(await reasonOf(runtime.createContainer(spec({ network })))).toMatchObject({ kind: 'stalled', reason: 'ForbiddenNetworkMode' });
    }
  });

  it('mounts a named volume it was given and leaves it labelled', async () => {
    const volume = `${instance}-data`;
    await runtime.ensureVolume(volume, labels);
    await runtime.ensureVolume(volume, labels);
    const id = await runtime.createContainer(spec({ mounts: [{ type: 'volume', source: volume, target: '/data', readOnly: false }] }));
    expect(await runtime.listVolumes(labels)).toEqual([{ name: volume, labels }]);
    expect(await reasonOf(runtime.removeVolume(volume))).toMatchObject({ reason: 'Conflict' });
    await runtime.removeContainer(id);
    await runtime.removeVolume(volume);
    await runtime.removeVolume(volume);
    expect(await runtime.listVolumes(labels)).toEqual([]);
  });

  it('classifies image errors: missing, invalid, unreachable registry', async () => {
    expect(await reasonOf(runtime.createContainer(spec({ image: `${instance}/missing:1` })))).toMatchObject({ kind: 'waiting', reason: 'ImageNotFound' });
    expect(await reasonOf(runtime.createContainer(spec({ image: 'INVALID::ref' })))).toMatchObject({ kind: 'stalled', reason: 'InvalidImageName' });
    expect(await reasonOf(runtime.pullImage('INVALID::ref'))).toMatchObject({ kind: 'stalled', reason: 'InvalidImageName' });
    expect(await reasonOf(runtime.inspectImage('INVALID::ref'))).toMatchObject({ kind: 'stalled', reason: 'InvalidImageName' });
    const pull = await reasonOf(runtime.pullImage(`127.0.0.1:1/${instance}:1`, AbortSignal.timeout(30_000)));
    expect(pull).toMatchObject({ kind: 'transient', reason: 'ImagePullFailed' });
    expect(pull.message).toMatch(/connection refused/);
    expect(await runtime.inspectImage(`${instance}/missing:1`)).toBeUndefined();
    await runtime.removeImage(`${instance}/missing:1`);
  });

  it('reports a registry failure that arrives inside the pull stream as ImagePullFailed', async () => {
    const registry = await fakeRegistry();
    try {
      const progress: string[] = [];
      const ref = `127.0.0.1:${registry.port}/${instance}/app:1`;
      const failure = await reasonOf(runtime.pullImage(ref, AbortSignal.timeout(30_000), (l) => progress.push(l)));
      expect(failure).toMatchObject({ kind: 'transient', reason: 'ImagePullFailed' });
      expect(progress.join('\n')).toMatch(/Pulling from/);
      expect(await runtime.inspectImage(ref)).toBeUndefined();
    } finally {
      registry.server.close();
    }
  });

  it('builds from a tar stream, labels the image, and reports a failing RUN as BuildFailed with its message', async () => {
    const tag = `${instance}/built:1`;
    const lines: string[] = [];
    const t0 = performance.now();
    await runtime.buildImage(
      buildContext(`FROM ${IMAGES.httpdV1}\nARG STAMP\nRUN echo built at $STAMP > /www/stamp\n`),
      { tag, dockerfile: 'Dockerfile', buildArgs: { STAMP: instance }, labels: ownerLabels(instance, 'built'), memoryBytes: 128 * 1024 * 1024 },
      AbortSignal.timeout(60_000),
      (l) => lines.push(l),
    );
    console.info(`build ${Math.round(performance.now() - t0)} ms`);
    expect(lines.some((l) => /^Step \d+\/\d+ : RUN echo built/.test(l))).toBe(true);
    const image = await runtime.inspectImage(tag);
    expect(image?.tags).toContain(tag);
    expect(image?.labels).toMatchObject(ownerLabels(instance, 'built'));
    expect((await runtime.listImages(labels)).map((i) => i.id)).toContain(image?.id);
    const cat = await runtime.createContainer(spec({ image: tag, command: ['cat', '/www/stamp'] }));
    await runtime.startContainer(cat);
    const stamp = await waitFor('the stamp', async () => firstLine(await readAll(await runtime.containerLogs(cat, { follow: false }))));
    expect(stamp).toBe(`built at ${instance}`);

    const failure = await reasonOf(
      runtime.buildImage(
        // A single failing step: a successful earlier RUN would leave an unlabelled cache layer behind.
        buildContext(`FROM ${IMAGES.httpdV1}\nRUN echo about to fail >&2; exit 3\n`),
        { tag: `${instance}/broken:1`, dockerfile: 'Dockerfile', buildArgs: {}, labels },
        AbortSignal.timeout(60_000),
      ),
    );
    expect(failure).toMatchObject({ kind: 'stalled', reason: 'BuildFailed' });
    expect(failure.message).toMatch(/Step \d+\/\d+ : RUN echo about to fail.*returned a non-zero code: 3/);

    const parse = await reasonOf(
      runtime.buildImage(buildContext('FROMM scratch\n'), { tag: `${instance}/parse:1`, dockerfile: 'Dockerfile', buildArgs: {}, labels }),
    );
    expect(parse).toMatchObject({ kind: 'stalled', reason: 'BuildFailed' });
    expect(parse.message).toMatch(/unknown instruction/i);
  });

  it('stops a build when its signal aborts, without hanging', async () => {
    const ac = new AbortController();
    const lines: string[] = [];
    const started = performance.now();
    const build = runtime.buildImage(
      buildContext(`FROM ${IMAGES.httpdV1}\nRUN echo sleeping; sleep 60\n`),
      { tag: `${instance}/slow:1`, dockerfile: 'Dockerfile', buildArgs: {}, labels },
      ac.signal,
      (l) => lines.push(l),
    );
    await waitFor('the RUN step to start', () => lines.some((l) => l.includes('sleeping')) || undefined, 30_000);
    ac.abort();
    expect(await reasonOf(build)).toMatchObject({ reason: 'Aborted' });
    expect(performance.now() - started).toBeLessThan(20_000);
    const timedOut = await reasonOf(
      runtime.buildImage(
        buildContext(`FROM ${IMAGES.httpdV1}\nRUN sleep 60\n`),
        { tag: `${instance}/slow:2`, dockerfile: 'Dockerfile', buildArgs: {}, labels },
        AbortSignal.timeout(1_500),
      ),
    );
    expect(timedOut).toMatchObject({ kind: 'transient', reason: 'Timeout' });
    expect(await runtime.inspectImage(`${instance}/slow:1`)).toBeUndefined();
  });

  it('leaves an image in use alone and treats a missing one as removed', async () => {
    const tag = `${instance}/inuse:1`;
    await runtime.buildImage(buildContext(`FROM ${IMAGES.httpdV1}\nLABEL purpose=${instance}\n`), {
      tag,
      dockerfile: 'Dockerfile',
      buildArgs: {},
      labels,
    });
    await runtime.createContainer(spec({ image: tag }));
    await runtime.removeImage(tag);
    expect(await runtime.inspectImage(tag)).toBeDefined();
  });

  it('demultiplexes logs, and a follow ends when its signal aborts', async () => {
    const id = await runtime.createContainer(
      spec({ command: ['sh', '-c', 'echo to-stdout; echo to-stderr >&2; sleep 1; echo later; sleep 100'] }),
    );
    await runtime.startContainer(id);
    const ac = new AbortController();
    const follow = await runtime.containerLogs(id, { follow: true, signal: ac.signal });
    let followed = '';
    follow.on('data', (c) => (followed += String(c)));
    const ended = new Promise((resolve) => follow.once('end', resolve));
    await waitFor('the later line', () => followed.includes('later\n') || undefined);
    ac.abort();
    await ended;
    expect(followed).toContain('to-stdout\n');
    expect(followed).toContain('to-stderr\n');
    // No frame header bytes leak into the text.
    expect([...followed].some((ch) => ch.charCodeAt(0) < 9)).toBe(false);

    const all = await readAll(await runtime.containerLogs(id, { follow: false }));
    expect(all.split('\n').sort()).toEqual(['', 'later', 'to-stderr', 'to-stdout']);
    expect(await readAll(await runtime.containerLogs(id, { follow: false, tail: 1 }))).toBe('later\n');
  });

  it('ensures a network once even when asked concurrently, from this runtime and another', async () => {
    const name = `${instance}-n2`;
    const other = new DockerContainerRuntime({ socketPath: '/var/run/docker.sock' });
    const ids = await Promise.all([
      runtime.ensureNetwork(name, labels),
      runtime.ensureNetwork(name, labels),
      other.ensureNetwork(name, labels),
      other.ensureNetwork(name, labels),
    ]);
    expect(new Set(ids).size).toBe(1);
    expect(await docker('network', 'ls', '-q', '--filter', `name=^${name}$`)).toBe(ids[0].slice(0, 12));
    expect(await runtime.networkExists(name)).toBe(true);
    expect(await runtime.networkExists(`${instance}-absent`)).toBe(false);

    const id = await runtime.createContainer(spec());
    await runtime.connectNetwork(name, id, ['extra']);
    await runtime.connectNetwork(name, id, ['extra']);
    expect(Object.keys((await runtime.inspectContainer(id))?.networks ?? {}).sort()).toEqual([instance, name].sort());
  });

  it('reports an engine it cannot reach as DockerUnavailable', async () => {
    const nowhere = new DockerContainerRuntime(`unix://${join(tmpdir(), `${instance}-none.sock`)}`);
    expect(await reasonOf(nowhere.ping())).toMatchObject({ kind: 'transient', reason: 'DockerUnavailable' });
    expect(await reasonOf(nowhere.listContainers(labels))).toMatchObject({ kind: 'transient', reason: 'DockerUnavailable' });
    expect(await reasonOf(DockerContainerRuntime.fromDockerHost('tcp://127.0.0.1:1').ping())).toMatchObject({ reason: 'DockerUnavailable' });
    await runtime.ping();
  });
});

describe('DockerContainerRuntime events', () => {
  it('delivers start, die and network disconnect for labelled containers only', async () => {
    const events: RuntimeEvent[] = [];
    const connections: boolean[] = [];
    const ac = new AbortController();
    runtime.watchEvents(labels, (e) => events.push(e), (c) => connections.push(c), ac.signal);
    await waitFor('the connection', () => connections[0]);
    try {
      const s = spec();
      const id = await runtime.createContainer(s);
      const t0 = performance.now();
      await runtime.startContainer(id);
      await waitFor('start', () => events.find((e) => e.id === id && e.action === 'start'));
      await docker('kill', id);
      const die = await waitFor('die', () => events.find((e) => e.id === id && e.action === 'die'));
      console.info(`start -> die event seen after ${Math.round(performance.now() - t0)} ms`);
      expect(die).toMatchObject({ type: 'container', attributes: { name: s.name, exitCode: '137', [LABEL_APP]: s.labels[LABEL_APP] } });

      await runtime.startContainer(id);
      await docker('network', 'disconnect', instance, id);
      const disconnect = await waitFor('disconnect', () =>
        events.find((e) => e.type === 'network' && e.action === 'disconnect' && e.attributes.container === id),
      );
      expect(disconnect.attributes).toMatchObject({ network: instance, name: s.name, [LABEL_APP]: s.labels[LABEL_APP] });

      const stranger = `${instance}-stranger`;
      await docker('run', '-d', '--name', stranger, '--label', `dev.berth.instance=${instance}`, IMAGES.httpdV1);
      await docker('rm', '-f', stranger);
      await runtime.removeContainer(id);
      await waitFor('destroy', () => events.find((e) => e.id === id && e.action === 'destroy'));
      expect(events.filter((e) => e.attributes.name === stranger)).toEqual([]);
      expect(connections).toEqual([true]);
    } finally {
      ac.abort();
    }
  });

  it('reports an engine that is not there yet once, then connects when it appears', async () => {
    const proxy = await socketProxy('/var/run/docker.sock', false);
    const late = new DockerContainerRuntime({ socketPath: proxy.path }, { eventBackoff: { minDelayMs: 50, maxDelayMs: 200 } });
    const connections: [boolean, string | undefined][] = [];
    const ac = new AbortController();
    late.watchEvents(labels, () => undefined, (c, err) => connections.push([c, err && (err as BerthError).reason]), ac.signal);
    try {
      await waitFor('the failure', () => connections.length === 1 || undefined);
      await new Promise((r) => setTimeout(r, 500));
      expect(connections).toEqual([[false, 'DockerUnavailable']]);
      await proxy.listen();
      await waitFor('the connection', () => connections.length === 2 || undefined);
      expect(connections[1]).toEqual([true, undefined]);
    } finally {
      ac.abort();
      await proxy.close();
    }
  });

  it('reconnects after the socket drops, replays what it missed once, and stops cleanly on abort', async () => {
    const proxy = await socketProxy('/var/run/docker.sock');
    const viaProxy = new DockerContainerRuntime({ socketPath: proxy.path }, { eventBackoff: { minDelayMs: 50, maxDelayMs: 400 } });
    const events: RuntimeEvent[] = [];
    const connections: [boolean, string | undefined][] = [];
    const ac = new AbortController();
    viaProxy.watchEvents(labels, (e) => events.push(e), (c, err) => connections.push([c, err && (err as BerthError).reason]), ac.signal);
    try {
      await waitFor('the first connection', () => connections.length === 1 || undefined);
      const before = await runtime.createContainer(spec());
      await waitFor('an event before the cut', () => events.find((e) => e.id === before));

      await proxy.cut();
      await waitFor('the loss', () => connections.length === 2 || undefined);
      expect(connections[1]).toEqual([false, 'DockerUnavailable']);

      const missed = await runtime.createContainer(spec());
      await runtime.startContainer(missed);
      await new Promise((r) => setTimeout(r, 600));
      expect(connections).toHaveLength(2);

      await proxy.listen();
      await waitFor('the reconnection', () => connections.length === 3 || undefined);
      expect(connections.map((c) => c[0])).toEqual([true, false, true]);
      await waitFor('the missed start', () => events.find((e) => e.id === missed && e.action === 'start'));
      await new Promise((r) => setTimeout(r, 500));
      const count = (id: string, action: string): number => events.filter((e) => e.id === id && e.action === action).length;
      expect(count(missed, 'create')).toBe(1);
      expect(count(missed, 'start')).toBe(1);
      expect(count(before, 'create')).toBe(1);
    } finally {
      ac.abort();
    }
    const after = connections.length;
    await proxy.cut();
    await runtime.startContainer(await runtime.createContainer(spec()));
    await new Promise((r) => setTimeout(r, 500));
    expect(connections).toHaveLength(after);
    await proxy.close();
  });
});

/** A unix-socket proxy to the engine (listening at once unless told otherwise) that a test can cut (drop every connection, stop listening) and restore. */
async function socketProxy(target: string, listening = true): Promise<{ path: string; cut(): Promise<void>; listen(): Promise<void>; close(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-proxy-'));
  const path = join(dir, 'docker.sock');
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const listen = (): Promise<void> =>
    new Promise((resolve) => {
      server = createServer((client) => {
        const upstream = connect(target);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('error', () => undefined);
          s.on('close', () => {
            sockets.delete(s);
            client.destroy();
            upstream.destroy();
          });
        }
        client.pipe(upstream);
        upstream.pipe(client);
      });
      server.listen(path, resolve);
    });
  const cut = async (): Promise<void> => {
    const s = server;
    server = undefined;
    for (const socket of sockets) socket.destroy();
    if (s) await new Promise((resolve) => s.close(resolve));
  };
  if (listening) await listen();
  return {
    path,
    cut,
    listen,
    close: async () => {
      await cut();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A registry on loopback (the engine treats 127.0.0.0/8 as insecure, so plain HTTP works) that
 * serves a manifest but no blobs: the pull starts, then fails inside the progress stream.
 */
async function fakeRegistry(): Promise<{ server: HttpServer; port: number }> {
  const digest = (c: string): string => `sha256:${c.repeat(64)}`;
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: 100, digest: digest('c') },
    layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: 100, digest: digest('d') }],
  });
  const server = createHttpServer((req, res) => {
    if (req.url === '/v2/') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Docker-Distribution-API-Version': 'registry/2.0' }).end('{}');
    } else if (req.url?.includes('/manifests/')) {
      res
        .writeHead(200, {
          'Content-Type': 'application/vnd.docker.distribution.manifest.v2+json',
          'Docker-Content-Digest': `sha256:${createHash('sha256').update(manifest).digest('hex')}`,
          'Content-Length': Buffer.byteLength(manifest),
        })
        .end(req.method === 'HEAD' ? undefined : manifest);
    } else {
      res.writeHead(500, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"UNKNOWN","message":"blob store broken"}]}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}
