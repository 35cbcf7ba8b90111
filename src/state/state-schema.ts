// The shape of state.json, its version, and the migration path. A file that does not match
// is rejected (and moved aside by the store) rather than half-trusted.
import type { AnyObject, Kind } from '../api/schemas.js';

export const STATE_VERSION = 1;

/** One manifest object berth has accepted: identity, generation and the last good version. */
export interface ObjectRecord {
  kind: Kind;
  name: string;
  /** Manifest file that owns the name (relative to the manifests folder). */
  file: string;
  generation: number;
  specHash: string;
  /** When berth first accepted the object; earlier wins name and route conflicts. */
  createdAt: string;
  object: AnyObject;
}

export interface DeployRecord {
  revision?: string;
  image: string;
  at: string;
  result: 'Succeeded' | 'Failed' | 'RolledBack';
  message?: string;
}

/** Per-app facts Docker cannot tell: which version serves, which failed, activity, history. */
export interface AppFacts {
  /** Spec hash of the containers currently serving (promoted after a healthy rollout). */
  activeHash?: string;
  /** Spec hash whose rollout failed deterministically: not retried until the spec changes or a retry. */
  failedHash?: string;
  failedReason?: { reason: string; message: string };
  lastActivity?: string;
  sleepingSince?: string;
  history?: DeployRecord[];
}

export interface StateData {
  version: number;
  objects: Record<string, ObjectRecord>;
  apps: Record<string, AppFacts>;
  /** Free-form sections owned by other components (builds, webhook, certificates). */
  extra: Record<string, unknown>;
}

export function emptyState(): StateData {
  return { version: STATE_VERSION, objects: {}, apps: {}, extra: {} };
}

export function objectKey(kind: Kind, name: string): string {
  return `${kind}/${name}`;
}

/** Validates and upgrades a parsed state file; throws when it cannot be used. */
export function migrate(raw: unknown): StateData {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('state file is not a JSON object');
  const d = raw as Partial<StateData>;
  if (typeof d.version !== 'number') throw new Error('state file has no version');
  if (d.version > STATE_VERSION) throw new Error(`state file version ${d.version} is newer than this berth (${STATE_VERSION})`);
  // Version 1 is the first format; later versions add their upgrade steps here, oldest first.
  if (!isRecord(d.objects) || !isRecord(d.apps)) throw new Error('state file does not have the expected sections');
  for (const [key, rec] of Object.entries(d.objects as Record<string, unknown>)) {
    if (!isRecord(rec) || typeof rec.generation !== 'number' || typeof rec.specHash !== 'string' || !isRecord(rec.object)) {
      throw new Error(`state file entry ${key} is malformed`);
    }
  }
  return { version: STATE_VERSION, objects: d.objects, apps: d.apps, extra: isRecord(d.extra) ? d.extra : {} };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
