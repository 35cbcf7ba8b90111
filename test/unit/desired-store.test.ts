import { describe, it, expect } from 'vitest';
import { DesiredStore } from '../../src/desired/desired-store.js';
import { loadManifestText, type FileLoad } from '../../src/manifests/loader.js';
import { emptyState, type StateData } from '../../src/state/state-schema.js';

const app = (name: string, image = 'nginx:1', extra = '') => `apiVersion: berth.dev/v1alpha1
kind: App
metadata: {name: ${name}}
spec:
  image: ${image}${extra}
`;

function memoryState(data: StateData = emptyState()) {
  return { data, update: (m: (d: StateData) => void) => m(data) };
}

function loads(files: Record<string, string>): Map<string, FileLoad> {
  return new Map(Object.entries(files).map(([f, text]) => [f, loadManifestText(f, text)]));
}

describe('the desired store', () => {
  it('starts an object at generation 1 and bumps it only when the spec changes', () => {
    const store = new DesiredStore(memoryState());
    store.apply(loads({ 'a.yaml': app('a') }), true);
    expect(store.get('App', 'a')?.generation).toBe(1);
    expect(store.apply(loads({ 'a.yaml': `# a comment\n${app('a')}` }), true)).toEqual([]);
    expect(store.get('App', 'a')?.generation).toBe(1);
    const changes = store.apply(loads({ 'a.yaml': app('a', 'nginx:2') }), true);
    expect(changes.map((c) => [c.key, c.entry?.generation])).toEqual([['App/a', 2]]);
  });

  it('keeps the last good version when an edit is invalid, and reports why', () => {
    const store = new DesiredStore(memoryState());
    store.apply(loads({ 'a.yaml': app('a') }), true);
    store.apply(loads({ 'a.yaml': app('a', 'nginx:1', '\n  port: nope') }), true);
    const e = store.get('App', 'a')!;
    expect(e.generation).toBe(1);
    expect((e.object as { spec: { image: string } }).spec.image).toBe('nginx:1');
    expect(e.problems[0]).toMatchObject({ reason: 'InvalidSpec', file: 'a.yaml', line: 6 });
  });

  it('keeps the last good version of what a document that no longer parses defined; valid documents still apply', () => {
    const store = new DesiredStore(memoryState());
    store.apply(loads({ 'ab.yaml': `${app('a')}---\n${app('b')}` }), true);
    store.apply(loads({ 'ab.yaml': `${app('a')}---\n${app('b')}  broken: [\n` }), true);
    expect(store.list().map((e) => [e.name, e.generation, e.problems.length > 0])).toEqual([['a', 1, false], ['b', 1, true]]);
    store.apply(loads({ 'ab.yaml': 'broken: [\n' }), true);
    expect(store.list().map((e) => [e.name, e.generation, e.problems.length > 0])).toEqual([['a', 1, true], ['b', 1, true]]);
  });

  it('removes an object when its file is deleted, but never before the initial scan is complete', () => {
    const store = new DesiredStore(memoryState());
    store.apply(loads({ 'a.yaml': app('a'), 'b.yaml': app('b') }), true);
    expect(store.apply(loads({ 'a.yaml': app('a') }), false)).toEqual([]);
    expect(store.get('App', 'b')).toBeDefined();
    const changes = store.apply(loads({ 'a.yaml': app('a') }), true);
    expect(changes).toEqual([{ key: 'App/b', kind: 'App', name: 'b', entry: undefined }]);
  });

  it('reports a duplicate name on the later file, and keeps that stable across a restart even when the later file sorts first', () => {
    const data = emptyState();
    const first = new DesiredStore(memoryState(data));
    first.apply(loads({ 'z-first.yaml': app('dup', 'nginx:z') }), true);
    first.apply(loads({ 'z-first.yaml': app('dup', 'nginx:z'), 'a-later.yaml': app('dup', 'nginx:a') }), true);
    const restarted = new DesiredStore(memoryState(data));
    restarted.apply(loads({ 'z-first.yaml': app('dup', 'nginx:z'), 'a-later.yaml': app('dup', 'nginx:a') }), true);
    for (const store of [first, restarted]) {
      const e = store.get('App', 'dup')!;
      expect(e.file).toBe('z-first.yaml');
      expect((e.object as { spec: { image: string } }).spec.image).toBe('nginx:z');
      expect(e.problems).toEqual([expect.objectContaining({ reason: 'DuplicateName', file: 'a-later.yaml', message: 'App "dup" is already defined in z-first.yaml; this definition is ignored' })]);
    }
  });

  it('promotes the duplicate when the owning file goes away', () => {
    const store = new DesiredStore(memoryState());
    store.apply(loads({ 'one.yaml': app('dup', 'nginx:1'), 'two.yaml': app('dup', 'nginx:2') }), true);
    store.apply(loads({ 'two.yaml': app('dup', 'nginx:2') }), true);
    const e = store.get('App', 'dup')!;
    expect([e.file, e.generation, e.problems]).toEqual(['two.yaml', 2, []]);
  });

  it('persists generations and creation times through the state', () => {
    const data = emptyState();
    const store = new DesiredStore(memoryState(data), () => new Date('2026-01-01T00:00:00Z'));
    store.apply(loads({ 'a.yaml': app('a') }), true);
    store.apply(loads({ 'a.yaml': app('a', 'nginx:2') }), true);
    expect(data.objects['App/a']).toMatchObject({ generation: 2, createdAt: '2026-01-01T00:00:00.000Z', file: 'a.yaml' });
    const again = new DesiredStore(memoryState(data));
    expect(again.get('App', 'a')?.generation).toBe(2);
  });

  it('lists an object that has never been valid, without a spec, so its status can say why', () => {
    const store = new DesiredStore(memoryState());
    store.apply(loads({ 'a.yaml': app('a', 'nginx:1', '\n  port: 0') }), true);
    expect(store.get('App', 'a')).toMatchObject({ generation: 0, object: undefined, problems: [expect.objectContaining({ reason: 'InvalidSpec' })] });
  });

  it('keeps problems that name no object apart', () => {
    const store = new DesiredStore(memoryState());
    store.apply(loads({ 'x.yaml': 'kind: Gadget\n' }), true);
    expect(store.list()).toEqual([]);
    expect(store.fileProblems()[0]?.message).toMatch(/unknown kind "Gadget"/);
  });

  describe('route admission', () => {
    const routed = (name: string, host: string, image = 'nginx:1') => app(name, image, `\n  routes: [{host: ${host}}]`);

    it('refuses a new app claiming a route another app serves; admits it when the holder goes away', () => {
      const store = new DesiredStore(memoryState());
      store.apply(loads({ 'a.yaml': routed('a', 'x.lan') }), true);
      store.apply(loads({ 'a.yaml': routed('a', 'x.lan'), 'b.yaml': routed('b', 'x.lan') }), true);
      expect(store.get('App', 'b')).toMatchObject({ object: undefined, generation: 0 });
      expect(store.get('App', 'b')!.problems).toEqual([expect.objectContaining({ reason: 'RouteConflict', file: 'b.yaml', message: expect.stringMatching(/route x\.lan\/ is already served by app "a"; this app is not deployed/) })]);
      expect(store.get('App', 'a')!.problems).toEqual([]);
      store.apply(loads({ 'b.yaml': routed('b', 'x.lan') }), true);
      expect(store.get('App', 'b')).toMatchObject({ generation: 1, problems: [] });
    });

    it('keeps the last good version of an app whose edit claims a taken route, whoever is older', () => {
      const store = new DesiredStore(memoryState());
      store.apply(loads({ 'old.yaml': routed('old', 'old.lan') }), true);
      store.apply(loads({ 'old.yaml': routed('old', 'old.lan'), 'new.yaml': routed('new', 'new.lan') }), true);
      store.apply(loads({ 'old.yaml': routed('old', 'new.lan', 'nginx:2'), 'new.yaml': routed('new', 'new.lan') }), true);
      const old = store.get('App', 'old')!;
      expect(old.generation).toBe(1);
      expect((old.object as { spec: { image: string } }).spec.image).toBe('nginx:1');
      expect(old.problems[0]).toMatchObject({ reason: 'RouteConflict' });
      expect(store.get('App', 'new')!.problems).toEqual([]);
    });

    it('between two new claims, the name decides when created together, and the decision survives a restart', () => {
      const data = emptyState();
      const files = { 'z.yaml': routed('zeta', 'x.lan'), 'a.yaml': routed('alpha', 'x.lan') };
      new DesiredStore(memoryState(data), () => new Date('2026-01-01T00:00:00Z')).apply(loads(files), true);
      const again = new DesiredStore(memoryState(data));
      again.apply(loads(files), true);
      expect(again.get('App', 'alpha')!.problems).toEqual([]);
      expect(again.get('App', 'zeta')!.problems[0]).toMatchObject({ reason: 'RouteConflict' });
    });

    it('does not count an app listing the same route twice as a conflict, and compares hosts case-insensitively and paths without a trailing slash', () => {
      const store = new DesiredStore(memoryState());
      store.apply(loads({ 'a.yaml': app('a', 'nginx:1', '\n  routes: [{host: x.lan, path: /api}, {host: x.lan, path: /api}]') }), true);
      expect(store.get('App', 'a')!.problems).toEqual([]);
      store.apply(loads({ 'a.yaml': app('a', 'nginx:1', '\n  routes: [{host: x.lan, path: /api}]'), 'b.yaml': app('b', 'nginx:1', '\n  routes: [{host: x.lan, path: /api/}]') }), true);
      expect(store.get('App', 'b')!.problems[0]).toMatchObject({ reason: 'RouteConflict' });
    });
  });
});
