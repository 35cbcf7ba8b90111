// npm run bench: every benchmark in one run, each a ratio against its raw baseline measured in
// the same run, then one summary table (and bench/results/summary.json). Not part of the
// tests' pass/fail: targets are reported, met or missed, with the numbers.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { RESULTS, ROOT, machine, round, table, writeResult } from './lib.mjs';

const ALL = ['ready', 'wake', 'proxy', 'push-to-live', 'tls-berth', 'control-plane'];
// BENCH_ONLY=wake,proxy runs a subset; the summary still reads every result file there is.
const BENCHES = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',').filter((n) => ALL.includes(n)) : ALL;

function runScript(name) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [join(ROOT, 'bench', `${name}.mjs`)], { stdio: 'inherit', env: process.env });
    child.on('exit', (code) => resolve({ name, code, seconds: round((performance.now() - t0) / 1000) }));
  });
}

async function result(name) {
  try {
    return JSON.parse(await readFile(join(RESULTS, `${name}.json`), 'utf8'));
  } catch {
    return undefined;
  }
}

const get = (o, path) => path.split('.').reduce((x, k) => (x == null ? undefined : x[k]), o);
const pick = (o, ...paths) => paths.map((p) => get(o, p)).find((v) => v !== undefined);

const runs = [];
for (const name of BENCHES) {
  console.log(`\n=== bench: ${name}`);
  runs.push(await runScript(name));
}

const r = Object.fromEntries(await Promise.all(ALL.map(async (n) => [n, await result(n)])));
const cp = r['control-plane'];
const scen = (n) => cp?.scenarios?.find((s) => s.apps === n);
const ms = (v) => (typeof v === 'number' ? round(v, 1) : v);
const ratio = (a, b) => (typeof a === 'number' && typeof b === 'number' && b > 0 ? round(a / b, 2) : undefined);
const rows = [
  ['figure', 'berth', 'baseline', 'ratio', 'target'],
  ['manifest → Ready, p50 ms', pick(r.ready, 'berth.p50'), pick(r.ready, 'dockerRun.p50'), pick(r.ready, 'ratioP50'), '≤ 1.25 × docker run + first byte'],
  ['wake → first byte, p50 ms', ms(pick(r.wake, 'berth.p50')), ms(pick(r.wake, 'bare.p50')), pick(r.wake, 'ratioP50'), '≤ 1.15 × docker start + first byte'],
  ['wake → first byte, p95 ms', ms(pick(r.wake, 'berth.p95')), ms(pick(r.wake, 'bare.p95')), pick(r.wake, 'ratioP95'), ''],
  ['proxy req/s, c=1', pick(r.proxy, 'summary.berth.c1.rps'), pick(r.proxy, 'summary.caddy.c1.rps'), ratio(pick(r.proxy, 'summary.berth.c1.rps'), pick(r.proxy, 'summary.caddy.c1.rps')), '≥ 1.0 × Caddy'],
  ['proxy req/s, c=50', pick(r.proxy, 'summary.berth.c50.rps', 'berth.c50.rps'), pick(r.proxy, 'summary.caddy.c50.rps', 'caddy.c50.rps'), ratio(pick(r.proxy, 'summary.berth.c50.rps'), pick(r.proxy, 'summary.caddy.c50.rps')), '≥ 1.0 × Caddy'],
  ['proxy CPU ms per 1k requests, c=50', pick(r.proxy, 'summary.berth.c50.cpuMsPer1kReq'), pick(r.proxy, 'summary.caddy.c50.cpuMsPer1kReq'), ratio(pick(r.proxy, 'summary.berth.c50.cpuMsPer1kReq'), pick(r.proxy, 'summary.caddy.c50.cpuMsPer1kReq')), 'vs Caddy (lower is better)'],
  ['push → live, median ms', pick(r['push-to-live'], 'median.berth.totalMs'), pick(r['push-to-live'], 'median.bare.totalMs'), ratio(pick(r['push-to-live'], 'median.berth.totalMs'), pick(r['push-to-live'], 'median.bare.totalMs')), 'vs git clone && docker build && docker run'],
  ['HTTPS first byte, p50 ms', pick(r['tls-berth'], 'ms.https_first_byte.p50'), pick(r['tls-berth'], 'ms.http_first_byte.p50'), ratio(pick(r['tls-berth'], 'ms.https_first_byte.p50'), pick(r['tls-berth'], 'ms.http_first_byte.p50')), 'vs plain HTTP through berth'],
  ['idle CPU, 50 apps, %', scen(50)?.idleCpuPercent, '', '', '< 1 % of a core'],
  ['bytes written per idle minute, 50 apps', scen(50)?.bytesWrittenPerMinute, '', '', '0'],
  ['idle RSS MiB, 0 / 50 / 200 apps', [0, 50, 200].map((n) => scen(n)?.idleRssMiB ?? '-').join(' / '), '', '', ''],
  ['200 apps → all Ready, s / peak RSS MiB', `${scen(200) ? round(scen(200).readyMs / 1000) : '-'} / ${scen(200)?.peakRssMiB ?? '-'}`, '', '', ''],
  ['Docker calls per app per resync (mutating)', `${cp?.resync?.callsPerPass ?? '-'} (${cp?.resync?.mutatingCalls ?? '-'})`, '', '', '0 mutating'],
].map((row) => row.map((c) => (c === undefined ? '-' : c)));

console.log(`\n=== summary (${JSON.stringify(await machine())})\n`);
console.log(table(rows));
console.log(`\n${runs.map((x) => `${x.name}: ${x.code === 0 ? 'ok' : `exit ${x.code}`} in ${x.seconds}s`).join(', ')}`);
await writeResult('summary', { runs, table: rows });
process.exitCode = runs.every((x) => x.code === 0) ? 0 : 1;
