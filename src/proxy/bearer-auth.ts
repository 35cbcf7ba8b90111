// Per-route bearer auth. Tokens are compared as SHA-256 digests with timingSafeEqual: equal
// lengths whatever the token, so neither the length nor the first differing byte leaks.
// The Authorization header is passed on to the app unchanged (it may want to read it).
import { createHash, timingSafeEqual } from 'node:crypto';

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** True when `authorization` is `Bearer <expected>` (scheme case-insensitive). */
export function bearerMatches(authorization: string | undefined, expected: string): boolean {
  if (authorization === undefined || authorization.length < 7) return false;
  if (authorization.slice(0, 7).toLowerCase() !== 'bearer ') return false;
  const ok = timingSafeEqual(digest(authorization.slice(7).trim()), digest(expected));
  return ok && expected.length > 0;
}
