// Side-by-side views of chosen configs (notebook 06) and the quickstart's pieces:
// model tables, FID curves from the registry, samples from the same noise, a dataset
// grid and a loss curve.
import * as fs from 'fs';
import * as path from 'path';
import { firstPerClass, ImageDataset } from '../data/dataset';
import { imageGrid } from '../data/grid';
import { ExperimentConfig, modelConfig } from '../experiments/config';
import { prepareTrainingData } from '../experiments/pipeline';
import { modelGrid, ModelGrid } from '../figures/samples';
import { DiTConfig, ditConfig, Variant } from '../model/config';
import { modelStats } from '../model/gflops';
import { FigureOptions, FigureSpec, MissingDataError, fidAxisTitle, formatGflops, variantLabel } from '../figures/specs';
import type { ResultRow } from '../results/registry';
import { resolvedVerdict, studyData, StudyCell } from './findings';
import { compareFid, tally } from '../figures/resolution';
import { rel } from './results';

/** The DiT config of a model name as an experiment trains it (its overrides), or the family default. */
export function configFor(model: string, variant: Variant, e: ExperimentConfig | null): DiTConfig {
  return e ? modelConfig(e, model, variant) : ditConfig(model, { variant });
}

/** One row per config: tokens, parameters, forward Gflops (paper convention). */
export function modelTable(configs: DiTConfig[]): Array<Record<string, string | number>> {
  return configs.map((c) => {
    const s = modelStats(c);
    return { model: c.name, variant: c.variant, input: `${c.inChannels}x${c.inputSize}x${c.inputSize}`, depth: c.depth, hidden: c.hiddenSize, heads: c.numHeads, tokens: s.tokens, params: s.params, gflops: Number(s.gflops.toPrecision(4)) };
  });
}

const FID_STUDIES = ['scaling', 'conditioning', 'sampling-compute'];

/**
 * Each chosen model's training curve from the registry: from the study that evaluated
 * it at the most training steps. Models without results are listed in `missing`.
 */
