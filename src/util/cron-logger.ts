// node-cron logs on its own unless given a logger: route its messages into berth's.
import type { Logger } from './logger.js';

export function cronLogger(log: Logger) {
  return {
    info: (m: string) => log.debug(m),
    warn: (m: string) => log.warn(m),
    error: (m: string | Error, e?: Error) => log.error({ err: e ?? m }, String(m)),
    debug: (m: string | Error) => log.debug(String(m)),
  };
}
