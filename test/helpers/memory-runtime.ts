// An in-memory ContainerRuntime for fast machine tests of the reconciler. It keeps the real
// adapter's semantics where callers depend on them (304 = success, 409 Conflict on a taken
// name, ImageNotFound on create, "already gone" = success, the same security validation), and
// adds hooks to break the world behind berth's back. No timers: safe under a simulated clock.
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
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
import { checkNetworkName, checkResolvedBindSources, validateContainerSpec } from '../../src/docker/container-config.js';
import { invalidImageName, parseImageReference } from '../../src/docker/image-reference.js';

export type ImageBehaviour = 'run' | 'crash';
export type RuntimeMethod = keyof ContainerRuntime;

/** One call that changed (or tried to change) the world. ensureNetwork/ensureVolume count only when they create. */
export interface RuntimeCall {
  method: RuntimeMethod;
  /** Container id or name, image ref, network or volume name. */
  target: string;
}

interface MemContainer {
  id: string;
  name: string;
  labels: Record<string, string>;
  image: string;
  imageId: string;
  state: ContainerState;
  created: number;
  /** Network name -> IP ('' while not running). */
  networks: Map<string, string>;
  volumes: string[];
  exitCode: number;
  restartCount: number;
  restartPolicy: string;
  startedAt?: string;
  finishedAt?: string;
  env: string[];
  logs: string[];
  followers: Set<PassThrough>;
}

interface MemImage {
  id: string;
  tags: Set<string>;
  labels: Record<string, string>;
  created: number;
}

interface Watcher {
  labels: Record<string, string>;
  onEvent: (e: RuntimeEvent) => void;
  onConnection: (connected: boolean, error?: Error) => void;
  signal: AbortSignal;
}

const MUTATING = new Set<RuntimeMethod>([
  'createContainer', 'startContainer', 'stopContainer', 'removeContainer', 'connectNetwork', 'restoreRestartPolicy',
  'pullImage', 'buildImage', 'removeImage', 'removeVolume',
]);

function hexId(): string {
  return randomBytes(32).toString('hex');
}

function matches(attributes: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(labels).every(([k, v]) => attributes[k] === v);
}

/** `name` means `name:latest`, as in the engine. */
function normalizeRef(ref: string): string {
  const parsed = parseImageReference(ref);
  if (!parsed) return ref;
  if (parsed.digest !== undefined) return `${parsed.name}@${parsed.digest}`;
  return `${parsed.name}:${parsed.tag ?? 'latest'}`;
}

function aborted(): BerthError {
  return new BerthError('transient', 'Aborted', 'operation aborted');
}

function unavailable(): BerthError {
  return new BerthError('transient', 'DockerUnavailable', 'cannot reach the Docker engine: connect ECONNREFUSED (memory runtime set unreachable)');
}

function notFound(message: string): BerthError {
  return new BerthError('waiting', 'NotFound', message);
}

export class MemoryRuntime implements ContainerRuntime {
  /** Log of mutating calls, oldest first (assert "no mutating call" with `calls.length === 0`). */
  readonly calls: RuntimeCall[] = [];
  private readonly containerMap = new Map<string, MemContainer>();
  private readonly images = new Map<string, MemImage>();
  /** Refs a pull can fetch: ref -> labels of the image. */
  private readonly registry = new Map<string, Record<string, string>>();
  private readonly networks = new Map<string, { id: string; labels: Record<string, string> }>();
  private readonly volumes = new Map<string, Record<string, string>>();
  private readonly failures = new Map<RuntimeMethod, Error[]>();
  private readonly behaviours = new Map<string, ImageBehaviour>();
  private readonly watchers = new Set<Watcher>();
  private reachable = true;
  private nextIp = 2;
  private readonly now: () => Date;

  constructor(options: { now?: () => Date } = {}) {
    this.now = options.now ?? (() => new Date());
  }

  // ---- test hooks -------------------------------------------------------------------------

