// Local HTTP backends, a raw HTTP client and a proxy harness for the proxy tests: everything on
// loopback with ephemeral ports, no Docker.
import { createHash } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { silentLogger } from '../../src/util/logger.js';
import { BackendRegistry } from '../../src/proxy/backend-registry.js';
import { createHttpServer, type ServerLimits } from '../../src/proxy/http-listener.js';
import { createProxy, type ReverseProxy } from '../../src/proxy/proxy-server.js';
import { buildRouteTable, type RouteSource, type RouteSpec } from '../../src/proxy/route-table.js';
import type { AppBackend, Clock, ProxyOptions, Waker } from '../../src/proxy/types.js';

export const systemClock: Clock = { monotonic: () => performance.now(), now: () => new Date() };

export interface EchoBody {
  backend: string;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
  bodyBytes: number;
  bodySha256: string;
}

export interface Backend {
  name: string;
  port: number;
  server: Server;
  /** Requests seen, in order. */
  seen: EchoBody[];
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => boolean | void;

/**
 * A keep-alive backend that answers every request with a JSON echo of what it received (after
 * reading the whole body), unless `handler` answers first (returns true). Websocket upgrades
 * are echoed when `ws` is set.
 */
export async function startBackend(name: string, opts: { handler?: Handler; ws?: boolean; port?: number } = {}): Promise<Backend> {
  const seen: EchoBody[] = [];
  const server = createServer((req, res) => {
    if (opts.handler?.(req, res) === true) return;
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      hash.update(c);
    });
    req.on('end', () => {
      const echo: EchoBody = { backend: name, method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, bodyBytes: bytes, bodySha256: hash.digest('hex') };
      seen.push(echo);
      const body = JSON.stringify(echo);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-backend': name, connection: 'keep-alive, x-secret-hop', 'x-secret-hop': 'leak', 'keep-alive': 'timeout=5' });
      res.end(body);
    });
  });
  if (opts.ws === true) {
    const wss = new WebSocketServer({ server });
    wss.on('connection', (sock, req) => {
      sock.send(JSON.stringify({ backend: name, url: req.url, xff: req.headers['x-forwarded-for'], proto: req.headers['x-forwarded-proto'] }));
      sock.on('message', (data, isBinary) => sock.send(data, { binary: isBinary }));
    });
  }
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    port,
    server,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
  text: string;
}

export interface RequestOptions {
  host?: string;
  method?: string;
  path?: string;
  headers?: Record<string, string | number | string[]>;
  body?: Buffer | string;
  /** Raw header pairs sent as-is (repeated names allowed). */
  rawHeaders?: string[];
}

/** One request on a fresh connection (no client-side pooling hides server behaviour). */
export function send(port: number, opts: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number | string[]> | string[] = opts.rawHeaders ?? { host: opts.host ?? 'app.test', ...opts.headers };
    const req = request({ host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path ?? '/', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString() });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

export function echoOf(reply: Reply): EchoBody {
  return JSON.parse(reply.text) as EchoBody;
}

export interface Harness {
  proxy: ReverseProxy;
  backends: BackendRegistry;
  port: number;
  server: Server;
  setRoutes(sources: RouteSource[]): void;
  close(): Promise<void>;
}

export function route(host: string, path = '/', extra: Partial<RouteSpec> = {}): RouteSpec {
  return { host, path, stripPrefix: false, tls: false, ...extra };
}

export function serving(...ports: number[]): AppBackend {
  return { state: 'serving', endpoints: ports.map((port) => ({ host: '127.0.0.1', port })), wakeTimeoutMs: 5000 };
}

/** A proxy on an ephemeral loopback port, its registry, and a route setter. */
export async function startProxy(opts: {
  waker?: Waker;
  secrets?: Record<string, Record<string, string>>;
  options?: ProxyOptions;
  limits?: Partial<ServerLimits>;
  clock?: Clock;
  onIdle?: (app: string) => void;
} = {}): Promise<Harness> {
  const backends = new BackendRegistry();
  const proxy = createProxy(
    {
      backends,
      waker: opts.waker ?? { wake: () => Promise.reject(new Error('no waker in this test')) },
      secrets: { get: (app, name) => opts.secrets?.[app]?.[name] },
      clock: opts.clock ?? systemClock,
      logger: silentLogger,
      ...(opts.onIdle ? { onIdle: opts.onIdle } : {}),
    },
    opts.options,
  );
  const server = createHttpServer(proxy, opts.limits);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    proxy,
    backends,
    server,
    port: (server.address() as AddressInfo).port,
    setRoutes: (sources) => {
      const { table } = buildRouteTable(sources);
      proxy.setRoutes(table);
    },
    close: () =>
      new Promise<void>((resolve) => {
        proxy.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
