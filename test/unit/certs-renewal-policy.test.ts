import { describe, expect, it } from 'vitest';
import {
  backoffDelayMs,
  checkOrderBudget,
  DEFAULT_BACKOFF,
  isExpiring,
  needsCertificate,
  renewAt,
} from '../../src/certs/renewal-policy.js';

const H = 3_600_000;
const D = 24 * H;
const t0 = Date.parse('2026-01-01T00:00:00Z');
const at = (ms: number): Date => new Date(t0 + ms);
const cert90 = { notBefore: at(0), notAfter: at(90 * D), issuerId: 'acme:x' };

describe('renewAt', () => {
  it.each([
    ['a 90-day certificate renews after 60 days', { notBefore: at(0), notAfter: at(90 * D) }, at(60 * D)],
    ['a 45-day certificate renews after 30 days', { notBefore: at(0), notAfter: at(45 * D) }, at(30 * D)],
    ['a 30-second certificate renews after 20 seconds', { notBefore: at(0), notAfter: at(30_000) }, at(20_000)],
  ])('%s', (_name, validity, want) => {
    expect(renewAt(validity).toISOString()).toBe(want.toISOString());
  });
});

describe('needsCertificate', () => {
  it.each([
    ['a host without a certificate needs one', undefined, 'acme:x', at(0), true],
    ['a fresh certificate from the wanted issuer is kept', cert90, 'acme:x', at(D), false],
    ['a certificate one second before its renewal time is kept', cert90, 'acme:x', at(60 * D - 1000), false],
    ['a certificate at its renewal time is renewed', cert90, 'acme:x', at(60 * D), true],
    ['an expired certificate is renewed', cert90, 'acme:x', at(91 * D), true],
    ['a certificate from another issuer is replaced', cert90, 'local:y', at(D), true],
    ['a wall clock far in the past (Pi without RTC) orders nothing', cert90, 'acme:x', at(-400 * D), false],
  ])('%s', (_name, current, issuerId, now, want) => {
    expect(needsCertificate(current, issuerId, now)).toBe(want);
  });
});

describe('backoffDelayMs', () => {
  const noJitter = { ...DEFAULT_BACKOFF, jitter: 0 };
  it.each([
    ['the first failure waits one minute', 1, noJitter, 0.5, 60_000],
    ['the second failure waits two minutes', 2, noJitter, 0.5, 120_000],
    ['the fifth failure waits sixteen minutes', 5, noJitter, 0.5, 16 * 60_000],
    ['the tenth failure is capped at six hours', 10, noJitter, 0.5, 6 * H],
    ['the hundredth failure is still capped at six hours', 100, noJitter, 0.5, 6 * H],
    ['jitter at its low end shortens the delay by 20 %', 1, DEFAULT_BACKOFF, 0, 48_000],
    ['jitter at its high end lengthens the delay by up to 20 %', 1, DEFAULT_BACKOFF, 0.999999, 72_000],
    ['jitter never pushes a delay past the cap', 20, DEFAULT_BACKOFF, 0.999999, 6 * H],
    ['zero failures is treated as the first', 0, noJitter, 0.5, 60_000],
  ])('%s', (_name, failures, opts, random, want) => {
    expect(backoffDelayMs(failures, opts, random)).toBe(want);
  });
});

describe('checkOrderBudget', () => {
  const budget = { limit: 3, windowMs: H };
  const now = t0 + 10 * H;
  it.each([
    ['no recent orders allows an order', [], true, undefined, 0],
    ['two orders in the window allow a third', [now - 10, now - 20], true, undefined, 2],
    ['three orders in the window block a fourth until the oldest leaves it', [now - 30 * 60_000, now - 20, now - 10], false, now + 30 * 60_000, 3],
    ['orders older than the window no longer count', [now - 2 * H, now - H, now - 10], true, undefined, 1],
    ['an order time in the future (clock went back) counts as now', [now + 5 * D, now - 10, now - 20], false, now - 20 + H, 3],
    ['more orders than the limit wait for enough of them to leave', [now - 40 * 60_000, now - 30 * 60_000, now - 2, now - 1], false, now - 30 * 60_000 + H, 4],
  ])('%s', (_name, times, allowed, retryAt, kept) => {
    const d = checkOrderBudget(times, now, budget);
    expect(d.allowed).toBe(allowed);
    expect(d.retryAt).toBe(retryAt);
    expect(d.recent).toHaveLength(kept);
  });
});

describe('isExpiring', () => {
  it.each([
    ['failing renewals eight days before expiry do not warn yet', at(8 * D), at(0), true, false],
    ['failing renewals seven days before expiry warn', at(7 * D), at(0), true, true],
    ['an expired certificate with failing renewals warns', at(0), at(D), true, true],
    ['a certificate close to expiry whose renewal is not failing does not warn', at(D), at(0), false, false],
    ['a host without any certificate does not warn (it is simply not ready)', undefined, at(0), true, false],
  ])('%s', (_name, notAfter, now, failing, want) => {
    expect(isExpiring(notAfter, now, failing)).toBe(want);
  });
});
