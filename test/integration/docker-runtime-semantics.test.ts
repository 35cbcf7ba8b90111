// One table of engine semantics the reconciler relies on (304, 409, 404, idempotent removes,
// the security refusals), run against the real adapter and the in-memory runtime: machine tests
// on MemoryRuntime are only worth something if both answer the same.
import tar from 'tar-stream';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerRuntime, ContainerSpec } from '../../controllers/ports/container-runtime.js';
import { BerthError } from '../../controllers/ports/errors.js';
import { ownerLabels } from '../../src/api/labels.js';
import { DockerContainerRuntime } from '../../src/docker/docker-container-runtime.js';
import { IMAGES, cleanupInstance, requireDocker, testInstance } from '../helpers/docker.js';
import { MemoryRuntime } from '../helpers/memory-runtime.js';

interface World {
  rt: ContainerRuntime;
  instance: string;
  /** An image only this test's containers use (removing it must not touch shared images). */
  ownImage: string;
  spec(overrides?: Partial<ContainerSpec>): ContainerSpec;
}

async function failure(p: Promise<unknown>): Promise<{ kind: string; reason: string }> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(BerthError);
    return { kind: (e as BerthError).kind, reason: (e as BerthError).reason };
  }
  throw new Error('expected a rejection');
}

async function started(w: World, overrides?: Partial<ContainerSpec>): Promise<string> {
  const id = await w.rt.createContainer(w.spec(overrides));
  await w.rt.startContainer(id);
  return id;
}

const MISSING_ID = 'f'.repeat(64);

const table: [string, (w: World) => Promise<void>][] = [
  ['starting a running container succeeds (304)', async (w) => {
    const id = await started(w);
    await w.rt.startContainer(id);
    expect((await w.rt.inspectContainer(id))?.state).toBe('running');
  }],
  ['stopping a stopped container succeeds (304)', async (w) => {
    const id = await started(w);
    await w.rt.stopContainer(id, 2);
    await w.rt.stopContainer(id, 2);
    expect((await w.rt.inspectContainer(id))?.state).toBe('exited');
  }],
  ['stopping a container that never started succeeds and leaves it created', async (w) => {
    const id = await w.rt.createContainer(w.spec());
    await w.rt.stopContainer(id, 2);
    expect((await w.rt.inspectContainer(id))?.state).toBe('created');
  }],
  ['creating with a taken name is Conflict (waiting)', async (w) => {
    const s = w.spec();
    await w.rt.createContainer(s);
    expect(await failure(w.rt.createContainer(s))).toEqual({ kind: 'waiting', reason: 'Conflict' });
  }],
  ['a missing container: inspect gives undefined, remove succeeds, start and stop are NotFound', async (w) => {
    expect(await w.rt.inspectContainer(MISSING_ID)).toBeUndefined();
    await w.rt.removeContainer(MISSING_ID);
    expect(await failure(w.rt.startContainer(MISSING_ID))).toEqual({ kind: 'waiting', reason: 'NotFound' });
    expect(await failure(w.rt.stopContainer(MISSING_ID, 1))).toEqual({ kind: 'waiting', reason: 'NotFound' });
  }],
  ['a removed container is gone from inspect and list; removing it again succeeds', async (w) => {
    const id = await started(w);
    await w.rt.removeContainer(id);
    await w.rt.removeContainer(id);
    expect(await w.rt.inspectContainer(id)).toBeUndefined();
    expect((await w.rt.listContainers(ownerLabels(w.instance))).map((c) => c.id)).not.toContain(id);
  }],
  ['creating with a missing image is ImageNotFound (waiting), so the caller pulls', async (w) => {
    expect(await failure(w.rt.createContainer(w.spec({ image: `${w.instance}/absent:1` })))).toEqual({ kind: 'waiting', reason: 'ImageNotFound' });
  }],
  ['an invalid image name is InvalidImageName (stalled) on create, pull and inspect', async (w) => {
    expect(await failure(w.rt.createContainer(w.spec({ image: 'INVALID::ref' })))).toEqual({ kind: 'stalled', reason: 'InvalidImageName' });
    expect(await failure(w.rt.pullImage('INVALID::ref'))).toEqual({ kind: 'stalled', reason: 'InvalidImageName' });
    expect(await failure(w.rt.inspectImage('INVALID::ref'))).toEqual({ kind: 'stalled', reason: 'InvalidImageName' });
  }],
  ['a missing network is noticed at start, as NotFound (waiting)', async (w) => {
    const id = await w.rt.createContainer(w.spec({ network: `${w.instance}-absent` }));
    expect(await failure(w.rt.startContainer(id))).toEqual({ kind: 'waiting', reason: 'NotFound' });
  }],
  ['images: a missing one inspects as undefined and removes fine; one in use is left alone', async (w) => {
    expect(await w.rt.inspectImage(`${w.instance}/absent:1`)).toBeUndefined();
    await w.rt.removeImage(`${w.instance}/absent:1`);
    await w.rt.createContainer(w.spec({ image: w.ownImage }));
    await w.rt.removeImage(w.ownImage);
    expect(await w.rt.inspectImage(w.ownImage)).toBeDefined();
  }],
  ['ensureNetwork is idempotent and networkExists agrees', async (w) => {
    const name = `${w.instance}-n${Math.random().toString(16).slice(2, 8)}`;
    expect(await w.rt.networkExists(name)).toBe(false);
    const id = await w.rt.ensureNetwork(name, ownerLabels(w.instance));
    expect(await w.rt.ensureNetwork(name, ownerLabels(w.instance))).toBe(id);
    expect(await w.rt.networkExists(name)).toBe(true);
  }],
  ['connecting twice succeeds; connecting a running container to a missing network is NotFound', async (w) => {
    const id = await started(w);
    const extra = `${w.instance}-extra`;
    await w.rt.ensureNetwork(extra, ownerLabels(w.instance));
    await w.rt.connectNetwork(extra, id, ['a']);
    await w.rt.connectNetwork(extra, id, ['a']);
    expect(Object.keys((await w.rt.inspectContainer(id))?.networks ?? {})).toContain(extra);
    expect(await failure(w.rt.connectNetwork(`${w.instance}-absent`, id, []))).toEqual({ kind: 'waiting', reason: 'NotFound' });
  }],
  ['volumes: ensure is idempotent, removing one in use is Conflict, removing a missing one succeeds', async (w) => {
    const name = `${w.instance}-vol`;
    await w.rt.ensureVolume(name, ownerLabels(w.instance));
    await w.rt.ensureVolume(name, ownerLabels(w.instance));
    const id = await w.rt.createContainer(w.spec({ mounts: [{ type: 'volume', source: name, target: '/data', readOnly: false }] }));
    expect(await failure(w.rt.removeVolume(name))).toEqual({ kind: 'waiting', reason: 'Conflict' });
    await w.rt.removeContainer(id);
    await w.rt.removeVolume(name);
    await w.rt.removeVolume(name);
    expect(await w.rt.listVolumes(ownerLabels(w.instance))).toEqual([]);
  }],
  ['a forbidden mount or network mode is refused (stalled) and nothing is created', async (w) => {
    const s = w.spec({ mounts: [{ type: 'bind', source: '/var/run/docker.sock', target: '/sock', readOnly: true }] });
    expect(await failure(w.rt.createContainer(s))).toEqual({ kind: 'stalled', reason: 'ForbiddenMount' });
    expect(await failure(w.rt.createContainer(w.spec({ network: 'host' })))).toEqual({ kind: 'stalled', reason: 'ForbiddenNetworkMode' });
    expect(await w.rt.inspectContainer(s.name)).toBeUndefined();
  }],
  ['an aborted signal rejects as Aborted before anything happens', async (w) => {
    const s = w.spec();
    expect(await failure(w.rt.createContainer(s, AbortSignal.abort()))).toEqual({ kind: 'transient', reason: 'Aborted' });
    expect(await failure(w.rt.listContainers({}, AbortSignal.abort()))).toEqual({ kind: 'transient', reason: 'Aborted' });
    expect(await w.rt.inspectContainer(s.name)).toBeUndefined();
  }],
];

