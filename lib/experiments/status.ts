// `dit sweep CONFIG --status`: where each cell of a sweep stands, read from the results
// registry and the runs folder only (cell locks, failure records, the Slurm submission
// record), so it answers at once on a login node without building the data side.
import * as fs from 'fs';
import * as path from 'path';
import { readResultsAndPending, ResultRow } from '../results/registry';
import { describeHolder, LockHolder, lockState } from '../util/lock';
import { readJsonFile } from '../util/paths';
import { Cell, ExperimentConfig, experimentCells } from './config';
import { cellJob, jobsFile, SlurmSubmission } from './slurm';
import { CELL_LOCK, cellFailedFile, cellLockFile, evalPoints, pointKey } from './sweep';

export type CellState = 'done' | 'running' | 'failed' | 'pending';

export interface CellStatus {
  cell: string;
  state: CellState;
  /** Evaluations in the registry (or pending beside it) of the cell's newest settings, and how many it owes in all. */
  evaluations: { done: number; total: number };
  /** Whether a checkpoint is there (a pending cell with one resumes). */
  checkpoint: boolean;
  /** Who holds the cell's lock (running). */
  holder?: LockHolder | null;
  /** The Slurm job (ARRAYJOB_TASK) of the cell in the last submission, or of its failure. */
  slurmJob?: string | null;
  /** The error of a failed cell. */
  error?: string;
}

export interface SweepStatus {
  experiment: string;
  cells: CellStatus[];
  submission: SlurmSubmission | null;
  /** Problems with the records read (a malformed submission record), as warnings. */
  warnings: string[];
}

/**
 * The evaluations of a cell found done. Without the data side this process cannot compute
 * the config hash a sweep would now write, so the newest row's hash stands for the cell's
 * current settings (a cell whose settings changed counts from its new rows on).
 */
function doneCount(rows: ResultRow[], e: ExperimentConfig, cell: Cell): number {
  const mine = rows.filter((r) => r.experiment === e.name && r.cell === cell.id);
  if (!mine.length) return 0;
  const newest = mine.reduce((a, b) => (String(b.timestamp ?? '') > String(a.timestamp ?? '') ? b : a));
  const keys = new Set(mine.filter((r) => r.config_hash === newest.config_hash)
    .map((r) => pointKey({ study: String(r.study), step: Number(r.train_step), samplingSteps: Number(r.sampling_steps), cfgScale: Number(r.cfg_scale) })));
  return evalPoints(e, cell).filter((p) => keys.has(pointKey(p))).length;
}

function readSubmission(runsDir: string, warnings: string[]): SlurmSubmission | null {
  const file = jobsFile(runsDir);
  if (!fs.existsSync(file)) return null;
  try {
    const s = readJsonFile(file) as SlurmSubmission;
    if (!Array.isArray(s?.tasks)) throw new Error(`${file}: no tasks`);
    return s;
  } catch (err) {
    warnings.push(`${(err as Error).message}; Slurm job ids are not shown`);
    return null;
  }
}

function readFailure(file: string): { error: string; slurmJob?: string | null } | null {
  if (!fs.existsSync(file)) return null;
  try {
    const f = readJsonFile(file) as { error?: unknown; slurmJob?: string | null };
    return { error: String(f.error ?? 'unknown error'), slurmJob: f.slurmJob };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

export function sweepStatus(e: ExperimentConfig, o: { resultsFile: string; runsDir: string }): SweepStatus {
  const warnings: string[] = [];
  const rows = readResultsAndPending(o.resultsFile);
  const submission = readSubmission(o.runsDir, warnings);
  const cells = experimentCells(e).map((cell): CellStatus => {
    const evaluations = { done: doneCount(rows, e, cell), total: evalPoints(e, cell).length };
    const base = { cell: cell.id, evaluations, checkpoint: fs.existsSync(path.join(o.runsDir, cell.id, 'checkpoint.safetensors')), slurmJob: cellJob(submission, cell.id) };
    if (evaluations.done === evaluations.total) return { ...base, state: 'done' };
    const lock = lockState(cellLockFile(o.runsDir, cell), CELL_LOCK.staleMs);
    if (lock && !lock.stale) return { ...base, state: 'running', holder: lock.holder };
    const failed = readFailure(cellFailedFile(o.runsDir, cell));
    if (failed) return { ...base, state: 'failed', error: failed.error, slurmJob: failed.slurmJob ?? base.slurmJob };
    return { ...base, state: 'pending' };
  });
  return { experiment: e.name, cells, submission, warnings };
}

/** The status as lines of text: a summary, then one line per cell. */
export function formatStatus(s: SweepStatus, resultsFile: string): string[] {
  const count = (st: CellState) => s.cells.filter((c) => c.state === st).length;
  const sub = s.submission ? `; Slurm: shared job ${s.submission.sharedJob}, array ${s.submission.arrayJob}, submitted ${s.submission.submittedAt}` : '';
  const width = Math.max(...s.cells.map((c) => c.cell.length));
  return [
    `${s.experiment}: ${count('done')} done, ${count('running')} running, ${count('failed')} failed, ${count('pending')} pending (${resultsFile}${sub})`,
    ...s.warnings.map((w) => `warning: ${w}`),
    ...s.cells.map((c) => {
      const detail = [
        `${c.evaluations.done}/${c.evaluations.total} evaluations`,
        c.state === 'running' && c.holder ? describeHolder(c.holder) : '',
        c.state !== 'done' && c.slurmJob ? `Slurm ${c.slurmJob}` : '',
        c.state === 'pending' && c.checkpoint ? 'checkpoint there: resumes' : '',
        c.error ? `error: ${c.error.split('\n')[0]}` : '',
      ];
      return `${c.cell.padEnd(width)}  ${c.state.padEnd(7)}  ${detail.filter(Boolean).join('; ')}`;
    }),
  ];
}
