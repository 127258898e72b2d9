// The primary feature spaces of the kit's studies: z-scored [default-CNN pool features ||
// 8x8x3 pixel means], and in 'study-contrast' also || 4x4x3 pixel stds. The CNN's pool
// features see content (class, shape) but are nearly blind to scale, contrast and colour
// errors: a x10 contrast error scored below a sigma-1 blur, decoded N(0, I) x 25 latents
// better than N(0, I). The pixel means see exactly those. The cell stds see local contrast,
// which the means average away: with a 10,000-step autoencoder, whose decoder turns N(0, I)
// into images whose cell means are farther off than those of N(0, I) x 25, only they order
// those two rungs (results/pilots/space-contrast.csv). Each dimension is z-scored by the
// reference set's mean and std, so the parts weigh by their number of dimensions, not their
// units. The calibration ladder (experiments/calibration.ts) checks that a space orders known
// degradations.
import { createHash } from 'crypto';
import { FeatureNet } from '../features/network';
import { FidStatistics, featureStats, frechetDistance } from '../metrics/fid';
import { classAccuracy } from '../metrics/class_accuracy';
import { inceptionScore } from '../metrics/inception_score';
import { featureMatrix, precisionRecall } from '../metrics/precision_recall';
import { derivedSeed, Rng } from '../util/rng';
import { extractFeatures, ReferenceFeatures } from './extract';
import { imageSource } from './inputs';

/** Side of the pixel-mean grid: 8 x 8 cells x 3 channels = 192 values per image. */
export const PIXEL_GRID = 8;

/**
 * The pixel statistics each study space adds to the CNN's pool features: the means of a
 * meanGrid x meanGrid grid of cells, and (stdGrid) the stds of a coarser grid, per channel.
 * 'study' is the space of the 2026-12-01 design (results/mini.csv); 'study-contrast' adds
 * 4 x 4 x 3 = 48 cell stds, few enough that 1000 real images still score near 5.
 */
export interface PixelStatsSpec {
  meanGrid: number;
  stdGrid: number | null;
}
export type StudySpaceName = 'study' | 'study-contrast';
export const STUDY_SPACES: Readonly<Record<StudySpaceName, Readonly<PixelStatsSpec>>> = {
  study: { meanGrid: PIXEL_GRID, stdGrid: null },
  'study-contrast': { meanGrid: PIXEL_GRID, stdGrid: 4 },
};

export function isStudySpace(space: string | undefined): space is StudySpaceName {
  return space !== undefined && Object.prototype.hasOwnProperty.call(STUDY_SPACES, space);
}

/** Per-channel mean (and, with std, standard deviation) of each of grid x grid cells, in [0, 1]. */
function cellStats(images: Uint8Array, n: number, h: number, w: number, grid: number, std: boolean, what: string): Float32Array {
  if (images.length !== n * h * w * 3) throw new Error(`${what}: ${images.length} bytes are not ${n} RGB images of ${h}x${w}`);
  if (h % grid || w % grid) throw new Error(`${what}: ${h}x${w} images do not split into a ${grid}x${grid} grid`);
  const ch = h / grid, cw = w / grid, d = grid * grid * 3;
  const out = new Float32Array(n * d);
  // Byte sums are exact in float64, so the means round as one product (as they always have).
  const acc = new Float64Array(d), acc2 = new Float64Array(d);
  const m = ch * cw, norm = 1 / (255 * m);
  for (let i = 0; i < n; i++) {
    acc.fill(0);
    acc2.fill(0);
    const base = i * h * w * 3;
    for (let y = 0; y < h; y++) {
      const gy = Math.floor(y / ch);
      for (let x = 0; x < w; x++) {
        const cell = (gy * grid + Math.floor(x / cw)) * 3;
        const p = base + (y * w + x) * 3;
        for (let c = 0; c < 3; c++) {
          const v = images[p + c];
          acc[cell + c] += v;
          if (std) acc2[cell + c] += v * v;
        }
      }
    }
    // Population std of the cell's m pixels from m sum(b^2) - (sum b)^2 = m^2 var, an exact
    // integer (so a flat cell gives exactly 0, not the residue of E[b^2] - E[b]^2).
    for (let k = 0; k < d; k++) out[i * d + k] = std ? Math.sqrt(m * acc2[k] - acc[k] * acc[k]) * norm : acc[k] * norm;
  }
  return out;
}

