import { describe, it, expect } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { LazyLocalCa } from '../../src/certs/lazy-local-ca.js';
import { LocalCa } from '../../src/certs/local-ca.js';

describe('the lazily loaded local CA', () => {
  it('reports the same signer id as the CA itself, before and after loading it, so stored certificates stay valid', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-lazyca-'));
    try {
      const before = await LazyLocalCa.open(dir);
      expect(before.id).toBe('local:none');
      const leaf = await before.issue('app.lan', AbortSignal.timeout(10_000));
      const ca = await LocalCa.loadOrCreate(dir);
      expect(before.id).toBe(ca.id);
      expect((await LazyLocalCa.open(dir)).id).toBe(ca.id);
      expect(new X509Certificate(leaf.certPem).checkIssued(new X509Certificate(ca.exportRootPem()))).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
