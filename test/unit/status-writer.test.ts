import { describe, it, expect } from 'vitest';
import { mkdtemp, rm, stat, readFile, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StatusWriter, renderStatus } from '../../src/status/status-writer.js';
import { silentLogger } from '../../src/util/logger.js';

describe('the status writer', () => {
  it('writes a file only when its content changes, compared with what is on disk', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-status-'));
    try {
      const w = new StatusWriter(dir, silentLogger);
      await w.write('apps/a.yaml', { a: 1 });
      const before = await stat(join(dir, 'apps/a.yaml'));
      await new Promise((r) => setTimeout(r, 20));
      await w.write('apps/a.yaml', { a: 1 });
      expect((await stat(join(dir, 'apps/a.yaml'))).mtimeMs).toBe(before.mtimeMs);
      // A new writer (a restart) also compares with the disk.
      const w2 = new StatusWriter(dir, silentLogger);
      await w2.write('apps/a.yaml', { a: 1 });
      expect(w2.writes).toBe(0);
      await w2.write('apps/a.yaml', { a: 2 });
      expect(await readFile(join(dir, 'apps/a.yaml'), 'utf8')).toBe('a: 2\n');
      expect(w.writes + w2.writes).toBe(2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('serialises writes to one file so the last one wins', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-status-'));
    try {
      const w = new StatusWriter(dir, silentLogger);
      await Promise.all(Array.from({ length: 50 }, (_, i) => w.write('x.yaml', { i })));
      expect(await readFile(join(dir, 'x.yaml'), 'utf8')).toBe(renderStatus({ i: 49 }));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('removes files and lists what is there', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-status-'));
    try {
      await mkdir(join(dir, 'apps'));
      await writeFile(join(dir, 'apps', 'old.yaml'), 'x: 1\n');
      const w = new StatusWriter(dir, silentLogger);
      expect(await w.list('apps')).toEqual(['old']);
      await w.remove('apps/old.yaml');
      expect(await w.list('apps')).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
