// examples/lan-tls end to end: this example's app.yaml applied unchanged, the built berth on a
// temporary folder, `berth ca export` as the only trusted root, HTTPS with SNI nas.lan.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { berthCli, waitFor } from '../../test/helpers/berth-process.js';
import {
  EXAMPLES, STAND_INS, closeExampleEnv, condition, appStatus, exampleEnv, fileArgs, httpRequest, httpsRequest, standIn, startBerth,
  type ExampleEnv,
  started,
} from '../../test/helpers/example-env.js';

const { marker } = STAND_INS.nginx;
let env: ExampleEnv | undefined;

beforeAll(async () => {
  env = await exampleEnv('extls');
  await standIn(env, 'nginx:1.27-alpine', 'nginx');
  await startBerth(env);
}, 180_000);

afterAll(() => closeExampleEnv(env), 60_000);

const must = () => started(env);

/** The leaf certificate served for SNI `host` (unverified), or the handshake error. */
function peerCertificate(port: number, host: string): Promise<X509Certificate | Error> {
  return new Promise((resolve) => {
    const req = https.get({ host: '127.0.0.1', port, servername: host, headers: { host }, agent: false, rejectUnauthorized: false, timeout: 5_000 }, (res) => {
      const raw = (res.socket as TLSSocket).getPeerCertificate().raw;
      res.resume();
      resolve(new X509Certificate(raw));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve(e));
  });
}

describe('examples/lan-tls', () => {
  it('serves nas.lan over HTTPS with a certificate from the root `berth ca export` prints', async () => {
    const e = must();
    const applied = await berthCli(['apply', '-f', join(EXAMPLES, 'lan-tls', 'app.yaml'), ...fileArgs(e)]);
    expect(applied.code, applied.stderr).toBe(0);

    const ready = await waitFor('nas Ready with its certificate and the HTTPS listener', async () => {
      const s = await appStatus(e, 'nas');
      const ok = s?.status.phase === 'Ready' && condition(s, 'CertificateReady')?.status === 'True' && (await e.berth?.listeners())?.https !== undefined;
      return ok ? s : undefined;
    }, 30_000, 100);
    const httpsAddress = (await e.berth?.listeners())?.https ?? '';
    const port = Number(httpsAddress.split(':').pop());

    // berth ca export: the root, and nothing secret.
    const exported = await berthCli(['ca', 'export', ...fileArgs(e)]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n?$/);
    expect(exported.stdout).not.toContain('PRIVATE KEY');
    const root = new X509Certificate(exported.stdout);
    expect(root.ca).toBe(true);

    // HTTPS with SNI nas.lan, trusting only that root (curl --cacert berth-root.pem).
    const r = await httpsRequest(port, 'nas.lan', exported.stdout);
    expect(r.verified).toBe(true);
    expect(r.status).toBe(200);
    expect(r.body).toContain(marker);
    const leaf = await peerCertificate(port, 'nas.lan');
    if (leaf instanceof Error) throw leaf;
    expect(leaf.checkHost('nas.lan')).toBe('nas.lan');
    expect(leaf.verify(root.publicKey)).toBe(true);
    const days = (Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 86_400_000;
    expect(days).toBeGreaterThan(89);
    expect(days).toBeLessThan(92);

    // The status the README points at.
    expect(ready.status.url).toBe(`https://nas.lan:${port}/`);
    expect(condition(ready, 'CertificateReady')).toMatchObject({ status: 'True', reason: 'Issued' });
    expect(condition(ready, 'CertificateReady')?.message).toMatch(/^nas\.lan: valid until /);
    expect(ready.status.certificate).toMatchObject({ issuer: 'local', hosts: ['nas.lan'] });
    expect(Date.parse(ready.status.certificate?.notAfter ?? '')).toBe(Date.parse(leaf.validTo));
    // Where the README says the CA and the certificate live.
    expect((await readdir(join(e.dirs.state, 'ca'))).length).toBeGreaterThan(0);
    expect((await readdir(join(e.dirs.state, 'certs', 'nas.lan'))).length).toBeGreaterThan(0);
    const table = await berthCli(['status', ...fileArgs(e)]);
    expect(table.stdout).toMatch(new RegExp(`^nas\\s+Ready\\s+True\\s+https://nas\\.lan:${port}/\\s`, 'm'));
  });

  it('redirects plain HTTP to HTTPS, and refuses the handshake for a name it has no certificate for', async () => {
    const e = must();
    const port = Number(((await e.berth?.listeners())?.https ?? '').split(':').pop());
    const r = await httpRequest(e, 'nas.lan', { path: '/x?y=1' });
    expect(r.status).toBe(308);
    expect(r.headers.location).toBe(`https://nas.lan:${port}/x?y=1`);
    expect(await peerCertificate(port, 'unknown.lan')).toBeInstanceOf(Error);
  });
});
