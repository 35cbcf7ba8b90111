// The proxy's ports: what it needs from the rest of berth. The controller keeps backends up to
// date and implements the waker; the proxy only reads them, so it can be tested with plain
// Node backends and no Docker.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../../controllers/ports/clock.js';
import type { Logger } from '../util/logger.js';

export type { Clock };

export interface Endpoint {
  host: string;
  port: number;
}

/**
 * What the proxy knows about one app's containers.
 * - serving: requests go to `endpoints` (round-robin).
 * - sleeping / waking: requests are held and one wake is started (single flight).
 * - unavailable: 503 + Retry-After (failed, paused, first deploy not ready yet).
 * `reason` is for berth's own status and logs; clients never see it.
 */
export interface AppBackend {
  state: 'serving' | 'sleeping' | 'waking' | 'unavailable';
  endpoints: readonly Endpoint[];
  /** How long held requests wait for a wake before 503 + Retry-After. */
  wakeTimeoutMs: number;
  /** spec.idle.after: onIdle fires once after this long without activity; absent = never. */
  idleAfterMs?: number;
  reason?: string;
}

/** Read side of the backend registry; `subscribe` tells the proxy which app changed. */
export interface BackendSource {
  get(app: string): AppBackend | undefined;
  subscribe(listener: (app: string) => void): () => void;
}

/**
 * Starts an app and resolves once it is serving (its endpoints already in the BackendSource).
 * Rejects with an Error (ideally carrying a PascalCase `reason`) when it cannot. The proxy
 * calls it at most once at a time per app and honours a backoff after failures; `signal`
 * aborts when the proxy gives up waiting (wake timeout) or closes.
 */
export interface Waker {
  wake(app: string, signal: AbortSignal): Promise<void>;
}

/** App secrets (decrypted), for per-route bearer auth. */
export interface SecretSource {
  get(app: string, name: string): string | undefined;
}

export interface ProxyDeps {
  backends: BackendSource;
  waker: Waker;
  secrets: SecretSource;
  clock: Clock;
  logger: Logger;
  /** Called once when an app with idleAfterMs has been idle that long (again only after new activity or a state change). */
  onIdle?: (app: string) => void;
}

export interface ProxyOptions {
  /** Port put in HTTP→HTTPS redirects; omitted from the URL when 443. Default 443. */
  httpsPort?: number;
  /** Request bodies larger than this get 413 (Content-Length up front, streamed bodies as counted). Default: no limit. */
  maxBodyBytes?: number;
  /** Requests held per app while it wakes; beyond this 503. Default 1000. */
  maxHeldPerApp?: number;
  /** A request whose Content-Length exceeds this is not held for a wake (503 + Retry-After). Default 16 MiB. */
  maxHeldBodyBytes?: number;
  /**
   * Browser navigations to a waking app are held this long, then answered with a small
   * auto-refreshing "starting…" page. null: always hold like API clients. Default 2000.
   */
  startingPageAfterMs?: number | null;
  /** Waiting for an upstream's response headers; then 504. 0 disables. Default 120 000. */
  upstreamTimeoutMs?: number;
  /**
   * How long connection-refused is retried (other endpoints, then growing delays): `warm` for an
   * app being switched, `cold` right after a wake (readiness may race the first requests).
   * Defaults 1000 / 5000 ms.
   */
  connectRetryMs?: { warm: number; cold: number };
  /** Backoff between wakes of an app after a failed wake. Default 2 s doubling to 60 s. */
  wakeBackoff?: { initialMs: number; maxMs: number };
  /** Upstream keep-alive pool, per endpoint. Defaults: 256 sockets, 64 idle, idle sockets closed after 30 s. */
  upstreamSockets?: { max: number; maxIdle: number; idleTimeoutMs: number };
}

export interface ReservedContext {
  secure: boolean;
  /** Host header, lower-cased, without port. */
  host: string;
}

/** Serves a reserved path (`/_berth/...`, `/.well-known/acme-challenge/...`) on every host. */
export type ReservedHandler = (req: IncomingMessage, res: ServerResponse, ctx: ReservedContext) => void | Promise<void>;
