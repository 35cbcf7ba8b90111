// reliability.md §3: the security audit of every container berth manages, via docker inspect,
// over a zoo of app shapes (replicas, named volumes, an allowed host path, secrets, a command,
// custom limits, user labels, a built image, recreate, a sleeping app's stopped container).
// checkInvariants audits every managed container of every scenario the same way
// (auditContainer); here the spec-dependent values are checked too.
import { describe, it, afterAll, expect } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FaultEnv } from '../helpers/fault-env.js';
import { auditContainer, checkInvariants } from '../helpers/invariants.js';
import { IMAGES } from '../helpers/docker.js';
import { createTestRepo, type TestRepo } from '../helpers/git.js';

let env: FaultEnv | undefined;
let repo: TestRepo | undefined;

afterAll(async () => {
  await env?.destroy();
  await repo?.cleanup();
});

describe('security audit of every managed container (reliability.md §3)', () => {
  it('never privileged, no-new-privileges, bridge network only, no host namespaces, no added capabilities, limits, log rotation, no system mounts, unless-stopped, Init', async () => {
    env = await FaultEnv.create('fsa');
    const allowed = join(env.dirs.root, 'allowed');
    await mkdir(join(allowed, 'site'), { recursive: true });
    await writeFile(join(allowed, 'site', 'index.html'), 'from the host\n');
    env.addArgs('--allow-host-path', allowed);
    await env.setCanary('secret');
    await env.start();
    repo = await createTestRepo();
    await repo.commit({
      busybox: { copy: '/bin/busybox', mode: 0o755 },
      'www/index.html': 'built\n',
      Dockerfile: 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nCMD ["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"]\n',
    });
    const zoo: Record<string, string> = {
      plain: `image: ${IMAGES.httpdV1}\nroutes: [{host: plain.test}]`,
      many: `image: ${IMAGES.httpdV1}\nreplicas: 3\nroutes: [{host: many.test}]\nresources: {memory: 24m, cpus: 0.25, pids: 64}`,
      vols: `image: ${IMAGES.httpdV1}\nvolumes:\n  - {name: data, mountPath: /data}\n  - {name: cache, mountPath: /cache, reclaimPolicy: Delete}\nroutes: [{host: vols.test}]\nresources: {memory: 32m}`,
      host: `image: ${IMAGES.httpdV1}\ncommand: [httpd, -f, -p, '80', -h, /srv]\nvolumes:\n  - {hostPath: ${join(allowed, 'site')}, mountPath: /srv, readOnly: true}\nroutes: [{host: host.test}]\nresources: {memory: 32m}`,
      secret: `image: ${IMAGES.httpdV1}\nsecretEnv: [CANARY]\nenv: {MODE: audit}\nroutes: [{host: secret.test}]\nresources: {memory: 32m}`,
      labelled: `image: ${IMAGES.httpdV1}\nroutes: [{host: labelled.test}]\nresources: {memory: 32m}`,
      recreate: `image: ${IMAGES.httpdV2}\ndeploy: {strategy: recreate, stopTimeoutSeconds: 2}\nroutes: [{host: recreate.test}]\nresources: {memory: 32m}`,
      built: `build:\n  git: {url: "${repo.url}", branch: main}\nroutes: [{host: built.test}]\nresources: {memory: 32m}`,
      nap: `image: ${IMAGES.httpdV1}\nroutes: [{host: nap.test}]\nidle: {after: 2s}\nresources: {memory: 32m}`,
    };
    for (const [name, spec] of Object.entries(zoo)) {
      await env.writeManifest(`${name}.yaml`, `apiVersion: berth.dev/v1alpha1\nkind: App\nmetadata:\n  name: ${name}\n${name === 'labelled' ? '  labels: {team: web, tier: front}\n' : ''}spec:\n${spec.split('\n').map((l) => `  ${l}`).join('\n')}\n`);
    }
    for (const name of Object.keys(zoo)) if (name !== 'nap') await env.waitReady(name, { replicas: name === 'many' ? 3 : 1, timeoutMs: 60_000 });
    await env.waitAsleep('nap', { poke: 'nap.test' });

    const problems: string[] = [];
    const cs = await env.containers();
    for (const c of cs) {
      const info = await env.inspect(c.Id);
      const app = info.Config.Labels['dev.berth.app']!;
      problems.push(...auditContainer(info, env.instance));
      const hc = info.HostConfig;
      // The defaults (512m, 0.5 CPU, 512 pids) unless the spec says otherwise.
      const want = app === 'many' ? { mem: 24 << 20, cpus: 0.25e9, pids: 64 } : { mem: app === 'plain' ? 512 << 20 : 32 << 20, cpus: 0.5e9, pids: 512 };
      if (hc.Memory !== want.mem || hc.NanoCpus !== want.cpus || hc.PidsLimit !== want.pids) problems.push(`${app}: limits ${hc.Memory}/${hc.NanoCpus}/${hc.PidsLimit}, want ${want.mem}/${want.cpus}/${want.pids}`);
      if (hc.MemorySwap !== hc.Memory) problems.push(`${app}: swap ${hc.MemorySwap} beyond memory ${hc.Memory}`);
      if (Object.keys(info.NetworkSettings.Networks).join() !== env.instance) problems.push(`${app}: networks ${Object.keys(info.NetworkSettings.Networks).join()}`);
      const aliases = (info.NetworkSettings.Networks[env.instance]?.Aliases ?? []) as string[];
      if (c.State === 'running' && !aliases.includes(app)) problems.push(`${app}: no network alias ${app}`);
      if ((info.Config.User ?? '') !== '' && app !== 'built') problems.push(`${app}: user ${info.Config.User}`);
      const mounts = info.Mounts.map((m) => `${m.Type}:${m.Type === 'volume' ? m.Name : m.Source}:${m.Destination}:${m.RW ? 'rw' : 'ro'}`).sort();
      const wantMounts = app === 'vols' ? [`volume:${env.instance}-vols-cache:/cache:rw`, `volume:${env.instance}-vols-data:/data:rw`] : app === 'host' ? [`bind:${join(allowed, 'site')}:/srv:ro`] : [];
      if (JSON.stringify(mounts) !== JSON.stringify(wantMounts)) problems.push(`${app}: mounts ${JSON.stringify(mounts)}, want ${JSON.stringify(wantMounts)}`);
      if (app === 'labelled' && (info.Config.Labels.team !== 'web' || info.Config.Labels.tier !== 'front')) problems.push(`labelled: user labels not copied: ${JSON.stringify(info.Config.Labels)}`);
      const secretEnv = info.Config.Env.filter((e) => e.startsWith('CANARY='));
      if (app === 'secret' ? secretEnv.join() !== `CANARY=${env.canary}` : secretEnv.length > 0) problems.push(`${app}: secret env ${secretEnv.length ? 'present' : 'missing'}`);
    }
    const net = (JSON.parse(await env.docker('network', 'inspect', env.instance)) as { Driver: string; Internal: boolean; Labels: Record<string, string> }[])[0]!;
    if (net.Driver !== 'bridge' || net.Labels['dev.berth.instance'] !== env.instance) problems.push(`network ${JSON.stringify(net)}`);
    for (const v of (await env.docker('volume', 'ls', '-q', '--filter', `label=dev.berth.instance=${env.instance}`)).split('\n').filter(Boolean)) {
      const labels = JSON.parse(await env.docker('volume', 'inspect', '-f', '{{json .Labels}}', v)) as Record<string, string>;
      if (labels['dev.berth.managed-by'] !== 'berth') problems.push(`volume ${v} labels ${JSON.stringify(labels)}`);
    }
    console.log(`audited ${cs.length} containers of ${Object.keys(zoo).length} apps (${cs.filter((c) => c.State !== 'running').length} stopped): ${problems.length} problem(s)`);
    expect(problems).toEqual([]);
    await checkInvariants(env, {
      apps: { plain: 1, many: 3, vols: 1, host: 1, secret: 1, labelled: 1, recreate: 1, built: 1, nap: { running: 0, stopped: 1 } },
      label: 'security audit zoo',
    });
  }, 180_000);
});
