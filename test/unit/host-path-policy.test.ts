import { describe, it, expect } from 'vitest';
import { hostPathProblem } from '../../controllers/app/host-path-policy.js';

const roots = ['/srv/apps'];
const cases: [string, { path: string; resolved?: string; error?: string }, string[], RegExp | undefined][] = [
  ['allows a folder under an allowed root', { path: '/srv/apps/blog', resolved: '/srv/apps/blog' }, roots, undefined],
  ['allows the root itself', { path: '/srv/apps', resolved: '/srv/apps' }, roots, undefined],
  ['refuses everything without --allow-host-path', { path: '/srv/apps/blog', resolved: '/srv/apps/blog' }, [], /without --allow-host-path/],
  ['refuses a sibling that only shares a prefix', { path: '/srv/apps2', resolved: '/srv/apps2' }, roots, /outside the allowed roots/],
  ['judges the resolved path, not the written one (symlink or ..)', { path: '/srv/apps/link', resolved: '/home/me/secret' }, roots, /resolves to \/home\/me\/secret, outside/],
  ['refuses /etc even when allowed', { path: '/etc', resolved: '/etc' }, ['/'], /system folder \/etc/],
  ['refuses the host root', { path: '/', resolved: '/' }, ['/'], /never allowed/],
  ['refuses a Docker socket anywhere', { path: '/srv/apps/docker.sock', resolved: '/srv/apps/docker.sock' }, roots, /Docker socket/],
  ['refuses /proc, /sys, /dev', { path: '/srv/apps/p', resolved: '/proc/1' }, ['/'], /system folder \/proc/],
  ['refuses a path that does not exist', { path: '/srv/apps/none', error: 'ENOENT' }, roots, /cannot be used: ENOENT/],
];

describe('the host path policy', () => {
  for (const [name, hp, allow, expected] of cases) {
    it(name, () => {
      const problem = hostPathProblem(hp, allow);
      if (expected) expect(problem).toMatch(expected);
      else expect(problem).toBeUndefined();
    });
  }
});
