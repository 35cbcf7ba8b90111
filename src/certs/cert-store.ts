// Certificates and keys on disk, one folder per host: `<state>/certs/<host>/{cert.pem,key.pem,meta.json}`,
// owner-only. Reusing a stored certificate that is still valid is what keeps a crash-looping
// berth from burning the CA's rate limits (Traefik users learned this the hard way).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BerthError } from '../../controllers/ports/errors.js';
import type { IssuedCertificate } from './cert-issuer.js';
import { isValidHost } from './host-names.js';
import { writePrivateFile } from './private-files.js';
import { keyMatchesCertificate, readValidity } from './cert-pem.js';

export interface StoredCertificate extends IssuedCertificate {
  /** CertIssuer.id of the signer. */
  issuerId: string;
}

interface Meta {
  issuerId: string;
  savedAt: string;
}

export class CertStore {
  constructor(private readonly stateDir: string) {}

  /** `*.example.com` is stored as `_wildcard.example.com` (no route host can start with `_`). */
  dirFor(host: string): string {
    if (!isValidHost(host)) throw new BerthError('stalled', 'InvalidHostName', `not a host name: ${JSON.stringify(host)}`);
    return join(this.stateDir, 'certs', host.replace(/^\*\./, '_wildcard.'));
  }

  /** The stored certificate, or undefined when there is none. Throws StoredCertificateInvalid for torn or corrupt files. */
  async load(host: string): Promise<StoredCertificate | undefined> {
    const dir = this.dirFor(host);
    let certPem: string, keyPem: string, metaJson: string;
    try {
      [certPem, keyPem, metaJson] = await Promise.all(['cert.pem', 'key.pem', 'meta.json'].map((f) => readFile(join(dir, f), 'utf8'))) as [string, string, string];
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    try {
      const meta = JSON.parse(metaJson) as Meta;
      if (typeof meta.issuerId !== 'string') throw new Error('meta.json has no issuerId');
      if (!keyMatchesCertificate(keyPem, certPem)) throw new Error('key.pem does not belong to cert.pem');
      return { certPem, keyPem, issuerId: meta.issuerId, ...readValidity(certPem) };
    } catch (e) {
      throw new BerthError('transient', 'StoredCertificateInvalid', `${dir}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** A crash between the writes leaves a key that does not match the certificate, which load() rejects. */
  async save(host: string, cert: StoredCertificate): Promise<void> {
    const dir = this.dirFor(host);
    const meta: Meta = { issuerId: cert.issuerId, savedAt: new Date().toISOString() };
    await writePrivateFile(join(dir, 'key.pem'), cert.keyPem);
    await writePrivateFile(join(dir, 'cert.pem'), cert.certPem);
    await writePrivateFile(join(dir, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
  }
}
