// Webhook authentication, on the raw body bytes before any parsing, in constant time:
//   GitHub           X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>
//   Gitea / Forgejo  X-Gitea-Signature / X-Forgejo-Signature: <hex HMAC-SHA256(secret, body)>
//   GitLab           X-Gitlab-Token: <the secret itself>
// Every signature header present must verify (Gitea sends several). The legacy SHA-1
// X-Hub-Signature alone is refused. Values of a fixed length are compared (timingSafeEqual
// throws on different lengths): the decoded digests, or SHA-256 of the tokens.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export type Forge = 'github' | 'gitea' | 'forgejo' | 'gitlab';

export type VerifyResult = { ok: true; forge: Forge } | { ok: false; reason: string };

/** Which forge sent the request, from its event header (signature headers alone can be ambiguous). */
export function detectForge(headers: IncomingHttpHeaders): Forge | undefined {
  // Forgejo also sends X-Gitea-*, and Gitea also sends X-GitHub-Event: most specific first.
  if (headers['x-forgejo-event'] !== undefined) return 'forgejo';
  if (headers['x-gitea-event'] !== undefined) return 'gitea';
  if (headers['x-gitlab-event'] !== undefined) return 'gitlab';
  if (headers['x-github-event'] !== undefined) return 'github';
  return undefined;
}

export function verifySignature(headers: IncomingHttpHeaders, body: Buffer, secret: string): VerifyResult {
  if (secret === '') return { ok: false, reason: 'no webhook secret is configured' };
  const forge = detectForge(headers);
  if (!forge) return { ok: false, reason: 'not a webhook from a known forge (no X-GitHub-Event, X-Gitea-Event, X-Forgejo-Event or X-Gitlab-Event header)' };

  const checks: { header: string; check: (v: string) => string | undefined }[] = [
    { header: 'x-hub-signature-256', check: (v) => checkHmac(v, 'sha256=', body, secret) },
    { header: 'x-gitea-signature', check: (v) => checkHmac(v, '', body, secret) },
    { header: 'x-forgejo-signature', check: (v) => checkHmac(v, '', body, secret) },
    { header: 'x-gitlab-token', check: (v) => checkToken(v, secret) },
  ];
  let verified = 0;
  for (const { header, check } of checks) {
    const raw = headers[header];
    if (raw === undefined) continue;
    if (Array.isArray(raw)) return { ok: false, reason: `${header} appears more than once` };
    const problem = check(raw);
    if (problem) return { ok: false, reason: `${header}: ${problem}` };
    verified++;
  }
  if (verified > 0) return { ok: true, forge };
  if (headers['x-hub-signature'] !== undefined) {
    return { ok: false, reason: 'only a SHA-1 X-Hub-Signature was sent; berth requires X-Hub-Signature-256' };
  }
  return { ok: false, reason: 'missing signature (X-Hub-Signature-256, X-Gitea-Signature, X-Forgejo-Signature or X-Gitlab-Token)' };
}

/** undefined when `value` is `<prefix><64 hex>` and the HMAC matches; otherwise why not. */
function checkHmac(value: string, prefix: string, body: Buffer, secret: string): string | undefined {
  if (!value.startsWith(prefix)) return `expected the form ${prefix}<hex>`;
  const hex = value.slice(prefix.length).trim();
  // Case does not change the bytes a hex string stands for; the length is not secret.
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) return 'not a 64-digit hex HMAC-SHA256';
  const expected = createHmac('sha256', secret).update(body).digest();
  return timingSafeEqual(Buffer.from(hex, 'hex'), expected) ? undefined : 'signature does not match';
}

function checkToken(value: string, secret: string): string | undefined {
  const a = createHash('sha256').update(value).digest();
  const b = createHash('sha256').update(secret).digest();
  return timingSafeEqual(a, b) ? undefined : 'token does not match';
}

