// The port between the certificate manager and whoever signs certificates: the local CA or
// an ACME server. Small on purpose, so the manager can be proven with an in-memory issuer.

export type IssuerKind = 'local' | 'acme';

export interface IssuedCertificate {
  /** Leaf first, then any intermediates, PEM, joined with newlines. */
  certPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
  notBefore: Date;
  notAfter: Date;
}

export interface CertIssuer {
  readonly kind: IssuerKind;
  /**
   * Identifies the signer (the local root, or the ACME directory URL). A stored certificate is
   * reused only when it came from the same signer: switching from staging to production, or
   * regenerating the local root, orders anew.
   */
  readonly id: string;
  /** Throws BerthError (reasons documented by each implementation); honours `signal`. */
  issue(host: string, signal: AbortSignal): Promise<IssuedCertificate>;
}