  /** A local image (as if built or pulled earlier). */
  addImage(ref: string, labels: Record<string, string> = {}): ImageInfo {
    const tag = normalizeRef(ref);
    this.untag(tag);
    const image: MemImage = { id: `sha256:${hexId()}`, tags: new Set([tag]), labels: { ...labels }, created: this.seconds() };
    this.images.set(image.id, image);
    return this.imageInfo(image);
  }

  /** An image a pull can fetch; pulls of anything else fail with ImagePullFailed. */
  addRegistryImage(ref: string, labels: Record<string, string> = {}): void {
    this.registry.set(normalizeRef(ref), { ...labels });
  }

  /** 'crash': containers of this image exit with status 1 right after each start (and the restart policy keeps trying). */
  setImageBehaviour(ref: string, behaviour: ImageBehaviour): void {
    this.behaviours.set(normalizeRef(ref), behaviour);
  }

  /** The next call of `method` rejects with `error` (queued: several calls fail in order). */
  failNext(method: RuntimeMethod, error: Error): void {
    const queue = this.failures.get(method) ?? [];
    queue.push(error);
    this.failures.set(method, queue);
  }

  /** false: every call rejects DockerUnavailable and watchers see onConnection(false); true: watchers reconnect. */
  setReachable(reachable: boolean): void {
    if (this.reachable === reachable) return;
    this.reachable = reachable;
    for (const w of this.watchers) this.notifyConnection(w);
  }

  /** The container dies as if killed (`docker kill`): exited, status 137, not restarted. */
  killContainer(idOrName: string, exitCode = 137): void {
    const c = this.mustFind(idOrName);
    if (c.state !== 'running' && c.state !== 'restarting') return;
    this.emitContainer(c, 'kill', { signal: '9' });
    this.markDead(c, exitCode);
  }

  /** Someone runs `docker update --restart=<policy>` on a container. */
  changeRestartPolicy(id: string, policy: string): void {
    const c = this.find(id);
    if (!c) throw notFound(`No such container: ${id}`);
    c.restartPolicy = policy;
    this.emitContainer(c, 'update');
  }

  /** Someone else creates a container (without berth's labels) under this name. */
  addForeignContainer(name: string, image: string): void {
    const img = this.findImage(image);
    const id = hexId();
    this.containerMap.set(id, {
      id, name, labels: { owner: 'someone-else' }, image, imageId: img?.id ?? '', state: 'created', created: this.seconds(),
      networks: new Map(), volumes: [], exitCode: 0, restartCount: 0, restartPolicy: RESTART_POLICY, env: [], logs: [], followers: new Set(),
    });
  }

  /** The container is force-removed by someone else (`docker rm -f`). */
  removeBehindBack(idOrName: string): void {
    const c = this.mustFind(idOrName);
    this.destroy(c);
  }

  /** The container is disconnected from a network by someone else (`docker network disconnect`). */
  disconnectBehindBack(network: string, idOrName: string): void {
    const c = this.mustFind(idOrName);
    if (!c.networks.delete(network)) return;
    this.emitNetwork(network, 'disconnect', c);
  }

  /** The network is removed by someone else (its containers disconnected first, as `docker network rm` requires). */
  removeNetworkBehindBack(name: string): void {
    const network = this.networks.get(name);
    if (!network) return;
    for (const c of this.containerMap.values()) if (c.networks.delete(name)) this.emitNetwork(name, 'disconnect', c);
    this.networks.delete(name);
    this.emit({ type: 'network', action: 'destroy', id: network.id, attributes: { ...network.labels, name } });
  }

  /** The image is removed by someone else (`docker rmi -f`). */
  removeImageBehindBack(ref: string): void {
    const image = this.findImage(ref);
    if (image) this.images.delete(image.id);
  }

  /** Appends text to a container's log (and to followers of it). */
  writeLog(idOrName: string, text: string): void {
    const c = this.mustFind(idOrName);
    c.logs.push(text);
    for (const f of c.followers) f.write(text);
  }