/** Mean of each of grid x grid cells per channel, in [0, 1]: n x (grid * grid * 3), row-major. */
export function pixelMeans(images: Uint8Array, n: number, h: number, w: number, grid = PIXEL_GRID): Float32Array {
  return cellStats(images, n, h, w, grid, false, 'pixelMeans');
}

/** Standard deviation of each of grid x grid cells per channel (local contrast), in [0, 0.5]. */
export function pixelStds(images: Uint8Array, n: number, h: number, w: number, grid: number): Float32Array {
  return cellStats(images, n, h, w, grid, true, 'pixelStds');
}

/** A space's pixel statistics of each image: [means || stds], n x (meanGrid^2 * 3 + stdGrid^2 * 3). */
export function pixelStats(images: Uint8Array, n: number, h: number, w: number, spec: PixelStatsSpec): Float32Array {
  const means = pixelMeans(images, n, h, w, spec.meanGrid);
  return spec.stdGrid === null ? means : concatRows(means, pixelStds(images, n, h, w, spec.stdGrid), n, spec.meanGrid ** 2 * 3, spec.stdGrid ** 2 * 3);
}

/** The z-scoring of a space: per-dimension mean and std of the reference set. */
export interface StudySpace {
  /** Identifies the space in the results' feature_net column: CNN id, pixel grid, z-scoring. */
  id: string;
  net: FeatureNet;
  /** The pixel statistics beside the pool features. */
  pixels: PixelStatsSpec;
  mean: Float64Array;
  std: Float64Array;
  dim: number;
}

/** [a || b] rows, row-major n x (da + db). */
function concatRows(a: Float32Array, b: Float32Array, n: number, da: number, db: number): Float32Array {
  const d = da + db;
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    out.set(a.subarray(i * da, (i + 1) * da), i * d);
    out.set(b.subarray(i * db, (i + 1) * db), i * d + da);
  }
  return out;
}

/** The space whose z-scoring comes from the reference set's pool features and pixel statistics (pixelStats). */
export function studySpace(net: FeatureNet, refPool: Float32Array, refPix: Float32Array, n: number, pixels: PixelStatsSpec = STUDY_SPACES.study): StudySpace {
  const dx = refPix.length / n;
  const want = pixels.meanGrid ** 2 * 3 + (pixels.stdGrid === null ? 0 : pixels.stdGrid ** 2 * 3);
  if (dx !== want) throw new Error(`studySpace: ${dx} pixel statistics per image, the space has ${want}`);
  const raw = concatRows(refPool, refPix, n, net.poolDim, dx);
  const dim = net.poolDim + dx;
  const mean = new Float64Array(dim), std = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let k = 0; k < dim; k++) mean[k] += raw[i * dim + k];
  for (let k = 0; k < dim; k++) mean[k] /= n;
  for (let i = 0; i < n; i++) for (let k = 0; k < dim; k++) std[k] += (raw[i * dim + k] - mean[k]) ** 2;
  // A constant dimension (std 0) would divide by zero: it carries no information, weight 1.
  for (let k = 0; k < dim; k++) std[k] = Math.sqrt(std[k] / Math.max(1, n - 1)) || 1;
  const h = createHash('sha256').update(Buffer.from(mean.buffer)).update(Buffer.from(std.buffer)).digest('hex').slice(0, 8);
  const pix = `pix${pixels.meanGrid}${pixels.stdGrid === null ? '' : `+sd${pixels.stdGrid}`}`;
  return { id: `${net.id}+${pix}-z${h}`, net, pixels, mean, std, dim };
}

/** [pool || pixel statistics] rows z-scored by the space's reference mean and std. */
function zScored(space: StudySpace, pool: Float32Array, pix: Float32Array, n: number): Float32Array {
  const z = concatRows(pool, pix, n, space.net.poolDim, pix.length / n);
  const d = space.dim;
  for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) z[i * d + k] = (z[i * d + k] - space.mean[k]) / space.std[k];
  return z;
}

/** Features of images in the space (z-scored), plus the CNN's own outputs. */
export function spaceFeatures(space: StudySpace, images: Uint8Array, n: number, h: number, w: number) {
  const f = extractFeatures(space.net, imageSource(images, n, h, w));
  return { cnn: f, z: zScored(space, f.pool, pixelStats(images, n, h, w, space.pixels), n) };
}

/**
 * Bootstrap standard error of FID over the samples (the reference is fixed and common to
 * every model, so its noise does not enter comparisons): the sd of FID over `rounds`
 * resamples with replacement.
 */
