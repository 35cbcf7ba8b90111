// The public listeners' limits. berth faces the internet with no proxy in front, so Node's
// defaults (60 s to send headers, checked every 30 s; 5 min per request) are too generous for
// slow-header attacks (CVE-2018-12122; reliability.md §3 item 9). The same limits go on the
// HTTPS server: pass serverOptions() to https.createServer and call applyServerLimits().
import { createServer, type Server, type ServerOptions } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { ReverseProxy } from './proxy-server.js';

export interface ServerLimits {
  /** Time for a client to send the request headers. Default 15 s. */
  headersTimeoutMs: number;
  /** Time to receive a whole request (headers and body) of a non-upgrade request; 408 after. Default 120 s. */
  requestTimeoutMs: number;
  /** Idle keep-alive connections are closed after this. Default 15 s. */
  keepAliveTimeoutMs: number;
  /** Larger request headers get 431. Default 16 KiB. */
  maxHeaderBytes: number;
  /** Connections beyond this from one address are closed at once. Default 256. */
  maxConnectionsPerIp: number;
  /** How often the header/request timeouts are checked (they may overrun by this much). Default 1 s. */
  timeoutCheckIntervalMs: number;
}

export const defaultServerLimits: ServerLimits = {
  headersTimeoutMs: 15_000,
  requestTimeoutMs: 120_000,
  keepAliveTimeoutMs: 15_000,
  maxHeaderBytes: 16 * 1024,
  maxConnectionsPerIp: 256,
  timeoutCheckIntervalMs: 1000,
};

/** Options only settable at construction (for http.createServer and https.createServer). */
export function serverOptions(limits: Partial<ServerLimits> = {}): ServerOptions {
  const l = { ...defaultServerLimits, ...limits };
  return {
    maxHeaderSize: l.maxHeaderBytes,
    headersTimeout: l.headersTimeoutMs,
    requestTimeout: l.requestTimeoutMs,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    connectionsCheckingInterval: l.timeoutCheckIntervalMs,
    noDelay: true,
  };
}

/** Caps connections per client address (slowloris with many sockets must not exhaust file descriptors). */
export function applyServerLimits(server: Server | HttpsServer, limits: Partial<ServerLimits> = {}): void {
  const max = limits.maxConnectionsPerIp ?? defaultServerLimits.maxConnectionsPerIp;
  const perIp = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const ip = socket.remoteAddress ?? '';
    const n = (perIp.get(ip) ?? 0) + 1;
    if (n > max) {
      socket.destroy();
      return;
    }
    perIp.set(ip, n);
    socket.once('close', () => {
      const left = (perIp.get(ip) ?? 1) - 1;
      if (left > 0) perIp.set(ip, left);
      else perIp.delete(ip);
    });
  });
}

/** An HTTP server with the limits applied and the proxy mounted (secure=false). Not yet listening. */
export function createHttpServer(proxy: ReverseProxy, limits: Partial<ServerLimits> = {}): Server {
  const server = createServer(serverOptions(limits));
  applyServerLimits(server, limits);
  server.on('request', (req, res) => proxy.handleRequest(req, res, false));
  server.on('upgrade', (req, socket, head) => proxy.handleUpgrade(req, socket, head, false));
  return server;
}

/** createHttpServer, listening on `addr` (port 0 picks a free port; read server.address()). */
export async function listenHttp(proxy: ReverseProxy, addr: { host: string; port: number }, limits: Partial<ServerLimits> = {}): Promise<Server> {
  const server = createHttpServer(proxy, limits);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
