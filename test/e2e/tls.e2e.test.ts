// Issue 6 end to end: HTTPS through the built `berth run` in front of real containers — the
// local CA for LAN names, ACME from a real Pebble (its HTTP-01 validations sent to berth's own
// HTTP listener), renewal without a restart, an ACME outage, route deletion and shared hosts.
//
// Every test runs its own berth (own instance label, folders, ports) and, for ACME, its own
// Pebble, so the tests run side by side: the file takes about as long as its slowest test (the
// outage, ~2 min, bounded by the certificate manager's default 1 min retry backoff). Pebble
// issues 60 s certificates here, so the renewal window (the last third) opens 40 s after issue.
import { describe, it, afterAll, type ExpectStatic } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { execFile } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { writeAppManifest, BerthProcess, berthCli, makeDirs, readYaml, removeDirs, sleep, waitFor, type BerthDirs } from '../helpers/berth-process.js';
import { IMAGES, cleanupInstance, testInstance } from '../helpers/docker.js';
import { NODE_APP_PORT, nodeAppImage } from '../helpers/node-image.mjs';
import { freePorts, startPebble, type Pebble } from '../helpers/pebble.js';
import { expectValidStatusFile } from '../helpers/status-schema.js';
import type { AppStatusFile, Condition } from '../../src/api/types.generated.js';

type Expect = ExpectStatic;
const run = promisify(execFile);

/** Pebble's certificate lifetime in these tests: renewal opens after 40 s, expiry after 60 s. */
const VALIDITY_S = 60;

interface Env {
  instance: string;
  dirs: BerthDirs;
  httpPort: number;
  httpsPort: number;
  args: string[];
  berth: BerthProcess | undefined;
  pebble: Pebble | undefined;
}

const envs: Env[] = [];

afterAll(async () => {
  await Promise.all(
    envs.map(async (env) => {
      await env.berth?.stop();
      await env.pebble?.close();
      await cleanupInstance(env.instance);
      await removeDirs(env.dirs);
    }),
  );
});

/**
 * A berth of its own on fixed loopback ports (so restarts keep them, and Pebble can be told the
 * HTTP port before berth starts), optionally with a Pebble whose HTTP-01 validations go to it.
 */
async function startEnv(prefix: string, opts: { pebble?: boolean } = {}): Promise<Env> {
  const [httpPort, httpsPort] = (await freePorts(2)) as [number, number];
  const env: Env = { instance: testInstance(prefix), dirs: await makeDirs(`berth-${prefix}-`), httpPort, httpsPort, args: [], berth: undefined, pebble: undefined };
  envs.push(env);
  if (opts.pebble) {
    env.pebble = await startPebble({ httpPort, certificateValidityPeriod: VALIDITY_S });
    const bundle = join(env.dirs.root, 'pebble-listener-ca.pem');
    await writeFile(bundle, env.pebble.listenerCaPem);
    env.args = ['--acme-email', 'ops@example.test', '--acme-directory', env.pebble.directoryUrl, '--acme-ca-bundle', bundle];
  }
  await startBerth(env);
  return env;
}

async function startBerth(env: Env): Promise<BerthProcess> {
  env.berth = await BerthProcess.start(env.dirs, { instance: env.instance, http: `127.0.0.1:${env.httpPort}`, https: `127.0.0.1:${env.httpsPort}`, args: env.args });
  return env.berth;
}

const writeApp = (env: Env, name: string, spec: string) => writeAppManifest(env.dirs.manifests, name, spec);

const statusOf = (env: Env, app: string) => readYaml<AppStatusFile>(join(env.dirs.status, 'apps', `${app}.yaml`));
const condition = (s: AppStatusFile | undefined, type: string): Condition | undefined => s?.status.conditions.find((c) => c.type === type);

/** The app is Ready and its certificate too (status file), and its HTTPS listener is in operator.yaml. */
async function waitCertified(env: Env, app: string, timeoutMs: number): Promise<AppStatusFile> {
  return waitFor(`${app} Ready with CertificateReady`, async () => {
    const s = await statusOf(env, app);
    const ok = s?.status.phase === 'Ready' && condition(s, 'CertificateReady')?.status === 'True' && (await env.berth!.listeners()).https !== undefined;
    return ok ? s : undefined;
  }, timeoutMs, 50);
}

interface TlsAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The leaf the server presented, and the rest of the chain as the client verified it. */
  leaf: X509Certificate;
  chain: X509Certificate[];
  /** The serial number (hex) of the leaf. */
  serial: string;
  /** The request went over a kept-alive connection. */
  reused: boolean;
}