export function curvesFor(
  rows: readonly ResultRow[], models: string[], variant: string, opts: FigureOptions = {},
): { curves: StudyCell[]; missing: string[]; featureNet: string | null; seSeed: number } {
  const curves: StudyCell[] = [];
  const missing: string[] = [];
  let featureNet: string | null = null;
  let seSeed = 0;
  for (const model of models) {
    let best: StudyCell | null = null;
    for (const study of FID_STUDIES) {
      try {
        const d = studyData(rows, study, opts);
        const c = d.cells.find((x) => x.model === model && x.variant === variant);
        if (c && (!best || c.curve.length > best.curve.length)) {
          best = c;
          featureNet = d.featureNet;
          seSeed = d.seed.se;
        }
      } catch (err) {
        if (!(err instanceof MissingDataError)) throw err;
      }
    }
    if (best) curves.push(best);
    else missing.push(model);
  }
  return { curves, missing, featureNet, seSeed };
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

/** FID over training steps of the chosen models (one line each), from the registry. */
export function compareFidSpec(rows: readonly ResultRow[], models: string[], variant: string, opts: FigureOptions = {}): FigureSpec {
  const { curves, missing, featureNet } = curvesFor(rows, models, variant, opts);
  if (!curves.length) throw new MissingDataError('FID curves', 'scaling', `no results for ${models.join(', ')} (${variantLabel(variant)}) in the registry`);
  const data = curves.map((c, i) => ({
    type: 'scatter', mode: 'lines+markers', name: `${c.model} (${formatGflops(c.gflops ?? NaN)} Gflops)`,
    x: c.curve.map((r) => r.train_step), y: c.curve.map((r) => r.fid), line: { color: COLORS[i % COLORS.length], width: 2.5 },
  }));
  const sub = `${variantLabel(variant)}${opts.experiment ? ` · experiment ${opts.experiment}` : ''}${missing.length ? ` · no results: ${missing.join(', ')}` : ''}`;
  return {
    data,
    layout: {
      title: { text: `FID over training of the chosen configs<br><sup>${sub}</sup>`, x: 0.02, xanchor: 'left' },
      width: 820, height: 480, xaxis: { title: { text: 'Training Steps' } }, yaxis: { title: { text: fidAxisTitle(featureNet) } },
      paper_bgcolor: '#ffffff', plot_bgcolor: '#ffffff', margin: { l: 70, r: 30, t: 80, b: 60 },
    },
  };
}

/**
 * Samples of the chosen models side by side (Fig. 7's layout: same noise and labels,
 * one row per model) from their checkpoints in runsDir, decoded by the experiment's
 * autoencoder. Writes `out`; null (and says why) when no chosen model has a checkpoint.
 */
export async function compareSamples(e: ExperimentConfig | null, runsDir: string, models: string[], variant: Variant, out: string): Promise<ModelGrid | null> {
  if (!e) {
    console.log('no experiment config: cannot sample');
    return null;
  }
  const have = models.filter((m) => fs.existsSync(path.join(runsDir, `${m.replace('/', '_')}-${variant}`, 'checkpoint.safetensors')));
  const trained = new Set(e.studies.flatMap((s) => (s.variants.includes(variant) ? s.models : [])));
  for (const m of models.filter((x) => !have.includes(x))) {
    console.log(trained.has(m)
      ? `no samples of ${m}: no checkpoint in ${rel(runsDir)} (checkpoints are not committed; run the ${e.name} experiment to make them)`
      : `no samples of ${m}: experiment ${e.name} does not train it (${variantLabel(variant)})`);
  }
  if (!have.length) return null;
  // The checkpoints exist, so the experiment ran here: its data and autoencoder are cached.
  const data = await prepareTrainingData(e, () => {});
  const study: ExperimentConfig = { ...e, studies: [{ name: 'compare', models: have, variants: [variant] }] };
  return modelGrid(study, { decode: data.decode, source: data.source }, { study: 'compare', runsDir, out });
}

/** A grid of the dataset: one row per class, its first `perClass` images. */
export function datasetGrid(ds: ImageDataset, perClass = 8): Buffer {
  const s = ds.imageSize;
  const stride = s * s * ds.channels;
  const picks = firstPerClass(ds.allLabels(), ds.numClasses, perClass);
  const images = new Uint8Array(ds.numClasses * perClass * stride).fill(255);
  picks.forEach((idx, c) => {
    if (idx.length) images.set(ds.readIndices(idx).images, c * perClass * stride);
  });
  return imageGrid(images, ds.numClasses * perClass, s, perClass, { channels: ds.channels });
}

/** The loss curve of a training run (its loss.csv: step, loss, mse, vb, train_gflops). */
export function lossCurveSpec(lossCsv: string, title = 'Training loss'): FigureSpec {
  const lines = fs.readFileSync(lossCsv, 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').map(Number));
  const trace = (i: number, name: string, color: string) => ({ type: 'scatter', mode: 'lines', name, x: lines.map((r) => r[0]), y: lines.map((r) => r[i]), line: { color } });
  return {
    data: [trace(1, 'loss (mse + vb)', '#d62728'), trace(2, 'mse (noise)', '#1f77b4'), trace(3, 'vb (covariance)', '#2ca02c')],
    layout: {
      title: { text: title, x: 0.02, xanchor: 'left' }, width: 760, height: 400, xaxis: { title: { text: 'Training Steps' } },
      yaxis: { title: { text: 'loss' }, type: 'log' }, paper_bgcolor: '#ffffff', plot_bgcolor: '#ffffff',
    },
  };
}

/** First and last losses of a run's loss.csv (means over up to 10 steps), to say whether training went down. */
export function lossSummary(lossCsv: string): { steps: number; first: number; last: number } {
  const loss = fs.readFileSync(lossCsv, 'utf8').trim().split('\n').slice(1).map((l) => Number(l.split(',')[1]));
  const k = Math.max(1, Math.min(10, Math.floor(loss.length / 2)));
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  return { steps: loss.length, first: mean(loss.slice(0, k)), last: mean(loss.slice(-k)) };
}

/** DiT-XL/2 training speed in the paper: about 5.7 iterations/s of batch 256 on a TPU v3-256 pod. */
export const PAPER_XL2_TRAIN_IMAGES_PER_S = 5.7 * 256;

/**
 * What the comparison shows, in numbers: how time grows with Gflops on this backend,
 * and whether more Gflops gave lower final FID among the chosen configs (Fig. 8's claim).
 */
export function compareFinding(
  speeds: Array<{ model: string; gflops: number; forward_ms: number; train_step_ms: number; train_images_per_s: number }>, curves: StudyCell[], seSeed = 0,
): string[] {
  const out: string[] = [];
  if (speeds.length) {
    const base = [...speeds].sort((a, b) => a.gflops - b.gflops)[0];
    for (const s of speeds) {
      if (s === base) continue;
      out.push(`${s.model}: ${(s.gflops / base.gflops).toFixed(1)}x the Gflops of ${base.model}, ${(s.forward_ms / base.forward_ms).toFixed(1)}x its forward time, ${(s.train_step_ms / base.train_step_ms).toFixed(1)}x its training-step time`);
    }
    const fast = speeds.reduce((a, b) => (b.train_images_per_s > a.train_images_per_s ? b : a));
    out.push(`fastest training here: ${fast.model} at ${fast.train_images_per_s.toFixed(0)} images/s; the paper trains DiT-XL/2 (118.6 Gflops) at about ${PAPER_XL2_TRAIN_IMAGES_PER_S.toFixed(0)} images/s on a TPU v3-256 pod`);
  }
  const done = curves.filter((c) => c.final && c.gflops !== null && c.onScale !== false).sort((a, b) => a.gflops! - b.gflops!);
  const off = curves.filter((c) => c.onScale === false);
  if (off.length) out.push(`not compared (samples off the data's scale): ${off.map((c) => `${c.model} ${c.stdRatio!.toFixed(2)}x`).join(', ')}`);
  if (done.length >= 2) {
    // The findings' rule: a pair counts when it is resolved beyond its standard errors.
    const cmps = [];
    for (let i = 0; i < done.length; i++) {
      for (let j = i + 1; j < done.length; j++) {
        if (done[i].gflops === done[j].gflops) continue;
        const f = (c: StudyCell) => ({ fid: Number(c.final!.fid), se: c.final!.fid_se === null ? null : Number(c.final!.fid_se) });
        cmps.push(compareFid(f(done[j]), f(done[i]), seSeed));
      }
    }
    const t = tally(cmps);
    out.push(`final FID vs Gflops among these configs, the config with more Gflops lower: ${t.agree} agree and resolved, ${t.unresolved} unresolved, ` +
      `${t.against} resolved against (of ${cmps.length} pairs; the paper, Fig. 8: more Gflops, lower FID) -> ${resolvedVerdict(t)} here`);
  } else {
    out.push(`final FID vs Gflops: needs results for at least two on-scale chosen configs (have ${done.length})`);
  }
  return out;
}
