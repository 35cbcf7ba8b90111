// Builds one app image from a folder: tag berth/<app>:<rev12>, ownership labels, a hard
// timeout, failure read from the progress stream (the engine answers 200 for a failed RUN),
// and a bounded log per build kept under <state>/builds/<app>/ for `berth logs NAME --build`.
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../../controllers/ports/clock.js';
import { systemClock } from '../../controllers/ports/clock.js';
import type { ContainerRuntime } from '../../controllers/ports/container-runtime.js';
import { BerthError, isAbortError } from '../../controllers/ports/errors.js';
import { LABEL_REVISION, ownerLabels } from '../api/labels.js';
import { scrub } from '../util/logger.js';
import { packBuildContext, scanBuildContext } from './build-context.js';

export interface BuildRequest {
  app: string;
  /** The berth instance (ownership label). */
  instance: string;
  /** Git commit, or the context hash for path builds; lowercase hex, at least 12 characters. */
  revision: string;
  contextDir: string;
  /** Inside the context. Default `Dockerfile`. */
  dockerfile?: string;
  buildArgs?: Record<string, string>;
  /** Extra labels (e.g. the spec hash); ownership labels and the revision label win. */
  labels?: Record<string, string>;
  /** Memory limit of the build's RUN containers. */
  memoryBytes?: number;
}

export interface BuildResult {
  tag: string;
  imageId?: string;
  /** The saved build log. */
  logFile: string;
  durationMs: number;
  contextBytes: number;
}

export interface ImageBuilderOptions {
  /** berth's state folder; logs go to <stateDir>/builds/<app>/. */
  stateDir: string;
  /** Default 30 min. A hung build (a `sleep 3600` step) is stopped and reported as BuildTimeout. */
  timeoutMs?: number;
  /** Build logs kept per app. Default 10. */
  keepLogs?: number;
  /** The start of the output saved to the log file. Default 1 MiB. */
  logHeadBytes?: number;
  /** The end of the output kept (in the file after a cut, and in BuildFailed). Default 64 KiB and 200 lines. */
  logTailBytes?: number;
  logTailLines?: number;
  maxContextBytes?: number;
  clock?: Clock;
}

/** The part of the runtime a build needs. */
export type BuildRuntime = Pick<ContainerRuntime, 'buildImage' | 'inspectImage'>;

/** A failed build: `message` names the failing step; `logTail` is the end of the output. */
export class BuildFailedError extends BerthError {
  readonly logTail: string;
  readonly logFile: string;
  constructor(message: string, logTail: string, logFile: string, reason = 'BuildFailed', options?: { cause?: unknown }) {
    super('stalled', reason, message, options);
    this.logTail = logTail;
    this.logFile = logFile;
  }
}

const APP_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function imageTag(app: string, revision: string): string {
  return `berth/${app}:${revision.slice(0, 12)}`;
}

export class ImageBuilder {
  private readonly opts: Required<Omit<ImageBuilderOptions, 'maxContextBytes'>> & { maxContextBytes?: number };

  constructor(
    private readonly runtime: BuildRuntime,
    opts: ImageBuilderOptions,
  ) {
    this.opts = {
      timeoutMs: 30 * 60_000,
      keepLogs: 10,
      logHeadBytes: 1 << 20,
      logTailBytes: 64 << 10,
      logTailLines: 200,
      clock: systemClock,
      ...opts,
    };
  }

