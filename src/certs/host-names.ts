// Host names as the certificate code sees them: normalised, validated, and classified into
// "local" (LAN names and IPs, signed by berth's own CA) and "public" (ACME).
import { isIP } from 'node:net';
import type { IssuerKind } from './cert-issuer.js';

export type TlsMode = 'auto' | 'acme' | 'local' | 'none';

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const HOST_RE = new RegExp(`^(?:\\*\\.)?${LABEL}(?:\\.${LABEL})*$`);
const LOCAL_SUFFIXES = ['.local', '.lan', '.home.arpa', '.internal'];

/** Lower case, no trailing dot, no IPv6 brackets: the key certificates are stored and looked up by. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  return h;
}

/** A normalised host berth can put in a certificate (and use as a folder name). */
export function isValidHost(host: string): boolean {
  return isIP(host) !== 0 || (host.length <= 253 && HOST_RE.test(host));
}

export function isIpHost(host: string): boolean {
  return isIP(host) !== 0;
}

export function isWildcard(host: string): boolean {
  return host.startsWith('*.');
}

/** `a.b.example.com` -> `*.b.example.com`: the wildcard that would cover a name (one label deep, as TLS does). */
export function coveringWildcard(host: string): string | undefined {
  const dot = host.indexOf('.');
  return dot > 0 && host.indexOf('.', dot + 1) > 0 ? `*${host.slice(dot)}` : undefined;
}

/** Names no public CA can validate: IPs, single labels and the reserved LAN suffixes. */
export function isLocalName(host: string): boolean {
  if (isIpHost(host)) return true;
  const name = isWildcard(host) ? host.slice(2) : host;
  return !name.includes('.') || LOCAL_SUFFIXES.some((s) => name.endsWith(s));
}

/**
 * The issuer for a route's `tls` mode. `auto`: the local CA for LAN names, ACME for public names
 * when ACME is configured, else no TLS. An explicit `acme` stays `acme` even when ACME is not
 * configured, so the manager can report that instead of silently serving plain HTTP.
 */
export function resolveIssuer(host: string, tlsMode: TlsMode, acmeConfigured: boolean): IssuerKind | undefined {
  switch (tlsMode) {
    case 'none':
      return undefined;
    case 'local':
      return 'local';
    case 'acme':
      return 'acme';
    case 'auto':
      if (isLocalName(normalizeHost(host))) return 'local';
      return acmeConfigured ? 'acme' : undefined;
  }
}
