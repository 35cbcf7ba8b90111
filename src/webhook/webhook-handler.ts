// POST /_berth/webhook. The handler only authenticates, parses and hands "repository R,
// branch B was pushed" to whoever follows it (deps.onPush, which resolves the branch head
// itself and writes a manifest): webhooks are hints, so a replayed or reordered delivery
// cannot roll anything back. Answers: 202 accepted, 200 ignored (with the reason), 400
// malformed, 401 unauthenticated, 405 not POST, 413 over the body limit.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../../controllers/ports/clock.js';
import { systemClock } from '../../controllers/ports/clock.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { MalformedWebhookError, parseWebhookEvent, type WebhookEvent } from './push-event.js';
import { detectForge, verifySignature, type Forge } from './signatures.js';

export interface WebhookTarget {
  kind: 'App' | 'GitRepository';
  name: string;
}

export interface PushHint {
  /** The pushed repository as the forge names it (prefer the target's own spec URL for git). */
  url: string;
  branch: string;
  delivery: string;
  forge: Forge;
  /** The commit the forge says it pushed: informational, never to be deployed as is. */
  after?: string;
}

export interface WebhookTargets {
  apps: string[];
  repositories: string[];
  /** Branches of this repository that something follows, to explain why another branch was ignored. */
  otherBranches?: string[];
}

export interface WebhookDelivery {
  /** ISO time. */
  at: string;
  delivery: string;
  forge?: Forge;
  event?: string;
  repo?: string;
  branch?: string;
  outcome: 'accepted' | 'ignored' | 'rejected';
  status: number;
  reason: string;
}

export interface WebhookDeps {
  /** BERTH_WEBHOOK_SECRET. A function is read per request. Unset or empty: every request is refused. */
  secret: string | undefined | (() => string | undefined);
  /** Who follows this branch of the repository (see matchFollowers in push-event.ts). */
  findTargets(repoUrls: string[], branch: string): WebhookTargets | Promise<WebhookTargets>;
  /** Called once per target of an accepted push, after the 202 is on its way. */
  onPush(target: WebhookTarget, push: PushHint): void | Promise<void>;
  logger?: Logger;
  /** Default 1 MiB. */
  maxBodyBytes?: number;
  /** Deliveries recorded by a previous run, oldest first (shown again, not re-processed). */
  history?: WebhookDelivery[];
  clock?: Clock;
}

export type WebhookHandler = ((req: IncomingMessage, res: ServerResponse) => void) & {
  /** The last 20 deliveries, oldest first. */
  deliveries(): WebhookDelivery[];
  /** Called after each delivery is answered. Returns an unsubscribe function. */
  onDelivery(listener: (d: WebhookDelivery) => void): () => void;
};

const KEEP_DELIVERIES = 20;
/** Accepted delivery ids remembered for replay detection. */
const KEEP_SEEN = 1000;

