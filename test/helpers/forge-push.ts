// Push events as GitHub, Gitea and GitLab send them, signed with the webhook secret: shared by
// the builds end-to-end test and the webhook attack matrix of the fault suite.
import { createHmac, randomUUID } from 'node:crypto';

export type Forge = 'github' | 'gitea' | 'gitlab';

/** A push event body as the forge sends it (`pad` bytes of padding make it big). */
export function pushBody(forge: Forge, repo: { url: string }, branch: string, after: string, pad = 0): Buffer {
  const repository = forge === 'gitlab'
    ? { project: { git_http_url: repo.url, web_url: repo.url }, object_kind: 'push' }
    : { repository: { clone_url: repo.url, html_url: repo.url, full_name: 'test/repo' } };
  return Buffer.from(JSON.stringify({ ref: `refs/heads/${branch}`, before: '0'.repeat(40), after, ...repository, ...(pad ? { padding: 'x'.repeat(pad) } : {}) }));
}

export const hmacHex = (body: Buffer, key: string) => createHmac('sha256', key).update(body).digest('hex');

/** The headers a forge sends with `body`, correctly signed with `secret`. */
export function signedHeaders(forge: Forge, body: Buffer, secret: string, delivery: string = randomUUID()): Record<string, string> {
  const base = { 'content-type': 'application/json' };
  switch (forge) {
    case 'github':
      return { ...base, 'x-github-event': 'push', 'x-github-delivery': delivery, 'x-hub-signature-256': `sha256=${hmacHex(body, secret)}` };
    case 'gitea':
      return { ...base, 'x-gitea-event': 'push', 'x-gitea-delivery': delivery, 'x-gitea-signature': hmacHex(body, secret) };
    case 'gitlab':
      return { ...base, 'x-gitlab-event': 'Push Hook', 'x-gitlab-event-uuid': delivery, 'x-gitlab-token': secret };
  }
}
