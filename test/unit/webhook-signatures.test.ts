import { describe, it, expect } from 'vitest';
import { createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { verifySignature, detectForge } from '../../src/webhook/signatures.js';

const SECRET = 'test-secret-1';
const BODY = Buffer.from('{"ref":"refs/heads/main"}');
const hex = (body: Buffer | string, secret = SECRET): string => createHmac('sha256', secret).update(body).digest('hex');
const sha1 = (body: Buffer): string => `sha1=${createHmac('sha1', SECRET).update(body).digest('hex')}`;
const gh = (h: IncomingHttpHeaders): IncomingHttpHeaders => ({ 'x-github-event': 'push', ...h });
const gitea = (h: IncomingHttpHeaders): IncomingHttpHeaders => ({ 'x-gitea-event': 'push', ...h });
const altered = Buffer.from(BODY);
altered[5] = altered[5]! ^ 1;

describe('webhook signatures', () => {
  it("passes GitHub's published test vector", () => {
    const body = Buffer.from('Hello, World!');
    const sig = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';
    expect(verifySignature(gh({ 'x-hub-signature-256': sig }), body, "It's a Secret to Everybody")).toEqual({ ok: true, forge: 'github' });
  });

  // [name, headers, body, accepted, reason fragment]
  const cases: [string, IncomingHttpHeaders, Buffer, boolean, string][] = [
    ['github valid', gh({ 'x-hub-signature-256': `sha256=${hex(BODY)}` }), BODY, true, ''],
    ['github uppercase hex (same bytes)', gh({ 'x-hub-signature-256': `sha256=${hex(BODY).toUpperCase()}` }), BODY, true, ''],
    ['github wrong secret', gh({ 'x-hub-signature-256': `sha256=${hex(BODY, 'other')}` }), BODY, false, 'does not match'],
    ['github body altered by one byte', gh({ 'x-hub-signature-256': `sha256=${hex(BODY)}` }), altered, false, 'does not match'],
    ['github truncated signature', gh({ 'x-hub-signature-256': `sha256=${hex(BODY).slice(0, 63)}` }), BODY, false, '64-digit'],
    ['github empty signature', gh({ 'x-hub-signature-256': '' }), BODY, false, 'sha256='],
    ['github without the sha256= prefix', gh({ 'x-hub-signature-256': hex(BODY) }), BODY, false, 'sha256='],
    ['github non-hex', gh({ 'x-hub-signature-256': `sha256=${'z'.repeat(64)}` }), BODY, false, '64-digit'],
    ['github SHA-1 only', gh({ 'x-hub-signature': sha1(BODY) }), BODY, false, 'SHA-1'],
    ['github SHA-1 plus a bad SHA-256', gh({ 'x-hub-signature': sha1(BODY), 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` }), BODY, false, 'does not match'],
    ['github missing', gh({}), BODY, false, 'missing signature'],
    ['github header sent twice', gh({ 'x-hub-signature-256': [`sha256=${hex(BODY)}`, `sha256=${hex(BODY)}`] }), BODY, false, 'more than once'],
    ['gitea valid', gitea({ 'x-gitea-signature': hex(BODY) }), BODY, true, ''],
    ['gitea with both its headers valid', gitea({ 'x-gitea-signature': hex(BODY), 'x-hub-signature-256': `sha256=${hex(BODY)}` }), BODY, true, ''],
    ['gitea with one of two headers wrong', gitea({ 'x-gitea-signature': hex(BODY), 'x-hub-signature-256': `sha256=${hex('x')}` }), BODY, false, 'x-hub-signature-256'],
    ['gitea altered', gitea({ 'x-gitea-signature': hex(BODY) }), altered, false, 'does not match'],
    ['forgejo valid', { 'x-forgejo-event': 'push', 'x-forgejo-signature': hex(BODY), 'x-gitea-signature': hex(BODY) }, BODY, true, ''],
    ['gitlab token', { 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': SECRET }, BODY, true, ''],
    ['gitlab wrong token', { 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': `${SECRET}x` }, BODY, false, 'token does not match'],
    ['gitlab empty token', { 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': '' }, BODY, false, 'token does not match'],
    ['no forge event header', { 'x-hub-signature-256': `sha256=${hex(BODY)}` }, BODY, false, 'known forge'],
  ];

  it.each(cases)('%s', (_name, headers, body, accepted, reason) => {
    const res = verifySignature(headers, body, SECRET);
    expect(res.ok).toBe(accepted);
    if (!res.ok) expect(res.reason).toContain(reason);
  });

  it('refuses everything when no secret is configured', () => {
    expect(verifySignature(gh({ 'x-hub-signature-256': `sha256=${hex(BODY, '')}` }), BODY, '')).toEqual({ ok: false, reason: 'no webhook secret is configured' });
  });

  it('tells Forgejo and Gitea from GitHub although they send GitHub-style headers too', () => {
    expect(detectForge({ 'x-github-event': 'push', 'x-gitea-event': 'push', 'x-forgejo-event': 'push' })).toBe('forgejo');
    expect(detectForge({ 'x-github-event': 'push', 'x-gitea-event': 'push' })).toBe('gitea');
    expect(detectForge({ 'x-gitlab-event': 'Push Hook' })).toBe('gitlab');
    expect(detectForge({})).toBeUndefined();
  });
});