export function createWebhookHandler(deps: WebhookDeps): WebhookHandler {
  const log = deps.logger ?? silentLogger;
  const clock = deps.clock ?? systemClock;
  const maxBody = deps.maxBodyBytes ?? 1 << 20;
  const recent: WebhookDelivery[] = (deps.history ?? []).slice(-KEEP_DELIVERIES);
  const seen = new Set<string>();
  const listeners = new Set<(d: WebhookDelivery) => void>();

  const record = (d: Omit<WebhookDelivery, 'at'>): void => {
    const entry: WebhookDelivery = { at: clock.now().toISOString(), ...d };
    recent.push(entry);
    if (recent.length > KEEP_DELIVERIES) recent.shift();
    log[entry.outcome === 'rejected' ? 'warn' : 'info']({ webhook: entry }, `webhook ${entry.outcome}: ${entry.reason}`);
    for (const l of listeners) {
      try {
        l(entry);
      } catch (e) {
        log.error({ err: e }, 'webhook delivery listener failed');
      }
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      return reply(req, res, 405, { outcome: 'rejected', reason: 'use POST' });
    }
    const forge = detectForge(req.headers);
    const claimed = claimedDelivery(req);
    const reject = (status: number, reason: string, extra: Partial<WebhookDelivery> = {}): void => {
      record({ delivery: claimed, ...(forge ? { forge } : {}), ...extra, outcome: 'rejected', status, reason });
      reply(req, res, status, { outcome: 'rejected', reason });
    };

    const secret = typeof deps.secret === 'function' ? deps.secret() : deps.secret;
    if (!secret) return reject(401, 'webhooks are disabled: no secret is configured (set BERTH_WEBHOOK_SECRET)');
    const body = await readBody(req, maxBody);
    if (body === 'too-large') return reject(413, `body larger than ${maxBody} bytes`);

    const auth = verifySignature(req.headers, body, secret);
    if (!auth.ok) return reject(401, auth.reason);

    let event: WebhookEvent;
    try {
      event = parseWebhookEvent(auth.forge, req.headers, body);
    } catch (e) {
      if (e instanceof MalformedWebhookError) return reject(400, e.message);
      throw e;
    }
    const repo = event.repoUrls[0];
    const about = { delivery: event.delivery, forge: event.forge, event: event.name, ...(repo ? { repo } : {}), ...(event.branch ? { branch: event.branch } : {}) };
    const ignore = (reason: string): void => {
      record({ ...about, outcome: 'ignored', status: 200, reason });
      reply(req, res, 200, { outcome: 'ignored', reason });
    };

    if (event.event === 'ping') {
      record({ ...about, outcome: 'accepted', status: 200, reason: 'ping' });
      return reply(req, res, 200, { outcome: 'accepted', reason: 'pong' });
    }
    if (event.event === 'other') return ignore(`event ${event.name || '(none)'} is not a push`);
    if (event.branch === undefined) return ignore('not a branch push (tags are not followed)');
    if (event.deleted) return ignore(`branch ${event.branch} was deleted`);

    const key = `${event.forge}:${event.delivery}`;
    if (seen.has(key)) return ignore(`replay of delivery ${event.delivery}`);
    // Claimed before the await below, so concurrent copies of one delivery count as replays.
    seen.add(key);
    let targets: WebhookTargets;
    try {
      targets = await deps.findTargets(event.repoUrls, event.branch);
    } catch (e) {
      seen.delete(key);
      throw e;
    }
    const names = [...targets.apps.map((name) => ({ kind: 'App' as const, name })), ...targets.repositories.map((name) => ({ kind: 'GitRepository' as const, name }))];
    if (names.length === 0) {
      // Not remembered: once an App follows this branch, a redelivery from the forge must work.
      seen.delete(key);
      const others = targets.otherBranches ?? [];
      return ignore(
        others.length > 0
          ? `push to branch ${event.branch} of ${repo}; it is followed on ${others.join(', ')}`
          : `no App or GitRepository follows ${repo} ${event.branch}`,
      );
    }
    while (seen.size > KEEP_SEEN) seen.delete(seen.values().next().value as string);

    const list = names.map((t) => `${t.kind}/${t.name}`).join(', ');
    record({ ...about, outcome: 'accepted', status: 202, reason: `push to ${event.branch} for ${list}` });
    reply(req, res, 202, { outcome: 'accepted', delivery: event.delivery, targets: names });
    const hint: PushHint = { url: repo ?? '', branch: event.branch, delivery: event.delivery, forge: event.forge, ...(event.after ? { after: event.after } : {}) };
    for (const t of names) {
      Promise.resolve()
        .then(() => deps.onPush(t, hint))
        .catch((e: unknown) => log.error({ err: e, target: t }, `webhook push for ${t.kind}/${t.name} failed`));
    }
  };

  const handler = ((req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((e: unknown) => {
      log.error({ err: e }, 'webhook handler failed');
      if (!res.headersSent) reply(req, res, 500, { outcome: 'rejected', reason: 'internal error' });
      else res.destroy();
    });
  }) as WebhookHandler;
  handler.deliveries = () => recent.map((d) => ({ ...d }));
  handler.onDelivery = (l) => {
    listeners.add(l);
    return () => listeners.delete(l);
  };
  return handler;
}

/** The delivery id a request claims (unverified: only for the record of a rejection). */
function claimedDelivery(req: IncomingMessage): string {
  for (const h of ['x-github-delivery', 'x-gitea-delivery', 'x-forgejo-delivery', 'x-gitlab-event-uuid']) {
    const v = req.headers[h];
    if (typeof v === 'string') return v.replace(/[^\x21-\x7e]/g, '').slice(0, 100);
  }
  return '';
}

/** The body, or 'too-large' as soon as it passes `limit` (nothing more is buffered). */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too-large'> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve('too-large');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (b: Buffer): void => {
      size += b.length;
      if (size > limit) {
        cleanup();
        chunks.length = 0;
        resolve('too-large');
      } else chunks.push(b);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onError = (e: Error): void => {
      cleanup();
      reject(e);
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/**
 * Sends a JSON answer. When the body was not read to the end (413, early 401), the
 * connection is closed after the answer instead of reading (and discarding) the rest.
 */
function reply(req: IncomingMessage, res: ServerResponse, status: number, body: object): void {
  const text = `${JSON.stringify(body)}\n`;
  const unread = !req.complete;
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...(unread ? { Connection: 'close' } : {}),
  });
  res.end(text);
  if (unread) res.once('finish', () => req.socket.destroySoon());
}
