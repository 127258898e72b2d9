// The scale of an experiment's FID, and a test of the feature space it is measured in:
// the same evaluation (sample count, feature network, reference set) applied to inputs of
// known quality, so a model's number can be read against them, and a ladder of known
// degradations along which a trustworthy FID must rise. One row per rung, study
// 'calibration', cell = model = the rung's name (CALIBRATION_LADDER):
//   real-images       held-out real images (not in the reference set): the floor that
//                     finite samples leave even for a perfect model;
//   autoencoder       the same images encoded and decoded: the floor of any latent model;
//   noise-S, blur-S, contrast-K, greyscale, channel-permutation
//                     the held-out images degraded (lib/data/degrade.ts);
//   one-class, five-classes
//                     real images of class 0 only / classes 0-4 only: perfect images
//                     without the data's diversity (a collapsed model);
//   background-only   the generator's backgrounds without objects: the data's statistics
//                     with nothing in them to recognise;
//   latents-xK        the held-out images' latents times K, decoded: a model whose samples
//                     have the wrong scale;
//   gaussian-latents  N(0, I) drawn in model space and decoded: what a model that
//                     learned nothing scores; gaussian-latents-x25: the same, 25 times
//                     larger (a model that diverged).
// ladderChecks says whether the experiment's FID orders these as it must.
import { backendInfo } from '../backend';
import { Batch } from '../data/dataset';
import { addNoise, gaussianBlur, greyscale, permuteChannels, scaleContrast } from '../data/degrade';
import { renderBackgrounds, SYNTHETIC_CLASSES, SyntheticDataset, syntheticLabel } from '../data/synthetic';
import { appendResultsOrKeep, readResultsAndPending, ResultRow } from '../results/registry';
import { configHash, gitCommit } from '../util/provenance';
import { Rng } from '../util/rng';
import { ExperimentConfig } from './config';
import { BuiltPipeline } from './pipeline';

export const CALIBRATION_STUDY = 'calibration';

export type LadderKind =
  | 'floor' | 'noise' | 'blur' | 'contrast-down' | 'contrast-up' | 'greyscale' | 'channels'
  | 'classes' | 'background' | 'latent-scale-down' | 'latent-scale' | 'gaussian';

export interface LadderRung {
  kind: LadderKind;
  rung: string;
  /**
   * Within a kind, larger is more degraded: noise and blur sigma, contrast factor k (1/k
   * below 1), latent factor (1/k below 1), classes left out of the ten, the decoded
   * noise's scale; 1 for single-step kinds, 0/1 for real images/autoencoder.
   */
  level: number;
}

/** The rungs in evaluation order, grouped by kind, each kind in increasing degradation. */
export const CALIBRATION_LADDER: readonly LadderRung[] = [
  { kind: 'floor', rung: 'real-images', level: 0 },
  { kind: 'floor', rung: 'autoencoder', level: 1 },
  ...[10, 20, 40, 80].map((s) => ({ kind: 'noise' as const, rung: `noise-${s}`, level: s })),
  ...[1, 1.5, 2, 3].map((s) => ({ kind: 'blur' as const, rung: `blur-${s}`, level: s })),
  { kind: 'contrast-down', rung: 'contrast-0.5', level: 2 },
  ...[1.5, 3, 10].map((k) => ({ kind: 'contrast-up' as const, rung: `contrast-${k}`, level: k })),
  { kind: 'greyscale', rung: 'greyscale', level: 1 },
  { kind: 'channels', rung: 'channel-permutation', level: 1 },
  { kind: 'classes', rung: 'five-classes', level: 5 },
  { kind: 'classes', rung: 'one-class', level: 9 },
  { kind: 'background', rung: 'background-only', level: 1 },
  { kind: 'latent-scale-down', rung: 'latents-x0.5', level: 2 },
  { kind: 'latent-scale', rung: 'latents-x3', level: 3 },
  { kind: 'latent-scale', rung: 'latents-x10', level: 10 },
  { kind: 'gaussian', rung: 'gaussian-latents', level: 1 },
  { kind: 'gaussian', rung: 'gaussian-latents-x25', level: 25 },
];