export function bootstrapFidSe(features: Float32Array, n: number, d: number, ref: FidStatistics, rounds: number, seed = 0): number {
  if (rounds < 2) throw new Error(`bootstrapFidSe: needs at least 2 rounds, got ${rounds}`);
  const rng = new Rng(derivedSeed(seed + 7919));
  const buf = new Float32Array(n * d);
  const vals: number[] = [];
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < n; i++) {
      const j = rng.int(n);
      buf.set(features.subarray(j * d, (j + 1) * d), i * d);
    }
    const s = featureStats(buf, n, d);
    vals.push(frechetDistance(s.mu, s.sigma, ref.mu, ref.sigma));
  }
  const m = vals.reduce((a, b) => a + b, 0) / rounds;
  return Math.sqrt(vals.reduce((a, b) => a + (b - m) ** 2, 0) / (rounds - 1));
}

/** The reference side of a study evaluation. */
export interface StudyReference {
  space: StudySpace;
  /** Reference features in the space, and their statistics. */
  z: Float32Array;
  zStats: FidStatistics;
  /** The CNN's own statistics (the secondary FID and sFID). */
  cnn: ReferenceFeatures;
  n: number;
}

export function studyReference(net: FeatureNet, cnn: ReferenceFeatures, refImages: Uint8Array, h: number, w: number, name: StudySpaceName = 'study'): StudyReference {
  const n = cnn.n;
  const pixels = STUDY_SPACES[name];
  const pix = pixelStats(refImages, n, h, w, pixels);
  const space = studySpace(net, cnn.pool.data, pix, n, pixels);
  const z = zScored(space, cnn.pool.data, pix, n);
  return { space, z, zStats: featureStats(z, n, space.dim), cnn, n };
}

export interface StudyMetrics {
  /** FID in the study space (the primary metric) and its bootstrap standard error. */
  fid: number;
  fid_se: number | null;
  /** FID of the CNN's pool features alone (the secondary metric). */
  fid_cnn: number;
  sfid: number;
  inception_score: number;
  /** Precision / recall (k = 3 manifolds) in the study space. */
  precision: number;
  recall: number;
  /** Share of samples the CNN classifies as the class they were generated for (null without labels). */
  class_accuracy: number | null;
}

export interface StudyMetricOptions {
  /** Labels the samples were generated for (class-conditional accuracy). */
  labels?: Int32Array;
  /** Bootstrap rounds for fid_se (0: none). */
  bootstrap?: number;
  seed?: number;
}

/** Every metric of uint8 NHWC images against a study reference. */
export async function studyMetrics(ref: StudyReference, images: Uint8Array, n: number, h: number, w: number, o: StudyMetricOptions = {}): Promise<StudyMetrics> {
  const { space } = ref;
  const { cnn, z } = spaceFeatures(space, images, n, h, w);
  const zs = featureStats(z, n, space.dim);
  const fid = frechetDistance(zs.mu, zs.sigma, ref.zStats.mu, ref.zStats.sigma);
  const ps = featureStats(cnn.pool, n, space.net.poolDim);
  const fidCnn = frechetDistance(ps.mu, ps.sigma, ref.cnn.poolStats.mu, ref.cnn.poolStats.sigma);
  const ss = featureStats(cnn.spatial, n, space.net.spatialDim);
  const sfid = frechetDistance(ss.mu, ss.sigma, ref.cnn.spatialStats.mu, ref.cnn.spatialStats.sigma);
  const is = inceptionScore(cnn.logits, space.net.numClasses, { splitSize: n }).mean;
  const pr = await precisionRecall(featureMatrix(ref.z, ref.n, space.dim, 'reference features'), featureMatrix(z, n, space.dim, 'sample features'));
  let accuracy: number | null = null;
  if (o.labels) {
    if (o.labels.length !== n) throw new Error(`studyMetrics: ${o.labels.length} labels for ${n} samples`);
    accuracy = classAccuracy(cnn.logits, space.net.numClasses, o.labels);
  }
  const rounds = o.bootstrap ?? 0;
  const se = rounds >= 2 ? bootstrapFidSe(z, n, space.dim, ref.zStats, rounds, o.seed ?? 0) : null;
  return { fid, fid_se: se, fid_cnn: fidCnn, sfid, inception_score: is, precision: pr.precision, recall: pr.recall, class_accuracy: accuracy };
}
