// What every CLI command provides, and the one way commands parse their arguments and answer
// --help. Exit codes: 0 success, 1 the thing asked about is wrong or failed, 2 usage error.
import type { ParseArgsConfig } from 'node:util';
import { parseCommand, type ParsedCommand } from '../config/config.js';
import type { OptionDef } from '../config/options.js';

export interface Command {
  name: string;
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export interface CommandDefinition {
  name: string;
  summary: string;
  usage: string;
  /** Shared option groups the command takes (see config/options.ts). */
  scopes: OptionDef['scope'][];
  /** The command's own flags. */
  options?: NonNullable<ParseArgsConfig['options']>;
  positionals?: boolean;
  run(parsed: ParsedCommand): Promise<number>;
}

export function defineCommand(def: CommandDefinition): Command {
  return {
    name: def.name,
    summary: def.summary,
    usage: def.usage,
    async run(argv) {
      const parsed = parseCommand(argv, def.scopes, def.options, def.positionals ?? false);
      if (parsed.values.help) {
        process.stdout.write(def.usage);
        return EXIT_OK;
      }
      return def.run(parsed);
    },
  };
}
