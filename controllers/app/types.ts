// The vocabulary of the App controller: what it wants (desired), what it sees (observed),
// and what it does (actions). Everything here is plain data.
import type { App } from '../../src/api/types.generated.js';
import type { Problem } from '../../src/manifests/loader.js';
import type { ContainerSpec, ContainerSummary, ImageInfo } from '../ports/container-runtime.js';
import type { BuildSpec } from '../ports/image-builder.js';

/** The App as the controller must realise it. */
export interface AppDesired {
  name: string;
  generation: number;
  /** Last good manifest, validated and defaulted. */
  app: App;
  /** Why the manifest as written now is not applied: InvalidSpec, DuplicateName, RouteConflict. */
  problems: Problem[];
  /** The image to run: spec.image, or the tag of the built revision; undefined while a build is needed. */
  image: string | undefined;
  /** Built apps: the commit (or content hash) the image comes from. */
  revision?: string;
  /** Built apps: how to build `image` when it is not present. */
  build?: BuildSpec;
  /** Built apps whose revision is not known yet: what it waits for. */
  waiting?: { reason: string; message: string };
  /** Values of spec.secretEnv (and nothing else); missing names listed apart. */
  secrets: Record<string, string>;
  missingSecrets: string[];
}

/** Operator-wide settings the planner needs. */
export interface PlanConfig {
  instance: string;
  network: string;
  /** Host folders under which hostPath volumes may live (already resolved). */
  allowHostPath: string[];
}

export interface ObservedContainer extends ContainerSummary {
  /** Value of the spec-hash label. */
  hash: string;
  replica: number;
  /** From an inspect, for running and restarting containers only (a list does not say). */
  restartPolicy?: string;
  restartCount?: number;
  exitCode?: number;
  oomKilled?: boolean;
}

export interface ObservedHostPath {
  path: string;
  /** realpath of the path, when it exists. */
  resolved?: string;
  error?: string;
}

export interface Observed {
  containers: ObservedContainer[];
  /** The desired image, when present locally. */
  image: ImageInfo | undefined;
  networkExists: boolean;
  /** This app's volumes that exist, with the reclaim policy they were labelled with. */
  volumes: { name: string; reclaimPolicy: string }[];
  hostPaths: ObservedHostPath[];
}

/** Facts about the app that cannot be observed and are persisted in the state. */
export interface AppFactsView {
  activeHash?: string;
  failedHash?: string;
  failedReason?: { reason: string; message: string };
}

/** Why an action is taken, for the event it leaves in the status. */
export interface Because {
  reason: string;
  message: string;
}

export type Action =
  | { type: 'ensureNetwork' }
  | { type: 'ensureVolume'; volume: string; reclaimPolicy: 'Retain' | 'Delete' }
  | { type: 'pullImage'; ref: string }
  | { type: 'buildImage'; build: BuildSpec; hash: string }
  | { type: 'createContainer'; spec: ContainerSpec; because: Because }
  | { type: 'startContainer'; container: string; because: Because }
  | { type: 'connectNetwork'; container: string; aliases: string[]; because: Because }
  | { type: 'restoreRestartPolicy'; container: string; because: Because }
  /** rollout: these containers are a new version (a failure rolls back) rather than the running one restarting. */
  | { type: 'waitHealthy'; containers: string[]; hash: string; startPeriodMs: number; rollout: boolean }
  | { type: 'promote'; hash: string }
  | { type: 'stopContainer'; container: string; timeoutSeconds: number; because: Because }
  | { type: 'removeContainer'; container: string; because: Because }
  | { type: 'removeVolume'; volume: string };

/** What a phase of work is called in the status while it runs. */
export type WorkPhase = 'Building' | 'Deploying' | 'Waking' | 'Deleting' | 'Sleeping';

export type Plan =
  | { kind: 'act'; phase: WorkPhase; actions: Action[] }
  /** Nothing to do; `serving` tells whether containers answer (false: asleep or scaled to zero). */
  | { kind: 'converged'; serving: boolean }
  /** Cannot make progress until the spec changes or a retry is asked. */
  | { kind: 'stalled'; reason: string; message: string }
  /** Waits for an input another part of berth provides (a build revision); not a failure. */
  | { kind: 'waiting'; reason: string; message: string }
  | { kind: 'paused' }
  | { kind: 'deleted' };
