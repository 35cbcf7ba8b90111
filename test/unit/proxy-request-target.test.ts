import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { declaredBodyLength, hasDotSegment, isBerthPath, isNavigation } from '../../src/proxy/request-target.js';

const req = (method: string, headers: Record<string, string>) => ({ method, headers }) as unknown as IncomingMessage;

describe('request target checks', () => {
  it.each([
    ['/a/../admin', true],
    ['/a/./b', true],
    ['/..', true],
    ['/a/%2e%2E/admin', true],
    ['/a/.%2e', true],
    ['/.well-known/acme-challenge/x', false],
    ['/a/..b/c', false],
    ['/file.txt', false],
    ['/search?q=/../x', false],
    ['/%2Fencoded', false],
  ])('dot segment in %s: %s', (target, yes) => expect(hasDotSegment(target)).toBe(yes));

  it.each([
    ['/_berth', true],
    ['/_berth/webhook', true],
    ['/_berth?x', true],
    ['/_berthday', false],
    ['/x/_berth', false],
  ])('%s is reserved: %s', (target, yes) => expect(isBerthPath(target)).toBe(yes));

  it('knows declared body lengths', () => {
    expect(declaredBodyLength(req('GET', {}))).toBe(0);
    expect(declaredBodyLength(req('POST', { 'content-length': '12' }))).toBe(12);
    expect(declaredBodyLength(req('POST', { 'transfer-encoding': 'chunked' }))).toBeUndefined();
  });

  it('tells browser navigations from API calls', () => {
    const html = 'text/html,application/xhtml+xml,*/*;q=0.8';
    expect(isNavigation(req('GET', { accept: html, 'sec-fetch-mode': 'navigate' }))).toBe(true);
    expect(isNavigation(req('GET', { accept: html }))).toBe(true);
    expect(isNavigation(req('GET', { accept: html, 'sec-fetch-mode': 'cors' }))).toBe(false);
    expect(isNavigation(req('GET', { accept: 'application/json' }))).toBe(false);
    expect(isNavigation(req('POST', { accept: html }))).toBe(false);
    expect(isNavigation(req('GET', {}))).toBe(false);
  });
});
