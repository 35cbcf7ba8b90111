import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { downstreamHeaders, rewriteUpgradeHeaders, upstreamHeaders } from '../../src/proxy/headers.js';

function fakeRequest(raw: string[], remoteAddress = '::ffff:192.0.2.7'): IncomingMessage {
  const headers: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    headers[k] = headers[k] === undefined ? raw[i + 1]! : `${headers[k]}, ${raw[i + 1]!}`;
  }
  return { rawHeaders: raw, headers, socket: { remoteAddress } } as unknown as IncomingMessage;
}

describe('upstreamHeaders', () => {
  it('drops hop-by-hop and client forwarding headers, keeps the rest as sent, and sets X-Forwarded-*', () => {
    const req = fakeRequest([
      'Host', 'App.test:8080',
      'Connection', 'keep-alive, X-Hop',
      'X-Hop', 'drop me',
      'Keep-Alive', 'timeout=5',
      'TE', 'trailers',
      'Proxy-Authorization', 'Basic x',
      'X-Forwarded-For', '6.6.6.6',
      'x-forwarded-proto', 'https',
      'X-Forwarded-Host', 'evil.test',
      'Forwarded', 'for=6.6.6.6',
      'X-Real-IP', '6.6.6.6',
      'Expect', '100-continue',
      'Cookie', 'a=1',
      'Cookie', 'b=2',
      'Authorization', 'Bearer t',
      'Transfer-Encoding', 'chunked',
    ]);
    expect(upstreamHeaders(req, false)).toEqual([
      'Host', 'App.test:8080',
      'Cookie', 'a=1',
      'Cookie', 'b=2',
      'Authorization', 'Bearer t',
      'Transfer-Encoding', 'chunked',
      'X-Forwarded-For', '192.0.2.7',
      'X-Forwarded-Proto', 'http',
      'X-Forwarded-Host', 'App.test:8080',
    ]);
  });

  it('says https for the TLS listener', () => {
    expect(upstreamHeaders(fakeRequest(['Host', 'a.test'], '10.0.0.1'), true)).toContain('https');
  });

  it('refuses a request with two Host headers', () => {
    expect(upstreamHeaders(fakeRequest(['Host', 'a.test', 'Host', 'b.test']), false)).toBeUndefined();
  });
});

describe('rewriteUpgradeHeaders', () => {
  it('keeps the upgrade handshake and replaces forwarding headers', () => {
    const req = fakeRequest(['Host', 'a.test', 'Connection', 'keep-alive, Upgrade', 'Upgrade', 'websocket', 'Sec-WebSocket-Key', 'k', 'X-Forwarded-For', '6.6.6.6', 'Forwarded', 'x']);
    rewriteUpgradeHeaders(req, true);
    expect(req.headers).toEqual({
      host: 'a.test',
      connection: 'Upgrade',
      upgrade: 'websocket',
      'sec-websocket-key': 'k',
      'x-forwarded-for': '192.0.2.7',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'a.test',
    });
  });
});

describe('downstreamHeaders', () => {
  it('drops hop-by-hop response headers, keeps repeated Set-Cookie, and spots event streams', () => {
    const out: string[] = [];
    const sse = downstreamHeaders(
      ['Content-Type', 'text/event-stream; charset=utf-8', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Transfer-Encoding', 'chunked', 'Connection', 'keep-alive, X-Private', 'X-Private', '1', 'Keep-Alive', 'timeout=5'],
      'keep-alive, X-Private',
      out,
    );
    expect(sse).toBe(true);
    expect(out).toEqual(['Content-Type', 'text/event-stream; charset=utf-8', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2']);
    expect(downstreamHeaders(['Content-Type', 'text/html'], undefined, [])).toBe(false);
  });
});
