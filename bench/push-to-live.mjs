// Push to live: berth (signed GitHub webhook → branch head resolved → shallow checkout → build in
// the build slot → health-gated rolling deploy → first byte of the new page through its proxy)
// against the bare `git clone && docker build && docker run` + first byte of the SAME commit,
// in one run, rounds interleaved. Both clocks start once the commit is in the repository (the
// `git push` itself is the same for both and is reported apart).
//
// Fair cache: each round builds the bare pipeline first, then removes its image (which drops the
// layers of the new commit, the shared busybox layer stays), so berth's build of that commit
// meets the same build cache the bare one did. The app: a FROM-scratch busybox httpd (the
// smallest real web server), a local bare repository over file://, the shared Docker engine.
// Every Docker object is labelled and removed by label; nothing is pruned.
//
//   npm run build && node bench/push-to-live.mjs       (BENCH_ROUNDS=5 by default)
//
// Prints a table (median over rounds) and writes bench/results/push-to-live.json.
import { execFile, spawn } from 'node:child_process';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { parse } from 'yaml';

const run = promisify(execFile);
const root = dirname(dirname(fileURLToPath(import.meta.url)));
const BIN = join(root, 'bin/berth.js');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECRET = randomBytes(16).toString('hex');
const INSTANCE = `bptl${randomBytes(3).toString('hex')}`;
const BENCH_LABEL = `dev.berth.bench=${INSTANCE}`;
const HOST = 'ptl.test';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const docker = async (...args) => (await run('docker', args, { maxBuffer: 64 << 20 })).stdout.trim();
const git = async (cwd, ...args) =>
  (await run('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@berth.invalid', '-c', 'commit.gpgsign=false', ...args], { cwd })).stdout.trim();

