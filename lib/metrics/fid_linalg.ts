// Which code does the FID's float64 linear algebra. With the native addon built, OpenBLAS's
// BLAS and LAPACK (the library the addon links for sgemm): the covariance by dsyrk, and
// tr sqrtm(S1 S2) by dpstrf + dtrmm/dgemm + dsyevd (native/src/linalg.c), the algorithm of
// linalg.ts; at d = 2048 that is seconds instead of tens of seconds. Without the addon,
// or with an addon built before these functions existed, the TypeScript of linalg.ts.
// The two agree to float64 rounding (test/fid-linalg.test.ts).
import { loadNativeAddon, NativeAddon } from '../backend/native_addon';
import { meanCovariance, sqrtTrace, traceSqrtProduct, TraceSqrtProduct } from './linalg';

export interface FidLinalg {
  name: 'lapack' | 'typescript';
  /** Mean and unbiased covariance of n >= 2 row-major d-dim features (sizes already checked). */
  meanCovariance(features: Float32Array | Float64Array, n: number, d: number): { mu: Float64Array; sigma: Float64Array };
  /** tr sqrtm(S1 S2) and its by-products, S1 and S2 symmetric PSD n x n. */
  traceSqrtProduct(s1: Float64Array, s2: Float64Array, n: number): TraceSqrtProduct;
}

export const TYPESCRIPT_LINALG: FidLinalg = { name: 'typescript', meanCovariance, traceSqrtProduct };

/** The LAPACK path when `addon` has both functions, else the TypeScript one. */
export function fidLinalg(addon: Partial<NativeAddon> | null = loadNativeAddon()): FidLinalg {
  const cov = addon?.featureCovariance, tsp = addon?.traceSqrtProduct;
  if (typeof cov !== 'function' || typeof tsp !== 'function') return TYPESCRIPT_LINALG;
  return {
    name: 'lapack',
    meanCovariance(features, n, d) {
      const mu = new Float64Array(d), sigma = new Float64Array(d * d);
      cov.call(addon, features, n, d, mu, sigma);
      return { mu, sigma };
    },
    traceSqrtProduct(s1, s2, n) {
      const eig = new Float64Array(n), resid = new Float64Array(n);
      const rank = tsp.call(addon, s1, s2, n, eig, resid);
      return sqrtTrace(eig.slice(0, rank), resid.slice(0, n - rank));
    },
  };
}
