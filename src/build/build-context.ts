// A build context as a tar stream: the folder minus what .dockerignore excludes (and .git,
// always), symlinks kept as links but refused when they point outside the folder, a size
// cap checked before anything is sent, and a content hash for builds from a local path.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import { isAbsolute, join, posix } from 'node:path';
import { Readable } from 'node:stream';
import tar, { type Pack } from 'tar-stream';
import { BerthError } from '../../controllers/ports/errors.js';
import { DockerIgnore, cleanPath } from './dockerignore.js';

type HeaderArgument = Parameters<Pack['entry']>[0];

export interface ContextEntry {
  /** Relative to the context, `/`-separated. */
  path: string;
  type: 'file' | 'directory' | 'symlink';
  size: number;
  mode: number;
  mtime: Date;
  linkname?: string;
}

export interface BuildContext {
  /** The folder (absolute). */
  dir: string;
  /** Parents before children, sorted by name. */
  entries: ContextEntry[];
  totalBytes: number;
}

export interface ScanOptions {
  /** Path of the Dockerfile inside the context (default `Dockerfile`); must exist. */
  dockerfile?: string;
  /** Default 512 MiB: more is almost always a missing .dockerignore, and a Pi's disk and RAM pay for it. */
  maxBytes?: number;
  /** Default 100 000. */
  maxEntries?: number;
}

export const DEFAULT_MAX_CONTEXT_BYTES = 512 << 20;

/** Walks `dir` and decides what the context holds. Errors are stalled: they repeat until the source changes. */
export async function scanBuildContext(dir: string, opts: ScanOptions = {}): Promise<BuildContext> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_CONTEXT_BYTES;
  const maxEntries = opts.maxEntries ?? 100_000;
  const dockerfile = checkDockerfilePath(opts.dockerfile ?? 'Dockerfile');
  const ignoreText = await readFile(join(dir, '.dockerignore'), 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return '';
    throw e;
  });
  const ignore = DockerIgnore.parse(ignoreText);
  // Docker sends the Dockerfile and .dockerignore even when they are ignored (the builder needs them).
  const alwaysSent = new Set([dockerfile, '.dockerignore']);
  const entries: ContextEntry[] = [];
  let totalBytes = 0;

  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(rel === '' ? dir : join(dir, rel))).sort();
    for (const name of names) {
      const path = rel === '' ? name : `${rel}/${name}`;
      if (path === '.git') continue;
      const st = await lstat(join(dir, path));
      const ignored = ignore.ignores(path) && !alwaysSent.has(path);
      if (st.isDirectory()) {
        if (!ignored) entries.push({ path, type: 'directory', size: 0, mode: st.mode & 0o7777, mtime: st.mtime });
        // An excluded folder is still walked when an exception (`!pattern`) may re-include something below it.
        if (!ignored || ignore.hasExceptions) await walk(path);
      } else if (ignored) {
        continue;
      } else if (st.isSymbolicLink()) {
        const linkname = await readlink(join(dir, path));
        const target = posix.normalize(posix.join(posix.dirname(path), linkname));
        if (isAbsolute(linkname) || target === '..' || target.startsWith('../')) {
          throw new BerthError('stalled', 'BuildContextInvalid', `symlink ${path} -> ${linkname} points outside the build context`);
        }
        entries.push({ path, type: 'symlink', size: 0, mode: 0o777, mtime: st.mtime, linkname });
      } else if (st.isFile()) {
        totalBytes += st.size;
        if (totalBytes > maxBytes) {
          throw new BerthError('stalled', 'BuildContextTooLarge', `build context is larger than ${formatBytes(maxBytes)} (add a .dockerignore)`);
        }
        entries.push({ path, type: 'file', size: st.size, mode: st.mode & 0o7777, mtime: st.mtime });
      }
      // Sockets, FIFOs and devices are not sent (docker build cannot use them either).
      if (entries.length > maxEntries) throw new BerthError('stalled', 'BuildContextTooLarge', `build context has more than ${maxEntries} entries`);
    }
  };
  await walk('');
  if (!entries.some((e) => e.path === dockerfile && e.type !== 'directory')) {
    throw new BerthError('stalled', 'DockerfileNotFound', `no ${dockerfile} in the build context`);
  }
  return { dir, entries, totalBytes };
}

