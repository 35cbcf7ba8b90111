// The container runtime as the controllers see it: small one-purpose methods, each taking an
// AbortSignal. The Docker implementation lives in src/docker/; tests use an in-memory one.
// Implementations classify engine errors into BerthError (see errors.ts) with these reasons:
//   DockerUnavailable (transient)  the engine cannot be reached
//   NotFound (waiting)             the object does not exist
//   ImageNotFound (waiting)        create found no such image locally (pull it)
//   Conflict (waiting)             a name is taken (e.g. by a container berth does not own)
//   InvalidImageName (stalled)     the reference cannot be parsed
//   ImagePullFailed (transient)    the registry failed or the image does not exist
//   BuildFailed (stalled)          a build step failed (from the progress stream)
//   ForbiddenMount, ForbiddenNetworkMode, InvalidContainerSpec (stalled)
//                                  refused before reaching the engine (defence in depth)
//   Timeout (transient)            a pull or build ran past its deadline
//   DockerError (transient)        anything else the engine reported
// Starting a running container or stopping a stopped one (HTTP 304) is success.

import type { Readable } from 'node:stream';

/** The only restart policy berth sets: `always` would wake apps berth put to sleep with a stop after a daemon restart. */
export const RESTART_POLICY = 'unless-stopped';

export type ContainerState = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

/** What a list call tells about a container (no per-container inspect needed). */
export interface ContainerSummary {
  id: string;
  /** Without the leading slash. */
  name: string;
  labels: Record<string, string>;
  image: string;
  imageId: string;
  state: ContainerState;
  /** Unix seconds. */
  created: number;
  /** Network name -> IPv4 address ('' when not running). */
  networks: Record<string, string>;
}

/** Inspect: the summary plus what drift detection, health and the security audit need. */
export interface ContainerDetails extends ContainerSummary {
  startedAt?: string;
  finishedAt?: string;
  exitCode: number;
  oomKilled: boolean;
  restartCount: number;
  /** HostConfig.RestartPolicy.Name ('' when none). */
  restartPolicy: string;
  /** Docker HEALTHCHECK status when the image defines one. */
  health?: 'starting' | 'healthy' | 'unhealthy';
  env: string[];
}

export interface MountSpec {
  type: 'volume' | 'bind';
  /** Volume name or absolute host path. */
  source: string;
  target: string;
  readOnly: boolean;
}

/** Everything berth sets on a container. Security settings are not options: the runtime always applies them. */
export interface ContainerSpec {
  name: string;
  image: string;
  labels: Record<string, string>;
  env: string[];
  command?: string[];
  /** Container port serving HTTP (exposed, never published on the host). */
  port: number;
  memoryBytes: number;
  nanoCpus: number;
  pidsLimit: number;
  mounts: MountSpec[];
  network: string;
  /** Network aliases on `network` (the app name, so apps reach each other by name). */
  aliases: string[];
  stopTimeoutSeconds: number;
}

export interface ImageInfo {
  id: string;
  tags: string[];
  labels: Record<string, string>;
  /** Unix seconds. */
  created: number;
}

export interface RuntimeEvent {
  type: 'container' | 'image' | 'network' | 'volume';
  action: string;
  id: string;
  /** Labels/attributes of the object (for containers: its labels and name). */
  attributes: Record<string, string>;
  /** Unix seconds. */
  time: number;
}

export interface BuildOptions {
  tag: string;
  dockerfile: string;
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  memoryBytes?: number;
}

export interface ContainerRuntime {
  /** Resolves when the engine answers; rejects with DockerUnavailable otherwise. */
  ping(signal?: AbortSignal): Promise<void>;

  listContainers(labels: Record<string, string>, signal?: AbortSignal): Promise<ContainerSummary[]>;
  /** undefined when the container does not exist. */
  inspectContainer(id: string, signal?: AbortSignal): Promise<ContainerDetails | undefined>;
  /** Conflict when the name is taken. Applies berth's security defaults (see src/docker). */
  createContainer(spec: ContainerSpec, signal?: AbortSignal): Promise<string>;
  startContainer(id: string, signal?: AbortSignal): Promise<void>;
  stopContainer(id: string, timeoutSeconds: number, signal?: AbortSignal): Promise<void>;
  /** Force-removes; a missing container is success. */
  removeContainer(id: string, signal?: AbortSignal): Promise<void>;
  connectNetwork(network: string, containerId: string, aliases: string[], signal?: AbortSignal): Promise<void>;
  /** Puts RESTART_POLICY back on a container someone changed with `docker update --restart`. */
  restoreRestartPolicy(containerId: string, signal?: AbortSignal): Promise<void>;
  /** Demultiplexed stdout+stderr text. */
  containerLogs(id: string, opts: { follow: boolean; tail?: number; signal?: AbortSignal }): Promise<Readable>;

  /** undefined when not present locally. */
  inspectImage(ref: string, signal?: AbortSignal): Promise<ImageInfo | undefined>;
  listImages(labels: Record<string, string>, signal?: AbortSignal): Promise<ImageInfo[]>;
  pullImage(ref: string, signal?: AbortSignal, onProgress?: (line: string) => void): Promise<void>;
  /** Builds from a tar stream; BuildFailed carries the failing step's message. */
  buildImage(context: Readable, opts: BuildOptions, signal?: AbortSignal, onLine?: (line: string) => void): Promise<void>;
  /** A missing image is success; an image used by a container is left alone (Conflict swallowed). */
  removeImage(ref: string, signal?: AbortSignal): Promise<void>;

  /** Creates the network if missing (labelled); returns its id. */
  ensureNetwork(name: string, labels: Record<string, string>, signal?: AbortSignal): Promise<string>;
  networkExists(name: string, signal?: AbortSignal): Promise<boolean>;
  /** Creates the volume if missing (labelled). */
  ensureVolume(name: string, labels: Record<string, string>, signal?: AbortSignal): Promise<void>;
  listVolumes(labels: Record<string, string>, signal?: AbortSignal): Promise<{ name: string; labels: Record<string, string> }[]>;
  removeVolume(name: string, signal?: AbortSignal): Promise<void>;

  /**
   * Docker events for objects with these labels, forever: reconnects with backoff after the
   * daemon goes away (replaying with `since`), deduplicates, and calls onConnection on every
   * connect/disconnect so callers can resync. Ends when the signal aborts.
   */
  watchEvents(
    labels: Record<string, string>,
    onEvent: (e: RuntimeEvent) => void,
    onConnection: (connected: boolean, error?: Error) => void,
    signal: AbortSignal,
  ): void;
}
