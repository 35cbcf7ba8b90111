// Certificates from an ACME CA (Let's Encrypt by default; staging, or any RFC 8555 server such
// as Pebble) with acme-client, HTTP-01 only: berth's own HTTP listener answers the challenge
// from an in-memory token map, so no port 80 helper and no self-check (acme-client's
// pre-flight GET goes to port 80 through the system resolver and can hang for minutes).
//
// Reasons thrown (BerthError): WildcardNeedsDns01 and AcmeIpNotSupported (stalled: HTTP-01
// cannot prove them), AcmeUnreachable, AcmeServerUntrusted, AcmeTimeout, AcmeRateLimited,
// AcmeOrderFailed (transient), Aborted.
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import type AcmeClientModule from 'acme-client';
import { BerthError, isAbortError } from '../../controllers/ports/errors.js';
import { silentLogger, type Logger } from '../util/logger.js';
import type { CertIssuer, IssuedCertificate } from './cert-issuer.js';
import { isIpHost, isValidHost, isWildcard, normalizeHost } from './host-names.js';
import { writePrivateFile } from './private-files.js';
import { readValidity } from './cert-pem.js';

/** The proxy mounts this prefix on the plain HTTP listener and answers with challengeResponse(). */
export const ACME_CHALLENGE_PATH = '/.well-known/acme-challenge/';
export const LETS_ENCRYPT_PRODUCTION = 'https://acme-v02.api.letsencrypt.org/directory';
export const LETS_ENCRYPT_STAGING = 'https://acme-staging-v02.api.letsencrypt.org/directory';

type Acme = typeof AcmeClientModule;
let loaded: Promise<Acme> | undefined;

/** acme-client (with axios and node-forge) costs ~25 MiB: loaded on the first order only. */
function loadAcme(): Promise<Acme> {
  loaded ??= import('acme-client').then((m) => {
    installRequestScope(m.default);
    return m.default;
  });
  return loaded;
}

export interface AcmeIssuerOptions {
  /** Account keys live in `<stateDir>/acme/<directory host>-<hash>/account.key`. */
  stateDir: string;
  /** Default: Let's Encrypt production. */
  directoryUrl?: string;
  email?: string;
  /** Extra PEM roots to trust for the ACME server itself (private CAs such as Pebble). */
  caBundle?: string;
  /** Default true: berth serves the challenge itself; acme-client's self-check can hang. */
  skipChallengeVerification?: boolean;
  /** A whole order (account, challenge, finalize, download) fails after this long. Default 2 min. */
  orderTimeoutMs?: number;
  /** Each HTTP request to the CA. Default 30 s. */
  requestTimeoutMs?: number;
  /** First delay while polling a pending challenge or order (doubles, max 30 s). Default 2 s. */
  pollIntervalMs?: number;
  logger?: Logger;
}

/**
 * acme-client has no per-client agent or signal, but it sends every request through its own
 * axios instance (not the global axios). Each order runs inside this scope, and one request
 * interceptor applies the order's signal, timeout and https agent, so a CA bundle given for
 * one directory never changes what any other client trusts.
 */
interface RequestScope {
  signal: AbortSignal;
  timeoutMs: number;
  httpsAgent?: https.Agent;
}
const requestScope = new AsyncLocalStorage<RequestScope>();
function installRequestScope(acme: Acme): void {
  acme.axios.interceptors.request.use((config) => {
    const scope = requestScope.getStore();
    if (scope === undefined) return config;
    // Thrown here, the error carries no axios config, so acme-client does not retry a cancelled order.
    if (scope.signal.aborted) throw new BerthError('transient', 'Aborted', 'ACME order aborted');
    config.signal = scope.signal;
    config.timeout = scope.timeoutMs;
    if (scope.httpsAgent) config.httpsAgent = scope.httpsAgent;
    return config;
  });
  // acme-client retries network errors and 5xx 5 times, 5 s x attempt apart (75 s per request).
  // The certificate manager already retries whole orders with capped backoff, so keep these short;
  // a Retry-After header from the CA is still honoured.
  const settings = (acme.axios.defaults as { acmeSettings?: { retryMaxAttempts: number; retryDefaultDelay: number } }).acmeSettings;
  if (settings) {
    settings.retryMaxAttempts = 1;
    settings.retryDefaultDelay = 1;
  }
}

