// The results registry: one CSV per experiment under results/, one row per
// evaluation, every row with its provenance. Appends are serialised by a lock file
// (lib/util/lock.ts), so two processes writing at once never interleave or duplicate the header.
import * as fs from 'fs';
import * as path from 'path';
import { parse } from 'csv-parse/sync';
import { withLockSync } from '../util/lock';
import { repoRoot } from '../util/paths';

/** Columns of a results CSV, in order. See results/README.md for their meaning. */
export const RESULT_COLUMNS = [
  // what was run
  'experiment', 'study', 'cell', 'model', 'variant', 'patch_size', 'gflops', 'params',
  // training
  'train_step', 'batch_size', 'train_gflops', 'seed',
  // sampling
  'sampler', 'sampling_steps', 'cfg_scale', 'guidance_channels', 'num_samples', 'sampling_gflops_per_image',
  // metrics
  'feature_net', 'fid', 'sfid', 'inception_score', 'precision', 'recall',
  // study metrics (results/README.md): FID's bootstrap standard error, the CNN-only FID,
  // class-conditional accuracy, the samples' scale, the held-out diffusion loss
  'fid_se', 'fid_cnn', 'class_accuracy', 'sample_std_ratio', 'val_loss', 'val_mse', 'val_vb',
  // provenance
  'config_hash', 'data_id', 'git_commit', 'backend', 'wall_time_s', 'timestamp',
] as const;

export type ResultColumn = (typeof RESULT_COLUMNS)[number];
export type ResultRow = Record<ResultColumn, string | number | null>;

const NUMERIC = new Set<string>([
  'patch_size', 'gflops', 'params', 'train_step', 'batch_size', 'train_gflops', 'seed', 'sampling_steps', 'cfg_scale',
  'num_samples', 'sampling_gflops_per_image', 'fid', 'sfid', 'inception_score', 'precision', 'recall', 'wall_time_s',
  'fid_se', 'fid_cnn', 'class_accuracy', 'sample_std_ratio', 'val_loss', 'val_mse', 'val_vb',
]);

export function resultsDir(): string {
  return path.join(repoRoot(), 'results');
}

function csvCell(v: string | number | null | undefined): string {
  if (v === null || v === undefined || (typeof v === 'number' && !Number.isFinite(v))) return '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * The registry's lock: an append holds it for milliseconds, so a lock of another host
 * untouched for a minute is stale, and a writer waits longer than that (2.5 min).
 */
export const REGISTRY_LOCK = { staleMs: 60_000, timeoutMs: 150_000 };

/** Runs fn while holding `file.lock` (lib/util/lock.ts rules). */
export function withFileLock<T>(file: string, fn: () => T, o: { timeoutMs?: number; staleMs?: number } = {}): T {
  return withLockSync(`${file}.lock`, fn, { ...REGISTRY_LOCK, ...o, purpose: `results registry ${path.basename(file)}` });
}

/**
 * Appends rows to a results CSV (header written when the file is new). Unknown keys are
 * an error; missing ones are left empty. One write per call, under the lock.
 */
export function appendResults(file: string, rows: Array<Partial<ResultRow>>): void {
  for (const r of rows) {
    for (const k of Object.keys(r)) if (!(RESULT_COLUMNS as readonly string[]).includes(k)) throw new Error(`results: unknown column '${k}'`);
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const body = rows.map((r) => RESULT_COLUMNS.map((c) => csvCell(r[c])).join(',') + '\n').join('');
  withFileLock(file, () => {
    const exists = fs.existsSync(file) && fs.statSync(file).size > 0;
    if (exists) {
      const head = fs.readFileSync(file, 'utf8').split('\n', 1)[0];
      if (head !== RESULT_COLUMNS.join(',')) throw new Error(`${file}: header does not match the results schema; refusing to append`);
    }
    fs.appendFileSync(file, (exists ? '' : RESULT_COLUMNS.join(',') + '\n') + body);
  });
}

/** Columns added after the first schema: a file written before them reads them as empty. */
const LATER_COLUMNS = new Set<string>(['fid_se', 'fid_cnn', 'class_accuracy', 'sample_std_ratio', 'val_loss', 'val_mse', 'val_vb']);

/** Reads a results CSV with csv-parse; numeric columns become numbers (empty -> null). */
export function readResults(file: string): ResultRow[] {
  if (!fs.existsSync(file)) throw new Error(`results file not found: ${file}`);
  const records = parse(fs.readFileSync(file, 'utf8'), { columns: true, skip_empty_lines: true }) as Record<string, string>[];
  return records.map((r, i) => {
    const row = {} as ResultRow;
    for (const c of RESULT_COLUMNS) {
      if (!(c in r)) {
        if (LATER_COLUMNS.has(c)) {
          row[c] = null;
          continue;
        }
        throw new Error(`${file}: row ${i + 2} has no column '${c}'`);
      }
      const v = r[c];
      if (v === '') row[c] = null;
      else if (NUMERIC.has(c)) {
        const n = Number(v);
        if (!Number.isFinite(n)) throw new Error(`${file}: row ${i + 2}, column '${c}' is not a number: '${v}'`);
        row[c] = n;
      } else row[c] = v;
    }
    return row;
  });
}

/** All results CSVs under results/ (one per experiment). */
export function listResultFiles(dir = resultsDir()): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => f.endsWith('.csv')).map((f) => path.join(dir, f)).sort();
}

export type ResultFilter = Partial<Record<ResultColumn, string | number>>;

export function filterResults(rows: ResultRow[], filter: ResultFilter): ResultRow[] {
  return rows.filter((r) => Object.entries(filter).every(([k, v]) => String(r[k as ResultColumn]) === String(v)));
}
