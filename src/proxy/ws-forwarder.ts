// Websocket upgrades through http-proxy-3 (pinned 1.23.3): it pipes the two sockets after the
// 101 and relays a non-101 answer. Each open websocket counts as activity until it closes.
// Upgraded sockets leave the keep-alive pool anyway, so no agent is used here.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import type { Logger } from '../util/logger.js';
import type { ActivityTracker } from './activity-tracker.js';
import type { ProxyMetrics } from './metrics.js';
import { rejectUpgrade } from './pages.js';
import type { Upstream } from './upstream-pool.js';

const APP = Symbol('berth.app');
type TaggedSocket = Duplex & { [APP]?: string };

export class WsForwarder {
  private readonly proxy = createProxyServer({ ws: true, xfwd: false, prependPath: false });
  private readonly open = new Set<Duplex>();

  constructor(
    private readonly activity: ActivityTracker,
    private readonly metrics: ProxyMetrics,
    private readonly log: Logger,
  ) {
    // Without an 'error' listener http-proxy-3 errors are unhandled (and would crash berth).
    this.proxy.on('error', (err, _req, target) => {
      const socket = target as TaggedSocket & Partial<Pick<Socket, 'bytesWritten'>>;
      const app = socket[APP];
      if (app !== undefined) this.metrics.app(app).upstreamErrors++;
      this.log.debug({ app, err }, 'websocket upstream error');
      // Nothing written yet means the 101 never went out: the client gets a proper 502.
      if (!socket.destroyed && socket.bytesWritten === 0) rejectUpgrade(socket, 502);
      else socket.destroy();
    });
  }

  /** `req.headers` must already be rewritten; `path` is the (stripped) request target. */
  forward(req: IncomingMessage, socket: Duplex, head: Buffer, app: string, path: string, up: Upstream): void {
    (socket as TaggedSocket)[APP] = app;
    req.url = path;
    this.activity.begin(app);
    this.activity.markStream(app);
    this.open.add(socket);
    socket.once('close', () => {
      this.open.delete(socket);
      this.activity.end(app, true);
    });
    this.proxy.ws(req, socket, head, { target: { host: up.host, port: up.port } });
  }

  /** Upgraded sockets have left the HTTP server, so server.close() would wait for them forever. */
  close(): void {
    for (const s of this.open) s.destroy();
  }
}
