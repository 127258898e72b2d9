import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { experimentCells, ExperimentConfig, loadExperiment } from '../experiments/config';
import { defaultPaths, runExperiment, RunResult } from '../experiments/run';
import { cellCost, partitionCells, SWEEP_INTERRUPTED_EXIT, SweepInterrupted } from '../experiments/sweep';
import { parseArgs, ParsedFlags, UsageError } from '../util/args';
import type { Command } from './command';
import { runSlurm, takeRepeated } from './sweep_slurm';
import { formatStatus, sweepStatus } from '../experiments/status';

const USAGE = `usage: dit-kit sweep CONFIG [--cells ID,ID | --jobs N | --shared] [--results FILE.csv] [--runs DIR] [--no-grid] [--list]
       dit-kit sweep CONFIG --status [--results FILE.csv] [--runs DIR]
       dit-kit sweep CONFIG --slurm [--jobs N] [--partition P] [--time HH:MM:SS] [--cpus-per-task N] [--gres gpu:1]
                            [--array-parallel K] [--sbatch-arg OPTION ...] [--dry-run]

Runs (or resumes) an experiment: every (model, variant) cell of its studies is trained
once and its EMA model evaluated at the configured steps; one row per evaluation goes
to the results registry. CONFIG is a preset in experiments/ (smoke, quick, mini, paper)
or a JSON file. Finished evaluations are skipped, partly trained cells resume.
  --cells    only these cells (see --list)
  --jobs N   N sweep processes on disjoint cells of similar estimated compute (one per
             core: the kit's CPU kernels use one thread each); data, autoencoder, feature
             network and calibration are prepared once first, the Fig. 7 grid drawn last
  --results  results CSV (default results/<experiment>.csv)
  --runs     checkpoints (default data/runs/<experiment>/, gitignored)
  --shared   only the shared work (data, autoencoder, latents, feature network,
             reference statistics, calibration), no cell
  --no-grid  do not draw the Fig. 7 sample grid at the end
  --list     the cells, their studies and estimated compute
  --status   each cell done, running (by whom; its Slurm job when submitted with --slurm),
             failed (the error) or pending, from the registry and the runs folder

On a Slurm cluster (the repo, --results and --runs on a filesystem every node shares):
  --slurm    submit one job for the shared work and a job array after it
             (--dependency=afterok), one task per cell, or --jobs N tasks of cells
             balanced by estimated compute; each task runs \`dit sweep CONFIG --cells ...\`,
             is requeued when preempted, and near its time limit saves its checkpoints
             and requeues itself (SIGTERM, exit 75). Scripts and logs: <runs>/slurm/
  --partition, --time, --cpus-per-task, --gres   the sbatch options of every job
  --array-parallel K   at most K array tasks at once
  --sbatch-arg OPTION  a further sbatch option (repeatable), e.g. --sbatch-arg=--account=proj
  --dry-run  print the scripts and the sbatch commands; submit nothing`;

const FLAGS = {
  cells: 'string', jobs: 'string', results: 'string', runs: 'string', 'no-grid': 'boolean', list: 'boolean', shared: 'boolean',
  slurm: 'boolean', partition: 'string', time: 'string', 'cpus-per-task': 'count', gres: 'string', 'array-parallel': 'count', 'dry-run': 'boolean', status: 'boolean',
} as const;

const SLURM_ONLY = ['partition', 'time', 'cpus-per-task', 'gres', 'array-parallel', 'dry-run'];

function summary(e: ExperimentConfig, r: RunResult): string {
  return `${e.name}: ${r.rows.length} new evaluation(s) in ${r.seconds.toFixed(0)} s; results: ${path.relative(process.cwd(), r.resultsFile)}` +
    `${fs.existsSync(r.resultsFile) ? '' : ' (none yet)'}; checkpoints: ${path.relative(process.cwd(), r.runsDir)}`;
}

/**
 * SIGTERM (Slurm's --signal before the time limit, preemption, `kill PID`): the cell under
 * way stops after its step with a checkpoint and the sweep exits SWEEP_INTERRUPTED_EXIT.
 */
export function stopOnSigterm(log: (m: string) => void = (m) => process.stderr.write(`[sweep] ${m}\n`)): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  const on = () => {
    if (!ac.signal.aborted) log('SIGTERM: stopping after the step under way, with a checkpoint');
    ac.abort();
  };
  process.on('SIGTERM', on);
  return { signal: ac.signal, dispose: () => process.off('SIGTERM', on) };
}

/** The exit code of a run that threw: SWEEP_INTERRUPTED_EXIT when SIGTERM stopped it (it says so), else the error goes on. */
export function interruptedExit(err: unknown): number {
  if (!(err instanceof SweepInterrupted)) throw err;
  console.error(`dit sweep: ${err.message}`);
  return SWEEP_INTERRUPTED_EXIT;
}

const running = new Set<ChildProcess>();

/** Runs `dit sweep` in a child process on some cells, its output prefixed with [job k]. Resolves to its exit code. */
function runJob(k: number, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'index.js'), 'sweep', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    const pipe = (from: NodeJS.ReadableStream, to: NodeJS.WriteStream) => {
      let rest = '';
      from.on('data', (b: Buffer) => {
        const lines = (rest + b.toString()).split(/\r?\n|\r/);
        rest = lines.pop() ?? '';
        for (const l of lines) if (l) to.write(`[job ${k}] ${l}\n`);
      });
      from.on('end', () => rest && to.write(`[job ${k}] ${rest}\n`));
    };
    pipe(child.stdout, process.stdout);
    pipe(child.stderr, process.stderr);
    child.on('error', reject);
    child.on('close', (code) => {
      running.delete(child);
      resolve(code ?? 1);
    });
  });
}

