// The admin listener (loopback by default): /healthz, /metrics and /api/v1. A bearer token
// (constant-time) is required for anything mutating, and for everything when bound beyond
// loopback; the Host header is checked so a web page cannot reach it by DNS rebinding.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import { isLoopback, type Address } from '../config/config.js';
import type { Logger } from '../util/logger.js';

export type AdminRoute = (req: IncomingMessage, res: ServerResponse, params: { name?: string; body?: unknown }) => void | Promise<void>;

export interface AdminServerOptions {
  address: Address;
  token: string | undefined;
  log: Logger;
  health: () => { ok: boolean; body: Record<string, unknown> };
  metrics: () => string;
  /** GET handlers by path pattern; ":name" matches one path segment. */
  get: Record<string, AdminRoute>;
  /** POST handlers (token required). */
  post: Record<string, AdminRoute>;
}

const MAX_BODY = 64 * 1024;

export function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Constant-time comparison of a presented bearer token with the expected one. */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer (.+)$/i.exec(header ?? '');
  return m !== null && timingSafeEqual(digest(m[1]!), digest(token));
}

export async function startAdminServer(opts: AdminServerOptions): Promise<Server> {
  const open = isLoopback(opts.address.host);
  const server = createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, (req, res) => {
    void handle(req, res).catch((e: unknown) => {
      opts.log.error({ err: e, url: req.url }, 'admin request failed');
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    if (open && !isLoopback(host)) return send(res, 421, { error: 'the admin API answers only to loopback host names' });
    const url = new URL(req.url ?? '/', 'http://admin');
    const mutating = req.method !== 'GET' && req.method !== 'HEAD';
    if ((mutating || !open) && !(opts.token && tokenMatches(req.headers.authorization, opts.token))) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      return send(res, 401, { error: opts.token ? 'missing or wrong bearer token' : 'set BERTH_ADMIN_TOKEN to use mutating admin endpoints' });
    }
    if (url.pathname === '/healthz' && !mutating) {
      const h = opts.health();
      return send(res, h.ok ? 200 : 503, h.body);
    }
    if (url.pathname === '/metrics' && !mutating) {
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
      return void res.end(opts.metrics());
    }
    const routes = mutating ? (req.method === 'POST' ? opts.post : {}) : opts.get;
    for (const [pattern, route] of Object.entries(routes)) {
      const params = matchPath(pattern, url.pathname);
      if (!params) continue;
      const body = mutating ? await readJsonBody(req, res) : undefined;
      if (body === BAD) return;
      return route(req, res, { ...params, body });
    }
    send(res, 404, { error: 'not found' });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.address.port, opts.address.host, () => resolve());
  });
  return server;
}

const BAD = Symbol('bad body');

async function readJsonBody(req: IncomingMessage, res: ServerResponse): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) {
      send(res, 413, { error: `body larger than ${MAX_BODY} bytes` });
      req.destroy();
      return BAD;
    }
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    send(res, 400, { error: 'body is not JSON' });
    return BAD;
  }
}

function matchPath(pattern: string, path: string): { name?: string } | undefined {
  const p = pattern.split('/');
  const s = path.split('/');
  if (p.length !== s.length) return undefined;
  const out: { name?: string } = {};
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ':name') out.name = decodeURIComponent(s[i]!);
    else if (p[i] !== s[i]) return undefined;
  }
  return out;
}

export function send(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(text);
}
