// The kinds berth understands, each validated by its JSON Schema from crds/ (the single
// source of truth). Validation applies the schema defaults in place.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { packageRoot } from '../util/package-root.js';
import type { App, AppRevision, GitRepository } from './types.generated.js';

export const API_VERSION = 'berth.dev/v1alpha1';

export const KINDS = {
  App: 'app.v1alpha1.schema.json',
  GitRepository: 'gitrepository.v1alpha1.schema.json',
  AppRevision: 'apprevision.v1alpha1.schema.json',
} as const;

export type Kind = keyof typeof KINDS;
export type ObjectOfKind = { App: App; GitRepository: GitRepository; AppRevision: AppRevision };
export type AnyObject = App | GitRepository | AppRevision;

export function isKind(kind: unknown): kind is Kind {
  return typeof kind === 'string' && Object.hasOwn(KINDS, kind);
}

export interface CompiledKind {
  validate: ValidateFunction;
  schema: Record<string, unknown>;
}

let compiled: Map<Kind, CompiledKind> | undefined;

export function schemaFor(kind: Kind): CompiledKind {
  if (!compiled) {
    const ajv = new Ajv2020({ allErrors: true, useDefaults: true, strict: true, strictRequired: false, allowUnionTypes: true, verbose: true });
    addFormats.default(ajv);
    compiled = new Map();
    for (const [k, file] of Object.entries(KINDS) as [Kind, string][]) {
      const schema = JSON.parse(readFileSync(join(packageRoot, 'crds', file), 'utf8')) as Record<string, unknown>;
      compiled.set(k, { validate: ajv.compile(schema), schema });
    }
  }
  return compiled.get(kind)!;
}

export type { ErrorObject };