/** GET with a Host header: status and body, or undefined when nothing answers. */
function get(port, host, path = '/') {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.setTimeout(2000, () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/** Polls every 10 ms until the page is `want`; ms from `t0`. */
async function firstByte(port, host, want, t0, timeoutMs = 60_000) {
  for (;;) {
    const r = await get(port, host);
    if (r?.status === 200 && r.body.trim() === want) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`${host} did not serve ${want} within ${timeoutMs} ms (last: ${JSON.stringify(r)})`);
    await sleep(10);
  }
}

function post(port, path, headers, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', headers: { ...headers, 'content-length': body.length }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function readYaml(path) {
  try {
    return parse(await readFile(path, 'utf8'));
  } catch {
    return undefined;
  }
}

const work = await mkdtemp(join(tmpdir(), 'berth-bench-ptl-'));
const bare = join(work, 'remote.git');
const tree = join(work, 'tree');
const url = `file://${bare}`;
const dirs = { manifests: join(work, 'manifests'), status: join(work, 'status'), state: join(work, 'state') };
let berth;
const berthLog = [];

async function cleanup() {
  if (berth && berth.exitCode === null) {
    berth.kill('SIGTERM');
    await new Promise((r) => berth.once('exit', r));
  }
  for (const filter of [`label=dev.berth.instance=${INSTANCE}`, `label=${BENCH_LABEL}`]) {
    const containers = (await docker('ps', '-aq', '--filter', filter)).split('\n').filter(Boolean);
    if (containers.length) await docker('rm', '-f', ...containers).catch(() => undefined);
    const networks = (await docker('network', 'ls', '-q', '--filter', filter)).split('\n').filter(Boolean);
    for (const n of networks) await docker('network', 'rm', n).catch(() => undefined);
    const images = (await docker('images', '-q', '--filter', filter)).split('\n').filter(Boolean);
    if (images.length) await docker('rmi', '-f', ...new Set(images)).catch(() => undefined);
  }
  if (process.env.BENCH_KEEP) {
    await writeFile(join(work, 'berth.log'), Buffer.concat(berthLog));
    process.stderr.write(`kept ${work}\n`);
  } else await rm(work, { recursive: true, force: true });
}

try {
  await run('git', ['init', '-q', '--bare', '-b', 'main', bare]);
  await run('git', ['init', '-q', '-b', 'main', tree]);
  await copyFile('/bin/busybox', join(tree, 'busybox'));
  await chmod(join(tree, 'busybox'), 0o755);
  await mkdir(join(tree, 'www'));
  await writeFile(join(tree, 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nCMD ["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"]\n');
  const commit = async (page) => {
    await writeFile(join(tree, 'www/index.html'), `${page}\n`);
    await git(tree, 'add', '-A');
    await git(tree, 'commit', '-q', '-m', page);
    const t0 = performance.now();
    await git(tree, 'push', '-q', bare, 'HEAD:refs/heads/main');
    return { sha: await git(tree, 'rev-parse', 'HEAD'), pushMs: performance.now() - t0 };
  };
  const nonce = randomBytes(3).toString('hex');
  await commit(`${nonce} round 0`);

  // berth, with the app at its first commit.
  berth = spawn(process.execPath, [BIN, 'run', '--manifests', dirs.manifests, '--status', dirs.status, '--state', dirs.state, '--instance', INSTANCE, '--http', '127.0.0.1:0', '--https', '127.0.0.1:0', '--admin', '127.0.0.1:0'], {
    env: { ...process.env, BERTH_WEBHOOK_SECRET: SECRET },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  berth.stdout.on('data', (d) => berthLog.push(d));
  berth.stderr.on('data', (d) => berthLog.push(d));
  let httpPort;
  for (let i = 0; ; i++) {
    const op = await readYaml(join(dirs.status, 'operator.yaml'));
    if (op?.status?.pid === berth.pid && op.status.listeners?.http) {
      httpPort = Number(op.status.listeners.http.split(':').pop());
      break;
    }
    if (i > 400) throw new Error('berth did not start');
    await sleep(50);
  }
  await writeFile(join(dirs.manifests, 'ptl.yaml'), `apiVersion: berth.dev/v1alpha1\nkind: App\nmetadata: {name: ptl}\nspec:\n  build:\n    git: {url: "${url}", branch: main}\n  routes: [{host: ${HOST}}]\n`);
  await firstByte(httpPort, HOST, `${nonce} round 0`, performance.now());

  const rounds = [];
  for (let i = 1; i <= ROUNDS; i++) {
    const page = `${nonce} round ${i}`;
    const { sha, pushMs } = await commit(page);

    // Bare: clone, build, run, first byte.
    const dir = join(work, `clone-${i}`);
    const tag = `berth-bench/ptl:${sha.slice(0, 12)}`;
    const b0 = performance.now();
    await run('git', ['clone', '-q', '--depth', '1', '--branch', 'main', url, dir]);
    const cloneMs = performance.now() - b0;
    await docker('build', '-q', '--label', BENCH_LABEL, '-t', tag, dir);
    const buildMs = performance.now() - b0 - cloneMs;
    const id = await docker('run', '-d', '--label', BENCH_LABEL, '-p', '127.0.0.1::80', tag);
    const runMs = performance.now() - b0 - cloneMs - buildMs;
    const port = Number((await docker('port', id, '80/tcp')).split('\n')[0].split(':').pop());
    const bareMs = await firstByte(port, 'localhost', page, b0);
    await docker('rm', '-f', id);
    await docker('rmi', tag); // drops this commit's layers: berth meets the same cache
    await rm(dir, { recursive: true, force: true });

    // berth: the signed webhook of the same commit, to the first byte through its proxy.
    const body = Buffer.from(JSON.stringify({ ref: 'refs/heads/main', before: '0'.repeat(40), after: sha, repository: { clone_url: url, html_url: url } }));
    const headers = { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}` };
    const wall0 = Date.now();
    const t0 = performance.now();
    const status = await post(httpPort, '/_berth/webhook', headers, body);
    const acceptedMs = performance.now() - t0;
    if (status !== 202) throw new Error(`webhook answered ${status}`);
    const berthMs = await firstByte(httpPort, HOST, page, t0);
    const logs = (await readdir(join(dirs.state, 'builds', 'ptl'))).filter((n) => n.endsWith(`${sha.slice(0, 12)}.log`));
    const log = logs.length ? await readFile(join(dirs.state, 'builds', 'ptl', logs.at(-1)), 'utf8') : '';
    const berthBuildMs = Number(/^# succeeded in ([\d.]+)s/m.exec(log)?.[1] ?? NaN) * 1000;
    // Where berth's time went, from its own log lines (wall clock, ms after the webhook was sent).
    const at = (msg) => {
      for (const line of Buffer.concat(berthLog).toString().split('\n')) {
        if (!line.includes(msg)) continue;
        const t = Date.parse(JSON.parse(line).time);
        if (t >= wall0) return t - wall0;
      }
      return NaN;
    };
    const steps = { revisionWritten: at('new revision from a push'), buildStarted: at('"build started"'), buildFinished: at('"build finished"'), deployed: at('is serving the new version') };
    rounds.push({ round: i, commit: sha, pushMs, bare: { totalMs: bareMs, cloneMs, buildMs, runMs, firstByteMs: bareMs - cloneMs - buildMs - runMs }, berth: { totalMs: berthMs, webhookAcceptedMs: acceptedMs, buildMs: berthBuildMs, steps } });
    process.stderr.write(`round ${i}: berth ${berthMs.toFixed(0)} ms, bare ${bareMs.toFixed(0)} ms\n`);
  }

  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const m = (f) => Math.round(median(rounds.map(f)));
  const summary = {
    berth: {
      totalMs: m((r) => r.berth.totalMs), webhookAcceptedMs: m((r) => r.berth.webhookAcceptedMs), buildMs: m((r) => r.berth.buildMs),
      stepsMs: Object.fromEntries(['revisionWritten', 'buildStarted', 'buildFinished', 'deployed'].map((k) => [k, m((r) => r.berth.steps[k])])),
    },
    bare: { totalMs: m((r) => r.bare.totalMs), cloneMs: m((r) => r.bare.cloneMs), buildMs: m((r) => r.bare.buildMs), runMs: m((r) => r.bare.runMs), firstByteMs: m((r) => r.bare.firstByteMs) },
    pushMs: m((r) => r.pushMs),
  };
  summary.berthOverBare = +(summary.berth.totalMs / summary.bare.totalMs).toFixed(2);
  const result = {
    what: 'commit in a local bare repo (file://) → first byte of the new page; FROM-scratch busybox httpd; berth: signed webhook → live through its proxy; bare: git clone --depth 1 && docker build && docker run -p && poll',
    at: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    cpu: cpus()[0]?.model,
    docker: await docker('version', '--format', '{{.Server.Version}}'),
    rounds: ROUNDS,
    median: summary,
    runs: rounds,
  };

  console.log(`push → live, median of ${ROUNDS} rounds (${result.cpus} CPUs, Docker ${result.docker}, ${process.version})`);
  const rows = [
    ['pipeline', 'total ms', 'breakdown (ms)'],
    ['berth (webhook → proxy)', String(summary.berth.totalMs), `202 in ${summary.berth.webhookAcceptedMs}; docker build ${summary.berth.buildMs} (from its build log)`],
    ['  berth steps (ms after the webhook)', '', `revision file ${summary.berth.stepsMs.revisionWritten}, build started ${summary.berth.stepsMs.buildStarted}, finished ${summary.berth.stepsMs.buildFinished}, deployed ${summary.berth.stepsMs.deployed}`],
    ['bare clone+build+run', String(summary.bare.totalMs), `clone ${summary.bare.cloneMs}, build ${summary.bare.buildMs}, run ${summary.bare.runMs}, first byte ${summary.bare.firstByteMs}`],
    ['ratio berth / bare', `${summary.berthOverBare}x`, `(git push itself: ${summary.pushMs} ms, not counted)`],
  ];
  const w = [0, 1].map((i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(`${r[0].padEnd(w[0])}  ${r[1].padStart(w[1])}  ${r[2]}`);
  await mkdir(join(root, 'bench/results'), { recursive: true });
  await writeFile(join(root, 'bench/results/push-to-live.json'), `${JSON.stringify(result, null, 2)}\n`);
} catch (e) {
  process.stderr.write(`${Buffer.concat(berthLog).toString().split('\n').slice(-40).join('\n')}\n`);
  process.stderr.write(`app status: ${await readFile(join(dirs.status, 'apps', 'ptl.yaml'), 'utf8').catch(() => '(none)')}\n`);
  throw e;
} finally {
  await cleanup();
}
