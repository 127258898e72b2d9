// Improved precision and recall (Kynkaanniemi et al. 2019) as ADM's ManifoldEstimator
// (guided-diffusion evaluations/evaluator.py) with nhood_sizes=(3,):
//   - pairwise squared distances in float32 as DistanceBlock's float32 path:
//       D = max(|u|^2 - 2 u.v + |v|^2, 0), evaluated left to right in float32
//   - radius of a point = the value at index k of its sorted distance row to its own set,
//     the row including its own (near-zero) self-distance: the k-th nearest neighbour
//   - precision = share of samples with D(ref, sample) <= radius(ref) for some ref,
//     recall    = share of refs with D(ref, sample) <= radius(sample) for some sample.
// Distances are formed block by block (rows x columns), never the whole N x N matrix.
// The u.v products go through tf.matMul so a fast backend accelerates them (sgemm on the
// native backend); the column side is transposed once per pass and sliced per block. The
// rest is float32 arithmetic done on the host (the block loops in C when the native addon
// has them, value for value the TypeScript ones), so results do not depend on the tfjs
// backend's elementwise ops.
//
// Note: ADM's DistanceBlock first tries the distances in float16 and uses float32 only
// when a float16 block overflows; this module always uses the float32 formula.
import * as tf from '@tensorflow/tfjs-core';
import { loadNativeAddon, NativeAddon } from '../backend/native_addon';

export interface ManifoldOptions {
  /** Neighbourhood size: the radius is the distance to the k-th nearest neighbour. Default 3. */
  k?: number;
  /**
   * Rows per distance block (ADM: 10000). The result does not depend on it. Default 1024:
   * with exploitSymmetry the radii compute each diagonal block whole, n^2 / 2 + n * rows / 2
   * products in all, so small row blocks keep the radii near half of the full matrix.
   */
  rowBatchSize?: number;
  /** Columns per distance block (ADM: 10000). Default 4096. */
  colBatchSize?: number;
  /**
   * Radii: compute each off-diagonal block of the set's self-distances once and read it
   * both ways (D[j, i] from the same u.v as D[i, j], with the float32 sum in D[j, i]'s own
   * order). Halves the radii's matmul work; exact as long as the backend's u.v is symmetric,
   * as any k-ordered dot product is. Default true.
   */
  exploitSymmetry?: boolean;
}

export interface PrecisionRecall {
  precision: number;
  recall: number;
  /** k-NN radii (squared distances) of the reference and sample sets. */
  refRadii: Float32Array;
  sampleRadii: Float32Array;
}

/** A row-major n x d float32 feature matrix. */
export interface FeatureMatrix {
  data: Float32Array;
  n: number;
  d: number;
}

const fround = Math.fround;

/** Validates and wraps n x d row-major float32 features. */
export function featureMatrix(data: Float32Array, n: number, d: number, what = 'features'): FeatureMatrix {
  if (!(data instanceof Float32Array)) throw new Error(`${what}: expected a Float32Array`);
  if (!Number.isInteger(n) || !Number.isInteger(d) || n < 1 || d < 1) {
    throw new Error(`${what}: n and d must be positive integers, got n=${n}, d=${d}`);
  }
  if (data.length !== n * d) throw new Error(`${what}: ${n} x ${d} needs ${n * d} values, got ${data.length}`);
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      throw new Error(`${what}: value [${Math.floor(i / d)}, ${i % d}] is ${data[i]}; features must be finite`);
    }
  }
  return { data, n, d };
}

/** The options with their defaults filled in (checked). */
export function manifoldOptions(opts: ManifoldOptions = {}): Required<ManifoldOptions> {
  const o = {
    k: opts.k ?? 3,
    rowBatchSize: opts.rowBatchSize ?? 1024,
    colBatchSize: opts.colBatchSize ?? 4096,
    exploitSymmetry: opts.exploitSymmetry ?? true,
  };
  for (const key of ['k', 'rowBatchSize', 'colBatchSize'] as const) {
    if (!Number.isInteger(o[key]) || o[key] < 1) throw new Error(`ManifoldOptions.${key} must be a positive integer, got ${o[key]}`);
  }
  return o;
}

