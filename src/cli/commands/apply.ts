// berth apply -f FILE: validate, then place the file in the watched folder atomically.
import { readFile } from 'node:fs/promises';
import { filesConfig, parseCommand, UsageError } from '../../config/config.js';
import { optionHelp } from '../help.js';
import { applyManifest } from '../../manifests/manifest-files.js';
import { EXIT_OK, type Command } from '../command.js';

const usage = `Usage: berth apply -f FILE

Validate FILE ("-" for standard input) and place it in the manifests folder atomically. A
file whose objects are already defined replaces that definition; otherwise a single App is
written as <name>.yaml. Nothing is written when FILE is invalid (exit 1).

Options:
  -f, --filename FILE           the manifest file to apply
${optionHelp(['files'])}
`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export const applyCommand: Command = {
  name: 'apply',
  summary: 'validate a manifest, then place it in the watched folder',
  usage,
  async run(argv) {
    const { values } = parseCommand(argv, ['files'], { filename: { type: 'string', short: 'f' } });
    if (values.help) {
      process.stdout.write(usage);
      return EXIT_OK;
    }
    const file = values.filename as string | undefined;
    if (!file) throw new UsageError('-f FILE is required');
    const text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
    const { target, changed } = await applyManifest(filesConfig(values).manifests, file === '-' ? 'stdin' : file, text);
    process.stdout.write(`${changed ? 'applied' : 'unchanged'}: ${target}\n`);
    return EXIT_OK;
  },
};
