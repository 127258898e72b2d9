// The notebooks' one switch (DIT_NOTEBOOK_MODE) and where their results come from:
//   committed  results/mini.csv as committed (nothing is run)
//   smoke      the smoke preset, run (or found finished) under data/notebook-smoke/, so
//              CI never touches results/ and the notebooks share one run
//   mini       the mini preset, run or resumed into results/mini.csv, then plotted
import * as fs from 'fs';
import * as path from 'path';
import { ExperimentConfig, loadExperiment } from '../experiments/config';
import { runExperiment } from '../experiments/run';
import { readResults, ResultRow } from '../results/registry';
import type { FindingOptions } from './findings';
import { withLock } from '../util/lock';
import { readJsonFile, repoRoot } from '../util/paths';

export const NOTEBOOK_MODES = ['committed', 'smoke', 'mini'] as const;
export type NotebookMode = (typeof NOTEBOOK_MODES)[number];

/** The experiment whose results are committed under results/ and plotted by default. */
export const COMMITTED_EXPERIMENT = 'mini';

/** Checks a mode string (the notebooks' MODE) and returns it typed. */
export function checkMode(mode: string): NotebookMode {
  if (!(NOTEBOOK_MODES as readonly string[]).includes(mode)) {
    throw new Error(`DIT_NOTEBOOK_MODE='${mode}' is not a mode: use ${NOTEBOOK_MODES.join(', ')}`);
  }
  return mode as NotebookMode;
}

/** Where smoke mode runs: DIT_NOTEBOOK_SMOKE_DIR (the notebook test sets a fresh one), else data/notebook-smoke. */
export function smokeDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.DIT_NOTEBOOK_SMOKE_DIR ?? path.join(repoRoot(), 'data', 'notebook-smoke'));
}

/** A path relative to the kit's root when it lies inside it (for messages). */
export function rel(p: string): string {
  const r = path.relative(repoRoot(), p);
  return r && !r.startsWith('..') && !path.isAbsolute(r) ? r : p;
}

export interface NotebookResults {
  mode: NotebookMode;
  experiment: string;
  /** The experiment's config (null in committed mode when its preset file is absent). */
  config: ExperimentConfig | null;
  resultsFile: string;
  /** Training checkpoints (may be absent: results are committed, checkpoints are not). */
  runsDir: string;
  /** Every row of the results file (all experiments in it). */
  rows: ResultRow[];
  /** The Fig. 7 sample grid PNG, when there is one. */
  fig7: string | null;
  /** Options that pin the figures to this experiment. */
  /** Options for the figures and findings (the experiment, and the Fig. 7 companion's sample scales). */
  figureOptions: FindingOptions;
}

export interface NotebookResultsOptions {
  /** Printed lines (default console.log). */
  print?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  /** Where committed results live (default results/). */
  resultsDir?: string;
}

/**
 * Runs fn while holding a lock file (lib/util/lock.ts): two notebooks started at once
 * share one smoke run instead of training it twice. A lock whose holder is gone is taken
 * over; one of another machine counts as gone after six hours without a refresh.
 */
export async function withRunLock<T>(lock: string, fn: () => Promise<T>, print: (l: string) => void = console.log): Promise<T> {
  return withLock(lock, () => fn(), {
    staleMs: 6 * 3600_000, timeoutMs: Infinity, pollMs: [100, 500], purpose: 'notebook run',
    onWait: (h) => print(`waiting for ${h ? `process ${h.pid} on ${h.host}` : 'another process'}, which is running this experiment (${rel(lock)})`),
  });
}

function loadConfigIfPresent(name: string): ExperimentConfig | null {
  try {
    return loadExperiment(name);
  } catch {
    return null;
  }
}

/**
 * The results a notebook plots, by mode. In committed mode a missing results file is
 * said plainly and null comes back (the notebook's analysis cells then skip); smoke and
 * mini modes run (or resume) the experiment first. Prints what it did.
 */
