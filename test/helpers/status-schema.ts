// Status files must match crds/status.v1alpha1.schema.json (the status API users script against).
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
addFormats.default(ajv);
const validate = ajv.compile(JSON.parse(readFileSync(new URL('../../crds/status.v1alpha1.schema.json', import.meta.url), 'utf8')) as object);

export function expectValidStatusFile(doc: unknown): void {
  const ok = validate(doc);
  expect(ok, JSON.stringify(validate.errors, null, 2)).toBe(true);
}
