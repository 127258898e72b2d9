import { before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../lib/backend';
import { Rng } from '../lib/util/rng';
import { featureStats, frechetDetails, frechetDistance, frechetDistanceOf } from '../lib/metrics/fid';
import { inceptionScore } from '../lib/metrics/inception_score';
import {
  evaluatePr,
  featureMatrix,
  manifoldRadii,
  pairwiseDistances,
  precisionRecall,
} from '../lib/metrics/precision_recall';
import {
  readReferenceStats,
  referenceStatsFromArrays,
  writeReferenceStats,
} from '../lib/metrics/reference_stats';
import { featureStatsOnBackend } from '../lib/metrics/stats_backend';
import { gemmNT, pivotedCholesky, symmetricEigenvalues, traceSqrtProduct } from '../lib/metrics/linalg';
import { METRICS_EXPECTED, METRICS_FIXTURES, metricsMatrix, readMetricsF32 } from './helpers';

// Fixtures: scripts/fixtures/make_metrics_fixtures.py (ADM's evaluator re-stated with numpy/scipy).
const FIX = METRICS_FIXTURES;
const EXPECTED = METRICS_EXPECTED;
const readF32 = readMetricsF32;
const matrixOf = metricsMatrix;

function close(actual: number, expected: number, rel: number, what: string): void {
  const err = Math.abs(actual - expected) / Math.max(Math.abs(expected), 1e-300);
  assert.ok(err <= rel, `${what}: ${actual} vs ${expected} (relative error ${err.toExponential(2)} > ${rel})`);
}

function randomSymmetric(n: number, rng: Rng): Float64Array {
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = rng.normal();
  }
  return a;
}

/** G G^T / m for an n x m Gaussian G: PSD, rank min(n, m). */
function randomCovariance(n: number, m: number, rng: Rng): Float64Array {
  const g = Float64Array.from({ length: n * m }, () => rng.normal());
  const s = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let v = 0;
      for (let k = 0; k < m; k++) v += g[i * m + k] * g[j * m + k];
      s[i * n + j] = v / m;
    }
  }
  return s;
}

/** Eigenvalues by cyclic Jacobi rotations: slow, simple, independent of linalg.ts. */
function jacobiEigenvalues(aIn: Float64Array, n: number): number[] {
  const a = Float64Array.from(aIn);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (apq === 0) continue;
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
      }
    }
  }
  return Array.from({ length: n }, (_, i) => a[i * n + i]).sort((x, y) => x - y);
}

before(async () => {
  await initBackend({ quiet: true });
});

