// The invariants every scenario of the reliability suite ends with (issue 8): one function,
// checkInvariants(env, { apps }), that collects every violation and fails once, listing them all.
//
//  1. files: state.json, secrets.json and every status file parse; every status file matches
//     crds/status.v1alpha1.schema.json; no `.tmp` leftover (see `tolerateTmp`);
//  2. Docker: exactly the desired containers per app (running / stopped), one spec per app, no
//     orphan (a container, volume or network of the instance that belongs to no desired app),
//     no dangling image of the instance;
//  3. security audit of every managed container (docker inspect);
//  4. bystanders (objects without berth's labels, some named like berth's) untouched;
//  5. every Ready app with a URL answers through berth's proxy (Host header);
//  6. no secret canary in any status/state file, log line, /metrics or admin API answer;
//  7. open file descriptors and RSS of berth below generous bounds (printed);
//  8. a quiet window: no container event of the instance and no mutating Docker call by berth
//     (berth_docker_calls_total) — nothing flaps.
import { readFile, readdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import https from 'node:https';
import { parse } from 'yaml';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type Docker from 'dockerode';
import { expect } from 'vitest';
import { sleep } from './berth-process.js';
import { FaultEnv } from './fault-env.js';
import type { AppStatusFile } from '../../src/api/types.generated.js';

const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
addFormats.default(ajv);
const validateStatus = ajv.compile(JSON.parse(readFileSync(new URL('../../crds/status.v1alpha1.schema.json', import.meta.url), 'utf8')) as object);

/** Desired containers of an app: a number of running ones, or running and stopped (a sleeping app keeps one stopped). */
export type Want = number | { running: number; stopped?: number };

export interface InvariantOptions {
  /** Every app that may have containers, and how many. Containers of any other app are orphans. */
  apps: Record<string, Want>;
  /** Tolerate one hidden `.<file>.<hex>.tmp` per target file (left by a kill -9 between a temp write and its rename). */
  tolerateTmp?: boolean;
  /** Temp files left by earlier kills (paths as in tmpLeftovers): not counted, only reported (the sweep is tested on its own). */
  ignoreTmp?: string[];
  /** Apps allowed to own named volumes although not in `apps` (Retain volumes of deleted apps). */
  volumesOf?: string[];
  /** More secret values that must not leak. */
  canaries?: string[];
  /** Length of the quiet window (default 5000 ms; 0 skips it). */
  quietMs?: number;
  /** Bounds (defaults: 512 fds, 400 MiB). */
  maxFds?: number;
  maxRssMiB?: number;
  /** How long to wait for Docker to match `apps` before judging (default 30 s). */
  convergeMs?: number;
  /** Skip the proxy answers (e.g. an HTTP listener under attack is checked by the scenario). */
  skipProxy?: boolean;
  /** Mutating Docker calls allowed in the quiet window (e.g. a create that keeps failing against a squatter: no event, nothing changes). */
  allowCalls?: string[];
  /** Short name of the moment, for the printed summary. */
  label?: string;
}

export interface InvariantReport {
  fds: number;
  rssMiB: number;
  statusFiles: number;
  containers: number;
  answered: string[];
  quietEvents: string[];
  tmpLeftovers: string[];
}

const MUTATING_EVENTS = new Set(['create', 'start', 'stop', 'kill', 'destroy', 'die', 'restart', 'pause', 'unpause', 'update', 'rename', 'oom']);
const MUTATING_CALLS = ['createContainer', 'startContainer', 'stopContainer', 'removeContainer', 'connectNetwork', 'restoreRestartPolicy', 'ensureNetwork', 'ensureVolume', 'removeVolume', 'removeImage', 'buildImage', 'pullImage'];

const running = (w: Want) => (typeof w === 'number' ? w : w.running);
const stopped = (w: Want) => (typeof w === 'number' ? 0 : (w.stopped ?? 0));

/** Every file under dir (recursively), relative paths. */
async function walkFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (d: string) => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await visit(p);
      else if (e.isFile()) out.push(relative(dir, p));
    }
  };
  await visit(dir);
  return out.sort();
}

/** Hidden temp files (`.<name>.<hex>.tmp`) under dir, relative, that stay for a second (a write in flight renames its own soon). */
async function tmpFiles(dir: string): Promise<string[]> {
  const list = async () => (await walkFiles(dir)).filter((f) => /(^|\/)\.[^/]*\.tmp$/.test(f));
  const first = await list();
  if (first.length === 0) return first;
  await sleep(1000);
  const second = new Set(await list());
  return first.filter((f) => second.has(f));
}

