// The scale of an experiment's FID: the same evaluation (sample count, feature network,
// reference set) applied to inputs of known quality, so a model's number can be read
// against them. Three rows, study 'calibration':
//   real-images       held-out training images (not in the reference prefix): the floor
//                     that finite samples leave even for a perfect model;
//   autoencoder       the same images encoded and decoded: the floor of any latent model;
//   gaussian-latents  N(0, I) drawn in model space and decoded: what a model that
//                     learned nothing scores.
import * as fs from 'fs';
import { backendInfo } from '../backend';
import { readResults, ResultRow, appendResults } from '../results/registry';
import { configHash, gitCommit } from '../util/provenance';
import { Rng } from '../util/rng';
import { ExperimentConfig } from './config';
import { BuiltPipeline } from './pipeline';

export const CALIBRATION_STUDY = 'calibration';
export const CALIBRATION_CELLS = ['real-images', 'autoencoder', 'gaussian-latents'] as const;
export type CalibrationCell = (typeof CALIBRATION_CELLS)[number];

export function calibrationHash(e: ExperimentConfig, pipe: Pick<BuiltPipeline, 'source' | 'featureNet'>): string {
  return configHash({ calibration: 1, eval: { ...e.eval, atSteps: undefined }, data: pipe.source.id, featureNet: pipe.featureNet });
}

/**
 * Evaluates the calibration inputs that `resultsFile` does not hold yet for this
 * experiment's settings, appends their rows and returns them.
 */
export async function runCalibration(
  e: ExperimentConfig,
  pipe: Pick<BuiltPipeline, 'source' | 'featureNet' | 'decode' | 'evaluate' | 'dataset'>,
  resultsFile: string,
  log: (m: string) => void = () => {},
): Promise<Array<Partial<ResultRow>>> {
  const hash = calibrationHash(e, pipe);
  const done = new Set(
    fs.existsSync(resultsFile)
      ? readResults(resultsFile).filter((r) => r.experiment === e.name && r.study === CALIBRATION_STUDY && r.config_hash === hash).map((r) => String(r.cell))
      : [],
  );
  const n = e.eval.numSamples;
  const start = e.eval.refImages; // the first refImages images are the reference set
  if (start + n > pipe.dataset.size) {
    log(`calibration skipped: the dataset has ${pipe.dataset.size} images, ${start + n} needed (reference + held-out)`);
    return [];
  }
  const [c, h, w] = pipe.source.shape;
  const shape: [number, number, number, number] = [n, c, h, w];
  const held = Int32Array.from({ length: n }, (_, i) => start + i);
  const inputs: Record<CalibrationCell, () => Uint8Array> = {
    'real-images': () => pipe.dataset.readIndices(held).images,
    autoencoder: () => pipe.decode(pipe.source.read(held).x, shape),
    'gaussian-latents': () => pipe.decode(new Rng(e.eval.seed).fillNormal(new Float32Array(n * c * h * w)), shape),
  };
  const rows: Array<Partial<ResultRow>> = [];
  for (const cell of CALIBRATION_CELLS) {
    if (done.has(cell)) continue;
    const t0 = Date.now();
    const m = await pipe.evaluate(inputs[cell](), n);
    const row: Partial<ResultRow> = {
      experiment: e.name, study: CALIBRATION_STUDY, cell, model: cell, num_samples: n, seed: e.eval.seed,
      feature_net: pipe.featureNet, ...m, config_hash: hash, data_id: pipe.source.id, git_commit: gitCommit(),
      backend: backendInfo()?.name ?? 'unknown', wall_time_s: (Date.now() - t0) / 1000, timestamp: new Date().toISOString(),
    };
    appendResults(resultsFile, [row]);
    rows.push(row);
    log(`calibration ${cell}: FID ${typeof m.fid === 'number' ? m.fid.toFixed(2) : 'n/a'} (${n} samples)`);
  }
  return rows;
}
