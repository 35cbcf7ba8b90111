// From a manifest file's bytes to validated, defaulted objects — or to problems that each
// point at file:line:col of the offending node. Hostile input (huge files, alias bombs,
// absurd nesting, non-mapping documents) is refused before it can hurt the process.
import { open } from 'node:fs/promises';
import { parseAllDocuments, LineCounter, isMap, isScalar, isCollection, isPair, type Document, type Node } from 'yaml';
import { API_VERSION, KINDS, isKind, schemaFor, type AnyObject, type Kind } from '../api/schemas.js';
import { MIN_MEMORY_BYTES, parseMemory } from '../api/quantities.js';
import { hashOf } from '../util/canonical-hash.js';
import { locate, locateKey, pointerSegments, positionOf, type Position } from './yaml-position.js';
import { schemaMessage, oneOfMessage, dottedPath } from './schema-messages.js';
import type { ErrorObject } from 'ajv';

export const MAX_FILE_BYTES = 1024 * 1024;
const MAX_ALIAS_EXPANSIONS = 100;
const MAX_FLOW_DEPTH = 64;
const MAX_INDENT = 256;
const MAX_NODE_DEPTH = 64;
const MAX_DOCUMENTS = 256;

/** Condition reasons a manifest problem can carry (DESIGN.md): InvalidSpec covers every parse and schema error. */
export type ProblemReason = 'InvalidSpec' | 'DuplicateName' | 'RouteConflict' | 'ForbiddenHostPath';

export interface Problem {
  file: string;
  line: number;
  col: number;
  reason: ProblemReason;
  message: string;
  /** The object the problem belongs to, when its kind and name could be read. */
  kind?: Kind;
  name?: string;
}

export interface LoadedObject {
  kind: Kind;
  name: string;
  /** Validated, with schema defaults applied. */
  object: AnyObject;
  /** Hash of what matters for reconciling (spec and labels), stable across key order and comments. */
  specHash: string;
  file: string;
  line: number;
  col: number;
}

export interface FileLoad {
  file: string;
  objects: LoadedObject[];
  problems: Problem[];
  /**
   * False when the file could not be read as a whole (syntax error, too large, unreadable):
   * then nothing that was defined in it may be removed, since its content is unknown.
   */
  complete: boolean;
}

