// The shape every `dit` subcommand has; lib/cli/index.ts lists them.
export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Full usage text printed on `dit NAME --help` and on bad flags. */
  usage: string;
  /** Returns the process exit code. Throw UsageError for bad flags. */
  run(argv: string[]): Promise<number>;
}
