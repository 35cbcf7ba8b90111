// The Dockerfile, kept honest without pulling anything: no base image can be pulled here, so
// the test assembles a stand-in for node:20-alpine from this machine's Node, npm and busybox
// (NODE_IMAGE build argument), builds berth's image from the real Dockerfile, and runs it.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtemp, rm, writeFile, mkdir, cp, copyFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { docker, testInstance, TEST_LABEL } from '../helpers/docker.js';
import { sharedLibraries } from '../helpers/node-image.mjs';
import { waitFor } from '../helpers/berth-process.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const instance = testInstance('df');
const BASE = `berth-test/node-base:${instance}`;
const IMAGE = `berth-test/berth:${instance}`;

async function buildNodeBase(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-nodebase-'));
  try {
    const node = process.execPath;
    const add = async (from: string, to: string) => {
      await mkdir(dirname(join(dir, 'root', to)), { recursive: true });
      await copyFile(from, join(dir, 'root', to));
    };
    await add(node, '/usr/local/bin/node');
    for (const lib of await sharedLibraries(node)) await add(lib, lib);
    await add('/bin/busybox', '/bin/busybox');
    await add('/etc/ssl/certs/ca-certificates.crt', '/etc/ssl/certs/ca-certificates.crt');
    await cp(join(dirname(dirname(node)), 'lib', 'node_modules', 'npm'), join(dir, 'root', 'usr/local/lib/node_modules/npm'), { recursive: true });
    await writeFile(join(dir, 'root', 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000:node:/home/node:/bin/sh\n');
    await writeFile(join(dir, 'root', 'etc/group'), 'root:x:0:\nnode:x:1000:\n');
    await writeFile(join(dir, 'Dockerfile'), [
      'FROM scratch',
      'COPY root/ /',
      'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
      'RUN ln -s /bin/busybox /usr/bin/env 2>/dev/null || (mkdir -p /usr/bin && ln -s /bin/busybox /usr/bin/env); ' +
        'ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx; ' +
        'mkdir -p /tmp /root /home/node && chmod 1777 /tmp && chown 1000:1000 /home/node',
      'ENV PATH=/usr/local/bin:/usr/bin:/bin NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt HOME=/root',
    ].join('\n'));
    await docker('build', '-q', '--label', `${TEST_LABEL}=1`, '--label', `dev.berth.instance=${instance}`, '-t', BASE, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

afterAll(async () => {
  await docker('rm', '-f', `${instance}-run`).catch(() => undefined);
  await docker('rmi', '-f', IMAGE, BASE).catch(() => undefined);
});

describe('the Dockerfile', () => {
  it('builds berth (multi-stage, non-root, healthcheck, /data volume) and the image runs it', async () => {
    await buildNodeBase();
    await docker('build', '-q', '--build-arg', `NODE_IMAGE=${BASE}`, '--label', `${TEST_LABEL}=1`, '--label', `dev.berth.instance=${instance}`, '-t', IMAGE, ROOT);
    const version = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    expect(await docker('run', '--rm', '--label', `dev.berth.instance=${instance}`, IMAGE, '--version')).toBe(version);
    const config = JSON.parse(await docker('image', 'inspect', '--format', '{{json .Config}}', IMAGE)) as {
      User: string; Volumes: Record<string, unknown>; Healthcheck?: { Test: string[] }; Entrypoint: string[];
    };
    expect(config.User).toBe('node');
    expect(Object.keys(config.Volumes)).toEqual(['/data']);
    expect(config.Healthcheck?.Test.join(' ')).toMatch(/healthz/);
    // It runs the operator: as root here (the socket's group differs per host), host network,
    // the socket mounted, its own ports and instance so it touches nothing else.
    await docker('run', '-d', '--name', `${instance}-run`, '--label', `dev.berth.instance=${instance}`, '--user', '0', '--network', 'host',
      '-v', '/var/run/docker.sock:/var/run/docker.sock', '-e', 'BERTH_ADMIN=127.0.0.1:19391', '-e', 'BERTH_HTTP=127.0.0.1:19392',
      '-e', `BERTH_INSTANCE=${instance}`, IMAGE);
    // /healthz answers as soon as the admin listener is up, "degraded" until the first Docker ping.
    let last: unknown;
    const health = await waitFor('berth in its container answers /healthz, connected to Docker', async () => {
      try {
        const r = await fetch('http://127.0.0.1:19391/healthz');
        const body = r.ok ? ((await r.json()) as { status: string; docker: { connected: boolean } }) : undefined;
        last = body ?? `HTTP ${r.status}`;
        return body?.status === 'ok' ? body : undefined;
      } catch {
        return undefined;
      }
    }, 30_000, 250).catch((e: unknown) => {
      throw new Error(`${String(e)}; last answer: ${JSON.stringify(last)}`);
    });
    expect(health).toMatchObject({ status: 'ok', docker: { connected: true } });
  }, 600_000);
});