export const sweepCommand: Command = {
  name: 'sweep',
  summary: 'run or resume an experiment: train every cell, evaluate, append results',
  usage: USAGE,
  async run(argv) {
    const extra = takeRepeated(argv, 'sbatch-arg');
    const { flags, positional } = parseArgs(extra.rest, FLAGS);
    if (positional.length !== 1) throw new UsageError('one CONFIG (a preset name or a JSON file) is required');
    const e = loadExperiment(positional[0]);
    if (flags.list) {
      for (const c of experimentCells(e)) console.log(`${c.id}  (${c.studies.join(', ')}; ~${cellCost(e, c).toExponential(2)} Gflops)`);
      return 0;
    }
    const base = { resultsFile: flags.results as string | undefined, runsDir: flags.runs as string | undefined };
    const jobs = flags.jobs === undefined ? 1 : Number(flags.jobs);
    if (!(Number.isInteger(jobs) && jobs >= 1)) throw new UsageError(`--jobs must be a positive integer, got '${flags.jobs}'`);
    if (flags.status) {
      if (flags.slurm || flags.cells || flags.shared || flags.jobs !== undefined) throw new UsageError('--status only reads: leave out --slurm, --cells, --shared and --jobs');
      const where = { resultsFile: base.resultsFile ?? defaultPaths(e).resultsFile, runsDir: base.runsDir ?? defaultPaths(e).runsDir };
      for (const l of formatStatus(sweepStatus(e, where), path.relative(process.cwd(), where.resultsFile) || where.resultsFile)) console.log(l);
      return 0;
    }
    if (flags.slurm) {
      if (flags.cells || flags.shared) throw new UsageError('--slurm plans every cell itself: leave out --cells and --shared');
      return runSlurm(e, {
        config: positional[0], resultsFile: base.resultsFile ?? defaultPaths(e).resultsFile, runsDir: base.runsDir ?? defaultPaths(e).runsDir,
        tasks: flags.jobs === undefined ? undefined : jobs, dryRun: !!flags['dry-run'],
        resources: {
          partition: flags.partition as string | undefined, time: flags.time as string | undefined, cpusPerTask: flags['cpus-per-task'] as number | undefined,
          gres: flags.gres as string | undefined, arrayParallel: flags['array-parallel'] as number | undefined, sbatchArgs: extra.values,
        },
      });
    }
    const slurmOnly = [...SLURM_ONLY.filter((k) => flags[k] !== undefined), ...(extra.values.length ? ['sbatch-arg'] : [])];
    if (slurmOnly.length) throw new UsageError(`only with --slurm: ${slurmOnly.map((k) => `--${k}`).join(', ')}`);
    if (flags.shared && (flags.cells || jobs > 1)) throw new UsageError('--shared runs no cell: leave out --cells and --jobs');
    const stop = stopOnSigterm();
    try {
      return await sweep(e, positional[0], flags, base, jobs, stop.signal);
    } catch (err) {
      return interruptedExit(err);
    } finally {
      stop.dispose();
    }
  },
};

async function sweep(
  e: ExperimentConfig, config: string, flags: ParsedFlags, base: { resultsFile?: string; runsDir?: string }, jobs: number, signal: AbortSignal,
): Promise<number> {
  if (jobs === 1) {
    const cells = flags.shared ? [] : flags.cells ? String(flags.cells).split(',') : undefined;
    const r = await runExperiment(e, { ...base, signal, cells, grid: !flags['no-grid'] && !flags.shared });
    console.log(summary(e, r));
    return 0;
  }
  if (flags.cells) throw new UsageError('--jobs splits all the cells itself: leave out --cells');
  const t0 = Date.now();
  // Shared pieces first, so the jobs find them cached instead of racing to build them.
  await runExperiment(e, { ...base, signal, cells: [], grid: false });
  const groups = partitionCells(e, jobs);
  const pass = [...(base.resultsFile ? ['--results', path.resolve(base.resultsFile)] : []), ...(base.runsDir ? ['--runs', path.resolve(base.runsDir)] : [])];
  groups.forEach((g, k) => console.log(`[job ${k}] ${g.map((c) => c.id).join(', ')} (~${g.reduce((a, c) => a + cellCost(e, c), 0).toExponential(2)} Gflops)`));
  // SIGTERM reaches this process only: pass it on, so that each job checkpoints its cell.
  const passOn = () => running.forEach((c) => c.kill('SIGTERM'));
  signal.addEventListener('abort', passOn, { once: true });
  const codes = await Promise.all(groups.map((g, k) => runJob(k, [config, '--cells', g.map((c) => c.id).join(','), '--no-grid', ...pass])));
  signal.removeEventListener('abort', passOn);
  const failed = codes.map((c, k) => [c, k]).filter(([c]) => c !== 0);
  if (failed.length && failed.every(([c]) => c === SWEEP_INTERRUPTED_EXIT)) {
    console.error(`stopped by SIGTERM, checkpoints saved; rerun the same command to resume`);
    return SWEEP_INTERRUPTED_EXIT;
  }
  if (failed.length) {
    console.error(`${failed.map(([c, k]) => `job ${k} exited with ${c}`).join(', ')}; rerun the same command to resume`);
    return 1;
  }
  // Every cell is trained now: the grid (and nothing else) is left.
  const fin = await runExperiment(e, { ...base, signal, cells: [], grid: !flags['no-grid'] });
  console.log(`${e.name}: ${groups.length} jobs finished in ${((Date.now() - t0) / 1000).toFixed(0)} s wall time; results: ` +
    `${path.relative(process.cwd(), fin.resultsFile)}; checkpoints: ${path.relative(process.cwd(), fin.runsDir)}`);
  return 0;
}

