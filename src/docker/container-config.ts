// The engine-level shape of a berth container, and the security policy every container gets no
// matter what the spec says. The policy is checked here as well as in the controllers (defence
// in depth): whoever can write a manifest must not get root on the host through berth.
import { realpath } from 'node:fs/promises';
import { posix } from 'node:path';
import type Docker from 'dockerode';
import { BerthError } from '../../controllers/ports/errors.js';
import { RESTART_POLICY, type ContainerSpec, type MountSpec } from '../../controllers/ports/container-runtime.js';
import { LABEL_APP, LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGED_BY } from '../api/labels.js';
import { invalidImageName, isValidImageReference } from './image-reference.js';

export const LOG_MAX_SIZE = '10m';
export const LOG_MAX_FILE = '3';
/** The engine refuses memory limits below 6 MiB. */
const MIN_MEMORY_BYTES = 6 * 1024 * 1024;

/** Host paths no container may bind, nor anything below them. */
const FORBIDDEN_HOST_TREES = [
  '/etc',
  '/proc',
  '/sys',
  '/dev',
  '/boot',
  '/var/lib/docker',
  '/var/lib/containerd',
  '/run/containerd',
  '/var/run/containerd',
  '/run/docker',
  '/var/run/docker',
];
/** Directories that hold the engine's socket: binding them hands the socket over too. */
const SOCKET_PARENTS = ['/run', '/var/run', '/var'];
const FORBIDDEN_NETWORK_MODES = /^(host|none|container:.*)$/;
const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

function invalid(message: string): BerthError {
  return new BerthError('stalled', 'InvalidContainerSpec', message);
}

/** True when binding this host path would expose the host or the engine. */
export function isForbiddenHostPath(path: string): boolean {
  const p = posix.resolve('/', path);
  if (p === '/') return true;
  if (/(?:docker|containerd)\.sock$/.test(p)) return true;
  if (SOCKET_PARENTS.includes(p)) return true;
  return FORBIDDEN_HOST_TREES.some((tree) => p === tree || p.startsWith(`${tree}/`));
}

function checkMount(m: MountSpec): void {
  if (!m.target.startsWith('/') || posix.resolve(m.target) === '/') {
    throw invalid(`mount target "${m.target}" must be an absolute path other than /`);
  }
  if (m.type === 'volume') {
    if (!VOLUME_NAME.test(m.source)) throw invalid(`volume name "${m.source}" is not valid`);
    return;
  }
  if (!m.source.startsWith('/')) throw invalid(`host path "${m.source}" must be absolute`);
  if (isForbiddenHostPath(m.source)) {
    throw new BerthError('stalled', 'ForbiddenMount', `mounting host path "${m.source}" is never allowed`);
  }
}

/** Network modes that would leave berth's bridge (host, none, another container's namespace). */
export function checkNetworkName(network: string): void {
  if (network === '' || FORBIDDEN_NETWORK_MODES.test(network)) {
    throw new BerthError('stalled', 'ForbiddenNetworkMode', `network mode "${network}" is never allowed; containers join a bridge network`);
  }
}

