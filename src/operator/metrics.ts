// Prometheus text exposition of berth's own metrics.
import type { ControllerManager } from './controller-manager.js';
import type { Traffic } from './traffic.js';
import type { BuildQueueSnapshot } from '../build/build-queue.js';

type TrafficMetrics = ReturnType<Traffic['metrics']>;

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export function renderMetrics(manager: ControllerManager, traffic: TrafficMetrics | undefined, builds?: BuildQueueSnapshot, dockerCalls?: ReadonlyMap<string, number>): string {
  const out: string[] = [];
  const family = (name: string, type: 'gauge' | 'counter', help: string, rows: [string, number][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of rows) out.push(`${name}${labels} ${Number.isFinite(value) ? value : 0}`);
  };
  family('berth_apps', 'gauge', 'Apps by phase.', Object.entries(manager.phaseCounts()).map(([p, n]) => [`{phase="${esc(p)}"}`, n]));
  family('berth_docker_connected', 'gauge', '1 when berth is connected to the Docker engine.', [['', manager.docker.connected ? 1 : 0]]);
  family('berth_reconciles_total', 'counter', 'Reconcile passes by outcome (converged, error, stalled).', [...manager.counters.reconciles].map(([k, v]) => [`{result="${esc(k)}"}`, v]));
  family('berth_reconcile_errors_total', 'counter', 'Reconcile errors (each starts a backoff), by reason.', [...manager.counters.errors].map(([k, v]) => [`{reason="${esc(k)}"}`, v]));
  if (dockerCalls) family('berth_docker_calls_total', 'counter', 'Docker API calls by method.', [...dockerCalls].map(([m, n]) => [`{method="${esc(m)}"}`, n]));
  if (builds) {
    family('berth_builds_running', 'gauge', 'Builds running now.', [['', builds.running.length]]);
    family('berth_builds_queued', 'gauge', 'Builds waiting for the build slot.', [['', builds.queued.length]]);
  }
  if (traffic) {
    const apps = Object.entries(traffic.proxy.apps);
    family('berth_http_requests_total', 'counter', 'Requests proxied, by app and status class.', apps.flatMap(([a, m]) => (['1xx', '2xx', '3xx', '4xx', '5xx'] as const).map((c) => [`{app="${esc(a)}",class="${c}"}`, m.requests[c]] as [string, number])));
    family('berth_http_in_flight', 'gauge', 'Requests in flight, by app.', apps.map(([a, m]) => [`{app="${esc(a)}"}`, m.inFlight]));
    family('berth_http_open_streams', 'gauge', 'Open websockets and event streams, by app.', apps.map(([a, m]) => [`{app="${esc(a)}"}`, m.openStreams]));
    family('berth_wakes_total', 'counter', 'Wakes of sleeping apps.', apps.map(([a, m]) => [`{app="${esc(a)}"}`, m.wakes]));
    family('berth_wake_failures_total', 'counter', 'Wakes that failed or timed out.', apps.map(([a, m]) => [`{app="${esc(a)}"}`, m.wakeFailures]));
    family('berth_wake_latency_seconds', 'gauge', 'Wake latency (request to serving) over the last wakes.', apps.flatMap(([a, m]) => [
      [`{app="${esc(a)}",quantile="0.5"}`, (m.wakeLatencyMs.p50 ?? NaN) / 1000],
      [`{app="${esc(a)}",quantile="0.95"}`, (m.wakeLatencyMs.p95 ?? NaN) / 1000],
    ] as [string, number][]).filter(([, v]) => Number.isFinite(v)));
    family('berth_http_unrouted_total', 'counter', 'Requests for hosts or paths no route matches.', [['', traffic.proxy.unrouted]]);
    family('berth_certificate_expiry_seconds', 'gauge', 'Seconds until each certificate expires.', traffic.certificates.hosts.filter((h) => h.secondsToExpiry !== undefined).map((h) => [`{host="${esc(h.host)}",issuer="${h.issuer}"}`, h.secondsToExpiry!]));
    family('berth_certificate_orders_total', 'counter', 'ACME orders placed.', [['', traffic.certificates.orders]]);
    family('berth_certificate_failures_total', 'counter', 'Certificate issuance failures.', [['', traffic.certificates.failures]]);
  }
  return `${out.join('\n')}\n`;
}
