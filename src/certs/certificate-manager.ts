// Certificates as a reconciled resource: the lead says which hosts want which issuer (sync),
// and the manager keeps a current certificate in memory for each one, forever. It loads what
// is stored before ordering anything, renews in the last third of the lifetime, keeps serving
// the current certificate while renewals fail (capped backoff, a global ACME order budget), and
// swaps the served certificate in memory, so the next TLS handshake gets it without a restart.
//
// Work runs in two lanes, one per issuer kind, each doing one host at a time: ACME orders never
// overlap, and a slow ACME order never delays a local certificate. A node-cron check (UTC) is
// the safety net; a timer set to the nearest deadline makes renewals and retries on time.
// Validity uses the wall clock; retry delays use the monotonic clock (a Pi boots with a stale
// wall clock that jumps at NTP sync).
import { createSecureContext, type SecureContext } from 'node:tls';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import cron, { type ScheduledTask } from 'node-cron';
import { cronLogger } from '../util/cron-logger.js';
import { systemClock, type Clock } from '../../controllers/ports/clock.js';
import { asBerthError, BerthError } from '../../controllers/ports/errors.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { acmeIneligibility } from './acme-issuer.js';
import type { CertIssuer, IssuedCertificate, IssuerKind } from './cert-issuer.js';
import { CertStore, type StoredCertificate } from './cert-store.js';
import { coveringWildcard, isIpHost, isValidHost, normalizeHost } from './host-names.js';
import { writePrivateFile } from './private-files.js';
import {
  backoffDelayMs,
  checkOrderBudget,
  DEFAULT_BACKOFF,
  DEFAULT_ORDER_BUDGET,
  isExpiring,
  needsCertificate,
  renewAt,
  type BackoffOptions,
  type OrderBudget,
} from './renewal-policy.js';

export interface WantedCertificate {
  host: string;
  issuer: IssuerKind;
}

export interface CertificateError {
  reason: string;
  message: string;
  at: string;
}

/** What the App status shows: `CertificateReady` and `status.certificate`. */
export interface CertificateStatus {
  /** A valid certificate from the wanted issuer is being served. */
  ready: boolean;
  issuer: IssuerKind;
  /** Of the certificate being served (which may be from the previous issuer while a new one is ordered). */
  notAfter?: string;
  renewAt?: string;
  lastError?: CertificateError;
  /** Renewal keeps failing and the served certificate expires within 7 days: the CertificateExpiring warning. */
  expiring: boolean;
  /** When a failed or budget-deferred order is retried (approximate wall time). */
  nextAttemptAt?: string;
}

export interface CertificateMetrics {
  hosts: { host: string; issuer: IssuerKind; ready: boolean; secondsToExpiry?: number; orders: number; failures: number }[];
  /** Issuance attempts (local and ACME) by this manager since it started. */
  orders: number;
  failures: number;
}

export interface CertificateManagerOptions {
  stateDir: string;
  /** An issuer kind without an issuer (ACME not configured) makes its hosts report AcmeNotConfigured. */
  issuers: Partial<Record<IssuerKind, CertIssuer>>;
  logger?: Logger;
  clock?: Clock;
  /** node-cron expression, evaluated in UTC, for the safety-net check. Default every 10 minutes. */
  checkSchedule?: string;
  backoff?: Partial<BackoffOptions>;
  /** ACME orders allowed per rolling window, across hosts and restarts. Default 10 per hour. */
  orderBudget?: Partial<OrderBudget>;
  /** Jitter source, [0, 1). */
  random?: () => number;
}

type Phase = 'Loading' | 'Pending' | 'Issuing' | 'Ready' | 'Backoff' | 'Stalled';

interface ServedCertificate extends StoredCertificate {
  context: SecureContext;
}

interface HostState {
  host: string;
  issuer: IssuerKind;
  phase: Phase;
  /** Set when no order can succeed until the wanted set changes (wildcard over ACME, no ACME configured...). */
  blocked?: BerthError;
  current?: ServedCertificate;
  /** Consecutive failures; reset by a success. */
  failures: number;
  /** Monotonic ms: no order before this. */
  nextAttemptAt?: number;
  lastError?: CertificateError;
  orders: number;
  failuresTotal: number;
  warnedExpiring: boolean;
  abort?: AbortController;
}