/** One request on a new TLS connection to 127.0.0.1:port with SNI `host`, trusting only `ca`. */
function tlsGet(port: number, host: string, ca: string | string[], path = '/', agent: https.Agent | false = false): Promise<TlsAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, servername: host, path, headers: { host }, ca, agent, timeout: 10_000 }, (res) => {
      const peer = (res.socket as TLSSocket).getPeerCertificate(true);
      const chain: X509Certificate[] = [];
      for (let c = peer.issuerCertificate; c && c.raw && chain.length < 5; c = c.issuerCertificate) {
        chain.push(new X509Certificate(c.raw));
        if (c.issuerCertificate === c) break;
      }
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, leaf: new X509Certificate(peer.raw), chain, serial: peer.serialNumber, reused: req.reusedSocket }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Handshake only, without verification (a test looking at which certificate is served, whatever signed it). */
function handshakeSerial(port: number, host: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = https.get({ host: '127.0.0.1', port, servername: host, headers: { host }, agent: false, rejectUnauthorized: false, timeout: 5_000 }, (res) => {
      resolve((res.socket as TLSSocket).getPeerCertificate().serialNumber);
      res.resume();
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(undefined));
  });
}

/** A plain HTTP request through berth's HTTP listener with the given Host. */
function httpGet(port: number, host: string, path = '/'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers: { host }, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** berth_certificate_orders_total / _failures_total from the admin /metrics (issuance attempts of this process). */
async function certMetrics(env: Env): Promise<{ orders: number; failures: number }> {
  const text = await (await fetch(`${env.berth!.adminUrl}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { orders: value('berth_certificate_orders_total'), failures: value('berth_certificate_failures_total') };
}

/** ACME orders berth recorded for its budget (persisted across restarts). */
async function orderLog(env: Env): Promise<string[]> {
  const parsed = await readFile(join(env.dirs.state, 'certs', 'acme-orders.json'), 'utf8').then((t) => JSON.parse(t) as { orders: string[] }).catch(() => ({ orders: [] }));
  return parsed.orders;
}

/** A dns.lookup that resolves every name to 127.0.0.1 (curl's --resolve, for Node clients). */
const resolveToLoopback: LookupFunction = (_host, options, callback) => {
  if (options.all) (callback as (err: null, addresses: LookupAddress[]) => void)(null, [{ address: '127.0.0.1', family: 4 }]);
  else callback(null, '127.0.0.1', 4);
};

function expectSignedBy(expect: Expect, leaf: X509Certificate, issuer: X509Certificate): void {
  expect(leaf.checkIssued(issuer)).toBe(true);
  expect(leaf.verify(issuer.publicKey)).toBe(true);
}

/** Log lines of this berth (pino JSON) whose msg is `msg`, optionally for one host. */
function logLines(env: Env, msg: string, host?: string): Record<string, unknown>[] {
  return env.berth!.logs().split('\n').filter((l) => l.startsWith('{')).map((l) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      return {};
    }
  }).filter((o) => o.msg === msg && (host === undefined || o.host === host));
}

describe.concurrent('HTTPS through berth run', () => {
  it('serves a LAN name with the local CA: trusted via `berth ca export`, SANs, curl, 308 redirect, websocket', async ({ expect }) => {
    const env = await startEnv('tlsl');
    const image = await nodeAppImage();
    await writeApp(env, 'web', `image: ${image}\nport: ${NODE_APP_PORT}\nenv: {APP_NAME: web}\nroutes: [{host: app.lan}]\ntls: auto`);
    // tls: acme without --acme-email can never get a certificate: that host must keep plain HTTP.
    await writeApp(env, 'pub', `image: ${IMAGES.httpdV1}\nroutes: [{host: pub.example.test}]\ntls: acme`);
    const s = await waitCertified(env, 'web', 30_000);
    expectValidStatusFile(s);
    expect(s.status.certificate).toMatchObject({ issuer: 'local', hosts: ['app.lan'] });
    expect(Date.parse(s.status.certificate!.renewAt!)).toBeLessThan(Date.parse(s.status.certificate!.notAfter!));
    expect(s.status.url).toBe(`https://app.lan:${env.httpsPort}/`);
    expect((await env.berth!.listeners()).https).toBe(`127.0.0.1:${env.httpsPort}`);

    const ca = await berthCli(['ca', 'export', '--state', env.dirs.state]);
    expect(ca.code).toBe(0);
    const root = new X509Certificate(ca.stdout);
    expect(root.ca).toBe(true);
    const caFile = join(env.dirs.root, 'berth-root.pem');
    await writeFile(caFile, ca.stdout);

    // Only the exported root is trusted.
    const r = await tlsGet(env.httpsPort, 'app.lan', ca.stdout);
    expect(r.status).toBe(200);
    expect(r.body).toBe('web v1 /\n');
    expect(r.leaf.subjectAltName?.split(', ')).toContain('DNS:app.lan');
    expect(r.leaf.checkHost('app.lan')).toBe('app.lan');
    expectSignedBy(expect, r.leaf, root);
    await expect(tlsGet(env.httpsPort, 'app.lan', [])).rejects.toThrow(/self-signed|unable to (get|verify)/i);
    // A name berth has no certificate for fails the handshake rather than getting a wrong one.
    await expect(handshakeSerial(env.httpsPort, 'other.lan')).resolves.toBeUndefined();

    // The user's way.
    const curl = await run('curl', ['-sS', '--max-time', '10', '--cacert', caFile, '--resolve', `app.lan:${env.httpsPort}:127.0.0.1`, `https://app.lan:${env.httpsPort}/`]);
    expect(curl.stdout).toBe('web v1 /\n');

    // Plain HTTP: redirected once the certificate is ready; ACME challenges and /_berth/ never.
    const redirect = await httpGet(env.httpPort, 'app.lan', '/some/path?q=1');
    expect(redirect.status).toBe(308);
    expect(redirect.headers.location).toBe(`https://app.lan:${env.httpsPort}/some/path?q=1`);
    // With ACME off nothing in berth answers the challenge prefix: it goes to the app, never redirected.
    const challenge = await httpGet(env.httpPort, 'app.lan', '/.well-known/acme-challenge/some-token');
    expect(challenge.status, 'an ACME challenge path on a TLS host over HTTP (ACME off)').not.toBe(308);
    const healthz = await httpGet(env.httpPort, 'app.lan', '/_berth/healthz');
    expect(healthz).toMatchObject({ status: 200, body: 'ok\n' });
    const pub = await waitFor('pub Ready', async () => ((await statusOf(env, 'pub'))?.status.phase === 'Ready' ? statusOf(env, 'pub') : undefined), 20_000);
    expect(condition(pub, 'CertificateReady')).toMatchObject({ status: 'False', reason: 'AcmeNotConfigured' });
    expect(await httpGet(env.httpPort, 'pub.example.test')).toMatchObject({ status: 200, body: 'hello v1\n' });
    expect(pub.status.url).toBe(`http://pub.example.test:${env.httpPort}/`);

    // A websocket through TLS to the app's echo endpoint.
    const ws = new WebSocket(`wss://app.lan:${env.httpsPort}/ws`, { ca: ca.stdout, lookup: resolveToLoopback });
    const echoed = await new Promise<string>((resolve, reject) => {
      ws.once('open', () => ws.send('ping through tls'));
      ws.once('message', (data: Buffer) => resolve(data.toString()));
      ws.once('error', reject);
    });
    ws.close();
    expect(echoed).toBe('ping through tls');
  }, 90_000);

  it('redirects to the HTTPS port berth actually bound (--https 127.0.0.1:0)', async ({ expect }) => {
    const env: Env = { instance: testInstance('tlsp'), dirs: await makeDirs('berth-tlsp-'), httpPort: 0, httpsPort: 0, args: [], berth: undefined, pebble: undefined };
    envs.push(env);
    env.berth = await BerthProcess.start(env.dirs, { instance: env.instance });
    await writeApp(env, 'web', `image: ${IMAGES.httpdV1}\nroutes: [{host: app.lan}]`);
    const s = await waitCertified(env, 'web', 30_000);
    const listeners = await env.berth.listeners();
    const httpsPort = Number(listeners.https!.split(':').pop());
    expect(s.status.url).toBe(`https://app.lan:${httpsPort}/`);
    const redirect = await httpGet(Number(listeners.http!.split(':').pop()), 'app.lan', '/x');
    expect(redirect.status).toBe(308);
    // --https 127.0.0.1:0 picks a port: redirects must name the one actually bound.
    expect(redirect.headers.location).toBe(`https://app.lan:${httpsPort}/x`);
  }, 60_000);
});

