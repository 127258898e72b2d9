// The results registry: one CSV per experiment under results/, one row per
// evaluation, every row with its provenance.
//
// Writes survive faults: an append takes the registry's lock (lib/util/lock.ts: holder
// pid, host and start time recorded; a lock whose holder is provably gone is broken), then
// writes the whole new file beside the old one and renames it over (fsynced), so a kill or
// ENOSPC leaves the old file or the new one, never a torn row. Rows that identify one
// evaluation (unique: experiment, study, cell, config hash, step, sampling steps, scale)
// are written once whatever the interleaving of writers. A writer that cannot get the lock
// keeps its rows in a pending file beside the registry; the next append adds them.
// Reads skip a torn or malformed row with a warning naming the file and line;
// repairResults (`dit results --repair FILE`) moves such rows out of the file.
import * as fs from 'fs';
import * as path from 'path';
import { parse } from 'csv-parse/sync';
import { hostTag, LockTimeout, withLockSync } from '../util/lock';
import { readJsonFile, repoRoot, writeFileAtomic } from '../util/paths';

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
 * untouched for a minute is stale, and a writer waits longer than that (2.5 min) before
 * it gives up and keeps its rows pending.
 */
export const REGISTRY_LOCK = { staleMs: 60_000, timeoutMs: 150_000 };

/** Runs fn while holding `file.lock` (lib/util/lock.ts rules). */
export function withFileLock<T>(file: string, fn: () => T, o: { timeoutMs?: number; staleMs?: number } = {}): T {
  return withLockSync(`${file}.lock`, fn, { ...REGISTRY_LOCK, ...o, purpose: `results registry ${path.basename(file)}` });
}

/** One CSV record as found in a file: its first line (1-based), its text and its fields. */
interface CsvRecord {
  line: number;
  text: string;
  fields: string[];
}

/** A record that cannot be a row: torn (no line end), a wrong field count, broken quoting, a bad number. */
export interface BadRecord {
  line: number;
  text: string;
  reason: string;
}

interface Scan {
  header: string | null;
  records: CsvRecord[];
  bad: BadRecord[];
  /** Offset of the end of the last complete record (a torn tail starts here). */
  completeEnd: number;
}

/** Splits CSV text into records at line ends outside quotes; the last one is torn when the text does not end with one. */
function splitRecords(text: string): Array<{ line: number; start: number; end: number; complete: boolean }> {
  const out: Array<{ line: number; start: number; end: number; complete: boolean }> = [];
  let quoted = false;
  let start = 0;
  let line = 1;
  let startLine = 1;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 34) quoted = !quoted;
    else if (ch === 10) {
      line++;
      if (!quoted) {
        out.push({ line: startLine, start, end: i + 1, complete: true });
        start = i + 1;
        startLine = line;
      }
    }
  }
  if (start < text.length) out.push({ line: startLine, start, end: text.length, complete: false });
  return out;
}

function parseRecord(text: string): string[] | null {
  try {
    const r = parse(text, { relax_column_count: true }) as string[][];
    return r.length === 1 ? r[0] : null;
  } catch {
    return null;
  }
}

/** Reads a registry's text: its header, the good records and the bad ones (numbers checked). */
function scanResults(text: string): Scan {
  const parts = splitRecords(text);
  const bad: BadRecord[] = [];
  const records: CsvRecord[] = [];
  let header: string | null = null;
  let headerFields: string[] = [];
  let completeEnd = 0;
  for (const p of parts) {
    const raw = text.slice(p.start, p.end);
    if (p.complete) completeEnd = p.end;
    const body = raw.replace(/\r?\n$/, '');
    if (!p.complete) {
      bad.push({ line: p.line, text: raw, reason: `torn last row (${raw.length} bytes without a line end: an interrupted write)` });
      continue;
    }
    if (body === '') continue;
    if (header === null) {
      header = body;
      headerFields = parseRecord(body) ?? [];
      continue;
    }
    const fields = parseRecord(body);
    if (!fields) {
      bad.push({ line: p.line, text: raw, reason: 'broken quoting' });
      continue;
    }
    if (fields.length !== headerFields.length) {
      bad.push({ line: p.line, text: raw, reason: `${fields.length} fields where the header has ${headerFields.length}` });
      continue;
    }
    const badNum = headerFields.findIndex((c, i) => NUMERIC.has(c) && fields[i] !== '' && !Number.isFinite(Number(fields[i])));
    if (badNum >= 0) {
      bad.push({ line: p.line, text: raw, reason: `column '${headerFields[badNum]}' is not a number: '${fields[badNum]}'` });
      continue;
    }
    records.push({ line: p.line, text: raw, fields });
  }
  return { header, records, bad, completeEnd };
}

