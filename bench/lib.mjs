// Shared pieces of the benchmarks: run the built berth as a user would, talk to Docker, time
// first bytes, read a process's CPU/RSS/disk writes from /proc, and report.
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, mkdir, readFile, writeFile, copyFile, chmod, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parse } from 'yaml';

const run = promisify(execFile);
export const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const RESULTS = join(ROOT, 'bench', 'results');
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function docker(...args) {
  const { stdout } = await run('docker', args, { maxBuffer: 64 << 20 });
  return stdout.trim();
}

export function instanceName(prefix) {
  return `${prefix}${randomBytes(3).toString('hex')}`;
}

/** A FROM-scratch busybox httpd image serving `body` on port 80 (built once, labelled). */
export async function httpdImage(tag, body) {
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-img-'));
  try {
    await copyFile('/bin/busybox', join(dir, 'busybox'));
    await chmod(join(dir, 'busybox'), 0o755);
    await mkdir(join(dir, 'www'));
    await writeFile(join(dir, 'www', 'index.html'), body);
    await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nCOPY www /www\nCMD ["httpd", "-f", "-p", "80", "-h", "/www"]\n');
    await docker('build', '-q', '--label', 'dev.berth.test=1', '-t', tag, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return tag;
}

/** Removes the containers, volumes and networks of one instance (by label only). */
export async function cleanup(instance) {
  const f = `label=dev.berth.instance=${instance}`;
  const ids = (await docker('ps', '-aq', '--filter', f)).split('\n').filter(Boolean);
  if (ids.length) await docker('rm', '-f', ...ids).catch(() => {});
  for (const v of (await docker('volume', 'ls', '-q', '--filter', f)).split('\n').filter(Boolean)) await docker('volume', 'rm', '-f', v).catch(() => {});
  for (const n of (await docker('network', 'ls', '-q', '--filter', f)).split('\n').filter(Boolean)) await docker('network', 'rm', n).catch(() => {});
}

/** Starts the built berth (`npm run build` first) on fresh folders and ephemeral ports. */
export async function startBerth({ instance, args = [], env = {} }) {
  const root = await mkdtemp(join(tmpdir(), 'berth-bench-'));
  const dirs = { root, manifests: join(root, 'manifests'), status: join(root, 'status'), state: join(root, 'state') };
  await mkdir(dirs.manifests, { recursive: true });
  const proc = spawn(process.execPath, [
    join(ROOT, 'bin', 'berth.js'), 'run', '--manifests', dirs.manifests, '--status', dirs.status, '--state', dirs.state,
    '--admin', '127.0.0.1:0', '--http', '127.0.0.1:0', '--https', '127.0.0.1:0', '--instance', instance, '--log-level', 'warn', ...args,
  ], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`berth exited: ${stderr}`);
    const op = await readYaml(join(dirs.status, 'operator.yaml'));
    if (op?.status?.pid === proc.pid && op.status.listeners?.http) {
      return {
        proc, dirs, pid: proc.pid,
        adminUrl: `http://${op.status.listeners.admin}`,
        http: op.status.listeners.http,
        async stop() {
          if (proc.exitCode === null) proc.kill('SIGTERM');
          await new Promise((r) => (proc.exitCode !== null ? r() : proc.once('exit', r)));
          await rm(root, { recursive: true, force: true });
        },
      };
    }
    if (Date.now() > deadline) throw new Error(`berth did not start: ${stderr}`);
    await sleep(50);
  }
}

export async function readYaml(path) {
  try {
    return parse(await readFile(path, 'utf8'));
  } catch {
    return undefined;
  }
}

export function appManifest(name, image, extra = '') {
  return `apiVersion: berth.dev/v1alpha1\nkind: App\nmetadata: {name: ${name}}\nspec:\n  image: ${image}\n  tls: none\n  routes: [{host: ${name}.bench.lan}]\n  resources: {memory: 16m}${extra}\n`;
}

/** One GET; resolves with {status, ms to the first byte} or rejects on a connection error. */
export function firstByte(hostPort, hostHeader, path = '/') {
  const [host, port] = hostPort.split(':');
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), path, headers: hostHeader ? { Host: hostHeader } : {}, agent: false }, (res) => {
      const ms = performance.now() - t0;
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms, headers: res.headers }));
    });
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** Polls until fn() is truthy (every `every` ms), returns elapsed ms. */
export async function until(fn, timeoutMs = 60_000, every = 5) {
  const t0 = performance.now();
  for (;;) {
    try {
      if (await fn()) return performance.now() - t0;
    } catch {
      // not yet
    }
    if (performance.now() - t0 > timeoutMs) throw new Error('timed out');
    await sleep(every);
  }
}

/** CPU (ms, user+system), RSS (MiB) and bytes written to disk by a process, from /proc. */
export async function procStats(pid) {
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
  const ticks = Number(stat[11]) + Number(stat[12]);
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024;
  const io = await readFile(`/proc/${pid}/io`, 'utf8');
  const written = Number(/write_bytes:\s+(\d+)/.exec(io)[1]);
  return { cpuMs: ticks * 10, rssMiB: rss, writeBytes: written };
}

export async function metric(adminUrl, name, match = '') {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name) && line.includes(match) && !line.startsWith('#')) sum += Number(line.split(' ').at(-1));
  return sum;
}

export function percentile(values, p) {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export const round = (n, d = 1) => (Number.isFinite(n) ? Math.round(n * 10 ** d) / 10 ** d : n);

export function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r) => r.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

export async function writeResult(name, result) {
  await mkdir(RESULTS, { recursive: true });
  const path = join(RESULTS, `${name}.json`);
  await writeFile(path, `${JSON.stringify({ at: new Date().toISOString(), machine: await machine(), ...result }, null, 2)}\n`);
  return path;
}

export async function machine() {
  const cpus = (await readFile('/proc/cpuinfo', 'utf8')).match(/^model name\s*:\s*(.*)$/m)?.[1] ?? 'unknown';
  const n = (await readFile('/proc/cpuinfo', 'utf8')).match(/^processor/gm)?.length ?? 0;
  const dockerVersion = await docker('version', '--format', '{{.Server.Version}}').catch(() => 'unknown');
  return { cpu: cpus, cores: n, node: process.version, docker: dockerVersion, arch: process.arch };
}
