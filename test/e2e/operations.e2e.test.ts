// Issue 7 end to end: running berth for real. A canary secret that must reach the app's own
// container and nothing else; a state file corrupted six ways; kill -9 in a loop during 1000
// manifest edits; the admin API (Prometheus text, API = status files, tokens, loopback, Host,
// body limit); an idle berth with 20 apps writing nothing; berth logs / history / status.
//
// The tests run side by side (describe.concurrent) but all except the idle one take a mutex, so
// the timed or heavy ones (5 s start budget, the kill loop) never compete with each other; the
// idle test's window runs beside them (it only waits, and berth's idle CPU is per process).
// Every test has its own berth (own instance label, folders and ports); only objects carrying a
// test's instance label (or dev.berth.test) are ever removed.
//
// Knobs: BERTH_KILL_EDITS (default 1000), BERTH_KILL_EDIT_INTERVAL_MS (default 90: the writer
// spreads its edits over ~90 s so the kills land among them), BERTH_IDLE_WINDOW_MS (default
// 300000).
import { describe, it, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { request, type IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { readFile, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parse } from 'yaml';
import Docker from 'dockerode';
import { writeAppManifest, appYaml, BERTH_BIN, BerthProcess, berthCli, makeDirs, readYaml, removeDirs, sleep, waitFor, type BerthDirs, type CliResult } from '../helpers/berth-process.js';
import { IMAGES, cleanupInstance, docker, testInstance, containerEvents, nowSeconds } from '../helpers/docker.js';
import { createTestRepo, type TestRepo } from '../helpers/git.js';
import { loadStandardImages, startPrivateDockerd, type PrivateDockerd } from '../helpers/private-dockerd.js';
import { expectValidStatusFile } from '../helpers/status-schema.js';
import { migrate } from '../../src/state/state-schema.js';
import type { AppStatusFile, Condition, OperatorStatusFile } from '../../src/api/types.generated.js';

const KILL_EDITS = Number(process.env.BERTH_KILL_EDITS ?? 1000);
const KILL_EDIT_INTERVAL_MS = Number(process.env.BERTH_KILL_EDIT_INTERVAL_MS ?? 90);
const IDLE_WINDOW_MS = Number(process.env.BERTH_IDLE_WINDOW_MS ?? 300_000);
const ADMIN_TOKEN = randomBytes(16).toString('hex');

interface Env {
  instance: string;
  dirs: BerthDirs;
  berth: BerthProcess | undefined;
  /** Extra processes this test started (berth runs of the kill loop, berth logs -f). */
  children: ChildProcess[];
}

const envs: Env[] = [];
const repos: TestRepo[] = [];
const privateEngines: PrivateDockerd[] = [];
const engine = new Docker();

afterAll(async () => {
  await Promise.all(envs.map(async (env) => {
    for (const c of env.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await env.berth?.stop();
  }));
  for (const env of envs) {
    await cleanupInstance(env.instance);
    await removeDirs(env.dirs);
  }
  await Promise.all(repos.map((r) => r.cleanup()));
  for (const pd of privateEngines) await pd.destroy();
}, 180_000);

/** One at a time: the tests that time things or load the machine take turns. */
let chain: Promise<unknown> = Promise.resolve();
function serially<T>(fn: () => Promise<T>): Promise<T> {
  const run = chain.then(fn, fn);
  chain = run.catch(() => undefined);
  return run;
}

async function newEnv(prefix: string): Promise<Env> {
  const env: Env = { instance: testInstance(prefix), dirs: await makeDirs(`berth-${prefix}-`), berth: undefined, children: [] };
  envs.push(env);
  return env;
}

async function startBerth(env: Env, opts: { args?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<BerthProcess> {
  env.berth = await BerthProcess.start(env.dirs, { instance: env.instance, ...opts });
  return env.berth;
}

const writeApp = (env: Env, name: string, spec: string) => writeAppManifest(env.dirs.manifests, name, spec);

const statusOf = (env: Env, app: string) => readYaml<AppStatusFile>(join(env.dirs.status, 'apps', `${app}.yaml`));
const operatorOf = (env: Env) => readYaml<OperatorStatusFile>(join(env.dirs.status, 'operator.yaml'));
const condition = (s: AppStatusFile | undefined, type: string): Condition | undefined => s?.status.conditions.find((c) => c.type === type);
const isReady = (s: AppStatusFile | undefined) => s?.status.phase === 'Ready' && condition(s, 'Ready')?.status === 'True';

async function waitAllReady(env: Env, apps: string[], timeoutMs: number): Promise<AppStatusFile[]> {
  return waitFor(`${apps.length} app(s) Ready`, async () => {
    const docs = await Promise.all(apps.map((a) => statusOf(env, a)));
    return docs.every(isReady) ? (docs as AppStatusFile[]) : undefined;
  }, timeoutMs, 100);
}

interface Ctr {
  id: string;
  name: string;
  state: string;
}

/** An app's containers as Docker sees them (all states), by berth's labels. */
async function appContainers(env: Env, app?: string, on: Docker = engine): Promise<Ctr[]> {
  const label = [`dev.berth.instance=${env.instance}`, ...(app ? [`dev.berth.app=${app}`] : [])];
  const list = await on.listContainers({ all: true, filters: { label } });
  return list.map((c) => ({ id: c.Id, name: (c.Names[0] ?? '').replace(/^\//, ''), state: c.State }));
}

const MUTATING = new Set(['create', 'start', 'stop', 'kill', 'destroy', 'die', 'restart', 'pause', 'unpause', 'update', 'rename']);


/** Every regular file under `dir` (recursively); none when it does not exist. */
async function walk(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}

interface Reply {
  status: number;
  text: string;
  headers: IncomingHttpHeaders;
}

/** One HTTP request with full control of the Host header (fetch does not allow setting it). */
function httpCall(base: string, path: string, opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string; host?: string; timeoutMs?: number } = {}): Promise<Reply> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request({
      host: url.hostname, port: url.port, path, method: opts.method ?? 'GET', agent: false,
      headers: { host: opts.host ?? url.host, ...opts.headers, ...(opts.body !== undefined ? { 'content-length': String(Buffer.byteLength(opts.body)) } : {}) },
    }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString(), headers: res.headers }));
      res.on('error', reject);
    });
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error(`no answer from ${base}${path} in time`)));
    // A server refusing a large body may close before reading it all: the answer, if one came, counts.
    req.on('error', (e) => (answered ? undefined : setTimeout(() => reject(e), 300)));
    req.end(opts.body);
  });
}

/** A free loopback port (for a berth whose admin port must be known before it writes operator.yaml). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function cpuMs(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function rssMiB(pid: number): Promise<number> {
  return Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
}

async function procIo(pid: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const line of (await readFile(`/proc/${pid}/io`, 'utf8')).split('\n')) {
    const m = /^(\w+):\s+(\d+)$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** A spawned CLI process with its output collected (for -f and for commands that must be bounded in time). */