describe('float64 linear algebra', () => {
  test('gemmNT matches a naive product for odd sizes and every option', () => {
    const rng = new Rng(1);
    const m = 11, n = 9, K = 13, lda = 15, ldb = 14, ldc = 12;
    const A = Float64Array.from({ length: m * lda + 3 }, () => rng.normal());
    const B = Float64Array.from({ length: n * ldb + 2 }, () => rng.normal());
    for (const opts of [{}, { lowerOnly: true }, { aTrapezoid: true }, { bTrapezoid: true }, { lowerOnly: true, bTrapezoid: true }]) {
      // Trapezoid options promise zeros: make the operands honour them.
      const a = Float64Array.from(A), b = Float64Array.from(B);
      if ('aTrapezoid' in opts) for (let i = 0; i < m; i++) for (let k = 0; k < Math.min(i, K); k++) a[3 + i * lda + k] = 0;
      if ('bTrapezoid' in opts) for (let j = 0; j < n; j++) for (let k = 0; k < Math.min(j, K); k++) b[2 + j * ldb + k] = 0;
      const C = Float64Array.from({ length: m * ldc }, () => 1);
      gemmNT(m, n, K, -0.5, a, 3, lda, b, 2, ldb, C, 0, ldc, opts);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          if ('lowerOnly' in opts && j > i) continue; // not promised
          let s = 0;
          for (let k = 0; k < K; k++) s += a[3 + i * lda + k] * b[2 + j * ldb + k];
          assert.ok(Math.abs(C[i * ldc + j] - (1 - 0.5 * s)) < 1e-12, `${JSON.stringify(opts)} C[${i},${j}]`);
        }
      }
    }
  });

  test('symmetric eigenvalues agree with Jacobi rotations', () => {
    const rng = new Rng(2);
    for (const n of [1, 2, 5, 23, 40]) {
      const a = randomSymmetric(n, rng);
      const want = jacobiEigenvalues(a, n);
      const got = symmetricEigenvalues(Float64Array.from(a), n);
      for (let i = 0; i < n; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-10 * n, `n=${n} eigenvalue ${i}: ${got[i]} vs ${want[i]}`);
    }
  });

  test('pivoted Cholesky reconstructs a rank-deficient PSD matrix and finds its rank', () => {
    const rng = new Rng(3);
    const n = 37, r = 9;
    const s = randomCovariance(n, r, rng);
    const { L, perm, rank } = pivotedCholesky(s, n);
    assert.equal(rank, r);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let v = 0;
        for (let k = 0; k < rank; k++) v += L[i * n + k] * L[j * n + k];
        assert.ok(Math.abs(v - s[perm[i] * n + perm[j]]) < 1e-12, `(${i}, ${j})`);
      }
    }
  });

  test('tr sqrtm(S1 S2) equals the sum of square roots of eig(S1 S2) for full and deficient ranks', () => {
    const rng = new Rng(4);
    const n = 30;
    for (const [r1, r2] of [[60, 60], [7, 60], [60, 5], [4, 6]]) {
      const s1 = randomCovariance(n, r1, rng), s2 = randomCovariance(n, r2, rng);
      // Reference: eigenvalues of S1^(1/2) S2 S1^(1/2) via Jacobi, S1^(1/2) from S1's Cholesky-free
      // route: eig(S1 S2) = eig(G^T S2 G) for S1 = G G^T with G = the Gaussian factor.
      const { L, perm, rank } = pivotedCholesky(s1, n);
      const B = new Float64Array(rank * rank);
      for (let a = 0; a < rank; a++) {
        for (let b = 0; b < rank; b++) {
          let v = 0;
          for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) v += L[i * n + a] * s2[perm[i] * n + perm[j]] * L[j * n + b];
          B[a * rank + b] = v;
        }
      }
      const want = jacobiEigenvalues(B, rank).reduce((t, v) => t + Math.sqrt(Math.max(v, 0)), 0);
      const got = traceSqrtProduct(s1, s2, n);
      assert.equal(got.rank1, Math.min(n, r1));
      // Square roots of the zero eigenvalues' rounding noise (~1e-8 each) limit the agreement.
      close(got.trace, want, 1e-7, `ranks ${r1}, ${r2}`);
      // Symmetric in the two arguments (eig(S1 S2) = eig(S2 S1)).
      close(traceSqrtProduct(s2, s1, n).trace, want, 1e-7, `swapped ranks ${r1}, ${r2}`);
    }
  });
});