/** Every rung's name (the `cell` of its row), in ladder order. */
export const CALIBRATION_CELLS: readonly string[] = CALIBRATION_LADDER.map((r) => r.rung);

/** The original three rungs, the reference lines that figures draw. */
export const CALIBRATION_REFERENCE_LINES = ['real-images', 'autoencoder', 'gaussian-latents'] as const;

export function calibrationHash(e: ExperimentConfig, pipe: Pick<BuiltPipeline, 'source' | 'featureNet'>): string {
  return configHash({ calibration: 1, eval: { ...e.eval, atSteps: undefined }, data: pipe.source.id, featureNet: pipe.featureNet });
}

/**
 * The first n images of the synthetic dataset `seed` whose class is in `classes`: indices
 * 0, 1, 2, ... are walked by label alone and only the kept ones are rendered.
 */
export function syntheticClassImages(seed: number, classes: readonly number[], n: number, size: number): Batch {
  const want = new Set(classes);
  if (!want.size || [...want].some((k) => !Number.isInteger(k) || k < 0 || k >= SYNTHETIC_CLASSES.length)) {
    throw new Error(`syntheticClassImages: classes must be a non-empty subset of 0..${SYNTHETIC_CLASSES.length - 1}, got ${classes.join(',')}`);
  }
  const idx: number[] = [];
  for (let i = 0; idx.length < n; i++) if (want.has(syntheticLabel(seed, i))) idx.push(i);
  return new SyntheticDataset({ seed, num: idx.length ? idx[idx.length - 1] + 1 : 0, size }).readIndices(idx);
}

/** Seed of the synthetic images the class and background rungs draw (null: the data is not synthetic). */
export function calibrationSyntheticSeed(e: ExperimentConfig): number | null {
  if (e.data.kind !== 'synthetic') return null;
  return (e.eval.refSeed ?? e.data.seed) + 1000;
}

/**
 * Evaluates the calibration rungs that `resultsFile` does not hold yet for this
 * experiment's settings, appends their rows and returns them.
 */
