// Sweeps as Slurm jobs: one job for the shared work (data, autoencoder, latents, feature
// network, reference statistics, calibration), then a job array over the cells that
// depends on it (afterok). Every array task runs `dit sweep CONFIG --cells ...`, the code
// a local sweep runs, so the cell locks, the registry lock and resuming work as they do
// on one machine. This file plans and renders (pure); lib/cli/sweep.ts submits.
import * as path from 'path';
import { ExperimentConfig, experimentCells } from './config';
import { cellCost, partitionCells, SWEEP_INTERRUPTED_EXIT } from './sweep';

/** What each job asks of Slurm. */
export interface SlurmResources {
  partition?: string;
  /** Time limit, as sbatch takes it ([D-]HH:MM:SS, MM, ...). */
  time?: string;
  cpusPerTask?: number;
  /** e.g. 'gpu:1'. */
  gres?: string;
  /** At most this many array tasks at once (sbatch --array=...%K). */
  arrayParallel?: number;
  /** Further sbatch options, one per #SBATCH line, e.g. '--account=proj'. */
  sbatchArgs?: string[];
}

export interface SlurmTask {
  /** SLURM_ARRAY_TASK_ID. */
  index: number;
  cells: string[];
  /** Estimated compute of its cells (cellCost). */
  gflops: number;
}

export interface SlurmPlan {
  experiment: string;
  /** The CONFIG each job passes to `dit sweep`: a preset name or an absolute path. */
  config: string;
  /** Absolute results CSV and runs folder, passed to every job (they must be on a filesystem all nodes share). */
  resultsFile: string;
  runsDir: string;
  /** Scripts, logs and the submission record: <runs>/slurm. */
  dir: string;
  /** Where jobs start, and the command they run: `node <entry> sweep ...`. */
  cwd: string;
  node: string;
  entry: string;
  tasks: SlurmTask[];
  resources: SlurmResources;
}

/**
 * Seconds before the time limit at which Slurm sends SIGTERM (--signal): enough for the
 * step under way, its checkpoint, and an evaluation under way at small scale.
 */
export const SIGNAL_LEAD_S = 300;

export interface PlanInput {
  config: string;
  resultsFile: string;
  runsDir: string;
  cwd: string;
  node: string;
  entry: string;
  /** Array tasks (cells balanced by estimated compute, as --jobs); default one per cell. */
  tasks?: number;
  resources?: SlurmResources;
}

/** The array tasks of a sweep and where everything goes. Throws on resources sbatch would misread. */
export function planSlurm(e: ExperimentConfig, p: PlanInput): SlurmPlan {
  const r = p.resources ?? {};
  checkResources(r);
  const n = p.tasks ?? experimentCells(e).length;
  const groups = partitionCells(e, n);
  return {
    experiment: e.name, config: p.config, resultsFile: path.resolve(p.resultsFile), runsDir: path.resolve(p.runsDir),
    dir: path.join(path.resolve(p.runsDir), 'slurm'), cwd: p.cwd, node: p.node, entry: p.entry,
    tasks: groups.map((g, index) => ({ index, cells: g.map((c) => c.id), gflops: g.reduce((a, c) => a + cellCost(e, c), 0) })),
    resources: { ...r, sbatchArgs: r.sbatchArgs ?? [] },
  };
}

