// What a verified webhook says, across forges: which repository (all the URLs it goes by),
// which branch, which commit. Tags, branch deletions and other events are told apart so
// the handler can ignore them with a reason. Also: matching a pushed repository against the
// URLs manifests follow (https vs ssh vs .git spellings of one repository).
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Forge } from './signatures.js';

export interface WebhookEvent {
  forge: Forge;
  event: 'push' | 'ping' | 'other';
  /** The forge's own event name (push, ping, Push Hook, pull_request, …). */
  name: string;
  /** The forge's delivery id, or `body-<sha256>` when it sends none (a resent body is then still a replay). */
  delivery: string;
  /** Every URL the payload gives for the repository (clone, ssh, web). */
  repoUrls: string[];
  /** From `refs/heads/<branch>`; absent for tag pushes. */
  branch?: string;
  /** The pushed commit; absent when the branch was deleted. */
  after?: string;
  deleted?: boolean;
}

export class MalformedWebhookError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedWebhookError';
  }
}

const EVENT_HEADER: Record<Forge, string> = {
  github: 'x-github-event',
  gitea: 'x-gitea-event',
  forgejo: 'x-forgejo-event',
  gitlab: 'x-gitlab-event',
};
const DELIVERY_HEADER: Record<Forge, string> = {
  github: 'x-github-delivery',
  gitea: 'x-gitea-delivery',
  forgejo: 'x-forgejo-delivery',
  gitlab: 'x-gitlab-event-uuid',
};
// GitHub's repository.url is the API URL, not the repository: left out.
const URL_FIELDS = ['clone_url', 'git_http_url', 'http_url', 'ssh_url', 'git_ssh_url', 'html_url', 'web_url', 'git_url', 'homepage'];

/** Parses a verified body. Throws MalformedWebhookError (-> 400). */
export function parseWebhookEvent(forge: Forge, headers: IncomingHttpHeaders, body: Buffer): WebhookEvent {
  const name = header(headers, EVENT_HEADER[forge]) ?? '';
  const delivery = deliveryId(header(headers, DELIVERY_HEADER[forge]), body);
  const payload = parseBody(headers, body);

  const kind = object(payload, 'object_kind');
  const isPush = forge === 'gitlab' ? name === 'Push Hook' || (name === 'System Hook' && kind === 'push') : name === 'push';
  const base = { forge, name, delivery, repoUrls: repoUrls(payload) };
  if (forge === 'github' && name === 'ping') return { ...base, event: 'ping' };
  if (!isPush) return { ...base, event: 'other' };

  const ref = object(payload, 'ref');
  if (typeof ref !== 'string') throw new MalformedWebhookError('push event without a ref');
  if (base.repoUrls.length === 0) throw new MalformedWebhookError('push event without a repository URL');
  const after = object(payload, 'after');
  const deleted = object(payload, 'deleted') === true || (typeof after === 'string' && /^0+$/.test(after));
  const event: WebhookEvent = { ...base, event: 'push', ...(deleted ? { deleted: true } : {}) };
  if (ref.startsWith('refs/heads/') && ref.length > 'refs/heads/'.length) event.branch = ref.slice('refs/heads/'.length);
  if (!deleted && typeof after === 'string' && /^[0-9a-f]{40}([0-9a-f]{24})?$/.test(after)) event.after = after;
  return event;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function deliveryId(value: string | undefined, body: Buffer): string {
  if (value !== undefined && /^[\x21-\x7e]{1,256}$/.test(value)) return value;
  return `body-${createHash('sha256').update(body).digest('hex').slice(0, 32)}`;
}

function parseBody(headers: IncomingHttpHeaders, body: Buffer): unknown {
  let text = body.toString('utf8');
  // GitHub can be set to send application/x-www-form-urlencoded with the JSON in `payload`.
  if ((headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
    const payload = new URLSearchParams(text).get('payload');
    if (payload === null) throw new MalformedWebhookError('form-encoded body without a payload field');
    text = payload;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new MalformedWebhookError('body is not JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new MalformedWebhookError('body is not a JSON object');
  return value;
}

function object(v: unknown, key: string): unknown {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[key] : undefined;
}

function repoUrls(payload: unknown): string[] {
  const urls: string[] = [];
  for (const holder of [object(payload, 'repository'), object(payload, 'project')]) {
    for (const field of URL_FIELDS) {
      const u = object(holder, field);
      if (typeof u === 'string' && u.length > 0 && u.length <= 2048 && !urls.includes(u)) urls.push(u);
    }
  }
  return urls;
}

/**
 * A comparable key for a repository URL: `host/owner/repo` with the host and (for forges,
 * which treat names case-insensitively) the path lowercased, `.git`, user, port and trailing
 * slashes dropped; `file:/abs/path` for local repositories (case kept). undefined when unparseable.
 */
export function repositoryKey(url: string): string | undefined {
  const u = url.trim();
  let host: string;
  let path: string;
  const scp = /^(?:[^@/\s]+@)?([^:/\s]+):(?!\/\/)(.+)$/.exec(u);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(u)) {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      return undefined;
    }
    if (parsed.protocol === 'file:') return `file:${trimRepoPath(decodeURIComponent(parsed.pathname))}`;
    host = parsed.hostname;
    path = decodeURIComponent(parsed.pathname);
  } else if (scp) {
    host = scp[1]!;
    path = scp[2]!;
  } else if (u.startsWith('/')) {
    return `file:${trimRepoPath(u)}`;
  } else return undefined;
  const p = trimRepoPath(path).replace(/^\/+/, '');
  if (!host || !p) return undefined;
  return `${host.toLowerCase()}/${p.toLowerCase()}`;
}

function trimRepoPath(p: string): string {
  return p.replace(/\/+$/, '').replace(/\.git$/i, '').replace(/\/+$/, '');
}

/** True when both URLs name the same repository (https, ssh, scp-like and file spellings). */
export function sameRepository(a: string, b: string): boolean {
  const ka = repositoryKey(a);
  return ka !== undefined && ka === repositoryKey(b);
}

/** Something that follows a repository's branch: an App with build.git, or a GitRepository. */
export interface Follower {
  kind: 'App' | 'GitRepository';
  name: string;
  url: string;
  branch: string;
}

export interface FollowerMatch {
  apps: string[];
  repositories: string[];
  /** Branches of this repository that others follow (to explain an ignored push). */
  otherBranches: string[];
}

/** Who follows `branch` of the pushed repository. A ready-made `findTargets` for the webhook handler. */
export function matchFollowers(repoUrls: string[], branch: string, followers: Follower[]): FollowerMatch {
  const keys = new Set(repoUrls.map(repositoryKey).filter((k): k is string => k !== undefined));
  const match: FollowerMatch = { apps: [], repositories: [], otherBranches: [] };
  for (const f of followers) {
    const k = repositoryKey(f.url);
    if (k === undefined || !keys.has(k)) continue;
    if (f.branch !== branch) {
      if (!match.otherBranches.includes(f.branch)) match.otherBranches.push(f.branch);
    } else if (f.kind === 'App') match.apps.push(f.name);
    else match.repositories.push(f.name);
  }
  return match;
}
