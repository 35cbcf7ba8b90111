import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { Ajv2020 } from 'ajv/dist/2020.js';
import schema from '../../crds/apprevision.v1alpha1.schema.json' with { type: 'json' };
import { appRevisionPath, removeAppRevision, syncRepositoryManifests, writeAppRevision } from '../../src/webhook/revision-manifest.js';

const C1 = '1'.repeat(40);
const C2 = '2'.repeat(40);
let root: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'berth-rev-'));
});
afterEach(() => rm(root, { recursive: true, force: true }));

async function put(base: string, files: Record<string, string>): Promise<void> {
  for (const [p, c] of Object.entries(files)) {
    await mkdir(dirname(join(base, p)), { recursive: true });
    await writeFile(join(base, p), c);
  }
}

describe('AppRevision manifests', () => {
  it('writes manifests/_webhook/<app>.revision.yaml, marked as berth-owned and valid against the CRD', async () => {
    const url = `https://git.example.com/${'very-long-owner-name/'.repeat(5)}blog.git`;
    expect(await writeAppRevision(root, 'blog', { commit: C1, url, branch: 'main', source: 'webhook', delivery: 'd-1' })).toBe(true);
    const path = appRevisionPath(root, 'blog');
    expect(path).toBe(join(root, '_webhook', 'blog.revision.yaml'));
    const text = await readFile(path, 'utf8');
    expect(text.split('\n')[0]).toBe('# written by berth; do not edit');
    const doc = parse(text) as unknown;
    expect(doc).toEqual({ apiVersion: 'berth.dev/v1alpha1', kind: 'AppRevision', metadata: { name: 'blog' }, spec: { commit: C1, url, branch: 'main', source: 'webhook', delivery: 'd-1' } });
    const validate = new Ajv2020({ strict: false }).compile(schema);
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
    expect(await readdir(join(root, '_webhook'))).toEqual(['blog.revision.yaml']); // no temp file left
  });

  it('does not rewrite the file for the same commit (a new delivery id is not a change)', async () => {
    await writeAppRevision(root, 'blog', { commit: C1, branch: 'main', source: 'webhook', delivery: 'd-1' });
    const before = await stat(appRevisionPath(root, 'blog'));
    await new Promise((r) => setTimeout(r, 20));
    expect(await writeAppRevision(root, 'blog', { commit: C1, branch: 'main', source: 'webhook', delivery: 'd-2' })).toBe(false);
    expect((await stat(appRevisionPath(root, 'blog'))).mtimeMs).toBe(before.mtimeMs);
    expect(await writeAppRevision(root, 'blog', { commit: C2, branch: 'main', source: 'webhook', delivery: 'd-3' })).toBe(true);
    expect(await writeAppRevision(root, 'blog', { commit: C2, branch: 'main', source: 'rollback' })).toBe(true);
    expect(parse(await readFile(appRevisionPath(root, 'blog'), 'utf8'))).toMatchObject({ spec: { commit: C2, source: 'rollback' } });
  });

  it('rewrites a damaged file', async () => {
    await mkdir(join(root, '_webhook'));
    await writeFile(appRevisionPath(root, 'blog'), 'spec: [unclosed');
    expect(await writeAppRevision(root, 'blog', { commit: C1, source: 'initial' })).toBe(true);
  });

  it('refuses bad names and commits', async () => {
    await expect(writeAppRevision(root, '../etc', { commit: C1, source: 'webhook' })).rejects.toMatchObject({ reason: 'InvalidName' });
    await expect(writeAppRevision(root, 'blog', { commit: 'main', source: 'webhook' })).rejects.toMatchObject({ reason: 'InvalidCommit' });
  });

  it('removes the file of a deleted app', async () => {
    await writeAppRevision(root, 'blog', { commit: C1, source: 'webhook' });
    expect(await removeAppRevision(root, 'blog')).toBe(true);
    expect(await removeAppRevision(root, 'blog')).toBe(false);
  });
});

describe('GitRepository sync', () => {
  it('mirrors the yaml files of a folder: adds, updates, removes, keeps what is unchanged', async () => {
    const checkout = join(root, 'checkout');
    const dest = join(root, 'manifests', '_webhook', 'infra');
    await put(checkout, { 'apps/a.yaml': 'a1', 'apps/b.yml': 'b1', 'apps/nested/c.yaml': 'c1', 'apps/README.md': 'docs', 'other/x.yaml': 'x' });
    expect(await syncRepositoryManifests(checkout, 'apps/', dest)).toEqual({ added: ['a.yaml', 'b.yml', 'nested/c.yaml'], updated: [], removed: [], unchanged: 0, skipped: [] });

    await put(checkout, { 'apps/a.yaml': 'a2', 'apps/d.yaml': 'd1' });
    await rm(join(checkout, 'apps', 'nested'), { recursive: true });
    await writeFile(join(dest, '.b.yml.1234abcd.tmp'), 'left by a killed write');
    const second = await syncRepositoryManifests(checkout, 'apps', dest);
    expect(second).toEqual({ added: ['d.yaml'], updated: ['a.yaml'], removed: ['.b.yml.1234abcd.tmp', 'nested/c.yaml'], unchanged: 1, skipped: [] });
    expect((await readdir(dest)).sort()).toEqual(['a.yaml', 'b.yml', 'd.yaml']);
    expect(await readFile(join(dest, 'a.yaml'), 'utf8')).toBe('a2');
  });

  it('never follows symlinks and skips oversized files', async () => {
    const checkout = join(root, 'checkout');
    const dest = join(root, 'dest');
    await put(checkout, { 'ok.yaml': 'ok', 'big.yaml': 'x'.repeat(2000) });
    await symlink('/etc/hostname', join(checkout, 'link.yaml'));
    const res = await syncRepositoryManifests(checkout, '/', dest, { maxFileBytes: 1000 });
    expect(res.added).toEqual(['ok.yaml']);
    expect(res.skipped).toEqual([
      { path: 'link.yaml', reason: 'symlinks are not followed' },
      { path: 'big.yaml', reason: 'larger than 1000 bytes' },
    ]);
  });

  it('removes nothing when the folder is missing upstream (a typo must not delete every app)', async () => {
    const checkout = join(root, 'checkout');
    const dest = join(root, 'dest');
    await put(checkout, { 'apps/a.yaml': 'a' });
    await syncRepositoryManifests(checkout, 'apps', dest);
    await expect(syncRepositoryManifests(checkout, 'appz', dest)).rejects.toMatchObject({ reason: 'PathNotFound' });
    await expect(syncRepositoryManifests(checkout, '../..', dest)).rejects.toMatchObject({ reason: 'InvalidPath' });
    expect(await readdir(dest)).toEqual(['a.yaml']);
  });
});
