// Frechet Inception Distance as the ADM evaluation suite computes it
// (guided-diffusion evaluations/evaluator.py: FIDStatistics, compute_statistics):
//   mu = mean(features), sigma = np.cov(features, rowvar=False)   (unbiased, float64)
//   FID = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr sqrtm(S1 S2)
// sFID is the same distance on the spatial features (mixed_6/conv, first 7 channels).
import { FidLinalg, fidLinalg } from './fid_linalg';
import { TraceSqrtProduct } from './linalg';

/** Gaussian statistics of a feature set: mean (d) and covariance (d x d, row-major). */
export interface FidStatistics {
  mu: Float64Array;
  sigma: Float64Array;
}

/**
 * Mean and unbiased covariance (np.cov(features, rowvar=False)) of n feature vectors of
 * dimension d stored row-major, accumulated in float64: through the native addon's BLAS
 * when it has it, else in TypeScript (see fid_linalg.ts).
 */
export function featureStats(features: Float32Array | Float64Array, n: number, d: number, linalg: FidLinalg = fidLinalg()): FidStatistics {
  if (!Number.isInteger(n) || !Number.isInteger(d) || n < 0 || d < 1) {
    throw new Error(`featureStats: n and d must be non-negative integers (d >= 1), got n=${n}, d=${d}`);
  }
  if (features.length !== n * d) {
    throw new Error(`featureStats: ${n} x ${d} features need ${n * d} values, got ${features.length}`);
  }
  if (n < 2) throw new Error(`featureStats: a covariance needs at least 2 samples, got ${n}`);
  const { mu, sigma } = linalg.meanCovariance(features, n, d);
  for (let a = 0; a < d; a++) {
    if (!Number.isFinite(mu[a])) throw new Error(`featureStats: feature ${a} has non-finite values`);
  }
  return { mu, sigma };
}

type Vector = ArrayLike<number>;

function toF64(x: Vector): Float64Array {
  return x instanceof Float64Array ? x : Float64Array.from(x);
}

function checkFinite(x: Float64Array, what: string, d?: number): void {
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) {
      const at = d ? `[${Math.floor(i / d)}, ${i % d}]` : `[${i}]`;
      throw new Error(`frechetDistance: ${what}${at} is ${x[i]}; statistics must be finite`);
    }
  }
}

/** Details of one Frechet distance evaluation, for logging and tests. */
export interface FrechetDetails {
  fid: number;
  /** |mu1 - mu2|^2 */
  meanTerm: number;
  traceSigma1: number;
  traceSigma2: number;
  /** Re tr sqrtm(S1 S2) */
  traceCovmean: number;
  /** True when the eps * I fallback for a non-finite sqrtm was used. */
  usedEpsilon: boolean;
  /** Numerical rank of sigma1. */
  rank1: number;
  /** Which linear algebra computed tr sqrtm(S1 S2) (fid_linalg.ts). */
  linalg: FidLinalg['name'];
}

/**
 * The Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), as ADM's
 * FIDStatistics.frechet_distance: mismatched shapes are errors; if tr sqrtm(S1 S2) is not
 * finite, eps is added to both diagonals and it is retried; an imaginary part of sqrtm
 * above 1e-3 is an error ("Imaginary component").
 *
 * tr sqrtm(S1 S2) is computed in float64 from the eigenvalues of S1 S2 (see linalg.ts;
 * LAPACK does the same through the native addon when it is built, fid_linalg.ts),
 * whose negative rounding residue is dropped exactly as taking `covmean.real` drops it.
 * The imaginary check uses the mean imaginary diagonal entry, sum sqrt(-lambda) / d for
 * negative eigenvalues lambda: when it exceeds 1e-3, some diagonal entry of
 * Im sqrtm(S1 S2) exceeds the reference's atol too. sigma1 must be positive
 * semi-definite (a covariance) up to rounding; a clearly indefinite sigma1 is an error.
 */
