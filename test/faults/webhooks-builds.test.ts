// F14 and F20 of the fault catalogue as invariant-checked scenarios (the full matrices are in
// test/e2e/builds.e2e.test.ts): forged, oversized, malformed, other-branch and replayed webhook
// deliveries change nothing; a flood of pushes to one app while another builds never runs two
// builds at once, builds the flooded app at most twice and deploys its last commit. The webhook
// secret and the admin token are canaries too: they must not leak anywhere.
import { describe, it, beforeAll, afterAll, expect } from 'vitest';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sleep, waitFor } from '../helpers/berth-process.js';
import { FaultEnv } from '../helpers/fault-env.js';
import { checkInvariants } from '../helpers/invariants.js';
import { createTestRepo, git, type TestRepo } from '../helpers/git.js';
import { hmacHex, pushBody, signedHeaders, type Forge } from '../helpers/forge-push.js';

const SECRET = `whsec-${randomBytes(12).toString('hex')}`;
const ADMIN_TOKEN = `admtok-${randomBytes(12).toString('hex')}`;
const envs: FaultEnv[] = [];
const repos: TestRepo[] = [];

afterAll(async () => {
  for (const e of envs) await e.destroy();
  for (const r of repos) await r.cleanup();
});

async function newRepo(body: string, slowSeconds = 0): Promise<TestRepo> {
  const r = await createTestRepo();
  repos.push(r);
  await r.commit(site(body, slowSeconds));
  return r;
}

function site(body: string, slowSeconds = 0): Record<string, string | { copy: string; mode: number }> {
  return {
    busybox: { copy: '/bin/busybox', mode: 0o755 },
    'www/index.html': `${body}\n`,
    Dockerfile: ['FROM scratch', 'COPY busybox /bin/busybox', 'COPY www /www', ...(slowSeconds ? [`RUN ["/bin/busybox", "sleep", "${slowSeconds}"]`] : []), 'CMD ["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"]', ''].join('\n'),
  };
}

const builtSpec = (name: string, repo: TestRepo) => `build:\n  git: {url: "${repo.url}", branch: main}\nroutes: [{host: ${name}.test}]\nresources: {memory: 32m}`;

const hmac = (body: Buffer, key = SECRET) => hmacHex(body, key);
const signed = (forge: Forge, body: Buffer, delivery?: string) => signedHeaders(forge, body, SECRET, delivery);

async function webhook(env: FaultEnv, headers: Record<string, string>, body: Buffer): Promise<{ status: number; outcome?: string; reason?: string }> {
  const r = await env.call('forge.example', '/_berth/webhook', { method: 'POST', headers: { ...headers, 'content-length': String(body.length) }, body });
  let json: { outcome?: string; reason?: string } = {};
  try {
    json = JSON.parse(r.text) as typeof json;
  } catch {
    // asserted on through the status
  }
  return { status: r.status, ...json };
}

async function tagEvents(env: FaultEnv, sinceMs: number): Promise<string[]> {
  const out = await env.docker('events', '--since', (sinceMs / 1000).toFixed(3), '--until', (Date.now() / 1000).toFixed(3),
    '--filter', `label=dev.berth.instance=${env.instance}`, '--filter', 'type=image', '--filter', 'event=tag', '--format', '{{index .Actor.Attributes "name"}}');
  return out.split('\n').filter(Boolean);
}

async function served(env: FaultEnv, app: string): Promise<string> {
  const r = await env.call(`${app}.test`, '/').catch(() => undefined);
  return r?.status === 200 ? r.text.trim() : '';
}

let env: FaultEnv;

beforeAll(async () => {
  env = await FaultEnv.create('fwh', { env: { BERTH_WEBHOOK_SECRET: SECRET, BERTH_ADMIN_TOKEN: ADMIN_TOKEN } });
  envs.push(env);
  await env.start();
});

