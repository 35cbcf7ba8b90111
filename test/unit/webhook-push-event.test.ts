import { describe, it, expect } from 'vitest';
import { parseWebhookEvent, sameRepository, repositoryKey, matchFollowers, MalformedWebhookError, type Follower } from '../../src/webhook/push-event.js';

const SHA = '3f2a1c9e0b7d4a6f8e1c2b3a4d5e6f708192a3b4';
const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

const githubPush = {
  ref: 'refs/heads/main',
  before: '0'.repeat(40),
  after: SHA,
  repository: {
    clone_url: 'https://github.com/me/blog.git',
    ssh_url: 'git@github.com:me/blog.git',
    html_url: 'https://github.com/me/blog',
    git_url: 'git://github.com/me/blog.git',
    url: 'https://api.github.com/repos/me/blog',
  },
};

describe('push events', () => {
  it('reads a GitHub push', () => {
    const e = parseWebhookEvent('github', { 'x-github-event': 'push', 'x-github-delivery': 'd-1' }, json(githubPush));
    expect(e).toEqual({
      forge: 'github',
      name: 'push',
      event: 'push',
      delivery: 'd-1',
      repoUrls: ['https://github.com/me/blog.git', 'git@github.com:me/blog.git', 'https://github.com/me/blog', 'git://github.com/me/blog.git'],
      branch: 'main',
      after: SHA,
    });
  });

  it('reads a GitHub push sent form-encoded', () => {
    const body = Buffer.from(`payload=${encodeURIComponent(JSON.stringify(githubPush))}`);
    const e = parseWebhookEvent('github', { 'x-github-event': 'push', 'content-type': 'application/x-www-form-urlencoded' }, body);
    expect(e.branch).toBe('main');
  });

  it('reads a GitHub ping and other events', () => {
    expect(parseWebhookEvent('github', { 'x-github-event': 'ping' }, json({ zen: 'Keep it simple.', hook_id: 1 })).event).toBe('ping');
    expect(parseWebhookEvent('github', { 'x-github-event': 'issues' }, json({ action: 'opened' })).event).toBe('other');
  });

  it('reads Gitea and Forgejo pushes', () => {
    const body = json({ ref: 'refs/heads/dev', after: SHA, repository: { clone_url: 'https://git.lan/me/app.git', ssh_url: 'ssh://git@git.lan:2222/me/app.git', html_url: 'https://git.lan/me/app' } });
    const gitea = parseWebhookEvent('gitea', { 'x-gitea-event': 'push', 'x-gitea-delivery': 'g-1' }, body);
    expect([gitea.event, gitea.branch, gitea.delivery, gitea.repoUrls.length]).toEqual(['push', 'dev', 'g-1', 3]);
    const forgejo = parseWebhookEvent('forgejo', { 'x-forgejo-event': 'push', 'x-forgejo-delivery': 'f-1' }, body);
    expect([forgejo.forge, forgejo.delivery]).toEqual(['forgejo', 'f-1']);
  });

  it('reads a GitLab push hook', () => {
    const body = json({
      object_kind: 'push',
      ref: 'refs/heads/main',
      after: SHA,
      project: { git_http_url: 'https://gitlab.com/me/blog.git', git_ssh_url: 'git@gitlab.com:me/blog.git', web_url: 'https://gitlab.com/me/blog' },
      repository: { git_http_url: 'https://gitlab.com/me/blog.git', homepage: 'https://gitlab.com/me/blog' },
    });
    const e = parseWebhookEvent('gitlab', { 'x-gitlab-event': 'Push Hook', 'x-gitlab-event-uuid': 'u-1' }, body);
    expect(e).toMatchObject({ event: 'push', branch: 'main', after: SHA, delivery: 'u-1' });
    expect(e.repoUrls).toEqual(['https://gitlab.com/me/blog.git', 'https://gitlab.com/me/blog', 'git@gitlab.com:me/blog.git']);
    expect(parseWebhookEvent('gitlab', { 'x-gitlab-event': 'Tag Push Hook' }, body).event).toBe('other');
  });

  it('leaves the branch out for tag pushes and marks deletions', () => {
    const tag = parseWebhookEvent('github', { 'x-github-event': 'push' }, json({ ...githubPush, ref: 'refs/tags/v1' }));
    expect(tag.branch).toBeUndefined();
    const del = parseWebhookEvent('github', { 'x-github-event': 'push' }, json({ ...githubPush, after: '0'.repeat(40), deleted: true }));
    expect([del.deleted, del.after]).toEqual([true, undefined]);
  });

  it('derives a delivery id from the body when the forge sends none, so an identical resend is still a replay', () => {
    const a = parseWebhookEvent('github', { 'x-github-event': 'push' }, json(githubPush));
    const b = parseWebhookEvent('github', { 'x-github-event': 'push', 'x-github-delivery': 'bad id with spaces' }, json(githubPush));
    expect(a.delivery).toMatch(/^body-[0-9a-f]{32}$/);
    expect(b.delivery).toBe(a.delivery);
  });

  it.each([
    ['not JSON', Buffer.from('{nope')],
    ['a JSON array', json([1])],
    ['a push without ref', json({ after: SHA, repository: githubPush.repository })],
    ['a push without repository', json({ ref: 'refs/heads/main', after: SHA })],
    ['a form body without payload', Buffer.from('x=1')],
  ])('rejects %s as malformed', (_name, body) => {
    const headers = { 'x-github-event': 'push', ...(_name.startsWith('a form') ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) };
    expect(() => parseWebhookEvent('github', headers, body)).toThrow(MalformedWebhookError);
  });
});

