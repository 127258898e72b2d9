// `dit-kit` (`dit` inside a checkout): the kit's command line. Each subcommand lives in its
// own file next to this one.
import { UsageError } from '../util/args';
import type { Command } from './command';
import { gflopsCommand } from './gflops';
import { inspectCommand } from './inspect';
import { sampleCommand } from './sample';
import { resultsCommand } from './results';
import { sweepCommand } from './sweep';
import { quickCommand } from './quick';
import { trainCommand } from './train';
import { dataCommand } from './data';
import { figuresCommand } from './figures';
import { evaluateCommand } from './evaluate';
import { featuresCommand } from './features';
import { vaeCommand } from './vae';
import { latentsCommand } from './latents';

const COMMANDS: Command[] = [
  gflopsCommand, inspectCommand, sampleCommand, dataCommand, resultsCommand, figuresCommand, evaluateCommand, featuresCommand,
  sweepCommand, vaeCommand, latentsCommand, quickCommand, trainCommand,
];

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'usage: dit-kit <command> [flags]',
    '       (`dit` is the same command inside a checkout of the kit: npx dit <command>)',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `dit-kit <command> --help` for the flags of one command.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name ? 0 : 2;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(`dit: unknown command '${name}'\n\n${usage()}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(cmd.usage + '\n');
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`dit ${name}: ${err.message}\n\n${cmd.usage}\n`);
      return 2;
    }
    throw err;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`dit: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
