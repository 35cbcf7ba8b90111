// F15 of the fault catalogue: slowloris against berth's HTTP listener (Debian's slowhttptest,
// 500 slow-header connections from 127.0.0.1) while a normal client (from 127.0.0.2: berth caps
// connections per client address) keeps getting quick 200s; huge headers get 431; bodies are
// streamed to apps (no limit applies) and refused with 413 where a limit does (webhook, admin).
import { describe, it, beforeAll, afterAll, expect } from 'vitest';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { request } from 'node:http';
import { sleep } from '../helpers/berth-process.js';
import { FaultEnv } from '../helpers/fault-env.js';
import { checkInvariants } from '../helpers/invariants.js';
import { nodeAppImage } from '../helpers/node-image.mjs';

const ADMIN_TOKEN = `admtok-${randomBytes(12).toString('hex')}`;
let env: FaultEnv;

beforeAll(async () => {
  env = await FaultEnv.create('fpx', { env: { BERTH_ADMIN_TOKEN: ADMIN_TOKEN, BERTH_WEBHOOK_SECRET: `wh-${randomBytes(8).toString('hex')}` } });
  await env.start();
  const image = await nodeAppImage();
  await env.writeApp('web', `image: ${image}\nport: 8080\nenv: {APP_NAME: web}\nroutes: [{host: web.test}]\nresources: {memory: 128m}`);
  await env.waitReady('web');
});

afterAll(async () => {
  await env?.destroy();
});

const fds = async () => (await readdir(`/proc/${env.berth!.proc.pid!}/fd`)).length;

describe('slowloris, huge headers and bodies (F15)', () => {
  it('slowhttptest (500 slow-header connections for 20 s) does not starve a normal client', async () => {
    const fdsBefore = await fds();
    const t0 = Date.now();
    const attack = new Promise<string>((resolve) => {
      execFile('slowhttptest', ['-c', '500', '-H', '-i', '10', '-r', '100', '-l', '20', '-u', `${env.httpUrl}/`, '-x', '24', '-p', '3'], { timeout: 60_000, maxBuffer: 16 << 20 }, (_err, stdout, stderr) => resolve(`${stdout}${stderr}`));
    });
    // The normal client, from another address, every 200 ms while the attack runs.
    const latencies: number[] = [];
    const failures: string[] = [];
    let maxFds = fdsBefore;
    let attacking = true;
    void attack.then(() => (attacking = false));
    await sleep(1000);
    while (attacking && Date.now() - t0 < 30_000) {
      const r = await env.call('web.test', '/', { from: '127.0.0.2', timeoutMs: 5000 }).catch((e: unknown) => ({ status: 0, text: String(e), ms: 5000 }));
      if (r.status !== 200) failures.push(`${r.status} ${r.text.slice(0, 80)}`);
      latencies.push(r.ms);
      maxFds = Math.max(maxFds, await fds());
      await sleep(200);
    }
    const out = (await attack).replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*[A-Za-z]`, 'g'), ''); // ANSI colours
    const last = out.slice(out.lastIndexOf('slow HTTP test status'));
    const stat = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(last)?.[1] ?? NaN);
    latencies.sort((a, b) => a - b);
    const p = (q: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!);
    console.log(`slowloris: ${latencies.length} normal requests, ${failures.length} failed, p50 ${p(0.5)} ms, p99 ${p(0.99)} ms, max ${p(1)} ms; berth fds ${fdsBefore} -> max ${maxFds}; slowhttptest at the end: connected ${stat('connected')}, closed ${stat('closed')}, error ${stat('error')}, service available: ${/service available:\s+(\w+)/.exec(last)?.[1]}`);
    expect(failures, 'normal requests that failed during the attack').toEqual([]);
    expect(latencies.length).toBeGreaterThan(40);
    expect(p(0.99), 'p99 of the normal client (ms)').toBeLessThan(1000);
    // Per-address cap (256) and the 15 s header timeout bound what the attack can hold.
    expect(maxFds - fdsBefore, 'file descriptors berth gave the attack').toBeLessThan(300);
    await sleep(2000);
    await checkInvariants(env, { apps: { web: 1 }, canaries: [ADMIN_TOKEN], label: 'after slowloris' });
  }, 90_000);

  it('huge headers get 431 (one big header, many headers, a huge URL); the next request is fine', async () => {
    const big = await env.call('web.test', '/', { headers: { 'x-big': 'a'.repeat(32 * 1024) } });
    const many = await env.call('web.test', '/', { headers: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`x-h${i}`, 'b'.repeat(100)])) });
    const url = await env.call('web.test', `/${'c'.repeat(20 * 1024)}`).catch((e: unknown) => ({ status: 0, text: String(e) }));
    console.log(`huge headers: one 32 KiB header ${big.status}, 300 x 100 B headers ${many.status}, 20 KiB URL ${url.status}`);
    expect(big.status).toBe(431);
    expect(many.status).toBe(431);
    expect(url.status).toBe(431);
    expect((await env.call('web.test', '/')).status).toBe(200);
  });

  it('bodies: 10 MiB streamed to the app intact; 413 where a limit applies (webhook 1 MiB, admin API 64 KiB)', async () => {
    const chunks = Array.from({ length: 160 }, () => randomBytes(64 * 1024));
    const sha = createHash('sha256');
    for (const c of chunks) sha.update(c);
    const echoed = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: env.httpPort, path: '/echo', method: 'POST', headers: { host: 'web.test' } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      void (async () => {
        for (const c of chunks) if (!req.write(c)) await new Promise((r) => req.once('drain', r));
        req.end();
      })();
    });
    expect(echoed.status).toBe(200);
    expect(JSON.parse(echoed.text)).toMatchObject({ bytes: 10 << 20, sha256: sha.digest('hex') });
    const hook = await env.call('forge.example', '/_berth/webhook', { method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'push' }, body: Buffer.alloc(2 << 20, 0x20) });
    const admin = await fetch(`${env.berth!.adminUrl}/api/v1/apps/web/retry`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ pad: 'x'.repeat(100 * 1024) }) });
    console.log(`bodies: 10 MiB to the app ${echoed.status}; 2 MiB webhook ${hook.status}; 100 KiB admin API ${admin.status}`);
    expect(hook.status).toBe(413);
    expect(admin.status).toBe(413);
    await checkInvariants(env, { apps: { web: 1 }, canaries: [ADMIN_TOKEN], label: 'after huge headers and bodies' });
  });
});
