// Map a JSON path (as ajv reports it) back to the YAML node that produced it, so every
// problem points at file:line:col of the offending node, not just the document.
import { isMap, isSeq, isPair, isScalar, type Document, type LineCounter, type Node } from 'yaml';

export interface Position {
  line: number;
  col: number;
}

/** Decode an ajv instancePath ("/spec/routes/0/host", with ~1 and ~0 escapes) into segments. */
export function pointerSegments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

interface Located {
  node: Node | null;
  /** The key of the pair holding `node`, when it is a map value. */
  key: Node | null;
}

/** Walk the document along `segments`; stops at the deepest node that exists. */
export function locate(doc: Document, segments: string[]): Located {
  let node = doc.contents;
  let key: Node | null = null;
  for (const seg of segments) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && keyText(p.key) === seg);
      if (!pair) break;
      key = (pair.key as Node | null) ?? null;
      node = (pair.value as Node | null) ?? null;
    } else if (isSeq(node)) {
      const item = node.items[Number(seg)];
      if (item === undefined) break;
      key = null;
      node = item as Node;
    } else {
      break;
    }
  }
  return { node, key };
}

/** The key node of property `prop` in the map at `segments` (for unknown-field errors). */
export function locateKey(doc: Document, segments: string[], prop: string): Node | null {
  const { node } = locate(doc, segments);
  if (!isMap(node)) return null;
  const pair = node.items.find((p) => isPair(p) && keyText(p.key) === prop);
  return (pair?.key as Node | null) ?? null;
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return undefined;
}

export function positionOf(node: Node | null | undefined, lc: LineCounter, fallback: Position): Position {
  const offset = node?.range?.[0];
  if (offset === undefined) return fallback;
  const { line, col } = lc.linePos(offset);
  return { line, col };
}
