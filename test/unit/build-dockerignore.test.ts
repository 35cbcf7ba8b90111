import { describe, it, expect } from 'vitest';
import { DockerIgnore, cleanPath } from '../../src/build/dockerignore.js';

// [patterns, path, excluded] — expectations follow moby/patternmatcher (what `docker build` sends).
const cases: [string, string, boolean][] = [
  ['*.log', 'app.log', true],
  ['*.log', 'logs/app.log', false], // `*` stays in the root folder
  ['*/*.log', 'logs/app.log', true],
  ['**/*.log', 'app.log', true], // `**` matches zero folders too
  ['**/*.log', 'a/b/c/app.log', true],
  ['**/*.log', 'a/b/c/app.txt', false],
  ['node_modules', 'node_modules/x/index.js', true], // a folder pattern covers everything below
  ['node_modules', 'src/node_modules/x.js', false],
  ['**/node_modules', 'src/node_modules/x.js', true],
  ['/secret', 'secret', true], // leading slash is the context root
  ['/secret', 'a/secret', false],
  ['build/', 'build/out.o', true], // trailing slash removed by Clean
  ['build/', 'build', true],
  ['./docs/../tmp', 'tmp/x', true], // cleaned like Go's filepath.Clean
  ['a?c', 'abc', true],
  ['a?c', 'a/c', false], // `?` never crosses a slash
  ['[a-c]at', 'bat', true],
  ['[a-c]at', 'rat', false],
  ['[^a]x', 'bx', true],
  ['\\*star', '*star', true], // backslash escapes
  ['\\*star', 'xstar', false],
  ['# comment', '# comment', false],
  ['  spaced.txt  ', 'spaced.txt', true],
  ['docs/**', 'docs/a/b.md', true],
  ['docs/**', 'docs', false],
  ['file.txt', 'file_txt', false], // `.` is literal
  ['*\n!keep.log', 'keep.log', false], // an exception re-includes
  ['*\n!keep.log', 'other.log', true],
  ['*.md\n!README.md\nREADME.md', 'README.md', true], // the last match wins
  ['docs\n!docs/keep.md', 'docs/keep.md', false], // re-included below an excluded folder
  ['docs\n!docs/keep.md', 'docs/drop.md', true],
  ['!   keep', 'keep', false],
  ['', 'anything', false],
];

describe('.dockerignore matching', () => {
  it.each(cases)('%j applied to %j excludes it: %s', (patterns, path, excluded) => {
    expect(DockerIgnore.parse(patterns).ignores(path)).toBe(excluded);
  });

  it('knows when an excluded folder must still be walked', () => {
    expect(DockerIgnore.parse('docs\n').hasExceptions).toBe(false);
    expect(DockerIgnore.parse('docs\n!docs/a\n').hasExceptions).toBe(true);
  });

  it('ignores a byte-order mark and CRLF line ends', () => {
    const m = DockerIgnore.parse('\uFEFF*.tmp\r\nsecret\r\n');
    expect(m.ignores('x.tmp')).toBe(true);
    expect(m.ignores('secret')).toBe(true);
  });

  it.each([
    ['a//b/', 'a/b'],
    ['./a', 'a'],
    ['a/../../b', '../b'],
    ['/../a', '/a'],
    ['.', '.'],
  ])('cleans %j to %j', (input, out) => {
    expect(cleanPath(input)).toBe(out);
  });
});