/** |x_i|^2 rounded to float32 (summed in float64: exact squares, one rounding). */
export function squaredNorms(x: FeatureMatrix): Float32Array {
  const { data, n, d } = x;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s0 = 0, s1 = 0;
    const r = i * d;
    let k = 0;
    for (; k + 1 < d; k += 2) {
      s0 += data[r + k] * data[r + k];
      s1 += data[r + k + 1] * data[r + k + 1];
    }
    if (k < d) s0 += data[r + k] * data[r + k];
    out[i] = s0 + s1;
  }
  return out;
}

/** Rows [r0, r1) of x transposed to a d x (r1 - r0) tensor (tfjs matMul is fastest untransposed). */
function transposedRows(x: FeatureMatrix, r0: number, r1: number): tf.Tensor2D {
  const { data, d } = x;
  const m = r1 - r0;
  const t = new Float32Array(d * m);
  const TILE = 32;
  for (let i0 = 0; i0 < m; i0 += TILE) {
    const i1 = Math.min(m, i0 + TILE);
    for (let k0 = 0; k0 < d; k0 += TILE) {
      const k1 = Math.min(d, k0 + TILE);
      for (let i = i0; i < i1; i++) {
        const src = (r0 + i) * d;
        for (let k = k0; k < k1; k++) t[k * m + i] = data[src + k];
      }
    }
  }
  return tf.tensor2d(t, [d, m], 'float32');
}

function rows(x: FeatureMatrix, r0: number, r1: number): tf.Tensor2D {
  return tf.tensor2d(x.data.subarray(r0 * x.d, r1 * x.d), [r1 - r0, x.d], 'float32');
}

/**
 * u.v of the rows xRows against columns [c0, c1) of yt (a whole set transposed, d x n):
 * a rows x (c1 - c0) float32 block. The column slice is a contiguous copy per row of yt,
 * far cheaper than transposing the block each time.
 */
async function dotBlock(xRows: tf.Tensor2D, yt: tf.Tensor2D, c0: number, c1: number): Promise<Float32Array> {
  const mm = tf.tidy(() => tf.matMul(xRows, c0 === 0 && c1 === yt.shape[1] ? yt : tf.slice(yt, [0, c0], [yt.shape[0], c1 - c0])));
  try {
    return (await mm.data()) as Float32Array;
  } finally {
    mm.dispose();
  }
}

/** The float32 distance ADM forms from |u|^2, u.v and |v|^2. */
function dist(nu: number, uv: number, nv: number): number {
  const v = fround(fround(nu - 2 * uv) + nv);
  return v > 0 ? v : 0;
}

/**
 * Full pairwise squared distances (DistanceBlock.pairwise_distances) between x and y, as an
 * x.n x y.n row-major Float32Array. For small sets and tests; the metrics never form this.
 */
export async function pairwiseDistances(x: FeatureMatrix, y: FeatureMatrix): Promise<Float32Array> {
  if (x.d !== y.d) throw new Error(`pairwiseDistances: feature sizes differ: ${x.d} vs ${y.d}`);
  const nx = squaredNorms(x), ny = squaredNorms(y);
  const xr = rows(x, 0, x.n), yt = transposedRows(y, 0, y.n);
  try {
    const uv = await dotBlock(xr, yt, 0, y.n);
    const out = new Float32Array(x.n * y.n);
    for (let i = 0; i < x.n; i++) {
      for (let j = 0; j < y.n; j++) out[i * y.n + j] = dist(nx[i], uv[i * y.n + j], ny[j]);
    }
    return out;
  } finally {
    tf.dispose([xr, yt]);
  }
}

/**
 * The loops over one distance block: in C when the native addon has them (manifold.c, the
 * same float32 operations value for value), else these TypeScript ones.
 */
export interface ManifoldKernels {
  name: 'native' | 'typescript';
  /**
   * k-NN radii, rows [r0, r0 + rows) against columns [c0, c0 + w) of one set (uv: their
   * rows x w u.v block): D(i, j) into row i's k1 smallest (best: k1 per row, sorted; worst:
   * the largest kept), and for columns j >= mirrorFrom also D(j, i) into row j's.
   */
  radiiBlock(uv: Float32Array, rows: number, w: number, r0: number, c0: number, mirrorFrom: number, norms: Float32Array,
    best: Float64Array, worst: Float64Array, k1: number): void;
  /** evaluate_pr: references [r0, r0 + rows) x samples [c0, c0 + w); sets the inside flags. */
  prBlock(uv: Float32Array, rows: number, w: number, r0: number, c0: number, nr: Float32Array, ns: Float32Array,
    refRadii: Float32Array, sampleRadii: Float32Array, refIn: Uint8Array, sampleIn: Uint8Array): void;
}

