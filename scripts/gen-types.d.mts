// Types for scripts/gen-types.mjs (used by the drift test).
export function generate(): Promise<string>;