  /** Builds and tags the image. Rejects with BuildFailedError (stalled) or the abort of `signal`. */
  async build(req: BuildRequest, signal?: AbortSignal, onLine?: (line: string) => void): Promise<BuildResult> {
    if (!APP_RE.test(req.app)) throw new BerthError('stalled', 'InvalidName', `invalid app name ${JSON.stringify(req.app)}`);
    if (!/^[0-9a-f]{12,64}$/.test(req.revision)) throw new BerthError('stalled', 'InvalidRevision', `invalid revision ${JSON.stringify(req.revision)}`);
    const { clock } = this.opts;
    const tag = imageTag(req.app, req.revision);
    const dockerfile = req.dockerfile ?? 'Dockerfile';
    const started = clock.monotonic();
    const logDir = join(this.opts.stateDir, 'builds', req.app);
    await mkdir(logDir, { recursive: true });
    const stamp = clock.now().toISOString().replace(/[-:]/g, '');
    const logFile = join(logDir, `${stamp}-${req.revision.slice(0, 12)}.log`);
    const log = new BuildLog(createWriteStream(logFile, { mode: 0o600 }), this.opts, onLine);
    log.note(`# berth build of ${req.app} at ${req.revision} as ${tag}, started ${clock.now().toISOString()}`);

    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.opts.timeoutMs);
    const both = signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal;
    try {
      const ctx = await scanBuildContext(req.contextDir, { dockerfile, ...(this.opts.maxContextBytes ? { maxBytes: this.opts.maxContextBytes } : {}) });
      log.note(`# context: ${ctx.entries.length} entries, ${ctx.totalBytes} bytes`);
      const labels = { ...req.labels, ...ownerLabels(req.instance, req.app), [LABEL_REVISION]: req.revision };
      const building = this.runtime.buildImage(
        packBuildContext(ctx, both),
        { tag, dockerfile, buildArgs: req.buildArgs ?? {}, labels, ...(req.memoryBytes ? { memoryBytes: req.memoryBytes } : {}) },
        both,
        (line) => log.line(line),
      );
      // Some engines never answer a cancelled build (apocas/dockerode#553): stop waiting on abort.
      building.catch(() => undefined);
      await Promise.race([building, aborted(both)]);
      const failure = log.failure();
      if (failure) throw new BerthError('stalled', 'BuildFailed', failure);
      const image = await this.runtime.inspectImage(tag, both);
      if (!image) throw new BerthError('stalled', 'BuildFailed', `the build finished but ${tag} does not exist`);
      const durationMs = Math.round(clock.monotonic() - started);
      log.note(`# succeeded in ${(durationMs / 1000).toFixed(1)}s: ${image.id}`);
      return { tag, imageId: image.id, logFile, durationMs, contextBytes: ctx.totalBytes };
    } catch (e) {
      const err = this.classify(e, timeout.signal.aborted, signal, log, logFile);
      log.note(`# failed: ${err.message}`);
      throw err;
    } finally {
      clearTimeout(timer);
      await log.close();
      await pruneLogs(logDir, this.opts.keepLogs);
    }
  }

  private classify(e: unknown, timedOut: boolean, signal: AbortSignal | undefined, log: BuildLog, logFile: string): Error {
    if (timedOut && !signal?.aborted) {
      return new BuildFailedError(`build did not finish within ${Math.round(this.opts.timeoutMs / 1000)}s`, log.tail(), logFile, 'BuildTimeout', { cause: e });
    }
    if (signal?.aborted || isAbortError(e)) return e instanceof Error ? e : new Error(String(e));
    // A Dockerfile the engine cannot parse is rejected with HTTP 400 instead of a stream error: still the source's fault.
    const parseError = e instanceof Error && /dockerfile parse error|unknown instruction/i.test(e.message);
    if (parseError || (e instanceof BerthError && (e.reason === 'BuildFailed' || e.kind === 'stalled'))) {
      // Prefer the step-aware message from the stream over the adapter's bare one.
      return new BuildFailedError(log.failure() ?? e.message, log.tail(), logFile, e instanceof BerthError && !parseError ? e.reason : 'BuildFailed', { cause: e });
    }
    return e instanceof Error ? e : new Error(String(e));
  }
}

function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    const fail = (): void => {
      const e = new Error('build aborted', { cause: signal.reason });
      e.name = 'AbortError';
      reject(e);
    };
    if (signal.aborted) fail();
    else signal.addEventListener('abort', fail, { once: true });
  });
}

/**
 * The output of one build: Docker's JSON progress lines (or plain text) turned into text,
 * the first `logHeadBytes` written to the file as they come, the last lines kept in memory
 * (appended to the file after a "truncated" marker when the middle was cut), and the
 * failing step remembered.
 */