function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; out: () => string; exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const child = spawn(process.execPath, [BERTH_BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: string[] = [];
  child.stdout.on('data', (d: Buffer) => chunks.push(d.toString()));
  child.stderr.on('data', (d: Buffer) => chunks.push(d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  return { child, out: () => chunks.join(''), exit };
}

function filesFlags(env: Env): string[] {
  return ['--manifests', env.dirs.manifests, '--status', env.dirs.status, '--state', env.dirs.state];
}

// ---------------------------------------------------------------------------------------------
// A strict Prometheus text-format (0.0.4) parser: HELP/TYPE at most once per family and before
// its samples, every sample's family declared by TYPE, samples of a family contiguous, no
// duplicate series, metric/label name syntax, label value escapes limited to \\ \" \n, values
// as Go floats (NaN, +Inf, -Inf), optional integer timestamp, counters never negative.
// ---------------------------------------------------------------------------------------------

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Family {
  name: string;
  type: string;
  help?: string;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FLOAT = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Inf|NaN)$/;

function parsePrometheus(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const families = new Map<string, Family>();
  const finished = new Set<string>();
  let current: string | undefined;
  const seen = new Set<string>();
  const lines = text.slice(0, -1).split('\n');
  const fail = (i: number, why: string): never => {
    throw new Error(`line ${i + 1}: ${why}: ${JSON.stringify(lines[i])}`);
  };
  const familyOf = (sample: string): Family | undefined => {
    const direct = families.get(sample);
    if (direct) return direct;
    for (const suffix of ['_sum', '_count', '_bucket']) {
      if (!sample.endsWith(suffix)) continue;
      const f = families.get(sample.slice(0, -suffix.length));
      if (f && (f.type === 'summary' || f.type === 'histogram') && (suffix !== '_bucket' || f.type === 'histogram')) return f;
    }
    return undefined;
  };
  const enter = (i: number, name: string) => {
    if (current === name) return;
    if (finished.has(name)) fail(i, `family ${name} appears in two separate groups`);
    if (current) finished.add(current);
    current = name;
  };
  lines.forEach((line, i) => {
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!m) {
        if (/^#\s*(HELP|TYPE)\b/.test(line)) fail(i, 'malformed HELP/TYPE line');
        return; // an ordinary comment
      }
      const [, kind, name, rest = ''] = m;
      if (!METRIC_NAME.test(name!)) fail(i, 'bad metric name');
      enter(i, name!);
      const f = families.get(name!) ?? { name: name!, type: '', samples: [] };
      families.set(name!, f);
      if (kind === 'HELP') {
        if (f.help !== undefined) fail(i, 'second HELP');
        // Escapes in HELP: only \\ and \n (a lone or other backslash is malformed).
        if (rest.replace(/\\[\\n]/g, '').includes('\\')) fail(i, 'bad escape in HELP (only \\\\ and \\n)');
        f.help = rest.replace(/\\([\\n])/g, (_, c: string) => (c === 'n' ? '\n' : '\\'));
      } else {
        if (f.type !== '') fail(i, 'second TYPE');
        if (f.samples.length > 0) fail(i, 'TYPE after samples');
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) fail(i, `unknown type ${rest}`);
        f.type = rest;
      }
      return;
    }
    // name{labels} value [timestamp]
    const nm = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (!nm) return fail(i, 'no metric name');
    const name = nm[0];
    let pos = name.length;
    const labels: Record<string, string> = {};
    if (line[pos] === '{') {
      pos++;
      for (;;) {
        if (line[pos] === '}') {
          pos++;
          break;
        }
        const ln = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(pos));
        if (!ln) return fail(i, 'bad label name');
        const label = ln[0];
        if (!LABEL_NAME.test(label) || label.startsWith('__')) fail(i, `reserved or bad label name ${label}`);
        if (label in labels) fail(i, `duplicate label ${label}`);
        pos += label.length;
        if (line[pos] !== '=' || line[pos + 1] !== '"') fail(i, 'expected ="');
        pos += 2;
        let value = '';
        for (;;) {
          const c = line[pos];
          if (c === undefined) fail(i, 'unterminated label value');
          if (c === '"') break;
          if (c === '\\') {
            const n = line[pos + 1];
            if (n === '\\') value += '\\';
            else if (n === '"') value += '"';
            else if (n === 'n') value += '\n';
            else fail(i, `bad escape \\${n ?? ''} in a label value`);
            pos += 2;
            continue;
          }
          value += c;
          pos++;
        }
        pos++; // closing quote
        labels[label] = value;
        if (line[pos] === ',') {
          pos++;
          continue;
        }
        if (line[pos] !== '}') fail(i, 'expected , or }');
      }
    }
    if (line[pos] !== ' ') fail(i, 'expected one space before the value');
    const parts = line.slice(pos + 1).split(' ');
    if (parts.length > 2 || parts.some((p) => p === '')) fail(i, 'expected "value [timestamp]"');
    if (!FLOAT.test(parts[0]!)) fail(i, `bad value ${parts[0]}`);
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) fail(i, `bad timestamp ${parts[1]}`);
    const value = parts[0] === 'NaN' ? NaN : parts[0]!.endsWith('Inf') ? (parts[0]!.startsWith('-') ? -Infinity : Infinity) : Number(parts[0]);
    const f = familyOf(name);
    if (!f || f.type === '') return fail(i, `sample of an undeclared family (no # TYPE for ${name})`);
    enter(i, f.name);
    if (f.type === 'counter' && !(value >= 0)) fail(i, 'a counter must be >= 0');
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) fail(i, 'duplicate series');
    seen.add(key);
    f.samples.push({ name, labels, value });
  });
  for (const f of families.values()) if (f.type === '') throw new Error(`family ${f.name} has HELP but no TYPE`);
  return families;
}

// ---------------------------------------------------------------------------------------------
// Canary search: the value, its hex and its base64 (at every alignment, standard and URL-safe).
// ---------------------------------------------------------------------------------------------

