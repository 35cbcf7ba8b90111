import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CertStore } from '../../src/certs/cert-store.js';
import { LocalCa } from '../../src/certs/local-ca.js';
import { x509 } from '../../src/certs/x509.js';

let state: string;
beforeEach(async () => {
  state = await mkdtemp(join(tmpdir(), 'berth-ca-'));
});
afterEach(async () => {
  await rm(state, { recursive: true, force: true });
});

const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;
const signal = new AbortController().signal;

describe('LocalCa', () => {
  it('makes the root once, owner-only, and loads the same root on later starts', async () => {
    const first = await LocalCa.loadOrCreate(state);
    expect(await mode(join(state, 'ca'))).toBe(0o700);
    expect(await mode(join(state, 'ca', 'root.key'))).toBe(0o600);
    expect(await mode(join(state, 'ca', 'root.pem'))).toBe(0o600);
    const again = await LocalCa.loadOrCreate(state);
    expect(again.exportRootPem()).toBe(first.exportRootPem());
    expect(again.id).toBe(first.id);
    expect(await readFile(join(state, 'ca', 'root.pem'), 'utf8')).toBe(first.exportRootPem());
    const root = new X509Certificate(first.exportRootPem());
    expect(root.ca).toBe(true);
  });

  it('issues a leaf that verifies against the exported root and names the host in its SANs', async () => {
    const ca = await LocalCa.loadOrCreate(state);
    const issued = await ca.issue('App.LAN', signal);
    const leaf = new X509Certificate(issued.certPem);
    const root = new X509Certificate(ca.exportRootPem());
    expect(leaf.checkIssued(root)).toBe(true);
    expect(leaf.verify(root.publicKey)).toBe(true);
    expect(leaf.subjectAltName).toBe('DNS:app.lan');
    expect(leaf.checkHost('app.lan')).toBe('app.lan');
    expect(leaf.ca).toBe(false);
    expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // serverAuth
    const lifetimeDays = (issued.notAfter.getTime() - Date.now()) / 86_400_000;
    expect(lifetimeDays).toBeGreaterThan(89.9);
    expect(lifetimeDays).toBeLessThanOrEqual(90);
    // The authority key identifier names the root's key, so clients build the chain.
    const aki = new x509.X509Certificate(issued.certPem).getExtension(x509.AuthorityKeyIdentifierExtension);
    const ski = new x509.X509Certificate(ca.exportRootPem()).getExtension(x509.SubjectKeyIdentifierExtension);
    expect(aki?.keyId).toBe(ski?.keyId);
  });

  it('puts an IP address in an IP SAN and allows wildcards', async () => {
    const ca = await LocalCa.loadOrCreate(state);
    expect(new X509Certificate((await ca.issue('192.168.1.10', signal)).certPem).subjectAltName).toBe('IP Address:192.168.1.10');
    const wild = new X509Certificate((await ca.issue('*.apps.lan', signal)).certPem);
    expect(wild.subjectAltName).toBe('DNS:*.apps.lan');
    expect(wild.checkHost('blog.apps.lan')).toBe('*.apps.lan'); // the SAN that matched
  });

  it('refuses to replace a root whose key is gone, because devices already trust it', async () => {
    await LocalCa.loadOrCreate(state);
    await rm(join(state, 'ca', 'root.key'));
    await expect(LocalCa.loadOrCreate(state)).rejects.toMatchObject({ reason: 'LocalCaInvalid' });
  });

  it('replaces a key left without a root by a crash, since nobody can trust it yet', async () => {
    const first = await LocalCa.loadOrCreate(state);
    await rm(join(state, 'ca', 'root.pem'));
    const second = await LocalCa.loadOrCreate(state);
    expect(second.exportRootPem()).not.toBe(first.exportRootPem());
  });

  it('rejects a name that is not a host', async () => {
    const ca = await LocalCa.loadOrCreate(state);
    await expect(ca.issue('../../etc', signal)).rejects.toMatchObject({ reason: 'InvalidHostName' });
  });
});

describe('CertStore', () => {
  it('keeps certificate, key and signer owner-only and reads them back with their validity', async () => {
    const ca = await LocalCa.loadOrCreate(state);
    const store = new CertStore(state);
    const issued = await ca.issue('*.apps.lan', signal);
    await store.save('*.apps.lan', { ...issued, issuerId: ca.id });
    const dir = join(state, 'certs', '_wildcard.apps.lan');
    expect(await mode(dir)).toBe(0o700);
    for (const f of ['cert.pem', 'key.pem', 'meta.json']) expect(await mode(join(dir, f))).toBe(0o600);
    const loaded = await store.load('*.apps.lan');
    expect(loaded?.issuerId).toBe(ca.id);
    expect(loaded?.notAfter.getTime()).toBe(Math.floor(issued.notAfter.getTime() / 1000) * 1000);
    expect(loaded?.certPem).toBe(issued.certPem);
  });

  it('answers nothing for a host it has never stored', async () => {
    expect(await new CertStore(state).load('app.lan')).toBeUndefined();
  });

  it('rejects a torn pair whose key does not belong to the certificate', async () => {
    const ca = await LocalCa.loadOrCreate(state);
    const store = new CertStore(state);
    await store.save('app.lan', { ...(await ca.issue('app.lan', signal)), issuerId: ca.id });
    await writeFile(join(state, 'certs', 'app.lan', 'key.pem'), (await ca.issue('app.lan', signal)).keyPem);
    await expect(store.load('app.lan')).rejects.toMatchObject({ reason: 'StoredCertificateInvalid' });
  });
});
