/* Generated from crds/*.schema.json by scripts/gen-types.mjs. Do not edit. */

// app.v1alpha1.schema.json
/**
 * An environment variable name.
 *
 * This interface was referenced by `App`'s JSON-Schema
 * via the `definition` "EnvName".
 */
export type EnvName = string;
/**
 * A duration such as 90s, 5m, 1h30m.
 *
 * This interface was referenced by `App`'s JSON-Schema
 * via the `definition` "Duration".
 */
export type Duration = string;

/**
 * An application berth runs as Docker containers behind its reverse proxy.
 */
export interface App {
  /**
   * API group and version.
   */
  apiVersion: 'berth.dev/v1alpha1';
  /**
   * Object kind.
   */
  kind: 'App';
  metadata: ObjectMeta;
  spec: AppSpec;
}
/**
 * Identity of the object.
 *
 * This interface was referenced by `App`'s JSON-Schema
 * via the `definition` "ObjectMeta".
 */
export interface ObjectMeta {
  /**
   * DNS label, unique per kind across all manifests. Used in container, volume and status file names.
   */
  name: string;
  /**
   * Labels copied onto the app's containers.
   */
  labels?: {
    [k: string]: string | undefined;
  };
}
/**
 * Desired state of the app.
 *
 * This interface was referenced by `App`'s JSON-Schema
 * via the `definition` "AppSpec".
 */
export interface AppSpec {
  /**
   * Image reference; pulled when not present.
   */
  image?: string;
  build?: Build;
  /**
   * Container port serving HTTP.
   */
  port: number;
  /**
   * Overrides the image's command.
   *
   * @maxItems 256
   */
  command?: string[];
  /**
   * Environment variables.
   */
  env?: {
    [k: string]: string | number | boolean | undefined;
  };
  /**
   * Environment variables whose values come from berth secret set (encrypted at rest).
   *
   * @maxItems 256
   */
  secretEnv?: EnvName[];
  /**
   * Hosts and paths the proxy routes to this app.
   *
   * @maxItems 64
   */
  routes?: Route[];
  /**
   * auto: local CA for LAN names (.local .lan .home.arpa .internal, single labels, IPs), ACME for public names when --acme-email is set, else none.
   */
  tls: 'auto' | 'acme' | 'local' | 'none';
  /**
   * Number of containers; 0 keeps the app stopped.
   */
  replicas: number;
  resources: Resources;
  /**
   * Volumes to mount.
   *
   * @maxItems 64
   */
  volumes?: Volume[];
  healthCheck: HealthCheck;
  idle?: Idle;
  deploy: Deploy;
  /**
   * Leave everything as it is and report Paused.
   */
  paused: boolean;
}
/**
 * Build the image from source instead of pulling it.
 *
 * This interface was referenced by `App`'s JSON-Schema
 * via the `definition` "Build".
 */
export interface Build {
  git?: GitSource;
  /**
   * Build context folder, relative to the manifest file.
   */
  path?: string;
  /**
   * Dockerfile path inside the build context.
   */
  dockerfile: string;
  /**
   * Build arguments.
   */
  args?: {
    [k: string]: string | number | boolean | undefined;
  };
  /**
   * How many built images to keep for rollback (the running image and any sleeping app's image are always kept).
   */
  keepImages: number;
}
/**
 * A git repository to build from.
 *
 * This interface was referenced by `App`'s JSON-Schema
 * via the `definition` "GitSource".
 */
export interface GitSource {
  /**
   * Clone URL: https://, ssh://, git@host:path or file://.
   */
  url: string;
  /**
   * Branch to build.
   */
  branch: string;
}
/**
 * A host (and path prefix) the proxy sends to this app.
 *
 * This interface was referenced by `App`'s JSON-Schema
 * via the `definition` "Route".
 */
export interface Route {
  /**
   * Exact host name, or a wildcard *.example.com matching one or more labels in front of example.com. Lower case.
   */
  host: string;
  /**
   * Path prefix; the longest matching prefix wins. Matches whole segments (/api matches /api and /api/x, not /apix).
   */
  path: string;
  /**
   * Remove the path prefix before the request reaches the app.
   */
  stripPrefix: boolean;
  auth?: RouteAuth;
}
/**
 * Require a bearer token on this route.
 */
export interface RouteAuth {
  bearerSecret: EnvName;
}
/**
 * Limits for each container of the app.
 *
 * This interface was referenced by `App`'s JSON-Schema
 * via the `definition` "Resources".
 */
export interface Resources {
  /**
   * Memory limit: 512m, 1g, 256Mi (bytes without a unit). At least 6m.
   */
  memory: string;
  /**
   * CPU limit in cores.
   */
  cpus: number;
  /**
   * Maximum number of processes.
   */
  pids: number;
}
/**
 * A named volume owned by berth (name) or a host folder (hostPath, only under --allow-host-path roots).
 *
 * This interface was referenced by `App`'s JSON-Schema
 * via the `definition` "Volume".
 */
