// Engine failures become BerthErrors here, once, so the controllers only see the few kinds
// they act on. docker-modem errors carry statusCode and json.message; socket failures carry a
// Node error code; stream errors (pull, build) carry only text.
import { BerthError, asBerthError, isAbortError } from '../../controllers/ports/errors.js';

/** What the adapter was doing: the same status means different things for a pull, a build or a create. */
export type DockerOperation = 'create' | 'pull' | 'build' | 'other';

/** Socket-level failures: the engine cannot be reached (down, restarting, wrong path, no permission). */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'ECONNRESET',
  'EPIPE',
  'EACCES',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

interface EngineErrorShape {
  statusCode?: unknown;
  code?: unknown;
  json?: unknown;
  message?: unknown;
}

/** The HTTP status the engine answered with, if it answered at all. */
export function engineStatus(e: unknown): number | undefined {
  const status = (e as EngineErrorShape | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/** 304: starting a started container or stopping a stopped one; success for berth. */
export function isNotModified(e: unknown): boolean {
  return engineStatus(e) === 304;
}

/** The engine's own words, without docker-modem's "(HTTP code 404) no such container - " prefix. */
export function engineMessage(e: unknown): string {
  const shape = (e ?? {}) as EngineErrorShape;
  const json = shape.json as { message?: unknown } | null | undefined;
  if (json && typeof json.message === 'string' && json.message !== '') return json.message;
  const message = typeof shape.message === 'string' ? shape.message : String(e);
  return message.replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
}

/** Why the signal aborted, as an Error (an AbortSignal's reason can be anything). */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new DOMException('This operation was aborted', 'AbortError');
}

export function classifyDockerError(e: unknown, op: DockerOperation = 'other'): BerthError {
  if (e instanceof BerthError) return e;
  if (e instanceof Error && e.name === 'TimeoutError') {
    return new BerthError('transient', 'Timeout', 'the Docker operation timed out', { cause: e });
  }
  if (isAbortError(e)) return asBerthError(e);
  const status = engineStatus(e);
  const code = (e as EngineErrorShape | null)?.code;
  const message = engineMessage(e);
  if (status === undefined && ((typeof code === 'string' && UNAVAILABLE_CODES.has(code)) || /socket hang up/i.test(message))) {
    return new BerthError('transient', 'DockerUnavailable', `cannot reach the Docker engine: ${message}`, { cause: e });
  }
  if (/invalid reference format/i.test(message)) {
    return new BerthError('stalled', 'InvalidImageName', message, { cause: e });
  }
  if (op === 'build') return new BerthError('stalled', 'BuildFailed', message, { cause: e });
  if (op === 'pull') return new BerthError('transient', 'ImagePullFailed', message, { cause: e });
  if (status === 404) {
    // A create with a missing image answers 404 "no such container"; only the message says it is the image.
    if (/no such image/i.test(message)) return new BerthError('waiting', 'ImageNotFound', message, { cause: e });
    return new BerthError('waiting', 'NotFound', message, { cause: e });
  }
  if (status === 409) return new BerthError('waiting', 'Conflict', message, { cause: e });
  // A create the engine refuses as malformed fails the same way every time.
  if (status === 400 && op === 'create') return new BerthError('stalled', 'InvalidContainerSpec', message, { cause: e });
  return new BerthError('transient', 'DockerError', message, { cause: e });
}
