// A real ACME server for tests: Debian's Pebble on loopback, with pebble-challtestsrv as its DNS
// server answering 127.0.0.1 for every name, and the HTTP-01 port pointed at the test's own
// HTTP listener. Each call gets free ports and a temp folder; close() kills both process groups.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { spawn, type ChildProcess } from 'node:child_process';
import { webcrypto } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface PebbleOptions {
  /** Where Pebble's VA sends HTTP-01 validations (the test's HTTP listener on 127.0.0.1). */
  httpPort: number;
  /** Lifetime of issued certificates in seconds (Pebble's default is 5 years). */
  certificateValidityPeriod?: number;
}

export interface Pebble {
  directoryUrl: string;
  /** Trust this for Pebble's own HTTPS listeners (the ACME API), i.e. the `caBundle`. */
  listenerCaPem: string;
  /** Pebble's current root and intermediate (regenerated on every Pebble start). */
  chain(): Promise<{ root: string; intermediate: string }>;
  /** Orders Pebble accepted (its "Added order" log lines), counted across stop() and start(). */
  readonly orders: number;
  /** Certificates Pebble issued (its "Issued certificate serial" log lines), across stop() and start(). */
  readonly issued: number;
  /** Stops Pebble only (an ACME outage); DNS keeps running. */
  stop(): Promise<void>;
  /** Starts Pebble again on the same ports. It forgets accounts and makes new CA keys. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface ChallengeServer {
  port: number;
  /** HTTP-01 validations answered so far (Pebble validates each challenge from several perspectives). */
  hits: number;
  close(): Promise<void>;
}

/** The plain HTTP listener Pebble validates against, with berth's challenge handler mounted as the proxy would. */
export async function startChallengeServer(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<ChallengeServer> {
  const state = { hits: 0 };
  const server = http.createServer((req, res) => {
    res.once('finish', () => { if (res.statusCode === 200) state.hits += 1; });
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get hits() { return state.hits; },
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

export interface HttpsAnswer {
  status: number;
  body: string;
  /** Of the certificate the server presented. */
  serial: string;
  issuer: string;
}

/** GET / over a new TLS connection to 127.0.0.1:port with SNI `servername`, trusting only `ca`. */
export function httpsGet(port: number, servername: string, ca: string, opts: { rejectUnauthorized?: boolean } = {}): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, servername, headers: { host: servername }, ca, agent: false, rejectUnauthorized: opts.rejectUnauthorized ?? true, timeout: 10_000 }, (res) => {
      const cert = (res.socket as TLSSocket).getPeerCertificate();
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, serial: cert.serialNumber, issuer: String(cert.issuer.CN) }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export async function startPebble(opts: PebbleOptions): Promise<Pebble> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-pebble-'));
  const [acmePort, mgmtPort, tlsPort, dnsPort, dnsMgmtPort] = (await freePorts(5)) as [number, number, number, number, number];
  const listenerCaPem = await writeListenerCert(dir);
  const configPath = join(dir, 'pebble-config.json');
  await writeFile(
    configPath,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: join(dir, 'listener.pem'),
        privateKey: join(dir, 'listener.key'),
        httpPort: opts.httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        // The Debian 2.4.0 binary reads this field (Go struct CertificateValidityPeriod, seconds); certificates end 1 s early.
        ...(opts.certificateValidityPeriod ? { certificateValidityPeriod: opts.certificateValidityPeriod } : {}),
      },
    }),
  );

  const procs = new Set<ChildProcess>();
  const killAll = (): void => {
    for (const p of procs) if (p.pid) try { process.kill(-p.pid, 'SIGKILL'); } catch { /* already gone */ }
  };
  // A worker that exits without teardown must not leave servers behind.
  process.once('exit', killAll);

  const dns = launch('pebble-challtestsrv', ['-defaultIPv4', '127.0.0.1', '-defaultIPv6', '', '-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${dnsMgmtPort}`], {}, procs);
  await waitFor(() => tcpOpen(dnsMgmtPort), dns, 'pebble-challtestsrv');

  const pebbleEnv = { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' };
  const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
  let pebble: ChildProcess | undefined;
  const counts = { orders: 0, issued: 0 };
  const start = async (): Promise<void> => {
    pebble = launch('pebble', ['-config', configPath, '-dnsserver', `127.0.0.1:${dnsPort}`], pebbleEnv, procs);
    const p = pebble;
    for (const stream of [p.stdout!, p.stderr!]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        if (/Added order "[^"]*" to the db/.test(line)) counts.orders += 1;
        else if (/Issued certificate serial \S+ for order/.test(line)) counts.issued += 1;
      });
    }
    await waitFor(async () => (await get(directoryUrl, listenerCaPem).catch(() => '')) !== '', p, 'pebble');
  };
  const stop = async (): Promise<void> => {
    if (pebble) await terminate(pebble, procs);
    pebble = undefined;
  };
  await start();

  return {
    directoryUrl,
    listenerCaPem,
    get orders() { return counts.orders; },
    get issued() { return counts.issued; },
    chain: async () => ({
      root: await get(`https://127.0.0.1:${mgmtPort}/roots/0`, listenerCaPem),
      intermediate: await get(`https://127.0.0.1:${mgmtPort}/intermediates/0`, listenerCaPem),
    }),
    stop,
    start,
    close: async () => {
      await Promise.all([...procs].map((p) => terminate(p, procs)));
      process.off('exit', killAll);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function launch(cmd: string, args: string[], env: Record<string, string>, procs: Set<ChildProcess>): ChildProcess {
  // Own process group, so teardown can kill the whole group.
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const output: string[] = [];
  const keep = (b: Buffer): void => {
    output.push(b.toString());
    if (output.length > 200) output.shift();
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  (child as ChildProcess & { output: string[] }).output = output;
  procs.add(child);
  child.once('exit', () => procs.delete(child));
  return child;
}

async function terminate(child: ChildProcess, procs: Set<ChildProcess>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* already gone */ }
  const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ } }, 3_000);
  await exited;
  clearTimeout(timer);
  procs.delete(child);
}

