import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac } from 'node:crypto';
import { createWebhookHandler, type PushHint, type WebhookDelivery, type WebhookHandler, type WebhookTarget } from '../../src/webhook/webhook-handler.js';
import { matchFollowers, type Follower } from '../../src/webhook/push-event.js';

const SECRET = 'webhook-secret-for-tests';
const REPO = 'https://git.example.com/me/blog.git';
const SHA = 'b'.repeat(40);

const followers: Follower[] = [
  { kind: 'App', name: 'blog', url: 'git@git.example.com:me/blog.git', branch: 'main' },
  { kind: 'App', name: 'blog-docs', url: 'https://git.example.com/me/blog', branch: 'main' },
  { kind: 'GitRepository', name: 'infra', url: REPO, branch: 'main' },
];

let server: Server;
let base: string;
let pushes: { target: WebhookTarget; hint: PushHint }[];
let handler: WebhookHandler;
let secret: string | undefined = SECRET;

function pushBody(opts: { branch?: string; repo?: string; pad?: number } = {}): string {
  return JSON.stringify({
    ref: `refs/heads/${opts.branch ?? 'main'}`,
    after: SHA,
    repository: { clone_url: opts.repo ?? REPO, html_url: (opts.repo ?? REPO).replace(/\.git$/, '') },
    ...(opts.pad ? { pad: 'x'.repeat(opts.pad) } : {}),
  });
}

const sign = (body: string | Buffer, key = SECRET): string => createHmac('sha256', key).update(body).digest('hex');

