// One call that runs (or resumes) an experiment end to end: used by `dit sweep`,
// `npm start` and the notebooks' "regenerate" switch.
import * as path from 'path';
import { backendInfo, initBackend } from '../backend';
import { ResultRow } from '../results/registry';
import { repoRoot, writeFileAtomic } from '../util/paths';
import { gitCommit } from '../util/provenance';
import { runCalibration } from './calibration';
import { ExperimentConfig, loadExperiment } from './config';
import { buildPipeline, BuiltPipeline } from './pipeline';
import { modelGrid, ModelGrid } from './samples';
import { runSweep } from './sweep';

export interface RunOptions {
  /** Results CSV (default results/<experiment>.csv). */
  resultsFile?: string;
  /** Checkpoints (default data/runs/<experiment>/, gitignored). */
  runsDir?: string;
  cells?: string[];
  /** Draw the Fig. 7 grid of the scaling study at the end (default true). */
  grid?: boolean;
  quiet?: boolean;
  log?: (msg: string) => void;
}

export interface RunResult {
  experiment: ExperimentConfig;
  rows: Array<Partial<ResultRow>>;
  resultsFile: string;
  runsDir: string;
  notes: string[];
  seconds: number;
  /** Fig. 7 sample grid of the scaling study (null when the experiment has none). */
  grid: ModelGrid | null;
}

export function defaultPaths(e: ExperimentConfig): { resultsFile: string; runsDir: string } {
  return { resultsFile: path.join(repoRoot(), 'results', `${e.name}.csv`), runsDir: path.join(repoRoot(), 'data', 'runs', e.name) };
}

/** Runs an experiment (a preset name, a JSON path or a config) and returns the rows it added. */
export async function runExperiment(exp: string | ExperimentConfig, o: RunOptions = {}): Promise<RunResult> {
  const e = typeof exp === 'string' ? loadExperiment(exp) : exp;
  await initBackend({ quiet: o.quiet });
  const d = defaultPaths(e);
  const resultsFile = o.resultsFile ?? d.resultsFile;
  const runsDir = o.runsDir ?? d.runsDir;
  const log = o.log ?? ((m: string) => process.stderr.write(`[${e.name}] ${m}\n`));
  const t0 = Date.now();
  const pipe: BuiltPipeline = await buildPipeline(e, log);
  try {
    for (const n of pipe.notes) log(n);
    // FID's floor and ceiling at this sample count, once per experiment setting.
    const rows = await runCalibration(e, pipe, resultsFile, log);
    rows.push(...(await runSweep(e, pipe, { runsDir, resultsFile, cells: o.cells, quiet: o.quiet, log })));
    let grid: ModelGrid | null = null;
    if (o.grid !== false && e.studies.some((s) => s.name === 'scaling')) {
      const out = path.join(path.dirname(resultsFile), 'figures', `${e.name}-fig7-samples.png`);
      grid = modelGrid(e, pipe, { runsDir, out });
      log(`Fig. 7 sample grid (rows: ${grid.rows.join(', ')}) -> ${out}`);
      log(`samples' std over the data's: ${grid.scale.map((r) => `${r.cell} ${r.ratio.toFixed(2)}`).join(', ')}`);
      for (const r of grid.scale) if (r.warning) log(`warning: ${r.cell}: ${r.warning}`);
      writeFileAtomic(out.replace(/\.png$/, '.json'), JSON.stringify({
        experiment: e.name, rows: grid.rows, labels: grid.labels, missing: grid.missing, sampler: e.eval.sampler,
        samplingSteps: e.eval.samplingSteps, seed: 0, sampleStdOverData: Object.fromEntries(grid.scale.map((r) => [r.cell, Number(r.ratio.toFixed(4))])),
        gitCommit: gitCommit(), backend: backendInfo()?.name ?? 'unknown', timestamp: new Date().toISOString(),
      }, null, 1) + '\n');
    }
    return { experiment: e, rows, resultsFile, runsDir, notes: pipe.notes, seconds: (Date.now() - t0) / 1000, grid };
  } finally {
    pipe.dispose();
  }
}