const TIME = /^(\d+-)?\d+(:\d{1,2}){0,2}$|^\d+-\d+$/;
const WORD = /^[^\s'"\\]+$/;

function checkResources(r: SlurmResources): void {
  if (r.time !== undefined && !TIME.test(r.time)) throw new Error(`--time '${r.time}': not a Slurm time limit (HH:MM:SS, D-HH:MM:SS or minutes)`);
  if (r.partition !== undefined && !WORD.test(r.partition)) throw new Error(`--partition '${r.partition}': one word expected`);
  if (r.gres !== undefined && !WORD.test(r.gres)) throw new Error(`--gres '${r.gres}': one word expected, e.g. gpu:1`);
  for (const [k, v] of [['--cpus-per-task', r.cpusPerTask], ['--array-parallel', r.arrayParallel]] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw new Error(`${k} must be a positive integer, got ${v}`);
  }
  // Each goes on its own #SBATCH line: a line break would start a shell command.
  for (const a of r.sbatchArgs ?? []) if (!a.startsWith('-') || /[\r\n]/.test(a)) throw new Error(`--sbatch-arg '${a}': one sbatch option expected (e.g. --account=proj)`);
}

/** A word quoted for bash. */
export const shq = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

export const sharedScriptFile = (p: SlurmPlan) => path.join(p.dir, `${p.experiment}-shared.sbatch`);
export const arrayScriptFile = (p: SlurmPlan) => path.join(p.dir, `${p.experiment}-array.sbatch`);
export const logDir = (p: SlurmPlan) => path.join(p.dir, 'logs');
/** The submission record that `dit sweep --status` reads. */
export const jobsFile = (runsDir: string) => path.join(runsDir, 'slurm', 'jobs.json');

function header(p: SlurmPlan, name: string, log: string): string[] {
  const r = p.resources;
  return [
    `#SBATCH --job-name=${name}`,
    `#SBATCH --output=${path.join(logDir(p), log)}`,
    // A requeued task writes on after its first run's lines instead of over them.
    '#SBATCH --open-mode=append',
    ...(r.partition ? [`#SBATCH --partition=${r.partition}`] : []),
    ...(r.time ? [`#SBATCH --time=${r.time}`] : []),
    ...(r.cpusPerTask ? [`#SBATCH --cpus-per-task=${r.cpusPerTask}`] : []),
    ...(r.gres ? [`#SBATCH --gres=${r.gres}`] : []),
    // Preempted or failed nodes put the job back in the queue; it resumes from its checkpoints.
    '#SBATCH --requeue',
    // SIGTERM to the batch shell before the time limit; it passes it on to the sweep.
    `#SBATCH --signal=B:TERM@${SIGNAL_LEAD_S}`,
    ...(r.sbatchArgs ?? []).map((a) => `#SBATCH ${a}`),
  ];
}

/**
 * Runs the sweep in the background so that the shell can pass SIGTERM on, and requeues
 * the job when the sweep stopped for it (checkpoints saved, exit SWEEP_INTERRUPTED_EXIT).
 */
function runAndRequeue(p: SlurmPlan, args: string[], job: string): string[] {
  return [
    `cd ${shq(p.cwd)}`,
    // An argument already in double quotes is a shell expansion, left for bash.
    `${[p.node, p.entry, 'sweep', p.config, ...args, '--results', p.resultsFile, '--runs', p.runsDir].map((a) => (a.startsWith('"') ? a : shq(a))).join(' ')} &`,
    'pid=$!',
    'trap \'kill -TERM "$pid" 2>/dev/null\' TERM',
    // wait returns early (128 + 15) when the trap runs: wait again until the sweep has
    // exited, then once more for its own exit status, which bash keeps for $!.
    'while kill -0 "$pid" 2>/dev/null; do wait "$pid"; done',
    'wait "$pid"; code=$?',
    `if [ "$code" -eq ${SWEEP_INTERRUPTED_EXIT} ]; then`,
    `  echo "dit: stopped by SIGTERM with its checkpoints saved; requeueing ${job}"`,
    `  scontrol requeue "${job}" || echo "dit: scontrol requeue ${job} failed: resubmit to resume"`,
    'fi',
    'exit "$code"',
  ];
}

/** The job of the shared work: runs once, before any cell. */
export function renderSharedScript(p: SlurmPlan): string {
  return [
    '#!/bin/bash',
    `# dit sweep ${p.config}: the shared work (data, autoencoder, latents, feature network, reference statistics, calibration).`,
    ...header(p, `dit-${p.experiment}-shared`, '%x-%j.out'),
    'set -u',
    ...runAndRequeue(p, ['--shared'], '$SLURM_JOB_ID'),
    '',
  ].join('\n');
}

/** The job array: task k runs the cells of line k of CELLS (submitted with --dependency=afterok:<shared job>). */
export function renderArrayScript(p: SlurmPlan): string {
  const k = p.resources.arrayParallel;
  return [
    '#!/bin/bash',
    `# dit sweep ${p.config}: ${p.tasks.length} array task(s), each running \`dit sweep --cells\` on its cells.`,
    ...header(p, `dit-${p.experiment}`, '%x-%A_%a.out'),
    `#SBATCH --array=0-${p.tasks.length - 1}${k ? `%${k}` : ''}`,
    // If the shared job fails, the tasks leave the queue instead of pending forever.
    '#SBATCH --kill-on-invalid-dep=yes',
    'set -u',
    'CELLS=(',
    ...p.tasks.map((t) => `  ${shq(t.cells.join(','))}  # task ${t.index}: ~${t.gflops.toExponential(2)} Gflops`),
    ')',
    ...runAndRequeue(p, ['--cells', '"${CELLS[$SLURM_ARRAY_TASK_ID]}"', '--no-grid'], '${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}'),
    '',
  ].join('\n');
}

/** sbatch's arguments for a script, after the job it waits for when there is one. */
export function sbatchArgs(script: string, afterOk?: string): string[] {
  return ['--parsable', ...(afterOk ? [`--dependency=afterok:${afterOk}`] : []), script];
}

/** The job id in `sbatch --parsable` output ('123' or '123;cluster'). */
export function parseJobId(out: string): string {
  const id = out.trim().split(';')[0];
  if (!/^\d+$/.test(id)) throw new Error(`sbatch printed '${out.trim()}', not a job id`);
  return id;
}

/** What was submitted: lets `dit sweep --status` name the Slurm job of each cell. */
export interface SlurmSubmission {
  experiment: string;
  submittedAt: string;
  sharedJob: string;
  arrayJob: string;
  tasks: Array<{ index: number; cells: string[] }>;
  logs: string;
}

export function submission(p: SlurmPlan, sharedJob: string, arrayJob: string, now = new Date()): SlurmSubmission {
  return { experiment: p.experiment, submittedAt: now.toISOString(), sharedJob, arrayJob, tasks: p.tasks.map((t) => ({ index: t.index, cells: t.cells })), logs: logDir(p) };
}

/** The Slurm job id (ARRAY_TASK) that runs a cell in a submission, if any. */
export function cellJob(s: SlurmSubmission | null, cell: string): string | null {
  const t = s?.tasks.find((x) => x.cells.includes(cell));
  return t && s ? `${s.arrayJob}_${t.index}` : null;
}
