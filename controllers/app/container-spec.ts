// From the desired App to the exact container berth creates, and the hash that names it.
// The hash covers only what a container is made of (image, command, env, limits, mounts,
// labels) — not routes, idle settings or replicas — so those never restart anything.
import { createHash } from 'node:crypto';
import type { ContainerSpec, MountSpec } from '../ports/container-runtime.js';
import { LABEL_REPLICA, LABEL_RECLAIM, LABEL_REVISION, LABEL_SPEC_HASH, ownerLabels } from '../../src/api/labels.js';
import { parseMemory } from '../../src/api/quantities.js';
import { canonicalJson } from '../../src/util/canonical-hash.js';
import type { AppDesired, PlanConfig } from './types.js';

export function volumeName(config: PlanConfig, app: string, volume: string): string {
  return `${config.instance}-${app}-${volume}`;
}

export function containerName(config: PlanConfig, app: string, hash: string, replica: number): string {
  return `${config.instance}-${app}-${hash.slice(0, 10)}-${replica}`;
}

export function volumeLabels(config: PlanConfig, app: string, reclaimPolicy: 'Retain' | 'Delete'): Record<string, string> {
  return { ...ownerLabels(config.instance, app), [LABEL_RECLAIM]: reclaimPolicy };
}

function envList(d: AppDesired): string[] {
  const env: string[] = [];
  for (const [k, v] of Object.entries(d.app.spec.env ?? {})) if (v !== undefined) env.push(`${k}=${String(v)}`);
  for (const k of d.app.spec.secretEnv ?? []) if (d.secrets[k] !== undefined) env.push(`${k}=${d.secrets[k]}`);
  return env.sort();
}

function mounts(config: PlanConfig, d: AppDesired): MountSpec[] {
  return (d.app.spec.volumes ?? []).map((v) =>
    v.name !== undefined
      ? { type: 'volume', source: volumeName(config, d.name, v.name), target: v.mountPath, readOnly: v.readOnly }
      : { type: 'bind', source: v.hostPath!, target: v.mountPath, readOnly: v.readOnly },
  );
}

/** The container spec for one replica (the name and labels carry hash and replica) and the hash. */
export function containerSpecFor(config: PlanConfig, d: AppDesired, replica: number): { spec: ContainerSpec; hash: string } {
  const s = d.app.spec;
  const body = {
    image: d.image!,
    env: envList(d),
    command: s.command,
    port: s.port,
    memoryBytes: parseMemory(s.resources.memory),
    nanoCpus: Math.round(s.resources.cpus * 1e9),
    pidsLimit: s.resources.pids,
    mounts: mounts(config, d),
    network: config.network,
    aliases: [d.name],
    stopTimeoutSeconds: s.deploy.stopTimeoutSeconds,
    userLabels: d.app.metadata.labels ?? {},
    revision: d.revision,
  };
  const hash = createHash('sha256').update(canonicalJson(body)).digest('hex').slice(0, 16);
  const { userLabels, revision, ...rest } = body;
  const labels: Record<string, string> = {
    ...Object.fromEntries(Object.entries(userLabels).filter((e): e is [string, string] => e[1] !== undefined)),
    ...ownerLabels(config.instance, d.name),
    [LABEL_SPEC_HASH]: hash,
    [LABEL_REPLICA]: String(replica),
    ...(revision !== undefined ? { [LABEL_REVISION]: revision } : {}),
  };
  return { spec: { ...rest, name: containerName(config, d.name, hash, replica), labels }, hash };
}
