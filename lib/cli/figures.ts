import * as path from 'path';
import { initBackend } from '../backend';
import { loadExperiment } from '../experiments/config';
import { prepareTrainingData } from '../experiments/pipeline';
import { defaultPaths } from '../experiments/run';
import { scalingCheckpoints, writeFig7 } from '../figures/samples';
import { FIGURES, FigureOptions, MissingDataError } from '../figures/specs';
import { measuredHeadline } from '../notebook/findings';
import { writeFigureHtml } from '../figures/html';
import { ChromiumMissingError, chromiumAvailable, DEFAULT_CHROMIUM, renderPng } from '../figures/render';
import { listResultFiles, readResults, resultsDir } from '../results/registry';
import { parseArgs, UsageError } from '../util/args';
import { writeFileAtomic } from '../util/paths';
import type { Command } from './command';

const USAGE = `usage: dit-kit figures [--results DIR] [--out DIR] [--no-png] [--no-samples] [--runs DIR] [--experiment NAME] [--feature-net NET]

Regenerates the paper's figures (Fig. 5 conditioning, Fig. 6 scaling, Fig. 8 Gflops vs
FID, Fig. 9 training compute, Fig. 10 sampling compute) from the results registry:
figN-name.html (plotly; loads node_modules/plotly.js-dist by a relative path) and
figN-name.png (headless Chromium). Fig. 8's statistics also go to fig8-gflops-vs-fid.stats.json.
Figures whose study has no results yet are skipped and listed. Fig. 7 (the sample grid
of a scaling study, <experiment>-fig7-samples.png with its .json companion) is redrawn
from the experiment's checkpoints in data/runs/<experiment>/ when they are there
(checkpoints are not committed; without them the committed grid stays as it is).
  --results DIR       results folder with the *.csv files (default results/)
  --out DIR           output folder (default <results>/figures)
  --no-png            HTML only (no Chromium needed)
  --no-samples        do not redraw Fig. 7 from checkpoints
  --runs DIR          the checkpoints to sample for Fig. 7 (default data/runs/<experiment>/)
  --experiment NAME   plot this experiment (default: per figure, the most recently evaluated)
  --feature-net NET   FIDs of this feature network: default | inception (needed when both are present)`;

const FLAGS = { results: 'string', out: 'string', 'no-png': 'boolean', 'no-samples': 'boolean', runs: 'string', experiment: 'string', 'feature-net': 'string' } as const;

/**
 * Redraws Fig. 7 of each plotted experiment whose preset has a scaling study and whose
 * checkpoints are on this machine. Returns what it did, one line per experiment.
 */
async function redrawSampleGrids(experiments: string[], out: string, runs?: string): Promise<string[]> {
  const lines: string[] = [];
  for (const name of experiments) {
    let e;
    try {
      e = loadExperiment(name);
    } catch {
      lines.push(`Fig. 7 (${name}): no preset '${name}' in experiments/, so no checkpoints to sample`);
      continue;
    }
    const study = e.studies.find((s) => s.name === 'scaling');
    if (!study) continue;
    const runsDir = runs ? path.resolve(runs) : defaultPaths(e).runsDir;
    if (!scalingCheckpoints(e, runsDir).length) {
      lines.push(`Fig. 7 (${name}): no checkpoints in ${rel(runsDir)} (not committed; run \`npx dit-kit sweep ${name}\` to make them): the committed grid is kept`);
      continue;
    }
    await initBackend({ quiet: true });
    const data = await prepareTrainingData(e, () => {});
    try {
      const grid = writeFig7(e, data, runsDir, out, () => {});
      lines.push(`wrote ${rel(grid.file)} (${grid.rows.length} models${grid.missing.length ? `; no checkpoint yet: ${grid.missing.join(', ')}` : ''}) and its .json companion`);
    } finally {
      data.ae.dispose();
    }
  }
  return lines;
}

function rel(p: string): string {
  return path.relative(process.cwd(), p) || p;
}

export const figuresCommand: Command = {
  name: 'figures',
  summary: "regenerate the paper's figures (HTML + PNG) from results/*.csv",
  usage: USAGE,
  async run(argv) {
    const { flags, positional } = parseArgs(argv, FLAGS);
    if (positional.length) throw new UsageError(`unexpected argument '${positional[0]}'`);
    const dir = path.resolve((flags.results as string | undefined) ?? resultsDir());
    const out = path.resolve((flags.out as string | undefined) ?? path.join(dir, 'figures'));
    const png = !flags['no-png'];
    const opts: FigureOptions = {};
    if (flags.experiment !== undefined) opts.experiment = flags.experiment as string;
    if (flags['feature-net'] !== undefined) opts.featureNet = flags['feature-net'] as string;
    const files = listResultFiles(dir);
    const rows = files.flatMap((f) => readResults(f));
    console.log(`${rows.length} result row(s) from ${files.length} file(s) in ${rel(dir)}`);

    const written: Array<{ html: string; width: number; height: number }> = [];
    const skipped: string[] = [];
    const failed: string[] = [];
    for (const fig of FIGURES) {
      try {
        // The title states the finding as measured, not the paper's claim.
        const spec = fig.make(rows, { headline: measuredHeadline(fig.make, rows, opts), ...opts });
        const html = path.join(out, `${fig.file}.html`);
        writeFigureHtml(html, spec, fig.title);
        console.log(`wrote ${rel(html)}`);
        if ('stats' in spec) {
          const statsFile = path.join(out, `${fig.file}.stats.json`);
          writeFileAtomic(statsFile, JSON.stringify(spec.stats, null, 1) + '\n');
          console.log(`wrote ${rel(statsFile)}`);
        }
        written.push({ html, width: Number(spec.layout.width) || 1000, height: Number(spec.layout.height) || 700 });
      } catch (err) {
        if (err instanceof MissingDataError) skipped.push(`${fig.file}: ${err.message}`);
        else failed.push(`${fig.file}: ${(err as Error).message}`);
      }
    }
    if (png && written.length) {
      // The pages are written; say how to get the PNGs (or to skip them).
      if (!chromiumAvailable()) throw new ChromiumMissingError(DEFAULT_CHROMIUM);
      for (const w of written) {
        const file = w.html.replace(/\.html$/, '.png');
        try {
          await renderPng(w.html, file, { width: w.width, height: w.height, fragment: 'static' });
          console.log(`wrote ${rel(file)}`);
        } catch (err) {
          failed.push(`${path.basename(file)}: ${(err as Error).message}`);
        }
      }
    }
    if (!flags['no-samples']) {
      const experiments = [...new Set(rows.map((r) => String(r.experiment)))].filter((n) => !opts.experiment || n === opts.experiment).sort();
      for (const l of await redrawSampleGrids(experiments, out, flags.runs as string | undefined)) console.log(l);
    }
    for (const s of skipped) console.log(`skipped ${s}`);
    for (const f of failed) console.error(`failed ${f}`);
    console.log(`${written.length} figure(s) written to ${rel(out)}, ${skipped.length} skipped for lack of data${failed.length ? `, ${failed.length} failed` : ''}`);
    return failed.length ? 1 : 0;
  },
};
