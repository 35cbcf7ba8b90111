// berth retry NAME: ask the running operator to try a failed rollout or build again.
import { request } from 'node:http';
import { adminConfig, UsageError } from '../../config/config.js';
import { optionHelp } from '../help.js';
import { EXIT_FAILED, EXIT_OK, defineCommand } from '../command.js';

const usage = `Usage: berth retry NAME

An app whose new version failed (a build, a container that exits, a health check that never
passes) is not retried in a loop: it waits for a new spec or commit. This asks the running
berth to try again now (and to re-read a path build's folder). Talks to the admin listener;
set BERTH_ADMIN_TOKEN if berth runs with one.

Options:
${optionHelp(['admin'])}
`;

export const retryCommand = defineCommand({
  name: 'retry',
  summary: 'try an app\'s failed rollout or build again',
  usage,
  scopes: ['admin'],
  positionals: true,
  async run({ values, positionals }) {
    const app = positionals[0];
    if (!app || positionals.length !== 1) throw new UsageError('exactly one NAME is required');
    const { admin, adminToken } = adminConfig(values);
    const token = adminToken;
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        { host: admin.host, port: admin.port, method: 'POST', path: `/api/v1/apps/${encodeURIComponent(app)}/retry`, headers: token ? { Authorization: `Bearer ${token}` } : {} },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', (e) => reject(new Error(`cannot reach berth's admin API at ${admin.host}:${admin.port}: ${e.message}`)));
      req.end();
    });
    if (status === 202) {
      process.stdout.write(`retrying ${app}\n`);
      return EXIT_OK;
    }
    const msg = (() => {
      try {
        return (JSON.parse(body) as { error?: string }).error ?? body;
      } catch {
        return body;
      }
    })();
    process.stderr.write(`${status === 401 ? 'unauthorized (set BERTH_ADMIN_TOKEN)' : msg}\n`);
    return EXIT_FAILED;
  },
});