export function frechetDetails(mu1: Vector, sigma1: Vector, mu2: Vector, sigma2: Vector, eps = 1e-6, linalg: FidLinalg = fidLinalg()): FrechetDetails {
  const m1 = toF64(mu1), m2 = toF64(mu2);
  const d = m1.length;
  if (m2.length !== d) {
    throw new Error(`Training and test mean vectors have different lengths: (${d},), (${m2.length},)`);
  }
  if (sigma1.length !== sigma2.length) {
    throw new Error(`Training and test covariances have different sizes: ${sigma1.length}, ${sigma2.length} values`);
  }
  if (sigma1.length !== d * d) {
    throw new Error(`covariances must be ${d} x ${d} (= ${d * d} values) for ${d}-d means, got ${sigma1.length} values`);
  }
  if (d === 0) throw new Error('frechetDistance: empty statistics');
  let s1 = toF64(sigma1), s2 = toF64(sigma2);
  checkFinite(m1, 'mu1'); checkFinite(m2, 'mu2');
  checkFinite(s1, 'sigma1', d); checkFinite(s2, 'sigma2', d);

  let meanTerm = 0, tr1 = 0, tr2 = 0;
  for (let i = 0; i < d; i++) {
    const diff = m1[i] - m2[i];
    meanTerm += diff * diff;
    tr1 += s1[i * d + i];
    tr2 += s2[i * d + i];
  }

  let res = linalg.traceSqrtProduct(s1, s2, d);
  let usedEpsilon = false;
  if (!Number.isFinite(res.trace)) {
    process.emitWarning(`fid calculation produces singular product; adding ${eps} to diagonal of cov estimates`);
    s1 = addToDiagonal(s1, d, eps);
    s2 = addToDiagonal(s2, d, eps);
    res = linalg.traceSqrtProduct(s1, s2, d);
    usedEpsilon = true;
    if (!Number.isFinite(res.trace)) throw new Error('frechetDistance: tr sqrtm(sigma1 sigma2) is not finite even with eps added');
  }
  checkPsdResidual(res, s1, d);
  const imagMean = res.imaginary / d;
  if (imagMean > 1e-3) throw new Error(`Imaginary component ${imagMean} (mean over the diagonal of sqrtm(sigma1 sigma2))`);
  return {
    fid: meanTerm + tr1 + tr2 - 2 * res.trace,
    meanTerm,
    traceSigma1: tr1,
    traceSigma2: tr2,
    traceCovmean: res.trace,
    usedEpsilon,
    rank1: res.rank1,
    linalg: linalg.name,
  };
}

/** FID/sFID between two sets of statistics (see frechetDetails). */
export function frechetDistance(mu1: Vector, sigma1: Vector, mu2: Vector, sigma2: Vector, eps = 1e-6): number {
  return frechetDetails(mu1, sigma1, mu2, sigma2, eps).fid;
}

/** frechetDistance on two FidStatistics. */
export function frechetDistanceOf(a: FidStatistics, b: FidStatistics, eps = 1e-6): number {
  return frechetDistance(a.mu, a.sigma, b.mu, b.sigma, eps);
}

function addToDiagonal(s: Float64Array, d: number, v: number): Float64Array {
  const out = new Float64Array(s);
  for (let i = 0; i < d; i++) out[i * d + i] += v;
  return out;
}

/**
 * The pivoted Cholesky of sigma1 stops when the largest remaining pivot is at rounding
 * level and drops the remainder, as taking the real part drops what negative eigenvalue
 * noise contributes. Rounding noise in a rank-deficient covariance can leave that remainder
 * slightly negative (amplified by the conditioning of the kept pivots, ~1e-4 of the scale
 * seen for float32-accumulated statistics), so only a remainder negative by 1% of sigma1's
 * largest variance counts as an indefinite matrix, whose sqrtm product would be complex.
 */
function checkPsdResidual(res: TraceSqrtProduct, s1: Float64Array, d: number): void {
  let max1 = 0;
  for (let i = 0; i < d; i++) max1 = Math.max(max1, s1[i * d + i]);
  let neg = 0;
  for (const v of res.residualDiagonal) if (v < neg) neg = v;
  if (neg < -1e-2 * max1) {
    throw new Error(`Imaginary component: sigma1 is not positive semi-definite (Schur complement diagonal ${neg}, largest variance ${max1})`);
  }
}
