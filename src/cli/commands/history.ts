// berth history NAME: the app's last deploys (revision, image, time, result), from its status file.
import { filesConfig, UsageError } from '../../config/config.js';
import { optionHelp } from '../help.js';
import { readStatusFile } from '../../status/status-reader.js';
import type { AppStatusFile } from '../../api/types.generated.js';
import { EXIT_FAILED, EXIT_OK, defineCommand } from '../command.js';

const usage = `Usage: berth history NAME [--json]

The app's last 10 deploys, oldest first: time, result (Succeeded, Failed, RolledBack),
revision and image. Use a revision with berth rollback NAME --to REVISION.

Options:
  --json                        print JSON
${optionHelp(['files'])}
`;

export const historyCommand = defineCommand({
  name: 'history',
  summary: 'an app\'s last deploys',
  usage,
  scopes: ['files'],
  options: { json: { type: 'boolean' } },
  positionals: true,
  async run({ values, positionals }) {
    const app = positionals[0];
    if (!app || positionals.length !== 1) throw new UsageError('exactly one NAME is required');
    const doc = await readStatusFile<AppStatusFile>(filesConfig(values).status, `apps/${app}.yaml`);
    if (!doc) {
      process.stderr.write(`no app named ${JSON.stringify(app)}\n`);
      return EXIT_FAILED;
    }
    const history = doc.status.history ?? [];
    if (values.json) {
      process.stdout.write(`${JSON.stringify(history, null, 2)}\n`);
      return EXIT_OK;
    }
    const rows = [['AT', 'RESULT', 'REVISION', 'IMAGE', 'MESSAGE'], ...history.map((h) => [h.at, h.result, h.revision?.slice(0, 12) ?? '-', h.image, (h.message ?? '').split('\n')[0]!.slice(0, 80)])];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    process.stdout.write(`${rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n')}\n`);
    return EXIT_OK;
  },
});