/** Inserts v (< worst[row]) into row's sorted k1 smallest. */
function insertSmallest(best: Float64Array, worst: Float64Array, k1: number, row: number, v: number): void {
  const base = row * k1;
  let p = base + k1 - 1;
  while (p > base && best[p - 1] > v) {
    best[p] = best[p - 1];
    p--;
  }
  best[p] = v;
  worst[row] = best[base + k1 - 1];
}

export const TYPESCRIPT_MANIFOLD: ManifoldKernels = {
  name: 'typescript',
  radiiBlock(uv, rows, w, r0, c0, mirrorFrom, norms, best, worst, k1) {
    const c1 = c0 + w;
    for (let i = r0; i < r0 + rows; i++) {
      const ni = norms[i], base = (i - r0) * w - c0;
      let wi = worst[i];
      for (let j = c0; j < mirrorFrom; j++) {
        const dij = dist(ni, uv[base + j], norms[j]);
        if (dij < wi) {
          insertSmallest(best, worst, k1, i, dij);
          wi = worst[i];
        }
      }
      for (let j = mirrorFrom; j < c1; j++) {
        const m = uv[base + j], nj = norms[j];
        const dij = dist(ni, m, nj);
        if (dij < wi) {
          insertSmallest(best, worst, k1, i, dij);
          wi = worst[i];
        }
        const dji = dist(nj, m, ni);
        if (dji < worst[j]) insertSmallest(best, worst, k1, j, dji);
      }
    }
  },
  prBlock(uv, rows, w, r0, c0, nr, ns, refRadii, sampleRadii, refIn, sampleIn) {
    const c1 = c0 + w;
    for (let i = r0; i < r0 + rows; i++) {
      const ni = nr[i], ri = refRadii[i], base = (i - r0) * w - c0;
      let inside = refIn[i];
      for (let j = c0; j < c1; j++) {
        const dij = dist(ni, uv[base + j], ns[j]);
        if (dij <= ri) sampleIn[j] = 1;
        if (dij <= sampleRadii[j]) inside = 1;
      }
      refIn[i] = inside;
    }
  },
};

/** The addon's block loops when it has both, else the TypeScript ones. */
export function manifoldKernels(addon: Partial<NativeAddon> | null = loadNativeAddon()): ManifoldKernels {
  const radii = addon?.radiiBlock, pr = addon?.prBlock;
  if (typeof radii !== 'function' || typeof pr !== 'function') return TYPESCRIPT_MANIFOLD;
  return { name: 'native', radiiBlock: radii.bind(addon), prBlock: pr.bind(addon) };
}

/** Per-row (k+1) smallest values, kept sorted; index k is the radius. */
class SmallestK {
  readonly best: Float64Array;
  /** Current largest kept value per row: anything >= it cannot enter. */
  readonly worst: Float64Array;
  constructor(n: number, readonly k1: number) {
    this.best = new Float64Array(n * k1).fill(Infinity);
    this.worst = new Float64Array(n).fill(Infinity);
  }
  radii(): Float32Array {
    const n = this.worst.length, out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.best[i * this.k1 + this.k1 - 1];
    return out;
  }
}

/**
 * ManifoldEstimator.manifold_radii: for each feature vector, the squared distance to its
 * k-th nearest neighbour in the same set (the k-th smallest after its own self-distance).
 */