let deliveryCounter = 0;
function github(body: string, extra: Record<string, string> = {}): Record<string, string> {
  return { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': `gh-${++deliveryCounter}`, 'x-hub-signature-256': `sha256=${sign(body)}`, ...extra };
}

async function post(headers: Record<string, string>, body: string | Buffer, method = 'POST'): Promise<{ status: number; json: { outcome?: string; reason?: string; targets?: unknown } }> {
  const res = await fetch(`${base}/_berth/webhook`, { method, headers, ...(method === 'POST' ? { body } : {}) });
  return { status: res.status, json: (await res.json()) as { outcome?: string; reason?: string } };
}

beforeAll(async () => {
  server = createServer((req, res) => handler(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

beforeEach(() => {
  pushes = [];
  secret = SECRET;
  handler = createWebhookHandler({
    secret: () => secret,
    findTargets: (urls, branch) => matchFollowers(urls, branch, followers),
    onPush: (target, hint) => void pushes.push({ target, hint }),
  });
});

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

describe('webhook handler over HTTP', () => {
  it('accepts a signed GitHub push with 202 and hands each follower the push', async () => {
    const body = pushBody();
    const res = await post(github(body, { 'x-github-delivery': 'd-accept' }), body);
    expect(res.status).toBe(202);
    expect(res.json).toMatchObject({ outcome: 'accepted', targets: [{ kind: 'App', name: 'blog' }, { kind: 'App', name: 'blog-docs' }, { kind: 'GitRepository', name: 'infra' }] });
    await settle();
    expect(pushes.map((p) => `${p.target.kind}/${p.target.name}`)).toEqual(['App/blog', 'App/blog-docs', 'GitRepository/infra']);
    expect(pushes[0]!.hint).toEqual({ url: REPO, branch: 'main', delivery: 'd-accept', forge: 'github', after: SHA });
    expect(handler.deliveries().at(-1)).toMatchObject({ delivery: 'd-accept', forge: 'github', event: 'push', repo: REPO, branch: 'main', outcome: 'accepted', status: 202 });
  });

  it("answers GitHub's ping with 200", async () => {
    const body = JSON.stringify({ zen: 'Design for failure.', hook_id: 1 });
    const res = await post(github(body, { 'x-github-event': 'ping' }), body);
    expect([res.status, res.json.outcome]).toEqual([200, 'accepted']);
    expect(pushes).toEqual([]);
  });

  const body = pushBody();
  const altered = body.replace(SHA, `c${SHA.slice(1)}`);
  it.each([
    ['a bad signature', { 'x-hub-signature-256': `sha256=${sign(body, 'wrong')}` }, body],
    ['no signature', { 'x-hub-signature-256': '' }, body],
    ['only a SHA-1 signature', { 'x-hub-signature-256': '', 'x-hub-signature': `sha1=${createHmac('sha1', SECRET).update(body).digest('hex')}` }, body],
    ['a truncated signature', { 'x-hub-signature-256': `sha256=${sign(body).slice(0, 40)}` }, body],
    ['a body altered by one byte', {}, altered],
  ])('refuses %s with 401 and builds nothing', async (_name, override: Record<string, string>, sent) => {
    expect(sent.length).toBe(body.length);
    const headers: Record<string, string> = { ...github(body), ...override };
    for (const [k, v] of Object.entries(headers)) if (v === '') delete headers[k];
    const res = await post(headers, sent);
    expect(res.status).toBe(401);
    expect(res.json.outcome).toBe('rejected');
    await settle();
    expect(pushes).toEqual([]);
    expect(handler.deliveries().at(-1)).toMatchObject({ outcome: 'rejected', status: 401 });
  });

  it('refuses everything with 401 while no secret is configured', async () => {
    secret = undefined;
    const b = pushBody();
    const res = await post(github(b), b);
    expect(res.status).toBe(401);
    expect(res.json.reason).toContain('BERTH_WEBHOOK_SECRET');
  });

  it('answers 413 to a 2 MiB body (declared length or chunked) without buffering it', async () => {
    const big = pushBody({ pad: 2 << 20 });
    const res = await post(github(big), big);
    expect(res.status).toBe(413);

    // Chunked: no Content-Length, so the limit is found while reading.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${base}/_berth/webhook`, { method: 'POST', headers: github(big) }, (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      });
      req.on('error', reject);
      const chunk = Buffer.alloc(64 << 10, 'x');
      let sent = 0;
      const write = (): void => {
        while (sent < 2 << 20) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', write);
        }
        req.end();
      };
      write();
    });
    expect(status).toBe(413);
    expect(pushes).toEqual([]);
  });

  it('answers 400 to a signed body that is not a push payload', async () => {
    const b = '{"not":"a push"';
    const res = await post(github(b), b);
    expect([res.status, res.json.outcome]).toEqual([400, 'rejected']);
  });

  it('ignores another branch with 200 and says which branches are followed', async () => {
    const b = pushBody({ branch: 'feature/x' });
    const res = await post(github(b), b);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ outcome: 'ignored', reason: `push to branch feature/x of ${REPO}; it is followed on main` });
    await settle();
    expect(pushes).toEqual([]);
  });

  it('ignores a repository nobody follows with 200 and the reason', async () => {
    const b = pushBody({ repo: 'https://git.example.com/me/unknown.git' });
    const res = await post(github(b), b);
    expect(res.json).toEqual({ outcome: 'ignored', reason: 'no App or GitRepository follows https://git.example.com/me/unknown.git main' });
  });

  it('treats the same delivery replayed 10 times (in a row and at once) as one push', async () => {
    const b = pushBody();
    const headers = github(b, { 'x-github-delivery': 'replayed' });
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await post(headers, b)).status);
    const parallel = await Promise.all(Array.from({ length: 10 }, () => post({ ...headers, 'x-github-delivery': 'burst' }, b)));
    await settle();
    expect(statuses).toEqual([202, ...Array<number>(9).fill(200)]);
    expect(parallel.filter((r) => r.status === 202)).toHaveLength(1);
    expect(pushes.filter((p) => p.target.name === 'blog')).toHaveLength(2); // 'replayed' once, 'burst' once
    expect(handler.deliveries().filter((d) => d.delivery === 'replayed' && d.outcome === 'ignored')).toHaveLength(9);
  });

  it('accepts Gitea, Forgejo and GitLab pushes', async () => {
    const b = pushBody();
    const gitea = await post({ 'x-gitea-event': 'push', 'x-gitea-delivery': 'g1', 'x-gitea-signature': sign(b) }, b);
    const forgejo = await post({ 'x-forgejo-event': 'push', 'x-forgejo-delivery': 'f1', 'x-forgejo-signature': sign(b) }, b);
    const gl = JSON.stringify({ object_kind: 'push', ref: 'refs/heads/main', after: SHA, project: { git_http_url: REPO } });
    const gitlab = await post({ 'x-gitlab-event': 'Push Hook', 'x-gitlab-event-uuid': 'l1', 'x-gitlab-token': SECRET }, gl);
    const gitlabBad = await post({ 'x-gitlab-event': 'Push Hook', 'x-gitlab-event-uuid': 'l2', 'x-gitlab-token': 'nope' }, gl);
    expect([gitea.status, forgejo.status, gitlab.status, gitlabBad.status]).toEqual([202, 202, 202, 401]);
  });

  it('ignores tag pushes and deleted branches', async () => {
    const tag = JSON.stringify({ ref: 'refs/tags/v1', after: SHA, repository: { clone_url: REPO } });
    expect((await post(github(tag), tag)).json.reason).toContain('tags');
    const del = JSON.stringify({ ref: 'refs/heads/main', after: '0'.repeat(40), deleted: true, repository: { clone_url: REPO } });
    expect((await post(github(del), del)).json.reason).toBe('branch main was deleted');
  });

  it('answers 405 to anything but POST', async () => {
    const res = await post({}, '', 'GET');
    expect(res.status).toBe(405);
  });

  it('keeps the last 20 deliveries, notifies listeners, and survives a failing onPush', async () => {
    const seen: WebhookDelivery[] = [];
    handler = createWebhookHandler({
      secret: SECRET,
      history: [{ at: '2026-01-01T00:00:00.000Z', delivery: 'old', outcome: 'accepted', status: 202, reason: 'from the last run' }],
      findTargets: (urls, branch) => matchFollowers(urls, branch, followers),
      onPush: () => Promise.reject(new Error('disk full')),
    });
    const off = handler.onDelivery((d) => seen.push(d));
    for (let i = 0; i < 25; i++) {
      const b = pushBody();
      await post(github(b), b);
    }
    off();
    expect(seen).toHaveLength(25);
    const list = handler.deliveries();
    expect(list).toHaveLength(20);
    expect(list.some((d) => d.delivery === 'old')).toBe(false);
    expect(list.at(-1)!.outcome).toBe('accepted');
  });
});