function encodings(secret: string): string[] {
  const b = Buffer.from(secret);
  const out = [secret, b.toString('hex'), b.toString('hex').toUpperCase()];
  for (let pad = 0; pad < 3; pad++) {
    const enc = Buffer.concat([Buffer.alloc(pad), b]).toString('base64');
    // Only the characters that depend on the secret's bytes alone.
    const inner = enc.slice(Math.ceil((8 * pad) / 6), Math.floor((8 * (pad + b.length)) / 6));
    out.push(inner, inner.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return [...new Set(out)];
}

/** "where: which encoding, with context" for every occurrence of any encoding of any secret. */
function findLeaks(where: string, text: string | Buffer, secrets: string[]): string[] {
  const hay = typeof text === 'string' ? text : text.toString('latin1');
  const leaks: string[] = [];
  for (const s of secrets) {
    for (const enc of encodings(s)) {
      const at = hay.indexOf(enc);
      if (at >= 0) leaks.push(`${where}: ${enc === s ? 'plaintext' : 'encoded'} canary …${hay.slice(Math.max(0, at - 120), at + enc.length + 40).replace(/\s+/g, ' ')}…`);
    }
  }
  return leaks;
}

// ---------------------------------------------------------------------------------------------

/** Parse every status file (YAML + status schema) and state.json (JSON + berth's own migrate). */
async function checkFilesParse(env: Env, when: string): Promise<{ statusFiles: number; tempFiles: number }> {
  let statusFiles = 0;
  let tempFiles = 0;
  for (const f of await walk(env.dirs.status)) {
    if (basename(f).startsWith('.')) {
      tempFiles++;
      continue;
    }
    const text = await readFile(f, 'utf8');
    let doc: unknown;
    try {
      doc = parse(text);
    } catch (e) {
      throw new Error(`${when}: ${f} is not YAML (${(e as Error).message}):\n${text.slice(0, 500)}`, { cause: e });
    }
    try {
      expectValidStatusFile(doc);
    } catch (e) {
      throw new Error(`${when}: ${f} does not match the status schema: ${(e as Error).message.slice(0, 800)}\n${text.slice(0, 500)}`, { cause: e });
    }
    statusFiles++;
  }
  const stateFiles = await readdir(env.dirs.state).catch(() => [] as string[]);
  tempFiles += stateFiles.filter((f) => f.startsWith('.')).length;
  const corrupt = stateFiles.filter((f) => f.startsWith('state.json.corrupt-'));
  if (corrupt.length > 0) throw new Error(`${when}: berth found its own state file unusable and moved it aside: ${corrupt.join(', ')}`);
  if (stateFiles.includes('state.json')) {
    const text = await readFile(join(env.dirs.state, 'state.json'), 'utf8');
    try {
      migrate(JSON.parse(text));
    } catch (e) {
      throw new Error(`${when}: state.json is unusable (${(e as Error).message}):\n${text.slice(0, 500)}`, { cause: e });
    }
  }
  return { statusFiles, tempFiles };
}

describe.concurrent('berth operations', () => {
  // First, so it starts at once: it runs beside the others (its window only waits).
  it(`an idle berth with 20 apps writes no state or status file over ${IDLE_WINDOW_MS / 1000} s`, async ({ expect }) => {
    const env = await newEnv('oidle');
    const berth = await startBerth(env);
    const names = Array.from({ length: 20 }, (_, i) => `i${String(i).padStart(2, '0')}`);
    await Promise.all(names.map((n) => writeApp(env, n, `image: ${IMAGES.httpdV1}\nresources: {memory: 16m}\nroutes: [{host: ${n}.test}]`)));
    await waitAllReady(env, names, 120_000);

    // Settled: nothing under status/state/manifests changes for 5 s in a row (batched writes done).
    const snapshot = async (): Promise<Map<string, string>> => {
      const out = new Map<string, string>();
      for (const dir of [env.dirs.status, env.dirs.state, env.dirs.manifests]) {
        for (const f of await walk(dir)) {
          const st = await stat(f).catch(() => undefined);
          if (!st) continue;
          out.set(f, `${st.mtimeMs} ${st.size} ${createHash('sha256').update(await readFile(f)).digest('hex').slice(0, 16)}`);
        }
      }
      return out;
    };
    let before = await snapshot();
    await waitFor('files settled for 5 s', async () => {
      await sleep(5000);
      const now = await snapshot();
      const same = JSON.stringify([...now]) === JSON.stringify([...before]);
      before = now;
      return same;
    }, 60_000, 0);

    const pid = berth.proc.pid!;
    const metricsText = async () => (await httpCall(berth.adminUrl, '/metrics')).text;
    const reconciles = (text: string) => [...parsePrometheus(text).get('berth_reconciles_total')?.samples ?? []].reduce((n, s) => n + s.value, 0);
    const reconciles0 = reconciles(await metricsText());
    const io0 = await procIo(pid);
    const cpu0 = await cpuMs(pid);
    const logChars0 = berth.logs().length;
    const since = nowSeconds();
    const t0 = Date.now();
    // CPU in slices, so a quiet slice can be told from one where the other tests' Docker events
    // (berth follows the engine's whole event stream and filters by label) kept it busy.
    const slices: number[] = [];
    const sliceMs = Math.max(1000, Math.round(IDLE_WINDOW_MS / 10));
    let last = cpu0;
    while (Date.now() - t0 < IDLE_WINDOW_MS - 10) {
      await sleep(Math.min(sliceMs, IDLE_WINDOW_MS - (Date.now() - t0)));
      const c = await cpuMs(pid);
      slices.push(c - last);
      last = c;
    }
    const windowMs = Date.now() - t0;
    const cpu = (await cpuMs(pid)) - cpu0;
    const io1 = await procIo(pid);
    const rss = await rssMiB(pid);
    const after = await snapshot();
    const logText = berth.logs().slice(logChars0);
    const events = (await containerEvents(env, since, since + windowMs / 1000)).filter((e) => MUTATING.has(e.action));
    const reconciled = reconciles(await metricsText()) - reconciles0;
    const written = (io1.write_bytes ?? 0) - (io0.write_bytes ?? 0);

    console.log(`idle 20 apps over ${Math.round(windowMs / 1000)} s: CPU ${cpu} ms (${((cpu / windowMs) * 100).toFixed(2)} %), RSS ${rss.toFixed(1)} MiB, bytes written ${written}`);
    console.log(`idle details: CPU per ${sliceMs / 1000} s slice [${slices.join(', ')}] ms; reconcile passes in the window ${reconciled} (resync ${'5m'}); ` +
      `log output ${logText.length} chars (${logText.split('\n').filter(Boolean).length} lines, to a pipe); wchar ${(io1.wchar ?? 0) - (io0.wchar ?? 0)}, syscw ${(io1.syscw ?? 0) - (io0.syscw ?? 0)}`);

    const changed = [...new Set([...before.keys(), ...after.keys()])].filter((f) => before.get(f) !== after.get(f)).map((f) => `${f}: ${before.get(f) ?? 'absent'} -> ${after.get(f) ?? 'absent'}`);
    expect(changed).toEqual([]);
    expect(written).toBe(0);
    expect(events).toEqual([]);
    for (const n of names) expect(isReady(await statusOf(env, n))).toBe(true);
  }, IDLE_WINDOW_MS + 300_000);

  it('a canary secret reaches the app container\'s env and appears nowhere else; changing it rolls the app health-gated', ({ expect }) => serially(async () => {
    const env = await newEnv('ocan');
    const canary1 = `cnry${randomBytes(16).toString('hex')}`;
    const canary2 = `cnry${randomBytes(16).toString('hex')}`;
    const secrets = [canary1, canary2];
    const leaks: string[] = [];
    const cliOutputs: [string, CliResult][] = [];
    const cli = async (args: string[], input?: string): Promise<CliResult> => {
      const r = await berthCli(args, input !== undefined ? { input } : {});
      const flags = new Set(['--manifests', '--status', '--state', '--instance']);
      cliOutputs.push([`berth ${args.filter((a, i) => !flags.has(a) && !flags.has(args[i - 1] ?? '')).join(' ')}`, r]);
      return r;
    };

    // Set before berth starts (the CLI generates the key file), by argument.
    const set1 = await cli(['secret', 'set', 'canary', `TOKEN=${canary1}`, '--state', env.dirs.state]);
    expect(set1.code, set1.stderr).toBe(0);
    const sealed = await readFile(join(env.dirs.state, 'secrets.json'), 'utf8');
    expect(sealed).toMatch(/"TOKEN": "v1:[^"]+"/);
    expect(((await stat(join(env.dirs.state, 'secrets.json'))).mode & 0o777).toString(8)).toBe('600');
    expect(((await stat(join(env.dirs.state, 'secret.key'))).mode & 0o777).toString(8)).toBe('600');

    // The app prints its own secret at start (its own output: `berth logs` may show it).
    const spec = (command: string) => `image: ${IMAGES.httpdV1}\ncommand: [sh, -c, '${command}']\nenv: {PLAIN: visible}\nsecretEnv: [TOKEN]\nroutes: [{host: canary.test, auth: {bearerSecret: TOKEN}}]`;
    await writeApp(env, 'canary', spec('echo "TOKEN is $TOKEN"; exec httpd -f -p 80 -h /www'));
    await writeApp(env, 'other', `image: ${IMAGES.httpdV1}\nroutes: [{host: other.test}]`);
    const berth = await startBerth(env, { args: ['--log-level', 'debug'] });
    await waitAllReady(env, ['canary', 'other'], 30_000);

    const envOf = async (id: string) => (await engine.getContainer(id).inspect()).Config.Env;
    const [c1] = await appContainers(env, 'canary');
    expect(await envOf(c1!.id)).toEqual(expect.arrayContaining([`TOKEN=${canary1}`, 'PLAIN=visible']));

    // The route's bearer auth uses it.
    const proxy = (token?: string) => httpCall(berth.httpUrl, '/', { host: 'canary.test', headers: token ? { authorization: `Bearer ${token}` } : {} });
    expect((await proxy(canary1)).status).toBe(200);
    for (const bad of [undefined, canary2, `${canary1}x`]) {
      const r = await proxy(bad);
      expect(r.status).toBe(401);
      leaks.push(...findLeaks('proxy 401 body', r.text, secrets));
    }

    // berth logs shows the app's own output, which here names the secret: that is the app's doing.
    const appLogs = await cli(['logs', 'canary', '--instance', env.instance, ...filesFlags(env)]);
    expect(appLogs.stdout).toContain(`TOKEN is ${canary1}`);

    // A new value (from stdin this time) rolls the app: new container, health-gated, old one retired.
    const since = nowSeconds();
    const polls: number[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const r = await proxy(canary2).catch(() => undefined);
        polls.push(r?.status === 401 ? ((await proxy(canary1).catch(() => undefined))?.status ?? 0) : (r?.status ?? 0));
        await sleep(30);
      }
    })();
    const set2 = await cli(['secret', 'set', 'canary', 'TOKEN=-', '--state', env.dirs.state], `${canary2}\n`);
    expect(set2.code, set2.stderr).toBe(0);
    const rolled = await waitFor('canary rolled to the new secret', async () => {
      const cs = await appContainers(env, 'canary');
      if (cs.length !== 1 || cs[0]!.id === c1!.id || cs[0]!.state !== 'running') return undefined;
      return isReady(await statusOf(env, 'canary')) && (await envOf(cs[0]!.id)).includes(`TOKEN=${canary2}`) ? cs[0] : undefined;
    }, 30_000, 100);
    polling = false;
    await poller;
    const ev = await containerEvents(env, since, nowSeconds(), 'canary');
    const newStart = ev.find((e) => e.name === rolled.name && e.action === 'start');
    const oldStop = ev.find((e) => e.name === c1!.name && ['kill', 'stop', 'die'].includes(e.action));
    console.log(`secret change: new container started ${newStart ? newStart.time - since * 1000 : '?'} ms after, old stopped ${oldStop ? oldStop.time - since * 1000 : '?'} ms after; ${polls.length} requests during the roll: ${[...new Set(polls)].join(',')}`);
    expect(newStart).toBeDefined();
    expect(oldStop).toBeDefined();
    expect(newStart!.time).toBeLessThan(oldStop!.time);
    expect(polls.filter((s) => s !== 200)).toEqual([]);
    expect((await proxy(canary2)).status).toBe(200);
    expect((await proxy(canary1)).status).toBe(401);

    // A failing rollout whose output names the secret: the old version keeps serving, and the
    // error berth reports (status, state, logs, API) must not carry the value. berth knows every
    // secret value (it redacts them from its logs), so a log tail it copies is scrubbed too.
    await writeApp(env, 'canary', spec('echo "TOKEN is $TOKEN"; echo giving up; exit 3'));
    let seen: AppStatusFile | undefined;
    const failed = await waitFor('canary failed rollout reported', async () => {
      const s = (seen = await statusOf(env, 'canary'));
      return s && s.status.phase === 'Degraded' && condition(s, 'Stalled')?.reason === 'RolloutFailed' ? s : undefined;
    }, 60_000, 100).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\n${JSON.stringify(seen, null, 1)}`, { cause: e });
    });
    console.log(`failed rollout: ${condition(failed, 'Stalled')!.message.replace(new RegExp(secrets.join('|'), 'g'), '<CANARY>')}`);
    expect((await proxy(canary2)).status).toBe(200);
    await sleep(1500);

    // Everything berth writes or answers.
    for (const dir of [env.dirs.status, env.dirs.state, env.dirs.manifests]) {
      for (const f of await walk(dir)) leaks.push(...findLeaks(f, await readFile(f), secrets));
    }
    for (const path of ['/metrics', '/api/v1/apps', '/api/v1/apps/canary', '/api/v1/operator', '/healthz']) {
      leaks.push(...findLeaks(`GET ${path}`, (await httpCall(berth.adminUrl, path)).text, secrets));
    }
    for (const args of [['status', '--json'], ['status'], ['status', 'canary'], ['status', 'canary', '--json'], ['history', 'canary'], ['history', 'canary', '--json'], ['secret', 'list', 'canary'], ['secret', 'list', 'canary', '--json'], ['validate', env.dirs.manifests]]) {
      await cli([...args, ...filesFlags(env)]);
    }
    const list = cliOutputs.find(([what]) => what === 'berth secret list canary')![1];
    expect(list.stdout).toBe('TOKEN\n');
    for (const [what, r] of cliOutputs) {
      if (what.startsWith('berth logs')) continue; // the app's own output (see above)
      leaks.push(...findLeaks(`${what} (stdout)`, r.stdout, secrets), ...findLeaks(`${what} (stderr)`, r.stderr, secrets));
    }
    // Docker: only the canary app's own container env may hold it.
    for (const c of await appContainers(env)) {
      const info = await engine.getContainer(c.id).inspect();
      const isCanary = info.Config.Labels['dev.berth.app'] === 'canary';
      if (isCanary) info.Config.Env = info.Config.Env.filter((e) => !e.startsWith('TOKEN='));
      leaks.push(...findLeaks(`docker inspect ${c.name}${isCanary ? ' (TOKEN= removed from Env)' : ''}`, JSON.stringify(info), secrets));
    }
    leaks.push(...findLeaks(`docker network inspect ${env.instance}`, await docker('network', 'inspect', env.instance), secrets));
    await berth.stop();
    leaks.push(...findLeaks('berth stdout/stderr (--log-level debug)', berth.logs(), secrets));
    expect(berth.logs()).toContain('[redacted]'); // the secret did pass through a log line, scrubbed
    expect(leaks).toEqual([]);
  }), 600_000);

  it('a state file corrupted six ways: berth answers /healthz within 5 s, moves it aside, reports it, restarts no container', ({ expect }) => serially(async () => {
    const env = await newEnv('ocor');
    const port = await freePort();
    const args = ['--admin', `127.0.0.1:${port}`];
    const apps = ['web', 'api'];
    for (const a of apps) await writeApp(env, a, `image: ${IMAGES.httpdV1}\nenv: {APP: ${a}}\nroutes: [{host: ${a}.test}]`);
    await startBerth(env, { args });
    await waitAllReady(env, apps, 30_000);
    await sleep(500);
    await env.berth!.stop();
    const good = await readFile(join(env.dirs.state, 'state.json'));
    expect(() => migrate(JSON.parse(good.toString()))).not.toThrow();
    const ids = (await appContainers(env)).map((c) => c.id).sort();
    expect(ids).toHaveLength(2);

    const variants: [string, Buffer][] = [
      ['truncated', good.subarray(0, Math.floor(good.length / 2))],
      ['empty', Buffer.alloc(0)],
      ['garbage', randomBytes(4096)],
      ['NUL bytes', Buffer.alloc(good.length, 0)],
      ['wrong schema', Buffer.from(JSON.stringify({ version: 1, objects: ['App/web'], apps: 'web', extra: null }))],
      ['a future version', Buffer.from(JSON.stringify({ ...(JSON.parse(good.toString()) as object), version: 99 }))],
    ];
    for (const [what, bytes] of variants) {
      const before = new Set(await readdir(env.dirs.state));
      await writeFile(join(env.dirs.state, 'state.json'), bytes);
      const since = nowSeconds();
      const t0 = Date.now();
      const starting = BerthProcess.start(env.dirs, { instance: env.instance, args });
      const healthMs = await waitFor(`/healthz after a ${what} state file`, async () => {
        const r = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
        return r?.status === 200 ? Date.now() - t0 : undefined;
      }, 15_000, 20);
      env.berth = await starting;
      const operatorMs = Date.now() - t0;

      const aside = (await readdir(env.dirs.state)).filter((f) => f.startsWith('state.json.corrupt-') && !before.has(f));
      expect(aside, what).toHaveLength(1);
      expect(aside[0]).toMatch(/^state\.json\.corrupt-\d{4}-\d\d-\d\dT[\d-]+Z$/);
      expect(Buffer.compare(await readFile(join(env.dirs.state, aside[0]!)), bytes), `${what}: moved aside unchanged`).toBe(0);
      const op = await waitFor('operator.yaml reports the recovery', async () => {
        const o = await operatorOf(env);
        return o && o.status.pid === env.berth!.proc.pid && o.status.state?.recoveredFrom ? o : undefined;
      }, 5000, 50);
      expectValidStatusFile(op);
      expect(op.status.state!.recoveredFrom).toBe(join(env.dirs.state, aside[0]!));
      const apiOp = JSON.parse((await httpCall(env.berth.adminUrl, '/api/v1/operator')).text) as OperatorStatusFile;
      expect(apiOp.status.state?.recoveredFrom).toBe(op.status.state!.recoveredFrom);

      // The restarted berth has looked at both apps (its own API), then a quiet moment.
      await waitFor(`both apps Ready after the ${what} state`, async () => {
        const docs = JSON.parse((await httpCall(env.berth!.adminUrl, '/api/v1/apps')).text) as AppStatusFile[];
        return docs.length === 2 && docs.every(isReady);
      }, 15_000, 50);
      await sleep(2000);
      const events = (await containerEvents(env, since, nowSeconds())).filter((e) => MUTATING.has(e.action));
      console.log(`state ${what}: /healthz ${healthMs} ms, operator.yaml ${operatorMs} ms, moved to ${aside[0]}, container events ${events.length}`);
      expect(healthMs, `${what}: /healthz`).toBeLessThan(5000);
      expect(events, what).toEqual([]);
      expect((await appContainers(env)).map((c) => c.id).sort(), what).toEqual(ids);
      await env.berth.stop();
      // What berth rebuilt is a usable state file.
      expect(() => migrate(JSON.parse(readFileSync(join(env.dirs.state, 'state.json'), 'utf8')))).not.toThrow();
    }

    // The rebuilt state is trusted by the next start: nothing moved aside, no recovery reported.
    const corruptBefore = (await readdir(env.dirs.state)).filter((f) => f.startsWith('state.json.corrupt-')).length;
    await startBerth(env, { args });
    const op = await waitFor('operator.yaml of the clean restart', async () => {
      const o = await operatorOf(env);
      return o?.status.pid === env.berth!.proc.pid ? o : undefined;
    }, 5000, 50);
    expect(op.status.state?.recoveredFrom).toBeUndefined();
    expect((await readdir(env.dirs.state)).filter((f) => f.startsWith('state.json.corrupt-'))).toHaveLength(corruptBefore);
  }), 600_000);

  // On a private dockerd: kill -9 of a client in the middle of its calls makes dockerd 20.10 leak a
  // network's endpoint count now and then ("has active endpoints" with no container attached, for
  // good): on the shared engine every such run would leave a network (and its subnet) behind.
  it(`kill -9 in a loop during ${KILL_EDITS} manifest edits: every state and status file always parses, then berth converges`, ({ expect }) => serially(async () => {
    const env = await newEnv('okill');
    const pd = await startPrivateDockerd();
    privateEngines.push(pd);
    await loadStandardImages(pd.dockerHost, [IMAGES.httpdV1]);
    const pengine = new Docker({ socketPath: pd.dockerHost.replace(/^unix:\/\//, '') });
    const dockerArgs = ['--docker', pd.dockerHost];
    const names = Array.from({ length: 20 }, (_, i) => `k${String(i).padStart(2, '0')}`);
    const body = (n: string, v: string) => appYaml(n, `image: ${IMAGES.httpdV1}\nresources: {memory: 16m}\ndeploy: {stopTimeoutSeconds: 2}\nenv: {V: "${v}"}\nroutes: [{host: ${n}.test}]`);
    const lastValue = new Map<string, string>();
    for (const n of names) {
      await writeFile(join(env.dirs.manifests, `${n}.yaml`), body(n, 'v0'));
      lastValue.set(n, 'v0');
    }
    await startBerth(env, { args: dockerArgs });
    await waitAllReady(env, names, 120_000);
    await env.berth!.kill9();
    await checkFilesParse(env, 'after the first kill');

    // The writer: edits as fast as the interval allows, atomically (temp + rename) mostly, and
    // every 10th in place (truncate + write, as some editors do).
    let writing = true;
    let stop = false;
    const t0 = Date.now();
    const writer = (async () => {
      for (let i = 1; i <= KILL_EDITS && !stop; i++) {
        const n = names[Math.floor(Math.random() * names.length)]!;
        const v = `v${i}`;
        const file = join(env.dirs.manifests, `${n}.yaml`);
        if (i % 10 === 0) await writeFile(file, body(n, v));
        else {
          const tmp = join(env.dirs.manifests, `.${n}.${i}.tmp`);
          await writeFile(tmp, body(n, v));
          await rename(tmp, file);
        }
        lastValue.set(n, v);
        await sleep(KILL_EDIT_INTERVAL_MS);
      }
    })().finally(() => {
      writing = false;
    });

    // The killer: start berth, SIGKILL it after 0.5–2 s (or let a fault point kill it), check every file.
    const flags = [BERTH_BIN, 'run', ...filesFlags(env), '--admin', '127.0.0.1:0', '--http', '127.0.0.1:0', '--https', '127.0.0.1:0', '--instance', env.instance, '--log-level', 'debug', ...dockerArgs];
    let kills = 0;
    let faultKills = 0;
    let maxTemp = 0;
    const unexpected: string[] = [];
    try {
      while (writing) {
        const fault = Math.random() < 0.3 ? `write:before-rename@${1 + Math.floor(Math.random() * 30)}` : undefined;
        const child = spawn(process.execPath, flags, { env: { ...process.env, ...(fault ? { BERTH_FAULT: fault } : {}) }, stdio: ['ignore', 'pipe', 'pipe'] });
        env.children.push(child);
        const out: string[] = [];
        child.stdout.on('data', (d: Buffer) => out.push(d.toString()));
        child.stderr.on('data', (d: Buffer) => out.push(d.toString()));
        const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
        const who = await Promise.race([exited.then(() => 'itself'), sleep(500 + Math.random() * 1500).then(() => 'timer')]);
        if (who === 'timer') child.kill('SIGKILL');
        const { code, signal } = await exited;
        const lastOutput = out.join('');
        kills++;
        if (who === 'itself') {
          if (signal === 'SIGKILL' && fault && lastOutput.includes('fault point')) faultKills++;
          else unexpected.push(`berth exited by itself (code ${code}, signal ${signal}, BERTH_FAULT=${fault ?? ''}): ${lastOutput.slice(-1500)}`);
        }
        const { tempFiles } = await checkFilesParse(env, `after kill ${kills} (${who === 'timer' ? 'SIGKILL' : fault})`);
        maxTemp = Math.max(maxTemp, tempFiles);
      }
    } finally {
      stop = true;
      await writer;
    }
    const loopMs = Date.now() - t0;
    expect(unexpected).toEqual([]);

    // Converge: every app Ready at its last value, one container each.
    const t1 = Date.now();
    await startBerth(env, { args: dockerArgs });
    const envCache = new Map<string, string[]>();
    const converged = async (): Promise<string | true> => {
      const all = await appContainers(env, undefined, pengine);
      for (const n of names) {
        const s = await statusOf(env, n);
        if (!isReady(s) || s!.status.observedGeneration !== s!.metadata.generation) return `${n}: ${s?.status.phase}`;
        const cs = all.filter((c) => c.name.startsWith(`${env.instance}-${n}-`));
        if (cs.length !== 1 || cs[0]!.state !== 'running') return `${n}: containers ${cs.map((c) => `${c.name}/${c.state}`).join(' ')}`;
        let e = envCache.get(cs[0]!.id);
        if (!e) envCache.set(cs[0]!.id, (e = (await pengine.getContainer(cs[0]!.id).inspect()).Config.Env));
        if (!e.includes(`V=${lastValue.get(n)}`)) return `${n}: runs ${e.find((x) => x.startsWith('V='))}, wants ${lastValue.get(n)}`;
      }
      if (all.length !== names.length) return `${all.length} containers for ${names.length} apps`;
      return true;
    };
    let why: string | true = 'not looked yet';
    await waitFor('convergence after the kill loop', async () => (why = await converged()) === true, 120_000, 500).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}: ${String(why)}\n${env.berth!.logs().slice(-3000)}`, { cause: e });
    });
    const convergeMs = Date.now() - t1;
    await sleep(2000);
    expect(await converged()).toBe(true);
    await checkFilesParse(env, 'after convergence');
    console.log(`kill loop: ${KILL_EDITS} edits in ${loopMs} ms, ${kills} kills (${faultKills} by BERTH_FAULT=write:before-rename), every file parsed after each; ` +
      `converged ${convergeMs} ms after the last start; at most ${maxTemp} leftover temp file(s) seen`);
    await env.berth!.stop();
    await pd.destroy();
  }), 600_000);

  it('admin API: Prometheus text, the API matches the status files, tokens, loopback only, Host check, body limit', ({ expect }) => serially(async () => {
    const env = await newEnv('oadm');
    const apps = ['alpha', 'beta'];
    for (const a of apps) await writeApp(env, a, `image: ${IMAGES.httpdV1}\nroutes: [{host: ${a}.test}]`);
    const berth = await startBerth(env, { env: { BERTH_ADMIN_TOKEN: ADMIN_TOKEN } });
    await waitAllReady(env, apps, 30_000);
    for (let i = 0; i < 3; i++) expect((await httpCall(berth.httpUrl, '/', { host: 'alpha.test' })).status).toBe(200);
    expect((await httpCall(berth.httpUrl, '/', { host: 'nobody.test' })).status).toBe(404);

    // The parser is strict (it would reject what Prometheus rejects).
    for (const bad of ['x 1\n', '# TYPE x gauge\nx{a="\\t"} 1\n', '# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\nx{a="b"} 2\n', '# TYPE x gauge\nx  1\n', '# TYPE x counter\nx -1\n', '# TYPE x gauge\nx{a="1",a="2"} 1\n', '# TYPE x gauge\nx 1', '# HELP x a \\t\n# TYPE x gauge\nx 1\n', '# TYPE x gauge\nx{__a="1"} 1\n', '# TYPE x gauge\nx 1\nx 2\n', '# TYPE x gauge\nx{a="1"} one\n']) {
      expect(() => parsePrometheus(bad), bad).toThrow();
    }
    expect(parsePrometheus('# HELP x a \\\\ b\n# TYPE x gauge\nx{a="q\\"\\n\\\\",b=""} NaN 123\nx{a="2"} +Inf\n').get('x')!.samples[0]!.labels.a).toBe('q"\n\\');

    // /metrics, loopback GETs need no token.
    const m = await httpCall(berth.adminUrl, '/metrics');
    expect(m.status).toBe(200);
    expect(m.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const families = parsePrometheus(m.text);
    for (const f of ['berth_apps', 'berth_docker_connected', 'berth_reconciles_total', 'berth_reconcile_errors_total', 'berth_http_requests_total', 'berth_http_in_flight', 'berth_wakes_total', 'berth_builds_running', 'berth_builds_queued', 'berth_certificate_orders_total']) {
      expect(families.has(f), `${f} in /metrics`).toBe(true);
    }
    const sample = (f: string, labels: Record<string, string> = {}) => families.get(f)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    expect(sample('berth_apps', { phase: 'Ready' })).toBe(2);
    expect(families.get('berth_apps')!.samples.reduce((n, s) => n + s.value, 0)).toBe(2);
    expect(sample('berth_docker_connected')).toBe(1);
    expect(sample('berth_http_requests_total', { app: 'alpha', class: '2xx' })).toBe(3);
    expect(sample('berth_http_unrouted_total')).toBeGreaterThanOrEqual(1);
    expect(m.headers['access-control-allow-origin']).toBeUndefined();

    // /api/v1/apps and /api/v1/apps/NAME are the status files' documents (read until both agree at one moment).
    const files = async (): Promise<AppStatusFile[]> => (await Promise.all(apps.map((a) => statusOf(env, a)))) as AppStatusFile[];
    let diff = '';
    await waitFor('/api/v1/apps equal to the status files', async () => {
      const [api, disk] = [JSON.parse((await httpCall(berth.adminUrl, '/api/v1/apps')).text) as unknown, await files()];
      diff = `${JSON.stringify(api)}\n!=\n${JSON.stringify(disk)}`;
      return JSON.stringify(api) === JSON.stringify(disk);
    }, 10_000, 200).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\n${diff}`, { cause: e });
    });
    for (const a of apps) {
      const r = await httpCall(berth.adminUrl, `/api/v1/apps/${a}`);
      expect(r.status).toBe(200);
      const doc = JSON.parse(r.text) as AppStatusFile;
      expectValidStatusFile(doc);
      expect(doc).toEqual(await statusOf(env, a));
    }
    expect((await httpCall(berth.adminUrl, '/api/v1/apps/nosuch')).status).toBe(404);
    // operator.yaml follows the apps at most every 100 ms (and then waits for its write): eventually equal.
    await waitFor('/api/v1/operator equal to operator.yaml', async () => {
      const [api, disk] = [JSON.parse((await httpCall(berth.adminUrl, '/api/v1/operator')).text) as OperatorStatusFile, await operatorOf(env)];
      expectValidStatusFile(api);
      diff = `${JSON.stringify(api)}\n!=\n${JSON.stringify(disk)}`;
      return JSON.stringify(api) === JSON.stringify(disk);
    }, 5000, 100).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\n${diff}`, { cause: e });
    });

    // Mutating: no token, a wrong one, the wrong scheme → 401; the right one → 202.
    const retry = (headers: Record<string, string>, opts: { host?: string; body?: string; app?: string } = {}) =>
      httpCall(berth.adminUrl, `/api/v1/apps/${opts.app ?? 'alpha'}/retry`, { method: 'POST', headers, ...(opts.host ? { host: opts.host } : {}), ...(opts.body !== undefined ? { body: opts.body } : {}) });
    const wrongSameLength = ADMIN_TOKEN.replace(/.$/, (c) => (c === '0' ? '1' : '0'));
    for (const [what, headers] of [['no token', {}], ['wrong token', { authorization: 'Bearer nope' }], ['wrong token, same length', { authorization: `Bearer ${wrongSameLength}` }], ['Basic scheme', { authorization: `Basic ${Buffer.from(`x:${ADMIN_TOKEN}`).toString('base64')}` }], ['bare token', { authorization: ADMIN_TOKEN }]] as [string, Record<string, string>][]) {
      const r = await retry(headers);
      expect(r.status, what).toBe(401);
      expect(r.headers['www-authenticate'], what).toBe('Bearer');
    }
    expect((await httpCall(berth.adminUrl, '/api/v1/apps', { method: 'POST' })).status).toBe(401);
    const ok = await retry({ authorization: `Bearer ${ADMIN_TOKEN}` });
    expect(ok.status).toBe(202);
    expect(JSON.parse(ok.text)).toEqual({ retrying: 'alpha' });
    expect((await retry({ authorization: `Bearer ${ADMIN_TOKEN}` }, { app: 'nosuch' })).status).toBe(404);
    const viaCli = await berthCli(['retry', 'beta', '--admin', berth.adminUrl.replace('http://', '')], { env: { BERTH_ADMIN_TOKEN: ADMIN_TOKEN } });
    expect(viaCli.code, viaCli.stderr).toBe(0);

    // DNS rebinding: a foreign Host on the loopback listener → 421, even with the token; loopback names pass.
    const port = new URL(berth.adminUrl).port;
    // A rebinding attacker names its own domain; one that merely starts with "127." is no loopback name.
    // (Soft: the checks below still run when one of these fails.)
    for (const host of ['evil.example', `evil.example:${port}`, `127.0.0.1.evil.example:${port}`, '127.evil.example', 'localhost.evil.example']) {
      expect.soft((await httpCall(berth.adminUrl, '/healthz', { host })).status, `GET /healthz Host: ${host}`).toBe(421);
      expect.soft((await httpCall(berth.adminUrl, '/api/v1/apps', { host })).status, `GET /api/v1/apps Host: ${host}`).toBe(421);
      expect.soft((await retry({ authorization: `Bearer ${ADMIN_TOKEN}` }, { host })).status, `POST retry Host: ${host}`).toBe(421);
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost', `[::1]:${port}`]) {
      expect((await httpCall(berth.adminUrl, '/healthz', { host })).status, host).toBe(200);
    }

    // Body limit: 64 KiB passes, one byte more → 413.
    const json = (size: number) => {
      const s = `{"pad":"${'x'.repeat(size - 10)}"}`;
      expect(Buffer.byteLength(s)).toBe(size);
      return s;
    };
    expect((await retry({ authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, { body: json(64 * 1024) })).status).toBe(202);
    expect((await retry({ authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, { body: json(64 * 1024 + 1) })).status).toBe(413);
    expect((await retry({ authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, { body: json(1024 * 1024) })).status).toBe(413);
    expect((await retry({}, { body: json(1024 * 1024) })).status).toBe(401);
    expect((await httpCall(berth.adminUrl, '/healthz')).status).toBe(200); // still up

    // Loopback by default; beyond loopback without a token: refused at start (exit 2, says what to do).
    const help = await berthCli(['run', '--help']);
    expect(help.stdout).toMatch(/--admin VALUE .*\(default 127\.0\.0\.1:9090\)/);
    const open = await newEnv('oadm0');
    const refused = spawnCli(['run', ...filesFlags(open), '--instance', open.instance, '--admin', '0.0.0.0:0', '--http', '127.0.0.1:0', '--https', '127.0.0.1:0'], { BERTH_ADMIN_TOKEN: '' });
    open.children.push(refused.child);
    const exit = await Promise.race([refused.exit, sleep(15_000).then(() => undefined)]);
    expect(exit, `berth did not refuse --admin 0.0.0.0 without a token:\n${refused.out()}`).toEqual({ code: 2, signal: null });
    expect(refused.out()).toMatch(/--admin 0\.0\.0\.0 is not a loopback address: set BERTH_ADMIN_TOKEN/);
    expect(await readYaml(join(open.dirs.status, 'operator.yaml'))).toBeUndefined();

    // With a token it starts, and then every endpoint (GETs too) needs the token.
    const wide = await startBerth(open, { args: ['--admin', '0.0.0.0:0'], env: { BERTH_ADMIN_TOKEN: ADMIN_TOKEN } });
    const wideListener = (await wide.listeners()).admin!;
    expect(wideListener).toMatch(/^0\.0\.0\.0:\d+$/);
    const wideUrl = `http://127.0.0.1:${wideListener.split(':')[1]}`;
    for (const path of ['/healthz', '/metrics', '/api/v1/apps', '/api/v1/operator']) {
      expect((await httpCall(wideUrl, path)).status, `${path} without token`).toBe(401);
      expect((await httpCall(wideUrl, path, { headers: { authorization: 'Bearer nope' } })).status, `${path} wrong token`).toBe(401);
      expect((await httpCall(wideUrl, path, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status, `${path} with token`).toBe(200);
    }
    await wide.stop();
  }), 600_000);

  it('berth logs (-f, --tail, --build), berth history and the berth status table', ({ expect }) => serially(async () => {
    const env = await newEnv('olog');
    const repo = await createTestRepo();
    repos.push(repo);
    const marker = `build-marker-${randomBytes(4).toString('hex')}`;
    const commit = await repo.commit({
      busybox: { copy: '/bin/busybox', mode: 0o755 },
      'www/index.html': 'built\n',
      Dockerfile: ['FROM scratch', 'COPY busybox /bin/busybox', 'COPY www /www', `RUN ["/bin/busybox", "echo", "${marker}"]`, 'CMD ["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"]', ''].join('\n'),
    });
    await writeApp(env, 'talker', `image: ${IMAGES.httpdV1}\ncommand: [sh, -c, 'httpd -p 80 -h /www; i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.2; done']\nroutes: [{host: talker.test}]`);
    await writeApp(env, 'built', `build:\n  git: {url: "${repo.url}", branch: main}`);
    await startBerth(env);
    const ready = await waitAllReady(env, ['talker', 'built'], 120_000);
    const talker = ready[0]!;
    const built = ready[1]!;
    const f = filesFlags(env);
    const engineFlags = ['--instance', env.instance];

    // logs: everything so far, --tail, and errors.
    await waitFor('a few ticks', async () => (await docker('logs', (await appContainers(env, 'talker'))[0]!.id)).includes('tick 3'), 10_000, 100);
    const all = await berthCli(['logs', 'talker', ...engineFlags, ...f]);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toMatch(/^tick 0\ntick 1\ntick 2\ntick 3\n/);
    const tail = await berthCli(['logs', 'talker', '--tail', '2', ...engineFlags, ...f]);
    expect(tail.stdout.trimEnd().split('\n')).toHaveLength(2);
    expect(tail.stdout).toMatch(/^tick \d+\ntick \d+\n$/);
    const none = await berthCli(['logs', 'nosuch', ...engineFlags, ...f]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no container of app nosuch/);
    expect((await berthCli(['logs', ...engineFlags, ...f])).code).toBe(2);

    // logs -f follows: new lines keep arriving, Ctrl-C ends it with 0.
    const follow = spawnCli(['logs', 'talker', '-f', '--tail', '1', ...engineFlags, ...f]);
    env.children.push(follow.child);
    const ticks = () => [...follow.out().matchAll(/tick (\d+)/g)].map((x) => Number(x[1]));
    const first = await waitFor('logs -f prints', () => ticks()[0], 10_000, 50);
    await waitFor('logs -f follows new output', () => ticks().some((n) => n >= first + 5), 10_000, 50);
    follow.child.kill('SIGINT');
    expect(await Promise.race([follow.exit, sleep(5000).then(() => 'still running')])).toEqual({ code: 0, signal: null });
    const seq = ticks();
    expect(seq).toEqual(seq.map((_, i) => first + i)); // in order, nothing lost or doubled

    // logs --build: the last build's log.
    const buildLog = await berthCli(['logs', 'built', '--build', ...engineFlags, ...f]);
    expect(buildLog.code, buildLog.stderr).toBe(0);
    expect(buildLog.stdout).toContain(marker);
    const buildTail = await berthCli(['logs', 'built', '--build', '--tail', '3', ...engineFlags, ...f]);
    expect(buildTail.stdout.trimEnd().split('\n').length).toBeLessThanOrEqual(3);
    const noBuild = await berthCli(['logs', 'talker', '--build', ...engineFlags, ...f]);
    expect(noBuild.code).toBe(1);
    expect(noBuild.stderr).toMatch(/no build log for talker/);

    // history: columns, rows, --json, errors.
    const columns = (text: string, header: string[]): Record<string, string>[] => {
      const lines = text.trimEnd().split('\n');
      const starts = header.map((h) => lines[0]!.indexOf(h));
      expect(starts.every((s, i) => s >= 0 && (i === 0 || s > starts[i - 1]!)), `columns ${header.join(' ')} in ${lines[0]}`).toBe(true);
      expect(lines[0]!.split(/\s{2,}/)).toEqual(header);
      return lines.slice(1).map((l) => Object.fromEntries(header.map((h, i) => [h, l.slice(starts[i], i + 1 < starts.length ? starts[i + 1] : undefined).trim()])));
    };
    const hist = await berthCli(['history', 'built', ...f]);
    expect(hist.code, hist.stderr).toBe(0);
    const rows = columns(hist.stdout, ['AT', 'RESULT', 'REVISION', 'IMAGE', 'MESSAGE']);
    expect(rows.at(-1)).toMatchObject({ RESULT: 'Succeeded', REVISION: commit.slice(0, 12), IMAGE: built.status.image!.ref });
    expect(Date.parse(rows.at(-1)!.AT ?? '')).toBeGreaterThan(Date.now() - 600_000);
    const histJson = JSON.parse((await berthCli(['history', 'built', '--json', ...f])).stdout) as { revision?: string; result: string }[];
    expect(histJson.at(-1)).toMatchObject({ revision: commit, result: 'Succeeded' });
    expect(histJson).toEqual(built.status.history);
    const talkerHist = columns((await berthCli(['history', 'talker', ...f])).stdout, ['AT', 'RESULT', 'REVISION', 'IMAGE', 'MESSAGE']);
    expect(talkerHist.at(-1)).toMatchObject({ RESULT: 'Succeeded', REVISION: '-', IMAGE: IMAGES.httpdV1 });
    expect((await berthCli(['history', 'nosuch', ...f])).code).toBe(1);
    expect((await berthCli(['history', ...f])).code).toBe(2);

    // status: the table's columns and values, one app in detail, --json, unknown app.
    const st = await berthCli(['status', ...f]);
    expect(st.code, st.stderr).toBe(0);
    const table = columns(st.stdout, ['NAME', 'PHASE', 'READY', 'URL', 'REVISION', 'AGE', 'MESSAGE']);
    expect(table.map((r) => r.NAME)).toEqual(['built', 'talker']);
    const readyMessage = (s: AppStatusFile) => condition(s, 'Ready')!.message;
    expect(table[0]).toMatchObject({ PHASE: 'Ready', READY: 'True', URL: built.status.url ?? '-', REVISION: commit.slice(0, 12), MESSAGE: readyMessage(built) });
    expect(table[1]).toMatchObject({ PHASE: 'Ready', READY: 'True', URL: talker.status.url!, REVISION: '-', MESSAGE: readyMessage(talker) });
    expect(talker.status.url).toMatch(/^http:\/\/talker\.test:\d+\/$/);
    for (const r of table) expect(r.AGE).toMatch(/^\d+[smhd]$/);
    const one = await berthCli(['status', 'built', ...f]);
    expect(one.code).toBe(0);
    expect(parse(one.stdout)).toEqual(await statusOf(env, 'built'));
    expect(JSON.parse((await berthCli(['status', '--json', ...f])).stdout)).toEqual([await statusOf(env, 'built'), await statusOf(env, 'talker')]);
    const missing = await berthCli(['status', 'nosuch', ...f]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no app named "nosuch"/);
  }), 600_000);
});
