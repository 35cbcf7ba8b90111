// Checks on the request line and framing done before routing.
import type { IncomingMessage } from 'node:http';

/**
 * True when the path has a `.` or `..` segment, literal or percent-encoded. Such a path would
 * be routed by its literal prefix and then resolved by the app, e.g. `/public/../admin`
 * reaching `/admin` past a bearer-protected route. Browsers never send them, so 400.
 */
export function hasDotSegment(target: string): boolean {
  if (!target.includes('/.') && !target.includes('%2')) return false;
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  for (const seg of path.split('/')) {
    const s = seg.includes('%') ? seg.replace(/%2e/gi, '.') : seg;
    if (s === '.' || s === '..') return true;
  }
  return false;
}

/** Declared body length: 0 when none, undefined when streamed (chunked) of unknown length. */
export function declaredBodyLength(req: IncomingMessage): number | undefined {
  const len = req.headers['content-length'];
  if (len !== undefined) return Number(len);
  return req.headers['transfer-encoding'] === undefined ? 0 : undefined;
}

/** `/_berth` itself or anything under it (whole segment). */
export function isBerthPath(target: string): boolean {
  if (!target.startsWith('/_berth')) return false;
  const next = target.charCodeAt(7);
  return target.length === 7 || next === 0x2f /* / */ || next === 0x3f /* ? */;
}

/** A top-level browser navigation (not fetch/XHR, not an API client). */
export function isNavigation(req: IncomingMessage): boolean {
  if (req.method !== 'GET') return false;
  const accept = req.headers.accept;
  if (accept === undefined || !accept.includes('text/html')) return false;
  const mode = req.headers['sec-fetch-mode'];
  return mode === undefined || mode === 'navigate';
}
