// .dockerignore as Docker reads it (moby/patternmatcher + its ignorefile reader), so a context
// berth sends matches what `docker build` would send:
//   - `#` at line start is a comment; lines are trimmed; a leading `!` makes an exception;
//   - patterns are cleaned like Go's filepath.Clean (`./a/../b/` -> `b`) and a leading `/` dropped;
//   - `*` and `?` never cross `/`, `**` crosses any number of folders, `[...]` is a class, `\` escapes;
//   - a pattern matching a folder matches everything below it;
//   - the last matching pattern wins.

interface Pattern {
  re: RegExp;
  exception: boolean;
}

export class DockerIgnore {
  private readonly patterns: Pattern[];
  /** Exceptions exist: an excluded folder must still be walked (a file below it may be re-included). */
  readonly hasExceptions: boolean;

  constructor(lines: string[]) {
    this.patterns = lines.flatMap((line) => {
      const p = parseLine(line);
      return p ? [p] : [];
    });
    this.hasExceptions = this.patterns.some((p) => p.exception);
  }

  static parse(text: string): DockerIgnore {
    return new DockerIgnore(text.replace(/^\uFEFF/, '').split(/\r?\n/));
  }

  /** True when `path` (relative to the context, `/`-separated) is excluded. */
  ignores(path: string): boolean {
    const parents = path.split('/').slice(0, -1);
    let matched = false;
    for (const p of this.patterns) {
      // Only a pattern that could flip the result is evaluated (last match wins).
      if (p.exception !== matched) continue;
      let hit = p.re.test(path);
      for (let i = 1; !hit && i <= parents.length; i++) hit = p.re.test(parents.slice(0, i).join('/'));
      if (hit) matched = !p.exception;
    }
    return matched;
  }
}

function parseLine(raw: string): Pattern | undefined {
  if (raw.startsWith('#')) return undefined;
  let line = raw.trim();
  if (line === '') return undefined;
  const exception = line.startsWith('!');
  if (exception) line = line.slice(1).trim();
  if (line === '') return undefined;
  line = cleanPath(line);
  if (line.length > 1 && line.startsWith('/')) line = line.slice(1);
  return { re: compile(line), exception };
}

/** Go's path.Clean: collapse `//`, drop `.`, resolve `..`, drop a trailing `/`. */
export function cleanPath(p: string): string {
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
    } else out.push(part);
  }
  const joined = out.join('/');
  if (rooted) return `/${joined}`;
  return joined === '' ? '.' : joined;
}

function compile(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') i++;
        // `**` at the end matches everything; elsewhere any number of folders, even none.
        re += i + 1 >= pattern.length ? '.*' : '(.*/)?';
      } else re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else if (ch === '\\') {
      i++;
      if (i < pattern.length) re += escapeRe(pattern[i]!);
      else re += '\\\\';
    } else if (ch === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end === -1) re += '\\[';
      else {
        // Docker hands classes to Go's regexp as written ([a-z], [^a]); so do we.
        re += `[${pattern.slice(i + 1, end)}]`;
        i = end;
      }
    } else re += escapeRe(ch);
  }
  try {
    return new RegExp(`${re}$`, 's');
  } catch {
    // A malformed class: match it literally rather than fail the build.
    return new RegExp(`^${escapeRe(pattern)}$`);
  }
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
