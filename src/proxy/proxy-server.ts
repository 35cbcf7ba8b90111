// berth's reverse proxy: mounted on the HTTP listener (and the HTTPS one, with secure=true).
// Per request: reserved paths, route match on the current table, HTTPS redirect, bearer auth,
// body limit, then either proxy to a serving app or hold the request while the app wakes.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../util/logger.js';
import { ActivityTracker } from './activity-tracker.js';
import { bearerMatches } from './bearer-auth.js';
import { rewriteUpgradeHeaders, upstreamHeaders } from './headers.js';
import { HttpExchange, type ExchangeContext } from './http-exchange.js';
import { listenHttp, type ServerLimits } from './http-listener.js';
import { IdleMonitor } from './idle-monitor.js';
import { ProxyMetrics } from './metrics.js';
import { rejectUpgrade, sendPage, sendStartingPage } from './pages.js';
import { declaredBodyLength, hasDotSegment, isBerthPath, isNavigation } from './request-target.js';
import { buildRouteTable, normalizeHost, type RouteMatch, type RouteTable } from './route-table.js';
import { UpstreamPool } from './upstream-pool.js';
import { WakeCoordinator, type WakeWaiter } from './wake-coordinator.js';
import { WsForwarder } from './ws-forwarder.js';
import type { AppBackend, ProxyDeps, ProxyOptions, ReservedHandler } from './types.js';

export interface ReverseProxy {
  handleRequest(req: IncomingMessage, res: ServerResponse, secure: boolean): void;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, secure: boolean): void;
  /** Swaps the whole table; requests already routed keep the table they matched on. */
  setRoutes(table: RouteTable): void;
  /** The port HTTP→HTTPS redirects name, once the HTTPS listener is bound. */
  setHttpsPort(port: number): void;
  /** Serves `prefix` (under /_berth/ or /.well-known/acme-challenge/) on every host; returns a remover. */
  addReservedHandler(prefix: string, handler: ReservedHandler): () => void;
  /** An HTTP listener (secure=false) with the server limits applied; port 0 picks a free port. */
  listenHttp(addr: { host: string; port: number }, limits?: Partial<ServerLimits>): Promise<Server>;
  readonly metrics: ProxyMetrics;
  readonly activity: ActivityTracker;
  /** Gives up held requests (503), closes open websockets and upstream sockets. Close the servers separately. */
  close(): void;
}

export const ACME_PREFIX = '/.well-known/acme-challenge/';
const HEALTHZ = '/_berth/healthz';

export function createProxy(deps: ProxyDeps, options: ProxyOptions = {}): ReverseProxy {
  return new BerthProxy(deps, options);
}

interface Reserved {
  prefix: string;
  handler: ReservedHandler;
}

class BerthProxy implements ReverseProxy {
  readonly metrics: ProxyMetrics;
  readonly activity: ActivityTracker;
  private table: RouteTable = buildRouteTable([]).table;
  private reserved: Reserved[] = [];
  private readonly pool: UpstreamPool;
  private readonly wakes: WakeCoordinator;
  private readonly idle: IdleMonitor;
  private readonly ws: WsForwarder;
  private readonly exchange: ExchangeContext;
  private readonly unsubscribe: () => void;
  private readonly log: Logger;
  private readonly missingSecretsLogged = new Set<string>();
  private httpsPort: number;
  private readonly maxBodyBytes: number | undefined;
  private readonly maxHeldBodyBytes: number;
  private readonly startingPageAfterMs: number | null;