export async function manifoldRadii(x: FeatureMatrix, opts: ManifoldOptions = {}, kernels: ManifoldKernels = manifoldKernels()): Promise<Float32Array> {
  const o = manifoldOptions(opts);
  if (x.n < o.k + 1) throw new Error(`manifoldRadii: k=${o.k} needs at least ${o.k + 1} feature vectors, got ${x.n}`);
  const norms = squaredNorms(x);
  const top = new SmallestK(x.n, o.k + 1);
  const xt = transposedRows(x, 0, x.n);
  try {
    for (let r0 = 0; r0 < x.n; r0 += o.rowBatchSize) {
      const r1 = Math.min(x.n, r0 + o.rowBatchSize);
      const xr = rows(x, r0, r1);
      try {
        // With symmetry, blocks left of the diagonal were already read from their transposes.
        for (let c0 = o.exploitSymmetry ? r0 : 0; c0 < x.n; c0 += o.colBatchSize) {
          const c1 = Math.min(x.n, c0 + o.colBatchSize);
          const uv = await dotBlock(xr, xt, c0, c1);
          // Columns of this row block give (i, j) and (j, i) from their own entries; with
          // symmetry, every later column also gives the transposed entry (j, i).
          const mirrorFrom = o.exploitSymmetry ? Math.min(c1, Math.max(c0, r1)) : c1;
          kernels.radiiBlock(uv, r1 - r0, c1 - c0, r0, c0, mirrorFrom, norms, top.best, top.worst, top.k1);
        }
      } finally {
        xr.dispose();
      }
    }
  } finally {
    xt.dispose();
  }
  return top.radii();
}

/**
 * ManifoldEstimator.evaluate_pr: precision = share of samples inside some reference
 * radius, recall = share of references inside some sample radius (D <= radius).
 */
export async function evaluatePr(
  ref: FeatureMatrix, refRadii: Float32Array,
  sample: FeatureMatrix, sampleRadii: Float32Array,
  opts: ManifoldOptions = {}, kernels: ManifoldKernels = manifoldKernels(),
): Promise<{ precision: number; recall: number }> {
  const o = manifoldOptions(opts);
  if (ref.d !== sample.d) throw new Error(`evaluatePr: feature sizes differ: reference ${ref.d}, samples ${sample.d}`);
  if (refRadii.length !== ref.n) throw new Error(`evaluatePr: ${ref.n} reference features but ${refRadii.length} radii`);
  if (sampleRadii.length !== sample.n) throw new Error(`evaluatePr: ${sample.n} sample features but ${sampleRadii.length} radii`);
  const nr = squaredNorms(ref), ns = squaredNorms(sample);
  const refIn = new Uint8Array(ref.n), sampleIn = new Uint8Array(sample.n);
  const st = transposedRows(sample, 0, sample.n);
  try {
    // Rows are references, columns samples, as ADM's less_thans(batch_1=ref, batch_2=sample).
    // Column blocks outside: each is sliced from the transposed samples once.
    for (let c0 = 0; c0 < sample.n; c0 += o.colBatchSize) {
      const c1 = Math.min(sample.n, c0 + o.colBatchSize);
      const cols = c0 === 0 && c1 === sample.n ? st : tf.slice(st, [0, c0], [sample.d, c1 - c0]);
      try {
        for (let r0 = 0; r0 < ref.n; r0 += o.rowBatchSize) {
          const r1 = Math.min(ref.n, r0 + o.rowBatchSize);
          const xr = rows(ref, r0, r1);
          let uv: Float32Array;
          try {
            uv = await dotBlock(xr, cols, 0, c1 - c0);
          } finally {
            xr.dispose();
          }
          kernels.prBlock(uv, r1 - r0, c1 - c0, r0, c0, nr, ns, refRadii, sampleRadii, refIn, sampleIn);
        }
      } finally {
        if (cols !== st) cols.dispose();
      }
    }
  } finally {
    st.dispose();
  }
  return { precision: mean(sampleIn), recall: mean(refIn) };
}

function mean(flags: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < flags.length; i++) s += flags[i];
  return s / flags.length;
}

/**
 * Precision and recall of samples against references, as ADM's compute_prec_recall:
 * radii of both sets, then evaluate_pr.
 */
export async function precisionRecall(ref: FeatureMatrix, sample: FeatureMatrix, opts: ManifoldOptions = {}): Promise<PrecisionRecall> {
  if (ref.d !== sample.d) throw new Error(`precisionRecall: feature sizes differ: reference ${ref.d}, samples ${sample.d}`);
  const refRadii = await manifoldRadii(ref, opts);
  const sampleRadii = await manifoldRadii(sample, opts);
  const { precision, recall } = await evaluatePr(ref, refRadii, sample, sampleRadii, opts);
  return { precision, recall, refRadii, sampleRadii };
}
