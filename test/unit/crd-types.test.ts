import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';

describe('the TypeScript types of the API', () => {
  it('are exactly what scripts/gen-types.mjs generates from crds/ (run npm run gen:types after a schema change)', async () => {
    const { generate } = await import('../../scripts/gen-types.mjs');
    const committed = readFileSync(new URL('../../src/api/types.generated.ts', import.meta.url), 'utf8');
    expect(committed).toBe(await generate());
  });
});