describe('FID (ADM frechet_distance, fixtures from numpy/scipy)', () => {
  for (const name of ['fid_full', 'fid_few', 'fid_lowrank']) {
    test(`${name}: statistics as np.cov, FID within 1e-3 of scipy`, () => {
      const e = EXPECTED[name];
      const [n, d] = e.x.shape;
      const x = readF32(e.x), y = readF32(e.y);
      const a = featureStats(x, n, d), b = featureStats(y, e.y.shape[0], d);
      e.mu_x.forEach((v: number, i: number) => assert.ok(Math.abs(a.mu[i] - v) < 1e-12 * (1 + Math.abs(v)), `mu[${i}]`));
      let tr = 0, fro = 0;
      for (let i = 0; i < d; i++) tr += a.sigma[i * d + i];
      for (const v of a.sigma) fro += v * v;
      close(tr, e.sigma_x_trace, 1e-12, 'tr sigma');
      close(Math.sqrt(fro), e.sigma_x_fro, 1e-12, '|sigma|_F');
      for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) close(a.sigma[i * d + j], e.sigma_x_corner[i * 3 + j], 1e-10, `sigma[${i},${j}]`);
      close(a.sigma[(d - 1) * d + d - 2], e.sigma_x_last, 1e-10, 'sigma[d-1, d-2]');
      for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) assert.equal(a.sigma[i * d + j], a.sigma[j * d + i]);

      const det = frechetDetails(a.mu, a.sigma, b.mu, b.sigma);
      close(det.fid, e.fid, 1e-3, 'FID vs ADM');
      close(det.fid, e.fid_float64_mu, 1e-3, 'FID vs ADM with float64 means');
      close(det.traceCovmean, e.trace_covmean, 1e-5, 'tr sqrtm');
      assert.equal(det.usedEpsilon, e.used_eps);
      assert.equal(det.rank1, e.rank_x);
      assert.equal(frechetDistanceOf(a, b), det.fid);
    });
  }

  test('featureStatsOnBackend (float32 products on the backend) is within float32 rounding of np.cov', async () => {
    for (const name of ['fid_full', 'fid_lowrank']) {
      const e = EXPECTED[name];
      const [n, d] = e.x.shape;
      const x = readF32(e.x), y = readF32(e.y);
      const exact = featureStats(x, n, d);
      for (const chunkRows of [undefined, 37]) {
        const fast = await featureStatsOnBackend(x, n, d, { chunkRows });
        assert.deepEqual(fast.mu, exact.mu);
        let num = 0, den = 0;
        for (let i = 0; i < d * d; i++) {
          num += (fast.sigma[i] - exact.sigma[i]) ** 2;
          den += exact.sigma[i] ** 2;
          assert.equal(fast.sigma[i], fast.sigma[(i % d) * d + Math.floor(i / d)]);
        }
        assert.ok(Math.sqrt(num / den) < 1e-6, `${name}: |sigma error| ${Math.sqrt(num / den)}`);
        const other = await featureStatsOnBackend(y, n, d, { chunkRows });
        close(frechetDistanceOf(fast, other), e.fid, 1e-4, `${name} FID from backend statistics`);
      }
    }
    await assert.rejects(featureStatsOnBackend(new Float32Array(5), 2, 3), /2 x 3 features need 6 values, got 5/);
    await assert.rejects(featureStatsOnBackend(new Float32Array(6), 2, 3, { chunkRows: 0 }), /chunkRows must be a positive integer/);
  });

  test('distance of a set to itself is 0 and the distance is symmetric', () => {
    const e = EXPECTED.fid_full;
    const [n, d] = e.x.shape;
    const a = featureStats(readF32(e.x), n, d), b = featureStats(readF32(e.y), n, d);
    assert.ok(Math.abs(frechetDistanceOf(a, a)) < 1e-9, `${frechetDistanceOf(a, a)}`);
    close(frechetDistanceOf(b, a), frechetDistanceOf(a, b), 1e-9, 'symmetry');
  });

  test('bad shapes and bad statistics are clear errors', () => {
    const mu = new Float64Array(3), sigma = Float64Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]);
    assert.throws(() => frechetDistance(mu, sigma, new Float64Array(4), new Float64Array(16)), /mean vectors have different lengths: \(3,\), \(4,\)/);
    assert.throws(() => frechetDistance(mu, sigma, mu, new Float64Array(8)), /covariances have different sizes/);
    assert.throws(() => frechetDistance(mu, new Float64Array(4), mu, new Float64Array(4)), /must be 3 x 3/);
    const bad = Float64Array.from(sigma);
    bad[4] = NaN;
    assert.throws(() => frechetDistance(mu, sigma, mu, bad), /sigma2\[1, 1\] is NaN/);
    // An indefinite "covariance" would make sqrtm complex.
    const indefinite = Float64Array.from([1, 0, 0, 0, -4, 0, 0, 0, 1]);
    assert.throws(() => frechetDistance(mu, indefinite, mu, sigma), /Imaginary component/);
    assert.throws(() => frechetDistance(mu, sigma, mu, indefinite), /Imaginary component/);
    assert.throws(() => featureStats(new Float32Array(10), 3, 3), /3 x 3 features need 9 values, got 10/);
    assert.throws(() => featureStats(new Float32Array(3), 1, 3), /at least 2 samples/);
    assert.throws(() => featureStats(new Float32Array(6), 2, 3.5), /must be non-negative integers/);
    assert.throws(() => featureStats(Float32Array.from([1, NaN, 2, 3]), 2, 2), /feature 1 has non-finite values/);
  });
});

