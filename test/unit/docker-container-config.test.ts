import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerSpec, MountSpec } from '../../controllers/ports/container-runtime.js';
import { ownerLabels } from '../../src/api/labels.js';
import {
  checkResolvedBindSources,
  containerCreateOptions,
  isForbiddenHostPath,
  validateContainerSpec,
} from '../../src/docker/container-config.js';

function spec(overrides: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    name: 'blog-0',
    image: 'nginx:1.27',
    labels: ownerLabels('unit', 'blog'),
    env: ['LOG_LEVEL=info'],
    port: 8080,
    memoryBytes: 512 * 1024 * 1024,
    nanoCpus: 500_000_000,
    pidsLimit: 256,
    mounts: [],
    network: 'berth',
    aliases: ['blog'],
    stopTimeoutSeconds: 10,
    ...overrides,
  };
}

function bind(source: string): MountSpec {
  return { type: 'bind', source, target: '/data', readOnly: false };
}

describe('containerCreateOptions', () => {
  it('always applies berth security defaults', () => {
    const o = containerCreateOptions(spec());
    expect(o.HostConfig).toMatchObject({
      Init: true,
      Privileged: false,
      SecurityOpt: ['no-new-privileges'],
      Memory: 512 * 1024 * 1024,
      MemorySwap: 512 * 1024 * 1024,
      NanoCpus: 500_000_000,
      PidsLimit: 256,
      RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 },
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
      NetworkMode: 'berth',
      PublishAllPorts: false,
      PortBindings: {},
    });
    expect(o.HostConfig?.CapAdd).toBeUndefined();
    expect(o.ExposedPorts).toEqual({ '8080/tcp': {} });
    expect(o.NetworkingConfig?.EndpointsConfig).toEqual({ berth: { Aliases: ['blog'] } });
    expect(o.StopTimeout).toBe(10);
    expect(o.Tty).toBe(false);
  });

  it('sets the command only when the spec has one', () => {
    expect(containerCreateOptions(spec()).Cmd).toBeUndefined();
    expect(containerCreateOptions(spec({ command: ['node', 'server.js'] })).Cmd).toEqual(['node', 'server.js']);
  });

  it('labels a volume the engine may create for the container', () => {
    const o = containerCreateOptions(spec({ mounts: [{ type: 'volume', source: 'blog-data', target: '/data', readOnly: false }] }));
    expect(o.HostConfig?.Mounts?.[0]).toMatchObject({
      Type: 'volume',
      Source: 'blog-data',
      Target: '/data',
      VolumeOptions: { Labels: ownerLabels('unit', 'blog') },
    });
  });
});

describe('validateContainerSpec', () => {
  it.each([
    ['/'],
    ['/etc'],
    ['/etc/ssl/private'],
    ['/proc/1'],
    ['/sys'],
    ['/dev/sda'],
    ['/boot/firmware'],
    ['/var/run/docker.sock'],
    ['/run/docker.sock'],
    ['/home/pi/docker.sock'],
    ['/var/run'],
    ['/var/lib/docker/volumes'],
    ['/srv/../etc'],
    ['/srv/app/../../'],
  ])('refuses binding %s (ForbiddenMount, stalled)', (source) => {
    expect(() => validateContainerSpec(spec({ mounts: [bind(source)] }))).toThrow(expect.objectContaining({ reason: 'ForbiddenMount', kind: 'stalled' }));
  });

  it.each([['/srv/blog'], ['/home/pi/photos'], ['/var/lib/blog'], ['/etcetera'], ['/mnt/usb/devices']])('allows binding %s', (source) => {
    expect(isForbiddenHostPath(source)).toBe(false);
    expect(() => validateContainerSpec(spec({ mounts: [bind(source)] }))).not.toThrow();
  });

  it.each([['host'], ['none'], ['container:abc'], ['']])('refuses network mode %j', (network) => {
    expect(() => validateContainerSpec(spec({ network }))).toThrow(expect.objectContaining({ reason: 'ForbiddenNetworkMode', kind: 'stalled' }));
  });

  it.each<[string, Partial<ContainerSpec>, string]>([
    ['an invalid image reference', { image: 'INVALID::ref' }, 'InvalidImageName'],
    ['no ownership labels', { labels: { team: 'web' } }, 'InvalidContainerSpec'],
    ['no memory limit', { memoryBytes: 0 }, 'InvalidContainerSpec'],
    ['no CPU limit', { nanoCpus: 0 }, 'InvalidContainerSpec'],
    ['no pids limit', { pidsLimit: -1 }, 'InvalidContainerSpec'],
    ['a port out of range', { port: 70000 }, 'InvalidContainerSpec'],
    ['a bad container name', { name: '/x y' }, 'InvalidContainerSpec'],
    ['a relative host path', { mounts: [bind('srv/blog')] }, 'InvalidContainerSpec'],
    ['a volume mounted over /', { mounts: [{ type: 'volume', source: 'v1', target: '/', readOnly: false }] }, 'InvalidContainerSpec'],
  ])('refuses a spec with %s', (_name, overrides, reason) => {
    expect(() => validateContainerSpec(spec(overrides))).toThrow(expect.objectContaining({ reason, kind: 'stalled' }));
  });
});

describe('checkResolvedBindSources', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-mount-'));
    await symlink('/etc', join(dir, 'innocent'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('refuses a path that is a symlink into a forbidden tree', async () => {
    await expect(checkResolvedBindSources(spec({ mounts: [bind(join(dir, 'innocent'))] }))).rejects.toMatchObject({ reason: 'ForbiddenMount' });
  });

  it('leaves paths that do not exist here to the engine', async () => {
    await expect(checkResolvedBindSources(spec({ mounts: [bind(join(dir, 'missing'))] }))).resolves.toBeUndefined();
  });
});
