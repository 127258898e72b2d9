// A fast, slightly less exact alternative to featureStats: the covariance's products run on
// the tfjs backend in float32 (tf.matMul, so a BLAS backend makes it ~20x faster than the
// float64 TypeScript loops), in chunks of rows whose d x d partial sums are accumulated in
// float64. The mean stays float64. Entries then carry float32 rounding (~1e-7 relative)
// instead of float64's; FIDs differ from np.cov-based ones by ~1e-6 relative or less.
// featureStats (float64, as np.cov) remains the reference path, and the one to use for
// rank-deficient covariances (fewer samples than dimensions): there float32 noise in the
// null space is amplified by the factorisation into a visibly different FID.
import * as tf from '@tensorflow/tfjs-core';
import { FidStatistics } from './fid';

export interface BackendStatsOptions {
  /** Rows per float32 product; partial sums of this many terms are float32. Default 1024. */
  chunkRows?: number;
}

/** Mean (float64) and unbiased covariance of n x d row-major features, products in float32 on the backend. */
export async function featureStatsOnBackend(
  features: Float32Array | Float64Array, n: number, d: number, opts: BackendStatsOptions = {},
): Promise<FidStatistics> {
  if (!Number.isInteger(n) || !Number.isInteger(d) || n < 0 || d < 1) {
    throw new Error(`featureStatsOnBackend: n and d must be non-negative integers (d >= 1), got n=${n}, d=${d}`);
  }
  if (features.length !== n * d) {
    throw new Error(`featureStatsOnBackend: ${n} x ${d} features need ${n * d} values, got ${features.length}`);
  }
  if (n < 2) throw new Error(`featureStatsOnBackend: a covariance needs at least 2 samples, got ${n}`);
  const chunk = opts.chunkRows ?? 1024;
  if (!Number.isInteger(chunk) || chunk < 1) throw new Error(`featureStatsOnBackend: chunkRows must be a positive integer, got ${chunk}`);
  const mu = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const ri = i * d;
    for (let a = 0; a < d; a++) mu[a] += features[ri + a];
  }
  for (let a = 0; a < d; a++) {
    mu[a] /= n;
    if (!Number.isFinite(mu[a])) throw new Error(`featureStatsOnBackend: feature ${a} has non-finite values`);
  }
  const sigma = new Float64Array(d * d);
  for (let r0 = 0; r0 < n; r0 += chunk) {
    const rows = Math.min(chunk, n - r0);
    // Centred rows (float32) and their transpose: tfjs matMul is fastest untransposed.
    const xc = new Float32Array(rows * d), xt = new Float32Array(d * rows);
    for (let r = 0; r < rows; r++) {
      const src = (r0 + r) * d;
      for (let a = 0; a < d; a++) {
        const v = features[src + a] - mu[a];
        xc[r * d + a] = v;
        xt[a * rows + r] = v;
      }
    }
    const g = tf.tidy(() => tf.matMul(tf.tensor2d(xt, [d, rows]), tf.tensor2d(xc, [rows, d])));
    try {
      const part = await g.data();
      for (let i = 0; i < sigma.length; i++) sigma[i] += part[i];
    } finally {
      g.dispose();
    }
  }
  // Exactly symmetric, as np.cov's result is.
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < i; j++) {
      const v = 0.5 * (sigma[i * d + j] + sigma[j * d + i]);
      sigma[i * d + j] = v;
      sigma[j * d + i] = v;
    }
  }
  const scale = 1 / (n - 1);
  for (let i = 0; i < sigma.length; i++) sigma[i] *= scale;
  return { mu, sigma };
}
