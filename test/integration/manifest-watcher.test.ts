import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtemp, rm, writeFile, rename, unlink, mkdir, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManifestWatcher } from '../../src/manifests/manifest-watcher.js';
import { DesiredStore, type DesiredChange } from '../../src/desired/desired-store.js';
import { emptyState, type StateData } from '../../src/state/state-schema.js';
import { silentLogger } from '../../src/util/logger.js';
import { sleep, waitFor } from '../helpers/berth-process.js';

const app = (name: string, image = 'nginx:1') => `apiVersion: berth.dev/v1alpha1
kind: App
metadata: {name: ${name}}
spec:
  image: ${image}
`;

let dir: string;
let watcher: ManifestWatcher;
let changes: DesiredChange[];
let store: DesiredStore;
let notifications: number;

async function startWatcher(): Promise<void> {
  const data: StateData = emptyState();
  store = new DesiredStore({ data, update: (m: (d: StateData) => void) => m(data) });
  watcher = new ManifestWatcher({
    dir,
    log: silentLogger,
    onChange: (loads) => {
      notifications++;
      changes.push(...store.apply(loads, true));
    },
  });
  await watcher.start();
}

const image = (name: string) => (store.get('App', name)?.object as { spec: { image: string } } | undefined)?.spec.image;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-watch-'));
  changes = [];
  notifications = 0;
});
afterEach(async () => {
  await watcher.close();
  await rm(dir, { recursive: true, force: true });
});

describe('the manifest watcher on a real folder', () => {
  it('loads the folder (recursively, .yaml and .yml only) before reporting anything', async () => {
    await mkdir(join(dir, 'team', 'deep'), { recursive: true });
    await writeFile(join(dir, 'a.yaml'), app('a'));
    await writeFile(join(dir, 'team', 'deep', 'b.yml'), app('b'));
    await writeFile(join(dir, 'notes.txt'), app('c'));
    await writeFile(join(dir, '.hidden.yaml'), app('d'));
    await startWatcher();
    expect(notifications).toBe(1);
    expect(store.list().map((e) => e.name)).toEqual(['a', 'b']);
  });

  it('sees a new file within a fraction of a second', async () => {
    await startWatcher();
    const t0 = Date.now();
    await writeFile(join(dir, 'new.yaml'), app('new'));
    await waitFor('the new app', () => store.get('App', 'new'), 2000, 5);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('treats an editor save (write a temp file, rename over) as one change', async () => {
    await writeFile(join(dir, 'a.yaml'), app('a'));
    await startWatcher();
    changes = [];
    await writeFile(join(dir, '.a.yaml.swp'), app('a', 'nginx:2'));
    await rename(join(dir, '.a.yaml.swp'), join(dir, 'a.yaml'));
    await waitFor('nginx:2', () => image('a') === 'nginx:2', 3000);
    await sleep(300);
    expect(changes.map((c) => [c.name, c.entry?.generation])).toEqual([['a', 2]]);
  });

  it('treats a vim-style save (move the original away, write anew, delete the backup) as a change, never a deletion', async () => {
    await writeFile(join(dir, 'a.yaml'), app('a'));
    await startWatcher();
    changes = [];
    await rename(join(dir, 'a.yaml'), join(dir, 'a.yaml~'));
    await writeFile(join(dir, 'a.yaml'), app('a', 'nginx:3'));
    await unlink(join(dir, 'a.yaml~'));
    await waitFor('nginx:3', () => image('a') === 'nginx:3', 3000);
    await sleep(300);
    expect(changes.every((c) => c.entry !== undefined)).toBe(true);
  });

  it('does not delete an app when its file is removed and re-created at once', async () => {
    await writeFile(join(dir, 'a.yaml'), app('a'));
    await startWatcher();
    changes = [];
    await unlink(join(dir, 'a.yaml'));
    await sleep(10);
    await writeFile(join(dir, 'a.yaml'), app('a'));
    await sleep(500);
    expect(changes.filter((c) => c.entry === undefined)).toEqual([]);
    expect(store.get('App', 'a')).toBeDefined();
  });

  it('never acts on a torn file written in two chunks', async () => {
    await writeFile(join(dir, 'a.yaml'), app('a'));
    await startWatcher();
    changes = [];
    const text = app('a', 'nginx:4');
    const fh = await open(join(dir, 'a.yaml'), 'w');
    await fh.write(text.slice(0, 50));
    await sleep(15);
    await fh.write(text.slice(50));
    await fh.close();
    await waitFor('nginx:4', () => image('a') === 'nginx:4', 3000);
    await sleep(300);
    expect(changes.map((c) => c.entry?.problems.length)).toEqual([0]);
  });

  it('keeps the last good app through an invalid edit and removes it only when the file is deleted', async () => {
    await writeFile(join(dir, 'a.yaml'), app('a'));
    await startWatcher();
    await writeFile(join(dir, 'a.yaml'), 'apiVersion: berth.dev/v1alpha1\nkind: App\nmetadata: {name: a}\nspec: {image: [}\n');
    await waitFor('the problem', () => store.get('App', 'a')?.problems.length, 3000);
    expect(image('a')).toBe('nginx:1');
    await unlink(join(dir, 'a.yaml'));
    await waitFor('deletion', () => store.get('App', 'a') === undefined, 3000);
  });

  it('does not report a file whose bytes did not change', async () => {
    await writeFile(join(dir, 'a.yaml'), app('a'));
    await startWatcher();
    const before = notifications;
    await writeFile(join(dir, 'a.yaml'), app('a'));
    await sleep(400);
    expect(notifications).toBe(before);
  });
});
