// Durations ("90s", "5m", "1h30m") and memory sizes ("512m", "1g", "256Mi") as written in
// manifests. The schema patterns guarantee the shape; these turn them into numbers.

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(text: string): number {
  let total = 0;
  let matched = '';
  for (const m of text.matchAll(/([0-9]+)(ms|s|m|h|d)/g)) {
    total += Number(m[1]) * (DURATION_UNITS[m[2]!] ?? NaN);
    matched += m[0];
  }
  if (matched !== text || !Number.isFinite(total)) throw new Error(`invalid duration ${JSON.stringify(text)}`);
  return total;
}

const MEMORY_UNITS: Record<string, number> = {
  '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, ki: 1024, mi: 1024 ** 2, gi: 1024 ** 3,
};

/** Docker's units are binary: 512m = 512 MiB. */
export function parseMemory(text: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)([a-zA-Z]*)$/.exec(text);
  const unit = m ? MEMORY_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`invalid memory size ${JSON.stringify(text)}`);
  return Math.floor(Number(m[1]) * unit);
}

/** Docker refuses memory limits below 6 MiB. */
export const MIN_MEMORY_BYTES = 6 * 1024 ** 2;
