// Errors are classified where they enter berth (the adapters), into the few kinds the
// controllers act on. The reason is PascalCase and goes straight into a condition.

/** transient: retry with backoff. waiting: requeue later, not a failure of the app. stalled: stop until the spec changes or a retry is asked. */
export type ErrorKind = 'transient' | 'waiting' | 'stalled';

export class BerthError extends Error {
  readonly kind: ErrorKind;
  readonly reason: string;
  constructor(kind: ErrorKind, reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BerthError';
    this.kind = kind;
    this.reason = reason;
  }
}

export function isBerthError(e: unknown): e is BerthError {
  return e instanceof BerthError;
}

/** Classify anything thrown into a BerthError; unknown errors are transient. */
export function asBerthError(e: unknown, fallbackReason = 'Error'): BerthError {
  if (e instanceof BerthError) return e;
  if (isAbortError(e)) return new BerthError('transient', 'Aborted', 'operation aborted', { cause: e });
  const message = e instanceof Error ? e.message : String(e);
  return new BerthError('transient', fallbackReason, message, { cause: e });
}

export function isAbortError(e: unknown): boolean {
  return e instanceof Error && (e.name === 'AbortError' || (e as { code?: string }).code === 'ABORT_ERR');
}