/** The wake-up timer never sleeps longer than this; the cron check covers clock jumps beyond it. */
const MAX_TIMER_MS = 3_600_000;
const ORDER_LOG = 'acme-orders.json';

export class CertificateManager {
  private readonly hosts = new Map<string, HostState>();
  private contexts = new Map<string, SecureContext>();
  private readonly listeners = new Set<(host: string) => void>();
  private readonly lanes: Record<IssuerKind, Promise<void> | undefined> = { local: undefined, acme: undefined };
  private readonly store: CertStore;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly backoff: BackoffOptions;
  private readonly budget: OrderBudget;
  private readonly random: () => number;
  private readonly task: ScheduledTask;
  private timer: NodeJS.Timeout | undefined;
  private orderTimes: number[] | undefined;
  private ordersTotal = 0;
  private failuresTotal = 0;
  private closed = false;

  constructor(private readonly opts: CertificateManagerOptions) {
    this.store = new CertStore(opts.stateDir);
    this.clock = opts.clock ?? systemClock;
    this.log = (opts.logger ?? silentLogger).child({ component: 'certificates' });
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    this.budget = { ...DEFAULT_ORDER_BUDGET, ...opts.orderBudget };
    this.random = opts.random ?? Math.random;
    const log = this.log;
    this.task = cron.schedule(opts.checkSchedule ?? '*/10 * * * *', () => this.checkNow(), {
      name: 'certificate-check',
      timezone: 'UTC',
      noOverlap: true,
      logger: cronLogger(log),
    });
    // The manager is never the reason the process stays up; the servers are.
    this.task.unref();
  }

  /**
   * The complete desired set, from every route with TLS. New hosts are worked on at once; hosts
   * that are gone stop renewing (an order in flight for them is aborted; their files stay).
   * Several routes on one host share one certificate.
   */
  sync(wanted: readonly WantedCertificate[]): void {
    if (this.closed) return;
    const next = new Map<string, IssuerKind>();
    for (const w of wanted) {
      const host = normalizeHost(w.host);
      const seen = next.get(host);
      if (seen !== undefined && seen !== w.issuer) this.log.warn({ host, issuers: [seen, w.issuer] }, 'routes on one host want different issuers; using the first');
      if (seen === undefined) next.set(host, w.issuer);
    }
    const changed: string[] = [];
    for (const [host, s] of [...this.hosts]) {
      if (next.get(host) === s.issuer) continue;
      s.abort?.abort();
      this.hosts.delete(host);
      changed.push(host);
      // Another issuer for the same host: keep serving the old certificate until the new one arrives.
      const issuer = next.get(host);
      if (issuer !== undefined) this.hosts.set(host, this.newHost(host, issuer, s.current));
    }
    for (const [host, issuer] of next) {
      if (this.hosts.has(host)) continue;
      this.hosts.set(host, this.newHost(host, issuer, undefined));
      changed.push(host);
    }
    if (changed.length === 0) return;
    this.rebuildContexts();
    for (const host of changed) this.emit(host);
    void this.checkNow();
  }

  /** For the HTTPS server's SNICallback: the current certificate for a name, exact match first, then its wildcard. */
  secureContextFor(servername: string): SecureContext | undefined {
    const name = normalizeHost(servername);
    const exact = this.contexts.get(name);
    if (exact) return exact;
    const wildcard = coveringWildcard(name);
    return wildcard === undefined ? undefined : this.contexts.get(wildcard);
  }

  /**
   * Clients that send no SNI are those using an IP address in the URL (RFC 6066 forbids IPs in
   * SNI). They get the certificate of the first wanted IP host, if any.
   */
  noSniCredentials(): { cert: string; key: string } | undefined {
    const ip = [...this.hosts.values()].filter((s) => isIpHost(s.host) && s.current).sort((a, b) => a.host.localeCompare(b.host))[0];
    return ip?.current ? { cert: ip.current.certPem, key: ip.current.keyPem } : undefined;
  }

