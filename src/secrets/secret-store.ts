// Secrets on disk: <state>/secrets.json holds only sealed values (secret-crypto.ts), mode
// 0600. The CLI is its only writer (under a lock file, read-modify-write); the operator reads
// it and watches it, so `berth secret set` takes effect (and rolls the app) while berth runs.
import { readFile, open, unlink, stat, mkdir } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { atomicWrite } from '../util/atomic-write.js';
import { decryptSecret, encryptSecret, keyFrom, parseKeyText, type SecretKey } from './secret-crypto.js';

export const SECRETS_FILE = 'secrets.json';
export const KEY_FILE = 'secret.key';
const LOCK_FILE = 'secrets.lock';
const STALE_LOCK_MS = 30_000;

interface SecretsFile {
  version: 1;
  apps: Record<string, Record<string, string>>;
}

export interface KeyRing {
  current: SecretKey;
  all: SecretKey[];
}

/**
 * The key ring: BERTH_SECRET_KEY (and BERTH_SECRET_KEY_PREVIOUS for rotation), or a key file
 * generated once in the state folder. `create` false: do not generate one (read-only use).
 */
export async function loadKeyRing(stateDir: string, env: NodeJS.ProcessEnv, create: boolean): Promise<KeyRing | undefined> {
  const previous = env.BERTH_SECRET_KEY_PREVIOUS ? [parseKeyText(env.BERTH_SECRET_KEY_PREVIOUS)] : [];
  if (env.BERTH_SECRET_KEY) {
    const current = parseKeyText(env.BERTH_SECRET_KEY);
    return { current, all: [current, ...previous] };
  }
  const path = join(stateDir, KEY_FILE);
  let material: Buffer | undefined;
  try {
    material = Buffer.from((await readFile(path, 'utf8')).trim(), 'base64');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (!material) {
    if (!create) return undefined;
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    material = randomBytes(32);
    await atomicWrite(path, `${material.toString('base64')}\n`, 0o600);
  }
  const current = keyFrom(material);
  return { current, all: [current, ...previous] };
}

async function readSealed(stateDir: string): Promise<SecretsFile> {
  try {
    const parsed = JSON.parse(await readFile(join(stateDir, SECRETS_FILE), 'utf8')) as SecretsFile;
    if (parsed.version !== 1 || typeof parsed.apps !== 'object' || parsed.apps === null) throw new Error('unexpected format');
    return parsed;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, apps: {} };
    throw new Error(`cannot read ${join(stateDir, SECRETS_FILE)}: ${(e as Error).message}`, { cause: e });
  }
}

/** Names of an app's secrets (never values). */
export async function listSecretNames(stateDir: string, app: string): Promise<string[]> {
  return Object.keys((await readSealed(stateDir)).apps[app] ?? {}).sort();
}

/** All secrets decrypted, per app (the operator's view). Values that do not open are reported apart. */
export async function readAllSecrets(stateDir: string, ring: KeyRing): Promise<{ secrets: Record<string, Record<string, string>>; errors: string[] }> {
  const file = await readSealed(stateDir);
  const secrets: Record<string, Record<string, string>> = {};
  const errors: string[] = [];
  for (const [app, values] of Object.entries(file.apps)) {
    for (const [name, sealed] of Object.entries(values)) {
      try {
        (secrets[app] ??= {})[name] = decryptSecret(ring.all, app, name, sealed);
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
  }
  return { secrets, errors };
}

/** Read-modify-write under a lock file, so two CLI invocations cannot lose each other's change. */
export async function updateSecrets(stateDir: string, ring: KeyRing, change: (apps: SecretsFile['apps'], seal: (app: string, name: string, value: string) => string) => void): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const lock = join(stateDir, LOCK_FILE);
  await acquire(lock);
  try {
    const file = await readSealed(stateDir);
    change(file.apps, (app, name, value) => encryptSecret(ring.current, app, name, value));
    for (const [app, values] of Object.entries(file.apps)) if (Object.keys(values).length === 0) delete file.apps[app];
    await atomicWrite(join(stateDir, SECRETS_FILE), `${JSON.stringify(file, null, 1)}\n`, 0o600);
  } finally {
    await unlink(lock).catch(() => undefined);
  }
}

async function acquire(lock: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await (await open(lock, 'wx', 0o600)).close();
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const st = await stat(lock).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > STALE_LOCK_MS) await unlink(lock).catch(() => undefined);
      else if (i > 100) throw new Error(`${lock} is held by another berth secret command`, { cause: e });
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Calls onChange (debounced) whenever secrets.json is replaced. */
export function watchSecrets(stateDir: string, onChange: () => void): FSWatcher {
  let timer: NodeJS.Timeout | undefined;
  const w = watch(stateDir, (_event, file) => {
    if (file !== SECRETS_FILE) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(onChange, 50);
  });
  w.on('close', () => timer && clearTimeout(timer));
  return w;
}