export interface Volume {
  /**
   * Named volume; created as berth-<app>-<name>.
   */
  name?: string;
  /**
   * Absolute host path; must resolve (realpath) under an --allow-host-path root.
   */
  hostPath?: string;
  /**
   * Absolute path inside the container.
   */
  mountPath: string;
  /**
   * Mount read-only.
   */
  readOnly: boolean;
  /**
   * Named volumes only: Retain keeps the volume when the app is deleted; Delete removes it with the app.
   */
  reclaimPolicy: 'Retain' | 'Delete';
}
/**
 * How berth decides a container is ready. Without path: a TCP connect on port.
 *
 * This interface was referenced by `App`'s JSON-Schema
 * via the `definition` "HealthCheck".
 */
export interface HealthCheck {
  /**
   * HTTP path; any status below 500 counts as healthy.
   */
  path?: string;
  /**
   * Timeout of one probe.
   */
  timeoutSeconds: number;
  /**
   * How long a new container may take to become healthy before the rollout fails.
   */
  startPeriodSeconds: number;
}
/**
 * Scale to zero: stop the app after a period without requests and start it on the next one.
 *
 * This interface was referenced by `App`'s JSON-Schema
 * via the `definition` "Idle".
 */
export interface Idle {
  after: Duration;
  wakeTimeout: Duration;
}
/**
 * How a new version replaces the old one.
 *
 * This interface was referenced by `App`'s JSON-Schema
 * via the `definition` "Deploy".
 */
export interface Deploy {
  /**
   * rolling: start the new container, wait until healthy, switch the route, then stop the old one. recreate: stop the old one first (low RAM, exclusive volumes).
   */
  strategy: 'rolling' | 'recreate';
  /**
   * Grace period between SIGTERM and SIGKILL when a container is stopped.
   */
  stopTimeoutSeconds: number;
}

// apprevision.v1alpha1.schema.json
/**
 * The git commit an App with spec.build.git should run. Written by berth (webhook, first deploy, rollback) under manifests/_webhook/; users read it, berth owns it.
 */
export interface AppRevision {
  /**
   * API group and version.
   */
  apiVersion: 'berth.dev/v1alpha1';
  /**
   * Object kind.
   */
  kind: 'AppRevision';
  metadata: AppRevisionMeta;
  spec: AppRevisionSpec;
}
/**
 * Named after the App it pins.
 */
export interface AppRevisionMeta {
  /**
   * The App's name.
   */
  name: string;
}
/**
 * Which commit to build and deploy, and where the hint came from.
 */
export interface AppRevisionSpec {
  /**
   * Full commit id.
   */
  commit: string;
  /**
   * Repository the commit belongs to.
   */
  url?: string;
  /**
   * Branch whose head this was.
   */
  branch?: string;
  /**
   * What wrote it: a verified webhook push, the first deploy, berth rollback, or a periodic check.
   */
  source: 'webhook' | 'initial' | 'rollback' | 'sync';
  /**
   * Webhook delivery id, when a webhook wrote it.
   */
  delivery?: string;
}

// gitrepository.v1alpha1.schema.json
/**
 * A git repository of manifests, synced into manifests/_webhook/<name>/ on a webhook push and every interval.
 */
export interface GitRepository {
  /**
   * API group and version.
   */
  apiVersion: 'berth.dev/v1alpha1';
  /**
   * Object kind.
   */
  kind: 'GitRepository';
  metadata: GitRepositoryMeta;
  spec: GitRepositorySpec;
}
/**
 * Identity of the object.
 */
export interface GitRepositoryMeta {
  /**
   * DNS label, unique among GitRepositories.
   */
  name: string;
  /**
   * Free-form labels.
   */
  labels?: {
    [k: string]: string | undefined;
  };
}
/**
 * Where the manifests come from.
 */
export interface GitRepositorySpec {
  /**
   * Clone URL: https://, ssh://, git@host:path or file://.
   */
  url: string;
  /**
   * Branch to sync.
   */
  branch: string;
  /**
   * Folder inside the repository holding the manifests.
   */
  path: string;
  /**
   * How often to sync when no webhook arrives.
   */
  interval: string;
}

// status.v1alpha1.schema.json
/**
 * The status files berth writes under --status: apps/<name>.yaml, gitrepositories/<name>.yaml and operator.yaml. Read-only for users.
 */
export type StatusFile = AppStatusFile | GitRepositoryStatusFile | OperatorStatusFile;