export function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.message}`;
}

export async function loadManifestFile(file: string, displayPath = file): Promise<FileLoad> {
  let text: string;
  try {
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      if (size > MAX_FILE_BYTES) return fileProblem(displayPath, `file is ${size} bytes; manifests are limited to ${MAX_FILE_BYTES} bytes (1 MiB)`);
      // Read at most one byte past the limit: the file may grow between stat and read.
      const buf = Buffer.alloc(Math.min(size, MAX_FILE_BYTES) + 1);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      if (bytesRead > MAX_FILE_BYTES) return fileProblem(displayPath, `file is larger than ${MAX_FILE_BYTES} bytes (1 MiB)`);
      text = buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await fh.close();
    }
  } catch (e) {
    return fileProblem(displayPath, `cannot read file: ${(e as Error).message}`);
  }
  return loadManifestText(displayPath, text);
}

export function loadManifestText(file: string, text: string): FileLoad {
  if (Buffer.byteLength(text) > MAX_FILE_BYTES) return fileProblem(file, `file is larger than ${MAX_FILE_BYTES} bytes (1 MiB)`);
  const tooDeep = scanNesting(text);
  if (tooDeep) return fileProblem(file, tooDeep.message, tooDeep);
  const lc = new LineCounter();
  let docs: Document.Parsed[];
  try {
    docs = parseAllDocuments(text, { lineCounter: lc, merge: true, uniqueKeys: true, prettyErrors: true }) as Document.Parsed[];
  } catch (e) {
    return fileProblem(file, `cannot parse YAML: ${(e as Error).message}`);
  }
  if (!Array.isArray(docs)) return { file, objects: [], problems: [], complete: true };
  if (docs.length > MAX_DOCUMENTS) return fileProblem(file, `${docs.length} documents in one file; at most ${MAX_DOCUMENTS}`);

  const result: FileLoad = { file, objects: [], problems: [], complete: true };
  for (const doc of docs) loadDocument(file, doc, lc, result);
  return result;
}

function loadDocument(file: string, doc: Document.Parsed, lc: LineCounter, out: FileLoad): void {
  const start = positionOf(doc.contents, lc, { line: 1, col: 1 });
  const problem = (message: string, pos: Position = start, id?: { kind?: Kind; name?: string }) => {
    // An invalid document whose object cannot be identified might be any object the file
    // held before: nothing from this file may be removed until it is fixed.
    if (id?.kind === undefined || id.name === undefined) out.complete = false;
    out.problems.push({ file, ...pos, reason: 'InvalidSpec', message, ...id });
  };

  if (doc.errors.length > 0) {
    // A syntax error makes the whole file's content unknown.
    out.complete = false;
    for (const e of doc.errors) {
      const pos = e.linePos?.[0] ?? start;
      problem(e.code === 'DUPLICATE_KEY' ? `duplicate key: ${firstLine(e.message)}` : `YAML syntax error: ${firstLine(e.message)}`, pos);
    }
    return;
  }
  if (doc.contents && nodeDepth(doc.contents) > MAX_NODE_DEPTH) {
    out.complete = false;
    return void problem(`nested more than ${MAX_NODE_DEPTH} levels deep`);
  }

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_EXPANSIONS });
  } catch (e) {
    out.complete = false;
    const msg = e instanceof ReferenceError && /alias/i.test(e.message)
      ? `too many alias expansions (more than ${MAX_ALIAS_EXPANSIONS}): refusing a possible alias bomb`
      : `cannot read YAML: ${(e as Error).message}`;
    return void problem(msg);
  }
  if (data === null || data === undefined) return; // an empty document (comments only, a trailing ---)
  if (!isMap(doc.contents) || typeof data !== 'object' || Array.isArray(data)) {
    return void problem(`a manifest must be a mapping with apiVersion, kind, metadata and spec (got ${Array.isArray(data) ? 'a list' : typeof data})`);
  }
  const obj = data as Record<string, unknown>;
  const id = identify(obj);

  if (obj.kind === undefined) return void problem('missing "kind" (one of App, GitRepository, AppRevision)', start, id);
  if (!isKind(obj.kind)) {
    const pos = positionOf(locate(doc, ['kind']).node, lc, start);
    return void problem(`unknown kind ${JSON.stringify(obj.kind)}; berth knows ${Object.keys(KINDS).join(', ')}`, pos, id);
  }
  if (obj.apiVersion !== API_VERSION) {
    const pos = positionOf(locate(doc, ['apiVersion']).node, lc, start);
    return void problem(`apiVersion must be ${API_VERSION} (got ${JSON.stringify(obj.apiVersion ?? null)})`, pos, id);
  }

  const { validate } = schemaFor(obj.kind);
  if (!validate(obj)) {
    for (const { message, segments, keyNode } of schemaProblems(validate.errors ?? [], obj)) {
      const node = keyNode ? locateKey(doc, segments, keyNode) : locate(doc, segments).node;
      problem(message, positionOf(node, lc, start), id);
    }
    return;
  }
  const semantic = semanticProblems(obj.kind, obj);
  if (semantic.length > 0) {
    for (const s of semantic) problem(`${dottedPath(s.segments)}: ${s.message}`, positionOf(locate(doc, s.segments).node, lc, start), id);
    return;
  }
  const object = obj as unknown as AnyObject;
  out.objects.push({ kind: obj.kind, name: object.metadata.name, object, specHash: specHash(object), file, ...start });
}

/** What a change of means a new generation: the spec, and labels (they are copied to containers). */
export function specHash(object: AnyObject): string {
  const labels = 'labels' in object.metadata ? object.metadata.labels : undefined;
  return hashOf({ labels, spec: object.spec });
}

function identify(obj: Record<string, unknown>): { kind?: Kind; name?: string } {
  const meta = obj.metadata as Record<string, unknown> | undefined;
  const name = typeof meta?.name === 'string' && /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(meta.name) ? meta.name : undefined;
  return { ...(isKind(obj.kind) ? { kind: obj.kind } : {}), ...(name !== undefined ? { name } : {}) };
}

interface SchemaProblem {
  message: string;
  segments: string[];
  /** For an unknown field: point at its key, which exists, rather than the parent. */
  keyNode?: string;
}

function schemaProblems(errors: ErrorObject[], data: unknown): SchemaProblem[] {
  // oneOf failures come with the errors of every branch; report the oneOf alone.
  const oneOfPaths = errors.filter((e) => e.keyword === 'oneOf').map((e) => e.schemaPath);
  const out: SchemaProblem[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (e.keyword !== 'oneOf' && oneOfPaths.some((p) => e.schemaPath.startsWith(`${p}/`))) continue;
    // A bad key is reported once, as "invalid key", not also by the rule inside propertyNames.
    if (e.keyword !== 'propertyNames' && e.propertyName !== undefined) continue;
    const segments = pointerSegments(e.instancePath);
    let problem: SchemaProblem;
    if (e.keyword === 'oneOf') {
      const branches = ((e.parentSchema as { oneOf?: { required?: string[] }[] }).oneOf ?? []).map((b) => b.required ?? []);
      problem = { message: oneOfMessage(segments, branches, (e.params as { passingSchemas?: unknown }).passingSchemas), segments };
    } else if (e.keyword === 'propertyNames') {
      const prop = String((e.params as { propertyName: string }).propertyName);
      problem = { message: schemaMessage(e, segments, undefined), segments, keyNode: prop };
    } else if (e.keyword === 'additionalProperties') {
      const prop = String((e.params as { additionalProperty: string }).additionalProperty);
      problem = { message: schemaMessage(e, segments, undefined), segments, keyNode: prop };
    } else {
      problem = { message: schemaMessage(e, segments, valueAt(data, segments)), segments };
    }
    if (!seen.has(problem.message)) {
      seen.add(problem.message);
      out.push(problem);
    }
  }
  return out;
}

function valueAt(data: unknown, segments: string[]): unknown {
  let v = data;
  for (const s of segments) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[s] : undefined;
  return v;
}

/** Rules a JSON Schema cannot express. */
function semanticProblems(kind: Kind, obj: Record<string, unknown>): { segments: string[]; message: string }[] {
  if (kind !== 'App') return [];
  const out: { segments: string[]; message: string }[] = [];
  const spec = obj.spec as {
    resources: { memory: string };
    volumes?: { name?: string; hostPath?: string; mountPath: string; reclaimPolicy?: string }[];
    env?: Record<string, unknown>;
    secretEnv?: string[];
  };
  if (parseMemory(spec.resources.memory) < MIN_MEMORY_BYTES) {
    out.push({ segments: ['spec', 'resources', 'memory'], message: `${spec.resources.memory} is below Docker's minimum of 6m` });
  }
  const mounts = new Set<string>();
  const names = new Set<string>();
  spec.volumes?.forEach((v, i) => {
    const mount = v.mountPath.replace(/\/+$/, '') || '/';
    if (mounts.has(mount)) out.push({ segments: ['spec', 'volumes', String(i), 'mountPath'], message: `${v.mountPath} is mounted twice` });
    mounts.add(mount);
    if (v.name !== undefined) {
      if (names.has(v.name)) out.push({ segments: ['spec', 'volumes', String(i), 'name'], message: `volume "${v.name}" is listed twice` });
      names.add(v.name);
    }
  });
  spec.secretEnv?.forEach((k, i) => {
    if (spec.env && Object.hasOwn(spec.env, k)) {
      out.push({ segments: ['spec', 'secretEnv', String(i)], message: `${k} is also set in env; a variable comes from one place` });
    }
  });
  return out;
}

