import { describe, it, expect } from 'vitest';
import { mkdtemp, rm, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { decryptSecret, encryptSecret, keyFrom, parseKeyText } from '../../src/secrets/secret-crypto.js';
import { listSecretNames, loadKeyRing, readAllSecrets, updateSecrets } from '../../src/secrets/secret-store.js';

const key = keyFrom(randomBytes(32));

describe('secret encryption', () => {
  it('round-trips and never repeats a ciphertext (random nonce)', () => {
    const a = encryptSecret(key, 'web', 'TOKEN', 'hunter2-canary');
    const b = encryptSecret(key, 'web', 'TOKEN', 'hunter2-canary');
    expect(a).not.toBe(b);
    expect(a).not.toContain('hunter2');
    expect(decryptSecret([key], 'web', 'TOKEN', a)).toBe('hunter2-canary');
  });

  it('binds a value to its app and name: moved elsewhere it does not open', () => {
    const sealed = encryptSecret(key, 'web', 'TOKEN', 'x');
    expect(() => decryptSecret([key], 'other', 'TOKEN', sealed)).toThrow(/does not decrypt/);
    expect(() => decryptSecret([key], 'web', 'OTHER', sealed)).toThrow(/does not decrypt/);
  });

  it('detects tampering and a wrong key', () => {
    const sealed = encryptSecret(key, 'web', 'TOKEN', 'value');
    const parts = sealed.split(':');
    parts[3] = Buffer.from('tampered').toString('base64');
    expect(() => decryptSecret([key], 'web', 'TOKEN', parts.join(':'))).toThrow(/does not decrypt/);
    expect(() => decryptSecret([keyFrom(randomBytes(32))], 'web', 'TOKEN', sealed)).toThrow(/sealed with key/);
  });

  it('opens values sealed with a previous key after rotation', () => {
    const old = keyFrom(randomBytes(32));
    const sealed = encryptSecret(old, 'web', 'T', 'v');
    expect(decryptSecret([key, old], 'web', 'T', sealed)).toBe('v');
  });

  it('accepts BERTH_SECRET_KEY as hex or base64 of 32 bytes, and refuses anything else', () => {
    const raw = randomBytes(32);
    expect(parseKeyText(raw.toString('hex')).id).toBe(parseKeyText(raw.toString('base64')).id);
    expect(() => parseKeyText('too short')).toThrow(/32 bytes/);
  });
});

describe('the secret store', () => {
  it('generates a 0600 key file once, stores only sealed values, and lists names only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-secrets-'));
    try {
      const ring = (await loadKeyRing(dir, {}, true))!;
      expect((await stat(join(dir, 'secret.key'))).mode & 0o777).toBe(0o600);
      expect((await loadKeyRing(dir, {}, true))!.current.id).toBe(ring.current.id);
      await updateSecrets(dir, ring, (apps, seal) => void (apps.web = { DB: seal('web', 'DB', 'postgres://canary-value') }));
      await updateSecrets(dir, ring, (apps, seal) => void (apps.web!.TOKEN = seal('web', 'TOKEN', 't0k3n')));
      const file = await readFile(join(dir, 'secrets.json'), 'utf8');
      expect(file).not.toContain('canary-value');
      expect((await stat(join(dir, 'secrets.json'))).mode & 0o777).toBe(0o600);
      expect(await listSecretNames(dir, 'web')).toEqual(['DB', 'TOKEN']);
      expect((await readAllSecrets(dir, ring)).secrets).toEqual({ web: { DB: 'postgres://canary-value', TOKEN: 't0k3n' } });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('serialises concurrent writers so no change is lost', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-secrets-'));
    try {
      const ring = (await loadKeyRing(dir, {}, true))!;
      await Promise.all(Array.from({ length: 20 }, (_, i) => updateSecrets(dir, ring, (apps, seal) => void ((apps.web ??= {})[`K${i}`] = seal('web', `K${i}`, `v${i}`)))));
      expect(await listSecretNames(dir, 'web')).toHaveLength(20);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
