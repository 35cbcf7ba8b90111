// One logger for the process: JSON lines on stdout (pretty on a TTY), child loggers per
// component and app, and secret values scrubbed in one place before anything is written.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

const REDACTED = '[redacted]';
const secretValues = new Set<string>();

/** Registers a secret value: from now on it is replaced by [redacted] wherever it would be logged. */
export function registerSecretValue(value: string): void {
  // Very short values would redact ordinary words; secrets shorter than 4 chars are rejected on set.
  if (value.length >= 4) secretValues.add(value);
}

export function scrub(text: string): string {
  let out = text;
  for (const v of secretValues) if (out.includes(v)) out = out.split(v).join(REDACTED);
  return out;
}

function scrubDeep(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrub(value);
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return { type: value.name, message: scrub(value.message), stack: value.stack && scrub(value.stack) };
  if (Array.isArray(value)) return value.map((v) => scrubDeep(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = scrubDeep(v, depth + 1);
  return out;
}

export interface LoggerOptions {
  level: LevelWithSilent;
  /** Pretty, human-readable lines (default: when stdout is a TTY). */
  pretty?: boolean;
}

export function createLogger(opts: LoggerOptions): Logger {
  const pretty = opts.pretty ?? process.stdout.isTTY === true;
  return pino({
    level: opts.level,
    base: { svc: 'berth' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['secret', 'token', 'value', 'headers.authorization', '*.authorization'], censor: REDACTED },
    hooks: {
      logMethod(args, method) {
        if (secretValues.size === 0) return method.apply(this, args);
        return method.apply(this, args.map((a) => scrubDeep(a)) as Parameters<typeof method>);
      },
    },
    ...(pretty
      ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,svc' } } }
      : {}),
  });
}

/** A logger that drops everything (tests, CLI commands that do not run the operator). */
export const silentLogger: Logger = pino({ level: 'silent' });
