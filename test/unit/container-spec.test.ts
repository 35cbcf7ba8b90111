import { describe, it, expect } from 'vitest';
import { containerSpecFor } from '../../controllers/app/container-spec.js';
import { desiredFrom, CONFIG } from '../helpers/app-harness.js';
import { appYaml } from '../helpers/berth-process.js';

const spec = (extra = '') => desiredFrom(appYaml('web', `image: nginx:1\n${extra}`));

describe('the container spec', () => {
  it('carries the ownership, hash and replica labels and berth\'s defaults', () => {
    const { spec: s, hash } = containerSpecFor(CONFIG, spec('env: {B: 2, A: x}'), 1);
    expect(s.name).toBe(`mt-web-${hash.slice(0, 10)}-1`);
    expect(s.labels).toMatchObject({ 'dev.berth.managed-by': 'berth', 'dev.berth.instance': 'mt', 'dev.berth.app': 'web', 'dev.berth.spec-hash': hash, 'dev.berth.replica': '1' });
    expect([s.memoryBytes, s.nanoCpus, s.pidsLimit, s.port, s.stopTimeoutSeconds]).toEqual([512 * 1024 ** 2, 5e8, 512, 80, 10]);
    expect(s.env).toEqual(['A=x', 'B=2']);
    expect(s.aliases).toEqual(['web']);
  });

  it('changes the hash when what the container is made of changes, not for routes, idle, replicas or env order', () => {
    const base = containerSpecFor(CONFIG, spec('env: {A: "1", B: "2"}'), 0).hash;
    expect(containerSpecFor(CONFIG, spec('env: {B: "2", A: "1"}\nroutes: [{host: a.lan}]\nidle: {after: 5m}\nreplicas: 3'), 0).hash).toBe(base);
    expect(containerSpecFor(CONFIG, spec('env: {A: "1", B: "3"}'), 0).hash).not.toBe(base);
    expect(containerSpecFor(CONFIG, spec('env: {A: "1", B: "2"}\nresources: {memory: 256m}'), 0).hash).not.toBe(base);
  });

  it('puts secret values in the environment (and so in the hash: a changed secret rolls the app)', () => {
    const d = spec('secretEnv: [TOKEN]');
    const a = containerSpecFor(CONFIG, { ...d, secrets: { TOKEN: 'one' } }, 0);
    const b = containerSpecFor(CONFIG, { ...d, secrets: { TOKEN: 'two' } }, 0);
    expect(a.spec.env).toContain('TOKEN=one');
    expect(a.hash).not.toBe(b.hash);
    expect(JSON.stringify(a.spec.labels)).not.toContain('one');
  });
});
