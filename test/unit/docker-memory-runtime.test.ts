import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { ContainerSpec, RuntimeEvent } from '../../controllers/ports/container-runtime.js';
import { BerthError } from '../../controllers/ports/errors.js';
import { LABEL_APP, ownerLabels } from '../../src/api/labels.js';
import { MemoryRuntime } from '../helpers/memory-runtime.js';

const IMAGE = 'app:1';

function spec(name: string, overrides: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    name,
    image: IMAGE,
    labels: ownerLabels('mem', name),
    env: [],
    port: 80,
    memoryBytes: 64 << 20,
    nanoCpus: 1e8,
    pidsLimit: 32,
    mounts: [],
    network: 'berth',
    aliases: [name],
    stopTimeoutSeconds: 1,
    ...overrides,
  };
}

async function world(): Promise<{ rt: MemoryRuntime; events: RuntimeEvent[]; connections: [boolean, string?][]; stop: () => void }> {
  const rt = new MemoryRuntime({ now: () => new Date('2030-01-01T00:00:00Z') });
  rt.addImage(IMAGE);
  await rt.ensureNetwork('berth', ownerLabels('mem'));
  const events: RuntimeEvent[] = [];
  const connections: [boolean, string?][] = [];
  const ac = new AbortController();
  rt.watchEvents(ownerLabels('mem'), (e) => events.push(e), (c, err) => connections.push(err ? [c, (err as BerthError).reason] : [c]), ac.signal);
  await Promise.resolve();
  rt.calls.length = 0;
  return { rt, events, connections, stop: () => ac.abort() };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('MemoryRuntime', () => {
  it('runs containers with fake 10.x addresses and logs only mutating calls', async () => {
    const { rt } = await world();
    const id = await rt.createContainer(spec('web'));
    await rt.startContainer(id);
    await rt.listContainers(ownerLabels('mem'));
    await rt.inspectContainer(id);
    await rt.ensureNetwork('berth', ownerLabels('mem'));
    expect(rt.calls).toEqual([
      { method: 'createContainer', target: 'web' },
      { method: 'startContainer', target: id },
    ]);
    expect(rt.container('web')).toMatchObject({ state: 'running', created: 1893456000, startedAt: '2030-01-01T00:00:00.000Z' });
    expect(rt.container(id)?.networks.berth).toMatch(/^10\.\d+\.\d+\.\d+$/);
  });

  it('fails the next call of a method as told, then works again', async () => {
    const { rt } = await world();
    rt.failNext('createContainer', new BerthError('transient', 'DockerError', 'injected'));
    await expect(rt.createContainer(spec('web'))).rejects.toMatchObject({ reason: 'DockerError', message: 'injected' });
    await expect(rt.createContainer(spec('web'))).resolves.toMatch(/^[0-9a-f]{64}$/);
  });

  it('goes unreachable: every call rejects DockerUnavailable and watchers hear of it', async () => {
    const { rt, connections } = await world();
    await tick();
    rt.setReachable(false);
    await expect(rt.ping()).rejects.toMatchObject({ reason: 'DockerUnavailable', kind: 'transient' });
    await expect(rt.listContainers({})).rejects.toMatchObject({ reason: 'DockerUnavailable' });
    rt.setReachable(true);
    await tick();
    expect(connections).toEqual([[true], [false, 'DockerUnavailable'], [true]]);
    await rt.ping();
  });

  it('makes containers of a crashing image exit at once, restarting', async () => {
    const { rt, events } = await world();
    rt.setImageBehaviour(IMAGE, 'crash');
    const id = await rt.createContainer(spec('web'));
    await rt.startContainer(id);
    await tick();
    expect(rt.container(id)).toMatchObject({ state: 'restarting', exitCode: 1, restartCount: 1 });
    expect(events.filter((e) => e.type === 'container').map((e) => e.action)).toEqual(['create', 'start', 'die']);
    expect(events.find((e) => e.action === 'die')?.attributes).toMatchObject({ exitCode: '1', [LABEL_APP]: 'web' });
  });

  it('breaks things behind berth\'s back, with the events Docker would send', async () => {
    const { rt, events } = await world();
    const id = await rt.createContainer(spec('web'));
    await rt.startContainer(id);
    rt.disconnectBehindBack('berth', id);
    rt.killContainer(id);
    rt.removeBehindBack(id);
    await tick();
    expect(rt.calls).toHaveLength(2);
    expect(await rt.inspectContainer(id)).toBeUndefined();
    expect(events.map((e) => `${e.type} ${e.action}`)).toEqual([
      'container create', 'network connect', 'container start', 'network disconnect', 'container kill', 'container die', 'container destroy',
    ]);
    expect(events.find((e) => e.action === 'disconnect')?.attributes).toMatchObject({ [LABEL_APP]: 'web', container: id, network: 'berth' });
  });

  it('sends a watcher only the events of objects with its labels', async () => {
    const { rt, events } = await world();
    await rt.createContainer(spec('other', { labels: ownerLabels('someone-else', 'other') }));
    await tick();
    expect(events).toEqual([]);
  });

  it('pulls only what its registry has, and builds by reading the whole context', async () => {
    const { rt } = await world();
    rt.addRegistryImage('nginx:1.27', { from: 'registry' });
    await rt.pullImage('nginx:1.27');
    expect((await rt.inspectImage('nginx:1.27'))?.labels).toEqual({ from: 'registry' });
    await expect(rt.pullImage('nginx:9')).rejects.toMatchObject({ reason: 'ImagePullFailed', kind: 'transient' });

    const context = Readable.from([Buffer.from('tar bytes')]);
    await rt.buildImage(context, { tag: 'built:1', dockerfile: 'Dockerfile', buildArgs: {}, labels: ownerLabels('mem', 'built') });
    expect(context.readableEnded).toBe(true);
    expect((await rt.listImages(ownerLabels('mem'))).map((i) => i.tags)).toEqual([['built:1']]);

    const ac = new AbortController();
    const stuck = new PassThrough();
    const build = rt.buildImage(stuck, { tag: 'built:2', dockerfile: 'Dockerfile', buildArgs: {}, labels: {} }, ac.signal);
    ac.abort();
    await expect(build).rejects.toMatchObject({ reason: 'Aborted' });
    expect(stuck.destroyed).toBe(true);
  });

  it('serves logs, and a follow ends on abort', async () => {
    const { rt } = await world();
    const id = await rt.createContainer(spec('web'));
    rt.writeLog(id, 'one\ntwo\n');
    const ac = new AbortController();
    const follow = await rt.containerLogs(id, { follow: true, signal: ac.signal });
    rt.writeLog(id, 'three\n');
    ac.abort();
    let text = '';
    for await (const chunk of follow) text += String(chunk);
    expect(text).toBe('one\ntwo\nthree\n');
    let tail = '';
    for await (const chunk of await rt.containerLogs(id, { follow: false, tail: 1 })) tail += String(chunk);
    expect(tail).toBe('three\n');
  });
});
