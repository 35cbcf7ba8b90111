// F18 of the fault catalogue with a real ACME server (Debian's Pebble, 60 s certificates, so the
// renewal window opens 40 s after issue): Pebble goes down, berth is killed -9 and restarted
// during the outage (no new order: the stored certificate is still valid), the renewal fails
// at renewAt — and the old certificate keeps being served throughout, reported as
// RenewalFailing. BERTH_FAULTS_HEAVY=1 also waits for the renewal once Pebble is back (~1 min).
import { describe, it, afterAll, expect } from 'vitest';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sleep, waitFor } from '../helpers/berth-process.js';
import { IMAGES } from '../helpers/docker.js';
import { FaultEnv, condition } from '../helpers/fault-env.js';
import { checkInvariants, checkFiles } from '../helpers/invariants.js';
import { startPebble, type Pebble } from '../helpers/pebble.js';

const HEAVY = process.env.BERTH_FAULTS_HEAVY === '1';
let env: FaultEnv | undefined;
let pebble: Pebble | undefined;

afterAll(async () => {
  await env?.destroy();
  await pebble?.close();
});

/** The serial of the certificate served for `host` (not verified), or undefined when the handshake fails. */
function servedSerial(port: number, host: string): Promise<{ serial?: string; status?: number }> {
  return new Promise((resolve) => {
    const req = https.get({ host: '127.0.0.1', port, servername: host, headers: { host }, agent: false, rejectUnauthorized: false, timeout: 5000 }, (res) => {
      const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
      res.resume();
      res.on('end', () => resolve({ serial, status: res.statusCode }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({}));
  });
}

describe('certificates with Pebble down (F18)', () => {
  it('keeps serving the old certificate through an ACME outage, a kill -9 and a failed renewal', async () => {
    env = await FaultEnv.create('ftl');
    pebble = await startPebble({ httpPort: env.httpPort, certificateValidityPeriod: 60 });
    const bundle = join(env.dirs.root, 'pebble-ca.pem');
    await writeFile(bundle, pebble.listenerCaPem);
    env.addArgs('--acme-email', 'ops@example.test', '--acme-directory', pebble.directoryUrl, '--acme-ca-bundle', bundle);
    await env.start();
    const host = 'sec.example.test';
    await env.writeApp('sec', `image: ${IMAGES.httpdV1}\nroutes: [{host: ${host}}]\ntls: acme\nresources: {memory: 32m}`);
    const issued = await waitFor('sec Ready with its ACME certificate', async () => {
      const s = await env!.status('sec');
      return s?.status.phase === 'Ready' && condition(s, 'CertificateReady')?.status === 'True' ? s : undefined;
    }, 60_000, 100);
    const first = await waitFor('HTTPS answers', async () => {
      const r = await servedSerial(env!.httpsPort, host);
      return r.status === 200 ? r : undefined;
    }, 10_000, 100);
    const renewAt = Date.parse(issued.status.certificate!.renewAt!);
    const ordersBefore = pebble.orders;
    console.log(`issued ${first.serial} (notAfter ${issued.status.certificate!.notAfter}, renewAt ${issued.status.certificate!.renewAt}); Pebble orders ${ordersBefore}`);

    // The outage, and a crash during it.
    await pebble.stop();
    await env.kill9();
    expect((await checkFiles(env, { tolerateTmp: true })).problems).toEqual([]);
    await env.start();
    const afterRestart = await waitFor('HTTPS after the restart', async () => {
      const r = await servedSerial(env!.httpsPort, host);
      return r.status === 200 ? r : undefined;
    }, 15_000, 100);
    expect(afterRestart.serial, 'the stored certificate is served after a restart').toBe(first.serial);

    // The renewal window opens during the outage: the renewal fails, the old certificate stays.
    const failing = await waitFor('the failed renewal reported', async () => {
      const s = await env!.status('sec');
      return s?.status.certificate?.lastError ? s : undefined;
    }, Math.max(0, renewAt - Date.now()) + 20_000, 200);
    const served = await servedSerial(env.httpsPort, host);
    console.log(`renewal during the outage: ${JSON.stringify(failing.status.certificate!.lastError)}; CertificateReady ${condition(failing, 'CertificateReady')?.reason}; still serving ${served.serial} (${served.status})`);
    expect(served).toEqual({ serial: first.serial, status: 200 });
    expect(condition(failing, 'CertificateReady')).toMatchObject({ status: 'True', reason: 'RenewalFailing' });
    expect(pebble.orders, 'no order reached Pebble during the outage').toBe(ordersBefore);
    await checkInvariants(env, { apps: { sec: 1 }, tolerateTmp: true, label: 'ACME outage' });

    if (HEAVY) {
      await pebble.start();
      const renewed = await waitFor('renewed once Pebble is back', async () => {
        const r = await servedSerial(env!.httpsPort, host);
        return r.serial && r.serial !== first.serial ? r : undefined;
      }, 120_000, 500);
      console.log(`Pebble back: renewed, now serving ${renewed.serial}`);
      await sleep(1000);
      await checkInvariants(env, { apps: { sec: 1 }, tolerateTmp: true, label: 'ACME back' });
    }
  }, 240_000);
});
