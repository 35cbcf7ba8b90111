// Generates src/api/types.generated.ts from the JSON Schemas in crds/ (the single source of truth).
// `node scripts/gen-types.mjs --check` exits 1 when the committed file is stale.
//
// The types describe objects *after* validation with defaults applied, which is what the code
// consumes: a property with a default is required in the type. `oneOf` only constrains which of
// two optional properties is set, so it is dropped here (json-schema-to-typescript would turn it
// into an index-signature intersection), and keywords beside a $ref are dropped so a default on
// a reference does not spawn a duplicate interface.
import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { compile } from 'json-schema-to-typescript';

const root = new URL('../', import.meta.url);
const out = new URL('src/api/types.generated.ts', root);

function resolved(node) {
  if (Array.isArray(node)) return node.map(resolved);
  if (!node || typeof node !== 'object') return node;
  if (node.$ref) return { $ref: node.$ref };
  const out = {};
  for (const [k, v] of Object.entries(node)) if (k !== 'oneOf') out[k] = resolved(v);
  if (node.properties) {
    const withDefault = Object.keys(node.properties).filter((k) => 'default' in node.properties[k]);
    out.required = [...new Set([...(node.required ?? []), ...withDefault])];
  }
  return out;
}

export async function generate() {
  const files = readdirSync(new URL('crds/', root)).filter((f) => f.endsWith('.schema.json')).sort();
  let text = '/* Generated from crds/*.schema.json by scripts/gen-types.mjs. Do not edit. */\n';
  for (const f of files) {
    const schema = resolved(JSON.parse(readFileSync(new URL(`crds/${f}`, root), 'utf8')));
    const ts = await compile(schema, schema.title, {
      bannerComment: '',
      additionalProperties: false,
      strictIndexSignatures: true,
      unreachableDefinitions: true,
      declareExternallyReferenced: true,
      format: true,
      ignoreMinAndMaxItems: true,
      style: { singleQuote: true, printWidth: 110 },
    });
    text += `\n// ${f}\n${ts}`;
  }
  return text;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop())) {
  const text = await generate();
  if (process.argv.includes('--check')) {
    if (readFileSync(out, 'utf8') !== text) {
      console.error('src/api/types.generated.ts is stale: run npm run gen:types');
      process.exit(1);
    }
  } else {
    writeFileSync(out, text);
  }
}
