// Keys and certificates are written owner-only: folders 0700, files 0600, atomically.
import { mkdir, chmod } from 'node:fs/promises';
import { dirname } from 'node:path';
import { atomicWrite } from '../util/atomic-write.js';

export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // mkdir leaves an existing folder's mode alone; a folder made by an older run or by hand is tightened here.
  await chmod(dir, 0o700);
}

export async function writePrivateFile(path: string, data: string): Promise<void> {
  await ensurePrivateDir(dirname(path));
  await atomicWrite(path, data, 0o600);
}
