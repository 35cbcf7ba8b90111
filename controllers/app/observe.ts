// Look at the world for one app: its containers (by ownership labels), its image, the shared
// network, its volumes, and where its host paths really lead. Reads only.
import { realpath } from 'node:fs/promises';
import type { ContainerRuntime } from '../ports/container-runtime.js';
import { LABEL_RECLAIM, LABEL_REPLICA, LABEL_SPEC_HASH, ownerLabels } from '../../src/api/labels.js';
import type { AppDesired, Observed, PlanConfig } from './types.js';

export async function observe(name: string, desired: AppDesired | undefined, runtime: ContainerRuntime, config: PlanConfig, signal?: AbortSignal): Promise<Observed> {
  const labels = ownerLabels(config.instance, name);
  const [containers, image, networkExists, volumes] = await Promise.all([
    runtime.listContainers(labels, signal),
    desired?.image !== undefined ? runtime.inspectImage(desired.image, signal) : Promise.resolve(undefined),
    runtime.networkExists(config.network, signal),
    runtime.listVolumes(labels, signal),
  ]);
  const hostPaths = await Promise.all(
    (desired?.app.spec.volumes ?? []).filter((v) => v.hostPath !== undefined).map(async (v) => {
      try {
        return { path: v.hostPath!, resolved: await realpath(v.hostPath!) };
      } catch (e) {
        return { path: v.hostPath!, error: (e as NodeJS.ErrnoException).code ?? (e as Error).message };
      }
    }),
  );
  // A list shows neither the restart policy (`docker update --restart=no` is drift too: a daemon
  // restart would leave the app down) nor why a crash-looping container exits. One inspect per
  // running or restarting container.
  const details = await Promise.all(
    containers.map((c) => (c.state === 'running' || c.state === 'restarting' ? runtime.inspectContainer(c.id, signal) : Promise.resolve(undefined))),
  );
  return {
    containers: containers.map((c, i) => ({
      ...c,
      hash: c.labels[LABEL_SPEC_HASH] ?? '',
      replica: Number(c.labels[LABEL_REPLICA] ?? 0),
      ...(details[i] ? { restartPolicy: details[i].restartPolicy, restartCount: details[i].restartCount, exitCode: details[i].exitCode, oomKilled: details[i].oomKilled } : {}),
    })),
    image,
    networkExists,
    volumes: volumes.map((v) => ({ name: v.name, reclaimPolicy: v.labels[LABEL_RECLAIM] ?? 'Retain' })),
    hostPaths,
  };
}