  /** Inspect without a call: for assertions. */
  container(idOrName: string): ContainerDetails | undefined {
    const c = this.find(idOrName);
    return c && this.details(c);
  }

  /** Every container, for assertions. */
  allContainers(): ContainerDetails[] {
    return [...this.containerMap.values()].map((c) => this.details(c));
  }

  // ---- ContainerRuntime -------------------------------------------------------------------

  async ping(signal?: AbortSignal): Promise<void> {
    await this.enter('ping', signal);
  }

  async listContainers(labels: Record<string, string>, signal?: AbortSignal): Promise<ContainerSummary[]> {
    await this.enter('listContainers', signal);
    return [...this.containerMap.values()].filter((c) => matches(c.labels, labels)).map((c) => this.summary(c));
  }

  async inspectContainer(id: string, signal?: AbortSignal): Promise<ContainerDetails | undefined> {
    await this.enter('inspectContainer', signal);
    const c = this.find(id);
    return c && this.details(c);
  }

  async createContainer(spec: ContainerSpec, signal?: AbortSignal): Promise<string> {
    await this.enter('createContainer', signal, spec.name);
    validateContainerSpec(spec);
    await checkResolvedBindSources(spec);
    const taken = this.find(spec.name);
    if (taken) {
      throw new BerthError('waiting', 'Conflict', `Conflict. The container name "/${spec.name}" is already in use by container "${taken.id}".`);
    }
    const image = this.findImage(spec.image);
    if (!image) throw new BerthError('waiting', 'ImageNotFound', `No such image: ${spec.image}`);
    // Like the engine, a missing network is only noticed at start.
    const volumes: string[] = [];
    for (const m of spec.mounts) {
      if (m.type !== 'volume') continue;
      volumes.push(m.source);
      // Like the engine, a missing named volume is created with the container (labelled, see container-config).
      if (!this.volumes.has(m.source)) this.volumes.set(m.source, { ...spec.labels });
    }
    const c: MemContainer = {
      id: hexId(),
      name: spec.name,
      // The engine merges the image's labels under the container's.
      labels: { ...image.labels, ...spec.labels },
      image: spec.image,
      imageId: image.id,
      state: 'created',
      created: this.seconds(),
      networks: new Map([[spec.network, '']]),
      volumes,
      exitCode: 0,
      restartCount: 0,
      restartPolicy: RESTART_POLICY,
      env: [...spec.env],
      logs: [],
      followers: new Set(),
    };
    this.containerMap.set(c.id, c);
    this.emitContainer(c, 'create');
    return c.id;
  }

  async startContainer(id: string, signal?: AbortSignal): Promise<void> {
    await this.enter('startContainer', signal, id);
    const c = this.find(id);
    if (!c) throw notFound(`No such container: ${id}`);
    if (c.state === 'running' || c.state === 'restarting') return; // 304
    for (const network of c.networks.keys()) {
      if (!this.networks.has(network)) throw notFound(`network ${network} not found`);
    }
    c.state = 'running';
    c.startedAt = this.now().toISOString();
    for (const network of c.networks.keys()) {
      c.networks.set(network, this.allocateIp());
      this.emitNetwork(network, 'connect', c);
    }
    this.emitContainer(c, 'start');
    if (this.behaviours.get(normalizeRef(c.image)) === 'crash') {
      this.markDead(c, 1);
      // unless-stopped: the engine keeps restarting it with a growing delay.
      c.state = 'restarting';
      c.restartCount += 1;
    }
  }

  async stopContainer(id: string, _timeoutSeconds: number, signal?: AbortSignal): Promise<void> {
    await this.enter('stopContainer', signal, id);
    const c = this.find(id);
    if (!c) throw notFound(`No such container: ${id}`);
    if (c.state !== 'running' && c.state !== 'restarting' && c.state !== 'paused') return; // 304
    if (c.state === 'running') this.emitContainer(c, 'kill', { signal: '15' });
    // tini forwards SIGTERM; the app exits by the signal: 128 + 15.
    this.markDead(c, c.state === 'running' ? 143 : c.exitCode);
    this.emitContainer(c, 'stop');
  }

