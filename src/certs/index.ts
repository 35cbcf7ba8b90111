// The certificate module's public surface, for the composition root and the proxy.
export { ACME_CHALLENGE_PATH, AcmeIssuer, LETS_ENCRYPT_PRODUCTION, LETS_ENCRYPT_STAGING, type AcmeIssuerOptions } from './acme-issuer.js';
export type { CertIssuer, IssuedCertificate, IssuerKind } from './cert-issuer.js';
export {
  CertificateManager,
  type CertificateError,
  type CertificateManagerOptions,
  type CertificateMetrics,
  type CertificateStatus,
  type WantedCertificate,
} from './certificate-manager.js';
export { resolveIssuer, type TlsMode } from './host-names.js';
export { createHttpsServer, type HttpsServerOptions } from './https-server.js';
export { LazyLocalCa } from './lazy-local-ca.js';
