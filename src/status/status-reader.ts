// Reading status files back (for the CLI): tolerant of files being replaced while read.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { AppStatusFile, OperatorStatusFile } from '../api/types.generated.js';
import { StatusWriter } from './status-writer.js';
import { silentLogger } from '../util/logger.js';

export async function readStatusFile<T>(dir: string, rel: string): Promise<T | undefined> {
  try {
    return parse(await readFile(join(dir, rel), 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export async function readAppStatuses(dir: string): Promise<AppStatusFile[]> {
  const names = await new StatusWriter(dir, silentLogger).list('apps');
  const docs = await Promise.all(names.sort().map((n) => readStatusFile<AppStatusFile>(dir, `apps/${n}.yaml`)));
  return docs.filter((d): d is AppStatusFile => d !== undefined && d.kind === 'App');
}

export function readOperatorStatus(dir: string): Promise<OperatorStatusFile | undefined> {
  return readStatusFile<OperatorStatusFile>(dir, 'operator.yaml');
}
