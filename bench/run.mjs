// npm run bench: every benchmark in one run, each a ratio against its raw baseline measured in
// the same run, then one summary table (and bench/results/summary.json). Not part of the
// tests' pass/fail: targets are reported, met or missed, with the numbers.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { RESULTS, ROOT, machine, round, table, writeResult } from './lib.mjs';

const BENCHES = ['ready', 'wake', 'proxy', 'push-to-live', 'tls-berth', 'control-plane'];

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

const r = Object.fromEntries(await Promise.all(BENCHES.map(async (n) => [n, await result(n)])));
const cp = r['control-plane'];
const scen = (n) => cp?.scenarios?.find((s) => s.apps === n);
const rows = [
  ['figure', 'berth', 'baseline', 'ratio', 'target'],
  ['manifest → Ready, p50 ms', pick(r.ready, 'berth.p50'), pick(r.ready, 'dockerRun.p50'), pick(r.ready, 'ratioP50'), '≤ 1.25 × docker run + first byte'],
  ['wake → first byte, p50 ms', pick(r.wake, 'berth.p50', 'berthWake.p50'), pick(r.wake, 'dockerStart.p50', 'bare.p50'), pick(r.wake, 'ratioP50', 'ratio.p50'), '≤ 1.15 × docker start + first byte'],
  ['wake → first byte, p95 ms', pick(r.wake, 'berth.p95', 'berthWake.p95'), pick(r.wake, 'dockerStart.p95', 'bare.p95'), pick(r.wake, 'ratioP95', 'ratio.p95'), ''],
  ['proxy req/s, c=50', pick(r.proxy, 'summary.berth.c50.rps', 'berth.c50.rps'), pick(r.proxy, 'summary.caddy.c50.rps', 'caddy.c50.rps'), pick(r.proxy, 'summary.ratios.berthVsCaddyC50', 'ratios.berthVsCaddy.c50'), '≥ 1.0 × Caddy'],
  ['push → live, s', pick(r['push-to-live'], 'berth.p50', 'berth.seconds', 'berthSeconds'), pick(r['push-to-live'], 'bare.p50', 'bare.seconds', 'bareSeconds'), pick(r['push-to-live'], 'ratio', 'ratioP50'), 'vs git clone && docker build && docker run'],
  ['HTTPS first byte, p50 ms', pick(r['tls-berth'], 'https.firstByte.p50', 'httpsFirstByte.p50'), pick(r['tls-berth'], 'http.firstByte.p50', 'httpFirstByte.p50'), '', 'vs plain HTTP through berth'],
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