  async removeContainer(id: string, signal?: AbortSignal): Promise<void> {
    await this.enter('removeContainer', signal, id);
    const c = this.find(id);
    if (c) this.destroy(c);
  }

  async restoreRestartPolicy(containerId: string, signal?: AbortSignal): Promise<void> {
    await this.enter('restoreRestartPolicy', signal, containerId);
    const c = this.find(containerId);
    if (!c) throw notFound(`No such container: ${containerId}`);
    c.restartPolicy = RESTART_POLICY;
  }

  async connectNetwork(network: string, containerId: string, _aliases: string[], signal?: AbortSignal): Promise<void> {
    await this.enter('connectNetwork', signal, containerId);
    checkNetworkName(network);
    const c = this.find(containerId);
    if (!c) throw notFound(`No such container: ${containerId}`);
    // The engine only checks the network of a running container; a stopped one fails at start.
    if (c.state === 'running' && !this.networks.has(network)) throw notFound(`network ${network} not found`);
    if (c.networks.has(network)) return;
    c.networks.set(network, c.state === 'running' ? this.allocateIp() : '');
    this.emitNetwork(network, 'connect', c);
  }

  async containerLogs(id: string, opts: { follow: boolean; tail?: number; signal?: AbortSignal }): Promise<Readable> {
    await this.enter('containerLogs', opts.signal);
    const c = this.find(id);
    if (!c) throw notFound(`No such container: ${id}`);
    const text = c.logs.join('');
    const lines = text.split(/(?<=\n)/).filter((l) => l !== '');
    const shown = opts.tail === undefined ? lines : lines.slice(Math.max(0, lines.length - opts.tail));
    if (!opts.follow) return Readable.from([shown.join('')]);
    const out = new PassThrough();
    out.write(shown.join(''));
    c.followers.add(out);
    const stop = (): void => {
      c.followers.delete(out);
      out.end();
    };
    opts.signal?.addEventListener('abort', stop, { once: true });
    out.on('close', () => opts.signal?.removeEventListener('abort', stop));
    return out;
  }

  async inspectImage(ref: string, signal?: AbortSignal): Promise<ImageInfo | undefined> {
    await this.enter('inspectImage', signal);
    if (!ref.startsWith('sha256:') && !parseImageReference(ref)) throw invalidImageName(ref);
    const image = this.findImage(ref);
    return image && this.imageInfo(image);
  }

  async listImages(labels: Record<string, string>, signal?: AbortSignal): Promise<ImageInfo[]> {
    await this.enter('listImages', signal);
    return [...this.images.values()].filter((i) => matches(i.labels, labels)).map((i) => this.imageInfo(i));
  }

  async pullImage(ref: string, signal?: AbortSignal, onProgress?: (line: string) => void): Promise<void> {
    await this.enter('pullImage', signal, ref);
    if (!parseImageReference(ref)) throw invalidImageName(ref);
    const tag = normalizeRef(ref);
    const labels = this.registry.get(tag);
    if (!labels) {
      throw new BerthError('transient', 'ImagePullFailed', `pulling ${ref}: pull access denied for ${ref}, repository does not exist or may require 'docker login'`);
    }
    onProgress?.(`Pulling from ${tag}`);
    if (!this.findImage(tag)) this.addImage(tag, labels);
    onProgress?.(`Status: Downloaded newer image for ${tag}`);
  }

  async buildImage(context: Readable, opts: BuildOptions, signal?: AbortSignal, onLine?: (line: string) => void): Promise<void> {
    try {
      await this.enter('buildImage', signal, opts.tag);
      if (!parseImageReference(opts.tag)) throw invalidImageName(opts.tag);
      await drain(context, signal);
    } catch (e) {
      context.destroy();
      throw e;
    }
    onLine?.(`Successfully tagged ${opts.tag}`);
    this.addImage(opts.tag, opts.labels);
  }

