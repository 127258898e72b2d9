// The FID's float64 linear algebra through LAPACK (the native addon's OpenBLAS) against
// the TypeScript fallback and against scipy (fixtures: scripts/fixtures/make_metrics_fixtures.py),
// and the fallback chosen when the addon lacks the functions.
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { loadNativeAddon, nativeLoadError, BUILD_COMMAND, NativeAddon } from '../lib/backend/native_addon';
import { featureStats, frechetDetails } from '../lib/metrics/fid';
import { fidLinalg, TYPESCRIPT_LINALG } from '../lib/metrics/fid_linalg';
import { Rng } from '../lib/util/rng';
import { METRICS_EXPECTED, readMetricsF32, relErr } from './helpers';

const addon = loadNativeAddon();
const LAPACK = fidLinalg(addon);
const skip = LAPACK.name === 'lapack' ? false
  : addon ? 'the native addon predates featureCovariance/traceSqrtProduct; rebuild it with: ' + BUILD_COMMAND
    : `native addon not built (${nativeLoadError()}); build it with: ${BUILD_COMMAND}`;

function close(actual: number, expected: number, rel: number, what: string): void {
  const err = Math.abs(actual - expected) / Math.max(Math.abs(expected), 1e-300);
  assert.ok(err <= rel, `${what}: ${actual} vs ${expected} (relative error ${err.toExponential(2)} > ${rel})`);
}

/**
 * n x d correlated float64 features in a rank-dimensional affine subspace: covariance rank
 * min(n - 1, rank, d) (float32 rounding would put noise above the rank tolerance).
 */
function features(n: number, d: number, rank: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  const z = Float64Array.from({ length: n * rank }, () => rng.normal());
  const mix = Float64Array.from({ length: rank * d }, () => rng.normal());
  const x = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < rank; k++) {
      const v = z[i * rank + k];
      for (let a = 0; a < d; a++) x[i * d + a] += v * mix[k * d + a];
    }
  }
  for (let i = 0; i < x.length; i++) x[i] += 0.5; // an offset the centring removes
  return x;
}

