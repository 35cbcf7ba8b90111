import { describe, it, expect } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadManifestText, loadManifestFile, formatProblem } from '../../src/manifests/loader.js';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { App } from '../../src/api/types.generated.js';

const HOSTILE = new URL('../fixtures/hostile/', import.meta.url).pathname;

/** file -> [line:col, a phrase the message must contain]. Each must be rejected exactly there. */
const CORPUS: Record<string, [string, string]> = {
  'alias-bomb.yaml': ['1:1', 'alias bomb'],
  'bad-duration.yaml': ['6:17', 'spec.idle.after: "5 minutes" is not valid: must be a duration'],
  'bad-indent.yaml': ['5:1', 'YAML syntax error'],
  'bad-memory.yaml': ['6:23', 'spec.resources.memory: "lots" is not valid'],
  'command-string.yaml': ['6:12', 'spec.command: must be array'],
  'docker-sock-label-only.yaml': ['8:3', 'unknown field "cap_add"'],
  'duplicate-key.yaml': ['6:3', 'duplicate key'],
  'duplicate-mount.yaml': ['8:30', '/data/ is mounted twice'],
  'env-bad-key.yaml': ['6:9', 'invalid key "1BAD"'],
  'gitrepo-bad-url.yaml': ['4:13', 'must be a clone URL'],
  'host-uppercase.yaml': ['6:19', 'must be a lower-case host name'],
  'hostpath-relative.yaml': ['7:18', 'must be an absolute host path'],
  'image-and-build.yaml': ['5:3', 'set only one of image or build'],
  'image-invalid.yaml': ['5:10', 'must be an image reference'],
  'memory-too-small.yaml': ['6:23', "below Docker's minimum of 6m"],
  'missing-kind.yaml': ['1:1', 'missing "kind"'],
  'name-dotdot.yaml': ['3:18', 'metadata.name: "../x" is not valid: must be a DNS label'],
  'name-empty.yaml': ['3:18', 'metadata.name: "" is not valid'],
  'name-leading-dash.yaml': ['3:18', '"-blog" is not valid'],
  'name-missing.yaml': ['3:11', 'missing required field "name"'],
  'name-too-long.yaml': ['3:18', 'must NOT have more than 63 characters'],
  'name-unicode.yaml': ['3:18', '"blög" is not valid'],
  'name-uppercase.yaml': ['3:18', '"Blog" is not valid'],
  'neither-image-nor-build.yaml': ['5:3', 'exactly one of image or build is required'],
  'network-host.yaml': ['6:3', 'unknown field "networkMode"'],
  'not-a-mapping-list.yaml': ['1:1', 'must be a mapping'],
  'not-a-mapping-scalar.yaml': ['1:1', 'must be a mapping'],
  'nul-bytes.yaml': ['2:7', 'unknown kind'],
  'port-range.yaml': ['6:9', 'spec.port: must be <= 65535'],
  'port-string.yaml': ['6:9', 'spec.port: must be integer (got "80")'],
  'privileged.yaml': ['6:3', 'unknown field "privileged"'],
  'replicas-negative.yaml': ['6:13', 'spec.replicas: must be >= 0'],
  'reserved-label.yaml': ['5:12', 'reserved for berth'],
  'route-path-relative.yaml': ['6:32', 'must be an absolute path'],
  'second-doc-invalid.yaml': ['9:28', 'spec.port: must be >= 1'],
  'secretenv-also-env.yaml': ['7:15', 'TOKEN is also set in env'],
  'status-in-manifest.yaml': ['5:1', 'unknown field "status"'],
  'tab-indent.yaml': ['4:1', 'Tabs are not allowed'],
  'tls-enum.yaml': ['6:8', 'must be one of auto, acme, local, none (got "yes")'],
  'typo-field.yaml': ['5:3', 'unknown field "imgae" (did you mean "image"?)'],
  'typo-nested.yaml': ['7:7', 'unknown field "hots" (did you mean "host"?)'],
  'unclosed-quote.yaml': ['6:1', 'Missing closing'],
  'unknown-kind.yaml': ['2:7', 'unknown kind "Deployment"'],
  'volume-name-and-hostpath.yaml': ['7:7', 'set only one of name or hostPath'],
  'wrong-apiversion.yaml': ['1:13', 'apiVersion must be berth.dev/v1alpha1 (got "berth.dev/v2")'],
};

const VALID = `apiVersion: berth.dev/v1alpha1
kind: App
metadata:
  name: blog
spec:
  image: nginx:1.27
  routes:
    - host: blog.lan
`;