/**
 * Cheap guard run before the YAML parser: absurd flow nesting ("[[[[…") aborts the whole
 * process inside the parser (a fatal out-of-memory, not an exception), so it must never
 * reach it. Counting brackets ignores quoting on purpose: no real manifest nests 64 deep.
 */
function scanNesting(text: string): (Position & { message: string }) | undefined {
  let depth = 0;
  let line = 1;
  let col = 0;
  let indent = 0;
  let atLineStart = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    col++;
    if (c === 10) {
      line++;
      col = 0;
      indent = 0;
      atLineStart = true;
      continue;
    }
    if (atLineStart) {
      if (c === 32) {
        if (++indent > MAX_INDENT) return { line, col, message: `indented more than ${MAX_INDENT} columns` };
        continue;
      }
      atLineStart = false;
    }
    if (c === 91 || c === 123) {
      if (++depth > MAX_FLOW_DEPTH) return { line, col, message: `nested more than ${MAX_FLOW_DEPTH} levels deep` };
    } else if ((c === 93 || c === 125) && depth > 0) {
      depth--;
    }
  }
  return undefined;
}

function nodeDepth(root: Node): number {
  let max = 0;
  const stack: [unknown, number][] = [[root, 1]];
  while (stack.length > 0) {
    const [n, d] = stack.pop()!;
    if (d > max) max = d;
    if (isCollection(n)) for (const item of n.items) stack.push(isPair(item) ? [item.value, d + 1] : [item, d + 1]);
    else if (isScalar(n)) continue;
  }
  return max;
}

function fileProblem(file: string, message: string, pos: Position = { line: 1, col: 1 }): FileLoad {
  return { file, objects: [], problems: [{ file, line: pos.line, col: pos.col, reason: 'InvalidSpec', message }], complete: false };
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}