/** `dockerfile` must name a file inside the context. */
function checkDockerfilePath(p: string): string {
  const clean = cleanPath(p.replace(/^\/+/, ''));
  if (clean === '.' || clean === '..' || clean.startsWith('../') || clean.includes('\0')) {
    throw new BerthError('stalled', 'InvalidDockerfilePath', `dockerfile ${JSON.stringify(p)} must be a file inside the build context`);
  }
  return clean;
}

/** The context as an uncompressed tar stream (uid/gid 0, as the docker CLI sends it). Aborting the signal destroys the stream. */
export function packBuildContext(ctx: BuildContext, signal?: AbortSignal): Readable {
  const pack = tar.pack();
  // tar-stream streams are streamx streams: hand the engine a plain Node stream, and report
  // errors through it only (destroying it destroys the pack).
  const out = Readable.from(pack, { objectMode: false });
  pack.on('error', () => undefined);
  const fail = (err: unknown): void => {
    out.destroy(err instanceof Error ? err : new Error(String(err)));
  };
  const onAbort = (): void => fail(new BerthError('transient', 'Aborted', 'build context upload aborted'));
  signal?.addEventListener('abort', onAbort, { once: true });
  const addEntry = (header: HeaderArgument, body?: Buffer): Promise<void> =>
    new Promise((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (body) pack.entry(header, body, cb);
      else pack.entry(header, cb);
    });

  const run = async (): Promise<void> => {
    for (const e of ctx.entries) {
      if (signal?.aborted || out.destroyed) return;
      const header: HeaderArgument = { name: e.path, mode: e.mode, mtime: e.mtime, uid: 0, gid: 0, type: e.type };
      if (e.type === 'directory') await addEntry(header);
      else if (e.type === 'symlink') await addEntry({ ...header, linkname: e.linkname ?? '' });
      else if (e.size === 0) await addEntry({ ...header, size: 0 }, Buffer.alloc(0));
      else await addFile(pack, { ...header, size: e.size }, join(ctx.dir, e.path));
    }
    pack.finalize();
  };
  run()
    .catch(fail)
    .finally(() => signal?.removeEventListener('abort', onAbort));
  return out;
}

async function addFile(pack: Pack, header: HeaderArgument, file: string): Promise<void> {
  let settle!: (err?: Error | null) => void;
  const written = new Promise<void>((resolve, reject) => {
    settle = (err) => (err ? reject(err) : resolve());
  });
  written.catch(() => undefined); // awaited below; it may fail while we wait for 'drain'
  const sink = pack.entry(header, (err) => settle(err));
  sink.on('error', () => undefined); // streamx emits it even without listeners; the callback above reports it
  const source = createReadStream(file, { start: 0, end: (header.size ?? 1) - 1 });
  try {
    // Exactly the size that went into the header is read: a file that shrank fails the entry ("Size mismatch").
    for await (const chunk of source as AsyncIterable<Buffer>) {
      if (!sink.write(chunk)) await Promise.race([new Promise<void>((resolve) => sink.once('drain', () => resolve())), written]);
    }
    sink.end(undefined); // streamx types want an argument; undefined writes nothing
  } catch (e) {
    sink.destroy(e instanceof Error ? e : new Error(String(e)));
  } finally {
    source.destroy();
  }
  await written;
}

/**
 * Hex SHA-256 over the context (paths, types, permissions, link targets, contents) plus the
 * Dockerfile path and build args, so a path build is rebuilt when any input changes and
 * reused when none did.
 */
export async function hashBuildContext(ctx: BuildContext, extra: { dockerfile: string; buildArgs: Record<string, string> }): Promise<string> {
  const h = createHash('sha256');
  const args = Object.keys(extra.buildArgs)
    .sort()
    .map((k) => [k, extra.buildArgs[k]]);
  h.update(JSON.stringify({ dockerfile: extra.dockerfile, args }));
  for (const e of [...ctx.entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    h.update(`\0${e.type}\0${e.path}\0${(e.mode & 0o777).toString(8)}\0${e.linkname ?? ''}\0${e.size}\0`);
    if (e.type === 'file' && e.size > 0) {
      for await (const chunk of createReadStream(join(ctx.dir, e.path)) as AsyncIterable<Buffer>) h.update(chunk);
    }
  }
  return h.digest('hex');
}

function formatBytes(n: number): string {
  return n >= 1 << 20 ? `${Math.round(n / (1 << 20))} MiB` : `${Math.round(n / 1024)} KiB`;
}