  constructor(private readonly deps: ProxyDeps, opts: ProxyOptions) {
    const log = deps.logger.child({ component: 'proxy' });
    this.log = log;
    this.httpsPort = opts.httpsPort ?? 443;
    this.maxBodyBytes = opts.maxBodyBytes;
    this.maxHeldBodyBytes = opts.maxHeldBodyBytes ?? 16 << 20;
    this.startingPageAfterMs = opts.startingPageAfterMs === undefined ? 2000 : opts.startingPageAfterMs;
    this.activity = new ActivityTracker(deps.clock);
    this.pool = new UpstreamPool(opts.upstreamSockets ?? { max: 256, maxIdle: 64, idleTimeoutMs: 30_000 });
    this.metrics = new ProxyMetrics({
      apps: () => this.activity.appNames(),
      activity: (app) => this.activity.snapshot(app),
      held: (app) => this.wakes.held(app),
      upstreams: () => this.pool.stats(),
    });
    this.wakes = new WakeCoordinator(deps.waker, deps.clock, this.metrics, log, {
      maxHeld: opts.maxHeldPerApp ?? 1000,
      backoff: opts.wakeBackoff ?? { initialMs: 2000, maxMs: 60_000 },
    });
    const onIdle = deps.onIdle;
    this.idle = new IdleMonitor(this.activity, deps.backends, deps.clock, (app) => {
      log.info({ app }, 'app idle');
      try {
        onIdle?.(app);
      } catch (e) {
        log.error({ app, err: e }, 'onIdle failed');
      }
    });
    this.ws = new WsForwarder(this.activity, this.metrics, log);
    this.exchange = {
      pool: this.pool,
      backends: deps.backends,
      activity: this.activity,
      metrics: this.metrics,
      clock: deps.clock,
      log,
      upstreamTimeoutMs: opts.upstreamTimeoutMs ?? 120_000,
      connectRetryMs: opts.connectRetryMs ?? { warm: 1000, cold: 5000 },
      maxBodyBytes: opts.maxBodyBytes,
    };
    this.unsubscribe = deps.backends.subscribe((app) => {
      const b = deps.backends.get(app);
      this.pool.update(app, b?.endpoints ?? []);
      this.idle.refresh(app);
    });
  }

  setRoutes(table: RouteTable): void {
    this.table = table;
  }

  setHttpsPort(port: number): void {
    this.httpsPort = port;
  }

  addReservedHandler(prefix: string, handler: ReservedHandler): () => void {
    if (!prefix.startsWith('/_berth/') && !prefix.startsWith(ACME_PREFIX)) throw new Error(`reserved prefix must be under /_berth/ or ${ACME_PREFIX}: ${prefix}`);
    const entry = { prefix, handler };
    this.reserved = [...this.reserved, entry].sort((a, b) => b.prefix.length - a.prefix.length);
    return () => {
      this.reserved = this.reserved.filter((r) => r !== entry);
    };
  }

  handleRequest(req: IncomingMessage, res: ServerResponse, secure: boolean): void {
    try {
      this.route(req, res, secure);
    } catch (e) {
      // A bug here must cost one request, not the process.
      this.log.error({ err: e, url: req.url }, 'request handling failed');
      sendPage(req, res, 500);
    }
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, secure: boolean): void {
    // A client resetting a held or refused upgrade must not become an uncaught error.
    socket.on('error', () => socket.destroy());
    try {
      this.routeUpgrade(req, socket, head, secure);
    } catch (e) {
      this.log.error({ err: e, url: req.url }, 'upgrade handling failed');
      socket.destroy();
    }
  }

  listenHttp(addr: { host: string; port: number }, limits?: Partial<ServerLimits>): Promise<Server> {
    return listenHttp(this, addr, limits);
  }

  private route(req: IncomingMessage, res: ServerResponse, secure: boolean): void {
    const target = req.url ?? '';
    // Origin-form only: absolute-form and '*' are for forward proxies.
    if (target.charCodeAt(0) !== 0x2f /* / */) return sendPage(req, res, 400);
    const acmeChallenge = target.startsWith(ACME_PREFIX);
    if (isBerthPath(target) || acmeChallenge) {
      if (this.serveReserved(req, res, target, secure)) return;
    }
    const hostHeader = req.headers.host;
    if (hostHeader === undefined || hasDotSegment(target)) return sendPage(req, res, 400);
    const m = this.table.match(hostHeader, target);
    if (m === undefined) {
      this.metrics.unrouted++;
      return sendPage(req, res, 404);
    }
    const { app, route } = m;
    // An ACME challenge nobody in berth answers goes to the app over HTTP: CAs validate on port 80.
    if (route.tls && !secure && !acmeChallenge) return this.redirect(req, res, hostHeader, target);
    if (route.bearerSecret !== undefined && !this.authorized(app, route.bearerSecret, req.headers.authorization)) {
      return this.reply(app, req, res, 401, { headers: ['WWW-Authenticate', 'Bearer realm="berth"'] });
    }
    const length = declaredBodyLength(req);
    if (this.maxBodyBytes !== undefined && length !== undefined && length > this.maxBodyBytes) return this.reply(app, req, res, 413);
    const backend = this.deps.backends.get(app);
    if (backend !== undefined && backend.state === 'serving') return this.forward(req, res, m, secure, length, false);
    if (backend !== undefined && (backend.state === 'sleeping' || backend.state === 'waking')) return this.holdRequest(req, res, m, secure, length, backend);
    this.reply(app, req, res, 503, { retryAfterS: 5 });
  }