export async function runCalibration(
  e: ExperimentConfig,
  pipe: Pick<BuiltPipeline, 'source' | 'featureNet' | 'decode' | 'encode' | 'evaluate' | 'dataset' | 'heldOut'>,
  resultsFile: string,
  log: (m: string) => void = () => {},
): Promise<Array<Partial<ResultRow>>> {
  const hash = calibrationHash(e, pipe);
  const mine = (rows: ResultRow[]) => rows.filter((r) => r.experiment === e.name && r.study === CALIBRATION_STUDY && r.config_hash === hash);
  const done = new Set(mine(readResultsAndPending(resultsFile)).map((r) => String(r.cell)));
  if (CALIBRATION_CELLS.every((c) => done.has(c))) return [];
  const n = e.eval.finalNumSamples ?? e.eval.numSamples;
  let held: { images: Uint8Array; labels: Int32Array };
  try {
    held = pipe.heldOut(n);
  } catch (err) {
    log(`calibration skipped: ${(err as Error).message}`);
    return [];
  }
  const [c, h, w] = pipe.source.shape;
  const shape: [number, number, number, number] = [n, c, h, w];
  const s = e.data.size;
  const synSeed = calibrationSyntheticSeed(e);
  // Encoding runs the autoencoder over n images: once, for every latent rung.
  let latents: Float32Array | null = null;
  const encoded = () => (latents ??= pipe.encode(held.images, n));
  const scaled = (k: number) => pipe.decode(encoded().map((v) => v * k), shape);
  const noise = () => new Rng(e.eval.seed).fillNormal(new Float32Array(n * c * h * w));
  const onHeld = (f: (x: Uint8Array) => Uint8Array) => () => ({ images: f(held.images), labels: held.labels });
  const synthetic = (f: (seed: number) => Batch) => () => (synSeed === null ? null : f(synSeed));
  const inputs: Record<string, () => Batch | null> = {
    'real-images': onHeld((x) => x),
    autoencoder: onHeld(() => pipe.decode(encoded(), shape)),
    // One noise seed for every sigma: the rungs differ in scale only, not in draw.
    ...Object.fromEntries([10, 20, 40, 80].map((sg) => [`noise-${sg}`, onHeld((x) => addNoise(x, sg, e.eval.seed))])),
    ...Object.fromEntries([1, 1.5, 2, 3].map((sg) => [`blur-${sg}`, onHeld((x) => gaussianBlur(x, n, s, s, 3, sg))])),
    ...Object.fromEntries([0.5, 1.5, 3, 10].map((k) => [`contrast-${k}`, onHeld((x) => scaleContrast(x, k))])),
    greyscale: onHeld(greyscale),
    'channel-permutation': onHeld((x) => permuteChannels(x)),
    'five-classes': synthetic((seed) => syntheticClassImages(seed, [0, 1, 2, 3, 4], n, s)),
    'one-class': synthetic((seed) => syntheticClassImages(seed, [0], n, s)),
    'background-only': synthetic((seed) => renderBackgrounds(seed, 0, n, s)),
    'latents-x0.5': onHeld(() => scaled(0.5)),
    'latents-x3': onHeld(() => scaled(3)),
    'latents-x10': onHeld(() => scaled(10)),
    'gaussian-latents': onHeld(() => pipe.decode(noise(), shape)),
    'gaussian-latents-x25': onHeld(() => pipe.decode(noise().map((v) => v * 25), shape)),
  };
  const rows: Array<Partial<ResultRow>> = [];
  for (const cell of CALIBRATION_CELLS) {
    if (done.has(cell)) continue;
    const t0 = Date.now();
    const input = inputs[cell]();
    if (!input) {
      log(`calibration ${cell} skipped: it draws from the synthetic generator and the data is a shard`);
      continue;
    }
    const m = await pipe.evaluate(input.images, n, input.labels);
    const row: Partial<ResultRow> = {
      experiment: e.name, study: CALIBRATION_STUDY, cell, model: cell, num_samples: n, seed: e.eval.seed,
      feature_net: pipe.featureNet, ...m, config_hash: hash, data_id: pipe.source.id, git_commit: gitCommit(),
      backend: backendInfo()?.name ?? 'unknown', wall_time_s: (Date.now() - t0) / 1000, timestamp: new Date().toISOString(),
    };
    // Written once (a rung another process wrote meanwhile is not added again), or kept pending.
    if (!appendResultsOrKeep(resultsFile, [row], { unique: true, warn: (m) => log(`warning: ${m}`) }).length) continue;
    rows.push(row);
    log(`calibration ${cell}: FID ${typeof m.fid === 'number' ? m.fid.toFixed(2) : 'n/a'} (${n} samples)`);
  }
  if (rows.length) {
    const failed = ladderChecks(mine(readResultsAndPending(resultsFile)).map((r) => ({ cell: String(r.cell), fid: r.fid as number | null, fid_se: r.fid_se as number | null })))
      .filter((k) => !k.pass);
    log(failed.length ? `calibration ladder: ${failed.length} check(s) failed: ${failed.map((k) => `${k.check} (${k.detail})`).join('; ')}` : 'calibration ladder: every check passed');
  }
  return rows;
}

export interface LadderCheck {
  check: string;
  pass: boolean;
  detail: string;
}