  status(host: string): CertificateStatus | undefined {
    const s = this.hosts.get(normalizeHost(host));
    if (!s) return undefined;
    const now = this.clock.now();
    const issuer = this.opts.issuers[s.issuer];
    const cur = s.current;
    const status: CertificateStatus = {
      ready: cur !== undefined && issuer !== undefined && cur.issuerId === issuer.id && now < cur.notAfter,
      issuer: s.issuer,
      expiring: isExpiring(cur?.notAfter, now, s.lastError !== undefined),
    };
    if (cur) {
      status.notAfter = cur.notAfter.toISOString();
      status.renewAt = renewAt(cur).toISOString();
    }
    if (s.lastError) status.lastError = { ...s.lastError };
    if (s.nextAttemptAt !== undefined) status.nextAttemptAt = new Date(now.getTime() + Math.max(0, s.nextAttemptAt - this.clock.monotonic())).toISOString();
    return status;
  }

  /** Called with the host whenever its status may have changed. Returns an unsubscribe function. */
  onChange(listener: (host: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  metrics(): CertificateMetrics {
    const now = this.clock.now().getTime();
    const hosts = [...this.hosts.values()].map((s) => ({
      host: s.host,
      issuer: s.issuer,
      ready: this.status(s.host)?.ready ?? false,
      ...(s.current ? { secondsToExpiry: Math.round((s.current.notAfter.getTime() - now) / 1000) } : {}),
      orders: s.orders,
      failures: s.failuresTotal,
    }));
    return { hosts, orders: this.ordersTotal, failures: this.failuresTotal };
  }

  /** Resolves when no lane has work it can do right now (hosts in backoff wait on their timer). */
  async settled(): Promise<void> {
    while (this.lanes.local || this.lanes.acme) await Promise.all([this.lanes.local, this.lanes.acme]);
  }

  /** Stops the schedule and aborts orders in flight. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    await this.task.destroy();
    for (const s of this.hosts.values()) s.abort?.abort();
    await Promise.allSettled([this.lanes.local, this.lanes.acme]);
    this.listeners.clear();
  }

  private newHost(host: string, issuer: IssuerKind, current: ServedCertificate | undefined): HostState {
    const s: HostState = { host, issuer, phase: current ? 'Pending' : 'Loading', failures: 0, orders: 0, failuresTotal: 0, warnedExpiring: false };
    if (current) s.current = current;
    const blocked = this.blockedReason(host, issuer);
    if (blocked) {
      s.blocked = blocked;
      s.lastError = { reason: blocked.reason, message: blocked.message, at: this.clock.now().toISOString() };
      // A name that is not a host has no folder to load from; other blocked hosts still serve what is stored.
      if (blocked.reason === 'InvalidHostName') s.phase = 'Stalled';
    }
    return s;
  }

  private blockedReason(host: string, issuer: IssuerKind): BerthError | undefined {
    if (!isValidHost(host)) return new BerthError('stalled', 'InvalidHostName', `not a host name: ${JSON.stringify(host)}`);
    if (issuer === 'acme') {
      if (!this.opts.issuers.acme) return new BerthError('stalled', 'AcmeNotConfigured', `${host} asks for an ACME certificate but ACME is off; set --acme-email`);
      return acmeIneligibility(host);
    }
    if (!this.opts.issuers.local) return new BerthError('stalled', 'LocalCaUnavailable', `${host} asks for a local certificate but the local CA is not loaded`);
    return undefined;
  }

  private checkNow(): Promise<void> {
    return Promise.all([this.kick('local'), this.kick('acme')]).then(() => undefined);
  }

  private kick(kind: IssuerKind): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.lanes[kind] ??= this.runLane(kind)
      .catch((e: unknown) => this.log.error({ err: e, lane: kind }, 'certificate lane failed'))
      .finally(() => {
        this.lanes[kind] = undefined;
        this.scheduleWakeup();
      });
    return this.lanes[kind];
  }

  private async runLane(kind: IssuerKind): Promise<void> {
    for (let s = this.nextDue(kind); s && !this.closed; s = this.nextDue(kind)) {
      if (s.phase === 'Loading') await this.load(s);
      else await this.order(s);
    }
  }

  /** Loading first (serving what is stored comes before ordering anything), then by host name. */
  private nextDue(kind: IssuerKind): HostState | undefined {
    const now = this.clock.now();
    const mono = this.clock.monotonic();
    const candidates = [...this.hosts.values()].filter((s) => s.issuer === kind).sort((a, b) => a.host.localeCompare(b.host));
    const loading = candidates.find((s) => s.phase === 'Loading');
    if (loading) return loading;
    return candidates.find((s) => this.isDue(s, now, mono));
  }

  private isDue(s: HostState, now: Date, mono: number): boolean {
    if (s.blocked || s.phase === 'Issuing') return false;
    if (s.nextAttemptAt !== undefined && mono < s.nextAttemptAt) return false;
    return needsCertificate(s.current, this.opts.issuers[s.issuer]!.id, now);
  }

  private async load(s: HostState): Promise<void> {
    let stored: StoredCertificate | undefined;
    try {
      stored = await this.store.load(s.host);
    } catch (e) {
      this.log.warn({ host: s.host, err: e }, 'stored certificate unusable; ordering a new one');
    }
    if (this.hosts.get(s.host) !== s) return;
    if (stored) {
      try {
        s.current = { ...stored, context: createSecureContext({ cert: stored.certPem, key: stored.keyPem }) };
        this.log.debug({ host: s.host, notAfter: stored.notAfter.toISOString() }, 'loaded stored certificate');
      } catch (e) {
        this.log.warn({ host: s.host, err: e }, 'stored certificate unusable; ordering a new one');
      }
    }
    s.phase = s.blocked ? 'Stalled' : this.isDue(s, this.clock.now(), this.clock.monotonic()) ? 'Pending' : 'Ready';
    if (s.current) this.rebuildContexts();
    this.emit(s.host);
  }

  private async order(s: HostState): Promise<void> {
    const issuer = this.opts.issuers[s.issuer]!;
    if (s.issuer === 'acme' && !(await this.takeOrderBudget(s))) return;
    if (this.hosts.get(s.host) !== s) return;
    const abort = new AbortController();
    s.abort = abort;
    s.phase = 'Issuing';
    s.orders += 1;
    this.ordersTotal += 1;
    this.emit(s.host);
    const renewing = s.current !== undefined;
    let issued: IssuedCertificate;
    try {
      issued = await issuer.issue(s.host, abort.signal);
    } catch (e) {
      s.abort = undefined;
      if (this.closed || abort.signal.aborted) return;
      this.recordFailure(s, asBerthError(e, 'IssueFailed'));
      return;
    }
    s.abort = undefined;
    const cert: StoredCertificate = { ...issued, issuerId: issuer.id };
    let persistError: unknown;
    try {
      await this.store.save(s.host, cert);
    } catch (e) {
      persistError = e;
    }
    // Removed or replaced while ordering: the certificate stays on disk for a later sync, not in memory.
    if (this.hosts.get(s.host) !== s) return;
    try {
      s.current = { ...cert, context: createSecureContext({ cert: cert.certPem, key: cert.keyPem }) };
    } catch (e) {
      this.recordFailure(s, asBerthError(e, 'CertificateUnusable'));
      return;
    }
    s.failures = 0;
    s.warnedExpiring = false;
    delete s.nextAttemptAt;
    s.phase = 'Ready';
    if (persistError === undefined) delete s.lastError;
    else {
      // Served from memory all the same; the next start orders again, so say so.
      s.lastError = { reason: 'CertificateNotPersisted', message: persistError instanceof Error ? persistError.message : 'cannot write the certificate files', at: this.clock.now().toISOString() };
      this.log.error({ host: s.host, err: persistError }, 'certificate issued but not saved');
    }
    this.rebuildContexts();
    this.log.info({ host: s.host, issuer: s.issuer, notAfter: cert.notAfter.toISOString(), renewAt: renewAt(cert).toISOString() }, renewing ? 'certificate renewed' : 'certificate issued');
    this.emit(s.host);
  }

  private recordFailure(s: HostState, err: BerthError): void {
    s.failures += 1;
    s.failuresTotal += 1;
    this.failuresTotal += 1;
    s.lastError = { reason: err.reason, message: err.message, at: this.clock.now().toISOString() };
    if (err.kind === 'stalled') {
      s.blocked = err;
      s.phase = 'Stalled';
    } else {
      s.phase = 'Backoff';
      s.nextAttemptAt = this.clock.monotonic() + backoffDelayMs(s.failures, this.backoff, this.random());
    }
    const expiring = isExpiring(s.current?.notAfter, this.clock.now(), true);
    if (expiring && !s.warnedExpiring) {
      s.warnedExpiring = true;
      this.log.warn({ host: s.host, notAfter: s.current?.notAfter.toISOString(), reason: err.reason }, 'CertificateExpiring: renewal keeps failing and the certificate expires within 7 days');
    } else {
      this.log.warn({ host: s.host, reason: err.reason, err: err.message, failures: s.failures }, 'certificate order failed; retrying with backoff');
    }
    this.emit(s.host);
  }

  /**
   * Every ACME attempt counts, failed ones too (CAs limit failed validations as well). The
   * times are persisted before the order is placed, so a crash loop cannot reset the budget.
   */
  private async takeOrderBudget(s: HostState): Promise<boolean> {
    const now = this.clock.now().getTime();
    const decision = checkOrderBudget(await this.loadOrderTimes(), now, this.budget);
    if (!decision.allowed) {
      this.orderTimes = decision.recent;
      s.phase = 'Backoff';
      s.nextAttemptAt = this.clock.monotonic() + (decision.retryAt! - now);
      s.lastError = { reason: 'OrderBudgetExhausted', message: `${this.budget.limit} ACME orders in the last ${Math.round(this.budget.windowMs / 60_000)} min; waiting before ordering again`, at: new Date(now).toISOString() };
      this.emit(s.host);
      return false;
    }
    this.orderTimes = [...decision.recent, now];
    try {
      await writePrivateFile(join(this.opts.stateDir, 'certs', ORDER_LOG), `${JSON.stringify({ orders: this.orderTimes.map((t) => new Date(t).toISOString()) }, null, 2)}\n`);
    } catch (e) {
      this.log.warn({ err: e }, 'cannot persist the ACME order log; the budget holds for this run only');
    }
    return true;
  }

  private async loadOrderTimes(): Promise<number[]> {
    if (this.orderTimes) return this.orderTimes;
    try {
      const parsed = JSON.parse(await readFile(join(this.opts.stateDir, 'certs', ORDER_LOG), 'utf8')) as { orders?: unknown };
      this.orderTimes = Array.isArray(parsed.orders) ? parsed.orders.map((t) => Date.parse(String(t))).filter((t) => Number.isFinite(t)) : [];
    } catch {
      this.orderTimes = [];
    }
    return this.orderTimes;
  }

  private scheduleWakeup(): void {
    clearTimeout(this.timer);
    if (this.closed) return;
    const now = this.clock.now().getTime();
    const mono = this.clock.monotonic();
    let delay = MAX_TIMER_MS;
    for (const s of this.hosts.values()) {
      if (s.blocked || s.phase === 'Issuing') continue;
      const issuer = this.opts.issuers[s.issuer]!;
      let due: number;
      if (s.phase === 'Loading') due = 0;
      else if (s.nextAttemptAt !== undefined) due = s.nextAttemptAt - mono;
      else if (s.current && s.current.issuerId === issuer.id) due = renewAt(s.current).getTime() - now;
      else due = 0;
      delay = Math.min(delay, Math.max(0, due));
    }
    this.timer = setTimeout(() => void this.checkNow(), delay);
    this.timer.unref();
  }

  private rebuildContexts(): void {
    const next = new Map<string, SecureContext>();
    for (const s of this.hosts.values()) if (s.current) next.set(s.host, s.current.context);
    // Swapped whole: a handshake sees either the old map or the new one.
    this.contexts = next;
  }

  private emit(host: string): void {
    for (const l of this.listeners) {
      try {
        l(host);
      } catch (e) {
        this.log.error({ err: e, host }, 'certificate change listener threw');
      }
    }
  }
}
