// The one place that loads @peculiar/x509: v2 needs a Reflect polyfill imported before it
// (tsyringe throws otherwise). It finds Node's WebCrypto on globalThis by itself.
import 'reflect-metadata';
import { X509Certificate as NodeX509, createPublicKey } from 'node:crypto';
import * as x509 from '@peculiar/x509';

export { x509 };

export interface CertificateValidity {
  notBefore: Date;
  notAfter: Date;
}

/** Validity of the first (leaf) certificate in a PEM chain. */
export function readValidity(certPem: string): CertificateValidity {
  const leaf = new x509.X509Certificate(firstPem(certPem));
  return { notBefore: leaf.notBefore, notAfter: leaf.notAfter };
}

/** True when the private key belongs to the leaf certificate (guards against a torn cert/key pair on disk). */
export function keyMatchesCertificate(keyPem: string, certPem: string): boolean {
  const fromKey = createPublicKey(keyPem).export({ type: 'spki', format: 'der' });
  const fromCert = new NodeX509(firstPem(certPem)).publicKey.export({ type: 'spki', format: 'der' });
  return fromKey.equals(fromCert);
}

function firstPem(chainPem: string): string {
  const end = '-----END CERTIFICATE-----';
  const i = chainPem.indexOf(end);
  if (i < 0) throw new Error('no PEM certificate found');
  return chainPem.slice(0, i + end.length);
}
