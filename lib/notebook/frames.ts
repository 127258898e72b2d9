// Results as danfojs DataFrames for the notebooks: the rows readResults (csv-parse)
// returns, a per-cell summary, and model tables. danfojs loads on first use (~2 s).
import type { DataFrame } from 'danfojs-node';
import { ResultColumn, ResultRow } from '../results/registry';
import { studyData } from './findings';
import { FigureOptions, MissingDataError } from '../figures/specs';
import { showTable } from './display';

type Danfo = typeof import('danfojs-node');
let danfo: Danfo | null = null;

/** The danfojs-node module (loaded once). */
export function dfd(): Danfo {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use (~2 s)
  return (danfo ??= require('danfojs-node') as Danfo);
}

/** The columns a results table shows by default (the CSV has 30). */
export const RESULT_VIEW: ResultColumn[] = ['study', 'model', 'variant', 'gflops', 'train_step', 'sampler', 'sampling_steps', 'num_samples', 'fid'];

/** A DataFrame of result rows, with the chosen columns (default RESULT_VIEW). */
export function resultsFrame(rows: readonly ResultRow[], columns: readonly ResultColumn[] = RESULT_VIEW): DataFrame {
  if (!rows.length) throw new Error('resultsFrame: no rows');
  return new (dfd().DataFrame)(rows.map((r) => Object.fromEntries(columns.map((c) => [c, readable(c, r[c])]))));
}

/** Metrics to 2 decimals and Gflops to 4 significant digits, for printing (the CSV keeps every digit). */
function readable(c: string, v: string | number | null): string | number | null {
  if (typeof v !== 'number' || !Number.isFinite(v)) return v;
  if (['fid', 'sfid', 'inception_score', 'wall_time_s'].includes(c)) return Math.round(v * 100) / 100;
  if (['precision', 'recall'].includes(c)) return Math.round(v * 1000) / 1000;
  if (c.includes('gflops')) return Number(v.toPrecision(4));
  return v;
}

/** Any list of plain records as a DataFrame. */
export function frame(records: Array<Record<string, string | number | boolean | null>>): DataFrame {
  return new (dfd().DataFrame)(records);
}

export interface CellSummary extends Record<string, string | number | null> {
  model: string;
  variant: string;
  gflops: number | null;
  params: number | null;
  evaluations: number;
  final_step: number | null;
  final_fid: number | null;
  best_fid: number | null;
}

/**
 * One line per (model, variant) of a study: Gflops, parameters, evaluations, the final
 * and the best FID of its training curve. Empty when the study has no results.
 */
export function cellSummary(rows: readonly ResultRow[], study: string, opts: FigureOptions = {}): CellSummary[] {
  let d;
  try {
    d = studyData(rows, study, opts);
  } catch (err) {
    if (err instanceof MissingDataError) return [];
    throw err;
  }
  return d.cells.map((c) => {
    const fids = c.curve.map((r) => Number(r.fid));
    return {
      model: c.model,
      variant: c.variant,
      gflops: readable('gflops', c.gflops) as number | null,
      params: c.params,
      evaluations: c.rows.length,
      final_step: c.final ? Number(c.final.train_step) : null,
      final_fid: c.final ? (readable('fid', Number(c.final.fid)) as number) : null,
      best_fid: fids.length ? (readable('fid', Math.min(...fids)) as number) : null,
    };
  });
}

/** cellSummary as a DataFrame, shown as a table; says so when the study has no results. */
export function showCellSummary(rows: readonly ResultRow[], study: string, opts: FigureOptions = {}): void {
  const s = cellSummary(rows, study, opts);
  if (!s.length) {
    console.log(`no '${study}' results to summarise`);
    return;
  }
  showTable(frame(s), { caption: `'${study}' study: one line per model and variant (final = last evaluated step)` });
}