async function waitFor(ready: () => Promise<boolean>, child: ChildProcess, name: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    if (await ready()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  const output = (child as ChildProcess & { output?: string[] }).output?.join('') ?? '';
  throw new Error(`${name} did not become ready (exit ${child.exitCode}):\n${output}`);
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

function get(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca, timeout: 5_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: HTTP ${res.statusCode}`))));
      })
      .on('error', reject)
      .on('timeout', function (this: { destroy(e: Error): void }) { this.destroy(new Error(`${url}: timeout`)); });
  });
}

export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<net.Server>((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** A throwaway CA and a 127.0.0.1/localhost certificate for Pebble's own listeners (the package ships none). */
async function writeListenerCert(dir: string): Promise<string> {
  const now = Date.now();
  const validity = { notBefore: new Date(now - 3_600_000), notAfter: new Date(now + 86_400_000) };
  const caKeys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01', name: 'CN=berth test Pebble listener CA', ...validity, keys: caKeys, signingAlgorithm: ALG,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: '02', subject: 'CN=localhost', issuer: ca.subject, ...validity, signingKey: caKeys.privateKey, publicKey: keys.publicKey, signingAlgorithm: ALG,
    extensions: [
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'localhost' }, { type: 'ip', value: '127.0.0.1' }]),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      await x509.AuthorityKeyIdentifierExtension.create(ca),
    ],
  });
  const keyPem = x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
  await writeFile(join(dir, 'listener.pem'), `${leaf.toString('pem')}\n${ca.toString('pem')}\n`);
  await writeFile(join(dir, 'listener.key'), `${keyPem}\n`, { mode: 0o600 });
  return `${ca.toString('pem')}\n`;
}
