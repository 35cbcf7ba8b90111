// The private dockerd helper proves itself: a second engine that runs, restarts and stops
// while the main engine keeps working, and leaves nothing behind.
import { describe, it, expect, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { readFile, readdir, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { docker, IMAGES, TEST_LABEL } from '../helpers/docker.js';
import { loadStandardImages, startPrivateDockerd, type PrivateDockerd } from '../helpers/private-dockerd.js';

const run = promisify(execFile);
let pd: PrivateDockerd | undefined;

afterAll(async () => {
  await pd?.destroy();
});

/** The main engine still runs a container on its default bridge and serves from it. */
async function mainEngineWorks(): Promise<void> {
  const id = await docker('run', '-d', '--rm', '--label', `${TEST_LABEL}=private-dockerd`, IMAGES.httpdV1);
  try {
    const ip = await docker('inspect', '-f', '{{.NetworkSettings.IPAddress}}', id);
    expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(await httpGet(`http://${ip}/`)).toBe('hello v1\n');
  } finally {
    await docker('rm', '-f', id).catch(() => undefined);
  }
}

async function httpGet(url: string, attempts = 40): Promise<string> {
  for (let i = 0; ; i++) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      return await res.text();
    } catch (e) {
      if (i >= attempts) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function links(): Promise<string> {
  return (await run('ip', ['-o', 'link', 'show'])).stdout;
}

async function iptablesDockerChains(): Promise<string[]> {
  const { stdout } = await run('iptables-save', ['-t', 'filter']);
  return stdout.split('\n').filter((l) => /^:DOCKER/.test(l)).map((l) => l.split(' ')[0]!).sort();
}

describe('a private dockerd beside the main engine', () => {
  it('runs, restarts and stops without disturbing the main engine, and destroy leaves nothing', async () => {
    const chainsBefore = await iptablesDockerChains();
    expect(await links()).toMatch(/: docker0[:@]/);
    pd = await startPrivateDockerd();
    const root = pd.root;
    // The main engine's default bridge survives a second daemon (`--bridge=none` would delete it).
    expect(await links()).toMatch(/: docker0[:@]/);
    await mainEngineWorks();

    await loadStandardImages(pd.dockerHost);
    await pd.docker('network', 'create', 'pnet');
    await pd.docker('run', '-d', '--name', 'web', '--network', 'pnet', '--init', '--restart', 'unless-stopped', IMAGES.httpdV1);
    const ipOf = () => pd!.docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', 'web');
    const ip = await ipOf();
    const subnet = await pd.docker('network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Subnet}}{{end}}', 'pnet');
    const mainSubnets = await docker('network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Subnet}} {{end}}', ...(await docker('network', 'ls', '-q')).split('\n'));
    expect(mainSubnets.split(/\s+/)).not.toContain(subnet);
    expect(await httpGet(`http://${ip}/`)).toBe('hello v1\n');
    // The main engine cannot see the private engine's objects, and the other way round.
    expect(await docker('ps', '-aq', '--filter', 'name=^web$', '--filter', `label=${TEST_LABEL}`)).toBe('');

    await pd.restart({ downMs: 1000 });
    await mainEngineWorks();
    expect(await pd.docker('inspect', '-f', '{{.State.Running}}', 'web')).toBe('true');
    expect(await httpGet(`http://${await ipOf()}/`)).toBe('hello v1\n');

    await pd.stop();
    expect(pd.running).toBe(false);
    await mainEngineWorks();
    await pd.start();
    expect(await pd.docker('inspect', '-f', '{{.State.Running}}', 'web')).toBe('true');

    await pd.destroy();
    await mainEngineWorks();
    expect(await iptablesDockerChains()).toEqual(chainsBefore);
    const after = await links();
    expect(after).not.toMatch(/: bpd[0-9a-f]{8}[:@]/);
    expect(after).toMatch(/: docker0[:@]/);
    expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(root);
    await expect(stat(root)).rejects.toThrow(/ENOENT/);
    const stray: string[] = [];
    for (const p of await readdir('/proc')) {
      if (!/^\d+$/.test(p)) continue;
      const cmd = await readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '');
      if (cmd.includes(root)) stray.push(`${p}: ${cmd.replace(/\0/g, ' ')}`);
    }
    expect(stray).toEqual([]);
    expect((await run('ip', ['-4', 'route'])).stdout).not.toContain(`${subnet} `);
  });
});
