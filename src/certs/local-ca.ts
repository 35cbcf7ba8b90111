// berth's own certificate authority for LAN names (`tls: local`, and `auto` for .lan, .local,
// IPs...): a root made once and kept in the state folder, so devices that trust it once keep
// trusting every certificate berth makes later. Users export it with `berth ca export`.
import { webcrypto, randomBytes, createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '../../controllers/ports/errors.js';
import type { Clock } from '../../controllers/ports/clock.js';
import type { CertIssuer, IssuedCertificate } from './cert-issuer.js';
import { isIpHost, isValidHost, normalizeHost } from './host-names.js';
import { ensurePrivateDir, writePrivateFile } from './private-files.js';
import { x509 } from './x509.js';
import { keyMatchesCertificate } from './cert-pem.js';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
const ROOT_LIFETIME_DAYS = 3650;
/** Devices' clocks disagree by minutes; a leaf valid from an hour ago is accepted by all of them. */
const BACKDATE_MS = 3_600_000;

export interface LocalCaOptions {
  /** Leaf lifetime (default 90 days; renewed when a third is left). */
  leafLifetimeDays?: number;
  clock?: Pick<Clock, 'now'>;
}

export class LocalCa implements CertIssuer {
  readonly kind = 'local' as const;
  readonly id: string;
  private readonly leafLifetimeMs: number;
  private readonly now: () => Date;

  private constructor(
    private readonly root: x509.X509Certificate,
    private readonly rootKey: webcrypto.CryptoKey,
    opts: LocalCaOptions,
  ) {
    this.id = `local:${createHash('sha256').update(new Uint8Array(root.publicKey.rawData)).digest('hex').slice(0, 16)}`;
    this.leafLifetimeMs = (opts.leafLifetimeDays ?? 90) * DAY_MS;
    this.now = opts.clock ? () => opts.clock!.now() : () => new Date();
  }

  /**
   * Loads `<stateDir>/ca/root.pem` + `root.key`, or makes them on first use. A root whose key is
   * missing or does not match is an error, never silently replaced: devices already trust it.
   */
  static async loadOrCreate(stateDir: string, opts: LocalCaOptions = {}): Promise<LocalCa> {
    const dir = join(stateDir, 'ca');
    const certPath = join(dir, 'root.pem');
    const keyPath = join(dir, 'root.key');
    const [certPem, keyPem] = await Promise.all([readOptional(certPath), readOptional(keyPath)]);
    if (certPem !== undefined) {
      if (keyPem === undefined || !keyMatchesCertificate(keyPem, certPem)) {
        throw new BerthError('stalled', 'LocalCaInvalid', `${keyPath} is missing or does not match ${certPath}; restore it, or remove both to make a new root (devices must then trust the new one)`);
      }
      await ensurePrivateDir(dir);
      const rootKey = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(keyPem), ALG, false, ['sign']);
      return new LocalCa(new x509.X509Certificate(certPem), rootKey, opts);
    }
    // No certificate yet: a key alone was never exported or trusted, so it is safe to replace.
    const now = opts.clock?.now() ?? new Date();
    const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
    const root = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomSerial(),
      name: new x509.Name([{ CN: [`berth local CA (${hostname()})`] }, { O: ['berth'] }]),
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + ROOT_LIFETIME_DAYS * DAY_MS),
      keys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    // Key first: a crash between the two writes leaves a key without a root, which the next start replaces.
    await writePrivateFile(keyPath, await exportKeyPem(keys.privateKey));
    await writePrivateFile(certPath, `${root.toString('pem')}\n`);
    return new LocalCa(root, keys.privateKey, opts);
  }

  /** The root certificate (PEM, newline-terminated) for users to install as trusted. */
  exportRootPem(): string {
    return `${this.root.toString('pem')}\n`;
  }

  /** A leaf for one host (DNS name, wildcard or IP). Reasons: InvalidHostName (stalled), Aborted. */
  async issue(host: string, signal?: AbortSignal): Promise<IssuedCertificate> {
    const name = normalizeHost(host);
    if (!isValidHost(name)) throw new BerthError('stalled', 'InvalidHostName', `cannot issue a certificate for ${JSON.stringify(host)}`);
    if (signal?.aborted) throw new BerthError('transient', 'Aborted', 'issuance aborted');
    const now = this.now().getTime();
    const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: new x509.Name([{ CN: [name] }]),
      issuer: this.root.subject,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(now + this.leafLifetimeMs),
      signingKey: this.rootKey,
      publicKey: keys.publicKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([isIpHost(name) ? { type: 'ip', value: name } : { type: 'dns', value: name }]),
        await x509.AuthorityKeyIdentifierExtension.create(this.root),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    // Validity as encoded (whole seconds), so memory and disk agree.
    return { certPem: `${leaf.toString('pem')}\n`, keyPem: await exportKeyPem(keys.privateKey), notBefore: leaf.notBefore, notAfter: leaf.notAfter };
  }
}

/** 128 random bits, positive (high bit clear), as RFC 5280 asks. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}

async function exportKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  return `${x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY')}\n`;
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
