// A second, isolated Docker engine for tests that restart or stop the daemon: restarting the
// shared engine would break every other test (and every other engineer) using it.
//
// Coexisting with the main engine on one host takes care, learned the hard way:
// - `--bridge=none` makes dockerd DELETE the host's `docker0` (removeDefaultBridgeInterface),
//   cutting the main engine's default network. So the private engine gets a default bridge of
//   its own, created here with its own name and subnet and passed with `-b`.
// - `--default-address-pool` must NOT be set: on every restart, a daemon with a default address
//   pool (and no live-restore) also calls removeDefaultBridgeInterface, i.e. deletes `docker0`
//   again (moby 20.10 daemon_unix.go, "Clear stale bridge network"). Without it, networks come
//   from Docker's predefined pools, and libnetwork skips any subnet already routed on the host,
//   so the private engine's networks never overlap the main engine's.
// - `--iptables=true` makes a second dockerd flush and recreate the shared DOCKER and
//   DOCKER-ISOLATION chains, wiping the main engine's rules. So: `--iptables=false`,
//   `--ip-forward=false`, `--ip-masq=false`. The host still reaches containers on the private
//   bridges (locally originated traffic needs no FORWARD rule), which is all berth needs.
// - Its own data root, exec root (netns, containerd state and sockets), pidfile, socket, and
//   an empty config file (never /etc/docker/daemon.json).
// destroy() removes containers and networks through the API, stops the engine (and, if it
// hangs, every process whose command line names its folder: containerd, shims), unmounts what
// is left under its folder, deletes the bridges it made and the folder itself.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { IMAGES } from './docker.js';

const run = promisify(execFile);

export interface PrivateDockerd {
  /** `unix:///…/docker.sock`: pass as `--docker` to berth or DOCKER_HOST / `-H` to the CLI. */
  readonly dockerHost: string;
  /** The daemon's folder (data root, exec root, log). */
  readonly root: string;
  /** Stop, stay down `downMs` (default 0), start again; resolves when the engine answers. */
  restart(opts?: { downMs?: number }): Promise<void>;
  /** Graceful stop (SIGTERM; containers stop as with a real daemon shutdown, no live-restore). */
  stop(): Promise<void>;
  /** Start again after stop(); resolves when the engine answers. */
  start(): Promise<void>;
  /** Leaves nothing behind: processes, mounts, bridges, folders. Safe to call twice. */
  destroy(): Promise<void>;
  /** The docker CLI against this engine; stdout trimmed. */
  docker(...args: string[]): Promise<string>;
  /** The daemon's log so far (for failure messages). */
  log(): Promise<string>;
  readonly running: boolean;
}

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;

