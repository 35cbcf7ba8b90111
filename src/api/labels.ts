// Ownership labels: berth only ever lists, changes or removes Docker objects that carry
// MANAGED_BY=berth and its own INSTANCE label (several berth instances, e.g. test runs, can
// share one engine without touching each other's objects).
export const LABEL_MANAGED_BY = 'dev.berth.managed-by';
export const LABEL_INSTANCE = 'dev.berth.instance';
export const LABEL_APP = 'dev.berth.app';
export const LABEL_SPEC_HASH = 'dev.berth.spec-hash';
/** Replica index of a container within its app (0-based). */
export const LABEL_REPLICA = 'dev.berth.replica';
/** On named volumes: Retain or Delete, so deletion policy survives the manifest's removal. */
export const LABEL_RECLAIM = 'dev.berth.reclaim-policy';
/** On built images: the git commit or content hash the image was built from. */
export const LABEL_REVISION = 'dev.berth.revision';
export const MANAGED_BY = 'berth';

export function ownerLabels(instance: string, app?: string): Record<string, string> {
  const labels: Record<string, string> = { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_INSTANCE]: instance };
  if (app !== undefined) labels[LABEL_APP] = app;
  return labels;
}

/** True when an object's labels prove this berth instance made it. */
export function isOwned(labels: Record<string, string> | undefined, instance: string): boolean {
  return labels?.[LABEL_MANAGED_BY] === MANAGED_BY && labels[LABEL_INSTANCE] === instance;
}