  private routeUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, secure: boolean): void {
    const target = req.url ?? '';
    const hostHeader = req.headers.host;
    if (target.charCodeAt(0) !== 0x2f || hostHeader === undefined || hasDotSegment(target)) return rejectUpgrade(socket, 400);
    if (isBerthPath(target)) return rejectUpgrade(socket, 404);
    const m = this.table.match(hostHeader, target);
    if (m === undefined) {
      this.metrics.unrouted++;
      return rejectUpgrade(socket, 404);
    }
    const { app, route } = m;
    if (route.tls && !secure) return rejectUpgrade(socket, 308, ['Location', this.httpsUrl(hostHeader, target)]);
    if (route.bearerSecret !== undefined && !this.authorized(app, route.bearerSecret, req.headers.authorization)) {
      return rejectUpgrade(socket, 401, ['WWW-Authenticate', 'Bearer realm="berth"']);
    }
    if (req.headers.upgrade?.toLowerCase() !== 'websocket') return rejectUpgrade(socket, 400);
    rewriteUpgradeHeaders(req, secure);
    const backend = this.deps.backends.get(app);
    if (backend !== undefined && backend.state === 'serving') return this.forwardUpgrade(req, socket, head, m);
    if (backend === undefined || (backend.state !== 'sleeping' && backend.state !== 'waking')) return rejectUpgrade(socket, 503, ['Retry-After', '5']);
    const done = this.heldActivity(app);
    const outcome = this.wakes.hold(app, backend.wakeTimeoutMs, {
      ready: () => {
        this.forwardUpgrade(req, socket, head, m);
        done();
      },
      failed: (retryAfterS) => {
        done();
        rejectUpgrade(socket, 503, ['Retry-After', String(retryAfterS)]);
      },
    });
    if (!outcome.held) {
      done();
      return rejectUpgrade(socket, 503, ['Retry-After', String(outcome.retryAfterS)]);
    }
    socket.once('close', () => {
      outcome.cancel();
      done();
    });
  }

  close(): void {
    this.unsubscribe();
    this.idle.close();
    this.wakes.close();
    this.ws.close();
    this.pool.close();
  }

  private forward(req: IncomingMessage, res: ServerResponse, m: RouteMatch, secure: boolean, length: number | undefined, coldStart: boolean): void {
    const headers = upstreamHeaders(req, secure);
    if (headers === undefined) return this.reply(m.app, req, res, 400);
    new HttpExchange(this.exchange, req, res, m.app, m.strippedPath, headers, length !== 0, coldStart).start();
  }

  private forwardUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, m: RouteMatch): void {
    if (socket.destroyed) return;
    const b = this.deps.backends.get(m.app);
    const up = b !== undefined && b.state === 'serving' ? this.pool.pick(m.app, b.endpoints) : undefined;
    if (up === undefined) return rejectUpgrade(socket, 503, ['Retry-After', '5']);
    this.ws.forward(req, socket, head, m.app, m.strippedPath, up);
  }

  /**
   * Holds a request for a sleeping app until its wake resolves. The body is not read, only left
   * waiting (Node stops reading the socket once its buffer is full, so a held upload costs
   * little memory). A browser navigation gets the "starting…" page if the wake takes longer
   * than startingPageAfterMs: most wakes (docker start ≈ 0.3 s, unpause ≈ 15 ms) finish well
   * within the default 2 s, so browsers usually just see one slower page load.
   */
  private holdRequest(req: IncomingMessage, res: ServerResponse, m: RouteMatch, secure: boolean, length: number | undefined, backend: AppBackend): void {
    const app = m.app;
    if (length !== undefined && length > this.maxHeldBodyBytes) {
      const refused = this.wakes.nudge(app, backend.wakeTimeoutMs);
      return this.reply(app, req, res, 503, { retryAfterS: refused?.retryAfterS ?? Math.max(1, Math.ceil(backend.wakeTimeoutMs / 1000)) });
    }
    let pageTimer: NodeJS.Timeout | undefined;
    const done = this.heldActivity(app);
    const waiter: WakeWaiter = {
      ready: () => {
        clearTimeout(pageTimer);
        // Released requests never re-enter the wake path: a waker that resolves without the app serving gets a 503, not a loop.
        if (!res.destroyed && !res.headersSent) this.forward(req, res, m, secure, length, true);
        done();
      },
      failed: (retryAfterS) => {
        clearTimeout(pageTimer);
        done();
        if (!res.headersSent) this.reply(app, req, res, 503, { retryAfterS });
      },
    };
    const outcome = this.wakes.hold(app, backend.wakeTimeoutMs, waiter);
    if (!outcome.held) {
      done();
      return this.reply(app, req, res, 503, { retryAfterS: outcome.retryAfterS });
    }
    res.once('close', () => {
      clearTimeout(pageTimer);
      if (!res.writableFinished) outcome.cancel();
      done();
    });
    if (this.startingPageAfterMs !== null && isNavigation(req)) {
      pageTimer = setTimeout(() => {
        outcome.cancel();
        done();
        this.metrics.response(app, 503);
        sendStartingPage(req, res);
      }, this.startingPageAfterMs);
    }
  }

  /**
   * A held request is activity: without it the app, once serving, would look idle since its
   * last request before it slept and be put straight back to sleep. Returns an idempotent end.
   */
  private heldActivity(app: string): () => void {
    this.activity.begin(app);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.activity.end(app);
    };
  }

  /** Answers a reserved path; false when nothing is registered there and the request should be routed (ACME only). */
  private serveReserved(req: IncomingMessage, res: ServerResponse, target: string, secure: boolean): boolean {
    const path = target.split('?', 1)[0] as string;
    if (path === HEALTHZ && (req.method === 'GET' || req.method === 'HEAD')) {
      res.writeHead(200, ['Content-Type', 'text/plain', 'Content-Length', '3', 'Cache-Control', 'no-store']);
      res.end(req.method === 'HEAD' ? undefined : 'ok\n');
      return true;
    }
    const entry = this.reserved.find((r) => path.startsWith(r.prefix) && (path.length === r.prefix.length || r.prefix.endsWith('/') || path[r.prefix.length] === '/'));
    if (entry === undefined) {
      if (!isBerthPath(target)) return false;
      sendPage(req, res, 404);
      return true;
    }
    const fail = (e: unknown) => {
      this.log.error({ prefix: entry.prefix, err: e }, 'reserved handler failed');
      sendPage(req, res, 500);
    };
    try {
      const r = entry.handler(req, res, { secure, host: normalizeHost(req.headers.host ?? '') });
      if (r instanceof Promise) r.catch(fail);
    } catch (e) {
      fail(e);
    }
    return true;
  }

  private authorized(app: string, secretName: string, authorization: string | undefined): boolean {
    const expected = this.deps.secrets.get(app, secretName);
    if (expected === undefined) {
      // Fail closed; say so once rather than on every request.
      const key = `${app}/${secretName}`;
      if (!this.missingSecretsLogged.has(key)) {
        this.missingSecretsLogged.add(key);
        this.log.warn({ app, secretName }, 'bearer secret not set: requests are refused');
      }
      return false;
    }
    return bearerMatches(authorization, expected);
  }

  private redirect(req: IncomingMessage, res: ServerResponse, hostHeader: string, target: string): void {
    const headers = ['Location', this.httpsUrl(hostHeader, target), 'Content-Length', '0'];
    if (declaredBodyLength(req) !== 0) headers.push('Connection', 'close');
    res.writeHead(308, headers);
    res.end();
  }

  private httpsUrl(hostHeader: string, target: string): string {
    const port = this.httpsPort === 443 ? '' : `:${this.httpsPort}`;
    return `https://${normalizeHost(hostHeader)}${port}${target}`;
  }

  private reply(app: string, req: IncomingMessage, res: ServerResponse, status: number, opts?: { retryAfterS?: number; headers?: string[] }): void {
    this.metrics.response(app, status);
    sendPage(req, res, status, opts);
  }
}
