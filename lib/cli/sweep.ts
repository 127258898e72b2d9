import * as fs from 'fs';
import * as path from 'path';
import { initBackend } from '../backend';
import { experimentCells, loadExperiment } from '../experiments/config';
import { buildPipeline } from '../experiments/pipeline';
import { runSweep } from '../experiments/sweep';
import { parseArgs, UsageError } from '../util/args';
import { repoRoot } from '../util/paths';
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
    await initBackend();
    const resultsFile = (flags.results as string) ?? path.join(repoRoot(), 'results', `${e.name}.csv`);
    const runsDir = (flags.runs as string) ?? path.join(repoRoot(), 'data', 'runs', e.name);
    const t0 = Date.now();
    const pipe = await buildPipeline(e);
    for (const n of pipe.notes) process.stderr.write(`[sweep] ${n}\n`);
    try {
      const rows = await runSweep(e, pipe, { runsDir, resultsFile, cells: flags.cells ? String(flags.cells).split(',') : undefined });
      console.log(`${e.name}: ${rows.length} new evaluation(s) in ${((Date.now() - t0) / 1000).toFixed(0)} s; results: ${path.relative(process.cwd(), resultsFile)}` +
        `${fs.existsSync(resultsFile) ? '' : ' (none yet)'}; checkpoints: ${path.relative(process.cwd(), runsDir)}`);
    } finally {
      pipe.dispose();
    }
    return 0;
  },
};