/**
 * Files only (no Docker, no berth process): state and status files parse and match the schema,
 * and temp leftovers are counted. Used right after a kill -9 (before the restart rewrites them)
 * and by checkInvariants.
 */
export async function checkFiles(env: FaultEnv, opts: { tolerateTmp?: boolean; ignoreTmp?: string[]; requireState?: boolean } = {}): Promise<{ problems: string[]; statusFiles: number; tmpLeftovers: string[] }> {
  const problems: string[] = [];
  const { state, status, manifests } = env.dirs;
  // State: state.json must exist once berth ran; secrets.json only if secrets were set.
  for (const [file, required] of [['state.json', opts.requireState ?? false], ['secrets.json', false]] as const) {
    const path = join(state, file);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      if (required) problems.push(`${file}: missing`);
      continue;
    }
    try {
      const doc = JSON.parse(text) as unknown;
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) problems.push(`${file}: not a JSON object`);
    } catch (e) {
      problems.push(`${file}: does not parse (${(e as Error).message}; ${text.length} bytes)`);
    }
  }
  const statusFiles = (await walkFiles(status)).filter((f) => !f.split('/').some((s) => s.startsWith('.')));
  for (const rel of statusFiles) {
    if (!rel.endsWith('.yaml')) {
      problems.push(`status/${rel}: not a status file`);
      continue;
    }
    const text = await readFile(join(status, rel), 'utf8').catch(() => undefined);
    if (text === undefined) continue; // removed meanwhile (an app being deleted)
    let doc: unknown;
    try {
      doc = parse(text);
    } catch (e) {
      problems.push(`status/${rel}: does not parse (${(e as Error).message})`);
      continue;
    }
    if (!validateStatus(doc)) {
      problems.push(`status/${rel}: does not match the status schema (${ajv.errorsText(validateStatus.errors).slice(0, 400)}; ${text.length} bytes)`);
      continue;
    }
    const d = doc as { kind: string; metadata?: { name: string } };
    const m = /^(apps|gitrepositories)\/([^/]+)\.yaml$/.exec(rel);
    if (m && (d.metadata?.name !== m[2] || d.kind !== (m[1] === 'apps' ? 'App' : 'GitRepository'))) problems.push(`status/${rel}: holds ${d.kind}/${d.metadata?.name}`);
  }
  // Temp leftovers: a kill -9 between a temp write and its rename leaves one per file being
  // written at that moment (berth writes different files concurrently). Tolerated after a kill:
  // one per target file; two for the same target mean leftovers accumulate across kills.
  const tmpLeftovers: string[] = [];
  for (const [name, dir] of [['state', state], ['status', status], ['manifests', manifests]] as const) {
    const byTarget = new Map<string, string[]>();
    for (const f of await tmpFiles(dir)) {
      if (name === 'manifests' && !f.startsWith('_webhook/')) continue; // the test's own editor temp files
      tmpLeftovers.push(`${name}/${f}`);
      if (opts.ignoreTmp?.includes(`${name}/${f}`)) continue;
      const target = f.replace(/(^|\/)\.([^/]+)\.[0-9a-f]+\.tmp$/, '$1$2');
      byTarget.set(target, [...(byTarget.get(target) ?? []), f]);
    }
    for (const [target, files] of byTarget) {
      if (!opts.tolerateTmp || files.length > 1) problems.push(`${name}/${target}: ${files.length} temp file(s) left behind: ${files.join(', ')}`);
    }
  }
  return { problems, statusFiles: statusFiles.length, tmpLeftovers };
}

