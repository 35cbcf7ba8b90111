// HTTPS for LAN names with berth's own CA, end to end over loopback: what curl sees with only
// the exported root trusted, SNI edge cases, websockets through TLS, and a renewal picked up
// by the next handshake while an open connection keeps working.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer, type ClientOptions } from 'ws';
import { CertificateManager } from '../../src/certs/certificate-manager.js';
import { createHttpsServer } from '../../src/certs/https-server.js';
import { LocalCa } from '../../src/certs/local-ca.js';
import { httpsGet } from '../helpers/pebble.js';

const run = promisify(execFile);
const DAY = 86_400_000;

let state: string;
let rootPath: string;
let root: string;
let port: number;
let manager: CertificateManager;
let server: ReturnType<typeof createHttpsServer>;
const clock = { offset: 0, now: () => new Date(Date.now() + clock.offset), monotonic: () => performance.now() };

beforeAll(async () => {
  state = await mkdtemp(join(tmpdir(), 'berth-https-'));
  const ca = await LocalCa.loadOrCreate(state, { clock });
  root = ca.exportRootPem();
  rootPath = join(state, 'root.pem');
  await writeFile(rootPath, root);
  manager = new CertificateManager({ stateDir: state, issuers: { local: ca }, clock, checkSchedule: '* * * * * *' });
  const wss = new WebSocketServer({ noServer: true });
  server = createHttpsServer({
    manager,
    requestHandler: (req, res) => res.end(`hello from ${req.headers.host}`),
    upgradeHandler: (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (m: Buffer) => ws.send(`echo ${m.toString()}`))),
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  manager.sync([{ host: 'app.lan', issuer: 'local' }, { host: '127.0.0.1', issuer: 'local' }]);
  await manager.settled();
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await manager.close();
  await rm(state, { recursive: true, force: true });
});

describe('HTTPS with the local CA', () => {
  it('serves app.lan to curl trusting only the exported root', async () => {
    const { stdout } = await run('curl', ['-sS', '--cacert', rootPath, '--resolve', `app.lan:${port}:127.0.0.1`, `https://app.lan:${port}/`]);
    expect(stdout).toBe(`hello from app.lan:${port}`);
    const answer = await httpsGet(port, 'app.lan', root);
    expect(answer.body).toBe('hello from app.lan');
  });

  it('serves the IP certificate to a client that sends no SNI (an IP in the URL)', async () => {
    const { stdout } = await run('curl', ['-sS', '--cacert', rootPath, `https://127.0.0.1:${port}/`]);
    expect(stdout).toBe(`hello from 127.0.0.1:${port}`);
  });

  it('fails the handshake for a name it has no certificate for', async () => {
    const err = await run('curl', ['-sS', '--cacert', rootPath, '--resolve', `other.lan:${port}:127.0.0.1`, `https://other.lan:${port}/`]).catch((e: { code: number }) => e);
    expect((err as { code?: number }).code).toBe(35); // curl: SSL connect error
  });

  it('carries websockets through TLS', async () => {
    // ws hands these to tls.connect; its types just do not list servername.
    const options = { ca: root, servername: 'app.lan', headers: { host: 'app.lan' } } as ClientOptions;
    const ws = new WebSocket(`wss://127.0.0.1:${port}/`, options);
    const reply = await new Promise<string>((resolve, reject) => {
      ws.on('open', () => ws.send('ping'));
      ws.on('message', (m: Buffer) => resolve(m.toString()));
      ws.on('error', reject);
    });
    ws.close();
    expect(reply).toBe('echo ping');
  });

  it('serves a renewed certificate from the next handshake while an open connection keeps working', async () => {
    const open = tls.connect({ host: '127.0.0.1', port, servername: 'app.lan', ca: root });
    await new Promise((r) => open.once('secureConnect', r));
    const oldSerial = open.getPeerCertificate().serialNumber;
    const ask = (): Promise<string> => new Promise((resolve) => {
      open.once('data', (d: Buffer) => resolve(d.toString()));
      open.write('GET / HTTP/1.1\r\nHost: app.lan\r\n\r\n');
    });
    expect(await ask()).toContain('hello from app.lan');

    const renewAt = Date.parse(manager.status('app.lan')!.renewAt!);
    clock.offset = renewAt - Date.now() + 60_000;
    const deadline = Date.now() + 5_000;
    while (Date.parse(manager.status('app.lan')!.renewAt!) <= renewAt && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));

    // The new certificate is dated by the moved clock, so verify its chain by hand, not by the real date.
    const fresh = tls.connect({ host: '127.0.0.1', port, servername: 'app.lan', rejectUnauthorized: false });
    await new Promise((r) => fresh.once('secureConnect', r));
    const cert = fresh.getPeerCertificate(true);
    fresh.destroy();
    expect(cert.serialNumber).not.toBe(oldSerial);
    expect(new X509Certificate(cert.raw).checkIssued(new X509Certificate(root))).toBe(true);
    expect(Date.parse(cert.valid_to) - Date.now()).toBeGreaterThan(140 * DAY);

    expect(await ask()).toContain('hello from app.lan');
    open.destroy();
  });
});
