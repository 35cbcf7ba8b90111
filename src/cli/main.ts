// The berth command line: dispatch to one command per file under commands/.
import { runCommand } from './commands/run.js';
import { validateCommand } from './commands/validate.js';
import { statusCommand } from './commands/status.js';
import { applyCommand } from './commands/apply.js';
import { deleteCommand } from './commands/delete.js';
import { secretCommand } from './commands/secret.js';
import { caCommand } from './commands/ca.js';
import { logsCommand } from './commands/logs.js';
import { historyCommand } from './commands/history.js';
import { rollbackCommand } from './commands/rollback.js';
import { retryCommand } from './commands/retry.js';
import { packageVersion } from '../util/package-root.js';
import { UsageError } from '../config/config.js';
import { EXIT_FAILED, EXIT_USAGE, type Command } from './command.js';

const COMMANDS: Command[] = [
  runCommand, validateCommand, statusCommand, applyCommand, deleteCommand, logsCommand, historyCommand,
  rollbackCommand, retryCommand, secretCommand, caCommand,
];

function usage(): string {
  const rows = COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join('\n');
  return `berth ${packageVersion} — a reconciling operator for plain Docker

Usage: berth COMMAND [OPTIONS]

Commands:
${rows}

Run "berth COMMAND --help" for a command's options. Exit codes: 0 success, 1 failure, 2 usage error.
`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? EXIT_USAGE : 0;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    process.stdout.write(`${packageVersion}\n`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`berth: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return EXIT_USAGE;
  }
  try {
    return await command.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`berth ${command.name}: ${e.message}\n\n${command.usage}`);
      return EXIT_USAGE;
    }
    process.stderr.write(`berth ${command.name}: ${(e as Error).message}\n`);
    return EXIT_FAILED;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== -1) process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`berth: ${String(e)}\n`);
    process.exitCode = EXIT_FAILED;
  },
);