/** What must hold for every container berth manages (reliability.md §3, README "Security model"). */
export function auditContainer(info: Docker.ContainerInspectInfo, instance: string): string[] {
  const p: string[] = [];
  const name = info.Name.replace(/^\//, '');
  const hc = info.HostConfig;
  const bad = (what: string) => p.push(`${name}: ${what}`);
  if (hc.Privileged) bad('privileged');
  if (!((hc.SecurityOpt ?? []) as string[]).some((o) => /^no-new-privileges(:true|=true)?$/.test(o))) bad(`no no-new-privileges (SecurityOpt ${JSON.stringify(hc.SecurityOpt)})`);
  if (hc.NetworkMode === 'host' || hc.NetworkMode !== instance) bad(`network mode ${hc.NetworkMode} (want the instance network ${instance})`);
  if (hc.PidMode === 'host') bad('host pid namespace');
  if (hc.IpcMode === 'host') bad('host ipc namespace');
  if (hc.UTSMode === 'host') bad('host uts namespace');
  if ((hc.CapAdd ?? []).length > 0) bad(`CapAdd ${JSON.stringify(hc.CapAdd)}`);
  if ((hc.Devices ?? []).length > 0) bad(`devices ${JSON.stringify(hc.Devices)}`);
  if (!(hc.Memory && hc.Memory > 0)) bad('no memory limit');
  if (hc.MemorySwap !== undefined && hc.MemorySwap !== hc.Memory) bad(`swap ${hc.MemorySwap} beyond the memory limit ${hc.Memory}`);
  if (!(hc.NanoCpus && hc.NanoCpus > 0)) bad('no CPU limit');
  if (!(hc.PidsLimit && hc.PidsLimit > 0)) bad('no pids limit');
  if (hc.LogConfig?.Type !== 'json-file' || !hc.LogConfig.Config?.['max-size'] || !hc.LogConfig.Config['max-file']) bad(`log rotation ${JSON.stringify(hc.LogConfig)}`);
  if (hc.RestartPolicy?.Name !== 'unless-stopped') bad(`restart policy ${JSON.stringify(hc.RestartPolicy)} (want unless-stopped)`);
  if (hc.Init !== true) bad('Init is not set');
  if (Object.keys((hc.PortBindings ?? {}) as Record<string, unknown>).length > 0) bad(`published ports ${JSON.stringify(hc.PortBindings)}`);
  if (hc.PublishAllPorts) bad('PublishAllPorts');
  const system = /^\/(etc|proc|sys|dev|boot|run|var\/run|var\/lib\/docker|root|usr|bin|sbin|lib)?(\/|$)/;
  for (const m of info.Mounts ?? []) {
    if (m.Type !== 'bind') continue;
    if (system.test(m.Source) || /docker\.sock/.test(m.Source)) bad(`mounts the system path ${m.Source}`);
  }
  for (const b of hc.Binds ?? []) if (/docker\.sock|^\/(:|$)|^\/(etc|proc|sys|dev|run|var\/run)(\/|:)/.test(b)) bad(`bind ${b}`);
  const labels = info.Config.Labels ?? {};
  if (labels['dev.berth.managed-by'] !== 'berth' || labels['dev.berth.instance'] !== instance || !labels['dev.berth.app'] || !labels['dev.berth.spec-hash']) bad(`labels ${JSON.stringify(labels)}`);
  return p;
}

/** The bystanders (no berth labels) are exactly as created: same ids, still running, not restarted, not relabelled or reconnected. */
async function checkBystanders(env: FaultEnv): Promise<string[]> {
  const b = env.bystanders;
  if (!b) return [];
  const p: string[] = [];
  try {
    const c = await env.inspect(b.container);
    if (c.Id !== b.containerId) p.push(`bystander container ${b.container} was replaced`);
    if (!c.State.Running || (!b.restarts && (c.State.StartedAt !== b.startedAt || c.RestartCount !== 0))) p.push(`bystander container ${b.container} was stopped or restarted (${c.State.Status}, started ${c.State.StartedAt})`);
    if (JSON.stringify(c.Config.Labels ?? {}) !== JSON.stringify(b.labels)) p.push(`bystander container ${b.container} labels changed: ${JSON.stringify(c.Config.Labels)}`);
    if (JSON.stringify(Object.keys(c.NetworkSettings.Networks).sort()) !== JSON.stringify([b.network])) p.push(`bystander container ${b.container} networks changed: ${Object.keys(c.NetworkSettings.Networks).join(',')}`);
  } catch (e) {
    p.push(`bystander container ${b.container} is gone (${String(e)})`);
  }
  try {
    const n = JSON.parse(await env.docker('network', 'inspect', b.network)) as { Id: string; Labels: Record<string, string> }[];
    if (n[0]?.Id !== b.networkId) p.push(`bystander network ${b.network} was replaced`);
    if (Object.keys(n[0]?.Labels ?? {}).some((k) => k.startsWith('dev.berth.'))) p.push(`bystander network ${b.network} got berth labels`);
  } catch {
    p.push(`bystander network ${b.network} is gone`);
  }
  try {
    await env.docker('volume', 'inspect', b.volume);
  } catch {
    p.push(`bystander volume ${b.volume} is gone`);
  }
  return p;
}

async function procNumbers(pid: number): Promise<{ fds: number; rssMiB: number }> {
  const fds = (await readdir(`/proc/${pid}/fd`)).length;
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
  return { fds, rssMiB: Math.round(rss * 10) / 10 };
}

/** GET the app's URL through berth (HTTPS via the env's HTTPS listener, any certificate). */
async function answerOf(env: FaultEnv, url: string): Promise<{ status: number; text: string }> {
  const u = new URL(url);
  if (u.protocol === 'https:') {
    return new Promise((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port: env.httpsPort, servername: u.hostname, path: u.pathname, headers: { host: u.hostname }, rejectUnauthorized: false, agent: false, timeout: 10_000 }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });
  }
  return env.call(u.hostname, u.pathname, { timeoutMs: 10_000 });
}

