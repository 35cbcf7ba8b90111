// F10 of the fault catalogue: berth is stopped, its state.json is damaged in each of the ways a
// disk or a person can damage it, and berth starts again: it moves the file aside
// (state.json.corrupt-<time>), re-derives everything from Docker's labels and the manifests,
// restarts no healthy container, and the invariants hold.
import { describe, it, afterAll, expect } from 'vitest';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sleep } from '../helpers/berth-process.js';
import { IMAGES } from '../helpers/docker.js';
import { FaultEnv } from '../helpers/fault-env.js';
import { checkInvariants } from '../helpers/invariants.js';

let env: FaultEnv | undefined;

afterAll(async () => {
  await env?.destroy();
});

describe('a corrupted state file (F10)', () => {
  it('truncated, empty, garbage, NUL bytes, wrong schema, a future version: moved aside, nothing restarted', async () => {
    env = await FaultEnv.create('fcs');
    await env.setCanary('web');
    await env.start();
    await env.writeApp('web', `image: ${IMAGES.httpdV1}\nroutes: [{host: web.test}]\nsecretEnv: [CANARY]\nresources: {memory: 32m}`);
    await env.writeApp('nap', `image: ${IMAGES.httpdV1}\nroutes: [{host: nap.test}]\nidle: {after: 2s}\nresources: {memory: 32m}`);
    await env.waitReady('web');
    await env.waitAsleep('nap', { poke: 'nap.test' });
    await sleep(500);
    await env.stop();
    const path = join(env.dirs.state, 'state.json');
    const good = await readFile(path, 'utf8');
    const damage: [string, string | Buffer][] = [
      ['truncated', good.slice(0, Math.floor(good.length / 2))],
      ['empty', ''],
      ['garbage', Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 37 + 11) % 256))],
      ['NUL bytes', Buffer.alloc(256)],
      ['wrong schema', JSON.stringify({ version: 1, apps: 'not an object', objects: [1, 2, 3] })],
      ['future version', JSON.stringify({ ...(JSON.parse(good) as object), version: 999 })],
      ['a JSON array', '[]'],
    ];
    for (const [what, content] of damage) {
      await writeFile(path, content);
      const since = Date.now();
      await env.start();
      await env.waitReady('web');
      await sleep(2500);
      const op = await env.operator();
      const events = (await env.events(since, Date.now())).filter((e) => e.action !== 'exec_start');
      const aside = (await readdir(env.dirs.state)).filter((f) => f.startsWith('state.json.corrupt-'));
      console.log(`state.json ${what}: recoveredFrom ${op?.status.state?.recoveredFrom?.split('/').pop()}; ${aside.length} file(s) moved aside so far; container events: ${events.map((e) => `${e.action} ${e.app}`).join(', ') || 'none'}; nap ${(await env.status('nap'))?.status.phase}`);
      expect(op?.status.state?.recoveredFrom, `${what}: reported in operator.yaml`).toMatch(/state\.json\.corrupt-/);
      expect(events.filter((e) => e.app !== 'nap'), `${what}: running containers touched at the restart`).toEqual([]);
      // The sleeping app: its container stopped cleanly and it has idle.after, which Docker and the
      // manifest still say — only a request may wake it (soft: every damage is tried and reported).
      expect.soft(events.filter((e) => e.app === 'nap').map((e) => e.action), `${what}: the sleeping app woken at the restart`).toEqual([]);
      await env.waitAsleep('nap', { poke: 'nap.test' });
      JSON.parse(await readFile(path, 'utf8'));
      await env.stop();
    }
    await env.start();
    await checkInvariants(env, { apps: { web: 1, nap: { running: 0, stopped: 1 } }, label: 'corrupted state' });
  }, 180_000);
});
