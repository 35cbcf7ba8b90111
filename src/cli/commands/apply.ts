// berth apply -f FILE: validate, then place the file in the watched folder atomically.
import { readFile } from 'node:fs/promises';
import { filesConfig, UsageError } from '../../config/config.js';
import { optionHelp } from '../help.js';
import { applyManifest } from '../../manifests/manifest-files.js';
import { EXIT_OK, defineCommand } from '../command.js';

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

export const applyCommand = defineCommand({
  name: 'apply',
  summary: 'validate a manifest, then place it in the watched folder',
  usage,
  scopes: ['files'],
  options: { filename: { type: 'string', short: 'f' } },
  async run({ values }) {
    const file = values.filename as string | undefined;
    if (!file) throw new UsageError('-f FILE is required');
    const text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
    const { target, changed } = await applyManifest(filesConfig(values).manifests, file === '-' ? 'stdin' : file, text);
    process.stdout.write(`${changed ? 'applied' : 'unchanged'}: ${target}\n`);
    return EXIT_OK;
  },
});
