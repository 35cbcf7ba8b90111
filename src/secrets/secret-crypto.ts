// AES-256-GCM for secret values at rest: a random 96-bit nonce per value, the app and key
// name as additional authenticated data (a ciphertext cannot be moved to another app or
// variable), and a key id so values written under an older key still open after rotation.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

export const KEY_BYTES = 32;

export interface SecretKey {
  id: string;
  key: Buffer;
}

export function keyFrom(material: Buffer): SecretKey {
  if (material.length !== KEY_BYTES) throw new Error(`a secret key must be ${KEY_BYTES} bytes (got ${material.length})`);
  return { id: createHash('sha256').update(material).digest('hex').slice(0, 8), key: material };
}

/** Parse BERTH_SECRET_KEY: 64 hex characters or base64 of 32 bytes. */
export function parseKeyText(text: string): SecretKey {
  const t = text.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
  if (bytes.length !== KEY_BYTES) throw new Error('BERTH_SECRET_KEY must be 32 bytes, as 64 hex characters or base64 (e.g. openssl rand -base64 32)');
  return keyFrom(bytes);
}

function aad(app: string, name: string): Buffer {
  return Buffer.from(`berth/secret/${app}/${name}`);
}

export function encryptSecret(key: SecretKey, app: string, name: string, value: string): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key.key, nonce);
  cipher.setAAD(aad(app, name));
  const ct = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
  return ['v1', key.id, nonce.toString('base64'), ct.toString('base64'), cipher.getAuthTag().toString('base64')].join(':');
}

/** Decrypt with whichever known key wrote the value; throws when none did or the value was tampered with. */
export function decryptSecret(keys: SecretKey[], app: string, name: string, sealed: string): string {
  const [version, keyId, nonce, ct, tag] = sealed.split(':');
  if (version !== 'v1' || !keyId || nonce === undefined || ct === undefined || tag === undefined) throw new Error(`secret ${app}/${name} is not in a format berth knows`);
  const key = keys.find((k) => k.id === keyId);
  if (!key) throw new Error(`secret ${app}/${name} was sealed with key ${keyId}, which berth does not have (set BERTH_SECRET_KEY_PREVIOUS to rotate)`);
  const decipher = createDecipheriv('aes-256-gcm', key.key, Buffer.from(nonce, 'base64'));
  decipher.setAAD(aad(app, name));
  decipher.setAuthTag(Buffer.from(tag, 'base64'));
  try {
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64')), decipher.final()]).toString('utf8');
  } catch {
    throw new Error(`secret ${app}/${name} does not decrypt: wrong key or tampered file`);
  }
}
