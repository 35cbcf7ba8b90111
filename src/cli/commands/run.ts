// berth run: the operator. Stops cleanly on SIGINT/SIGTERM; apps keep running.
import { runConfig } from '../../config/config.js';
import { optionHelp } from '../help.js';
import { createLogger } from '../../util/logger.js';
import { startOperator } from '../../operator/operator.js';
import { defineCommand } from '../command.js';

const usage = `Usage: berth run [OPTIONS]

Start the operator: watch the manifests, reconcile Docker, serve the proxy.
Secrets come only from the environment: BERTH_ADMIN_TOKEN, BERTH_WEBHOOK_SECRET, BERTH_SECRET_KEY.

Options:
${optionHelp(['files', 'engine', 'admin', 'run'])}
`;

export const runCommand = defineCommand({
  name: 'run',
  summary: 'start the operator',
  usage,
  scopes: ['files', 'engine', 'admin', 'run'],
  async run({ values }) {
    const config = runConfig(values);
    const log = createLogger({ level: config.logLevel as 'info' });
    const operator = await startOperator(config, log);
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        log.info({ signal }, 'stopping berth (apps keep running)');
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await operator.stop();
    return 0;
  },
});
