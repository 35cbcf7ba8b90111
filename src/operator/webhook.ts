// POST /_berth/webhook: verified pushes become hints — an App's new revision is resolved from
// its own repository URL and written as a file; a GitRepository syncs. Deliveries are kept
// (and persisted) for status/operator.yaml.
import { createWebhookHandler, type WebhookDelivery, type WebhookHandler } from '../webhook/webhook-handler.js';
import { matchFollowers, type Follower } from '../webhook/push-event.js';
import type { App, GitRepository } from '../api/types.generated.js';
import type { DesiredStore } from '../desired/desired-store.js';
import type { StateStore } from '../state/state-store.js';
import type { Logger } from '../util/logger.js';
import type { Revisions } from './revisions.js';
import type { Repositories } from './repositories.js';

export const WEBHOOK_PATH = '/_berth/webhook';
const DELIVERIES_KEY = 'webhookDeliveries';

export interface WebhookWiring {
  secret: string | undefined;
  desired: DesiredStore;
  state: StateStore;
  revisions: Revisions;
  repositories: Repositories;
  log: Logger;
  onDelivery: () => void;
}

function followers(desired: DesiredStore): Follower[] {
  const out: Follower[] = [];
  for (const e of desired.list('App')) {
    const git = (e.object as App | undefined)?.spec.build?.git;
    if (git) out.push({ kind: 'App', name: e.name, url: git.url, branch: git.branch });
  }
  for (const e of desired.list('GitRepository')) {
    const s = (e.object as GitRepository | undefined)?.spec;
    if (s) out.push({ kind: 'GitRepository', name: e.name, url: s.url, branch: s.branch });
  }
  return out;
}

export function createWebhook(w: WebhookWiring): WebhookHandler {
  const handler = createWebhookHandler({
    secret: w.secret,
    logger: w.log,
    history: (w.state.data.extra[DELIVERIES_KEY] as WebhookDelivery[] | undefined) ?? [],
    findTargets: (urls, branch) => matchFollowers(urls, branch, followers(w.desired)),
    onPush: async (target, push) => {
      if (target.kind === 'GitRepository') {
        w.repositories.sync(target.name);
        return;
      }
      const git = (w.desired.get('App', target.name)?.object as App | undefined)?.spec.build?.git;
      if (!git) return;
      // The app's own URL (its credentials, its ssh form), not the forge's.
      await w.revisions.followPush(target.name, git.url, git.branch, push.delivery).catch((e: unknown) => {
        w.log.warn({ err: e, app: target.name }, 'cannot resolve the pushed branch head');
      });
    },
  });
  handler.onDelivery(() => {
    w.state.update((d) => void (d.extra[DELIVERIES_KEY] = handler.deliveries()));
    w.onDelivery();
  });
  return handler;
}
