// The primary feature space of the kit's studies: z-scored [default-CNN pool features ||
// 8x8x3 pixel means]. The CNN's pool features see content (class, shape) but are nearly
// blind to scale, contrast and colour errors: a x10 contrast error scored below a
// sigma-1 blur, decoded N(0, I) x 25 latents better than N(0, I). The pixel means see
// exactly those. Each dimension is z-scored by the reference set's mean and std, so the
// two halves weigh by their number of dimensions, not their units. The calibration
// ladder (experiments/calibration.ts) checks that this space orders known degradations.
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

/** Mean of each of grid x grid cells per channel, in [0, 1]: n x (grid * grid * 3), row-major. */
export function pixelMeans(images: Uint8Array, n: number, h: number, w: number, grid = PIXEL_GRID): Float32Array {
  if (images.length !== n * h * w * 3) throw new Error(`pixelMeans: ${images.length} bytes are not ${n} RGB images of ${h}x${w}`);
  if (h % grid || w % grid) throw new Error(`pixelMeans: ${h}x${w} images do not split into a ${grid}x${grid} grid`);
  const ch = h / grid, cw = w / grid, d = grid * grid * 3;
  const out = new Float32Array(n * d);
  const acc = new Float64Array(d);
  const norm = 1 / (255 * ch * cw);
  for (let i = 0; i < n; i++) {
    acc.fill(0);
    const base = i * h * w * 3;
    for (let y = 0; y < h; y++) {
      const gy = Math.floor(y / ch);
      for (let x = 0; x < w; x++) {
        const cell = (gy * grid + Math.floor(x / cw)) * 3;
        const p = base + (y * w + x) * 3;
        acc[cell] += images[p];
        acc[cell + 1] += images[p + 1];
        acc[cell + 2] += images[p + 2];
      }
    }
    for (let k = 0; k < d; k++) out[i * d + k] = acc[k] * norm;
  }
  return out;
}

/** The z-scoring of a space: per-dimension mean and std of the reference set. */
export interface StudySpace {
  /** Identifies the space in the results' feature_net column: CNN id, pixel grid, z-scoring. */
  id: string;
  net: FeatureNet;
  mean: Float64Array;
  std: Float64Array;
  dim: number;
}

/** [pool || pixel means] rows, row-major n x (poolDim + grid^2 * 3). */
function concatRows(pool: Float32Array, pix: Float32Array, n: number, dp: number, dx: number): Float32Array {
  const d = dp + dx;
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    out.set(pool.subarray(i * dp, (i + 1) * dp), i * d);
    out.set(pix.subarray(i * dx, (i + 1) * dx), i * d + dp);
  }
  return out;
}

/** The space whose z-scoring comes from the reference set's pool features and pixel means. */
export function studySpace(net: FeatureNet, refPool: Float32Array, refPix: Float32Array, n: number): StudySpace {
  const dx = refPix.length / n;
  const raw = concatRows(refPool, refPix, n, net.poolDim, dx);
  const dim = net.poolDim + dx;
  const mean = new Float64Array(dim), std = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let k = 0; k < dim; k++) mean[k] += raw[i * dim + k];
  for (let k = 0; k < dim; k++) mean[k] /= n;
  for (let i = 0; i < n; i++) for (let k = 0; k < dim; k++) std[k] += (raw[i * dim + k] - mean[k]) ** 2;
  // A constant dimension (std 0) would divide by zero: it carries no information, weight 1.
  for (let k = 0; k < dim; k++) std[k] = Math.sqrt(std[k] / Math.max(1, n - 1)) || 1;
  const h = createHash('sha256').update(Buffer.from(mean.buffer)).update(Buffer.from(std.buffer)).digest('hex').slice(0, 8);
  return { id: `${net.id}+pix${Math.round(Math.sqrt(dx / 3))}-z${h}`, net, mean, std, dim };
}

/** [pool || pixel means] rows z-scored by the space's reference mean and std. */
function zScored(space: StudySpace, pool: Float32Array, pix: Float32Array, n: number): Float32Array {
  const z = concatRows(pool, pix, n, space.net.poolDim, pix.length / n);
  const d = space.dim;
  for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) z[i * d + k] = (z[i * d + k] - space.mean[k]) / space.std[k];
  return z;
}

/** Features of images in the space (z-scored), plus the CNN's own outputs. */
export function spaceFeatures(space: StudySpace, images: Uint8Array, n: number, h: number, w: number) {
  const f = extractFeatures(space.net, imageSource(images, n, h, w));
  return { cnn: f, z: zScored(space, f.pool, pixelMeans(images, n, h, w), n) };
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

export function studyReference(net: FeatureNet, cnn: ReferenceFeatures, refImages: Uint8Array, h: number, w: number): StudyReference {
  const n = cnn.n;
  const pix = pixelMeans(refImages, n, h, w);
  const space = studySpace(net, cnn.pool.data, pix, n);
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
