// Reading certificates berth stored or was sent, with Node's own X509Certificate: enough to
// know a certificate's validity and whether a key belongs to it, without loading the
// @peculiar/x509 stack (~18 MiB) that only signing needs.
import { X509Certificate, createHash, createPublicKey } from 'node:crypto';

export interface CertificateValidity {
  notBefore: Date;
  notAfter: Date;
}

/** Validity of the first (leaf) certificate in a PEM chain. */
export function readValidity(certPem: string): CertificateValidity {
  const leaf = new X509Certificate(firstPem(certPem));
  return { notBefore: new Date(leaf.validFrom), notAfter: new Date(leaf.validTo) };
}

/** True when the private key belongs to the leaf certificate (guards against a torn cert/key pair on disk). */
export function keyMatchesCertificate(keyPem: string, certPem: string): boolean {
  const fromKey = createPublicKey(keyPem).export({ type: 'spki', format: 'der' });
  const fromCert = new X509Certificate(firstPem(certPem)).publicKey.export({ type: 'spki', format: 'der' });
  return fromKey.equals(fromCert);
}

/** The signer id of the local CA whose root is `rootPem` (the same id LocalCa reports). */
export function localCaId(rootPem: string): string {
  const spki = new X509Certificate(firstPem(rootPem)).publicKey.export({ type: 'spki', format: 'der' });
  return `local:${createHash('sha256').update(spki).digest('hex').slice(0, 16)}`;
}

function firstPem(chainPem: string): string {
  const end = '-----END CERTIFICATE-----';
  const i = chainPem.indexOf(end);
  if (i < 0) throw new Error('no PEM certificate found');
  return chainPem.slice(0, i + end.length);
}
