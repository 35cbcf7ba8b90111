// `npm start` is `berth run` on the defaults: ./manifests, ./status, ./.berth, the proxy on
// 0.0.0.0:8080 and the admin API on 127.0.0.1:9090. Run with no flags in a fresh folder.
import { describe, it, expect, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { get } from 'node:http';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BERTH_BIN, readYaml, waitFor } from '../helpers/berth-process.js';
import { IMAGES, cleanupInstance, testInstance } from '../helpers/docker.js';

const instance = testInstance('dflt');
let cwd = '';

afterAll(async () => {
  await cleanupInstance(instance);
  if (cwd) await rm(cwd, { recursive: true, force: true });
});

describe('berth run with no flags', () => {
  it('uses ./manifests, ./status and ./.berth, serves on :8080 and answers GET 127.0.0.1:9090/healthz', async () => {
    cwd = await mkdtemp(join(tmpdir(), 'berth-defaults-'));
    // Only the instance comes from its variable: it labels what this test creates.
    const proc = spawn(process.execPath, [BERTH_BIN, 'run'], { cwd, env: { ...process.env, BERTH_INSTANCE: instance }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
    try {
      const health = await waitFor('healthz on 127.0.0.1:9090', async () => {
        if (proc.exitCode !== null) throw new Error(`berth exited: ${output}`);
        try {
          const r = await fetch('http://127.0.0.1:9090/healthz');
          const body = r.ok ? ((await r.json()) as { status: string; manifestsScanned: boolean }) : undefined;
          // "degraded" until the Docker connection is up.
          return body?.status === 'ok' ? body : undefined;
        } catch {
          return undefined;
        }
      }, 20_000, 100);
      expect(health).toMatchObject({ status: 'ok', manifestsScanned: true });
      for (const dir of ['manifests', 'status', '.berth']) expect((await stat(join(cwd, dir))).isDirectory()).toBe(true);
      expect(((await stat(join(cwd, '.berth'))).mode & 0o777).toString(8)).toBe('700');
      await writeFile(join(cwd, 'manifests', 'web.yaml'), `apiVersion: berth.dev/v1alpha1\nkind: App\nmetadata: {name: web}\nspec: {image: ${IMAGES.httpdV1}, tls: none, routes: [{host: web.lan}]}\n`);
      await waitFor('web Ready', async () => (await readYaml<{ status: { phase: string } }>(join(cwd, 'status', 'apps', 'web.yaml')))?.status.phase === 'Ready', 20_000);
      // fetch() drops a Host header (a forbidden header name), so plain http.get.
      const res = await new Promise<[number, string]>((resolve, reject) => {
        get({ host: '127.0.0.1', port: 8080, path: '/', headers: { Host: 'web.lan' } }, (r) => {
          let body = '';
          r.on('data', (c: Buffer) => (body += c.toString()));
          r.on('end', () => resolve([r.statusCode ?? 0, body]));
        }).on('error', reject);
      });
      expect(res).toEqual([200, 'hello v1\n']);
      const op = await readYaml<{ status: { listeners: Record<string, string> } }>(join(cwd, 'status', 'operator.yaml'));
      expect(op?.status.listeners).toMatchObject({ admin: '127.0.0.1:9090', http: '0.0.0.0:8080' });
    } finally {
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r(undefined) : proc.once('exit', r)));
    }
  }, 60_000);
});