describe('FID linear algebra through LAPACK', { skip }, () => {
  for (const name of ['fid_full', 'fid_few', 'fid_lowrank']) {
    test(`${name}: statistics and FID agree with the TypeScript fallback and with scipy`, () => {
      const e = METRICS_EXPECTED[name];
      const [n, d] = e.x.shape;
      const x = readMetricsF32(e.x), y = readMetricsF32(e.y);
      const a = featureStats(x, n, d, LAPACK), b = featureStats(y, e.y.shape[0], d, LAPACK);
      const at = featureStats(x, n, d, TYPESCRIPT_LINALG);
      // Means summed in the same order: identical. Covariances: float64 rounding of another summation order.
      assert.deepEqual(a.mu, at.mu);
      assert.ok(relErr(a.sigma, at.sigma) < 1e-14, `sigma vs TypeScript: ${relErr(a.sigma, at.sigma)}`);
      for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) assert.equal(a.sigma[i * d + j], a.sigma[j * d + i]);
      close(a.sigma[(d - 1) * d + d - 2], e.sigma_x_last, 1e-10, 'sigma[d-1, d-2] vs np.cov');

      const det = frechetDetails(a.mu, a.sigma, b.mu, b.sigma, 1e-6, LAPACK);
      const ts = frechetDetails(a.mu, a.sigma, b.mu, b.sigma, 1e-6, TYPESCRIPT_LINALG);
      assert.equal(det.linalg, 'lapack');
      assert.equal(ts.linalg, 'typescript');
      close(det.fid, ts.fid, 1e-10, 'FID vs the TypeScript fallback');
      close(det.traceCovmean, ts.traceCovmean, 1e-12, 'tr sqrtm vs the TypeScript fallback');
      // scipy's sqrtm itself carries ~1e-8 relative error on these.
      close(det.fid, e.fid_float64_mu, 1e-6, 'FID vs scipy (float64 means)');
      close(det.fid, e.fid, 1e-6, 'FID vs scipy (float32 means)');
      close(det.traceCovmean, e.trace_covmean, 1e-6, 'tr sqrtm vs scipy');
      assert.equal(det.rank1, e.rank_x);
      assert.equal(det.usedEpsilon, e.used_eps);
    });
  }

  test('tr sqrtm(S1 S2): eigenvalues, rank and residual as the TypeScript fallback, full and deficient rank', () => {
    for (const [n, d, rank] of [[400, 96, 96], [60, 96, 96], [300, 96, 20], [5, 3, 3]]) {
      const s1 = featureStats(features(n, d, rank, 1), n, d, LAPACK).sigma;
      const s2 = featureStats(features(n, d, rank, 2), n, d, LAPACK).sigma;
      const l = LAPACK.traceSqrtProduct(s1, s2, d), t = TYPESCRIPT_LINALG.traceSqrtProduct(s1, s2, d);
      assert.equal(l.rank1, t.rank1, `rank (n ${n}, d ${d}, rank ${rank})`);
      assert.equal(l.rank1, Math.min(n - 1, rank, d));
      assert.equal(l.eigenvalues.length, l.rank1);
      assert.equal(l.residualDiagonal.length, d - l.rank1);
      assert.ok(relErr(l.eigenvalues, t.eigenvalues) < 1e-10, `eigenvalues: ${relErr(l.eigenvalues, t.eigenvalues)}`);
      for (let i = 1; i < l.eigenvalues.length; i++) assert.ok(l.eigenvalues[i - 1] <= l.eigenvalues[i], 'ascending');
      close(l.trace, t.trace, 1e-11, 'trace');
      // What the factorisation left out is rounding level either way.
      let max = 0;
      for (let i = 0; i < d; i++) max = Math.max(max, s1[i * d + i]);
      for (const v of [...l.residualDiagonal, ...t.residualDiagonal]) assert.ok(Math.abs(v) <= 1e-10 * max, `residual ${v}`);
    }
  });

  test('float32 features, a zero covariance, and indefinite matrices behave as in TypeScript', () => {
    const x = Float32Array.from(features(50, 8, 8, 3));
    const a = featureStats(x, 50, 8, LAPACK), at = featureStats(x, 50, 8, TYPESCRIPT_LINALG);
    assert.deepEqual(a.mu, at.mu);
    assert.ok(relErr(a.sigma, at.sigma) < 1e-14);
    const zero = new Float64Array(9), eye = Float64Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]);
    const z = LAPACK.traceSqrtProduct(zero, eye, 3);
    assert.deepEqual([z.rank1, z.trace, z.imaginary, z.residualDiagonal.length], [0, 0, 0, 3]);
    const mu = new Float64Array(3), indefinite = Float64Array.from([1, 0, 0, 0, -4, 0, 0, 0, 1]);
    assert.throws(() => frechetDetails(mu, indefinite, mu, eye, 1e-6, LAPACK), /Imaginary component: sigma1 is not positive semi-definite/);
    assert.throws(() => frechetDetails(mu, eye, mu, indefinite, 1e-6, LAPACK), /Imaginary component/);
  });

  test('the addon checks its arguments', () => {
    const cov = addon!.featureCovariance!.bind(addon), tsp = addon!.traceSqrtProduct!.bind(addon);
    assert.throws(() => cov(new Float32Array(5), 2, 3, new Float64Array(3), new Float64Array(9)), /do not match n x d/);
    assert.throws(() => cov(new Float32Array(6), 2, 3, new Float64Array(2), new Float64Array(9)), /do not match n x d/);
    assert.throws(() => cov(new Int32Array(6) as unknown as Float32Array, 2, 3, new Float64Array(3), new Float64Array(9)), /Float32Array or Float64Array/);
    assert.throws(() => tsp(new Float64Array(4), new Float64Array(9), 2, new Float64Array(2), new Float64Array(2)), /do not match n x n/);
    assert.throws(() => tsp(new Float32Array(4) as unknown as Float64Array, new Float64Array(4), 2, new Float64Array(2), new Float64Array(2)), /Float64Array/);
  });

  test('the default path is LAPACK when the addon has it (featureStats, frechetDetails)', () => {
    const e = METRICS_EXPECTED.fid_full;
    const [n, d] = e.x.shape;
    const a = featureStats(readMetricsF32(e.x), n, d), b = featureStats(readMetricsF32(e.y), n, d);
    assert.equal(frechetDetails(a.mu, a.sigma, b.mu, b.sigma).linalg, 'lapack');
  });
});

test('the TypeScript fallback is used when the addon is absent or lacks the functions', () => {
  assert.equal(fidLinalg(null), TYPESCRIPT_LINALG);
  assert.equal(fidLinalg({}), TYPESCRIPT_LINALG);
  // A build from before the FID functions: everything else there, these two missing.
  const stale: Partial<NativeAddon> = { ...(addon ?? {}), featureCovariance: undefined };
  assert.equal(fidLinalg(stale), TYPESCRIPT_LINALG);
  assert.equal(fidLinalg({ ...(addon ?? {}), traceSqrtProduct: undefined }), TYPESCRIPT_LINALG);
  const e = METRICS_EXPECTED.fid_full;
  const [n, d] = e.x.shape;
  const linalg = fidLinalg(stale);
  const a = featureStats(readMetricsF32(e.x), n, d, linalg), b = featureStats(readMetricsF32(e.y), n, d, linalg);
  const det = frechetDetails(a.mu, a.sigma, b.mu, b.sigma, 1e-6, linalg);
  assert.equal(det.linalg, 'typescript');
  close(det.fid, e.fid_float64_mu, 1e-6, 'fallback FID vs scipy');
});
