import { describe, expect, it } from 'vitest';
import { isValidImageReference, parseImageReference, pullArguments } from '../../src/docker/image-reference.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('image references', () => {
  it.each([
    ['nginx', { name: 'nginx' }],
    ['nginx:1.27', { name: 'nginx', tag: '1.27' }],
    ['library/nginx:1.27-alpine', { name: 'library/nginx', tag: '1.27-alpine' }],
    ['localhost:5000/blog', { name: 'localhost:5000/blog' }],
    ['registry.example.com:5000/team/blog:v2', { name: 'registry.example.com:5000/team/blog', tag: 'v2' }],
    [`ghcr.io/me/app@${DIGEST}`, { name: 'ghcr.io/me/app', digest: DIGEST }],
    [`app:1@${DIGEST}`, { name: 'app', tag: '1', digest: DIGEST }],
  ])('parses %s', (ref, expected) => {
    expect(parseImageReference(ref)).toEqual(expected);
  });

  it.each([['INVALID::ref'], ['Nginx'], ['nginx:'], [':tag'], ['a//b'], ['nginx:bad tag'], ['-lead'], ['']])(
    'refuses %j like the engine does',
    (ref) => {
      expect(isValidImageReference(ref)).toBe(false);
    },
  );

  it('accepts a full image id, which is not a repository name', () => {
    expect(isValidImageReference(DIGEST)).toBe(true);
    expect(isValidImageReference('a'.repeat(64))).toBe(true);
    expect(parseImageReference('a'.repeat(64))).toBeUndefined();
  });

  it('never pulls without a tag (the engine would pull every tag)', () => {
    expect(pullArguments({ name: 'nginx' })).toEqual({ fromImage: 'nginx', tag: 'latest' });
    expect(pullArguments({ name: 'nginx', tag: '1.27' })).toEqual({ fromImage: 'nginx', tag: '1.27' });
    expect(pullArguments({ name: 'nginx', tag: '1.27', digest: DIGEST })).toEqual({ fromImage: 'nginx', tag: DIGEST });
  });
});
