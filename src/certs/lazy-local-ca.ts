// The local CA as the operator holds it: the signer id is read from root.pem with node:crypto,
// and the signing stack (@peculiar/x509, ~18 MiB) loads on the first certificate berth has to
// issue — a berth without TLS routes, or with every certificate already on disk, never loads it.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CertIssuer, IssuedCertificate } from './cert-issuer.js';
import type { LocalCa } from './local-ca.js';
import { localCaId } from './cert-pem.js';

export class LazyLocalCa implements CertIssuer {
  readonly kind = 'local' as const;
  private ca: Promise<LocalCa> | undefined;

  private constructor(
    private readonly stateDir: string,
    private knownId: string | undefined,
  ) {}

  static async open(stateDir: string): Promise<LazyLocalCa> {
    const pem = await readFile(join(stateDir, 'ca', 'root.pem'), 'utf8').catch(() => undefined);
    return new LazyLocalCa(stateDir, pem ? localCaId(pem) : undefined);
  }

  /** Before the CA exists no certificate can come from it, so no stored one matches. */
  get id(): string {
    return this.knownId ?? 'local:none';
  }

  async issue(host: string, signal: AbortSignal): Promise<IssuedCertificate> {
    this.ca ??= import('./local-ca.js').then((m) => m.LocalCa.loadOrCreate(this.stateDir));
    const ca = await this.ca;
    this.knownId = ca.id;
    return ca.issue(host, signal);
  }
}
