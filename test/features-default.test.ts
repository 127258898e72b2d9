// The default feature network: output shapes, BatchNorm folding, seeded training, the
// on-disk cache; and, only when a trained network is already cached, its held-out accuracy.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend';
import { MemoryDataset } from '../lib/data/dataset';
import { generateSynthetic, SYNTHETIC_CLASSES, SyntheticDataset } from '../lib/data/synthetic';
import {
  DEFAULT_CNN_CONFIG, DefaultCnn, defaultCnnForward, defaultCnnShapes, initDefaultCnnWeights, spatialDimOf,
} from '../lib/features/default_cnn';
import { RunningStats, foldBatchNorm, trainDefaultCnn, trainingLogits, trainingShapes, learningRate } from '../lib/features/default_train';
import {
  DEFAULT_CNN_DATASET, HELD_OUT, TARGET_ACCURACY, defaultCnnDir, defaultCnnId, defaultCnnProblem, ensureDefaultFeatureNet, loadDefaultFeatureNet,
  saveDefaultFeatureNet,
} from '../lib/features/default_store';
import { classifierAccuracy } from '../lib/features/default_train';
import { TrainingDiverged } from '../lib/train/step';
import { Rng } from '../lib/util/rng';

test.before(async () => {
  await initBackend({ quiet: true });
});

const tiny = () => {
  const b = generateSynthetic({ seed: 3, count: 40 });
  return new MemoryDataset(b.images, b.labels, 32, 3, [...SYNTHETIC_CLASSES]);
};

test('default CNN gives 128-d pool, 10 logits and 8x8x32 spatial features, for 32 px and resized 64 px images', () => {
  const net = new DefaultCnn(initDefaultCnnWeights(DEFAULT_CNN_CONFIG, 1, 'he'), DEFAULT_CNN_CONFIG, 'test');
  try {
    assert.equal(net.poolDim, 128);
    assert.equal(net.numClasses, 10);
    assert.equal(net.spatialDim, 8 * 8 * 32);
    assert.equal(spatialDimOf(DEFAULT_CNN_CONFIG), 2048);
    for (const size of [32, 64]) {
      const b = generateSynthetic({ seed: 0, count: 3, size });
      const out = net.forward(b.images, 3, size, size);
      assert.deepEqual(out.pool.shape, [3, 128]);
      assert.deepEqual(out.logits.shape, [3, 10]);
      assert.deepEqual(out.spatial.shape, [3, 2048]);
      assert.ok(out.pool.dataSync().every(Number.isFinite));
      // The head alone gives the same logits from the pool vectors.
      const head = net.logitsFromPool(out.pool.dataSync() as Float32Array, 3);
      const logits = out.logits.dataSync();
      head.forEach((v, i) => assert.ok(Math.abs(v - logits[i]) < 1e-5 * (1 + Math.abs(logits[i]))));
      tf.dispose([out.pool, out.logits, out.spatial]);
    }
  } finally {
    net.dispose();
  }
});

test('BatchNorm folding: the folded network equals the training network when the running statistics are the batch statistics', () => {
  const c = DEFAULT_CNN_CONFIG;
  const rng = new Rng(9);
  const params: Record<string, tf.Tensor> = {};
  for (const [name, shape] of trainingShapes(c)) {
    const v = rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1)), 0, name.includes('.weight') ? 0.2 : 0.5);
    if (name.endsWith('.gamma')) v.forEach((x, i) => (v[i] = 1 + 0.3 * x));
    params[name] = tf.tensor(v, shape);
  }
  const b = generateSynthetic({ seed: 4, count: 6 });
  const x = tf.tensor4d(Float32Array.from(b.images, (p) => p / 127.5 - 1), [6, 32, 32, 3]);
  const stats: RunningStats = { mean: [], variance: [] };
  const train = trainingLogits(params, c, x, (i, mean, variance) => {
    stats.mean[i] = Float64Array.from(mean);
    stats.variance[i] = Float64Array.from(variance);
  });
  const host: Record<string, Float32Array> = {};
  for (const [k, v] of Object.entries(params)) host[k] = v.dataSync() as Float32Array;
  const folded = foldBatchNorm(c, host, stats);
  assert.deepEqual(Object.keys(folded).sort(), defaultCnnShapes(c).map(([n]) => n).sort());
  const fp: Record<string, tf.Tensor> = {};
  for (const [k, a] of Object.entries(folded)) fp[k] = tf.tensor(a.data as Float32Array, a.shape);
  const out = defaultCnnForward(fp, c, x);
  const want = train.dataSync(), got = out.logits.dataSync();
  let err = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  assert.ok(err < 1e-3 * scale, `max error ${err} at scale ${scale}`);
  tf.dispose([x, train, out.pool, out.logits, out.spatial, ...Object.values(params), ...Object.values(fp)]);
});