describe('repository URL matching', () => {
  it.each([
    ['https://github.com/me/blog.git', 'https://github.com/me/blog', true],
    ['https://github.com/me/blog.git', 'git@github.com:me/blog.git', true],
    ['https://GitHub.com/Me/Blog', 'ssh://git@github.com/me/blog', true],
    ['ssh://git@git.lan:2222/me/app.git', 'https://git.lan:3000/me/app', true],
    ['https://user:token@github.com/me/blog.git/', 'https://github.com/me/blog', true],
    ['git://github.com/me/blog.git', 'https://github.com/me/blog', true],
    ['file:///srv/git/app.git', 'file:///srv/git/app', true],
    ['file:///srv/git/App.git', 'file:///srv/git/app.git', false], // local paths keep their case
    ['https://github.com/me/blog', 'https://github.com/me/blog2', false],
    ['https://github.com/me/blog', 'https://gitlab.com/me/blog', false],
    ['https://github.com/me/blog', 'https://github.com/you/blog', false],
    ['not a url', 'not a url', false],
  ])('%s ~ %s: %s', (a, b, same) => {
    expect(sameRepository(a, b)).toBe(same);
  });

  it('normalises to host/path', () => {
    expect(repositoryKey('git@github.com:me/blog.git')).toBe('github.com/me/blog');
    expect(repositoryKey('file:///srv/git/app.git')).toBe('file:/srv/git/app');
  });

  it('finds the apps and repositories following a branch, and the other branches followed', () => {
    const followers: Follower[] = [
      { kind: 'App', name: 'blog', url: 'git@github.com:me/blog.git', branch: 'main' },
      { kind: 'App', name: 'blog-preview', url: 'https://github.com/me/blog', branch: 'dev' },
      { kind: 'GitRepository', name: 'infra', url: 'https://github.com/me/blog.git', branch: 'main' },
      { kind: 'App', name: 'other', url: 'https://github.com/me/other', branch: 'main' },
    ];
    expect(matchFollowers(['https://github.com/me/blog.git'], 'main', followers)).toEqual({ apps: ['blog'], repositories: ['infra'], otherBranches: ['dev'] });
    expect(matchFollowers(['https://github.com/me/blog.git'], 'feature', followers)).toEqual({ apps: [], repositories: [], otherBranches: ['main', 'dev'] });
  });
});
