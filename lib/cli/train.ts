import * as fs from 'fs';
import * as path from 'path';
import { initBackend } from '../backend';
import { experimentCells, loadExperiment } from '../experiments/config';
import { prepareTrainingData } from '../experiments/pipeline';
import { defaultPaths } from '../experiments/run';
import { CELL_LOCK, cellLockFile, trainOptions } from '../experiments/sweep';
import { gflops, trainingGflops } from '../model/gflops';
import { closeRun, train } from '../train/trainer';
import { parseArgs, UsageError } from '../util/args';
import { describeHolder, lockState, tryLock } from '../util/lock';
import type { Command } from './command';

const USAGE = `usage: dit-kit train CONFIG [--model NAME] [--variant V] [--steps N] [--runs DIR] [--data-parallel N]

Trains the (model, variant) cells of an experiment (a preset in experiments/ or a JSON
file) without evaluating them: data, autoencoder and latent cache are built when
missing; each cell resumes from its checkpoint (atomic; model, EMA, optimiser, RNG
state). --model/--variant pick cells, --steps overrides the training length.
Checkpoints go to data/runs/<experiment>/<cell>/ (or --runs DIR); sample them with
dit-kit sample --checkpoint .../checkpoint.safetensors.

--data-parallel N shares each step's batch among N threads (the main thread and N - 1
workers, each a replica on its own backend): the same run as one thread up to float
rounding (same seed, global batch and checkpoints; a run may resume with another N), about
1.6x faster wall time with N = 2 on an idle 2-core machine. Give it the cores a sweep's
--jobs would otherwise use.`;

const FLAGS = { model: 'string', variant: 'string', steps: 'count', runs: 'string', 'data-parallel': 'count' } as const;

export const trainCommand: Command = {
  name: 'train',
  summary: 'train the cells of an experiment (resumable checkpoints, loss CSV, progress)',
  usage: USAGE,
  async run(argv) {
    const { flags, positional } = parseArgs(argv, FLAGS);
    if (positional.length !== 1) throw new UsageError('one CONFIG (a preset name or a JSON file) is required');
    const e = loadExperiment(positional[0]);
    const cells = experimentCells(e).filter((c) => (!flags.model || c.model === flags.model) && (!flags.variant || c.variant === flags.variant));
    if (!cells.length) throw new UsageError(`no cell of ${e.name} matches; cells: ${experimentCells(e).map((c) => `${c.model} ${c.variant}`).join(', ')}`);
    await initBackend();
    const data = await prepareTrainingData(e);
    for (const n of data.notes) process.stderr.write(`[train] ${n}\n`);
    const runsDir = (flags.runs as string) ?? defaultPaths(e).runsDir;
    try {
      for (const cell of cells) {
        const o = trainOptions(e, cell);
        if (flags.steps !== undefined) o.steps = flags.steps as number;
        if (flags['data-parallel'] !== undefined) o.dataParallel = flags['data-parallel'] as number;
        const dir = path.join(runsDir, cell.id);
        process.stderr.write(`[train] ${cell.model} (${cell.variant}): ${gflops(o.model).toFixed(4)} Gflops, ${o.steps} steps at batch ${o.batchSize} = ` +
          `${trainingGflops(o.model, o.batchSize, o.steps).toExponential(3)} training Gflops (Gflops x batch x steps x 3, paper Fig. 9)` +
          `${(o.dataParallel ?? 1) > 1 ? `, batch shared by ${o.dataParallel} threads` : ''}\n`);
        // The cell's sweep lock: a sweep (or another dit train) on the same cell is refused, not raced.
        const lockFile = cellLockFile(runsDir, cell);
        fs.mkdirSync(dir, { recursive: true });
        const lock = tryLock(lockFile, { ...CELL_LOCK, purpose: `dit train ${cell.id}` });
        if (!lock) {
          throw new Error(`${cell.id} is being trained by ${describeHolder(lockState(lockFile, CELL_LOCK.staleMs)?.holder ?? null)} (lock ${lockFile}); wait for it or stop it`);
        }
        let st;
        try {
          st = await train(dir, o, data.source, { onStep: () => lock.refresh() });
        } finally {
          lock.release();
        }
        console.log(`${cell.id}: step ${st.step} -> ${path.relative(process.cwd(), path.join(dir, 'checkpoint.safetensors'))} (loss history ${path.relative(process.cwd(), path.join(dir, 'loss.csv'))})`);
        closeRun(st);
      }
    } finally {
      data.ae.dispose();
    }
    return 0;
  },
};