/** Runs every check; fails (once, listing every violation) if any does not hold. */
export async function checkInvariants(env: FaultEnv, opts: InvariantOptions): Promise<InvariantReport> {
  const problems: string[] = [];
  const berth = env.berth;
  if (!berth?.alive) problems.push('berth is not running');

  // 2 first (with a grace period): Docker converges to exactly what is desired.
  const counts = async () => {
    const cs = await env.containers();
    const issues: string[] = [];
    for (const c of cs) {
      const app = c.Labels['dev.berth.app'] ?? '';
      if (!(app in opts.apps)) issues.push(`orphan container ${c.Names[0]} (app ${app || '?'}, ${c.State})`);
    }
    for (const [app, want] of Object.entries(opts.apps)) {
      const mine = cs.filter((c) => c.Labels['dev.berth.app'] === app);
      const up = mine.filter((c) => c.State === 'running').length;
      const down = mine.length - up;
      if (up !== running(want) || down !== stopped(want)) issues.push(`${app}: ${up} running + ${down} other container(s), want ${running(want)} + ${stopped(want)} (${mine.map((c) => `${c.Names[0]} ${c.State}`).join(', ')})`);
      const hashes = new Set(mine.map((c) => c.Labels['dev.berth.spec-hash']));
      if (hashes.size > 1) issues.push(`${app}: containers of ${hashes.size} different specs`);
    }
    return { cs, issues };
  };
  const deadline = Date.now() + (opts.convergeMs ?? 30_000);
  let seen = await counts();
  while (seen.issues.length > 0 && Date.now() < deadline) {
    await sleep(200);
    seen = await counts();
  }
  problems.push(...seen.issues);
  const volumes = JSON.parse(`[${(await env.docker('volume', 'ls', '--filter', `label=dev.berth.instance=${env.instance}`, '--format', '{{json .}}')).split('\n').filter(Boolean).join(',')}]`) as { Name: string; Labels: string }[];
  for (const v of volumes) {
    const app = /dev\.berth\.app=([^,]+)/.exec(v.Labels)?.[1] ?? '';
    if (!(app in opts.apps) && !(opts.volumesOf ?? []).includes(app)) problems.push(`orphan volume ${v.Name} (app ${app})`);
  }
  const networks = (await env.docker('network', 'ls', '--filter', `label=dev.berth.instance=${env.instance}`, '--format', '{{.Name}}')).split('\n').filter(Boolean);
  if (networks.some((n) => n !== env.instance) || networks.length > 1) problems.push(`networks of the instance: ${networks.join(', ')} (want only ${env.instance})`);
  const dangling = (await env.docker('images', '-q', '--filter', 'dangling=true', '--filter', `label=dev.berth.instance=${env.instance}`)).split('\n').filter(Boolean);
  if (dangling.length > 0) problems.push(`dangling images of the instance: ${dangling.join(', ')}`);

  // 3: the security audit of every managed container.
  for (const c of seen.cs) problems.push(...auditContainer(await env.inspect(c.Id), env.instance));

  // 1: files.
  const files = await checkFiles(env, { tolerateTmp: opts.tolerateTmp, ignoreTmp: opts.ignoreTmp, requireState: true });
  problems.push(...files.problems);

  // 4: bystanders.
  problems.push(...(await checkBystanders(env)));

  // 5: every Ready app with a URL answers through the proxy.
  const answered: string[] = [];
  if (!opts.skipProxy && berth) {
    for (const f of await readdir(join(env.dirs.status, 'apps')).catch(() => [] as string[])) {
      if (!f.endsWith('.yaml') || f.startsWith('.')) continue;
      const s = await env.status(f.slice(0, -5));
      if (s?.status.phase !== 'Ready' || !s.status.url) continue;
      const url = s.status.url.replace('://*.', '://x.');
      try {
        const r = await answerOf(env, url);
        answered.push(`${s.metadata.name}=${r.status}`);
        if (r.status >= 500 || r.status === 404) problems.push(`${s.metadata.name} is Ready but ${url} answered ${r.status}: ${r.text.slice(0, 200)}`);
      } catch (e) {
        problems.push(`${s.metadata.name} is Ready but ${url} did not answer: ${String(e)}`);
      }
    }
  }

  // 6: the canaries, everywhere berth writes or answers.
  const canaries = [env.canary, ...(opts.canaries ?? [])];
  const outputs: [string, string][] = [['logs', env.allLogs()]];
  for (const [name, dir] of [['status', env.dirs.status], ['state', env.dirs.state]] as const) {
    for (const f of await walkFiles(dir)) outputs.push([`${name}/${f}`, await readFile(join(dir, f), 'latin1').catch(() => '')]);
  }
  if (berth?.alive) {
    for (const path of ['/metrics', '/healthz', '/api/v1/apps', '/api/v1/operator']) {
      const text = await fetch(`${berth.adminUrl}${path}`, { signal: AbortSignal.timeout(5000) }).then((r) => r.text(), (e: unknown) => `unreachable: ${String(e)}`);
      outputs.push([`admin ${path}`, text]);
    }
    const h = await fetch(`${berth.adminUrl}/healthz`, { signal: AbortSignal.timeout(5000) }).then((r) => r.json() as Promise<{ status?: string }>, () => undefined);
    if (h?.status !== 'ok') problems.push(`/healthz says ${JSON.stringify(h)}`);
  }
  for (const [where, text] of outputs) for (const c of canaries) if (text.includes(c)) problems.push(`secret canary found in ${where}`);

  // 7: file descriptors and memory.
  let nums = { fds: -1, rssMiB: -1 };
  if (berth?.alive) {
    nums = await procNumbers(berth.proc.pid!);
    if (nums.fds > (opts.maxFds ?? 512)) problems.push(`berth has ${nums.fds} open file descriptors (bound ${opts.maxFds ?? 512})`);
    if (nums.rssMiB > (opts.maxRssMiB ?? 400)) problems.push(`berth RSS ${nums.rssMiB} MiB (bound ${opts.maxRssMiB ?? 400})`);
  }

  // 8: the quiet window.
  const quietEvents: string[] = [];
  const quietMs = opts.quietMs ?? 5000;
  if (quietMs > 0 && berth?.alive) {
    const before = await env.metrics();
    const since = Date.now();
    await sleep(quietMs);
    const after = await env.metrics();
    for (const e of await env.events(since, Date.now())) if (MUTATING_EVENTS.has(e.action)) quietEvents.push(`${e.action} ${e.name}`);
    if (quietEvents.length > 0) problems.push(`container events in a ${quietMs} ms quiet window: ${quietEvents.join(', ')}`);
    for (const m of MUTATING_CALLS.filter((c) => !(opts.allowCalls ?? []).includes(c))) {
      const n = FaultEnv.metric(after, 'berth_docker_calls_total', `method="${m}"`) - FaultEnv.metric(before, 'berth_docker_calls_total', `method="${m}"`);
      if (n > 0) problems.push(`${n} ${m} call(s) by berth in a ${quietMs} ms quiet window`);
    }
    if (!berth.alive) problems.push('berth died during the quiet window');
    if (problems.some((p) => p.includes('quiet window'))) {
      // What berth itself said meanwhile (its JSON log lines of the window), to see who acted.
      const lines = berth.logs().split('\n').filter((l) => {
        const t = /"time":"([^"]+)"/.exec(l)?.[1];
        return t !== undefined && Date.parse(t) >= since;
      });
      problems.push(`berth's log during the quiet window:\n${lines.slice(-25).join('\n')}`);
    }
  }

  const report: InvariantReport = { ...nums, statusFiles: files.statusFiles, containers: seen.cs.length, answered, quietEvents, tmpLeftovers: files.tmpLeftovers };
  console.log(`[invariants${opts.label ? ` ${opts.label}` : ''}] ${env.instance}: fds ${nums.fds}, RSS ${nums.rssMiB} MiB, ${files.statusFiles} status files, ${seen.cs.length} containers, answered ${answered.join(' ') || '-'}, quiet ${quietMs} ms: ${quietEvents.length} events${files.tmpLeftovers.length ? `, tmp leftovers: ${files.tmpLeftovers.join(' ')}` : ''}${problems.length ? `, ${problems.length} PROBLEM(S)` : ''}`);
  expect(problems, `invariants${opts.label ? ` (${opts.label})` : ''} of ${env.instance}`).toEqual([]);
  return report;
}

/** Status of an app as a one-line summary (for failure messages and logs). */
export function summary(s: AppStatusFile | undefined): string {
  if (!s) return 'no status';
  return `${s.status.phase} ${s.status.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`).join(' ')}`;
}
