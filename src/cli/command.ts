// What every CLI command provides. Exit codes: 0 success, 1 the thing asked about is wrong or
// failed, 2 usage error.
export interface Command {
  name: string;
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