function makeSpec(instance: string): (overrides?: Partial<ContainerSpec>) => ContainerSpec {
  let n = 0;
  return (overrides = {}) => {
    n += 1;
    return {
      name: `${instance}-${n}`,
      image: IMAGES.httpdV1,
      labels: ownerLabels(instance, `a${n}`),
      env: [],
      port: 80,
      memoryBytes: 32 * 1024 * 1024,
      nanoCpus: 100_000_000,
      pidsLimit: 32,
      mounts: [],
      network: instance,
      aliases: [],
      stopTimeoutSeconds: 1,
      ...overrides,
    };
  };
}

describe('the Docker adapter', () => {
  const instance = testInstance('sem');
  const world: World = { rt: new DockerContainerRuntime(), instance, ownImage: `${instance}/own:1`, spec: makeSpec(instance) };

  beforeAll(async () => {
    await requireDocker();
    await world.rt.ensureNetwork(instance, ownerLabels(instance));
    const pack = tar.pack();
    pack.entry({ name: 'Dockerfile' }, `FROM ${IMAGES.httpdV1}\n`);
    pack.finalize();
    await world.rt.buildImage(pack as unknown as Readable, { tag: world.ownImage, dockerfile: 'Dockerfile', buildArgs: {}, labels: ownerLabels(instance) });
  });
  afterAll(() => cleanupInstance(instance));

  it.each(table)('%s', (_name, row) => row(world));
});

describe('the memory runtime', () => {
  const instance = 'memsem';
  const memory = new MemoryRuntime();
  const world: World = { rt: memory, instance, ownImage: `${instance}/own:1`, spec: makeSpec(instance) };

  beforeAll(async () => {
    memory.addImage(IMAGES.httpdV1);
    memory.addImage(world.ownImage, ownerLabels(instance));
    await memory.ensureNetwork(instance, ownerLabels(instance));
  });

  it.each(table)('%s', (_name, row) => row(world));
});
