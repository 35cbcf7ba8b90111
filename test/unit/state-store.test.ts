import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtemp, rm, writeFile, readFile, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateStore } from '../../src/state/state-store.js';
import { silentLogger } from '../../src/util/logger.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-state-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const CORRUPTIONS: Record<string, string> = {
  truncated: '{"version":1,"objects":{"App/a":{"kind":"App","na',
  empty: '',
  garbage: 'hello, this is not json at all',
  'NUL bytes': '\0\0\0\0\0\0\0\0',
  'wrong schema': '{"version":1,"objects":[1,2,3],"apps":"no"}',
  'future version': '{"version":99,"objects":{},"apps":{}}',
};

describe('the state store', () => {
  for (const [how, content] of Object.entries(CORRUPTIONS)) {
    it(`moves a state file aside and starts empty when it is ${how}`, async () => {
      await writeFile(join(dir, 'state.json'), content);
      const store = await StateStore.open({ dir, log: silentLogger });
      expect(store.data.objects).toEqual({});
      expect(store.recoveredFrom).toMatch(/state\.json\.corrupt-/);
      expect(await readFile(store.recoveredFrom!, 'utf8')).toBe(content);
      store.update((d) => void (d.apps.a = { activeHash: 'h' }));
      await store.flush();
      expect(JSON.parse(await readFile(join(dir, 'state.json'), 'utf8'))).toMatchObject({ version: 1, apps: { a: { activeHash: 'h' } } });
    });
  }

  it('writes only when the content changed, with mode 0600, and leaves no temp files', async () => {
    const store = await StateStore.open({ dir, log: silentLogger, batchMs: 5 });
    store.update((d) => void (d.apps.a = { activeHash: 'x' }));
    await store.flush();
    const first = await stat(join(dir, 'state.json'));
    expect(first.mode & 0o777).toBe(0o600);
    await new Promise((r) => setTimeout(r, 20));
    store.update((d) => void (d.apps.a = { activeHash: 'x' }));
    await store.flush();
    expect((await stat(join(dir, 'state.json'))).mtimeMs).toBe(first.mtimeMs);
    expect((await readdir(dir)).sort()).toEqual(['state.json']);
  });

  it('batches many updates into few writes', async () => {
    const store = await StateStore.open({ dir, log: silentLogger, batchMs: 30 });
    for (let i = 0; i < 100; i++) store.update((d) => void (d.apps[`a${i}`] = {}));
    await new Promise((r) => setTimeout(r, 80));
    const written = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as { apps: object };
    expect(Object.keys(written.apps)).toHaveLength(100);
  });

  it('keeps the previous file intact and reports the error when a write fails', async () => {
    const store = await StateStore.open({ dir, log: silentLogger });
    store.update((d) => void (d.apps.a = { activeHash: 'good' }));
    await store.flush();
    await rm(dir, { recursive: true, force: true });
    await writeFile(dir, 'now a file, so the folder cannot be written');
    store.update((d) => void (d.apps.a = { activeHash: 'next' }));
    await store.flush();
    expect(store.lastError?.message).toMatch(/ENOTDIR|EEXIST|ENOENT/);
    await rm(dir, { force: true });
  });
});
