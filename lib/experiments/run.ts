// One call that runs (or resumes) an experiment end to end: used by `dit sweep`,
// `npm start` and the notebooks' "regenerate" switch.
import * as fs from 'fs';
import * as path from 'path';
import { initBackend } from '../backend';
import { ResultRow } from '../results/registry';
import { withLock } from '../util/lock';
import { repoRoot } from '../util/paths';
import { runCalibration } from './calibration';
import { ExperimentConfig, loadExperiment } from './config';
import { buildPipeline, BuiltPipeline } from './pipeline';
import { ModelGrid, scalingCheckpoints, writeFig7 } from '../figures/samples';
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
  /** Once aborted (SIGTERM), the cell under way checkpoints and the run stops with SweepInterrupted (sweep.ts). */
  signal?: AbortSignal;
  /** Builds the data side another way (default buildPipeline: data, autoencoder, feature network, reference). */
  pipeline?: (e: ExperimentConfig, log: (msg: string) => void) => Promise<BuiltPipeline>;
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

/**
 * The lock of an experiment's shared work: held for as long as an autoencoder or feature
 * network trains (minutes to hours, without refreshes), so one of another host counts as
 * stale only after 12 hours; on this host its holder is checked directly.
 */
export const SHARED_LOCK = { staleMs: 12 * 3600_000, timeoutMs: Infinity, pollMs: [200, 5000] as [number, number] };

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
  // The shared work (data, autoencoder, latent cache, feature network, reference
  // statistics, calibration) runs in one process at a time: a second sweep on the same
  // runs folder waits, then finds it cached and the calibration rows written.
  fs.mkdirSync(runsDir, { recursive: true });
  const { pipe, rows } = await withLock(path.join(runsDir, 'shared.lock'), async () => {
    const built = await (o.pipeline ?? buildPipeline)(e, log);
    try {
      for (const n of built.notes) log(n);
      // FID's floor and ceiling at this sample count, once per experiment setting.
      return { pipe: built, rows: await runCalibration(e, built, resultsFile, log) };
    } catch (err) {
      built.dispose();
      throw err;
    }
  }, {
    ...SHARED_LOCK, purpose: `shared work of ${e.name}`,
    onWait: (h) => log(`waiting for ${h ? `process ${h.pid} on ${h.host}` : 'another process'}, which is preparing the shared data and calibration (${path.join(runsDir, 'shared.lock')})`),
  });
  try {
    rows.push(...(await runSweep(e, pipe, { runsDir, resultsFile, cells: o.cells, quiet: o.quiet, log, signal: o.signal })));
    let grid: ModelGrid | null = null;
    if (o.grid !== false && e.studies.some((s) => s.name === 'scaling')) {
      // A fresh clone has the committed results but no checkpoints (they are not committed):
      // the evaluations are found done, and the committed grid stays.
      if (scalingCheckpoints(e, runsDir).length) grid = writeFig7(e, pipe, runsDir, path.join(path.dirname(resultsFile), 'figures'), log);
      else log(`Fig. 7: no checkpoints in ${runsDir} (the results in ${path.basename(resultsFile)} are complete without them); the sample grid is not redrawn`);
    }
    return { experiment: e, rows, resultsFile, runsDir, notes: pipe.notes, seconds: (Date.now() - t0) / 1000, grid };
  } finally {
    pipe.dispose();
  }
}
