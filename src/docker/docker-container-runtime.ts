// ContainerRuntime on a real Docker engine through dockerode. Every engine failure leaves here
// as a BerthError (classify-docker-error.ts); 304 and the "already gone" answers of idempotent
// calls are success; pull and build results are read from their progress streams.
import type { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import Docker from 'dockerode';
import type {
  BuildOptions,
  ContainerDetails,
  ContainerRuntime,
  ContainerSpec,
  ContainerState,
  ContainerSummary,
  ImageInfo,
  RuntimeEvent,
} from '../../controllers/ports/container-runtime.js';
import { RESTART_POLICY } from '../../controllers/ports/container-runtime.js';
import { BerthError } from '../../controllers/ports/errors.js';
import { LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGED_BY } from '../api/labels.js';
import { abortReason, classifyDockerError, isNotModified, type DockerOperation } from './classify-docker-error.js';
import { checkNetworkName, checkResolvedBindSources, containerCreateOptions, validateContainerSpec } from './container-config.js';
import { DEFAULT_EVENT_BACKOFF, labelFilter, watchDockerEvents, type EventBackoff } from './docker-events.js';
import { DEFAULT_DOCKER_SOCKET, DEFAULT_TCP_PORT, parseDockerHost, type DockerConnection } from './docker-host.js';
import { invalidImageName, parseImageReference, pullArguments } from './image-reference.js';
import { LogDemuxer } from './log-demux.js';
import { readNdjson } from './ndjson-stream.js';

/** Pulls and builds without a caller's signal still end: a wedged engine stream must not hang berth. */
const DEFAULT_STREAM_TIMEOUT_MS = 60 * 60 * 1000;
const HEALTH_STATES = new Set(['starting', 'healthy', 'unhealthy']);
/** The engine's "never" for StartedAt/FinishedAt. */
const ZERO_TIME = '0001-01-01T00:00:00Z';
/** A network younger than this may still have a twin on its way (see settledNetwork). */
const NETWORK_SETTLE_AGE_MS = 1500;
const NETWORK_SETTLE_MS = 150;
const NETWORK_SETTLE_ROUNDS = 5;

export interface DockerRuntimeOptions {
  /** Reconnect delays of watchEvents (default 250 ms doubling to 10 s). */
  eventBackoff?: EventBackoff;
}

function withoutSlash(name: string | undefined): string {
  return (name ?? '').replace(/^\//, '');
}

function unixSeconds(iso: string | undefined): number {
  const ms = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(ms) ? 0 : Math.floor(ms / 1000);
}

function realTime(iso: string | undefined): string | undefined {
  return iso && iso !== ZERO_TIME ? iso : undefined;
}

function networkAddresses(networks: Record<string, { IPAddress?: string }> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, n] of Object.entries(networks ?? {})) out[name] = n.IPAddress ?? '';
  return out;
}

/** The error text of a progress line ({error, errorDetail}), if it is one. */
function progressError(line: Record<string, unknown>): string | undefined {
  const detail = line.errorDetail as { message?: unknown } | undefined;
  if (typeof detail?.message === 'string' && detail.message !== '') return detail.message;
  return typeof line.error === 'string' && line.error !== '' ? line.error : undefined;
}

function pullProgressText(line: Record<string, unknown>): string | undefined {
  const parts = [line.id, line.status, line.progress].filter((p): p is string => typeof p === 'string' && p !== '');
  return parts.length > 0 ? parts.join(' ') : undefined;
}

export class DockerContainerRuntime implements ContainerRuntime {
  private readonly docker: Docker;
  private readonly eventBackoff: EventBackoff;
  /** Per network name: the tail of the ensureNetwork calls in flight, so two creates never race. */
  private readonly networkLocks = new Map<string, Promise<unknown>>();

  constructor(connection: DockerConnection | string = {}, options: DockerRuntimeOptions = {}) {
    const c = typeof connection === 'string' ? parseDockerHost(connection) : connection;
    this.docker =
      c.host !== undefined
        ? new Docker({ host: c.host, port: c.port ?? DEFAULT_TCP_PORT, protocol: 'http' })
        : new Docker({ socketPath: c.socketPath ?? DEFAULT_DOCKER_SOCKET });
    this.eventBackoff = options.eventBackoff ?? DEFAULT_EVENT_BACKOFF;
  }

