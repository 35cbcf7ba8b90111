// berth-test/node-app: a FROM-scratch image running this machine's own Node binary (copied with
// the shared libraries `ldd` lists and the dynamic loader) and node-app/server.mjs with the
// `ws` package — a keep-alive HTTP/websocket/SSE test app built offline, with no registry.
// Plain ESM (typed by node-image.d.mts) so that bench/*.mjs can build the same image.
//
// Tag: berth-test/node-app:<hash of the script, ws and Node>[-<version>], labelled
// dev.berth.test=1. Built once per run (a process-wide cache, and an existing tag is reused).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const SCRIPT = join(here, 'node-app', 'server.mjs');
const WS_DIR = join(here, '..', '..', 'node_modules', 'ws');
export const NODE_APP_REPO = 'berth-test/node-app';
export const NODE_APP_PORT = 8080;
const TEST_LABEL = 'dev.berth.test';

/** Absolute paths of the shared libraries and the loader `ldd` names for `binary`. */
export async function sharedLibraries(binary) {
  const { stdout } = await run('ldd', [binary]);
  const paths = [];
  for (const line of stdout.split('\n')) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (m) paths.push(m[1]);
    else if (/=>\s*not found/.test(line)) throw new Error(`ldd ${binary}: ${line.trim()}`);
  }
  return paths;
}

let fingerprint;
async function imageHash() {
  fingerprint ??= (async () => {
    const h = createHash('sha256');
    h.update(await readFile(SCRIPT));
    h.update(await readFile(join(WS_DIR, 'package.json')));
    h.update(`${process.execPath} ${process.version} ${process.arch}`);
    h.update(await readFile(fileURLToPath(import.meta.url)));
    return h.digest('hex').slice(0, 12);
  })();
  return fingerprint;
}

/** The tag for `version` (what GET / names): `…:<hash>` for v1, `…:<hash>-<version>` otherwise. */
export async function nodeAppTag(version = 'v1') {
  const hash = await imageHash();
  return `${NODE_APP_REPO}:${version === 'v1' ? hash : `${hash}-${version}`}`;
}

const builds = new Map();

/** Builds (once) and returns the tag of the node app image whose GET / names `version`. */
export function nodeAppImage(version = 'v1') {
  if (!/^[a-z0-9][a-z0-9.-]{0,30}$/.test(version)) throw new Error(`bad version ${version}`);
  let p = builds.get(version);
  if (!p) {
    p = buildNodeApp(version);
    builds.set(version, p);
    p.catch(() => builds.delete(version));
  }
  return p;
}

async function exists(tag) {
  try {
    await run('docker', ['image', 'inspect', '--format', '{{.Id}}', tag]);
    return true;
  } catch {
    return false;
  }
}

async function buildNodeApp(version) {
  const tag = await nodeAppTag(version);
  if (await exists(tag)) return tag;
  const dir = await mkdtemp(join(tmpdir(), 'berth-node-img-'));
  try {
    const rootfs = join(dir, 'rootfs');
    const place = async (src, dest) => {
      await mkdir(dirname(join(rootfs, dest)), { recursive: true });
      // copyFile follows symlinks: the image gets the real bytes under the name the loader asks for.
      await copyFile(src, join(rootfs, dest));
    };
    await place(process.execPath, '/usr/bin/node');
    await chmod(join(rootfs, 'usr/bin/node'), 0o755);
    for (const lib of await sharedLibraries(process.execPath)) {
      await place(lib, lib);
      await chmod(join(rootfs, lib), 0o755);
    }
    await place(SCRIPT, '/app/server.mjs');
    await cp(WS_DIR, join(rootfs, 'app/node_modules/ws'), { recursive: true, dereference: true });
    await mkdir(join(rootfs, 'tmp'), { recursive: true });
    await writeFile(join(dir, 'Dockerfile'), [
      'FROM scratch',
      'COPY rootfs/ /',
      `ENV APP_VERSION=${version}`,
      `EXPOSE ${NODE_APP_PORT}`,
      'WORKDIR /app',
      'CMD ["/usr/bin/node", "/app/server.mjs"]',
      '',
    ].join('\n'));
    await run('docker', ['build', '-q', '--label', `${TEST_LABEL}=1`, '-t', tag, dir], { maxBuffer: 16 << 20 });
    return tag;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
