// The test app inside berth-test/node-app (see ../node-image.mjs): one keep-alive Node server
// on :8080 with what a proxy test needs to see from the far side. Runs as PID 1 behind
// Docker's init, so SIGTERM ends it at once. Also runnable on the host: `PORT=0 node server.mjs`.
//
//   GET  /               "<APP_NAME> <APP_VERSION> <url>" (any other unlisted GET path too)
//   GET  /healthz        ok
//   GET  /headers        the request as JSON: headers, rawHeaders, url, remoteAddress
//   GET  /events?n=N     text/event-stream, one event every 200 ms (N of them, default forever)
//   GET  /slow?ms=N      answers after N ms
//   POST /echo           {"bytes": n, "sha256": "…"} of the body, streamed
//   GET  /ws             websocket echo (text and binary)
import http from 'node:http';
import { createHash } from 'node:crypto';
import { setInterval, clearInterval, setTimeout } from 'node:timers';
import { WebSocketServer } from 'ws';

const NAME = process.env.APP_NAME ?? 'node-app';
const VERSION = process.env.APP_VERSION ?? 'v1';
const PORT = Number(process.env.PORT ?? 8080);

function json(res, status, body) {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function text(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://app');
  const route = `${req.method} ${url.pathname}`;
  if (route === 'POST /echo') {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    req.on('end', () => json(res, 200, { app: NAME, version: VERSION, bytes, sha256: hash.digest('hex') }));
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    req.resume();
    return text(res, 405, 'method not allowed\n');
  }
  switch (url.pathname) {
    case '/healthz':
      return text(res, 200, 'ok\n');
    case '/headers':
      return json(res, 200, { app: NAME, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders, remoteAddress: req.socket.remoteAddress });
    case '/slow': {
      const ms = Math.min(Number(url.searchParams.get('ms') ?? 1000) || 0, 600_000);
      setTimeout(() => text(res, 200, `slow ${ms}\n`), ms);
      return;
    }
    case '/events': {
      const limit = Number(url.searchParams.get('n') ?? 0) || Infinity;
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
      res.write(': stream open\n\n');
      let n = 0;
      const tick = setInterval(() => {
        n++;
        res.write(`id: ${n}\nevent: tick\ndata: {"n":${n},"at":${Date.now()}}\n\n`);
        if (n >= limit) {
          clearInterval(tick);
          res.end();
        }
      }, 200);
      res.on('close', () => clearInterval(tick));
      return;
    }
    default:
      return text(res, 200, `${NAME} ${VERSION} ${req.url}\n`);
  }
});
// Keep-alive longer than any proxy's idle timeout, so the proxy (not the app) closes idle sockets.
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;

const wss = new WebSocketServer({ noServer: true });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
server.on('upgrade', (req, socket, head) => {
  if (new URL(req.url ?? '/', 'http://app').pathname !== '/ws') {
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

server.listen(PORT, '0.0.0.0', () => console.log(`${NAME} ${VERSION} listening on ${server.address().port}`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
