// The manager against in-memory issuers (backed by a real local CA) and an injectable wall
// clock: the renewal, backoff and budget rules, fast. The same behaviours against a real ACME
// server are in test/integration/certs-acme-*.test.ts.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BerthError } from '../../controllers/ports/errors.js';
import type { CertIssuer, IssuedCertificate, IssuerKind } from '../../src/certs/cert-issuer.js';
import { CertificateManager, type CertificateManagerOptions } from '../../src/certs/certificate-manager.js';
import { LocalCa } from '../../src/certs/local-ca.js';

const DAY = 86_400_000;

/** Wall clock that tests can move; the monotonic clock stays real. */
function movableClock(): { offset: number; now(): Date; monotonic(): number } {
  const c = { offset: 0, now: () => new Date(Date.now() + c.offset), monotonic: () => performance.now() };
  return c;
}

class FakeIssuer implements CertIssuer {
  readonly calls: { host: string; at: number }[] = [];
  failWith: BerthError | undefined;
  /** While set, issue() waits until it resolves or the order is aborted. */
  gate: Promise<void> | undefined;
  aborted = 0;
  constructor(readonly kind: IssuerKind, readonly id: string, private readonly ca: LocalCa) {}

  async issue(host: string, signal: AbortSignal): Promise<IssuedCertificate> {
    this.calls.push({ host, at: performance.now() });
    if (this.gate) {
      await Promise.race([this.gate, new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }))]).catch((e: unknown) => {
        this.aborted += 1;
        throw e;
      });
    }
    if (this.failWith) throw this.failWith;
    return this.ca.issue(host, signal);
  }
  count(host: string): number {
    return this.calls.filter((c) => c.host === host).length;
  }
}

async function until(cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let state: string;
let clock: ReturnType<typeof movableClock>;
let ca: LocalCa;
let local: FakeIssuer;
let acme: FakeIssuer;
const managers: CertificateManager[] = [];

function manager(opts: Partial<CertificateManagerOptions> = {}): CertificateManager {
  // A check every second stands in for the 10-minute production schedule after a clock jump.
  const m = new CertificateManager({ stateDir: state, issuers: { local, acme }, clock, checkSchedule: '* * * * * *', ...opts });
  managers.push(m);
  return m;
}

beforeEach(async () => {
  state = await mkdtemp(join(tmpdir(), 'berth-cm-'));
  clock = movableClock();
  ca = await LocalCa.loadOrCreate(state, { clock });
  local = new FakeIssuer('local', ca.id, ca);
  acme = new FakeIssuer('acme', 'acme:https://ca.test/dir', ca);
});
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()));
  await rm(state, { recursive: true, force: true });
});

