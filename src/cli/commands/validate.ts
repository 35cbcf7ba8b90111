// berth validate [PATH…]: check manifests without running anything.
import { filesConfig } from '../../config/config.js';
import { optionHelp } from '../help.js';
import { validatePaths } from '../../manifests/validate-paths.js';
import { formatProblem } from '../../manifests/loader.js';
import { EXIT_FAILED, EXIT_OK, defineCommand } from '../command.js';

const usage = `Usage: berth validate [PATH…] [--json]

Check manifest files and folders (default: the --manifests folder). Prints one line per
problem as file:line:col: reason. Exit 0 when everything is valid, 1 when anything is not.

Options:
  --json                        print the result as JSON
${optionHelp(['files'])}
`;

export const validateCommand = defineCommand({
  name: 'validate',
  summary: 'check manifests; prints file:line:col: reason',
  usage,
  scopes: ['files'],
  options: { json: { type: 'boolean' } },
  positionals: true,
  async run({ values, positionals }) {
    const paths = positionals.length > 0 ? positionals : [filesConfig(values).manifests];
    const result = await validatePaths(paths);
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ valid: result.problems.length === 0, files: result.files.length, objects: result.objects, problems: result.problems }, null, 2)}\n`);
    } else {
      for (const p of result.problems) process.stdout.write(`${formatProblem(p)}\n`);
      const summary = `${result.files.length} file(s), ${result.objects} valid object(s), ${result.problems.length} problem(s)`;
      process.stderr.write(`${summary}\n`);
    }
    return result.problems.length === 0 ? EXIT_OK : EXIT_FAILED;
  },
});
