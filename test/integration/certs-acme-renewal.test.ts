// Real renewals against Pebble issuing 30-second certificates: each certificate is renewed
// exactly once in its renewal window, the new one is served from the next handshake with no
// restart (an open connection keeps working), and a host removed from the wanted set is left alone.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AcmeIssuer } from '../../src/certs/acme-issuer.js';
import { CertificateManager } from '../../src/certs/certificate-manager.js';
import { createHttpsServer } from '../../src/certs/https-server.js';
import { httpsGet, startChallengeServer, startPebble, type ChallengeServer, type Pebble } from '../helpers/pebble.js';

const VALIDITY_S = 30;
let pebble: Pebble;
let challenges: ChallengeServer;
let issuer: AcmeIssuer;
let manager: CertificateManager;
let server: ReturnType<typeof createHttpsServer>;
let state: string;

beforeAll(async () => {
  state = await mkdtemp(join(tmpdir(), 'berth-renew-'));
  challenges = await startChallengeServer((req, res) => issuer.handleChallenge(req, res));
  pebble = await startPebble({ httpPort: challenges.port, certificateValidityPeriod: VALIDITY_S });
  issuer = new AcmeIssuer({ stateDir: state, directoryUrl: pebble.directoryUrl, caBundle: pebble.listenerCaPem, pollIntervalMs: 100, orderTimeoutMs: 10_000 });
  manager = new CertificateManager({ stateDir: state, issuers: { acme: issuer } });
  server = createHttpsServer({ manager, requestHandler: (req, res) => res.end(`hello from ${req.headers.host}`) });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await manager?.close();
  issuer?.close();
  await pebble?.close();
  await challenges?.close();
  await rm(state, { recursive: true, force: true });
});

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

it('renews each certificate exactly once in its window and serves the new one without a restart', async () => {
  const hosts = ['a.example.test', 'b.example.test'];
  manager.sync([...hosts, 'gone.example.test'].map((host) => ({ host, issuer: 'acme' as const })));
  await until(() => [...hosts, 'gone.example.test'].every((h) => manager.status(h)?.ready), 20_000);
  const goneCert = await readFile(join(state, 'certs', 'gone.example.test', 'cert.pem'), 'utf8');
  manager.sync(hosts.map((host) => ({ host, issuer: 'acme' as const })));

  const port = (server.address() as AddressInfo).port;
  const { root } = await pebble.chain();
  const first = new Map<string, { serial: string; notAfter: string }>();
  for (const h of hosts) first.set(h, { serial: (await httpsGet(port, h, root)).serial, notAfter: manager.status(h)!.notAfter! });
  // One keep-alive connection, used every 2 s (so no idle timeout closes it), across the renewal.
  const open = tls.connect({ host: '127.0.0.1', port, servername: 'a.example.test', ca: root });
  await new Promise((r) => open.once('secureConnect', r));
  const ask = (): Promise<string> => new Promise((resolve) => {
    open.once('data', (d: Buffer) => resolve(d.toString()));
    open.write('GET / HTTP/1.1\r\nHost: a.example.test\r\n\r\n');
  });
  const replies: string[] = [];

  // Renewal starts with a third of the lifetime left (~20 s in); watch until the first certificates have expired.
  const lastExpiry = Math.max(...[...first.values()].map((f) => Date.parse(f.notAfter)));
  while (Date.now() <= lastExpiry + 1_000) {
    replies.push(await ask());
    await new Promise((r) => setTimeout(r, 2_000));
  }

  for (const h of hosts) {
    expect(manager.metrics().hosts.find((m) => m.host === h)).toMatchObject({ orders: 2, failures: 0 });
    const now = await httpsGet(port, h, root);
    expect(now.serial).not.toBe(first.get(h)!.serial);
    expect(now.body).toBe(`hello from ${h}`);
    expect(Date.parse(manager.status(h)!.notAfter!)).toBeGreaterThan(Date.parse(first.get(h)!.notAfter));
  }
  // The connection opened before the renewal answered throughout, and still does.
  replies.push(await ask());
  expect(replies.length).toBeGreaterThan(10);
  for (const r of replies) expect(r).toContain('hello from a.example.test');
  open.destroy();
  // The removed host was neither renewed nor served.
  expect(await readFile(join(state, 'certs', 'gone.example.test', 'cert.pem'), 'utf8')).toBe(goneCert);
  expect(manager.status('gone.example.test')).toBeUndefined();
  expect(manager.metrics().orders).toBe(5);
}, 90_000);
