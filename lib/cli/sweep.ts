import * as fs from 'fs';
import * as path from 'path';
import { experimentCells, loadExperiment } from '../experiments/config';
import { runExperiment } from '../experiments/run';
import { parseArgs, UsageError } from '../util/args';
import type { Command } from './command';

const USAGE = `usage: dit sweep CONFIG [--cells ID,ID] [--results FILE.csv] [--runs DIR] [--list]

Runs (or resumes) an experiment: every (model, variant) cell of its studies is trained
once and its EMA model evaluated at the configured steps; one row per evaluation goes
to the results registry. CONFIG is a preset in experiments/ (smoke, quick, mini, paper)
or a JSON file. Finished evaluations are skipped, partly trained cells resume.
  --cells    only these cells (see --list)
  --results  results CSV (default results/<experiment>.csv)
  --runs     checkpoints (default data/runs/<experiment>/, gitignored)`;

const FLAGS = { cells: 'string', results: 'string', runs: 'string', list: 'boolean' } as const;

export const sweepCommand: Command = {
  name: 'sweep',
  summary: 'run or resume an experiment: train every cell, evaluate, append results',
  usage: USAGE,
  async run(argv) {
    const { flags, positional } = parseArgs(argv, FLAGS);
    if (positional.length !== 1) throw new UsageError('one CONFIG (a preset name or a JSON file) is required');
    const e = loadExperiment(positional[0]);
    if (flags.list) {
      for (const c of experimentCells(e)) console.log(`${c.id}  (${c.studies.join(', ')})`);
      return 0;
    }
    const r = await runExperiment(e, {
      resultsFile: flags.results as string | undefined,
      runsDir: flags.runs as string | undefined,
      cells: flags.cells ? String(flags.cells).split(',') : undefined,
    });
    console.log(`${e.name}: ${r.rows.length} new evaluation(s) in ${r.seconds.toFixed(0)} s; results: ${path.relative(process.cwd(), r.resultsFile)}` +
      `${fs.existsSync(r.resultsFile) ? '' : ' (none yet)'}; checkpoints: ${path.relative(process.cwd(), r.runsDir)}`);
    return 0;
  },
};