/** Why HTTP-01 cannot prove a (normalised) host, if it cannot: checked before any order is placed. */
export function acmeIneligibility(host: string): BerthError | undefined {
  if (isWildcard(host)) {
    return new BerthError('stalled', 'WildcardNeedsDns01', `ACME cannot issue ${host}: wildcard certificates need the DNS-01 challenge and berth answers HTTP-01 only; use tls: local, or name each host`);
  }
  if (isIpHost(host)) return new BerthError('stalled', 'AcmeIpNotSupported', `berth orders ACME certificates for DNS names only, not ${host}; use tls: local`);
  if (!isValidHost(host)) return new BerthError('stalled', 'InvalidHostName', `cannot order a certificate for ${JSON.stringify(host)}`);
  return undefined;
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ECONNABORTED']);
const UNTRUSTED_CODES = new Set(['SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID']);

export class AcmeIssuer implements CertIssuer {
  readonly kind = 'acme' as const;
  readonly id: string;
  private readonly directoryUrl: string;
  private readonly tokens = new Map<string, string>();
  private readonly httpsAgent: https.Agent | undefined;
  private readonly log: Logger;
  private accountKey: Promise<string> | undefined;

  constructor(private readonly opts: AcmeIssuerOptions) {
    this.directoryUrl = opts.directoryUrl ?? LETS_ENCRYPT_PRODUCTION;
    this.id = `acme:${this.directoryUrl}`;
    this.httpsAgent = opts.caBundle ? new https.Agent({ ca: [...rootCertificates, opts.caBundle] }) : undefined;
    this.log = (opts.logger ?? silentLogger).child({ component: 'acme', directory: this.directoryUrl });
  }

  /** The key authorization for an HTTP-01 token this issuer is waiting on, else undefined (answer 404). */
  challengeResponse(token: string): string | undefined {
    return this.tokens.get(token);
  }

  /**
   * A request handler for `ACME_CHALLENGE_PATH` on the plain HTTP listener (any host; the CA
   * sends `Host: <domain>`): the key authorization as text/plain, or 404.
   */
  handleChallenge(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '').split('?', 1)[0]!;
    const body = path.startsWith(ACME_CHALLENGE_PATH) ? this.challengeResponse(path.slice(ACME_CHALLENGE_PATH.length)) : undefined;
    res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
    res.end(body ?? 'no such challenge\n');
  }

  async issue(host: string, signal: AbortSignal): Promise<IssuedCertificate> {
    const name = normalizeHost(host);
    const ineligible = acmeIneligibility(name);
    if (ineligible) throw ineligible;

    const orderSignal = AbortSignal.any([signal, AbortSignal.timeout(this.opts.orderTimeoutMs ?? 120_000)]);
    const scope: RequestScope = { signal: orderSignal, timeoutMs: this.opts.requestTimeoutMs ?? 30_000, ...(this.httpsAgent ? { httpsAgent: this.httpsAgent } : {}) };
    const ownTokens: string[] = [];
    const started = performance.now();
    try {
      const acme = await loadAcme();
      const accountKey = await this.loadAccountKey();
      const [keyPem, csr] = await acme.crypto.createCsr({ commonName: name, altNames: [name] }, await acme.crypto.createPrivateEcdsaKey());
      // A fresh client per order: it looks its account up again, so a CA that lost the account (Pebble restarts) still works.
      const client = new acme.Client({ directoryUrl: this.directoryUrl, accountKey, backoffMin: this.opts.pollIntervalMs ?? 2_000, backoffMax: 30_000 });
      const order = requestScope.run(scope, async () => {
        await this.ensureAccount(client);
        return client.auto({
          csr,
          challengePriority: ['http-01'],
          skipChallengeVerification: this.opts.skipChallengeVerification ?? true,
          challengeCreateFn: (_authz, challenge, keyAuthorization) => {
            ownTokens.push(challenge.token);
            this.tokens.set(challenge.token, keyAuthorization);
            return Promise.resolve();
          },
          challengeRemoveFn: (_authz, challenge) => {
            this.tokens.delete(challenge.token);
            return Promise.resolve();
          },
        });
      });
      const chainPem = await untilAborted(order, orderSignal);
      const certPem = chainPem.endsWith('\n') ? chainPem : `${chainPem}\n`;
      this.log.info({ host: name, ms: Math.round(performance.now() - started) }, 'certificate issued');
      return { certPem, keyPem: keyPem.toString(), ...readValidity(certPem) };
    } catch (e) {
      throw await this.classify(e, signal, orderSignal);
    } finally {
      for (const t of ownTokens) this.tokens.delete(t);
    }
  }

  /** Releases the CA-bundle agent's sockets. */
  close(): void {
    this.httpsAgent?.destroy();
  }

  /**
   * Finds the account for our key, or registers it. auto() would register by itself, but for an
   * existing account acme-client then sends an "update" with only termsOfServiceAgreed, which
   * strict servers (Pebble) reject when no email is set; looking up first avoids that.
   */
  private async ensureAccount(client: InstanceType<Acme['Client']>): Promise<void> {
    try {
      await client.createAccount({ onlyReturnExisting: true });
    } catch (e) {
      // Only an answer from the CA ("no such account") means register; a network failure is thrown on.
      if (isNetworkFailure(e)) throw e;
      await client.createAccount({ termsOfServiceAgreed: true, ...(this.opts.email ? { contact: [`mailto:${this.opts.email}`] } : {}) });
    }
  }

  /** One account key per directory URL, made on first use and kept (0600) so restarts reuse the account. */
  private loadAccountKey(): Promise<string> {
    this.accountKey ??= (async () => {
      const url = new URL(this.directoryUrl);
      const slug = `${url.hostname}-${createHash('sha256').update(this.directoryUrl).digest('hex').slice(0, 8)}`;
      const path = join(this.opts.stateDir, 'acme', slug, 'account.key');
      try {
        return await readFile(path, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      const key = (await (await loadAcme()).crypto.createPrivateEcdsaKey()).toString();
      await writePrivateFile(path, key);
      this.log.info({ path }, 'created ACME account key');
      return key;
    })().catch((e: unknown) => {
      this.accountKey = undefined;
      throw e;
    });
    return this.accountKey;
  }

  private async classify(e: unknown, callerSignal: AbortSignal, orderSignal: AbortSignal): Promise<BerthError> {
    if (callerSignal.aborted) return new BerthError('transient', 'Aborted', 'ACME order aborted', { cause: e });
    if (orderSignal.aborted) return new BerthError('transient', 'AcmeTimeout', `ACME order did not finish within ${this.opts.orderTimeoutMs ?? 120_000} ms`, { cause: e });
    if (e instanceof BerthError) return e;
    const code = (e as { code?: unknown }).code ?? (isNetworkFailure(e) ? await this.probeDirectory() : undefined);
    const message = e instanceof Error ? e.message : String(e);
    if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) {
      return new BerthError('transient', 'AcmeUnreachable', `cannot reach ${this.directoryUrl}: ${code}`, { cause: e });
    }
    if (typeof code === 'string' && UNTRUSTED_CODES.has(code)) {
      return new BerthError('transient', 'AcmeServerUntrusted', `${this.directoryUrl} presents a certificate berth does not trust (${code}); pass its CA with --acme-ca-bundle`, { cause: e });
    }
    if (isAbortError(e)) return new BerthError('transient', 'Aborted', message, { cause: e });
    if (/rate.?limit|too many/i.test(message)) return new BerthError('transient', 'AcmeRateLimited', message, { cause: e });
    return new BerthError('transient', 'AcmeOrderFailed', message, { cause: e });
  }

  /** The error code of a plain GET of the directory (same trust), or undefined when it answers. */
  private probeDirectory(): Promise<string | undefined> {
    const secure = this.directoryUrl.startsWith('https:');
    return new Promise((resolve) => {
      const onResponse = (res: http.IncomingMessage): void => {
        res.resume();
        resolve(undefined);
      };
      const req = secure ? https.get(this.directoryUrl, { agent: this.httpsAgent, timeout: 10_000 }, onResponse) : http.get(this.directoryUrl, { timeout: 10_000 }, onResponse);
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
  }
}

/**
 * acme-client 5.4 turns a network error it gave up retrying into a TypeError (its interceptor
 * reads `response.config` of a missing response); axios errors before that carry a `code`.
 */
function isNetworkFailure(e: unknown): boolean {
  return e instanceof TypeError || (e instanceof Error && typeof (e as { code?: unknown }).code === 'string');
}

/** Settles with `work`, or rejects as soon as `signal` aborts (acme-client's own sleeps cannot be cancelled). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  work.catch(() => undefined); // a late rejection after abort is expected and uninteresting
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    void work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