test('training is reproducible from the seed and moves the weights', () => {
  const ds = tiny();
  const opts = { steps: 3, batchSize: 8, seed: 11 };
  const a = trainDefaultCnn(ds, opts), b = trainDefaultCnn(ds, opts);
  const init = initDefaultCnnWeights(DEFAULT_CNN_CONFIG, 11);
  for (const [name] of defaultCnnShapes(DEFAULT_CNN_CONFIG)) {
    assert.deepEqual(a.weights[name].data, b.weights[name].data, name);
  }
  assert.notDeepEqual(a.weights['fc.weight'].data, init['fc.weight'].data);
  assert.ok(Number.isFinite(a.finalLoss));
  const c = trainDefaultCnn(ds, { ...opts, seed: 12 });
  assert.notDeepEqual(c.weights['fc.weight'].data, a.weights['fc.weight'].data);
});

test('a diverging run stops at the shared optimiser step with its error', () => {
  // An infinite learning rate: step 1 ruins the weights, step 2's loss is not finite.
  assert.throws(() => trainDefaultCnn(tiny(), { steps: 3, batchSize: 8, lr: Infinity }),
    (e: Error) => e instanceof TrainingDiverged && /^default CNN training diverged: loss is (NaN|-?Infinity) at step 2; stopping \(nothing is written\)$/.test(e.message));
});

test('learning rate: linear warm-up to the peak, cosine to zero', () => {
  assert.ok(Math.abs(learningRate(9, 100, 1, 0.1) - 1) < 1e-12);
  assert.ok(learningRate(0, 100, 1, 0.1) < learningRate(5, 100, 1, 0.1));
  assert.ok(Math.abs(learningRate(55, 100, 1, 0.1) - 0.5) < 0.02);
  assert.ok(learningRate(99, 100, 1, 0.1) < 0.001);
});

test('the cache: an intact folder loads without training; a changed weight file is reported', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-cnn-'));
  assert.match(defaultCnnProblem(dir) ?? '', /no manifest\.json/);
  const weights = initDefaultCnnWeights(DEFAULT_CNN_CONFIG, 2, 'he');
  const m = saveDefaultFeatureNet(dir, weights, {
    config: DEFAULT_CNN_CONFIG, dataset: { ...DEFAULT_CNN_DATASET, sha256: 'test' }, heldOut: { ...HELD_OUT, accuracy: 0 },
    train: { seed: 2, steps: 0, wallSeconds: 0, cpuSeconds: 0 },
  });
  assert.equal(defaultCnnProblem(dir), null);
  const got = ensureDefaultFeatureNet({ dir, log: () => {} });
  assert.equal(got.trained, false);
  assert.equal(got.net.id, defaultCnnId(m));
  got.net.dispose();
  const file = path.join(dir, m.weights.file);
  const bytes = fs.readFileSync(file);
  bytes[bytes.length - 1] ^= 1;
  fs.writeFileSync(file, bytes);
  assert.match(defaultCnnProblem(dir) ?? '', /does not match the sha256/);
  assert.throws(() => loadDefaultFeatureNet(dir), /npx dit-kit features train/);
});

// CI trains nothing heavy: this runs only where `dit features train` has been run.
const cached = defaultCnnProblem(defaultCnnDir());
test(`the trained default network reaches ${100 * TARGET_ACCURACY}% on held-out images`, { skip: cached !== null && `no trained network cached (${cached})` }, () => {
  const { net, manifest } = loadDefaultFeatureNet();
  try {
    assert.ok(manifest.heldOut.accuracy >= TARGET_ACCURACY, `manifest says ${manifest.heldOut.accuracy}`);
    // A fresh check on 2000 of the held-out images (another seed than the training set).
    const acc = classifierAccuracy(net, new SyntheticDataset({ num: 2000, seed: HELD_OUT.seed }));
    assert.ok(acc >= TARGET_ACCURACY - 0.01, `held-out accuracy ${acc}`);
  } finally {
    net.dispose();
  }
});
