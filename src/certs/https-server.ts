// The HTTPS listener: TLS terminated with the manager's current certificate per SNI name, so
// a renewed certificate is used from the next handshake on, with no restart and without
// touching open connections. HTTP/1.1 only (websockets upgrade through TLS as over plain HTTP).
//
// A name berth has no certificate for fails the handshake (an `unrecognized_name`-style
// failure) rather than getting a fallback self-signed certificate: a browser warning for a
// certificate that could never be right is worse than a clear "this host is not served here".
// Clients that send no SNI at all (a URL with an IP address) get the certificate of the wanted
// IP host, when there is one.
import https from 'node:https';
import type { IncomingMessage, ServerOptions, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { silentLogger, type Logger } from '../util/logger.js';
import type { CertificateManager } from './certificate-manager.js';

export interface HttpsServerOptions {
  manager: Pick<CertificateManager, 'secureContextFor' | 'noSniCredentials' | 'onChange'>;
  requestHandler: (req: IncomingMessage, res: ServerResponse) => void;
  upgradeHandler?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** HTTP limits shared with the plain listener (headersTimeout, keepAliveTimeout...); override the defaults here. */
  serverOptions?: ServerOptions;
  logger?: Logger;
}

const TLS_BASE = { minVersion: 'TLSv1.2' } as const;

/** Not listening yet: call `listen()`. Closing the server unsubscribes it from the manager. */
export function createHttpsServer(opts: HttpsServerOptions): https.Server {
  const log = (opts.logger ?? silentLogger).child({ component: 'https' });
  const server = https.createServer(
    {
      ...TLS_BASE,
      ALPNProtocols: ['http/1.1'],
      SNICallback: (servername, cb) => {
        const context = opts.manager.secureContextFor(servername);
        if (context) cb(null, context);
        else cb(new Error(`no certificate for ${servername}`));
      },
      // A slow or silent client cannot hold a socket in the handshake or the headers for long.
      handshakeTimeout: 10_000,
      headersTimeout: 15_000,
      requestTimeout: 120_000,
      keepAliveTimeout: 15_000,
      ...opts.serverOptions,
    },
    opts.requestHandler,
  );
  if (opts.upgradeHandler) server.on('upgrade', opts.upgradeHandler);
  server.on('tlsClientError', (err) => log.debug({ err: err.message }, 'TLS handshake failed'));

  let servedWithoutSni: string | undefined;
  const refreshNoSni = (): void => {
    const creds = opts.manager.noSniCredentials();
    if (creds?.cert === servedWithoutSni) return;
    servedWithoutSni = creds?.cert;
    server.setSecureContext(creds ? { ...TLS_BASE, ...creds } : { ...TLS_BASE });
  };
  refreshNoSni();
  const unsubscribe = opts.manager.onChange(refreshNoSni);
  server.on('close', unsubscribe);
  return server;
}