describe('Inception Score (ADM compute_inception_score)', () => {
  const e = EXPECTED.inception;
  const logits = readF32(e.logits), probs = readF32(e.probs);
  const C = e.num_classes;

  test('splits of split_size consecutive samples, from logits and from probabilities', () => {
    const fromLogits = inceptionScore(logits, C, { splitSize: e.split_size });
    assert.equal(fromLogits.splitScores.length, 4); // 300, 300, 300, 100
    close(fromLogits.mean, e.adm, 1e-3, 'IS vs ADM (float32)');
    close(fromLogits.mean, e.adm_float64, 1e-9, 'IS vs float64');
    const fromProbs = inceptionScore(probs, C, { splitSize: e.split_size, input: 'probs' });
    close(fromProbs.mean, e.adm, 1e-3, 'IS from probabilities vs ADM');
    close(inceptionScore(logits, C).mean, e.adm_default_split, 1e-3, 'default split 5000');
  });

  test('numSplits: improved-gan mean and std', () => {
    const r = inceptionScore(logits, C, { numSplits: 10 });
    assert.equal(r.splitScores.length, 10);
    close(r.mean, e.improved_gan_10.mean, 1e-3, 'mean');
    close(r.std, e.improved_gan_10.std, 1e-3, 'std');
    close(r.mean, e.improved_gan_10_float64.mean, 1e-9, 'mean float64');
    close(r.std, e.improved_gan_10_float64.std, 1e-7, 'std float64');
  });

  test('bounds: one-hot confident predictions over all classes give numClasses, uniform gives 1', () => {
    const n = 40, k = 8;
    const sharp = new Float64Array(n * k), flat = new Float64Array(n * k).fill(1 / k);
    for (let i = 0; i < n; i++) sharp[i * k + (i % k)] = 1;
    close(inceptionScore(sharp, k, { input: 'probs' }).mean, k, 1e-12, 'one-hot');
    close(inceptionScore(flat, k, { input: 'probs' }).mean, 1, 1e-12, 'uniform');
  });

  test('bad input is a clear error', () => {
    assert.throws(() => inceptionScore(new Float32Array(10), 3), /not a whole number of 3-class rows/);
    assert.throws(() => inceptionScore(new Float32Array(6), 3, { splitSize: 2, numSplits: 2 }), /not both/);
    assert.throws(() => inceptionScore(new Float32Array(6), 3, { numSplits: 3 }), /numSplits must be an integer in \[1, 2\]/);
    assert.throws(() => inceptionScore(Float32Array.from([2, -1, 0]), 3, { input: 'probs' }), /probability \[0, 0\] is 2/);
    assert.throws(() => inceptionScore(Float32Array.from([0.5, 0.25, 0]), 3, { input: 'probs' }), /sums to 0\.75/);
    assert.throws(() => inceptionScore(Float32Array.from([0, Infinity, 0]), 3), /logit \[0, 1\] is Infinity/);
  });
});

