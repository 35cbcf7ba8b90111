// Host folders a container may mount: only under the operator's --allow-host-path roots,
// judged on the resolved real path (so "..", symlinks and bind tricks cannot escape), and
// never the system folders or a Docker socket, whatever the roots say.
import type { ObservedHostPath } from './types.js';

const FORBIDDEN = ['/etc', '/proc', '/sys', '/dev', '/boot', '/run', '/var/run', '/var/lib/docker', '/usr', '/bin', '/sbin', '/lib', '/root'];

function under(path: string, root: string): boolean {
  return root === '/' ? true : path === root || path.startsWith(`${root}/`);
}

/** A reason the host path may not be mounted, or undefined when it may. */
export function hostPathProblem(hp: ObservedHostPath, allowRoots: string[]): string | undefined {
  if (hp.resolved === undefined) return `hostPath ${hp.path} cannot be used: ${hp.error ?? 'it does not exist'}`;
  const p = hp.resolved;
  if (p === '/' || /(^|\/)docker\.sock$/.test(p) || /(^|\/)docker\.sock$/.test(hp.path)) return `hostPath ${hp.path} is never allowed (the host root or a Docker socket)`;
  const system = FORBIDDEN.find((f) => under(p, f));
  if (system) return `hostPath ${hp.path} resolves to ${p}, inside the system folder ${system}, which is never allowed`;
  if (allowRoots.length === 0) return `hostPath ${hp.path} is not allowed: berth runs without --allow-host-path`;
  if (!allowRoots.some((r) => under(p, r))) return `hostPath ${hp.path} resolves to ${p}, outside the allowed roots (${allowRoots.join(', ')})`;
  return undefined;
}