  async removeImage(ref: string, signal?: AbortSignal): Promise<void> {
    await this.enter('removeImage', signal, ref);
    const image = this.findImage(ref);
    if (!image) return;
    // In use by a container: the engine answers 409, which berth swallows.
    if ([...this.containerMap.values()].some((c) => c.imageId === image.id)) return;
    if (ref === image.id) image.tags.clear();
    else image.tags.delete(normalizeRef(ref));
    if (image.tags.size === 0) this.images.delete(image.id);
  }

  async ensureNetwork(name: string, labels: Record<string, string>, signal?: AbortSignal): Promise<string> {
    await this.enter('ensureNetwork', signal);
    checkNetworkName(name);
    const existing = this.networks.get(name);
    if (existing) return existing.id;
    this.calls.push({ method: 'ensureNetwork', target: name });
    const network = { id: hexId(), labels: { ...labels } };
    this.networks.set(name, network);
    this.emit({ type: 'network', action: 'create', id: network.id, attributes: { ...labels, name } });
    return network.id;
  }

  async networkExists(name: string, signal?: AbortSignal): Promise<boolean> {
    await this.enter('networkExists', signal);
    return this.networks.has(name);
  }

  async ensureVolume(name: string, labels: Record<string, string>, signal?: AbortSignal): Promise<void> {
    await this.enter('ensureVolume', signal);
    if (this.volumes.has(name)) return;
    this.calls.push({ method: 'ensureVolume', target: name });
    this.volumes.set(name, { ...labels });
    this.emit({ type: 'volume', action: 'create', id: name, attributes: { ...labels, name } });
  }

  async listVolumes(labels: Record<string, string>, signal?: AbortSignal): Promise<{ name: string; labels: Record<string, string> }[]> {
    await this.enter('listVolumes', signal);
    return [...this.volumes].filter(([, l]) => matches(l, labels)).map(([name, l]) => ({ name, labels: { ...l } }));
  }

  async removeVolume(name: string, signal?: AbortSignal): Promise<void> {
    await this.enter('removeVolume', signal, name);
    const labels = this.volumes.get(name);
    if (!labels) return;
    const users = [...this.containerMap.values()].filter((c) => c.volumes.includes(name)).map((c) => c.id);
    if (users.length > 0) throw new BerthError('waiting', 'Conflict', `remove ${name}: volume is in use - [${users.join(', ')}]`);
    this.volumes.delete(name);
    this.emit({ type: 'volume', action: 'destroy', id: name, attributes: { ...labels, name } });
  }

  watchEvents(
    labels: Record<string, string>,
    onEvent: (e: RuntimeEvent) => void,
    onConnection: (connected: boolean, error?: Error) => void,
    signal: AbortSignal,
  ): void {
    if (signal.aborted) return;
    const watcher: Watcher = { labels, onEvent, onConnection, signal };
    this.watchers.add(watcher);
    signal.addEventListener('abort', () => this.watchers.delete(watcher), { once: true });
    this.notifyConnection(watcher);
  }

  // ---- internals --------------------------------------------------------------------------

  /** Every call is asynchronous (like the engine), then honours abort, reachability and failNext. */
  private async enter(method: RuntimeMethod, signal: AbortSignal | undefined, target?: string): Promise<void> {
    if (MUTATING.has(method)) this.calls.push({ method, target: target ?? '' });
    await Promise.resolve();
    if (signal?.aborted) throw aborted();
    if (!this.reachable) throw unavailable();
    const failure = this.failures.get(method)?.shift();
    if (failure) throw failure;
  }

  private seconds(): number {
    return Math.floor(this.now().getTime() / 1000);
  }

  private allocateIp(): string {
    const n = this.nextIp++;
    return `10.89.${Math.floor(n / 250) % 256}.${(n % 250) + 2}`;
  }

  private find(idOrName: string): MemContainer | undefined {
    const byId = this.containerMap.get(idOrName);
    if (byId) return byId;
    for (const c of this.containerMap.values()) if (c.name === idOrName || (idOrName.length >= 12 && c.id.startsWith(idOrName))) return c;
    return undefined;
  }