/** What identifies one evaluation: rows with the same key are the same result. */
const KEY_COLUMNS = ['experiment', 'study', 'cell', 'config_hash', 'train_step', 'sampling_steps', 'cfg_scale'] as const;

function cellString(v: string | number | null | undefined): string {
  if (v === null || v === undefined || (typeof v === 'number' && !Number.isFinite(v))) return '';
  return String(v);
}

const rowKey = (get: (c: ResultColumn) => string) => KEY_COLUMNS.map(get).join('\u0000');

export interface AppendOptions {
  /**
   * Leave out rows whose evaluation (experiment, study, cell, config hash, step, sampling
   * steps, scale) the file already holds, so a result is written once whatever the
   * interleaving of writers. Default false.
   */
  unique?: boolean;
  /** Lock timing (tests). */
  lock?: { timeoutMs?: number; staleMs?: number };
  /** Warnings (a torn row moved aside), default stderr. */
  warn?: (msg: string) => void;
}

const warnStderr = (m: string) => process.stderr.write(`[results] warning: ${m}\n`);

/** The side file a torn or malformed row is moved to. */
function asideName(file: string): string {
  return `${file}.rejected-${new Date().toISOString().replace(/[:.]/g, '-')}.txt`;
}

function writeAside(file: string, bad: BadRecord[]): string {
  const aside = asideName(file);
  const body = bad.map((b) => `# line ${b.line}: ${b.reason}\n${b.text}${b.text.endsWith('\n') ? '' : '\n'}`).join('');
  writeFileAtomic(aside, `# rows moved out of ${file} on ${new Date().toISOString()}\n${body}`);
  return aside;
}

/** The pending files of `file` (rows a writer kept when it could not lock the registry). */
export function pendingFiles(file: string): string[] {
  const dir = path.dirname(file);
  const base = `${path.basename(file)}.pending-`;
  try {
    return fs.readdirSync(dir).filter((f) => f.startsWith(base) && f.endsWith('.json')).sort().map((f) => path.join(dir, f));
  } catch {
    return [];
  }
}

/** The rows of the pending files of `file` (rows computed but not yet in it). */
export function pendingResults(file: string): Array<Partial<ResultRow>> {
  const out: Array<Partial<ResultRow>> = [];
  for (const p of pendingFiles(file)) {
    try {
      out.push(...(readJsonFile(p) as Array<Partial<ResultRow>>));
    } catch {
      /* being written or broken: the next append reports it */
    }
  }
  return out;
}

/**
 * Appends rows to a results CSV (header written when the file is new). Unknown keys are
 * an error; missing ones are left empty. Under the lock the file is rewritten whole (new
 * file, fsync, rename), with any pending rows of earlier writers; a torn last row left by
 * an older writer is moved to a side file first (with a warning), never glued to a new one.
 * Returns the rows written (with `unique`, those the file did not hold yet).
 */
export function appendResults(file: string, rows: Array<Partial<ResultRow>>, o: AppendOptions = {}): Array<Partial<ResultRow>> {
  return appendWithPending(file, rows, o).written;
}

/**
 * Adds the rows kept pending beside `file` to it now, as the next append would (`dit
 * results --repair`); returns how many it added (rows the file already held are not).
 */