describe('the webhook attack matrix (F14)', () => {
  it('forged, oversized, malformed, other-branch and replayed deliveries change nothing', async () => {
    const repo = await newRepo('rev1');
    await env.writeApp('web', builtSpec('web', repo));
    await waitFor('web serving rev1', async () => (await served(env, 'web')) === 'rev1', 60_000, 100);
    const c2 = await repo.commit(site('rev2'));
    const delivery = randomUUID();
    expect((await webhook(env, signed('github', pushBody('github', repo, 'main', c2), delivery), pushBody('github', repo, 'main', c2))).status).toBe(202);
    await waitFor('web serving rev2', async () => (await served(env, 'web')) === 'rev2', 60_000, 100);
    await sleep(1000);

    // The branch moves on, but none of the deliveries below may make berth notice.
    const c3 = await repo.commit(site('rev3'));
    const quiet = Date.now();
    const body = pushBody('github', repo, 'main', c3);
    const good = signed('github', body);
    const { 'x-hub-signature-256': _sig, ...unsigned } = good;
    const altered = Buffer.from(body);
    const at = altered.indexOf(c3);
    altered[at] = altered[at] === 0x30 ? 0x31 : 0x30;
    const gitlabBody = pushBody('gitlab', repo, 'main', c3);
    const matrix: [string, Record<string, string>, Buffer, number][] = [
      ['bad signature', { ...good, 'x-hub-signature-256': `sha256=${hmac(body, 'not-the-secret')}` }, body, 401],
      ['missing signature', unsigned, body, 401],
      ['SHA-1 only', { ...unsigned, 'x-hub-signature': `sha1=${createHmac('sha1', SECRET).update(body).digest('hex')}` }, body, 401],
      ['truncated signature', { ...good, 'x-hub-signature-256': good['x-hub-signature-256']!.slice(0, 40) }, body, 401],
      ['body altered by one byte', good, altered, 401],
      ['Gitea, bad signature', { ...signed('gitea', body), 'x-gitea-signature': hmac(body, 'wrong') }, body, 401],
      ['GitLab, bad token', { ...signed('gitlab', gitlabBody), 'x-gitlab-token': 'wrong' }, gitlabBody, 401],
      ['2 MiB body', signed('github', pushBody('github', repo, 'main', c3, 2 << 20)), pushBody('github', repo, 'main', c3, 2 << 20), 413],
      ['malformed JSON, signed', signed('github', Buffer.from('{"ref": "refs/heads/main", ')), Buffer.from('{"ref": "refs/heads/main", '), 400],
      ['another branch', signed('github', pushBody('github', repo, 'feature', c3)), pushBody('github', repo, 'feature', c3), 200],
    ];
    const answers: string[] = [];
    for (const [why, headers, b, want] of matrix) {
      const r = await webhook(env, headers, b);
      answers.push(`${why}=${r.status}`);
      expect(r.status, why).toBe(want);
    }
    // GitHub's redelivery of the accepted push, ten times at once.
    const replays = await Promise.all(Array.from({ length: 10 }, () => webhook(env, signed('github', pushBody('github', repo, 'main', c2), delivery), pushBody('github', repo, 'main', c2))));
    expect(replays.map((r) => r.status)).toEqual(replays.map(() => 200));
    console.log(`webhook matrix: ${answers.join(', ')}, replay x10=${replays[0]!.status} (${replays[0]!.reason})`);
    await sleep(3000);
    expect(await tagEvents(env, quiet), 'no build from any of these').toEqual([]);
    expect(await served(env, 'web')).toBe('rev2');
    await checkInvariants(env, { apps: { web: 1 }, canaries: [SECRET, ADMIN_TOKEN], label: 'webhook matrix' });
  });
});

describe('the build queue flood (F20)', () => {
  it('10 pushes in 2 s to one app while another builds: never two builds at once, at most two of it, the last commit deployed', async () => {
    const spam = await newRepo('spam-0');
    await env.writeApp('spam', builtSpec('spam', spam));
    await waitFor('spam serving', async () => (await served(env, 'spam')) === 'spam-0', 60_000, 100);
    const nonce = randomBytes(4).toString('hex');
    const slowRepo = await newRepo(`slow ${nonce}`, 3);
    // The build slot as operator.yaml shows it, every 50 ms.
    let sampling = true;
    let maxRunning = 0;
    const sampler = (async () => {
      while (sampling) {
        maxRunning = Math.max(maxRunning, (await env.operator())?.status.buildQueue?.running?.length ?? 0);
        await sleep(50);
      }
    })();
    await env.writeApp('slow', builtSpec('slow', slowRepo));
    await waitFor('slow building', async () => (await env.operator())?.status.buildQueue?.running?.some((r) => r.app === 'slow'), 30_000, 50);
    // Ten commits made beforehand; the burst moves main to each in turn and sends its webhook.
    const commits: string[] = [];
    for (let i = 1; i <= 10; i++) {
      await writeFile(join(spam.work, 'www', 'index.html'), `spam-${i}\n`);
      await git(spam.work, 'add', '-A');
      await git(spam.work, 'commit', '-q', '-m', `spam ${i}`);
      commits.push(await git(spam.work, 'rev-parse', 'HEAD'));
    }
    await git(spam.work, 'push', '-q', '--force', spam.bare, `${commits.at(-1)!}:refs/heads/staging`);
    const burst = Date.now();
    const answers: Promise<{ status: number }>[] = [];
    for (const c of commits) {
      await git(spam.bare, 'update-ref', 'refs/heads/main', c);
      answers.push(webhook(env, signed('github', pushBody('github', spam, 'main', c)), pushBody('github', spam, 'main', c)));
    }
    expect((await Promise.all(answers)).map((a) => a.status)).toEqual(commits.map(() => 202));
    const burstMs = Date.now() - burst;
    await waitFor('spam serving spam-10', async () => (await served(env, 'spam')) === 'spam-10', 90_000, 100);
    await waitFor('slow serving', async () => (await served(env, 'slow')) === `slow ${nonce}`, 60_000, 100);
    await sleep(500);
    sampling = false;
    await sampler;
    // Build logs (one per build started) of the flooded app since the burst, with their start and end.
    const dir = join(env.dirs.state, 'builds', 'spam');
    const logs = await Promise.all((await readdir(dir)).filter((n) => n.endsWith('.log')).map(async (n) => ({ n, text: await readFile(join(dir, n), 'utf8'), end: (await stat(join(dir, n))).mtimeMs })));
    const started = logs.filter((l) => l.end >= burst);
    const tags = (await tagEvents(env, burst)).filter((t) => t.startsWith('berth/spam:'));
    console.log(`flood: 10 pushes in ${burstMs} ms; ${started.length} build(s) of spam started, ${tags.length} tagged (${tags.join(' ')}); max builds running at once ${maxRunning}`);
    expect(burstMs).toBeLessThan(2000);
    expect(maxRunning).toBe(1);
    expect(started.length).toBeGreaterThanOrEqual(1);
    expect(started.length).toBeLessThanOrEqual(2);
    expect(tags).toContain(`berth/spam:${commits.at(-1)!.slice(0, 12)}`);
    expect(tags.length).toBeLessThanOrEqual(2);
    expect((await env.operator())?.status.buildQueue).toMatchObject({ running: [], queued: [] });
    await checkInvariants(env, { apps: { web: 1, spam: 1, slow: 1 }, canaries: [SECRET, ADMIN_TOKEN], label: 'build flood' });
  });
});