  private mustFind(idOrName: string): MemContainer {
    const c = this.find(idOrName);
    if (!c) throw new Error(`memory runtime: no container ${idOrName}`);
    return c;
  }

  private findImage(ref: string): MemImage | undefined {
    const byId = this.images.get(ref);
    if (byId) return byId;
    const tag = normalizeRef(ref);
    for (const image of this.images.values()) if (image.tags.has(tag)) return image;
    return undefined;
  }

  private untag(tag: string): void {
    for (const image of this.images.values()) image.tags.delete(tag);
  }

  private markDead(c: MemContainer, exitCode: number): void {
    c.state = 'exited';
    c.exitCode = exitCode;
    c.finishedAt = this.now().toISOString();
    this.emitContainer(c, 'die', { exitCode: String(exitCode) });
    for (const network of c.networks.keys()) {
      c.networks.set(network, '');
      this.emitNetwork(network, 'disconnect', c);
    }
  }

  private destroy(c: MemContainer): void {
    if (c.state === 'running' || c.state === 'restarting') {
      this.emitContainer(c, 'kill', { signal: '9' });
      this.markDead(c, 137);
    }
    for (const f of c.followers) f.end();
    this.containerMap.delete(c.id);
    this.emitContainer(c, 'destroy');
  }

  private summary(c: MemContainer): ContainerSummary {
    return {
      id: c.id,
      name: c.name,
      labels: { ...c.labels },
      image: c.image,
      imageId: c.imageId,
      state: c.state,
      created: c.created,
      networks: Object.fromEntries(c.networks),
    };
  }

  private details(c: MemContainer): ContainerDetails {
    const d: ContainerDetails = { ...this.summary(c), exitCode: c.exitCode, oomKilled: false, restartCount: c.restartCount, restartPolicy: c.restartPolicy, env: [...c.env] };
    if (c.startedAt) d.startedAt = c.startedAt;
    if (c.finishedAt) d.finishedAt = c.finishedAt;
    return d;
  }

  private imageInfo(i: MemImage): ImageInfo {
    return { id: i.id, tags: [...i.tags], labels: { ...i.labels }, created: i.created };
  }

  private emitContainer(c: MemContainer, action: string, extra: Record<string, string> = {}): void {
    this.emit({ type: 'container', action, id: c.id, attributes: { ...c.labels, name: c.name, image: c.image, ...extra } });
  }

  /** Network events carry the container's labels, as the real adapter reports them. */
  private emitNetwork(network: string, action: 'connect' | 'disconnect', c: MemContainer): void {
    const id = this.networks.get(network)?.id ?? network;
    this.emit({ type: 'network', action, id, attributes: { ...c.labels, name: c.name, image: c.image, container: c.id, network } });
  }

  private emit(event: Omit<RuntimeEvent, 'time'>): void {
    const full: RuntimeEvent = { ...event, time: this.seconds() };
    if (!this.reachable) return;
    for (const w of this.watchers) {
      if (!matches(full.attributes, w.labels)) continue;
      // Delivered after the current call returns, as events arrive from the engine.
      queueMicrotask(() => {
        if (!w.signal.aborted && this.reachable) w.onEvent({ ...full, attributes: { ...full.attributes } });
      });
    }
  }

  private notifyConnection(w: Watcher): void {
    const reachable = this.reachable;
    queueMicrotask(() => {
      if (w.signal.aborted) return;
      if (reachable) w.onConnection(true);
      else w.onConnection(false, unavailable());
    });
  }
}

/** Reads a build context to its end (the real engine uploads all of it), or stops on abort. */
function drain(stream: Readable, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      stream.destroy();
      reject(aborted());
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    stream.on('data', () => undefined);
    stream.once('end', () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    stream.once('error', (e) => {
      signal?.removeEventListener('abort', onAbort);
      reject(e);
    });
  });
}
