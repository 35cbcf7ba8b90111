// berth delete NAME: remove an app's manifest; berth then removes what it made.
import { filesConfig, UsageError } from '../../config/config.js';
import { optionHelp } from '../help.js';
import { deleteManifest } from '../../manifests/manifest-files.js';
import { isKind } from '../../api/schemas.js';
import { EXIT_OK, defineCommand } from '../command.js';

const usage = `Usage: berth delete [KIND/]NAME

Remove the manifest of App NAME (or GitRepository/NAME) from the manifests folder: the file,
or only its document in a file holding several. berth then removes the app's containers
(volumes stay unless they say reclaimPolicy: Delete).

Options:
${optionHelp(['files'])}
`;

export const deleteCommand = defineCommand({
  name: 'delete',
  summary: 'remove an app\'s manifest (berth removes what it made)',
  usage,
  scopes: ['files'],
  positionals: true,
  async run({ values, positionals }) {
    if (positionals.length !== 1) throw new UsageError('exactly one NAME is required');
    const [kindPart, namePart] = positionals[0]!.includes('/') ? positionals[0]!.split('/', 2) : ['App', positionals[0]!];
    const kind = Object.keys({ App: 1, GitRepository: 1 }).find((k) => k.toLowerCase() === kindPart!.toLowerCase());
    if (!kind || !isKind(kind)) throw new UsageError(`unknown kind ${JSON.stringify(kindPart)}: App or GitRepository`);
    const file = await deleteManifest(filesConfig(values).manifests, kind, namePart!);
    process.stdout.write(`deleted ${kind} "${namePart}" (${file})\n`);
    return EXIT_OK;
  },
});
