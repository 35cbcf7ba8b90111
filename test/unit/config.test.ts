import { describe, it, expect } from 'vitest';
import { mkdtemp, rm, writeFile, utimes, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isLoopback, parseAddress, runConfig, UsageError } from '../../src/config/config.js';
import { removeStaleTemps } from '../../src/util/atomic-write.js';

describe('configuration', () => {
  it('treats only loopback literals and localhost as loopback (a rebinding domain named 127.x is not)', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', 'localhost.']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['127.0.0.1.evil.example', '127.evil.example', '0.0.0.0', '10.0.0.1', 'evil.example', '1270.0.0.1']) expect(isLoopback(h), h).toBe(false);
  });

  it('parses HOST:PORT listeners and refuses anything else as a usage error', () => {
    expect(parseAddress('http', '0.0.0.0:8080')).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(parseAddress('http', '[::1]:9090')).toEqual({ host: '::1', port: 9090 });
    expect(parseAddress('http', ':80')).toEqual({ host: '0.0.0.0', port: 80 });
    expect(() => parseAddress('http', '8080')).toThrow(UsageError);
    expect(() => parseAddress('http', 'x:70000')).toThrow(/HOST:PORT/);
  });

  it('takes a flag over its variable over the default, and refuses an open admin listener without a token', () => {
    expect(runConfig({}, {}).http).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(runConfig({}, { BERTH_HTTP: '127.0.0.1:81' }).http).toEqual({ host: '127.0.0.1', port: 81 });
    expect(runConfig({ http: '127.0.0.1:82' }, { BERTH_HTTP: '127.0.0.1:81' }).http).toEqual({ host: '127.0.0.1', port: 82 });
    expect(() => runConfig({ admin: '0.0.0.0:9090' }, {})).toThrow(/BERTH_ADMIN_TOKEN/);
    expect(runConfig({ admin: '0.0.0.0:9090' }, { BERTH_ADMIN_TOKEN: 't' }).adminToken).toBe('t');
    expect(() => runConfig({ instance: 'Bad_Name' }, {})).toThrow(/--instance/);
    expect(runConfig({}, { BERTH_ALLOW_HOST_PATH: '/srv/a, /srv/b' }).allowHostPath).toEqual(['/srv/a', '/srv/b']);
  });
});

describe('stale temp files', () => {
  it('removes only berth\'s own temp files older than a minute', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-temps-'));
    try {
      const old = new Date(Date.now() - 120_000);
      for (const f of ['.state.json.0a1b2c3d.tmp', '.web.yaml.deadbeef.tmp', 'notes.tmp', '.other.tmp']) {
        await writeFile(join(dir, f), 'x');
        await utimes(join(dir, f), old, old);
      }
      await writeFile(join(dir, '.fresh.yaml.01234567.tmp'), 'x');
      expect(await removeStaleTemps(dir)).toBe(2);
      expect((await readdir(dir)).sort()).toEqual(['.fresh.yaml.01234567.tmp', '.other.tmp', 'notes.tmp']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
