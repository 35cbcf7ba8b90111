// The engine's event stream, made dependable enough to be a hint: it never reconnects on its own
// (a daemon restart ends it with ECONNRESET and no `end`), so we reconnect forever with capped
// backoff, replay with `since`, and drop the duplicates that replay brings. Events stay hints:
// callers resync on every onConnection(true).
//
// Labels are matched here, not by the engine: network and volume events carry no labels, and a
// server-side label filter would hide `network disconnect` (drift) entirely. So we remember which
// containers, networks and volumes carry the labels (listed on every connect, then followed by
// their create/destroy events) and pass on the events about them.
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import type { RuntimeEvent } from '../../controllers/ports/container-runtime.js';
import { BerthError } from '../../controllers/ports/errors.js';
import { classifyDockerError } from './classify-docker-error.js';
import { readNdjson } from './ndjson-stream.js';

export interface EventBackoff {
  minDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_EVENT_BACKOFF: EventBackoff = { minDelayMs: 250, maxDelayMs: 10_000 };

type EventType = RuntimeEvent['type'];
const EVENT_TYPES: EventType[] = ['container', 'image', 'network', 'volume'];
/** Lifecycle actions only: exec_* (health probes of unrelated containers) would be constant noise. */
const ACTIONS = [
  'create', 'start', 'restart', 'die', 'stop', 'kill', 'oom', 'destroy', 'pause', 'unpause', 'rename', 'update',
  'health_status', 'connect', 'disconnect', 'delete', 'tag', 'untag',
];

interface EngineEvent {
  Type?: string;
  Action?: string;
  status?: string;
  id?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  time?: number;
}

type Attributes = Record<string, string>;

function matches(attributes: Attributes, labels: Record<string, string>): boolean {
  return Object.entries(labels).every(([k, v]) => attributes[k] === v);
}

/** The engine's `label` filter: k=v for each label (all must match). */
export function labelFilter(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`);
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** A container's labels, name and image, without what one event adds (exit code, signal). */
function withoutEventDetails(attrs: Attributes): Attributes {
  const { exitCode: _exitCode, signal: _signal, ...rest } = attrs;
  return rest;
}

/** Call a caller's callback; its exceptions must not end the watch. */
function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // The callback's failure is the caller's to log; the watch goes on.
  }
}

/** Watches until the signal aborts; no timer or socket is left behind afterwards. */
export function watchDockerEvents(
  docker: Docker,
  labels: Record<string, string>,
  onEvent: (e: RuntimeEvent) => void,
  onConnection: (connected: boolean, error?: Error) => void,
  signal: AbortSignal,
  backoff: EventBackoff = DEFAULT_EVENT_BACKOFF,
): void {
  void new EventWatcher(docker, labels, onEvent, onConnection, backoff).run(signal);
}

class EventWatcher {
  /** Owned objects: container id / network id / volume name -> labels plus name. */
  private readonly containers = new Map<string, Attributes>();
  private readonly networks = new Map<string, Attributes>();
  private readonly volumes = new Map<string, Attributes>();
  /** Dedupe keys of events at or after `since`, with their time (older keys cannot be replayed). */
  private readonly seen = new Map<string, number>();
  /** The `since` of the next connection: the last event's time (Unix seconds), or the first connection's. */
  private since: number | undefined;
  private state: 'unknown' | 'up' | 'down' = 'unknown';
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly docker: Docker,
    private readonly labels: Record<string, string>,
    private readonly onEvent: (e: RuntimeEvent) => void,
    private readonly onConnection: (connected: boolean, error?: Error) => void,
    private readonly backoff: EventBackoff,
  ) {}

  async run(signal: AbortSignal): Promise<void> {
    let delay = this.backoff.minDelayMs;
    while (!signal.aborted) {
      // One controller per connection, so listeners on the long-lived signal do not pile up.
      const connection = new AbortController();
      const forward = (): void => connection.abort(signal.reason);
      signal.addEventListener('abort', forward, { once: true });
      let loss: unknown;
      try {
        await this.connect(connection.signal, () => (delay = this.backoff.minDelayMs));
        loss = new BerthError('transient', 'DockerUnavailable', 'the Docker event stream ended');
      } catch (e) {
        loss = e;
      } finally {
        signal.removeEventListener('abort', forward);
        connection.abort();
      }
      if (signal.aborted) return;
      if (this.state !== 'down') {
        this.state = 'down';
        const error = classifyDockerError(loss);
        safely(() => this.onConnection(false, error));
      }
      try {
        await sleep(delay, undefined, { signal });
      } catch {
        return;
      }
      delay = Math.min(delay * 2, this.backoff.maxDelayMs);
    }
  }

  private async connect(signal: AbortSignal, onUp: () => void): Promise<void> {
    const openedAt = nowSeconds();
    const options: Docker.GetEventsOptions = {
      filters: { type: EVENT_TYPES, event: ACTIONS },
      abortSignal: signal,
    };
    if (this.since !== undefined) options.since = this.since;
    const stream = (await this.docker.getEvents(options)) as Readable;
    try {
      // The stream buffers (paused) while we learn what we own, so nothing is lost in between.
      await this.learnOwnedObjects(signal);
    } catch (e) {
      stream.destroy();
      throw e;
    }
    // Later connections replay from the last event seen (or from this first connection).
    this.since ??= openedAt;
    this.state = 'up';
    onUp();
    safely(() => this.onConnection(true));
    try {
      await readNdjson(stream, (raw, parsed) => this.enqueue(raw, parsed, signal), signal);
    } finally {
      await this.queue;
    }
  }

  private async learnOwnedObjects(signal: AbortSignal): Promise<void> {
    const filters = { label: labelFilter(this.labels) };
    const [containers, networks, volumes] = await Promise.all([
      this.docker.listContainers({ all: true, filters, abortSignal: signal }),
      this.docker.listNetworks({ filters, abortSignal: signal } as Docker.NetworkListOptions),
      this.docker.listVolumes({ filters, abortSignal: signal } as Docker.VolumeListOptions),
    ]);
    this.containers.clear();
    for (const c of containers) {
      this.containers.set(c.Id, { ...c.Labels, name: (c.Names[0] ?? '').replace(/^\//, ''), image: c.Image });
    }
    this.networks.clear();
    for (const n of networks) this.networks.set(n.Id, { ...n.Labels, name: n.Name });
    this.volumes.clear();
    for (const v of volumes.Volumes ?? []) this.volumes.set(v.Name, { ...v.Labels, name: v.Name });
  }

  /** Events are handled one at a time, in order, even when one needs an inspect. */
  private enqueue(raw: string, parsed: Record<string, unknown> | undefined, signal: AbortSignal): void {
    if (!parsed) return;
    this.queue = this.queue.then(() => this.handle(raw, parsed as EngineEvent, signal)).catch(() => undefined);
  }

  private async handle(raw: string, ev: EngineEvent, signal: AbortSignal): Promise<void> {
    const type = ev.Type as EventType | undefined;
    const id = ev.Actor?.ID ?? ev.id;
    const action = ev.Action ?? ev.status;
    if (!type || !EVENT_TYPES.includes(type) || !id || !action) return;
    const time = typeof ev.time === 'number' ? ev.time : nowSeconds();
    // timeNano exceeds 2^53, so it is read as text: as a number, two events could share a key.
    const nano = /"timeNano"\s*:\s*(\d+)/.exec(raw)?.[1] ?? String(time);
    const key = `${type}|${id}|${action}|${nano}`;
    if (this.seen.has(key)) return;
    this.seen.set(key, time);
    if (this.since === undefined || time > this.since) {
      this.since = time;
      this.prune();
    }
    const attributes = await this.ownedAttributes(type, id, action, ev.Actor?.Attributes ?? {}, signal);
    if (attributes && !signal.aborted) safely(() => this.onEvent({ type, action, id, attributes, time }));
  }

  private prune(): void {
    const since = this.since ?? 0;
    for (const [key, time] of this.seen) if (time < since) this.seen.delete(key);
  }

  /** The attributes to report when the event is about an owned object; undefined otherwise. */
  private async ownedAttributes(
    type: EventType,
    id: string,
    action: string,
    attrs: Attributes,
    signal: AbortSignal,
  ): Promise<Attributes | undefined> {
    switch (type) {
      case 'container':
      case 'image':
        if (!matches(attrs, this.labels)) return undefined;
        if (type === 'container') {
          if (action === 'destroy') this.containers.delete(id);
          else this.containers.set(id, withoutEventDetails(attrs));
        }
        return attrs;
      case 'network':
        if (action === 'connect' || action === 'disconnect') {
          const containerId = attrs.container ?? '';
          const owner = this.containers.get(containerId);
          return owner && { ...owner, container: containerId, network: attrs.name ?? '' };
        }
        return this.trackByInspect(this.networks, id, action, signal, async () => {
          const n: Docker.NetworkInspectInfo = await this.docker.getNetwork(id).inspect();
          return { ...n.Labels, name: n.Name };
        });
      case 'volume':
        return this.trackByInspect(this.volumes, id, action, signal, async () => {
          const v = await this.docker.getVolume(id).inspect();
          return { ...v.Labels, name: v.Name };
        });
    }
  }

  /** Networks and volumes: labels are learned by inspecting on create, remembered until destroy. */
  private async trackByInspect(
    owned: Map<string, Attributes>,
    id: string,
    action: string,
    signal: AbortSignal,
    inspect: () => Promise<Attributes>,
  ): Promise<Attributes | undefined> {
    if (action === 'destroy') {
      const attrs = owned.get(id);
      owned.delete(id);
      return attrs;
    }
    if (action !== 'create' || signal.aborted) return owned.get(id);
    const attrs = await inspect().catch(() => undefined);
    if (!attrs || !matches(attrs, this.labels)) return undefined;
    owned.set(id, attrs);
    return attrs;
  }
}
