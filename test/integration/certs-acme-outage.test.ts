// The ACME server goes away during a renewal (Pebble stopped): the current certificate keeps
// being served, retries back off up to their cap, the status says why, and the certificate is
// renewed once Pebble is back, before the old one expires.
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AcmeIssuer } from '../../src/certs/acme-issuer.js';
import { CertificateManager } from '../../src/certs/certificate-manager.js';
import { createHttpsServer } from '../../src/certs/https-server.js';
import { httpsGet, startChallengeServer, startPebble, type ChallengeServer, type Pebble } from '../helpers/pebble.js';

const VALIDITY_S = 60;
const HOST = 'app.example.test';
const BACKOFF = { baseMs: 500, maxMs: 2_000, jitter: 0.2 };
let pebble: Pebble;
let challenges: ChallengeServer;
let issuer: AcmeIssuer;
let manager: CertificateManager;
let server: ReturnType<typeof createHttpsServer>;
let state: string;

beforeAll(async () => {
  state = await mkdtemp(join(tmpdir(), 'berth-outage-'));
  challenges = await startChallengeServer((req, res) => issuer.handleChallenge(req, res));
  pebble = await startPebble({ httpPort: challenges.port, certificateValidityPeriod: VALIDITY_S });
  issuer = new AcmeIssuer({ stateDir: state, directoryUrl: pebble.directoryUrl, caBundle: pebble.listenerCaPem, pollIntervalMs: 100, orderTimeoutMs: 10_000 });
  manager = new CertificateManager({ stateDir: state, issuers: { acme: issuer }, backoff: BACKOFF, orderBudget: { limit: 50 } });
  server = createHttpsServer({ manager, requestHandler: (_req, res) => res.end('ok') });
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

async function until(cond: () => boolean | Promise<boolean>, ms: number, every = 100): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, every));
  }
}

it('keeps serving the old certificate while the CA is down, retries with capped backoff, and renews when it is back', async () => {
  const port = (server.address() as AddressInfo).port;
  manager.sync([{ host: HOST, issuer: 'acme' }]);
  await until(() => manager.status(HOST)?.ready === true, 20_000);
  const oldRoot = (await pebble.chain()).root;
  const old = await httpsGet(port, HOST, oldRoot);
  const oldNotAfter = Date.parse(manager.status(HOST)!.notAfter!);
  await pebble.stop();

  // Record each failed attempt as the status reports it, with the retry time it announces.
  const failures: { at: number; next: number }[] = [];
  await until(() => {
    const st = manager.status(HOST);
    const at = st?.lastError?.at;
    if (at && st.nextAttemptAt && failures.at(-1)?.at !== Date.parse(at)) failures.push({ at: Date.parse(at), next: Date.parse(st.nextAttemptAt) });
    return failures.length >= 5;
  }, VALIDITY_S * 1000, 20);

  expect(manager.status(HOST)).toMatchObject({ ready: true, expiring: true, lastError: { reason: 'AcmeUnreachable' } });
  expect((await httpsGet(port, HOST, oldRoot)).serial).toBe(old.serial);
  // The announced delays (read within a poll of the failure, so up to ~100 ms short under load):
  // 0.5 s, 1 s, 2 s, then held at the 2 s cap (4 s and 8 s uncapped), jitter +-20 %.
  const delays = failures.map((f) => f.next - f.at);
  expect(Math.max(...delays)).toBeLessThanOrEqual(BACKOFF.maxMs);
  expect(Math.min(...delays)).toBeGreaterThanOrEqual(BACKOFF.baseMs * (1 - BACKOFF.jitter) - 100);
  expect(delays[3]!).toBeGreaterThanOrEqual(BACKOFF.maxMs * (1 - BACKOFF.jitter) - 100);
  expect(delays[4]!).toBeGreaterThanOrEqual(BACKOFF.maxMs * (1 - BACKOFF.jitter) - 100);
  // Attempts are spaced by at least their delay: no retry storm.
  for (let i = 1; i < failures.length; i++) expect(failures[i]!.at - failures[i - 1]!.at).toBeGreaterThanOrEqual(delays[i - 1]! - 100);

  await pebble.start();
  await until(() => manager.status(HOST)?.lastError === undefined, 15_000);
  const { root } = await pebble.chain(); // a restarted Pebble has a new root
  const renewed = await httpsGet(port, HOST, root);
  expect(renewed.serial).not.toBe(old.serial);
  expect(Date.now()).toBeLessThan(oldNotAfter);
  expect(manager.status(HOST)).toMatchObject({ ready: true, expiring: false });
}, 90_000);
