// host:port a server actually listens on (port 0 in the config means "any free port").
import type { Server } from 'node:net';

export function boundAddress(server: Server): string {
  const a = server.address();
  if (a === null || typeof a === 'string') return String(a);
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
