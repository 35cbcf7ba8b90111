// TCP, then HTTP, readiness probes against a container's address on the berth network.
import { connect } from 'node:net';
import { request } from 'node:http';
import type { HealthProbe, HealthProber, ProbeResult } from '../../controllers/ports/health-prober.js';

function tcp(p: HealthProbe, signal?: AbortSignal): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = connect({ host: p.host, port: p.port, timeout: p.timeoutMs });
    const done = (r: ProbeResult) => {
      socket.destroy();
      signal?.removeEventListener('abort', onAbort);
      resolve(r);
    };
    const onAbort = () => done({ ok: false, detail: 'aborted' });
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => done({ ok: true, detail: `TCP ${p.host}:${p.port} accepts connections` }));
    socket.once('timeout', () => done({ ok: false, detail: `TCP ${p.host}:${p.port}: no answer within ${p.timeoutMs} ms` }));
    socket.once('error', (e: NodeJS.ErrnoException) => done({ ok: false, detail: `TCP ${p.host}:${p.port}: ${e.code ?? e.message}` }));
  });
}

function http(p: HealthProbe, signal?: AbortSignal): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const req = request(
      { host: p.host, port: p.port, path: p.path, method: 'GET', timeout: p.timeoutMs, signal, headers: { 'User-Agent': 'berth-health', Connection: 'close' }, agent: false },
      (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        resolve({ ok: code < 500, detail: `GET ${p.path} answered ${code}` });
      },
    );
    req.once('timeout', () => req.destroy(new Error(`no answer within ${p.timeoutMs} ms`)));
    req.once('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, detail: `GET ${p.path}: ${e.code ?? e.message}` }));
    req.end();
  });
}

export const healthProber: HealthProber = {
  async probe(p, signal) {
    const t = await tcp(p, signal);
    if (!t.ok || p.path === undefined) return t;
    return http(p, signal);
  },
};
