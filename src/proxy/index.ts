// The proxy's public surface, for the composition root.
export { createProxy, ACME_PREFIX, type ReverseProxy } from './proxy-server.js';
export { buildRouteTable, type Route, type RouteConflict, type RouteMatch, type RouteSource, type RouteSpec, type RouteTable } from './route-table.js';
export { BackendRegistry } from './backend-registry.js';
export { applyServerLimits, createHttpServer, defaultServerLimits, listenHttp, serverOptions, type ServerLimits } from './http-listener.js';
export type { ActivityTracker, ActivitySnapshot } from './activity-tracker.js';
export type { AppMetricsSnapshot, ProxyMetricsSnapshot } from './metrics.js';
export type { AppBackend, BackendSource, Endpoint, ProxyDeps, ProxyOptions, ReservedContext, ReservedHandler, SecretSource, Waker } from './types.js';
