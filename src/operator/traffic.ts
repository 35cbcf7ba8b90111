// Everything between a client and an app's containers: the proxy and its route table, the
// backends it reads (derived from each app's controller), the waker, idle detection, the
// HTTPS listener and certificates — and what of that an app's status shows.
import type { Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { readFile } from 'node:fs/promises';
import { BackendRegistry, buildRouteTable, createProxy, ACME_PREFIX, applyServerLimits, serverOptions, defaultServerLimits, type AppBackend, type ReverseProxy, type RouteSource } from '../proxy/index.js';
import { AcmeIssuer, CertificateManager, LazyLocalCa, createHttpsServer, resolveIssuer, type CertIssuer, type WantedCertificate } from '../certs/index.js';
import type { RunConfig } from '../config/config.js';
import type { DesiredStore } from '../desired/desired-store.js';
import type { StateStore } from '../state/state-store.js';
import type { Logger } from '../util/logger.js';
import type { App, AppStatus } from '../api/types.generated.js';
import type { ConditionInput } from '../../controllers/status/conditions.js';
import { parseDuration } from '../api/quantities.js';
import { systemClock } from '../../controllers/ports/clock.js';
import type { ControllerManager } from './controller-manager.js';
import { boundAddress } from './bound-address.js';

export interface StatusExtras {
  conditions: ConditionInput[];
  url?: string;
  fields: Pick<AppStatus, 'certificate' | 'traffic'> & { lastActivity?: string };
}

const DEFAULT_WAKE_TIMEOUT_MS = 60_000;
/** How often activity times and traffic counters reach the state and status files (never while idle). */
const REFRESH_MS = 60_000;

class WakeError extends Error {
  constructor(readonly reason: string, message: string) {
    super(message);
  }
}

export class Traffic {
  readonly proxy: ReverseProxy;
  private readonly registry = new BackendRegistry();
  private readonly certs: CertificateManager;
  private readonly acme: AcmeIssuer | undefined;
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly backendJson = new Map<string, string>();
  private http!: Server;
  private https: HttpsServer | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  /** host -> the issuer its certificate comes from. */
  private tlsHosts = new Map<string, 'local' | 'acme'>();

  private constructor(
    private readonly config: RunConfig,
    private readonly manager: ControllerManager,
    private readonly desired: DesiredStore,
    private readonly state: StateStore,
    private readonly log: Logger,
    issuers: Partial<Record<'local' | 'acme', CertIssuer>>,
    acme: AcmeIssuer | undefined,
  ) {
    this.acme = acme;
    this.certs = new CertificateManager({ stateDir: config.state, issuers, logger: log });
    this.certs.onChange((host) => {
      this.rebuildRoutes();
      for (const e of this.desired.list('App')) if (this.hostsOf(e.object as App | undefined).includes(host)) this.manager.rerender(e.name);
    });
    this.proxy = createProxy(
      {
        backends: this.registry,
        waker: { wake: (app, signal) => this.wake(app, signal) },
        secrets: { get: (app, name) => this.manager.secretsOf(app)[name] },
        clock: systemClock,
        logger: log.child({ component: 'proxy' }),
        onIdle: (app) => this.idle(app),
      },
      { httpsPort: config.https.port === 0 ? 443 : config.https.port },
    );
    if (acme) this.proxy.addReservedHandler(ACME_PREFIX, (req, res) => acme.handleChallenge(req, res));
  }

  static async start(config: RunConfig, manager: ControllerManager, desired: DesiredStore, state: StateStore, log: Logger): Promise<Traffic> {
    const issuers: Partial<Record<'local' | 'acme', CertIssuer>> = { local: await LazyLocalCa.open(config.state) };
    let acme: AcmeIssuer | undefined;
    if (config.acme) {
      const caBundle = config.acme.caBundle ? await readFile(config.acme.caBundle, 'utf8') : undefined;
      acme = new AcmeIssuer({ stateDir: config.state, directoryUrl: config.acme.directory, email: config.acme.email, ...(caBundle ? { caBundle } : {}), logger: log });
      issuers.acme = acme;
    }
    const t = new Traffic(config, manager, desired, state, log, issuers, acme);
    t.http = await t.proxy.listenHttp(config.http);
    t.refreshTimer = setInterval(() => t.refresh(), REFRESH_MS);
    t.refreshTimer.unref();
    return t;
  }

  listeners(): { http: string; https?: string } {
    return { http: boundAddress(this.http), ...(this.https?.listening ? { https: boundAddress(this.https) } : {}) };
  }

  /** Routes, certificates and idle clocks follow the desired apps. */
  async desiredChanged(): Promise<void> {
    this.rebuildRoutes();
    const wanted: WantedCertificate[] = [...this.tlsHosts].map(([host, issuer]) => ({ host, issuer }));
    this.certs.sync(wanted);
    if (wanted.length > 0 && !this.https) await this.startHttps();
    for (const e of this.desired.list('App')) {
      const app = e.object as App | undefined;
      const last = this.state.data.apps[e.name]?.lastActivity;
      if (app?.spec.idle && last && this.proxy.activity.lastActivity(e.name) === undefined) this.proxy.activity.restore(e.name, new Date(last));
    }
  }

  /** An app's controller changed: refresh its backend, release or fail waiting wakes. */
  appChanged(name: string): void {
    const b = this.backendOf(name);
    const json = b ? JSON.stringify(b) : '';
    if (json !== this.backendJson.get(name)) {
      this.backendJson.set(name, json);
      if (b) this.registry.set(name, b);
      else this.registry.delete(name);
    }
    for (const w of this.waiters.get(name) ?? []) w();
  }

  /** Conditions and fields of an app's status owned by routing and certificates. */
  extras(name: string): StatusExtras {
    const entry = this.desired.get('App', name);
    const app = entry?.object as App | undefined;
    const conditions: ConditionInput[] = [];
    const fields: StatusExtras['fields'] = {};
    const routes = app?.spec.routes ?? [];
    const conflict = entry?.problems.find((p) => p.reason === 'RouteConflict');
    if (conflict) conditions.push({ type: 'RouteReady', status: 'False', reason: 'RouteConflict', message: conflict.message });
    else if (routes.length > 0) conditions.push({ type: 'RouteReady', status: 'True', reason: 'Routed', message: routes.map((r) => `${r.host}${r.path}`).join(', ') });
    const hosts = this.hostsOf(app);
    if (hosts.length > 0) {
      const statuses = hosts.map((h) => ({ host: h, s: this.certs.status(h) }));
      const failing = statuses.find((x) => !x.s?.ready);
      const first = statuses[0]!.s;
      if (failing) {
        const err = failing.s?.lastError;
        conditions.push({ type: 'CertificateReady', status: 'False', reason: err?.reason ?? 'Issuing', message: err ? `${failing.host}: ${err.message}` : `waiting for the certificate of ${failing.host}` });
      } else {
        const notAfter = statuses.map((x) => x.s!.notAfter ?? '').sort()[0];
        // A valid certificate is still served while a renewal fails: ready, but say so.
        const renewing = statuses.find((x) => x.s?.lastError !== undefined);
        conditions.push(renewing
          ? { type: 'CertificateReady', status: 'True', reason: 'RenewalFailing', message: `${renewing.host}: renewal failed (${renewing.s!.lastError!.reason}: ${renewing.s!.lastError!.message}); still serving the certificate valid until ${renewing.s!.notAfter}, retrying` }
          : { type: 'CertificateReady', status: 'True', reason: 'Issued', message: `${hosts.join(', ')}: valid until ${notAfter}` });
      }
      const expiring = statuses.find((x) => x.s?.expiring);
      if (expiring) conditions.push({ type: 'CertificateExpiring', status: 'True', reason: 'RenewalFailing', message: `${expiring.host} expires ${expiring.s!.notAfter}; renewal keeps failing: ${expiring.s!.lastError?.message ?? ''}` });
      if (first) {
        const lastError = statuses.find((x) => x.s?.lastError)?.s?.lastError;
        fields.certificate = {
          issuer: first.issuer, hosts,
          ...(first.notAfter ? { notAfter: statuses.map((x) => x.s?.notAfter ?? '').filter(Boolean).sort()[0] } : {}),
          ...(first.renewAt ? { renewAt: statuses.map((x) => x.s?.renewAt ?? '').filter(Boolean).sort()[0] } : {}),
          ...(lastError ? { lastError } : {}),
        };
      }
    }
    const m = this.proxy.metrics.snapshot().apps[name];
    if (m && (m.requests.total > 0 || m.wakes > 0)) {
      fields.traffic = {
        requests: m.requests.total, wakes: m.wakes,
        ...(m.wakeLatencyMs.p50 !== undefined ? { wakeLatencyMs: { p50: round(m.wakeLatencyMs.p50), p95: round(m.wakeLatencyMs.p95 ?? m.wakeLatencyMs.p50) } } : {}),
      };
    }
    const last = this.state.data.apps[name]?.lastActivity;
    if (last) fields.lastActivity = last;
    const url = this.urlOf(app);
    return { conditions, fields, ...(url ? { url } : {}) };
  }

  async stop(): Promise<void> {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.persistActivity();
    this.proxy.close();
    await this.certs.close();
    this.acme?.close();
    for (const s of [this.http, this.https]) {
      if (!s) continue;
      await new Promise<void>((resolve) => s.close(() => resolve()));
      s.closeAllConnections();
    }
  }

  private hostsOf(app: App | undefined): string[] {
    if (!app) return [];
    return [...new Set((app.spec.routes ?? []).map((r) => r.host).filter((h) => this.tlsHosts.has(h)))];
  }

  private urlOf(app: App | undefined): string | undefined {
    const route = app?.spec.routes?.find((r) => !r.host.startsWith('*.'));
    if (!route) return undefined;
    const secure = this.tlsHosts.has(route.host) && this.certs.status(route.host)?.ready === true && this.https !== undefined;
    const port = secure ? addressPort(this.https!) : addressPort(this.http);
    const shown = (secure && port === 443) || (!secure && port === 80) ? '' : `:${port}`;
    return `${secure ? 'https' : 'http'}://${route.host}${shown}${route.path}`;
  }

  private rebuildRoutes(): void {
    const sources: RouteSource[] = [];
    const tls = new Map<string, 'local' | 'acme'>();
    for (const e of this.desired.list('App')) {
      const app = e.object as App | undefined;
      if (!app) continue;
      const routes = (app.spec.routes ?? []).map((r) => {
        const issuer = resolveIssuer(r.host, app.spec.tls, this.config.acme !== undefined);
        if (issuer) tls.set(r.host, issuer);
        // Redirect to HTTPS only once a certificate is there to serve.
        const ready = issuer !== undefined && this.certs.status(r.host)?.ready === true && this.https !== undefined;
        return { host: r.host, path: r.path, stripPrefix: r.stripPrefix, tls: ready, ...(r.auth ? { bearerSecret: r.auth.bearerSecret } : {}) };
      });
      if (routes.length > 0) sources.push({ app: e.name, createdAt: e.createdAt, routes });
    }
    this.tlsHosts = tls;
    const { table, conflicts } = buildRouteTable(sources);
    for (const c of conflicts) this.log.warn({ app: c.app, host: c.host, path: c.path, winner: c.winner }, 'route conflict in the route table');
    this.proxy.setRoutes(table);
  }

  private async startHttps(): Promise<void> {
    const limits = defaultServerLimits;
    const server = createHttpsServer({
      manager: this.certs,
      requestHandler: (req, res) => this.proxy.handleRequest(req, res, true),
      upgradeHandler: (req, socket, head) => this.proxy.handleUpgrade(req, socket, head, true),
      serverOptions: serverOptions(limits),
      logger: this.log,
    });
    applyServerLimits(server, limits);
    this.https = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.config.https.port, this.config.https.host, () => resolve());
    });
    // Redirects name the port actually bound (--https host:0 picks one).
    this.proxy.setHttpsPort(addressPort(server));
    this.log.info({ https: boundAddress(server) }, 'HTTPS listener open');
    this.rebuildRoutes();
  }

  private backendOf(name: string): AppBackend | undefined {
    const r = this.manager.runner(name);
    const spec = r?.context.desired?.app.spec;
    if (!r || !spec) return undefined;
    const ctx = r.context;
    const wakeTimeoutMs = spec.idle ? parseDuration(spec.idle.wakeTimeout) : DEFAULT_WAKE_TIMEOUT_MS;
    const base = { wakeTimeoutMs, ...(spec.idle ? { idleAfterMs: parseDuration(spec.idle.after) } : {}) };
    const endpoints = r.serving().map((c) => ({ host: c.networks[ctx.config.network]!, port: spec.port }));
    if (spec.replicas === 0) return { ...base, state: 'unavailable', endpoints: [], reason: 'ScaledToZero' };
    // Asleep or falling asleep: hold requests and wake it, never send them to a stopping container.
    if (!ctx.wantRunning) return { ...base, state: 'sleeping', endpoints: [] };
    if (endpoints.length > 0) return { ...base, state: 'serving', endpoints };
    if (r.state === 'stalled' || r.state === 'paused' || r.state === 'backoff') return { ...base, state: 'unavailable', endpoints: [], reason: ctx.lastError?.reason ?? r.state };
    // Starting (a wake or a first deploy): requests wait for it rather than fail.
    return { ...base, state: 'waking', endpoints: [] };
  }

  private wake(app: string, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const set = this.waiters.get(app) ?? this.waiters.set(app, new Set()).get(app)!;
      const done = (err?: Error) => {
        set.delete(check);
        signal.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const check = () => {
        const b = this.backendOf(app);
        const r = this.manager.runner(app);
        if (!b || !r) return done(new WakeError('NotFound', `no app ${app}`));
        if (b.state === 'serving') return done();
        if (b.state === 'unavailable') return done(new WakeError(r.context.lastError?.reason ?? b.reason ?? 'Unavailable', r.context.lastError?.message ?? `${app} cannot start`));
      };
      const onAbort = () => done(new WakeError('WakeTimeout', `${app} did not start in time`));
      signal.addEventListener('abort', onAbort, { once: true });
      set.add(check);
      this.manager.send(app, { type: 'wake' });
      check();
    });
  }

  private idle(app: string): void {
    this.persistActivity();
    this.manager.send(app, { type: 'idle' });
  }

  /** Activity times go to the state (rounded to the second) only when they moved: nothing is written while idle. */
  private persistActivity(): void {
    const updates: [string, string][] = [];
    for (const e of this.desired.list('App')) {
      if (!(e.object as App | undefined)?.spec.idle) continue;
      const wall = this.proxy.activity.lastActivityWallTime(e.name);
      if (!wall) continue;
      const iso = new Date(Math.floor(wall.getTime() / 1000) * 1000).toISOString();
      if (this.state.data.apps[e.name]?.lastActivity !== iso) updates.push([e.name, iso]);
    }
    if (updates.length > 0) this.state.update((d) => {
      for (const [name, iso] of updates) d.apps[name] = { ...d.apps[name], lastActivity: iso };
    });
  }

  /** Periodic: persist activity and refresh the traffic numbers in status files of apps that saw traffic. */
  private refresh(): void {
    this.persistActivity();
    for (const name of Object.keys(this.proxy.metrics.snapshot().apps)) this.manager.rerender(name);
  }

  metrics() {
    return { proxy: this.proxy.metrics.snapshot(), certificates: this.certs.metrics() };
  }
}

function addressPort(server: Server | HttpsServer): number {
  const a = server.address();
  return a !== null && typeof a === 'object' ? a.port : 0;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