class BuildLog {
  private partial = '';
  private step = '';
  private error: string | undefined;
  private seq = 0;
  private headBytes = 0;
  /** Sequence number of the first line that did not fit in the head. */
  private overflowAt: number | undefined;
  private ring: { seq: number; text: string }[] = [];
  private ringBytes = 0;

  constructor(
    private readonly file: WriteStream,
    private readonly opts: { logHeadBytes: number; logTailBytes: number; logTailLines: number },
    private readonly onLine?: (line: string) => void,
  ) {
    file.on('error', () => undefined); // a full disk must not fail the build; the log is best effort
  }

  /** One line from the engine (a JSON progress message, or text). */
  line(raw: string): void {
    let msg: { stream?: unknown; status?: unknown; error?: unknown; errorDetail?: { message?: unknown } } | undefined;
    const t = raw.trim();
    if (t.startsWith('{')) {
      try {
        msg = JSON.parse(t) as typeof msg;
      } catch {
        msg = undefined;
      }
    }
    if (!msg) return this.text(`${raw}\n`);
    const err = typeof msg.errorDetail?.message === 'string' ? msg.errorDetail.message : typeof msg.error === 'string' ? msg.error : undefined;
    if (err !== undefined) {
      this.error ??= err;
      this.text(`ERROR: ${err}\n`);
    } else if (typeof msg.stream === 'string') this.text(msg.stream);
    else if (typeof msg.status === 'string') this.text(`${msg.status}\n`);
  }

  note(text: string): void {
    this.text(`${text}\n`);
  }

  /** The failing step and its message, when the stream reported one. */
  failure(): string | undefined {
    if (this.error === undefined) return undefined;
    return this.step ? `${this.step}: ${this.error}` : this.error;
  }

  /** The last lines, saying so when earlier output is not included. */
  tail(): string {
    const first = this.ring[0]?.seq ?? 0;
    return (first > 0 ? '[... earlier output truncated ...]\n' : '') + this.ring.map((l) => l.text).join('\n');
  }

  private text(chunk: string): void {
    const lines = (this.partial + chunk).split('\n');
    this.partial = lines.pop() ?? '';
    for (const raw of lines) this.keep(scrub(raw.replace(/\r$/, '')));
  }

  private keep(text: string): void {
    if (/^Step \d+\/\d+ : /.test(text)) this.step = text.slice(0, 300);
    this.onLine?.(text);
    const bytes = Buffer.byteLength(text) + 1;
    const seq = this.seq++;
    this.ring.push({ seq, text });
    this.ringBytes += bytes;
    while (this.ring.length > 1 && (this.ring.length > this.opts.logTailLines || this.ringBytes > this.opts.logTailBytes)) {
      this.ringBytes -= Buffer.byteLength(this.ring.shift()!.text) + 1;
    }
    if (this.overflowAt === undefined && this.headBytes + bytes <= this.opts.logHeadBytes) {
      this.headBytes += bytes;
      this.file.write(`${text}\n`);
    } else this.overflowAt ??= seq;
  }

  async close(): Promise<void> {
    if (this.partial) this.keep(scrub(this.partial));
    this.partial = '';
    if (this.overflowAt !== undefined) {
      const from = this.overflowAt;
      const rest = this.ring.filter((l) => l.seq >= from);
      const cut = (rest[0]?.seq ?? this.seq) - from;
      if (cut > 0) this.file.write(`[... ${cut} lines truncated ...]\n`);
      for (const l of rest) this.file.write(`${l.text}\n`);
    }
    await new Promise<void>((resolve) => this.file.end(resolve));
  }
}

async function pruneLogs(dir: string, keep: number): Promise<void> {
  const logs = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.log')).sort();
  for (const old of logs.slice(0, Math.max(0, logs.length - keep))) await rm(join(dir, old), { force: true });
}

/** The saved build logs of an app, oldest first (for `berth logs NAME --build`: read the last). */
export async function listBuildLogs(stateDir: string, app: string): Promise<string[]> {
  if (!APP_RE.test(app)) return [];
  const dir = join(stateDir, 'builds', app);
  const names = await readdir(dir).catch(() => [] as string[]);
  return names
    .filter((n) => n.endsWith('.log'))
    .sort()
    .map((n) => join(dir, n));
}
