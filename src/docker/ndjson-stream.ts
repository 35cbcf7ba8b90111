// Docker streams events, pull and build progress as newline-delimited JSON, but one chunk can
// hold several lines or part of one, and a line is not guaranteed to be JSON (dockerode's
// followProgress throws an uncaught exception on such a line). So we split and parse ourselves.
import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';
import { BerthError } from '../../controllers/ports/errors.js';
import { abortReason } from './classify-docker-error.js';

/** Splits a byte stream into lines; keeps the unfinished tail (and split UTF-8 sequences) for the next chunk. */
export class NdjsonSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private rest = '';

  /** The complete, non-blank lines in this chunk, without line endings. */
  push(chunk: Buffer | string): string[] {
    const text = this.rest + (typeof chunk === 'string' ? chunk : this.decoder.write(chunk));
    const parts = text.split('\n');
    this.rest = parts.pop() ?? '';
    return clean(parts);
  }

  /** What is left once the stream has ended (a last line without a newline). */
  flush(): string[] {
    const last = this.rest + this.decoder.end();
    this.rest = '';
    return clean([last]);
  }
}

function clean(lines: string[]): string[] {
  const out: string[] = [];
  for (const line of lines) {
    const trimmed = line.trim();
    if (trimmed !== '') out.push(trimmed);
  }
  return out;
}

/** The JSON object on a line, or undefined when the line is not a JSON object. Never throws. */
export function parseJsonLine(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reads a stream of NDJSON to its end, calling onLine for every line (parsed is undefined for a
 * non-JSON line). Resolves on a clean end; rejects when the stream fails, closes early
 * (DockerUnavailable: the engine went away mid-stream) or the signal aborts (the stream is destroyed).
 */
export function readNdjson(
  stream: Readable,
  onLine: (raw: string, parsed: Record<string, unknown> | undefined) => void,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const splitter = new NdjsonSplitter();
    let settled = false;
    const settle = (error?: Error): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (error === undefined) resolve();
      else reject(error);
    };
    const emit = (lines: string[]): void => {
      for (const raw of lines) {
        try {
          onLine(raw, parseJsonLine(raw));
        } catch (e) {
          stream.destroy();
          settle(e instanceof Error ? e : new Error(String(e)));
          return;
        }
      }
    };
    const onAbort = (): void => {
      stream.destroy();
      if (signal) settle(abortReason(signal));
    };
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    stream.on('data', (chunk: Buffer | string) => emit(splitter.push(chunk)));
    stream.once('end', () => {
      emit(splitter.flush());
      settle();
    });
    stream.once('error', (e) => settle(e));
    stream.once('close', () =>
      settle(new BerthError('transient', 'DockerUnavailable', 'the Docker engine closed the stream before it finished')),
    );
  });
}
