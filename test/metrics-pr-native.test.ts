// Precision/recall's block loops in C (native/src/manifold.c) against the TypeScript ones,
// bit for bit, and the fallback chosen when the addon lacks them.
import { before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { initBackend } from '../lib/backend';
import { BUILD_COMMAND, loadNativeAddon, nativeLoadError, NativeAddon } from '../lib/backend/native_addon';
import {
  evaluatePr, featureMatrix, FeatureMatrix, ManifoldOptions, manifoldKernels, manifoldRadii, precisionRecall, TYPESCRIPT_MANIFOLD,
} from '../lib/metrics/precision_recall';
import { Rng } from '../lib/util/rng';
import { METRICS_EXPECTED, metricsMatrix } from './helpers';

const addon = loadNativeAddon();
const NATIVE = manifoldKernels(addon);
const skip = NATIVE.name === 'native' ? false
  : addon ? `the native addon predates radiiBlock/prBlock; rebuild it with: ${BUILD_COMMAND}`
    : `native addon not built (${nativeLoadError()}); build it with: ${BUILD_COMMAND}`;

before(async () => {
  await initBackend({ quiet: true });
});

/** Features around five shared centres, with exact duplicates (zero distances, ties among the radii). */
function clustered(n: number, d: number, seed: number): FeatureMatrix {
  const centres = new Rng(99).fillNormal(new Float32Array(5 * d), 0, 2);
  const rng = new Rng(seed);
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const c = i % 5;
    for (let a = 0; a < d; a++) x[i * d + a] = centres[c * d + a] + rng.normal() * (seed === 1 ? 0.7 : 0.9);
  }
  for (let i = 3; i < n; i += 7) x.copyWithin(i * d, (i - 3) * d, (i - 2) * d); // duplicates
  return featureMatrix(x, n, d);
}

describe('precision/recall block loops in C', { skip }, () => {
  test('radii, precision and recall equal the TypeScript loops bit for bit, for every blocking', async () => {
    const ref = clustered(157, 24, 1), sample = clustered(131, 24, 2);
    const blockings: ManifoldOptions[] = [
      {}, { rowBatchSize: 37, colBatchSize: 53 }, { rowBatchSize: 64, colBatchSize: 16 }, { rowBatchSize: 10, colBatchSize: 100, exploitSymmetry: false },
      { k: 5, rowBatchSize: 29, colBatchSize: 29 },
    ];
    for (const o of blockings) {
      const [rn, rt] = [await manifoldRadii(ref, o, NATIVE), await manifoldRadii(ref, o, TYPESCRIPT_MANIFOLD)];
      const [sn, st] = [await manifoldRadii(sample, o, NATIVE), await manifoldRadii(sample, o, TYPESCRIPT_MANIFOLD)];
      assert.deepEqual(rn, rt, `reference radii ${JSON.stringify(o)}`);
      assert.deepEqual(sn, st, `sample radii ${JSON.stringify(o)}`);
      const pn = await evaluatePr(ref, rn, sample, sn, o, NATIVE), pt = await evaluatePr(ref, rt, sample, st, o, TYPESCRIPT_MANIFOLD);
      assert.deepEqual(pn, pt, `precision/recall ${JSON.stringify(o)}`);
      assert.ok(pn.precision > 0 && pn.precision < 1 && pn.recall > 0 && pn.recall < 1, JSON.stringify(pn));
    }
  });

  test('exactly ADM on the fixture (the default path is the C one)', async () => {
    const e = METRICS_EXPECTED.precision_recall;
    assert.equal(manifoldKernels().name, 'native');
    const r = await precisionRecall(metricsMatrix(e.ref), metricsMatrix(e.sample));
    assert.equal(r.precision, e.precision);
    assert.equal(r.recall, e.recall);
  });

  test('the addon checks that a block fits its arrays', () => {
    const norms = new Float32Array(4), best = new Float64Array(16).fill(Infinity), worst = new Float64Array(4).fill(Infinity);
    const uv = new Float32Array(8);
    const radii = addon!.radiiBlock!.bind(addon), pr = addon!.prBlock!.bind(addon);
    assert.doesNotThrow(() => radii(uv, 2, 4, 0, 0, 2, norms, best, worst, 4));
    assert.throws(() => radii(uv, 2, 4, 3, 0, 2, norms, best, worst, 4), /does not fit/); // rows past the set
    assert.throws(() => radii(uv, 2, 4, 0, 1, 2, norms, best, worst, 4), /does not fit/); // columns past the set
    assert.throws(() => radii(uv, 2, 4, 0, 0, 5, norms, best, worst, 4), /does not fit/); // mirrorFrom outside the block
    assert.throws(() => radii(uv, 3, 4, 0, 0, 2, norms, best, worst, 4), /does not fit/); // uv too small
    assert.throws(() => radii(uv, 2, 4, 0, 0, 2, norms, best, worst, 3), /does not fit/); // best is not n x k1
    const flags = new Uint8Array(4), r4 = new Float32Array(4);
    assert.doesNotThrow(() => pr(uv, 2, 4, 2, 0, norms, norms, r4, r4, flags, flags));
    assert.throws(() => pr(uv, 2, 4, 3, 0, norms, norms, r4, r4, flags, flags), /does not fit/);
    assert.throws(() => pr(uv, 2, 4, 0, 0, norms, norms, r4, r4, new Uint8Array(3), flags), /does not fit/);
    assert.throws(() => pr(uv, 2, 4, 0, 0, norms, norms, r4, r4, flags as unknown as Uint8Array, new Int8Array(4) as unknown as Uint8Array), /Uint8Array/);
  });
});

test('the TypeScript loops are used when the addon is absent or lacks them', () => {
  assert.equal(manifoldKernels(null), TYPESCRIPT_MANIFOLD);
  assert.equal(manifoldKernels({}), TYPESCRIPT_MANIFOLD);
  const stale: Partial<NativeAddon> = { ...(addon ?? {}), prBlock: undefined };
  assert.equal(manifoldKernels(stale), TYPESCRIPT_MANIFOLD);
  assert.equal(manifoldKernels({ ...(addon ?? {}), radiiBlock: undefined }), TYPESCRIPT_MANIFOLD);
});
