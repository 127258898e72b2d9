import * as path from 'path';
import {
  filterResults, listResultFiles, mergePendingResults, pendingFiles, pendingResults, readResults, repairResults, RESULT_COLUMNS, ResultColumn, ResultFilter,
  ResultRow, resultsDir,
} from '../results/registry';
import { parseArgs, UsageError } from '../util/args';
import type { Command } from './command';

const DEFAULT_COLUMNS: ResultColumn[] = ['experiment', 'study', 'model', 'variant', 'train_step', 'sampler', 'sampling_steps', 'cfg_scale', 'num_samples', 'feature_net', 'fid', 'sfid', 'inception_score', 'precision', 'recall'];

const USAGE = `usage: dit-kit results [--dir DIR] [--experiment NAME] [--where column=value ...] [--columns a,b,c] [--json]
       dit-kit results --repair FILE.csv

A table of the results registry (results/*.csv). Filters: --experiment, and --where
column=value (repeatable, comma-separated also works), e.g. --where model=mini-XL/2,variant=adaln.
Columns: ${RESULT_COLUMNS.join(', ')}.
A torn or malformed row (an interrupted write, a hand edit) is skipped with a warning
naming its file and line; --repair FILE moves such rows to FILE.rejected-<time>.txt and
rewrites FILE without them (under the registry's lock).
Rows a run could not write because the registry stayed locked wait in
FILE.pending-<host>-<pid>-<time>.json: they are counted below the table, and added to
FILE by the next run's append or by --repair FILE.`;

const FLAGS = { dir: 'string', experiment: 'string', where: 'string', columns: 'string', json: 'boolean', repair: 'string' } as const;

function fmt(v: ResultRow[ResultColumn]): string {
  if (v === null) return '';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4);
  return v;
}

export const resultsCommand: Command = {
  name: 'results',
  summary: 'show the results registry as a table (filterable)',
  usage: USAGE,
  async run(argv) {
    // --where may repeat: collect them before the strict parser sees the rest.
    const wheres: string[] = [];
    const rest: string[] = [];
    for (let i = 0; i < argv.length; i++) {
      if (argv[i] === '--where') {
        if (i + 1 >= argv.length) throw new UsageError('flag --where needs a value');
        wheres.push(argv[++i]);
      } else rest.push(argv[i]);
    }
    const { flags, positional } = parseArgs(rest, FLAGS);
    if (positional.length) throw new UsageError(`unexpected argument '${positional[0]}'`);
    if (flags.repair !== undefined) {
      if (Object.keys(flags).length > 1 || wheres.length) throw new UsageError('--repair FILE takes no other flag');
      const r = repairResults(flags.repair as string);
      const merged = pendingFiles(r.file).length ? mergePendingResults(r.file) : 0;
      for (const b of r.removed) console.log(`${r.file}:${b.line}: ${b.reason}`);
      if (r.aside) console.log(`${r.file}: moved ${r.removed.length} row(s) to ${r.aside}; ${r.kept} row(s) kept`);
      if (merged) console.log(`${r.file}: added ${merged} pending row(s) (kept beside it by a run that could not lock it)`);
      if (!r.aside && !merged) console.log(`${r.file}: nothing to repair (${r.kept} row(s), none torn or malformed, none pending)`);
      return 0;
    }
    const filter: ResultFilter = {};
    if (flags.experiment) filter.experiment = flags.experiment as string;
    for (const w of wheres.flatMap((s) => s.split(','))) {
      const eq = w.indexOf('=');
      const key = w.slice(0, eq);
      if (eq <= 0 || !(RESULT_COLUMNS as readonly string[]).includes(key)) throw new UsageError(`--where needs column=value with a known column, got '${w}'`);
      filter[key as ResultColumn] = w.slice(eq + 1);
    }
    const columns = flags.columns ? String(flags.columns).split(',') : DEFAULT_COLUMNS;
    for (const c of columns) if (!(RESULT_COLUMNS as readonly string[]).includes(c)) throw new UsageError(`unknown column '${c}'`);
    const dir = (flags.dir as string) ?? resultsDir();
    const files = listResultFiles(dir);
    const rows = filterResults(files.flatMap((f) => readResults(f)), filter);
    // Rows computed but not in their file yet: said, so a table that lacks them is not taken for complete.
    const pending = files.flatMap((f) => {
      const n = pendingResults(f).length;
      return n ? [`${f}: ${n} pending row(s) not in the table, in ${pendingFiles(f).length} file(s) beside it (a run could not lock it); ` +
        `the next run adds them, or now: dit results --repair ${f}`] : [];
    });
    if (flags.json) {
      for (const r of rows) console.log(JSON.stringify(r));
      for (const p of pending) process.stderr.write(p + '\n');
      return 0;
    }
    if (!rows.length) console.log(files.length ? 'no rows match' : `no results yet in ${path.relative(process.cwd(), dir) || dir}`);
    else {
      const cells = rows.map((r) => columns.map((c) => fmt(r[c as ResultColumn])));
      const w = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
      console.log(columns.map((c, i) => c.padEnd(w[i])).join('  '));
      for (const r of cells) console.log(r.map((v, i) => v.padEnd(w[i])).join('  '));
      console.log(`${rows.length} row(s) from ${files.length} file(s)`);
    }
    for (const p of pending) console.log(p);
    return 0;
  },
};
