import * as path from 'path';
import { backendInfo } from '../backend';
import { CALIBRATION_STUDY } from '../experiments/calibration';
import { runExperiment } from '../experiments/run';
import { calibrationFids, fig6Scaling } from '../figures/specs';
import { writeFigureHtml } from '../figures/html';
import { chromiumAvailable, renderPng } from '../figures/render';
import { readResults } from '../results/registry';
import { scalingFinding } from '../notebook/findings';
import { parseArgs, UsageError } from '../util/args';
import type { Command } from './command';

const USAGE = `usage: dit-kit quick [--preset quick]

The main job on the embedded default (npm start): builds the synthetic data, the KL
autoencoder, the latent cache and a feature network when missing, trains a few small
DiTs briefly, samples, evaluates FID, and writes results and a figure. A second run
reuses everything cached (and finished evaluations).`;

export const quickCommand: Command = {
  name: 'quick',
  summary: 'the main job on the default data (npm start): data, autoencoder, small DiTs, samples, FID, a figure',
  usage: USAGE,
  async run(argv) {
    const { flags, positional } = parseArgs(argv, { preset: 'string' });
    if (positional.length) throw new UsageError(`unexpected argument '${positional[0]}'`);
    const t0 = Date.now();
    const r = await runExperiment((flags.preset as string) ?? 'quick');
    const rows = readResults(r.resultsFile).filter((x) => x.experiment === r.experiment.name);
    const figDir = path.join(path.dirname(r.resultsFile), 'figures');
    const html = path.join(figDir, `${r.experiment.name}-fig6-scaling.html`);
    const spec = fig6Scaling(rows, { experiment: r.experiment.name });
    writeFigureHtml(html, spec, `DiT ${r.experiment.name}: FID over training`);
    const written = [html];
    if (chromiumAvailable()) {
      const png = html.replace(/\.html$/, '.png');
      await renderPng(html, png, { width: Number(spec.layout.width) || 1000, height: Number(spec.layout.height) || 700, fragment: 'static' });
      written.push(png);
    }
    const rel = (p: string) => path.relative(process.cwd(), p);
    const last = new Map<string, (typeof rows)[number]>();
    const calibration = calibrationFids(rows, { experiment: r.experiment.name, featureNet: rows.find((x) => x.feature_net)?.feature_net as string ?? null });
    for (const x of rows.filter((y) => y.study !== CALIBRATION_STUDY)) {
      const prev = last.get(String(x.cell));
      if (!prev || Number(x.train_step) >= Number(prev.train_step)) last.set(String(x.cell), x);
    }
    console.log(`\n${r.experiment.name}: done in ${((Date.now() - t0) / 1000).toFixed(0)} s on the ${backendInfo()?.name} backend`);
    for (const n of r.notes) console.log(`  ${n}`);
    console.log(`  final FID (${rows.find((x) => x.feature_net)?.feature_net ?? 'default features'}; not comparable with Inception FIDs):`);
    const n = (v: unknown, d = 2) => (typeof v === 'number' ? v.toFixed(d) : 'n/a');
    for (const x of last.values()) {
      console.log(`    ${String(x.model).padEnd(10)} ${Number(x.gflops).toFixed(4)} Gflops  step ${x.train_step}  FID ${n(x.fid)}${typeof x.fid_se === 'number' ? ` ± ${n(x.fid_se)}` : ''}` +
        `${typeof x.sample_std_ratio === 'number' ? `  samples' std ${n(x.sample_std_ratio)}x the data's` : ''}${typeof x.val_loss === 'number' ? `  held-out loss ${n(x.val_loss, 4)}` : ''}`);
    }
    if (calibration.length) console.log(`  the same FID for ${calibration.map((c) => `${c.label}: ${c.fid.toFixed(2)}`).join('; ')}`);
    for (const w of r.grid?.scale.filter((g) => g.warning) ?? []) console.log(`  warning: ${w.cell}: ${w.warning}`);
    // What the run shows, by the findings' rule (resolved comparisons only), not what the paper found.
    const f = scalingFinding(rows, { experiment: r.experiment.name });
    console.log(`  Fig. 6 at this scale: ${f.verdict.toUpperCase()}: ${f.reason}`);
    console.log(`  results:      ${rel(r.resultsFile)} (${rows.length} rows; npx dit-kit results --experiment ${r.experiment.name})`);
    console.log(`  checkpoints:  ${rel(r.runsDir)}`);
    if (r.grid) console.log(`  samples:      ${rel(r.grid.file)} (one row per model, same noise and labels)`);
    for (const f of written) console.log(`  figure:       ${rel(f)}`);
    return 0;
  },
};
