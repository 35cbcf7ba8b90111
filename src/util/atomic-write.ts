// Atomic and durable file replacement: write a unique temp file beside the target, fsync it,
// rename over the target, fsync the directory. A kill -9 leaves either the old or the new
// content; a power cut on a Pi's SD card does not lose a write that returned.
import { open, rename, unlink, mkdir, readdir, stat } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { faultPoint } from './fault-point.js';

export async function atomicWrite(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  faultPoint('write:before-rename');
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fsyncDir(dir);
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on directories (EINVAL); the rename is still atomic.
  } finally {
    await fh.close();
  }
}

/**
 * Removes the temp files atomicWrite left in `dir` when the process died before its rename
 * (kill -9, power cut). Only berth's own pattern, and only files older than `olderThanMs`, so a
 * write in flight (e.g. `berth secret set` while berth starts) is never touched.
 */
export async function removeStaleTemps(dir: string, olderThanMs = 60_000): Promise<number> {
  let removed = 0;
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (!/^\..+\.[0-9a-f]{8}\.tmp$/.test(name)) continue;
    const path = join(dir, name);
    const st = await stat(path).catch(() => undefined);
    if (st?.isFile() && Date.now() - st.mtimeMs > olderThanMs && (await unlink(path).then(() => true, () => false))) removed++;
  }
  return removed;
}
