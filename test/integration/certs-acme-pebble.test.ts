// ACME against a real server (Pebble on loopback): a certificate from Pebble's chain, served
// over HTTPS; restarts that reuse what is stored; one certificate per host; owner-only files.
import { readdir, rm, stat } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AcmeIssuer } from '../../src/certs/acme-issuer.js';
import { CertificateManager } from '../../src/certs/certificate-manager.js';
import { createHttpsServer } from '../../src/certs/https-server.js';
import { httpsGet, startChallengeServer, startPebble, type ChallengeServer, type Pebble } from '../helpers/pebble.js';

let pebble: Pebble;
let challenges: ChallengeServer;
let issuer: AcmeIssuer | undefined;
let state: string;

/** One "start" of berth's certificate side: a new issuer, manager and HTTPS listener over the same state. */
async function startBerth(): Promise<{ manager: CertificateManager; port: number; stop(): Promise<void> }> {
  issuer = new AcmeIssuer({ stateDir: state, directoryUrl: pebble.directoryUrl, caBundle: pebble.listenerCaPem, email: 'ops@example.test', pollIntervalMs: 100, orderTimeoutMs: 20_000 });
  const manager = new CertificateManager({ stateDir: state, issuers: { acme: issuer } });
  const server = createHttpsServer({ manager, requestHandler: (req, res) => res.end(`hello from ${req.headers.host}`) });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const own = issuer;
  return {
    manager,
    port: (server.address() as AddressInfo).port,
    stop: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await manager.close();
      own.close();
    },
  };
}

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  state = await mkdtemp(join(tmpdir(), 'berth-acme-'));
  challenges = await startChallengeServer((req, res) => issuer!.handleChallenge(req, res));
  pebble = await startPebble({ httpPort: challenges.port });
});

afterAll(async () => {
  await pebble?.close();
  await challenges?.close();
  await rm(state, { recursive: true, force: true });
});

describe('ACME with Pebble', () => {
  let firstSerial: string;

  it('issues a certificate from Pebble\'s chain within 30 s and serves it over HTTPS', async () => {
    const berth = await startBerth();
    try {
      const started = performance.now();
      berth.manager.sync([{ host: 'app.example.test', issuer: 'acme' }]);
      await until(() => berth.manager.status('app.example.test')?.ready === true, 30_000);
      const seconds = (performance.now() - started) / 1000;
      console.info(`ACME certificate from Pebble in ${seconds.toFixed(2)} s (new account)`);
      expect(seconds).toBeLessThan(30);
      const { root } = await pebble.chain();
      const answer = await httpsGet(berth.port, 'app.example.test', root);
      expect(answer.body).toBe('hello from app.example.test');
      expect(answer.issuer).toMatch(/^Pebble Intermediate CA/);
      expect(challenges.hits).toBeGreaterThan(0);
      firstSerial = answer.serial;
    } finally {
      await berth.stop();
    }
  });

  it('orders nothing across 10 restarts while the stored certificate is valid', async () => {
    const hitsBefore = challenges.hits;
    const { root } = await pebble.chain();
    for (let i = 0; i < 10; i++) {
      const berth = await startBerth();
      try {
        berth.manager.sync([{ host: 'app.example.test', issuer: 'acme' }]);
        await berth.manager.settled();
        expect(berth.manager.status('app.example.test')?.ready).toBe(true);
        expect(berth.manager.metrics().orders).toBe(0);
        expect((await httpsGet(berth.port, 'app.example.test', root)).serial).toBe(firstSerial);
      } finally {
        await berth.stop();
      }
    }
    expect(challenges.hits).toBe(hitsBefore); // Pebble validated nothing: no order reached it
  });

  it('gives two routes on one host one certificate', async () => {
    const berth = await startBerth();
    try {
      berth.manager.sync([{ host: 'shared.example.test', issuer: 'acme' }, { host: 'Shared.Example.Test.', issuer: 'acme' }]);
      await until(() => berth.manager.status('shared.example.test')?.ready === true, 30_000);
      await berth.manager.settled();
      expect(berth.manager.metrics()).toMatchObject({ orders: 1, hosts: [{ host: 'shared.example.test', orders: 1 }] });
    } finally {
      await berth.stop();
    }
  });

  it('reports a wildcard as WildcardNeedsDns01 instead of ordering', async () => {
    const berth = await startBerth();
    try {
      berth.manager.sync([{ host: '*.example.test', issuer: 'acme' }]);
      await berth.manager.settled();
      expect(berth.manager.status('*.example.test')).toMatchObject({ ready: false, lastError: { reason: 'WildcardNeedsDns01' } });
      expect(berth.manager.metrics().orders).toBe(0);
    } finally {
      await berth.stop();
    }
  });

  it('keeps keys, certificates and the order log owner-only', async () => {
    const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;
    const certDir = join(state, 'certs', 'app.example.test');
    expect(await mode(certDir)).toBe(0o700);
    for (const f of await readdir(certDir)) expect([f, await mode(join(certDir, f))]).toEqual([f, 0o600]);
    expect(await mode(join(state, 'certs', 'acme-orders.json'))).toBe(0o600);
    const [account] = await readdir(join(state, 'acme'));
    expect(account).toMatch(/^127\.0\.0\.1-[0-9a-f]{8}$/);
    expect(await mode(join(state, 'acme', account!))).toBe(0o700);
    expect(await mode(join(state, 'acme', account!, 'account.key'))).toBe(0o600);
  });
});
