import { describe, expect, it } from 'vitest';
import { bearerMatches } from '../../src/proxy/bearer-auth.js';

describe('bearerMatches', () => {
  it.each([
    ['Bearer s3cret-token', true],
    ['bearer s3cret-token', true],
    ['BEARER   s3cret-token  ', true],
    ['Bearer s3cret-toke', false],
    ['Bearer s3cret-token2', false],
    ['Basic s3cret-token', false],
    ['s3cret-token', false],
    ['Bearer ', false],
    [undefined, false],
  ])('%s → %s', (header, ok) => expect(bearerMatches(header, 's3cret-token')).toBe(ok));

  it('never accepts an empty secret', () => {
    expect(bearerMatches('Bearer ', '')).toBe(false);
  });
});