/** Everything that can be checked without the engine; throws a stalled BerthError. */
export function validateContainerSpec(spec: ContainerSpec): void {
  if (!CONTAINER_NAME.test(spec.name)) throw invalid(`container name "${spec.name}" is not valid`);
  if (spec.labels[LABEL_MANAGED_BY] !== MANAGED_BY || !spec.labels[LABEL_INSTANCE]) {
    // An unlabelled container would be invisible to berth's own lists and leak forever.
    throw invalid(`container "${spec.name}" lacks berth's ownership labels`);
  }
  if (!isValidImageReference(spec.image)) throw invalidImageName(spec.image);
  if (!Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535) throw invalid(`port ${spec.port} is not a TCP port`);
  if (!Number.isSafeInteger(spec.memoryBytes) || spec.memoryBytes < MIN_MEMORY_BYTES) {
    throw invalid(`memory limit ${spec.memoryBytes} bytes is below the engine's 6 MiB minimum`);
  }
  if (!Number.isSafeInteger(spec.nanoCpus) || spec.nanoCpus <= 0) throw invalid(`CPU limit ${spec.nanoCpus} must be positive`);
  if (!Number.isSafeInteger(spec.pidsLimit) || spec.pidsLimit <= 0) throw invalid(`pids limit ${spec.pidsLimit} must be positive`);
  if (!Number.isInteger(spec.stopTimeoutSeconds) || spec.stopTimeoutSeconds < 0) {
    throw invalid(`stop timeout ${spec.stopTimeoutSeconds} must be a whole number of seconds`);
  }
  checkNetworkName(spec.network);
  for (const m of spec.mounts) checkMount(m);
}

/**
 * Re-checks bind sources after resolving symlinks on this host, so `/srv/x -> /etc` is refused
 * too. Paths that do not exist here are left to the engine (which refuses a missing bind source).
 */
export async function checkResolvedBindSources(spec: ContainerSpec): Promise<void> {
  for (const m of spec.mounts) {
    if (m.type !== 'bind') continue;
    const resolved = await realpath(m.source).catch(() => undefined);
    if (resolved !== undefined && isForbiddenHostPath(resolved)) {
      throw new BerthError('stalled', 'ForbiddenMount', `host path "${m.source}" resolves to "${resolved}", which is never allowed`);
    }
  }
}

/** The labels a volume gets if the engine has to create it for this container (normally ensureVolume did). */
function volumeLabels(labels: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of [LABEL_MANAGED_BY, LABEL_INSTANCE, LABEL_APP]) {
    const value = labels[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

function toMount(m: MountSpec, labels: Record<string, string>): Docker.MountSettings {
  const mount: Docker.MountSettings = { Type: m.type, Source: m.source, Target: m.target, ReadOnly: m.readOnly };
  if (m.type === 'volume') {
    mount.VolumeOptions = { NoCopy: false, Labels: volumeLabels(labels) } as Docker.MountSettings['VolumeOptions'];
  }
  return mount;
}

/** The create body: the spec plus berth's fixed security defaults. Call validateContainerSpec first. */
export function containerCreateOptions(spec: ContainerSpec): Docker.ContainerCreateOptions {
  const options: Docker.ContainerCreateOptions = {
    name: spec.name,
    Image: spec.image,
    Labels: { ...spec.labels },
    Env: [...spec.env],
    ExposedPorts: { [`${spec.port}/tcp`]: {} },
    StopTimeout: spec.stopTimeoutSeconds,
    Tty: false,
    OpenStdin: false,
    AttachStdin: false,
    HostConfig: {
      // tini as PID 1 forwards SIGTERM and reaps zombies, so apps stop in ~100 ms, not the grace period.
      Init: true,
      Privileged: false,
      SecurityOpt: ['no-new-privileges'],
      IpcMode: 'private',
      PublishAllPorts: false,
      PortBindings: {},
      Memory: spec.memoryBytes,
      // Equal to Memory: swap cannot be used to exceed the limit.
      MemorySwap: spec.memoryBytes,
      NanoCpus: spec.nanoCpus,
      PidsLimit: spec.pidsLimit,
      RestartPolicy: { Name: RESTART_POLICY, MaximumRetryCount: 0 },
      LogConfig: { Type: 'json-file', Config: { 'max-size': LOG_MAX_SIZE, 'max-file': LOG_MAX_FILE } },
      NetworkMode: spec.network,
      Mounts: spec.mounts.map((m) => toMount(m, spec.labels)),
    },
    NetworkingConfig: { EndpointsConfig: { [spec.network]: { Aliases: [...spec.aliases] } } },
  };
  if (spec.command !== undefined) options.Cmd = [...spec.command];
  return options;
}