describe('the manifest loader', () => {
  describe('rejects each hostile or broken manifest of the corpus with its reason and location', () => {
    for (const [file, [at, phrase]] of Object.entries(CORPUS)) {
      it(file, async () => {
        const load = await loadManifestFile(join(HOSTILE, file), file);
        const lines = load.problems.map(formatProblem);
        expect(lines.some((l) => l.startsWith(`${file}:${at}: `) && l.includes(phrase)), lines.join('\n')).toBe(true);
      });
    }
  });

  it('has an expectation for every file of the corpus (at least 30)', () => {
    const files = readdirSync(HOSTILE).filter((f) => f.endsWith('.yaml')).sort();
    expect(files).toEqual(Object.keys(CORPUS).sort());
    expect(files.length).toBeGreaterThanOrEqual(30);
  });

  it('refuses a 5 MiB file without parsing it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-big-'));
    try {
      const path = join(dir, 'big.yaml');
      await writeFile(path, `${VALID}#${'x'.repeat(5 * 1024 * 1024)}\n`);
      const load = await loadManifestFile(path, 'big.yaml');
      expect(load.complete).toBe(false);
      expect(formatProblem(load.problems[0]!)).toMatch(/^big\.yaml:1:1: file is \d+ bytes; manifests are limited to 1048576 bytes/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses 10 000 levels of flow nesting before the parser sees them (it would abort the process)', () => {
    const load = loadManifestText('deep.yaml', `a: ${'['.repeat(10_000)}${']'.repeat(10_000)}\n`);
    expect(formatProblem(load.problems[0]!)).toBe('deep.yaml:1:68: nested more than 64 levels deep');
  });

  it('refuses absurd block nesting', () => {
    let text = '';
    for (let i = 0; i < 400; i++) text += `${' '.repeat(i)}k${i}:\n`;
    const load = loadManifestText('block.yaml', text);
    expect(formatProblem(load.problems[0]!)).toMatch(/^block\.yaml:258:257: indented more than 256 columns/);
  });

  it('refuses a file with more documents than any manifest folder needs', () => {
    const load = loadManifestText('many.yaml', `${VALID}---\n`.repeat(300));
    expect(load.problems[0]!.message).toMatch(/^301 documents in one file; at most 256$/);
  });

  it('applies the schema defaults', () => {
    const load = loadManifestText('blog.yaml', VALID);
    expect(load.problems).toEqual([]);
    const app = load.objects[0]!.object as App;
    expect(app.spec.port).toBe(80);
    expect(app.spec.tls).toBe('auto');
    expect(app.spec.replicas).toBe(1);
    expect(app.spec.resources).toEqual({ memory: '512m', cpus: 0.5, pids: 512 });
    expect(app.spec.healthCheck).toEqual({ timeoutSeconds: 2, startPeriodSeconds: 60 });
    expect(app.spec.deploy).toEqual({ strategy: 'rolling', stopTimeoutSeconds: 10 });
    expect(app.spec.routes![0]).toEqual({ host: 'blog.lan', path: '/', stripPrefix: false });
    expect(app.spec.paused).toBe(false);
  });

  it('hashes the spec independently of key order and comments', () => {
    const a = loadManifestText('a.yaml', VALID).objects[0]!.specHash;
    const reordered = loadManifestText('b.yaml', `# a comment\nkind: App\napiVersion: berth.dev/v1alpha1\nspec:\n  routes: [{host: blog.lan}]\n  image: nginx:1.27\nmetadata: {name: blog}\n`).objects[0]!.specHash;
    const changed = loadManifestText('c.yaml', VALID.replace('nginx:1.27', 'nginx:1.28')).objects[0]!.specHash;
    expect(reordered).toBe(a);
    expect(changed).not.toBe(a);
  });

  it('keeps the valid documents of a file whose other document is invalid, and names the invalid object', () => {
    const load = loadManifestText('two.yaml', readFileSync(join(HOSTILE, 'second-doc-invalid.yaml'), 'utf8'));
    expect(load.objects.map((o) => o.name)).toEqual(['fine']);
    expect(load.problems[0]).toMatchObject({ kind: 'App', name: 'broken', reason: 'InvalidSpec' });
    expect(load.complete).toBe(true);
  });

  it('marks a file with a syntax error incomplete, so nothing it defined is removed', () => {
    const load = loadManifestText('x.yaml', `${VALID}  bad: [\n`);
    expect(load.complete).toBe(false);
    expect(load.objects).toEqual([]);
  });

  it('ignores empty documents and comment-only files', () => {
    expect(loadManifestText('e.yaml', '# nothing yet\n---\n')).toEqual({ file: 'e.yaml', objects: [], problems: [], complete: true });
  });

  it('accepts env values written as numbers and booleans, YAML anchors and merge keys', () => {
    const load = loadManifestText('m.yaml', `x: &defaults {LOG: info}
---
apiVersion: berth.dev/v1alpha1
kind: App
metadata: {name: m}
spec:
  image: nginx
  env: {PORT: 8080, DEBUG: true}
`);
    expect(load.problems.map(formatProblem)).toEqual(['m.yaml:1:1: missing "kind" (one of App, GitRepository, AppRevision)']);
    expect((load.objects[0]!.object as App).spec.env).toEqual({ PORT: 8080, DEBUG: true });
  });
});
