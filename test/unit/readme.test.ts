// The README is the user's manual: it must name every flag, every manifest field and every
// phase, so a new one cannot ship undocumented.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { OPTIONS } from '../../src/config/options.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const schema = (f: string) => JSON.parse(readFileSync(new URL(`../../crds/${f}`, import.meta.url), 'utf8')) as Record<string, unknown>;

function deref(root: Record<string, unknown>, node: Record<string, unknown>): Record<string, unknown> {
  const ref = node.$ref as string | undefined;
  return ref ? deref(root, ref.slice(2).split('/').reduce<Record<string, unknown>>((n, k) => n[k] as Record<string, unknown>, root)) : node;
}

/** Dotted field paths of a JSON Schema (arrays as name[]), following local $refs. */
function fields(root: Record<string, unknown>, node: Record<string, unknown> = root, prefix = ''): string[] {
  if (node.$ref !== undefined) return fields(root, deref(root, node), prefix);
  if (node.type === 'array' && node.items) {
    const items = deref(root, node.items as Record<string, unknown>);
    // Lists of objects document their fields (routes[].host); lists of scalars are one field.
    return items.properties !== undefined ? fields(root, items, `${prefix}[]`) : [prefix];
  }
  const props = node.properties as Record<string, Record<string, unknown>> | undefined;
  if (!props) return prefix ? [prefix] : [];
  return Object.entries(props).flatMap(([k, v]) => {
    const path = prefix ? `${prefix}.${k}` : k;
    const nested = fields(root, v, path);
    return v.additionalProperties !== undefined && typeof v.additionalProperties === 'object' ? [path] : nested;
  });
}

describe('the README', () => {
  it('starts with the two commands a newcomer needs', () => {
    const top = readme.split('\n').slice(0, 8).join('\n');
    expect(top).toMatch(/npm install && npm start/);
    expect(top).toMatch(/npm test/);
  });

  it('documents every berth run flag with its variable', () => {
    for (const o of OPTIONS) expect(readme, `--${o.flag}`).toContain(`| \`--${o.flag}\` | \`${o.env}\` |`);
  });

  it('documents every field of App and GitRepository', () => {
    const app = fields(schema('app.v1alpha1.schema.json')).filter((f) => f.startsWith('metadata.') || f.startsWith('spec.'));
    const repo = fields(schema('gitrepository.v1alpha1.schema.json')).filter((f) => f.startsWith('spec.'));
    expect(app.length).toBeGreaterThan(30);
    for (const f of [...app, ...repo]) expect(readme, f).toContain(`\`${f}\``);
  });

  it('documents every phase', () => {
    const status = schema('status.v1alpha1.schema.json') as { $defs: { AppStatus: { properties: { phase: { enum: string[] } } } } };
    for (const p of status.$defs.AppStatus.properties.phase.enum) expect(readme, p).toContain(`| \`${p}\` |`);
  });
});
