// Which containers receive traffic: the promoted version's running containers; during a first
// rollout, the ones verified healthy; with no record of a promotion (state lost), any running
// container that is not of a failed version. Pure, shared by status and the proxy's backends.
import type { AppFactsView, Observed, ObservedContainer } from './types.js';

export function servingContainers(observed: Observed | undefined, facts: AppFactsView, healthy: readonly string[], network: string, unverified: readonly string[] = []): ObservedContainer[] {
  if (!observed) return [];
  // A container that failed its health check since it (re)started gets no traffic until it passes one.
  const running = observed.containers.filter((c) => c.state === 'running' && Boolean(c.networks[network]) && !unverified.includes(c.id));
  const active = running.filter((c) => c.hash === facts.activeHash);
  if (active.length > 0) return active;
  const verified = running.filter((c) => healthy.includes(c.id));
  if (verified.length > 0) return verified;
  return facts.activeHash === undefined ? running.filter((c) => c.hash !== facts.failedHash) : [];
}