describe('precision and recall (ADM ManifoldEstimator, k=3)', () => {
  const e = EXPECTED.precision_recall;
  const ref = matrixOf(e.ref), sample = matrixOf(e.sample);

  test('exactly ADM on the same float32 inputs; radii within float32 rounding', async () => {
    const r = await precisionRecall(ref, sample);
    assert.equal(r.precision, e.precision);
    assert.equal(r.recall, e.recall);
    e.ref_radii.forEach((v: number, i: number) => close(r.refRadii[i], v, 1e-5, `ref radius ${i}`));
    e.sample_radii.forEach((v: number, i: number) => close(r.sampleRadii[i], v, 1e-5, `sample radius ${i}`));
  });

  test('blocked computation equals the unblocked one', async () => {
    // Precision and recall exactly; radii up to the float32 rounding of u.v, which a BLAS
    // may sum in another order for another block shape (OpenBLAS does at block edges).
    const whole = { rowBatchSize: 1 << 20, colBatchSize: 1 << 20, exploitSymmetry: false };
    const want = await precisionRecall(ref, sample, whole);
    for (const opts of [
      { rowBatchSize: 37, colBatchSize: 53 },
      { rowBatchSize: 64, colBatchSize: 64, exploitSymmetry: false },
      { rowBatchSize: 100, colBatchSize: 7 },
    ]) {
      const got = await precisionRecall(ref, sample, opts);
      assert.equal(got.precision, want.precision, JSON.stringify(opts));
      assert.equal(got.recall, want.recall, JSON.stringify(opts));
      for (let i = 0; i < ref.n; i++) close(got.refRadii[i], want.refRadii[i], 1e-5, `${JSON.stringify(opts)} ref radius ${i}`);
      for (let i = 0; i < sample.n; i++) close(got.sampleRadii[i], want.sampleRadii[i], 1e-5, `${JSON.stringify(opts)} sample radius ${i}`);
    }
  });

  test('radii and the comparisons match a naive full-matrix evaluation', async () => {
    const dRef = await pairwiseDistances(ref, ref);
    const naiveRadii = Array.from({ length: ref.n }, (_, i) => Array.from(dRef.subarray(i * ref.n, (i + 1) * ref.n)).sort((a, b) => a - b)[3]);
    const radii = await manifoldRadii(ref, { rowBatchSize: ref.n, colBatchSize: ref.n, exploitSymmetry: false });
    assert.deepEqual(Array.from(radii), naiveRadii);
    const sampleRadii = await manifoldRadii(sample);
    const dRs = await pairwiseDistances(ref, sample);
    let inRef = 0, inSample = 0;
    for (let j = 0; j < sample.n; j++) {
      let hit = false;
      for (let i = 0; i < ref.n; i++) hit ||= dRs[i * sample.n + j] <= radii[i];
      inSample += hit ? 1 : 0;
    }
    for (let i = 0; i < ref.n; i++) {
      let hit = false;
      for (let j = 0; j < sample.n; j++) hit ||= dRs[i * sample.n + j] <= sampleRadii[j];
      inRef += hit ? 1 : 0;
    }
    const pr = await evaluatePr(ref, radii, sample, sampleRadii, { rowBatchSize: 41, colBatchSize: 29 });
    assert.equal(pr.precision, inSample / sample.n);
    assert.equal(pr.recall, inRef / ref.n);
  });

  test('a sample exactly at a reference radius counts as inside (dist <= radius)', async () => {
    // 1-d references 0, 1, 2, 3, 10: the radius of 0 is 9 (sorted row 0, 1, 4, 9, 100).
    const r = featureMatrix(Float32Array.from([0, 1, 2, 3, 10]), 5, 1);
    // -3 is at squared distance exactly 9 from 0 and outside every other radius.
    const s = featureMatrix(Float32Array.from([-3, 20, -3.5, 30]), 4, 1);
    const out = await precisionRecall(r, s);
    assert.deepEqual(Array.from(out.refRadii), [9, 4, 4, 9, 81]);
    assert.equal(out.precision, 1 / 4);
  });

  test('bad shapes are clear errors', async () => {
    assert.throws(() => featureMatrix(new Float32Array(10), 3, 3), /3 x 3 needs 9 values, got 10/);
    assert.throws(() => featureMatrix(Float32Array.from([1, NaN]), 1, 2), /value \[0, 1\] is NaN/);
    assert.throws(() => featureMatrix(new Float64Array(4) as unknown as Float32Array, 2, 2), /expected a Float32Array/);
    await assert.rejects(manifoldRadii(featureMatrix(new Float32Array(6), 3, 2)), /k=3 needs at least 4 feature vectors, got 3/);
    await assert.rejects(precisionRecall(ref, featureMatrix(new Float32Array(8 * 5), 8, 5)), /feature sizes differ: reference 32, samples 5/);
    await assert.rejects(evaluatePr(ref, new Float32Array(3), sample, new Float32Array(sample.n)), /300 reference features but 3 radii/);
    await assert.rejects(manifoldRadii(ref, { rowBatchSize: 0 }), /rowBatchSize must be a positive integer/);
  });
});

describe('reference statistics (ADM npz layout)', () => {
  const e = EXPECTED.ref_stats;

  test('reads mu, sigma, mu_s, sigma_s written by numpy', () => {
    const s = readReferenceStats(path.join(FIX, e.file));
    assert.deepEqual(Array.from(s.pool.mu), e.mu);
    assert.deepEqual(Array.from(s.pool.sigma), e.sigma);
    assert.deepEqual(Array.from(s.spatial.mu), e.mu_s);
    assert.deepEqual(Array.from(s.spatial.sigma), e.sigma_s);
    assert.ok(Math.abs(frechetDistanceOf(s.pool, s.pool)) < 1e-12);
  });

  test('write and read back; missing or mis-shaped keys are clear errors', () => {
    const s = readReferenceStats(path.join(FIX, e.file));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-metrics-'));
    try {
      const file = path.join(dir, 'stats.npz');
      writeReferenceStats(file, s);
      const back = readReferenceStats(file);
      assert.deepEqual(back, s);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const mu = { dtype: 'float64' as const, shape: [2], data: new Float64Array(2) };
    const sigma = { dtype: 'float64' as const, shape: [3, 3], data: new Float64Array(9) };
    assert.throws(() => referenceStatsFromArrays({ arr_0: mu }, 'x.npz'), /x.npz: no precomputed statistics \(missing mu, sigma, mu_s, sigma_s; has arr_0\)/);
    assert.throws(() => referenceStatsFromArrays({ mu, sigma, mu_s: mu, sigma_s: sigma }), /sigma must be 2 x 2 to match mu/);
  });
});
