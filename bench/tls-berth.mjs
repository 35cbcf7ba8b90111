// Handshake + first byte over berth's HTTPS listener against plain HTTP through berth, as run by
// `berth run` in front of real containers: two identical apps (berth-test/node-app, one
// container each) — `secure` on bench.lan with `tls: local`, `plain` on plain.test with
// `tls: none` (a TLS host answers plain HTTP with a 308, so it cannot be its own baseline). A new
// connection per request, so every HTTPS request pays a full handshake (ECDSA P-256 leaf from
// berth's local CA, client verifying the chain against `berth ca export`); samples interleaved
// so background load hits both sides alike. Docker objects carry berth's instance label and are
// removed by it.
//
//   npm run build && node bench/tls-berth.mjs [n]        (n = 200 by default)
//
// Prints a table and writes bench/results/tls-berth.json.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { nodeAppImage, NODE_APP_PORT } from '../test/helpers/node-image.mjs';
import { cleanup, readYaml, sleep, startBerth } from './lib.mjs';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const n = Number(process.argv[2] ?? 200);
const warmup = 20;
const SECURE = 'bench.lan';
const PLAIN = 'plain.test';

const app = (name, image, host, tls) => `apiVersion: berth.dev/v1alpha1
kind: App
metadata: {name: ${name}}
spec:
  image: ${image}
  port: ${NODE_APP_PORT}
  env: {APP_NAME: ${name}}
  resources: {cpus: 1, memory: 256m}
  routes: [{host: ${host}}]
  tls: ${tls}
`;

/** `berth run` with both apps; resolves once both are Ready, the certificate too, and HTTPS is listening. */
async function startBerthRun(instance) {
  const image = await nodeAppImage('v1');
  const berth = await startBerth({ instance });
  const { dirs } = berth;
  await writeFile(join(dirs.manifests, 'secure.yaml'), app('secure', image, SECURE, 'local'));
  await writeFile(join(dirs.manifests, 'plain.yaml'), app('plain', image, PLAIN, 'none'));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (Date.now() > deadline) throw new Error('berth run: the apps did not become Ready in 60 s');
    const op = await readYaml(join(dirs.status, 'operator.yaml'));
    const secure = await readYaml(join(dirs.status, 'apps', 'secure.yaml'));
    const plain = await readYaml(join(dirs.status, 'apps', 'plain.yaml'));
    const certReady = secure?.status?.conditions?.some((c) => c.type === 'CertificateReady' && c.status === 'True');
    if (op?.status?.listeners?.https && secure?.status?.phase === 'Ready' && plain?.status?.phase === 'Ready' && certReady) {
      const port = (l) => Number(l.split(':').pop());
      const ca = execFileSync(process.execPath, [join(root, 'bin/berth.js'), 'ca', 'export', '--state', dirs.state], { encoding: 'utf8' });
      return { berth, httpPort: port(op.status.listeners.http), httpsPort: port(op.status.listeners.https), ca, image };
    }
    await sleep(100);
  }
}

/** One GET / on a new connection: ms to connect (TCP), to the TLS handshake (https) and to the first body byte. */
function once(run, secure) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    let connect;
    let handshake;
    const host = secure ? SECURE : PLAIN;
    const opts = { host: '127.0.0.1', port: secure ? run.httpsPort : run.httpPort, path: '/', headers: { host }, agent: false };
    const req = secure ? https.get({ ...opts, servername: host, ca: run.ca }) : http.get(opts);
    req.on('socket', (s) => {
      s.once('connect', () => (connect = performance.now() - start));
      s.once('secureConnect', () => (handshake = performance.now() - start));
    });
    req.on('response', (res) => {
      if (res.statusCode !== 200) reject(new Error(`${host}: HTTP ${res.statusCode}`));
      res.once('data', () => {
        resolve({ firstByte: performance.now() - start, connect, handshake });
        res.resume();
      });
    });
    req.on('error', reject);
  });
}

const pct = (xs, p) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};
const summary = (xs) => ({ p50: +pct(xs, 50).toFixed(3), p95: +pct(xs, 95).toFixed(3), mean: +(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(3) });

async function main() {
  const instance = `bt${randomBytes(4).toString('hex')}`;
  let run;
  try {
    run = await startBerthRun(instance);
    for (let i = 0; i < warmup; i++) await Promise.all([once(run, true), once(run, false)]);
    const s = { https_first_byte: [], https_handshake: [], http_first_byte: [] };
    for (let i = 0; i < n; i++) {
      const a = await once(run, true);
      s.https_first_byte.push(a.firstByte);
      s.https_handshake.push(a.handshake);
      s.http_first_byte.push((await once(run, false)).firstByte);
    }
    const result = {
      what: 'berth run, GET / through berth to one node-app container per side, new connection per request on 127.0.0.1; HTTPS: ECDSA P-256 leaf from the local CA, client verifies against `berth ca export`',
      n,
      node: process.version,
      cpu: cpus()[0]?.model,
      at: new Date().toISOString(),
      backend: run.image,
      ms: Object.fromEntries(Object.entries(s).map(([k, v]) => [k, summary(v)])),
    };
    result.ms.https_minus_http_p50 = +(result.ms.https_first_byte.p50 - result.ms.http_first_byte.p50).toFixed(3);
    console.log(`TLS through berth run, n=${n}, ${result.node}, ${result.cpu}`);
    console.log('measure                     p50 ms   p95 ms   mean ms');
    for (const [k, v] of Object.entries(result.ms)) if (typeof v === 'object') console.log(`${k.padEnd(26)}${String(v.p50).padStart(7)}  ${String(v.p95).padStart(7)}  ${String(v.mean).padStart(8)}`);
    console.log(`HTTPS costs ${result.ms.https_minus_http_p50} ms more at p50 (handshake + first byte vs first byte)`);
    await mkdir(join(root, 'bench', 'results'), { recursive: true });
    await writeFile(join(root, 'bench', 'results', 'tls-berth.json'), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await run?.berth.stop();
    await cleanup(instance);
  }
}

await main();
