// Header rewriting between client and upstream, on raw header arrays: names keep their case,
// repeated headers (Set-Cookie) stay separate, and no header object is built per request.
import type { IncomingMessage } from 'node:http';

// RFC 9110 §7.6.1 hop-by-hop headers, plus what berth itself answers or sets.
// Transfer-Encoding stays on requests: Node decodes the client's chunks and re-chunks what we write.
const REQUEST_DROP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'upgrade',
  // berth already answered 100 Continue to the client
  'expect',
  // client-supplied forwarding claims are never trusted; berth sets its own
  'forwarded', 'x-real-ip',
]);
const RESPONSE_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Headers named in a Connection header are hop-by-hop too (apart from the usual tokens). */
function connectionListed(value: string | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  let set: Set<string> | undefined;
  for (const token of value.split(',')) {
    const t = token.trim().toLowerCase();
    if (t === '' || t === 'keep-alive' || t === 'close' || t === 'upgrade') continue;
    (set ??= new Set()).add(t);
  }
  return set;
}

function clientAddress(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/**
 * The upstream request's headers as a flat [name, value, …] array: hop-by-hop and forwarding
 * headers dropped, then X-Forwarded-For/Proto/Host set by berth. Returns undefined when the
 * request carries more than one Host header (ambiguous routing: the caller answers 400).
 */
export function upstreamHeaders(req: IncomingMessage, secure: boolean): string[] | undefined {
  const raw = req.rawHeaders;
  const listed = connectionListed(req.headers.connection);
  const out: string[] = [];
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (lower === 'host') hosts++;
    if (REQUEST_DROP.has(lower) || lower.startsWith('x-forwarded-') || listed?.has(lower) === true) continue;
    out.push(name, raw[i + 1] as string);
  }
  if (hosts !== 1) return undefined;
  out.push('X-Forwarded-For', clientAddress(req), 'X-Forwarded-Proto', secure ? 'https' : 'http', 'X-Forwarded-Host', req.headers.host ?? '');
  return out;
}

/** The same rewrite in place on req.headers, for websocket upgrades (http-proxy-3 copies req.headers). */
export function rewriteUpgradeHeaders(req: IncomingMessage, secure: boolean): void {
  const h = req.headers;
  const listed = connectionListed(h.connection);
  for (const name of Object.keys(h)) {
    if (name === 'upgrade') continue;
    if (REQUEST_DROP.has(name) || name.startsWith('x-forwarded-') || listed?.has(name) === true) delete h[name];
  }
  h.connection = 'Upgrade';
  h['x-forwarded-for'] = clientAddress(req);
  h['x-forwarded-proto'] = secure ? 'https' : 'http';
  h['x-forwarded-host'] = h.host ?? '';
}

/**
 * Copies an upstream response's raw headers into `out` minus hop-by-hop ones (Node frames the
 * body itself). Returns true for an event stream, whose headers must be flushed at once.
 */
export function downstreamHeaders(raw: readonly string[], connection: string | undefined, out: string[]): boolean {
  const listed = connectionListed(connection);
  let eventStream = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (RESPONSE_DROP.has(lower) || listed?.has(lower) === true) continue;
    const value = raw[i + 1] as string;
    if (lower === 'content-type' && value.startsWith('text/event-stream')) eventStream = true;
    out.push(name, value);
  }
  return eventStream;
}