/**
 * The pairs (worse, better) that must differ by more than their noise: the two off-scale
 * failures a scale-blind feature space let pass (the previous CNN-only FID scored x10
 * contrast below a sigma-1 blur, and decoded N(0, I) x 25 below N(0, I)) must score worse
 * than the floor and, for decoded noise, than unscaled decoded noise. x10 contrast is not
 * required to be worse than decoded noise: saturated but recognisable images and noise are
 * failures of different kinds, with no order between them.
 */
const CLEARLY_WORSE: ReadonlyArray<[string, string]> = [
  ['contrast-10', 'autoencoder'],
  ['gaussian-latents-x25', 'autoencoder'],
  ['gaussian-latents-x25', 'gaussian-latents'],
];

const fmt = (v: number) => v.toFixed(2);

/**
 * Whether an experiment's calibration FIDs order the ladder as a trustworthy FID must:
 * (1) within each kind, FID does not fall as the level rises (ties allowed: an identity
 * autoencoder gives back the real images exactly); (2) contrast-10 is worse than the autoencoder,
 * gaussian-latents-x25 worse than the autoencoder and than gaussian-latents, by more than
 * 1.96 sqrt(se1² + se2²) when both rows have fid_se (else by any margin). A rung without a
 * row (or without an FID) fails every check that needs it, naming it. When a cell has
 * several rows the last one counts.
 */
export function ladderChecks(rows: ReadonlyArray<{ cell: string; fid: number | null; fid_se?: number | null }>): LadderCheck[] {
  const by = new Map<string, { fid: number; se: number | null }>();
  for (const r of rows) {
    if (typeof r.fid === 'number' && Number.isFinite(r.fid)) by.set(r.cell, { fid: r.fid, se: typeof r.fid_se === 'number' && Number.isFinite(r.fid_se) ? r.fid_se : null });
    else by.delete(r.cell);
  }
  const missing = (names: readonly string[]) => names.filter((x) => !by.has(x));
  const out: LadderCheck[] = [];
  const kinds = [...new Set(CALIBRATION_LADDER.map((r) => r.kind))];
  for (const kind of kinds) {
    const rungs = CALIBRATION_LADDER.filter((r) => r.kind === kind).sort((a, b) => a.level - b.level);
    const check = `${kind}: FID rises with the level`;
    const absent = missing(rungs.map((r) => r.rung));
    if (absent.length) {
      out.push({ check, pass: false, detail: `missing rung${absent.length > 1 ? 's' : ''} ${absent.join(', ')}` });
      continue;
    }
    const chain = rungs.map((r) => `${r.rung} ${fmt(by.get(r.rung)!.fid)}`).join(' <= ');
    const falls: string[] = [];
    for (let i = 1; i < rungs.length; i++) {
      if (by.get(rungs[i].rung)!.fid < by.get(rungs[i - 1].rung)!.fid) falls.push(`${rungs[i].rung} below ${rungs[i - 1].rung}`);
    }
    out.push({ check, pass: falls.length === 0, detail: falls.length ? `${chain}: ${falls.join(', ')}` : chain });
  }
  for (const [worse, better] of CLEARLY_WORSE) {
    const check = `${worse} worse than ${better}`;
    const absent = missing([worse, better]);
    if (absent.length) {
      out.push({ check, pass: false, detail: `missing rung${absent.length > 1 ? 's' : ''} ${absent.join(', ')}` });
      continue;
    }
    const a = by.get(worse)!, b = by.get(better)!;
    const margin = a.se !== null && b.se !== null ? 1.96 * Math.sqrt(a.se * a.se + b.se * b.se) : 0;
    const d = a.fid - b.fid;
    out.push({
      check, pass: d > margin,
      detail: `${worse} ${fmt(a.fid)} - ${better} ${fmt(b.fid)} = ${fmt(d)}${margin > 0 ? `, needs > ${fmt(margin)} (1.96 sqrt(se1² + se2²))` : a.se !== null || b.se !== null ? ' (an se is missing: any margin)' : ''}`,
    });
  }
  return out;
}
