// Paper Fig. 7: samples of every model of a study from the same noise and labels,
// one row per model, so differences come from the models alone.
import * as fs from 'fs';
import * as path from 'path';
import { imageGrid } from '../data/grid';
import { disposeDiT } from '../model/dit';
import { dataStd, sampleScale } from '../sample/health';
import { loadModelFile } from '../sample/load';
import { sampleDiT } from '../sample/sample';
import { backendInfo } from '../backend';
import { writeFileAtomic } from '../util/paths';
import { gitCommit } from '../util/provenance';
import { ExperimentConfig, experimentCells } from '../experiments/config';
import type { Pipeline } from '../experiments/sweep';

export interface ModelGridOptions {
  /** Study whose cells form the rows (default 'scaling'). */
  study?: string;
  runsDir: string;
  /** One column per label (default: every class once). */
  labels?: number[];
  seed?: number;
  samplingSteps?: number;
  out: string;
}

export interface ModelGrid {
  file: string;
  /** Row order: the cell ids, top to bottom. */
  rows: string[];
  labels: number[];
  /** Cells with no checkpoint yet (left out). */
  missing: string[];
  /** Per row: the samples' std over the training data's (sample/health), and a warning when off. */
  scale: Array<{ cell: string; ratio: number; warning: string | null }>;
}

export function modelGrid(e: ExperimentConfig, pipe: Pick<Pipeline, 'decode' | 'source'>, o: ModelGridOptions): ModelGrid {
  const study = o.study ?? 'scaling';
  const cells = experimentCells(e).filter((c) => c.studies.includes(study));
  if (!cells.length) throw new Error(`${e.name} has no study '${study}'`);
  const labels = o.labels ?? Array.from({ length: pipe.source.numClasses }, (_, i) => i);
  const rows: string[] = [];
  const missing: string[] = [];
  const images: Uint8Array[] = [];
  const scale: ModelGrid['scale'] = [];
  const refStd = dataStd(pipe.source);
  let side = 0;
  for (const cell of cells) {
    const ckpt = path.join(o.runsDir, cell.id, 'checkpoint.safetensors');
    if (!fs.existsSync(ckpt)) {
      missing.push(cell.id);
      continue;
    }
    const { model, diffusion } = loadModelFile(ckpt, { weights: 'ema' });
    try {
      // The same seed gives every model the same x_T and the same step noise.
      const s = sampleDiT(model, {
        diffusion, labels, sampler: e.eval.sampler, steps: o.samplingSteps ?? e.eval.samplingSteps, cfgScale: 1,
        guidanceChannels: e.eval.guidanceChannels, seed: o.seed ?? 0,
      });
      scale.push({ cell: cell.id, ...sampleScale(s.latents, refStd) });
      const img = pipe.decode(s.latents, s.shape);
      side = Math.round(Math.sqrt(img.length / labels.length / 3));
      images.push(img);
      rows.push(cell.id);
    } finally {
      disposeDiT(model);
    }
  }
  if (!rows.length) throw new Error(`no checkpoints for study '${study}' in ${o.runsDir}: run the sweep first`);
  const all = new Uint8Array(images.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of images) {
    all.set(a, at);
    at += a.length;
  }
  writeFileAtomic(o.out, imageGrid(all, rows.length * labels.length, side, labels.length, { pad: 1 }));
  return { file: o.out, rows, labels, missing, scale };
}

/** The cells of the scaling study that have a checkpoint in runsDir (Fig. 7 can be drawn from them). */
export function scalingCheckpoints(e: ExperimentConfig, runsDir: string): string[] {
  return experimentCells(e)
    .filter((c) => c.studies.includes('scaling') && fs.existsSync(path.join(runsDir, c.id, 'checkpoint.safetensors')))
    .map((c) => c.id);
}

/**
 * Fig. 7 of an experiment: the grid of its scaling study's final EMA checkpoints as
 * `<figuresDir>/<experiment>-fig7-samples.png`, and beside it a JSON companion with each
 * model's samples' std over the data's (sample/health) and provenance.
 */
export function writeFig7(e: ExperimentConfig, pipe: Pick<Pipeline, 'decode' | 'source'>, runsDir: string, figuresDir: string, log: (m: string) => void): ModelGrid {
  const out = path.join(figuresDir, `${e.name}-fig7-samples.png`);
  const grid = modelGrid(e, pipe, { runsDir, out });
  log(`Fig. 7 sample grid (rows: ${grid.rows.join(', ')}) -> ${out}`);
  log(`samples' std over the data's: ${grid.scale.map((r) => `${r.cell} ${r.ratio.toFixed(2)}`).join(', ')}`);
  for (const r of grid.scale) if (r.warning) log(`warning: ${r.cell}: ${r.warning}`);
  writeFileAtomic(out.replace(/\.png$/, '.json'), JSON.stringify({
    experiment: e.name, rows: grid.rows, labels: grid.labels, missing: grid.missing, sampler: e.eval.sampler,
    samplingSteps: e.eval.samplingSteps, seed: 0, sampleStdOverData: Object.fromEntries(grid.scale.map((r) => [r.cell, Number(r.ratio.toFixed(4))])),
    gitCommit: gitCommit(), backend: backendInfo()?.name ?? 'unknown', timestamp: new Date().toISOString(),
  }, null, 1) + '\n');
  return grid;
}
