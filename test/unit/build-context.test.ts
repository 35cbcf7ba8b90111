import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { hashBuildContext, packBuildContext, scanBuildContext } from '../../src/build/build-context.js';

let dir: string;

async function files(spec: Record<string, string>): Promise<void> {
  for (const [p, content] of Object.entries(spec)) {
    await mkdir(dirname(join(dir, p)), { recursive: true });
    await writeFile(join(dir, p), content);
  }
}

/** name -> content (files), '<dir>' or '-> target' (symlinks), as Docker would receive them. */
async function untar(stream: Readable): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const ex = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, body, next) => {
      const chunks: Buffer[] = [];
      body.on("data", (c: unknown) => void chunks.push(c as Buffer));
      body.on('end', () => {
        const name = header.name.replace(/\/$/, '');
        out[name] = header.type === 'directory' ? '<dir>' : header.type === 'symlink' ? `-> ${header.linkname}` : Buffer.concat(chunks).toString();
        expect([header.uid, header.gid]).toEqual([0, 0]);
        next();
      });
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  stream.pipe(ex);
  await done;
  return out;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-ctx-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('build context', () => {
  it('sends the folder minus .dockerignore matches and .git, keeping the Dockerfile and .dockerignore', async () => {
    await files({
      Dockerfile: 'FROM scratch\n',
      '.dockerignore': 'Dockerfile\n.dockerignore\n*.log\nnode_modules\ndocs\n!docs/keep.md\n',
      'app.js': 'console.log(1)',
      'debug.log': 'x',
      'node_modules/a/index.js': 'x',
      'docs/keep.md': 'keep',
      'docs/drop.md': 'drop',
      'src/lib.js': 'lib',
      '.git/HEAD': 'ref: refs/heads/main',
    });
    const ctx = await scanBuildContext(dir);
    const got = await untar(packBuildContext(ctx));
    expect(got).toEqual({
      '.dockerignore': 'Dockerfile\n.dockerignore\n*.log\nnode_modules\ndocs\n!docs/keep.md\n',
      Dockerfile: 'FROM scratch\n',
      'app.js': 'console.log(1)',
      'docs/keep.md': 'keep',
      src: '<dir>',
      'src/lib.js': 'lib',
    });
  });

  it('keeps symlinks inside the context as links and refuses ones that leave it', async () => {
    await files({ Dockerfile: 'FROM scratch\n', 'conf/a.conf': 'a' });
    await symlink('conf/a.conf', join(dir, 'current.conf'));
    const got = await untar(packBuildContext(await scanBuildContext(dir)));
    expect(got['current.conf']).toBe('-> conf/a.conf');

    await symlink('../../etc/passwd', join(dir, 'conf', 'escape'));
    await expect(scanBuildContext(dir)).rejects.toMatchObject({ kind: 'stalled', reason: 'BuildContextInvalid', message: expect.stringContaining('conf/escape') });
    await rm(join(dir, 'conf', 'escape'));
    await symlink('/etc/passwd', join(dir, 'abs'));
    await expect(scanBuildContext(dir)).rejects.toMatchObject({ reason: 'BuildContextInvalid' });
    // An ignored escaping link is never sent, so it is not an error.
    await writeFile(join(dir, '.dockerignore'), 'abs\n');
    await expect(scanBuildContext(dir)).resolves.toBeDefined();
  });

  it('keeps the executable bit', async () => {
    await files({ Dockerfile: 'FROM scratch\n', 'run.sh': '#!/bin/sh\n' });
    await chmod(join(dir, 'run.sh'), 0o755);
    const ctx = await scanBuildContext(dir);
    expect(ctx.entries.find((e) => e.path === 'run.sh')?.mode).toBe(0o755);
  });

  it('refuses a context over the size cap before sending anything', async () => {
    await files({ Dockerfile: 'FROM scratch\n', big: 'x'.repeat(2000) });
    await expect(scanBuildContext(dir, { maxBytes: 1000 })).rejects.toMatchObject({ kind: 'stalled', reason: 'BuildContextTooLarge' });
    await writeFile(join(dir, '.dockerignore'), 'big\n');
    await expect(scanBuildContext(dir, { maxBytes: 1000 })).resolves.toBeDefined();
  });

  it('requires the Dockerfile inside the context', async () => {
    await files({ 'app.js': '' });
    await expect(scanBuildContext(dir)).rejects.toMatchObject({ reason: 'DockerfileNotFound' });
    await files({ 'build/Dockerfile.prod': 'FROM scratch\n' });
    await expect(scanBuildContext(dir, { dockerfile: 'build/Dockerfile.prod' })).resolves.toBeDefined();
    await expect(scanBuildContext(dir, { dockerfile: '../Dockerfile' })).rejects.toMatchObject({ reason: 'InvalidDockerfilePath' });
  });

  it('hashes content, paths, modes, the Dockerfile path and build args — not times', async () => {
    await files({ Dockerfile: 'FROM scratch\n', 'a.txt': 'a' });
    const base = { dockerfile: 'Dockerfile', buildArgs: { A: '1' } };
    const h1 = await hashBuildContext(await scanBuildContext(dir), base);
    expect(h1).toMatch(/^[0-9a-f]{64}$/);
    await writeFile(join(dir, 'a.txt'), 'a'); // same content, new mtime
    expect(await hashBuildContext(await scanBuildContext(dir), base)).toBe(h1);
    expect(await hashBuildContext(await scanBuildContext(dir), { ...base, buildArgs: { A: '2' } })).not.toBe(h1);
    await writeFile(join(dir, 'a.txt'), 'b');
    const h2 = await hashBuildContext(await scanBuildContext(dir), base);
    expect(h2).not.toBe(h1);
    await chmod(join(dir, 'a.txt'), 0o755);
    expect(await hashBuildContext(await scanBuildContext(dir), base)).not.toBe(h2);
  });

  it('streams large files with backpressure and stops when aborted', async () => {
    await files({ Dockerfile: 'FROM scratch\n', big: 'y'.repeat(8 << 20) });
    const ctx = await scanBuildContext(dir);
    const got = await untar(packBuildContext(ctx));
    expect(got.big?.length).toBe(8 << 20);

    const ac = new AbortController();
    const stream = packBuildContext(ctx, ac.signal);
    const failed = new Promise((resolve) => stream.on('error', resolve));
    stream.once('data', () => ac.abort());
    stream.resume();
    expect(await failed).toBeInstanceOf(Error);
  });
});