export interface AppStatusFile {
  apiVersion: 'berth.dev/v1alpha1';
  kind: 'App';
  metadata: StatusMeta;
  status: AppStatus;
}
export interface StatusMeta {
  name: string;
  /**
   * Generation of the manifest (bumps when its spec changes).
   */
  generation?: number;
  /**
   * Manifest file defining the object, relative to the manifests folder.
   */
  file?: string;
}
export interface AppStatus {
  observedGeneration?: number;
  phase:
    | 'Pending'
    | 'Building'
    | 'Deploying'
    | 'Ready'
    | 'Sleeping'
    | 'Waking'
    | 'Degraded'
    | 'Failed'
    | 'Stalled'
    | 'Paused'
    | 'Deleting';
  conditions: Condition[];
  url?: string;
  /**
   * Built apps: the git commit (or content hash) running.
   */
  revision?: string;
  image?: {
    ref: string;
    id?: string;
  };
  containers?: {
    name: string;
    id: string;
    state: string;
    startedAt?: string;
    ip?: string;
    specHash?: string;
  }[];
  certificate?: {
    issuer: 'acme' | 'local';
    hosts?: string[];
    notAfter?: string;
    renewAt?: string;
    lastError?: ErrorInfo;
  };
  idle?: {
    after?: string;
    lastActivity?: string;
    sleepingSince?: string;
  };
  traffic?: {
    requests?: number;
    wakes?: number;
    wakeLatencyMs?: {
      p50?: number;
      p95?: number;
    };
  };
  lastError?: ErrorInfo;
  retry?: {
    attempt: number;
    nextAt: string;
  };
  /**
   * @maxItems 10
   */
  history?: {
    revision?: string;
    image: string;
    at: string;
    result: 'Succeeded' | 'Failed' | 'RolledBack';
    message?: string;
  }[];
  /**
   * @maxItems 20
   */
  events?: StatusEvent[];
}
export interface Condition {
  /**
   * Ready, ImageReady, ContainerReady, RouteReady, CertificateReady, Stalled, Reconciling, …
   */
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  /**
   * Moves only when status, reason or message change.
   */
  lastTransitionTime: string;
  observedGeneration?: number;
}
export interface ErrorInfo {
  reason: string;
  message: string;
  at: string;
}
export interface StatusEvent {
  at: string;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  /**
   * How many times in a row this event happened.
   */
  count?: number;
}
export interface GitRepositoryStatusFile {
  apiVersion: 'berth.dev/v1alpha1';
  kind: 'GitRepository';
  metadata: StatusMeta;
  status: GitRepositoryStatus;
}
export interface GitRepositoryStatus {
  observedGeneration?: number;
  phase: 'Pending' | 'Ready' | 'Failed' | 'Stalled';
  conditions: Condition[];
  url?: string;
  branch?: string;
  /**
   * The commit whose manifests are synced.
   */
  commit?: string;
  syncedAt?: string;
  files?: string[];
  problems?: string[];
  lastError?: ErrorInfo;
  retry?: {
    attempt: number;
    nextAt: string;
  };
  /**
   * @maxItems 20
   */
  events?: StatusEvent[];
}
export interface OperatorStatusFile {
  apiVersion: 'berth.dev/v1alpha1';
  kind: 'Operator';
  status: OperatorStatus;
}
export interface OperatorStatus {
  version: string;
  startedAt: string;
  pid?: number;
  instance?: string;
  listeners: {
    http?: string;
    https?: string;
    admin?: string;
  };
  docker: {
    connected: boolean;
    endpoint?: string;
    since?: string;
    lastError?: string;
  };
  /**
   * Number of apps per phase.
   */
  apps: {
    [k: string]: number | undefined;
  };
  manifests?: {
    folder?: string;
    files?: number;
    problems?: string[];
  };
  buildQueue?: {
    running?: {
      app: string;
      revision: string;
      startedAt?: string;
    }[];
    queued?: {
      app: string;
      revision: string;
      since?: string;
    }[];
    waitingReason?: string;
  };
  webhook?: {
    configured?: boolean;
    /**
     * @maxItems 20
     */
    deliveries?: {
      at: string;
      delivery?: string;
      forge?: string;
      event?: string;
      repo?: string;
      branch?: string;
      outcome: 'accepted' | 'ignored' | 'rejected';
      status: number;
      reason: string;
    }[];
  };
  /**
   * Scheduled jobs by name: last run and outcome.
   */
  jobs?: {
    [k: string]:
      | {
          schedule?: string;
          lastRun?: string;
          lastOutcome?: 'Succeeded' | 'Failed';
          lastMessage?: string;
          nextRun?: string;
        }
      | undefined;
  };
  state?: {
    file?: string;
    lastError?: string;
    recoveredFrom?: string;
  };
}