export async function notebookResults(mode: string, o: NotebookResultsOptions = {}): Promise<NotebookResults | null> {
  const m = checkMode(mode);
  const print = o.print ?? ((l: string) => console.log(l));
  if (m === 'committed') {
    const name = COMMITTED_EXPERIMENT;
    const dir = o.resultsDir ?? path.join(repoRoot(), 'results');
    const resultsFile = path.join(dir, `${name}.csv`);
    if (!fs.existsSync(resultsFile)) {
      print(`MODE 'committed': ${rel(resultsFile)} does not exist yet, so there is nothing to plot; the cells below skip their analysis.`);
      print(`To make it, run the '${name}' experiment (\`npx dit-kit sweep ${name}\`, or this notebook with DIT_NOTEBOOK_MODE=${name}); ` +
        `for a quick look at everything, use DIT_NOTEBOOK_MODE=smoke.`);
      return null;
    }
    const rows = readResults(resultsFile);
    const fig7 = path.join(dir, 'figures', `${name}-fig7-samples.png`);
    print(`MODE 'committed': ${rows.length} result rows from ${rel(resultsFile)} (nothing is run).`);
    return {
      mode: m, experiment: name, config: loadConfigIfPresent(name), resultsFile, runsDir: path.join(repoRoot(), 'data', 'runs', name),
      rows, fig7: fs.existsSync(fig7) ? fig7 : null, figureOptions: { experiment: name, sampleScale: sampleScaleOf(fig7) },
    };
  }
  const name = m;
  const config = loadExperiment(name);
  let resultsFile: string | undefined;
  let runsDir: string | undefined;
  if (m === 'smoke') {
    const dir = smokeDir(o.env);
    resultsFile = path.join(dir, 'results', `${name}.csv`);
    runsDir = path.join(dir, 'runs');
  }
  // The run's log: held back while the run only finds its work done (every notebook but
  // the first), streamed as soon as there is work or it takes more than a few seconds.
  print(`MODE '${m}': running (or resuming) the ${name} experiment -> ${rel(resultsFile ?? path.join(repoRoot(), 'results', `${name}.csv`))}`);
  const held: string[] = [];
  let streaming = false;
  const t0 = Date.now();
  const startStreaming = () => {
    if (streaming) return;
    streaming = true;
    for (const l of held.splice(0)) print(`  ${l}`);
  };
  const timer = setTimeout(startStreaming, 5000);
  const log = (line: string) => {
    const l = line.trim();
    if (/: done \(all \d+ evaluations/.test(l)) return;
    if (/evaluation\(s\) to go/.test(l) || Date.now() - t0 > 5000) startStreaming();
    if (streaming) print(`  ${l}`);
    else held.push(l);
  };
  const lock = resultsFile ? path.join(path.dirname(resultsFile), `.${name}.run.lock`) : path.join(repoRoot(), 'data', 'runs', `.${name}.run.lock`);
  let run;
  try {
    run = await withRunLock(lock, () => runExperiment(config, { resultsFile, runsDir, quiet: true, log }), print);
  } finally {
    clearTimeout(timer);
  }
  if (run.rows.length === 0) {
    print(`MODE '${m}': the ${name} run in ${rel(run.runsDir)} is finished (0 new evaluations; found in ${rel(run.resultsFile)}, ${run.seconds.toFixed(0)} s to check).`);
  } else {
    print(`MODE '${m}': ran ${name}: ${run.rows.length} new evaluation(s) in ${run.seconds.toFixed(0)} s -> ${rel(run.resultsFile)}`);
  }
  const rows = readResults(run.resultsFile);
  return {
    mode: m, experiment: name, config, resultsFile: run.resultsFile, runsDir: run.runsDir, rows,
    fig7: run.grid?.file ?? null, figureOptions: { experiment: name, sampleScale: run.grid ? sampleScaleOf(run.grid.file) : undefined },
  };
}

/** The per-model sample scales written beside a Fig. 7 grid (experiments/run), or undefined. */
export function sampleScaleOf(gridPng: string): Record<string, number> | undefined {
  const side = gridPng.replace(/\.png$/, '.json');
  if (!fs.existsSync(side)) return undefined;
  return (readJsonFile(side) as { sampleStdOverData: Record<string, number> }).sampleStdOverData;
}
