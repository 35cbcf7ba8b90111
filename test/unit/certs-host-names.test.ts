import { describe, expect, it } from 'vitest';
import { coveringWildcard, isValidHost, normalizeHost, resolveIssuer } from '../../src/certs/host-names.js';

describe('resolveIssuer', () => {
  it.each([
    ['auto picks the local CA for a .lan name', 'app.lan', 'auto', true, 'local'],
    ['auto picks the local CA for a .local name', 'printer.local', 'auto', true, 'local'],
    ['auto picks the local CA for a .home.arpa name', 'nas.home.arpa', 'auto', true, 'local'],
    ['auto picks the local CA for a .internal name', 'git.corp.internal', 'auto', true, 'local'],
    ['auto picks the local CA for a single label', 'pi', 'auto', true, 'local'],
    ['auto picks the local CA for an IPv4 address', '192.168.1.10', 'auto', true, 'local'],
    ['auto picks the local CA for an IPv6 address', '[fd00::1]', 'auto', true, 'local'],
    ['auto picks the local CA for a wildcard under .lan', '*.apps.lan', 'auto', false, 'local'],
    ['auto picks ACME for a public name when ACME is configured', 'blog.example.com', 'auto', true, 'acme'],
    ['auto serves a public name without TLS when ACME is not configured', 'blog.example.com', 'auto', false, undefined],
    ['auto ignores case and a trailing dot', 'APP.LAN.', 'auto', false, 'local'],
    ['acme stays acme even when ACME is off, so the error can be reported', 'blog.example.com', 'acme', false, 'acme'],
    ['local is local even for a public name', 'blog.example.com', 'local', true, 'local'],
    ['none is no TLS', 'app.lan', 'none', true, undefined],
  ] as const)('%s', (_name, host, mode, acme, want) => {
    expect(resolveIssuer(host, mode, acme)).toBe(want);
  });
});

describe('coveringWildcard', () => {
  it.each([
    ['a three-label name is covered by the wildcard of its parent', 'a.b.example.com', '*.b.example.com'],
    ['a two-label name is covered by a wildcard of its registrable parent', 'blog.example.com', '*.example.com'],
    ['a name directly under a top-level label has no wildcard', 'example.com', undefined],
    ['a single label has no wildcard', 'pi', undefined],
  ])('%s', (_name, host, want) => {
    expect(coveringWildcard(host)).toBe(want);
  });
});

describe('host validation', () => {
  it.each([
    ['a DNS name is valid', 'app.example.com', true],
    ['a wildcard is valid', '*.example.com', true],
    ['an IP is valid', '10.0.0.1', true],
    ['a path is not a host', '../etc', false],
    ['a wildcard in the middle is not valid', 'a.*.example.com', false],
    ['an empty name is not valid', '', false],
  ])('%s', (_name, host, want) => {
    expect(isValidHost(normalizeHost(host))).toBe(want);
  });
});