describe('CertificateManager', () => {
  it('gives two routes on one host one certificate', async () => {
    const m = manager();
    const changes: string[] = [];
    m.onChange((h) => changes.push(h));
    m.sync([{ host: 'app.lan', issuer: 'local' }, { host: 'APP.lan.', issuer: 'local' }]);
    await m.settled();
    expect(local.calls.map((c) => c.host)).toEqual(['app.lan']);
    expect(m.metrics().hosts).toHaveLength(1);
    expect(m.secureContextFor('app.lan')).toBeDefined();
    expect(m.status('app.lan')).toMatchObject({ ready: true, issuer: 'local', expiring: false });
    expect(changes).toContain('app.lan');
  });

  it('orders nothing on a restart while the stored certificate is valid', async () => {
    const first = manager();
    first.sync([{ host: 'app.lan', issuer: 'local' }, { host: 'app.example.com', issuer: 'acme' }]);
    await first.settled();
    const notAfter = first.status('app.example.com')?.notAfter;
    await first.close();
    for (let i = 0; i < 10; i++) {
      const again = manager();
      again.sync([{ host: 'app.lan', issuer: 'local' }, { host: 'app.example.com', issuer: 'acme' }]);
      await again.settled();
      expect(again.status('app.example.com')).toMatchObject({ ready: true, notAfter });
      expect(again.metrics().orders).toBe(0);
      await again.close();
    }
    expect(local.calls).toHaveLength(1);
    expect(acme.calls).toHaveLength(1);
  });

  it('renews once in the renewal window and serves the new certificate from the next lookup', async () => {
    const m = manager();
    m.sync([{ host: 'app.lan', issuer: 'local' }]);
    await m.settled();
    const before = m.secureContextFor('app.lan');
    const renewAt = Date.parse(m.status('app.lan')!.renewAt!);
    clock.offset = renewAt - Date.now() + 1_000;
    await until(() => local.calls.length === 2);
    await m.settled();
    expect(m.secureContextFor('app.lan')).not.toBe(before);
    expect(Date.parse(m.status('app.lan')!.renewAt!)).toBeGreaterThan(clock.now().getTime() + 50 * DAY);
    await sleep(2_200); // two more scheduled checks
    expect(local.calls).toHaveLength(2);
  });

  it('stops renewing a host no route uses any more, and forgets it', async () => {
    const m = manager();
    m.sync([{ host: 'a.lan', issuer: 'local' }, { host: 'b.lan', issuer: 'local' }]);
    await m.settled();
    m.sync([{ host: 'a.lan', issuer: 'local' }]);
    expect(m.status('b.lan')).toBeUndefined();
    expect(m.secureContextFor('b.lan')).toBeUndefined();
    clock.offset = 61 * DAY;
    await until(() => local.count('a.lan') === 2);
    await sleep(1_200);
    expect(local.count('b.lan')).toBe(1);
  });

  it('aborts an order in flight for a host that is removed', async () => {
    acme.gate = new Promise(() => undefined);
    const m = manager();
    m.sync([{ host: 'app.example.com', issuer: 'acme' }]);
    await until(() => acme.calls.length === 1);
    m.sync([]);
    await until(() => acme.aborted === 1);
    await m.settled();
    expect(m.status('app.example.com')).toBeUndefined();
  });

  it('reports a wildcard over ACME as WildcardNeedsDns01 without ordering', async () => {
    const m = manager();
    m.sync([{ host: '*.example.com', issuer: 'acme' }]);
    await m.settled();
    expect(acme.calls).toHaveLength(0);
    expect(m.status('*.example.com')).toMatchObject({ ready: false, lastError: { reason: 'WildcardNeedsDns01' } });
  });

  it('reports ACME asked for while ACME is off as AcmeNotConfigured', async () => {
    const m = manager({ issuers: { local } });
    m.sync([{ host: 'app.example.com', issuer: 'acme' }]);
    await m.settled();
    expect(m.status('app.example.com')).toMatchObject({ ready: false, lastError: { reason: 'AcmeNotConfigured' } });
  });

  it('serves a wildcard certificate for names under it', async () => {
    const m = manager();
    m.sync([{ host: '*.apps.lan', issuer: 'local' }]);
    await m.settled();
    expect(m.secureContextFor('blog.apps.lan')).toBe(m.secureContextFor('*.apps.lan'));
    expect(m.secureContextFor('a.blog.apps.lan')).toBeUndefined();
  });

  it('keeps serving the current certificate while renewals fail, backs off with a cap, and warns near expiry', async () => {
    const m = manager({ backoff: { baseMs: 100, maxMs: 400, jitter: 0.2 } });
    m.sync([{ host: 'app.lan', issuer: 'local' }]);
    await m.settled();
    const served = m.secureContextFor('app.lan');
    local.failWith = new BerthError('transient', 'AcmeUnreachable', 'CA down');
    clock.offset = 85 * DAY; // 5 days before expiry
    await until(() => local.calls.length >= 6);
    const gaps = local.calls.slice(2).map((c, i) => c.at - local.calls[i + 1]!.at);
    expect(Math.max(...gaps)).toBeLessThan(400 + 250); // the cap, plus scheduling slack
    expect(m.secureContextFor('app.lan')).toBe(served);
    expect(m.status('app.lan')).toMatchObject({ ready: true, expiring: true, lastError: { reason: 'AcmeUnreachable' } });
    expect(m.status('app.lan')?.nextAttemptAt).toBeDefined();
    local.failWith = undefined;
    await until(() => m.status('app.lan')?.lastError === undefined);
    expect(m.secureContextFor('app.lan')).not.toBe(served);
    expect(m.status('app.lan')).toMatchObject({ ready: true, expiring: false });
    expect(m.metrics().failures).toBeGreaterThanOrEqual(5);
  });

  it('stops a failing ACME loop at the order budget, and the budget survives a restart', async () => {
    acme.failWith = new BerthError('transient', 'AcmeOrderFailed', 'nope');
    const opts = { backoff: { baseMs: 10, maxMs: 20, jitter: 0 }, orderBudget: { limit: 3, windowMs: 3_600_000 } };
    const m = manager(opts);
    m.sync([{ host: 'app.example.com', issuer: 'acme' }]);
    await until(() => m.status('app.example.com')?.lastError?.reason === 'OrderBudgetExhausted');
    await sleep(300);
    expect(acme.calls).toHaveLength(3);
    const retryAt = Date.parse(m.status('app.example.com')!.nextAttemptAt!);
    expect(retryAt - clock.now().getTime()).toBeGreaterThan(59 * 60_000);
    await m.close();
    const again = manager(opts);
    again.sync([{ host: 'app.example.com', issuer: 'acme' }]);
    await until(() => again.status('app.example.com')?.lastError?.reason === 'OrderBudgetExhausted');
    expect(acme.calls).toHaveLength(3);
  });

  it('keeps serving the old certificate while a host moves to another issuer', async () => {
    const m = manager();
    m.sync([{ host: 'app.example.com', issuer: 'local' }]);
    await m.settled();
    const old = m.secureContextFor('app.example.com');
    let release!: () => void;
    acme.gate = new Promise((r) => (release = r));
    m.sync([{ host: 'app.example.com', issuer: 'acme' }]);
    await until(() => acme.calls.length === 1);
    expect(m.secureContextFor('app.example.com')).toBe(old);
    expect(m.status('app.example.com')).toMatchObject({ ready: false, issuer: 'acme' });
    release();
    await until(() => m.status('app.example.com')?.ready === true);
    expect(m.secureContextFor('app.example.com')).not.toBe(old);
  });

  it('stops the schedule and aborts orders in flight on close', async () => {
    acme.gate = new Promise(() => undefined);
    const m = manager();
    m.sync([{ host: 'app.example.com', issuer: 'acme' }]);
    await until(() => acme.calls.length === 1);
    await m.close();
    expect(acme.aborted).toBe(1);
    clock.offset = 100 * DAY;
    await sleep(1_200);
    expect(acme.calls).toHaveLength(1);
  });
});