  /** From `--docker` / DOCKER_HOST: unix:///path, tcp://host:port, or the default socket. */
  static fromDockerHost(value: string | undefined, options: DockerRuntimeOptions = {}): DockerContainerRuntime {
    return new DockerContainerRuntime(parseDockerHost(value), options);
  }

  /**
   * Runs one engine call: refuses at once when already aborted, releases the caller on abort even
   * where dockerode cannot cancel the request (inspects), and classifies what it throws.
   */
  private async call<T>(op: DockerOperation, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      signal?.throwIfAborted();
      if (!signal) return await fn();
      return await new Promise<T>((resolve, reject) => {
        const onAbort = (): void => reject(abortReason(signal));
        signal.addEventListener('abort', onAbort, { once: true });
        void fn().then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
      });
    } catch (e) {
      throw classifyDockerError(e, op);
    }
  }

  async ping(signal?: AbortSignal): Promise<void> {
    try {
      // dockerode's ping takes an abortSignal; its typings do not say so.
      const docker = this.docker as Docker & { ping(options: { abortSignal?: AbortSignal }): Promise<unknown> };
      await this.call('other', signal, () => docker.ping({ abortSignal: signal }));
    } catch (e) {
      const err = e as BerthError;
      if (err.reason === 'Aborted' || err.reason === 'Timeout' || err.reason === 'DockerUnavailable') throw err;
      throw new BerthError('transient', 'DockerUnavailable', `the Docker engine does not answer: ${err.message}`, { cause: e });
    }
  }

  async listContainers(labels: Record<string, string>, signal?: AbortSignal): Promise<ContainerSummary[]> {
    const list = await this.call('other', signal, () =>
      this.docker.listContainers({ all: true, filters: { label: labelFilter(labels) }, abortSignal: signal }),
    );
    return list.map((c) => ({
      id: c.Id,
      name: withoutSlash(c.Names[0]),
      labels: c.Labels ?? {},
      image: c.Image,
      imageId: c.ImageID,
      state: c.State as ContainerState,
      created: c.Created,
      networks: networkAddresses(c.NetworkSettings?.Networks),
    }));
  }

  async inspectContainer(id: string, signal?: AbortSignal): Promise<ContainerDetails | undefined> {
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.call('other', signal, () => this.docker.getContainer(id).inspect({ abortSignal: signal }));
    } catch (e) {
      if ((e as BerthError).reason === 'NotFound') return undefined;
      throw e;
    }
    const details: ContainerDetails = {
      id: info.Id,
      name: withoutSlash(info.Name),
      labels: info.Config.Labels ?? {},
      image: info.Config.Image,
      imageId: info.Image,
      state: info.State.Status as ContainerState,
      created: unixSeconds(info.Created),
      networks: networkAddresses(info.NetworkSettings.Networks),
      exitCode: info.State.ExitCode,
      oomKilled: info.State.OOMKilled,
      restartCount: info.RestartCount,
      restartPolicy: info.HostConfig.RestartPolicy?.Name ?? '',
      env: info.Config.Env ?? [],
    };
    const startedAt = realTime(info.State.StartedAt);
    if (startedAt) details.startedAt = startedAt;
    const finishedAt = realTime(info.State.FinishedAt);
    if (finishedAt) details.finishedAt = finishedAt;
    const health = info.State.Health?.Status;
    if (health && HEALTH_STATES.has(health)) details.health = health as ContainerDetails['health'];
    return details;
  }

  async createContainer(spec: ContainerSpec, signal?: AbortSignal): Promise<string> {
    validateContainerSpec(spec);
    await checkResolvedBindSources(spec);
    const options = containerCreateOptions(spec);
    const container = await this.call('create', signal, () => this.docker.createContainer({ ...options, abortSignal: signal }));
    return container.id;
  }

  async startContainer(id: string, signal?: AbortSignal): Promise<void> {
    await this.call('other', signal, () => this.docker.getContainer(id).start({ abortSignal: signal }).catch(unlessNotModified));
  }

  async stopContainer(id: string, timeoutSeconds: number, signal?: AbortSignal): Promise<void> {
    await this.call('other', signal, () =>
      this.docker.getContainer(id).stop({ t: timeoutSeconds, abortSignal: signal }).catch(unlessNotModified),
    );
  }

  async removeContainer(id: string, signal?: AbortSignal): Promise<void> {
    try {
      // v: anonymous volumes (an image's VOLUME lines) go with the container; named ones stay.
      await this.call('other', signal, () =>
        this.docker.getContainer(id).remove({ force: true, v: true, abortSignal: signal } as Docker.ContainerRemoveOptions),
      );
    } catch (e) {
      const err = e as BerthError;
      if (err.reason === 'NotFound') return;
      // Another caller's removal is already under way: the container is going, which is what we want.
      if (err.reason === 'Conflict' && /already in progress/i.test(err.message)) return;
      throw e;
    }
  }

  async restoreRestartPolicy(containerId: string, signal?: AbortSignal): Promise<void> {
    await this.call('other', signal, () =>
      this.docker.getContainer(containerId).update({ RestartPolicy: { Name: RESTART_POLICY, MaximumRetryCount: 0 }, abortSignal: signal }),
    );
  }

  async connectNetwork(network: string, containerId: string, aliases: string[], signal?: AbortSignal): Promise<void> {
    checkNetworkName(network);
    try {
      await this.call('other', signal, () =>
        this.docker
          .getNetwork(network)
          .connect({ Container: containerId, EndpointConfig: { Aliases: aliases }, abortSignal: signal } as Docker.NetworkConnectOptions),
      );
    } catch (e) {
      if (/already exists in network/i.test((e as Error).message)) return;
      throw e;
    }
  }

  async containerLogs(id: string, opts: { follow: boolean; tail?: number; signal?: AbortSignal }): Promise<Readable> {
    const { follow, tail, signal } = opts;
    const container = this.docker.getContainer(id);
    const base: Docker.ContainerLogsOptions = { stdout: true, stderr: true, abortSignal: signal };
    if (tail !== undefined) base.tail = tail;
    const out = new LogDemuxer();
    if (!follow) {
      const buffer = await this.call('other', signal, () => container.logs({ ...base, follow: false }));
      out.end(Buffer.isBuffer(buffer) ? buffer : Buffer.alloc(0));
      return out;
    }
    const source = (await this.call('other', signal, () => container.logs({ ...base, follow: true }))) as Readable;
    const stop = (): void => {
      source.destroy();
      out.end();
    };
    signal?.addEventListener('abort', stop, { once: true });
    source.on('error', (e) => {
      if (!signal?.aborted) out.destroy(classifyDockerError(e));
    });
    out.on('close', () => {
      signal?.removeEventListener('abort', stop);
      source.destroy();
    });
    source.pipe(out);
    return out;
  }

  async inspectImage(ref: string, signal?: AbortSignal): Promise<ImageInfo | undefined> {
    let info: Docker.ImageInspectInfo;
    try {
      info = await this.call('other', signal, () => this.docker.getImage(ref).inspect());
    } catch (e) {
      const reason = (e as BerthError).reason;
      if (reason === 'NotFound' || reason === 'ImageNotFound') return undefined;
      throw e;
    }
    return { id: info.Id, tags: info.RepoTags ?? [], labels: info.Config?.Labels ?? {}, created: unixSeconds(info.Created) };
  }

  async listImages(labels: Record<string, string>, signal?: AbortSignal): Promise<ImageInfo[]> {
    const list = await this.call('other', signal, () =>
      this.docker.listImages({ filters: { label: labelFilter(labels) }, abortSignal: signal } as Docker.ListImagesOptions),
    );
    return list.map((i) => ({
      id: i.Id,
      tags: (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>'),
      labels: i.Labels ?? {},
      created: i.Created,
    }));
  }

  async pullImage(ref: string, signal?: AbortSignal, onProgress?: (line: string) => void): Promise<void> {
    const parsed = parseImageReference(ref);
    if (!parsed) throw invalidImageName(ref);
    const effective = signal ?? AbortSignal.timeout(DEFAULT_STREAM_TIMEOUT_MS);
    const stream = (await this.call('pull', effective, () =>
      this.docker.createImage({ ...pullArguments(parsed), abortSignal: effective }),
    )) as Readable;
    let failure: string | undefined;
    try {
      await readNdjson(
        stream,
        (raw, line) => {
          const error = line && progressError(line);
          if (error) failure ??= error;
          const text = line ? (error ?? pullProgressText(line)) : raw;
          if (text !== undefined) onProgress?.(text);
        },
        effective,
      );
    } catch (e) {
      throw classifyDockerError(e, 'pull');
    }
    if (failure !== undefined) throw new BerthError('transient', 'ImagePullFailed', `pulling ${ref}: ${failure}`);
  }

  async buildImage(context: Readable, opts: BuildOptions, signal?: AbortSignal, onLine?: (line: string) => void): Promise<void> {
    if (!parseImageReference(opts.tag)) throw invalidImageName(opts.tag);
    const effective = signal ?? AbortSignal.timeout(DEFAULT_STREAM_TIMEOUT_MS);
    const options: Docker.ImageBuildOptions = {
      t: opts.tag,
      dockerfile: opts.dockerfile,
      buildargs: opts.buildArgs,
      labels: opts.labels,
      rm: true,
      forcerm: true,
      // The classic builder reports progress as readable text; BuildKit's is base64 protobuf.
      version: '1',
      abortSignal: effective,
    };
    if (opts.memoryBytes !== undefined) {
      options.memory = opts.memoryBytes;
      options.memswap = opts.memoryBytes;
    }
    let failure: string | undefined;
    let step: string | undefined;
    try {
      const stream = (await this.call('build', effective, () => this.docker.buildImage(context, options))) as Readable;
      await readNdjson(
        stream,
        (raw, line) => {
          if (!line) return onLine?.(raw);
          const error = progressError(line);
          if (error) {
            failure ??= error;
            return onLine?.(error);
          }
          const text = typeof line.stream === 'string' ? line.stream : typeof line.status === 'string' ? line.status : '';
          for (const l of text.split('\n')) {
            if (l.trim() === '') continue;
            if (/^Step \d+\/\d+ : /.test(l)) step = l.trim();
            onLine?.(l);
          }
        },
        effective,
      );
    } catch (e) {
      context.destroy();
      throw classifyDockerError(e, 'build');
    }
    if (failure !== undefined) throw new BerthError('stalled', 'BuildFailed', step ? `${step}: ${failure}` : failure);
  }

  async removeImage(ref: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.call('other', signal, () => this.docker.getImage(ref).remove({ abortSignal: signal }));
    } catch (e) {
      const reason = (e as BerthError).reason;
      // Gone already, or still used by a container: both leave nothing for berth to do.
      if (reason === 'NotFound' || reason === 'ImageNotFound' || reason === 'Conflict') return;
      throw e;
    }
  }

  async ensureNetwork(name: string, labels: Record<string, string>, signal?: AbortSignal): Promise<string> {
    checkNetworkName(name);
    const previous = this.networkLocks.get(name) ?? Promise.resolve();
    const mine = previous.catch(() => undefined).then(() => this.createNetworkIfMissing(name, labels, signal));
    this.networkLocks.set(name, mine);
    try {
      return await mine;
    } finally {
      if (this.networkLocks.get(name) === mine) this.networkLocks.delete(name);
    }
  }

  private async createNetworkIfMissing(name: string, labels: Record<string, string>, signal?: AbortSignal): Promise<string> {
    const existing = await this.findNetwork(name, labels, signal);
    if (existing && Date.now() - existing.created > NETWORK_SETTLE_AGE_MS) return existing.id;
    if (!existing) {
      try {
        await this.call('other', signal, () =>
          this.docker.createNetwork({ Name: name, Driver: 'bridge', CheckDuplicate: true, Labels: labels, abortSignal: signal }),
        );
      } catch (e) {
        // Conflict: another process created it between our look and our create; use theirs.
        if ((e as BerthError).reason !== 'Conflict') throw e;
      }
    }
    return this.settledNetwork(name, labels, signal);
  }

  /**
   * A network created moments ago may have a twin whose create is still in flight in another
   * process (the engine's duplicate check is not atomic, and a network is stamped with its
   * creation time before it becomes visible). Look again until two looks agree, so every
   * creator settles on the same survivor instead of returning one that is about to be removed.
   */
  private async settledNetwork(name: string, labels: Record<string, string>, signal?: AbortSignal): Promise<string> {
    let seen = await this.findNetwork(name, labels, signal);
    for (let round = 0; round < NETWORK_SETTLE_ROUNDS; round++) {
      // A twin still in flight was stamped before ours; once ours is old enough, any such twin
      // has had time to appear, so one more look that agrees is final.
      const age = seen ? Date.now() - seen.created : 0;
      await delay(Math.min(NETWORK_SETTLE_AGE_MS, Math.max(NETWORK_SETTLE_MS, NETWORK_SETTLE_AGE_MS - age)), undefined, { signal });
      const again = await this.findNetwork(name, labels, signal);
      if (again && again.id === seen?.id) return again.id;
      seen = again;
    }
    if (!seen) throw new BerthError('transient', 'DockerError', `network ${name} vanished right after it was created`);
    return seen.id;
  }

  /**
   * The id of the network with exactly this name. The engine's duplicate check is not atomic, so
   * two processes creating at once can both succeed; then every caller settles on the oldest and
   * removes the empty duplicates it owns, or each name lookup would fail as "ambiguous".
   */
  private async findNetwork(
    name: string,
    labels: Record<string, string> | undefined,
    signal?: AbortSignal,
  ): Promise<{ id: string; created: number } | undefined> {
    const listed = await this.call('other', signal, () =>
      this.docker.listNetworks({ filters: { name: [name] }, abortSignal: signal }),
    );
    const same = listed
      .filter((n) => n.Name === name)
      .sort((a, b) => Date.parse(a.Created) - Date.parse(b.Created) || a.Id.localeCompare(b.Id));
    const [keep, ...duplicates] = same;
    // Without labels (a plain lookup), a duplicate carrying the same ownership labels as the kept
    // network is ours too: a kill -9 during a create leaves such twins, and until they are gone
    // every container create on that name fails as "ambiguous".
    const mine = labels ?? (keep?.Labels?.[LABEL_MANAGED_BY] === MANAGED_BY ? { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_INSTANCE]: keep.Labels[LABEL_INSTANCE] ?? '' } : undefined);
    for (const d of duplicates) {
      const owned = mine !== undefined && Object.entries(mine).every(([k, v]) => d.Labels?.[k] === v);
      // The engine refuses to remove a network with containers attached, so this never cuts anyone off.
      if (owned) await this.call('other', signal, () => this.docker.getNetwork(d.Id).remove()).catch(() => undefined);
    }
    return keep && { id: keep.Id, created: Date.parse(keep.Created) };
  }

  async networkExists(name: string, signal?: AbortSignal): Promise<boolean> {
    return (await this.findNetwork(name, undefined, signal)) !== undefined;
  }

  async ensureVolume(name: string, labels: Record<string, string>, signal?: AbortSignal): Promise<void> {
    try {
      await this.call('other', signal, () => this.docker.getVolume(name).inspect({ abortSignal: signal }));
      return;
    } catch (e) {
      if ((e as BerthError).reason !== 'NotFound') throw e;
    }
    // Creating an existing local volume is a no-op, so a concurrent create is harmless.
    await this.call('other', signal, () => this.docker.createVolume({ Name: name, Driver: 'local', Labels: labels, abortSignal: signal }));
  }

  async listVolumes(labels: Record<string, string>, signal?: AbortSignal): Promise<{ name: string; labels: Record<string, string> }[]> {
    const result = await this.call('other', signal, () =>
      this.docker.listVolumes({ filters: { label: labelFilter(labels) }, abortSignal: signal } as Docker.VolumeListOptions),
    );
    return (result.Volumes ?? []).map((v) => ({ name: v.Name, labels: v.Labels ?? {} }));
  }

  async removeVolume(name: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.call('other', signal, () => this.docker.getVolume(name).remove({ abortSignal: signal } as Docker.VolumeRemoveOptions));
    } catch (e) {
      if ((e as BerthError).reason === 'NotFound') return;
      throw e;
    }
  }

  watchEvents(
    labels: Record<string, string>,
    onEvent: (e: RuntimeEvent) => void,
    onConnection: (connected: boolean, error?: Error) => void,
    signal: AbortSignal,
  ): void {
    watchDockerEvents(this.docker, labels, onEvent, onConnection, signal, this.eventBackoff);
  }
}

/** 304 (already started / already stopped) is the state we asked for. */
function unlessNotModified(e: unknown): void {
  if (!isNotModified(e)) throw e;
}
