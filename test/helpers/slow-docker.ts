// A slow Docker engine for fault tests: an HTTP proxy on a unix socket in front of the real
// engine's socket that delays the requests `slow` picks (e.g. container listings, as a busy
// dockerd on a Pi's SD card answers). Responses stream through unbuffered (the events stream
// included). Pass `dockerHost` to berth as --docker.
import { createServer, request, type IncomingMessage } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SlowDocker {
  dockerHost: string;
  /** Requests delayed so far. */
  readonly delayed: number;
  close(): Promise<void>;
}

export async function startSlowDocker(opts: { delayMs: number; slow: (req: IncomingMessage) => boolean; target?: string }): Promise<SlowDocker> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-slowdocker-'));
  const socket = join(dir, 'docker.sock');
  const target = opts.target ?? '/var/run/docker.sock';
  let delayed = 0;
  const server = createServer((req, res) => {
    const forward = () => {
      const up = request({ socketPath: target, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      res.on('close', () => up.destroy());
      req.pipe(up);
    };
    if (opts.slow(req)) {
      delayed++;
      setTimeout(forward, opts.delayMs);
    } else forward();
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return {
    dockerHost: `unix://${socket}`,
    get delayed() {
      return delayed;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
