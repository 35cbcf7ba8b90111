// Handshake + first byte over berth's HTTPS listener (local CA certificate, SNI lookup) against
// plain HTTP, to a trivial handler, with a new connection per request so every HTTPS request
// pays a full TLS handshake. Run after `npm run build`:  node bench/tls.mjs [n]
// Prints a table and writes bench/results/tls.json.
import http from 'node:http';
import https from 'node:https';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir, cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { LocalCa } from '../dist/src/certs/local-ca.js';
import { CertificateManager } from '../dist/src/certs/certificate-manager.js';
import { createHttpsServer } from '../dist/src/certs/https-server.js';

const n = Number(process.argv[2] ?? 200);
const warmup = 20;
const host = 'app.lan';
const handler = (_req, res) => res.end('ok');

const state = await mkdtemp(join(tmpdir(), 'berth-bench-tls-'));
const ca = await LocalCa.loadOrCreate(state);
const manager = new CertificateManager({ stateDir: state, issuers: { local: ca } });
manager.sync([{ host, issuer: 'local' }]);
await manager.settled();
const tlsServer = createHttpsServer({ manager, requestHandler: handler });
const plainServer = http.createServer(handler);
await Promise.all([tlsServer, plainServer].map((s) => new Promise((r) => s.listen(0, '127.0.0.1', r))));
const root = ca.exportRootPem();

/** One request on a fresh connection: ms to the TLS handshake (https only) and to the first body byte. */
function once(secure) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    let handshake;
    const opts = { host: '127.0.0.1', port: (secure ? tlsServer : plainServer).address().port, path: '/', headers: { host }, agent: false };
    const req = secure ? https.get({ ...opts, servername: host, ca: root }) : http.get(opts);
    req.on('socket', (s) => s.once('secureConnect', () => (handshake = performance.now() - start)));
    req.on('response', (res) => {
      res.once('data', () => {
        resolve({ total: performance.now() - start, handshake });
        res.resume();
      });
    });
    req.on('error', reject);
  });
}

const samples = { https: [], http: [], handshake: [] };
for (let i = 0; i < warmup; i++) await Promise.all([once(true), once(false)]);
// Interleaved, so drift (GC, other load) hits both sides alike.
for (let i = 0; i < n; i++) {
  const s = await once(true);
  samples.https.push(s.total);
  samples.handshake.push(s.handshake);
  samples.http.push((await once(false)).total);
}

const pct = (xs, p) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};
const summary = (xs) => ({ p50: +pct(xs, 50).toFixed(3), p95: +pct(xs, 95).toFixed(3), mean: +(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(3) });
const result = {
  what: 'new connection per request to 127.0.0.1, trivial handler; ECDSA P-256 leaf from the local CA; client verifies the chain',
  n,
  node: process.version,
  cpu: cpus()[0]?.model,
  at: new Date().toISOString(),
  ms: { https_first_byte: summary(samples.https), https_handshake: summary(samples.handshake), http_first_byte: summary(samples.http) },
};
console.log(`TLS bench, n=${n}, ${result.node}, ${result.cpu}`);
console.log('measure                     p50 ms   p95 ms   mean ms');
for (const [k, v] of Object.entries(result.ms)) console.log(`${k.padEnd(26)}${String(v.p50).padStart(7)}  ${String(v.p95).padStart(7)}  ${String(v.mean).padStart(8)}`);

await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(new URL('./results/tls.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
await new Promise((r) => tlsServer.close(r));
await new Promise((r) => plainServer.close(r));
await manager.close();
await rm(state, { recursive: true, force: true });
