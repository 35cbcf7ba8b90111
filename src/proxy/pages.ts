// berth's own small answers (404, 502, 503, the "starting…" page): JSON for clients that
// accept JSON, HTML for browsers, plain text otherwise. They never name apps, containers or
// addresses.
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

const MESSAGES: Record<number, string> = {
  400: 'The request could not be understood.',
  401: 'This resource requires a valid bearer token.',
  404: 'No site is configured for this address.',
  413: 'The request body is too large.',
  500: 'Something went wrong.',
  502: 'The site did not answer.',
  503: 'The site is not available right now. Please try again shortly.',
  504: 'The site took too long to answer.',
};

export interface PageOptions {
  retryAfterS?: number;
  /** Extra headers, flat [name, value, …]. */
  headers?: string[];
}

type Flavour = 'json' | 'html' | 'text';

function flavour(accept: string | undefined): Flavour {
  if (accept === undefined) return 'text';
  const json = accept.indexOf('json');
  const html = accept.indexOf('text/html');
  if (json !== -1 && (html === -1 || json < html)) return 'json';
  return html !== -1 ? 'html' : 'text';
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&quot;'));
}

function render(status: number, kind: Flavour): { body: string; type: string } {
  const title = `${status} ${STATUS_CODES[status] ?? 'Error'}`;
  const message = MESSAGES[status] ?? '';
  if (kind === 'json') return { body: JSON.stringify({ status, error: STATUS_CODES[status] ?? 'Error', message }), type: 'application/json' };
  if (kind === 'text') return { body: `${title}\n${message}\n`, type: 'text/plain; charset=utf-8' };
  const body = `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escapeHtml(title)}</title></head>` +
    `<body style="font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;color:#333"><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p></body></html>\n`;
  return { body, type: 'text/html; charset=utf-8' };
}

/** True when the request may still have body bytes on the wire that nobody will read. */
function hasUnreadBody(req: IncomingMessage): boolean {
  if (req.complete) return false;
  const len = req.headers['content-length'];
  return (len !== undefined && len !== '0') || req.headers['transfer-encoding'] !== undefined;
}

export function sendPage(req: IncomingMessage, res: ServerResponse, status: number, opts: PageOptions = {}): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const { body, type } = render(status, flavour(req.headers.accept));
  const headers = ['Content-Type', type, 'Content-Length', String(Buffer.byteLength(body)), 'Cache-Control', 'no-store'];
  if (opts.retryAfterS !== undefined) headers.push('Retry-After', String(opts.retryAfterS));
  // Close rather than read a body we refused (Node would otherwise drain it to keep the connection).
  if (hasUnreadBody(req)) headers.push('Connection', 'close');
  if (opts.headers) headers.push(...opts.headers);
  res.writeHead(status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

const STARTING_PAGE = `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">` +
  `<meta http-equiv="refresh" content="2"><title>Starting…</title></head>` +
  `<body style="font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;color:#333"><h1>Starting…</h1>` +
  `<p>This site was asleep and is waking up. This page reloads by itself.</p></body></html>\n`;

/** The auto-refreshing page a browser navigation gets while its app is still waking. */
export function sendStartingPage(req: IncomingMessage, res: ServerResponse): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(503, [
    'Content-Type', 'text/html; charset=utf-8', 'Content-Length', String(Buffer.byteLength(STARTING_PAGE)),
    'Cache-Control', 'no-store', 'Retry-After', '2', 'X-Berth-Cold-Start', 'true',
  ]);
  res.end(req.method === 'HEAD' ? undefined : STARTING_PAGE);
}

/** Minimal answers on a raw socket (refused websocket upgrades). */
export function rejectUpgrade(socket: Duplex, status: number, headers: string[] = []): void {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\nContent-Length: 0\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  socket.write(`${head}\r\n`);
  socket.end();
}