export function mergePendingResults(file: string, o: AppendOptions = {}): number {
  return appendWithPending(file, [], o).pending;
}

/** appendResults, also telling how many pending rows it added. */
function appendWithPending(file: string, rows: Array<Partial<ResultRow>>, o: AppendOptions): { written: Array<Partial<ResultRow>>; pending: number } {
  for (const r of rows) {
    for (const k of Object.keys(r)) if (!(RESULT_COLUMNS as readonly string[]).includes(k)) throw new Error(`results: unknown column '${k}'`);
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const warn = o.warn ?? warnStderr;
  return withFileLock(file, () => {
    const target = fs.existsSync(file) ? fs.realpathSync(file) : file;
    const text = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
    const scan = scanResults(text);
    if (scan.header !== null && scan.header !== RESULT_COLUMNS.join(',')) throw new Error(`${file}: header does not match the results schema; refusing to append`);
    let kept = text;
    // A torn tail is the last record found, the one without a line end.
    const torn = text.length > scan.completeEnd ? scan.bad[scan.bad.length - 1] : null;
    if (torn) {
      const aside = writeAside(file, [torn]);
      warn(`${file}:${torn.line}: ${torn.reason}; moved to ${aside} before appending`);
      kept = text.slice(0, scan.completeEnd);
    }
    const have = new Set<string>();
    if (scan.header !== null) {
      const idx = Object.fromEntries(RESULT_COLUMNS.map((c, i) => [c, i])) as Record<ResultColumn, number>;
      for (const r of scan.records) have.add(rowKey((c) => r.fields[idx[c]]));
    }
    const pending = pendingFiles(file).map((p) => {
      try {
        return { p, rows: readJsonFile(p) as Array<Partial<ResultRow>> };
      } catch (err) {
        warn(`${(err as Error).message}; left in place`);
        return { p, rows: null };
      }
    });
    const out: Array<Partial<ResultRow>> = [];
    const add = (r: Partial<ResultRow>, unique: boolean) => {
      const k = rowKey((c) => cellString(r[c]));
      if (unique && have.has(k)) return false;
      have.add(k);
      out.push(r);
      return true;
    };
    // Pending rows are sweep rows: always unique.
    for (const pr of pending) for (const r of pr.rows ?? []) add(r, true);
    const written = rows.filter((r) => add(r, o.unique ?? false));
    if (out.length || kept !== text) {
      const head = scan.header === null ? RESULT_COLUMNS.join(',') + '\n' : '';
      const body = out.map((r) => RESULT_COLUMNS.map((c) => csvCell(r[c])).join(',') + '\n').join('');
      writeFileAtomic(target, kept + head + body);
    }
    // Every readable pending row is in the file now (added, or there already): its file can go.
    for (const pr of pending) if (pr.rows) fs.rmSync(pr.p, { force: true });
    return { written, pending: out.length - written.length };
  }, o.lock);
}

/**
 * appendResults for a run that has already paid for its rows: when the registry cannot be
 * locked in time (a live holder keeps it), the rows are kept in a pending file beside it
 * (`<file>.pending-<host>-<pid>-<time>.json`), counted as done by later runs and added to
 * the registry by the next append. Returns the rows written or kept.
 */
export function appendResultsOrKeep(file: string, rows: Array<Partial<ResultRow>>, o: AppendOptions = {}): Array<Partial<ResultRow>> {
  try {
    return appendResults(file, rows, o);
  } catch (err) {
    if (!(err instanceof LockTimeout)) throw err;
    const p = `${file}.pending-${hostTag()}-${process.pid}-${Date.now()}.json`;
    writeFileAtomic(p, JSON.stringify(rows) + '\n');
    (o.warn ?? warnStderr)(`${err.message}; the ${rows.length} row(s) are kept in ${p} and will be added by the next append`);
    return rows;
  }
}

/** Columns added after the first schema: a file written before them reads them as empty. */
const LATER_COLUMNS = new Set<string>(['fid_se', 'fid_cnn', 'class_accuracy', 'sample_std_ratio', 'val_loss', 'val_mse', 'val_vb']);

// Each bad record is reported once per process (sweeps read the registry once per cell).
const reported = new Set<string>();

export interface ReadOptions {
  /** Told of each torn or malformed row skipped (default: a warning on stderr, once per row and process). */
  warn?: (msg: string) => void;
}

/** The message for a skipped record. */
function skippedMessage(file: string, b: BadRecord): string {
  return `${file}:${b.line}: ${b.reason}; the row is skipped (\`npx dit-kit results --repair ${file}\` moves it out of the file)`;
}

/**
 * Reads a results CSV; numeric columns become numbers (empty -> null). A torn or malformed
 * row (an interrupted write, a hand edit) is skipped with a warning naming the file and line.
 */
export function readResults(file: string, o: ReadOptions = {}): ResultRow[] {
  if (!fs.existsSync(file)) throw new Error(`results file not found: ${file}`);
  const scan = scanResults(fs.readFileSync(file, 'utf8'));
  for (const b of scan.bad) {
    const msg = skippedMessage(file, b);
    if (o.warn) o.warn(msg);
    else if (!reported.has(msg + b.text)) {
      reported.add(msg + b.text);
      warnStderr(msg);
    }
  }
  if (scan.header === null) return [];
  const columns = parseRecord(scan.header) ?? [];
  const index = new Map(columns.map((c, i) => [c, i]));
  return scan.records.map((rec) => {
    const row = {} as ResultRow;
    for (const c of RESULT_COLUMNS) {
      const i = index.get(c);
      if (i === undefined) {
        if (LATER_COLUMNS.has(c)) {
          row[c] = null;
          continue;
        }
        throw new Error(`${file}: the header has no column '${c}'`);
      }
      const v = rec.fields[i];
      row[c] = v === '' ? null : NUMERIC.has(c) ? Number(v) : v;
    }
    return row;
  });
}

/**
 * The rows a run counts as done: those of `file` (when it exists) and those kept pending
 * beside it by writers that could not lock it.
 */
export function readResultsAndPending(file: string): ResultRow[] {
  const rows = fs.existsSync(file) ? readResults(file) : [];
  for (const p of pendingResults(file)) {
    const row = {} as ResultRow;
    for (const c of RESULT_COLUMNS) row[c] = p[c] ?? null;
    rows.push(row);
  }
  return rows;
}

export interface RepairReport {
  file: string;
  /** The rows moved out (line, reason). */
  removed: Array<{ line: number; reason: string }>;
  /** Where they went (null when nothing was wrong). */
  aside: string | null;
  kept: number;
}

/**
 * `dit results --repair FILE`: under the registry's lock, moves every torn or malformed
 * row to `<file>.rejected-<time>.txt` and rewrites the file atomically with the rest,
 * byte for byte. A file without bad rows is left untouched.
 */
export function repairResults(file: string): RepairReport {
  if (!fs.existsSync(file)) throw new Error(`results file not found: ${file}`);
  return withFileLock(file, () => {
    const target = fs.realpathSync(file);
    const text = fs.readFileSync(target, 'utf8');
    const scan = scanResults(text);
    const report: RepairReport = { file, removed: scan.bad.map((b) => ({ line: b.line, reason: b.reason })), aside: null, kept: scan.records.length };
    if (!scan.bad.length) return report;
    const columns = scan.header === null ? [] : parseRecord(scan.header) ?? [];
    if (scan.header !== null && !(columns.includes('experiment') && columns.includes('config_hash'))) {
      throw new Error(`${file}: not a results registry (its header is '${scan.header.slice(0, 80)}'); not repaired`);
    }
    report.aside = writeAside(file, scan.bad);
    const header = scan.header === null ? '' : `${scan.header}\n`;
    writeFileAtomic(target, header + scan.records.map((r) => r.text).join(''));
    return report;
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