async function sh(cmd: string, args: string[]): Promise<string> {
  const { stdout } = await run(cmd, args, { maxBuffer: 64 << 20 });
  return stdout.trim();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A /24 in 10.214.0.0/16 for the private default bridge, not routed on the host yet. */
async function pickBridgeSubnet(): Promise<string> {
  const routes = await sh('ip', ['-4', 'route', 'show', 'table', 'all']);
  const used = new Set([...routes.matchAll(/\b10\.214\.(\d+)\.\d+/g)].map((m) => Number(m[1])));
  const start = randomBytes(1)[0]!;
  for (let i = 0; i < 256; i++) {
    const k = (start + i) % 256;
    if (!used.has(k)) return `10.214.${k}.1/24`;
  }
  throw new Error('no free /24 in 10.214.0.0/16 for a private dockerd bridge');
}

interface MainBridge {
  mac: string;
  cidrs: string[];
}

/** The main engine's docker0 as it is now (to notice, and undo, a daemon deleting it). */
async function mainBridge(): Promise<MainBridge | undefined> {
  try {
    const [info] = JSON.parse(await sh('ip', ['-j', 'addr', 'show', 'dev', 'docker0'])) as { address: string; addr_info: { family: string; local: string; prefixlen: number }[] }[];
    if (!info) return undefined;
    return { mac: info.address, cidrs: info.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`) };
  } catch {
    return undefined;
  }
}

/** Throws if docker0 vanished, after putting it back so the main engine keeps working. */
async function checkMainBridge(before: MainBridge | undefined): Promise<void> {
  if (!before || (await mainBridge())) return;
  await sh('ip', ['link', 'add', 'docker0', 'type', 'bridge']);
  await sh('ip', ['link', 'set', 'docker0', 'address', before.mac]);
  for (const cidr of before.cidrs) await sh('ip', ['addr', 'add', cidr, 'dev', 'docker0']);
  await sh('ip', ['link', 'set', 'docker0', 'up']);
  throw new Error('the private dockerd deleted the main engine\'s docker0 (recreated it); fix the daemon flags');
}

async function linkNames(): Promise<Set<string>> {
  const out = await sh('ip', ['-o', 'link', 'show']);
  return new Set([...out.matchAll(/^\d+: ([^:@\s]+)/gm)].map((m) => m[1]!));
}

/** Mount points under dir, deepest first. */
async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const points = info
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined && (p === dir || p.startsWith(`${dir}/`)))
    .map((p) => p.replace(/\\040/g, ' '));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Pids of processes whose command line mentions dir (our dockerd, its containerd and shims). */
async function processesMentioning(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).replace(/\0/g, ' ');
      if (cmdline.includes(dir)) pids.push(Number(entry));
    } catch {
      // gone already
    }
  }
  return pids;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function startPrivateDockerd(): Promise<PrivateDockerd> {
  const root = await mkdtemp(join(tmpdir(), 'berth-dockerd-'));
  const socket = join(root, 'docker.sock');
  const dockerHost = `unix://${socket}`;
  const logFile = join(root, 'dockerd.log');
  const configFile = join(root, 'daemon.json');
  await writeFile(configFile, '{}\n');
  const bridgeCidr = await pickBridgeSubnet();
  // Interface names are at most 15 characters.
  const bridge = `bpd${randomBytes(4).toString('hex')}`;
  const linksBefore = await linkNames();
  const docker0 = await mainBridge();
  /** Bridges of networks this engine created (br-<id12>), learned while it runs. */
  const networkBridges = new Set<string>();
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let destroyed = false;

  await sh('ip', ['link', 'add', bridge, 'type', 'bridge']);
  await sh('ip', ['addr', 'add', bridgeCidr, 'dev', bridge]);
  await sh('ip', ['link', 'set', bridge, 'up']);

  const args = [
    '--config-file', configFile,
    '--data-root', join(root, 'data'),
    '--exec-root', join(root, 'exec'),
    '--pidfile', join(root, 'docker.pid'),
    '-H', dockerHost,
    '--bridge', bridge,
    '--iptables=false',
    '--ip-forward=false',
    '--ip-masq=false',
    '--userland-proxy=false',
    '--shutdown-timeout', '10',
  ];

  const cli = (...a: string[]) => sh('docker', ['-H', dockerHost, ...a]);

  async function waitAnswering(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (child?.exitCode !== null || child.signalCode !== null) {
        throw new Error(`private dockerd exited during start:\n${(await readFile(logFile, 'utf8').catch(() => '')).slice(-4000)}`);
      }
      try {
        await run('docker', ['-H', dockerHost, 'version', '--format', '{{.Server.Version}}'], { timeout: 5000 });
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`private dockerd did not answer within ${READY_TIMEOUT_MS} ms`);
        await sleep(100);
      }
    }
  }

  async function start(): Promise<void> {
    if (destroyed) throw new Error('private dockerd was destroyed');
    if (child && child.exitCode === null && child.signalCode === null) return;
    const fd = openSync(logFile, 'a');
    try {
      child = spawn('dockerd', args, { stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    const c = child;
    exited = new Promise((resolve) => c.once('exit', () => resolve()));
    c.once('error', () => undefined);
    await waitAnswering();
    await checkMainBridge(docker0);
  }

  async function rememberNetworks(): Promise<void> {
    try {
      const ids = (await cli('network', 'ls', '-q', '--no-trunc')).split('\n').filter(Boolean);
      for (const id of ids) networkBridges.add(`br-${id.slice(0, 12)}`);
    } catch {
      // The engine is not answering: what it made before is already remembered.
    }
  }

  async function stop(): Promise<void> {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await rememberNetworks();
    c.kill('SIGTERM');
    const timedOut = await Promise.race([exited.then(() => false), sleep(STOP_TIMEOUT_MS).then(() => true)]);
    if (timedOut) {
      c.kill('SIGKILL');
      await exited;
    }
  }

  async function destroy(): Promise<void> {
    if (destroyed) return;
    destroyed = true;
    const c = child;
    if (c && c.exitCode === null && c.signalCode === null) {
      // Through the API first, so the engine removes its veths, netns mounts and br-* itself.
      try {
        const ids = (await cli('ps', '-aq')).split('\n').filter(Boolean);
        if (ids.length) await cli('rm', '-f', ...ids);
        await rememberNetworks();
        await cli('network', 'prune', '-f');
      } catch {
        // Best effort: the checks below clean up whatever is left.
      }
    }
    await stop().catch(() => undefined);
    // Anything still running from our folder (containerd, shims after a SIGKILL): end it.
    for (let round = 0; round < 2; round++) {
      const pids = await processesMentioning(root);
      if (pids.length === 0) break;
      for (const pid of pids) {
        try {
          process.kill(pid, round === 0 ? 'SIGTERM' : 'SIGKILL');
        } catch {
          // already gone
        }
      }
      const deadline = Date.now() + 5000;
      while (pids.some(alive) && Date.now() < deadline) await sleep(50);
    }
    for (const m of await mountsUnder(root)) await sh('umount', ['-l', m]).catch(() => undefined);
    const links = await linkNames();
    for (const name of [bridge, ...networkBridges]) {
      if (links.has(name) && !linksBefore.has(name)) await sh('ip', ['link', 'del', name]).catch(() => undefined);
    }
    await rm(root, { recursive: true, force: true, maxRetries: 3 });
    await checkMainBridge(docker0);
  }

  try {
    await start();
  } catch (e) {
    await destroy();
    throw e;
  }

  return {
    dockerHost,
    root,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    start,
    stop,
    async restart(opts = {}) {
      await stop();
      if (opts.downMs) await sleep(opts.downMs);
      await start();
    },
    destroy,
    docker: cli,
    log: () => readFile(logFile, 'utf8').catch(() => ''),
  };
}

/**
 * Copies the standard test images (built on the main engine by the global setup) into a
 * private engine: `docker save | docker -H … load`, no registry, no rebuild.
 */
export async function loadStandardImages(dockerHost: string, images: readonly string[] = Object.values(IMAGES)): Promise<void> {
  const save = spawn('docker', ['save', ...images], { stdio: ['ignore', 'pipe', 'pipe'] });
  const load = spawn('docker', ['-H', dockerHost, 'load', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  save.stdout.pipe(load.stdin);
  let errors = '';
  save.stderr.on('data', (d: Buffer) => (errors += d.toString()));
  load.stderr.on('data', (d: Buffer) => (errors += d.toString()));
  const code = (p: ChildProcess) => new Promise<number | null>((resolve) => p.once('close', resolve));
  const [a, b] = await Promise.all([code(save), code(load)]);
  if (a !== 0 || b !== 0) throw new Error(`loading test images into ${dockerHost} failed: ${errors}`);
}