describe.concurrent('ACME from Pebble through berth run', () => {
  it('issues from Pebble\'s chain within 30 s, serves it over HTTPS, and 10 restarts order nothing new', async ({ expect }) => {
    const env = await startEnv('tlsa', { pebble: true });
    const pebble = env.pebble!;
    const chain = await pebble.chain();
    const t0 = Date.now();
    await writeApp(env, 'web', `image: ${IMAGES.httpdV1}\nroutes: [{host: app.example.test}]\ntls: auto`);
    await waitFor('a certificate from Pebble served', () => tlsGet(env.httpsPort, 'app.example.test', chain.root).catch(() => undefined), 30_000, 50);
    const servedMs = Date.now() - t0;
    const s = await waitCertified(env, 'web', 30_000);
    const statusMs = Date.now() - t0;
    console.log(`ACME via berth run: manifest written -> Pebble certificate served in ${servedMs} ms, status Ready + CertificateReady in ${statusMs} ms`);
    expect(statusMs).toBeLessThan(30_000);
    expectValidStatusFile(s);
    expect(s.status.certificate).toMatchObject({ issuer: 'acme', hosts: ['app.example.test'] });
    expect(s.status.url).toBe(`https://app.example.test:${env.httpsPort}/`);

    const root = new X509Certificate(chain.root);
    const intermediate = new X509Certificate(chain.intermediate);
    const r = await tlsGet(env.httpsPort, 'app.example.test', chain.root);
    expect(r).toMatchObject({ status: 200, body: 'hello v1\n' });
    expect(r.leaf.subjectAltName).toBe('DNS:app.example.test');
    expectSignedBy(expect, r.leaf, intermediate);
    expectSignedBy(expect, intermediate, root);
    expect(r.chain.map((c) => c.subject)).toEqual([intermediate.subject, root.subject]);
    expect(new Date(r.leaf.validTo).toISOString()).toBe(s.status.certificate!.notAfter);

    // HTTP redirects, but the challenge path stays on HTTP (answered by berth: no such token now).
    expect((await httpGet(env.httpPort, 'app.example.test')).status).toBe(308);
    const challenge = await httpGet(env.httpPort, 'app.example.test', '/.well-known/acme-challenge/unknown');
    expect(challenge).toMatchObject({ status: 404, body: 'no such challenge\n' });

    expect(pebble.orders).toBe(1);
    expect(await orderLog(env)).toHaveLength(1);
    const firstRun = await certMetrics(env);
    expect(firstRun).toEqual({ orders: 1, failures: 0 });

    // 10 restarts: the stored certificate is served again, nothing is ordered anywhere.
    const ordersPerRun: number[] = [];
    for (let i = 0; i < 10; i++) {
      await env.berth!.stop();
      const b = await startBerth(env);
      await waitFor(`restart ${i + 1}: the stored certificate served`, async () => (await handshakeSerial(env.httpsPort, 'app.example.test')) === r.serial, 15_000, 50);
      const again = await tlsGet(env.httpsPort, 'app.example.test', chain.root);
      expect(again).toMatchObject({ status: 200, body: 'hello v1\n', serial: r.serial });
      ordersPerRun.push((await certMetrics(env)).orders);
      expect(b.alive).toBe(true);
    }
    expect(ordersPerRun).toEqual(Array(10).fill(0));
    expect(pebble.orders).toBe(1);
    expect(pebble.issued).toBe(1);
    expect(await orderLog(env)).toHaveLength(1);
  }, 120_000);

  it('renews exactly once in the renewal window and serves the new certificate without a restart', async ({ expect }) => {
    const env = await startEnv('tlsr', { pebble: true });
    const pebble = env.pebble!;
    const host = 'renew.example.test';
    await writeApp(env, 'web', `image: ${IMAGES.httpdV1}\nroutes: [{host: ${host}}]\ntls: acme`);
    const s = await waitCertified(env, 'web', 30_000);
    const pid = env.berth!.proc.pid;
    const root = (await pebble.chain()).root;
    const first = await tlsGet(env.httpsPort, host, root);
    const renewAt = Date.parse(s.status.certificate!.renewAt!);
    const notAfter = Date.parse(s.status.certificate!.notAfter!);
    expect(renewAt - Date.parse(first.leaf.validFrom)).toBeGreaterThan(35_000);

    // A keep-alive client that keeps one connection busy across the swap: it must never break.
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    const keepAliveAnswers: TlsAnswer[] = [];
    let stop = false;
    const keepAlive = (async () => {
      while (!stop) {
        keepAliveAnswers.push(await tlsGet(env.httpsPort, host, root, '/', agent));
        await sleep(2000);
      }
    })();

    // New handshakes: watch the served serial until the first certificate's window has closed.
    const served: { at: number; serial: string }[] = [];
    while (Date.now() < notAfter - 1000) {
      const serial = await handshakeSerial(env.httpsPort, host);
      if (serial && serial !== served.at(-1)?.serial) served.push({ at: Date.now(), serial });
      await sleep(250);
    }
    stop = true;
    await keepAlive;
    agent.destroy();

    expect(served.map((x) => x.serial)).toEqual([first.serial, expect.any(String)]);
    const renewedAt = served[1]!.at;
    console.log(`renewal served ${renewedAt - renewAt} ms after renewAt (validity ${VALIDITY_S} s)`);
    expect(renewedAt).toBeGreaterThanOrEqual(renewAt);
    expect(renewedAt - renewAt).toBeLessThan(10_000);
    // The new one verifies against Pebble's chain, with the same berth process.
    const renewed = await tlsGet(env.httpsPort, host, root);
    expect(renewed).toMatchObject({ status: 200, body: 'hello v1\n', serial: served[1]!.serial });
    expect(env.berth!.proc.pid).toBe(pid);
    expect(env.berth!.alive).toBe(true);
    expect(pebble.orders).toBe(2);
    expect(pebble.issued).toBe(2);
    expect(await certMetrics(env)).toEqual({ orders: 2, failures: 0 });
    expect(logLines(env, 'certificate renewed', host)).toHaveLength(1);
    // The keep-alive connection carried on across the swap, on its original certificate.
    expect(keepAliveAnswers.length).toBeGreaterThan(5);
    expect(keepAliveAnswers.every((a) => a.status === 200 && a.serial === first.serial)).toBe(true);
    expect(keepAliveAnswers.slice(1).every((a) => a.reused)).toBe(true);
    const after = await waitFor('status shows the renewed certificate', async () => {
      const st = await statusOf(env, 'web');
      return st && Date.parse(st.status.certificate?.notAfter ?? '') > notAfter ? st : undefined;
    });
    expect(condition(after, 'CertificateReady')?.status).toBe('True');
    expect(after.status.certificate!.notAfter).toBe(new Date(renewed.leaf.validTo).toISOString());
  }, 120_000);

  it('keeps serving through an ACME outage at renewal, retries with backoff without hammering, renews once Pebble is back', async ({ expect }) => {
    const env = await startEnv('tlso', { pebble: true });
    const pebble = env.pebble!;
    const host = 'outage.example.test';
    await writeApp(env, 'web', `image: ${IMAGES.httpdV1}\nroutes: [{host: ${host}}]\ntls: auto`);
    const s = await waitCertified(env, 'web', 30_000);
    const pid = env.berth!.proc.pid;
    const first = await tlsGet(env.httpsPort, host, (await pebble.chain()).root);
    const renewAt = Date.parse(s.status.certificate!.renewAt!);
    await pebble.stop();

    // The renewal fails at renewAt: reported, and the current certificate is still served.
    const failing = await waitFor('the failed renewal in the status', async () => {
      const st = await statusOf(env, 'web');
      return st?.status.certificate?.lastError ? st : undefined;
    }, renewAt - Date.now() + 15_000, 100);
    const failedAt = Date.now();
    expect(failedAt).toBeGreaterThanOrEqual(renewAt);
    expect(failing.status.certificate?.lastError).toMatchObject({ reason: 'AcmeUnreachable', message: expect.stringContaining('ECONNREFUSED') });
    expect(condition(failing, 'CertificateExpiring')).toMatchObject({ status: 'True', reason: 'RenewalFailing', message: expect.stringContaining(host) });
    // A valid certificate is still served: ready, with the failing renewal named.
    expect(condition(failing, 'CertificateReady')).toMatchObject({ status: 'True', reason: 'RenewalFailing', message: expect.stringContaining('AcmeUnreachable') });
    expect(await handshakeSerial(env.httpsPort, host)).toBe(first.serial);
    expect(await certMetrics(env)).toEqual({ orders: 2, failures: 1 });

    // Not hammering: 20 s into the outage, still the one failed attempt.
    await sleep(20_000);
    expect(await certMetrics(env)).toEqual({ orders: 2, failures: 1 });
    expect(await handshakeSerial(env.httpsPort, host)).toBe(first.serial);

    // Pebble back (new CA keys): the next retry (1 min +-20 % after the failure) renews.
    await pebble.start();
    const renewedSerial = await waitFor('renewed after the outage', async () => {
      const serial = await handshakeSerial(env.httpsPort, host);
      return serial && serial !== first.serial ? serial : undefined;
    }, 100_000, 250);
    const retryMs = Date.now() - failedAt;
    console.log(`outage: retry renewed ${retryMs} ms after the failed attempt`);
    expect(retryMs).toBeGreaterThan(45_000);
    const renewed = await tlsGet(env.httpsPort, host, (await pebble.chain()).root);
    expect(renewed).toMatchObject({ status: 200, body: 'hello v1\n', serial: renewedSerial });
    expect(await certMetrics(env)).toEqual({ orders: 3, failures: 1 });
    expect(pebble.orders).toBe(2);
    expect(env.berth!.proc.pid).toBe(pid);
    const healed = await waitFor('CertificateReady True again', async () => {
      const st = await statusOf(env, 'web');
      return condition(st, 'CertificateReady')?.status === 'True' ? st : undefined;
    });
    expect(condition(healed, 'CertificateExpiring')).toBeUndefined();
    expect(healed.status.certificate?.lastError).toBeUndefined();
  }, 180_000);

  it('stops renewing a deleted route, and gives two routes on one host one certificate', async ({ expect }) => {
    const env = await startEnv('tlsd', { pebble: true });
    const pebble = env.pebble!;
    await writeApp(env, 'web', `image: ${IMAGES.httpdV1}\nroutes: [{host: a.example.test}, {host: b.example.test}]\ntls: auto`);
    await writeApp(env, 'api', `image: ${IMAGES.httpdV2}\nroutes: [{host: a.example.test, path: /api, stripPrefix: true}]\ntls: auto`);
    await waitCertified(env, 'web', 30_000);
    const api = await waitCertified(env, 'api', 30_000);
    expect(api.status.certificate).toMatchObject({ issuer: 'acme', hosts: ['a.example.test'] });

    // One host, two apps: one folder, one order, one certificate served for both paths.
    expect((await readdir(join(env.dirs.state, 'certs'))).sort()).toEqual(['a.example.test', 'acme-orders.json', 'b.example.test']);
    expect(pebble.orders).toBe(2);
    const root = (await pebble.chain()).root;
    const aWeb = await tlsGet(env.httpsPort, 'a.example.test', root);
    const aApi = await tlsGet(env.httpsPort, 'a.example.test', root, '/api/');
    expect([aWeb.body, aApi.body]).toEqual(['hello v1\n', 'hello v2\n']);
    expect(aApi.serial).toBe(aWeb.serial);
    const b = await tlsGet(env.httpsPort, 'b.example.test', root);
    const bCertPem = await readFile(join(env.dirs.state, 'certs', 'b.example.test', 'cert.pem'), 'utf8');
    const bRenewAt = Date.parse(b.leaf.validFrom) + (Date.parse(b.leaf.validTo) - Date.parse(b.leaf.validFrom)) * (2 / 3);

    // Delete b's route: its certificate is no longer served, and never renewed.
    await writeApp(env, 'web', `image: ${IMAGES.httpdV1}\nroutes: [{host: a.example.test}]\ntls: auto`);
    await waitFor('b.example.test no longer served', async () => (await handshakeSerial(env.httpsPort, 'b.example.test')) === undefined, 10_000, 100);
    expect((await httpGet(env.httpPort, 'b.example.test')).status).toBe(404);

    await sleep(Math.max(0, bRenewAt - Date.now()) + 10_000);
    const aNow = await tlsGet(env.httpsPort, 'a.example.test', root);
    expect(aNow.serial).not.toBe(aWeb.serial); // the host still routed was renewed meanwhile
    expect(await readFile(join(env.dirs.state, 'certs', 'b.example.test', 'cert.pem'), 'utf8')).toBe(bCertPem);
    expect(logLines(env, 'certificate renewed', 'b.example.test')).toHaveLength(0);
    expect(logLines(env, 'certificate renewed', 'a.example.test')).toHaveLength(1);
    expect(pebble.orders).toBe(3);
    expect(await orderLog(env)).toHaveLength(3);
    const web = await statusOf(env, 'web');
    expect(web?.status.certificate?.hosts).toEqual(['a.example.test']);
  }, 120_000);
});
