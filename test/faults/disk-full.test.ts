// F9 of the fault catalogue: the state folder's disk fills up under a running berth (a 256 KiB
// tmpfs mounted on --state, filled with dd). berth keeps serving and rolling out, says so in
// status/operator.yaml (state.lastError) with a rate-limited log line, never damages the
// previous state.json, leaves no temp file behind, and writes the state as soon as space frees.
import { describe, it, afterAll, expect } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sleep, waitFor } from '../helpers/berth-process.js';
import { IMAGES } from '../helpers/docker.js';
import { FaultEnv } from '../helpers/fault-env.js';
import { checkFiles, checkInvariants } from '../helpers/invariants.js';

const run = promisify(execFile);
let env: FaultEnv | undefined;
let mounted: string | undefined;

async function unmount(): Promise<void> {
  if (!mounted) return;
  await run('umount', [mounted]).catch(() => run('umount', ['-l', mounted!]));
  mounted = undefined;
}

afterAll(async () => {
  // berth watches the state folder: stopped before the unmount.
  await env?.stop();
  await unmount();
  await env?.destroy();
});

const spec = (rev: string) => `image: ${IMAGES.httpdV1}\nroutes: [{host: web.test}]\nsecretEnv: [CANARY]\nenv: {REV: "${rev}"}\nresources: {memory: 32m}`;

describe('disk full on the state folder (F9)', () => {
  it('keeps serving and deploying, reports the write error, keeps the previous state.json, recovers when space frees', async () => {
    env = await FaultEnv.create('fdf');
    await mkdir(env.dirs.state, { recursive: true, mode: 0o700 });
    await run('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', env.dirs.state]);
    mounted = env.dirs.state;
    await env.setCanary('web');
    await env.start();
    await env.writeApp('web', spec('1'));
    await env.writeApp('other', `image: ${IMAGES.httpdV1}\nroutes: [{host: other.test}]\nresources: {memory: 32m}`);
    await env.waitReady('web');
    await env.waitReady('other');
    await sleep(1000);
    const statePath = join(env.dirs.state, 'state.json');
    const before = await readFile(statePath, 'utf8');
    JSON.parse(before);

    // Fill it: dd stops at ENOSPC.
    const filler = join(env.dirs.state, 'filler');
    await run('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k']).catch(() => undefined);
    const df = (await run('df', ['-k', '--output=avail', env.dirs.state])).stdout.trim().split('\n').pop()!.trim();
    expect(Number(df), 'KiB available on the filled tmpfs').toBe(0);

    // A rollout while the disk is full: it happens (Docker is fine), the state cannot be written.
    const t0 = Date.now();
    await env.writeApp('web', spec('2'));
    const op = await waitFor('state.lastError in operator.yaml', async () => {
      const o = await env!.operator();
      return o?.status.state?.lastError ? o : undefined;
    }, 20_000, 100);
    console.log(`disk full: operator.yaml state.lastError after ${Date.now() - t0} ms: ${op.status.state!.lastError}`);
    expect(op.status.state!.lastError).toMatch(/ENOSPC|no space/i);
    const web2 = await env.waitReady('web');
    const [c] = await env.containers('web');
    expect((await env.inspect(c!.Id)).Config.Env).toContain('REV=2');
    // Serving throughout, both apps, for a while (several 5 s write retries).
    const failures: string[] = [];
    for (let i = 0; i < 24; i++) {
      for (const host of ['web.test', 'other.test']) {
        const r = await env.call(host, '/').catch((e: unknown) => ({ status: 0, text: String(e) }));
        if (r.status !== 200) failures.push(`${host}: ${r.status}`);
      }
      await sleep(500);
    }
    expect(failures, 'requests that failed while the state disk was full').toEqual([]);
    expect(env.berth!.alive).toBe(true);
    // The previous state.json is intact (a failed temp write never reaches the rename), no temp file left.
    expect(await readFile(statePath, 'utf8')).toBe(before);
    const files = await checkFiles(env);
    expect(files.problems).toEqual([]);
    // Rate-limited: one error line per distinct error, not one per retry.
    const lines = env.berth!.logs().split('\n').filter((l) => l.includes('cannot write the state file'));
    console.log(`disk full for ${Math.round((Date.now() - t0) / 1000)} s: ${lines.length} "cannot write the state file" log line(s); web generation ${web2.metadata.generation} Ready`);
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThanOrEqual(3);

    // Space frees: the state is written within a retry, and the error clears.
    await rm(filler);
    const t1 = Date.now();
    await waitFor('state written again', async () => {
      const o = await env!.operator();
      const text = await readFile(statePath, 'utf8');
      return o?.status.state?.lastError === undefined && text !== before;
    }, 20_000, 100);
    console.log(`space freed: state written and lastError cleared ${Date.now() - t1} ms later`);
    expect(JSON.parse(await readFile(statePath, 'utf8'))).toBeTruthy();
    await checkInvariants(env, { apps: { web: 1, other: 1 }, label: 'disk full, recovered' });
    await env.stop();
    await unmount();
  });
});
