// Turn ajv errors into messages a person can act on: the field as a dotted path, what is
// wrong with it, and for a typo the field that was probably meant.
import type { ErrorObject } from 'ajv';

/** Friendly explanations of the schema's patterns, keyed by the property the pattern is on. */
const PATTERN_HINTS: Record<string, string> = {
  name: 'a DNS label: lower-case letters, digits and "-", starting and ending with a letter or digit, at most 63 characters',
  host: 'a lower-case host name such as app.example.com or a wildcard such as *.example.com',
  image: 'an image reference such as nginx:1.27 or registry.local:5000/team/app@sha256:…',
  path: 'an absolute path starting with /',
  memory: 'a size such as 512m, 1g or 256Mi',
  after: 'a duration such as 90s, 5m or 1h30m',
  wakeTimeout: 'a duration such as 90s, 5m or 1h30m',
  interval: 'a duration such as 90s, 5m or 1h30m',
  url: 'a clone URL starting with https://, ssh://, git@ or file://',
  branch: 'a branch name',
  hostPath: 'an absolute host path',
  mountPath: 'an absolute path inside the container',
  commit: 'a full 40-character commit id',
};

export function dottedPath(segments: string[]): string {
  let out = '';
  for (const s of segments) out += /^[0-9]+$/.test(s) ? `[${s}]` : out === '' ? s : `.${s}`;
  return out;
}

export function schemaMessage(e: ErrorObject, segments: string[], value: unknown): string {
  const where = dottedPath(segments);
  const at = where === '' ? '' : `${where}: `;
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return `${at}unknown field "${String(p.additionalProperty)}"${suggest(String(p.additionalProperty), e.parentSchema)}`;
    case 'required':
      return `${at}missing required field "${String(p.missingProperty)}"`;
    case 'type':
      return `${at}must be ${String(p.type).replace(/,/g, ' or ')} (got ${describe(value)})`;
    case 'enum':
      return `${at}must be one of ${(p.allowedValues as unknown[]).map((v) => String(v)).join(', ')} (got ${describe(value)})`;
    case 'const':
      return `${at}must be ${JSON.stringify(p.allowedValue)} (got ${describe(value)})`;
    case 'pattern': {
      const prop = segments.filter((s) => !/^[0-9]+$/.test(s)).at(-1) ?? '';
      const hint = PATTERN_HINTS[prop];
      return `${at}${describe(value)} is not valid${hint ? `: must be ${hint}` : ` (must match ${String(p.pattern)})`}`;
    }
    case 'propertyNames': {
      const key = String(p.propertyName);
      return `${at}invalid key ${JSON.stringify(key)}${key.startsWith('dev.berth.') ? ' (keys starting with dev.berth. are reserved for berth)' : ''}`;
    }
    case 'uniqueItems':
      return `${at}must not contain duplicates (items ${String(p.j)} and ${String(p.i)} are equal)`;
    default:
      return `${at}${e.message ?? e.keyword}`;
  }
}

/** For a oneOf of `required` branches: "exactly one of image or build". */
export function oneOfMessage(segments: string[], branches: string[][], passing: unknown): string {
  const where = dottedPath(segments);
  const names = branches.map((b) => b.join('+'));
  const list = names.length === 2 ? `${names[0]} or ${names[1]}` : names.join(', ');
  const both = Array.isArray(passing) && passing.length > 1;
  return `${where === '' ? '' : `${where}: `}${both ? `set only one of ${list}, not both` : `exactly one of ${list} is required`}`;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${value}`;
  return typeof value;
}

function suggest(field: string, parentSchema: unknown): string {
  const props = Object.keys((parentSchema as { properties?: object } | undefined)?.properties ?? {});
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const p of props) {
    const d = distance(field.toLowerCase(), p.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [p, d];
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(field.length / 3)) ? ` (did you mean "${best}"?)` : '';
}

/** Levenshtein distance; the strings are short field names. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
