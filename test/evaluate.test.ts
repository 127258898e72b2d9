// evaluateSamples and `dit evaluate` / `dit features stats` on images, on precomputed
// features and on statistics, with a default CNN of random weights (nothing is trained).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { initBackend } from '../lib/backend';
import { generateSynthetic } from '../lib/data/synthetic';
import { HostArray } from '../lib/io/array';
import { readNpz, writeNpz } from '../lib/io/npy';
import * as tf from '@tensorflow/tfjs-core';
import { classAccuracy } from '../lib/metrics/class_accuracy';
import { featureStats, frechetDistanceOf } from '../lib/metrics/fid';
import { inceptionScore } from '../lib/metrics/inception_score';
import { featureMatrix, precisionRecall } from '../lib/metrics/precision_recall';
import { DEFAULT_CNN_CONFIG, DefaultCnn, initDefaultCnnWeights } from '../lib/features/default_cnn';
import { DEFAULT_CNN_DATASET, HELD_OUT, defaultCnnId, saveDefaultFeatureNet } from '../lib/features/default_store';
import { evaluateSamples, Evaluation } from '../lib/eval/evaluate';
import { extractFeatures, referenceFeatures } from '../lib/eval/extract';
import { imagesInput, imageSource, readEvalNpz, textArray } from '../lib/eval/inputs';
import { METRICS_EXPECTED, metricsMatrix, readMetricsF32 } from './helpers';

const N = 48;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-eval-'));
const cli = path.join(__dirname, '..', 'lib', 'cli', 'index.js');
/** A stored default CNN of random weights, so the CLI never trains one. */
const cnnDir = path.join(tmp, 'cnn');
let net: DefaultCnn;

const images = (seed: number, count = N) => generateSynthetic({ seed, count }).images;
const arr0 = (px: Uint8Array, n = N): HostArray => ({ dtype: 'uint8', shape: [n, 32, 32, 3], data: px });
const f32 = (data: Float32Array, n: number, d: number): HostArray => ({ dtype: 'float32', shape: [n, d], data });
const f64 = (data: Float64Array, shape: number[]): HostArray => ({ dtype: 'float64', shape, data });

function runCli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, DIT_QUIET: '1' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function evaluateJson(ref: string, sample: string, extra: string[] = []): Record<string, unknown> & { absent: Record<string, string> } {
  const r = runCli(['evaluate', ref, sample, '--default-cnn', cnnDir, '--no-cache', '--json', ...extra]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test.before(async () => {
  await initBackend({ quiet: true });
  const weights = initDefaultCnnWeights(DEFAULT_CNN_CONFIG, 5, 'he');
  const m = saveDefaultFeatureNet(cnnDir, weights, {
    config: DEFAULT_CNN_CONFIG, dataset: { ...DEFAULT_CNN_DATASET, sha256: 'random-weights-for-tests' },
    heldOut: { ...HELD_OUT, accuracy: 0 }, train: { seed: 5, steps: 0, wallSeconds: 0, cpuSeconds: 0 },
  });
  net = new DefaultCnn(weights, DEFAULT_CNN_CONFIG, defaultCnnId(m));
});

test.after(() => {
  net?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function allPresent(e: Evaluation): void {
  assert.deepEqual(e.absent, {});
  for (const k of ['fid', 'sfid', 'inception_score', 'precision', 'recall'] as const) assert.ok(Number.isFinite(e[k]), k);
}

test('features to the five metrics as ADM\'s evaluator main composes them; precomputed reference statistics are used when given', async () => {
  const pr = METRICS_EXPECTED.precision_recall, fx = METRICS_EXPECTED.fid_full, is = METRICS_EXPECTED.inception;
  const sample = metricsMatrix(pr.sample);
  // Spatial features and logits borrowed from the other fixtures, cut to the sample count;
  // the reference's pool features cut to its spatial features' count (one row per image).
  const spatialRef = metricsMatrix(fx.x);
  const pool = metricsMatrix(pr.ref);
  const ref = featureMatrix(pool.data.subarray(0, spatialRef.n * pool.d), spatialRef.n, pool.d);
  const sy = readMetricsF32(fx.y);
  const spatialSample = featureMatrix(sy.subarray(0, 150 * fx.y.shape[1]), 150, fx.y.shape[1]);
  const smallSample = featureMatrix(sample.data.subarray(0, 150 * sample.d), 150, sample.d);
  const logits = readMetricsF32(is.logits).subarray(0, 150 * is.num_classes);
  const samples = { name: 'samples', pool: smallSample, spatial: spatialSample, logits: { data: logits, n: 150, d: is.num_classes } };
  const out = await evaluateSamples({ name: 'reference', pool: ref, spatial: spatialRef }, samples);
  allPresent(out);
  const stats = (f: { data: Float32Array; n: number; d: number }) => featureStats(f.data, f.n, f.d);
  assert.equal(out.inception_score, inceptionScore(logits, is.num_classes).mean);
  assert.equal(out.fid, frechetDistanceOf(stats(smallSample), stats(ref)));
  assert.equal(out.sfid, frechetDistanceOf(stats(spatialSample), stats(spatialRef)));
  const want = await precisionRecall(ref, smallSample);
  assert.deepEqual([out.precision, out.recall], [want.precision, want.recall]);
  const withStats = await evaluateSamples({ name: 'reference', pool: ref, poolStats: stats(ref), spatialStats: stats(spatialRef) }, samples);
  const metrics = (e: Evaluation) => [e.fid, e.sfid, e.inception_score, e.precision, e.recall];
  assert.deepEqual(metrics(withStats), metrics(out));
  assert.match(withStats.sources.fid!, /reference: mu\/sigma in the file/);
  // A reference with neither spatial features nor statistics gives no sFID, and says why.
  const noSpatial = await evaluateSamples({ name: 'reference', pool: ref }, samples);
  assert.equal(noSpatial.sfid, null);
  assert.match(noSpatial.absent.sfid!, /no matching spatial statistics \(sFID\): the reference holds no images/);
  assert.equal(noSpatial.fid, out.fid);
  // Logits that are not one row per sample are refused.
  await assert.rejects(evaluateSamples({ name: 'reference', pool: ref, spatial: spatialRef }, { ...samples, logits: { data: logits.subarray(1), n: 150, d: is.num_classes } }),
    /samples: logits of 150 samples needs 150 x 20 values, got 2999/);
  await assert.rejects(evaluateSamples({ name: 'reference', pool: ref, spatial: spatialRef }, { ...samples, logits: { data: logits.subarray(20), n: 149, d: is.num_classes } }),
    /samples: pool, spatial, logits hold different numbers of rows \(150, 150, 149\)/);
});

test('identical image sets: FID and sFID ~0, precision = recall = 1', async () => {
  const px = images(1);
  const e = await evaluateSamples(imagesInput(px, N, 32, 32, 'ref'), imagesInput(px, N, 32, 32, 'sample'), { net, cacheDir: null });
  allPresent(e);
  assert.ok(Math.abs(e.fid!) < 1e-6, `FID ${e.fid}`);
  assert.ok(Math.abs(e.sfid!) < 1e-6, `sFID ${e.sfid}`);
  assert.equal(e.precision, 1);
  assert.equal(e.recall, 1);
  assert.ok(e.inception_score! >= 1 && e.inception_score! <= 10);
  assert.equal(e.featureNet, net.id);
});

test('different sets give a positive FID; the reference statistics cache is reused', async () => {
  const cacheDir = path.join(tmp, 'stats');
  const ref = imagesInput(images(1), N, 32, 32, 'ref');
  const a = await evaluateSamples(ref, imagesInput(images(2), N, 32, 32, 'sample'), { net, cacheDir });
  allPresent(a);
  assert.ok(a.fid! > 0 && a.sfid! > 0);
  assert.equal(fs.readdirSync(cacheDir).length, 1);
  const cached = referenceFeatures(ref, net, { cacheDir });
  assert.equal(cached.cached, true);
  const b = await evaluateSamples(ref, imagesInput(images(2), N, 32, 32, 'sample'), { net, cacheDir });
  assert.equal(b.fid, a.fid);
  assert.equal(b.precision, a.precision);
});

test('`dit evaluate` on ADM-style image npz files (arr_0)', () => {
  writeNpz(path.join(tmp, 'ref.npz'), { arr_0: arr0(images(1)) });
  writeNpz(path.join(tmp, 'same.npz'), { arr_0: arr0(images(1)), arr_1: { dtype: 'int64', shape: [N], data: new BigInt64Array(N) } });
  writeNpz(path.join(tmp, 'other.npz'), { arr_0: arr0(images(2)) });
  const same = evaluateJson(path.join(tmp, 'ref.npz'), path.join(tmp, 'same.npz'));
  assert.deepEqual(same.absent, {});
  assert.ok(Math.abs(same.fid as number) < 1e-6);
  assert.equal(same.precision, 1);
  assert.equal(same.recall, 1);
  const other = evaluateJson(path.join(tmp, 'ref.npz'), path.join(tmp, 'other.npz'));
  for (const k of ['fid', 'sfid', 'inception_score', 'precision', 'recall']) assert.equal(typeof other[k], 'number', k);
  assert.ok((other.fid as number) > 0);
  // The plain-text report names every metric.
  const text = runCli(['evaluate', path.join(tmp, 'ref.npz'), path.join(tmp, 'other.npz'), '--default-cnn', cnnDir, '--no-cache']);
  assert.equal(text.status, 0, text.stderr);
  for (const label of ['Inception Score:', 'FID:', 'sFID:', 'Precision:', 'Recall:']) assert.ok(text.stdout.includes(label), label);
});

test('`dit evaluate` on precomputed features (pool, spatial, logits); without spatial features sFID is absent', () => {
  const ref = extractFeatures(net, imageSource(images(1), N, 32, 32));
  const smp = extractFeatures(net, imageSource(images(2), N, 32, 32));
  const refFile = path.join(tmp, 'ref-feat.npz'), smpFile = path.join(tmp, 'smp-feat.npz');
  writeNpz(refFile, { pool: f32(ref.pool, N, net.poolDim), spatial: f32(ref.spatial, N, net.spatialDim) });
  writeNpz(smpFile, { pool: f32(smp.pool, N, net.poolDim), spatial: f32(smp.spatial, N, net.spatialDim), logits: f32(smp.logits, N, 10) });
  const full = evaluateJson(refFile, smpFile);
  assert.deepEqual(full.absent, {});
  // Same numbers as from the images themselves.
  writeNpz(path.join(tmp, 'ref-img.npz'), { arr_0: arr0(images(1)) });
  writeNpz(path.join(tmp, 'smp-img.npz'), { arr_0: arr0(images(2)) });
  const fromImages = evaluateJson(path.join(tmp, 'ref-img.npz'), path.join(tmp, 'smp-img.npz'));
  for (const k of ['fid', 'sfid', 'inception_score', 'precision', 'recall']) {
    assert.ok(Math.abs((full[k] as number) - (fromImages[k] as number)) <= 1e-6 * Math.max(1, Math.abs(fromImages[k] as number)), k);
  }
  // Pool only: sFID cannot be computed; IS comes from the network's head on the pool features.
  writeNpz(smpFile, { pool: f32(smp.pool, N, net.poolDim) });
  const poolOnly = evaluateJson(refFile, smpFile);
  assert.equal(poolOnly.sfid, null);
  assert.match(poolOnly.absent.sfid, /no matching spatial statistics.*samples hold no images/);
  assert.ok(Math.abs((poolOnly.inception_score as number) - (fromImages.inception_score as number)) < 1e-4);
  assert.ok(Math.abs((poolOnly.fid as number) - (fromImages.fid as number)) < 1e-6 * (fromImages.fid as number));
});

test('`dit evaluate` on statistics only: FID from mu/sigma; sFID, IS, precision and recall absent with reasons', () => {
  const ref = extractFeatures(net, imageSource(images(1), N, 32, 32));
  const smp = extractFeatures(net, imageSource(images(2), N, 32, 32));
  const rs = featureStats(ref.pool, N, net.poolDim), ss = featureStats(smp.pool, N, net.poolDim);
  const rss = featureStats(ref.spatial, N, net.spatialDim);
  const d = net.poolDim, s = net.spatialDim;
  const refFile = path.join(tmp, 'ref-stats.npz'), smpFile = path.join(tmp, 'smp-stats.npz');
  writeNpz(refFile, { mu: f64(rs.mu, [d]), sigma: f64(rs.sigma, [d, d]), mu_s: f64(rss.mu, [s]), sigma_s: f64(rss.sigma, [s, s]) });
  writeNpz(smpFile, { mu: f64(ss.mu, [d]), sigma: f64(ss.sigma, [d, d]) });
  const e = evaluateJson(refFile, smpFile, ['--features', 'inception']);
  assert.equal(typeof e.fid, 'number');
  assert.ok((e.fid as number) > 0);
  for (const k of ['sfid', 'inception_score', 'precision', 'recall']) assert.equal(e[k], null, k);
  assert.match(e.absent.sfid, /spatial statistics/);
  assert.match(e.absent.inception_score, /no logits/);
  assert.match(e.absent.precision, /statistics do not suffice/);
  assert.equal(e.absent.recall, e.absent.precision);
  // Nothing computable at all: exit status 1, every metric absent.
  writeNpz(path.join(tmp, 'only-spatial.npz'), { mu_s: f64(rss.mu, [s]), sigma_s: f64(rss.sigma, [s, s]) });
  const none = runCli(['evaluate', path.join(tmp, 'only-spatial.npz'), smpFile, '--no-cache', '--json']);
  assert.equal(none.status, 1);
  assert.equal(JSON.parse(none.stdout).fid, null);
});

test('ADM reference batch layout: stored mu/sigma are used for FID, the images for precision/recall', async () => {
  const px = images(1);
  const ref = extractFeatures(net, imageSource(px, N, 32, 32));
  const st = featureStats(ref.pool, N, net.poolDim), sp = featureStats(ref.spatial, N, net.spatialDim);
  const file = path.join(tmp, 'adm-ref.npz');
  writeNpz(file, {
    arr_0: arr0(px), mu: f64(st.mu, [net.poolDim]), sigma: f64(st.sigma, [net.poolDim, net.poolDim]),
    mu_s: f64(sp.mu, [net.spatialDim]), sigma_s: f64(sp.sigma, [net.spatialDim, net.spatialDim]),
  });
  const e = await evaluateSamples(file, imagesInput(images(2), N, 32, 32), { net, cacheDir: null });
  allPresent(e);
  assert.match(e.sources.fid!, /reference: mu\/sigma in the file/);
  assert.match(e.sources.precision!, /reference: pool features of the images/);
  // When the files' statistics suffice, no network is loaded: a missing weights file only
  // closes the routes that need it.
  const stats = path.join(tmp, 'sample-stats.npz');
  writeNpz(stats, { mu: f64(st.mu, [net.poolDim]), sigma: f64(st.sigma, [net.poolDim, net.poolDim]) });
  const s = await evaluateSamples(file, stats, { features: 'inception', inceptionWeights: path.join(tmp, 'missing.pth'), cacheDir: null });
  assert.equal(s.featureNet, null);
  assert.ok(Math.abs(s.fid!) < 1e-6);
  assert.equal(s.precision, null);
  assert.match(s.absent.precision!, /missing\.pth: no such file/);
});

test('features of another network are not mixed: mismatched dimensions or feature_net tags make the metric absent', async () => {
  const smp = extractFeatures(net, imageSource(images(2), N, 32, 32));
  const mu = new Float64Array(2048), sigma = new Float64Array(2048 * 2048);
  for (let i = 0; i < 2048; i++) sigma[i * 2049] = 1;
  const inceptionLike = { name: 'inception-stats', poolStats: { mu, sigma } };
  const e = await evaluateSamples(inceptionLike, { name: 'ours', pool: { data: smp.pool, n: N, d: net.poolDim } }, { net, cacheDir: null });
  assert.equal(e.fid, null);
  assert.match(e.absent.fid!, /2048-d mu\/sigma in the file.*128-d/);
  const tagged = (tag: string) => ({ name: tag, pool: { data: smp.pool, n: N, d: net.poolDim }, featureNet: tag });
  const m = await evaluateSamples(tagged('net-a'), tagged('net-b'), { net, cacheDir: null });
  assert.equal(m.fid, null);
  assert.match(m.absent.fid!, /\[net-a\].*\[net-b\]/);
});

test('`dit features stats` writes ADM-style statistics that `dit evaluate` uses', () => {
  const data = path.join(tmp, 'data.npz');
  writeNpz(data, { arr_0: arr0(images(1)) });
  const out = path.join(tmp, 'ref-from-stats.npz');
  const r = runCli(['features', 'stats', data, '--out', out, '--default-cnn', cnnDir, '--no-cache']);
  assert.equal(r.status, 0, r.stderr);
  const a = readNpz(out);
  assert.deepEqual(a.mu.shape, [net.poolDim]);
  assert.deepEqual(a.sigma.shape, [net.poolDim, net.poolDim]);
  assert.deepEqual(a.mu_s.shape, [net.spatialDim]);
  assert.deepEqual(a.sigma_s.shape, [net.spatialDim, net.spatialDim]);
  assert.deepEqual(a.pool.shape, [N, net.poolDim]);
  assert.equal(readEvalNpz(out).featureNet, net.id);
  const e = evaluateJson(out, data);
  assert.deepEqual(e.absent, {});
  assert.ok(Math.abs(e.fid as number) < 1e-6);
  assert.equal(e.precision, 1);
  // --num takes the first images only.
  const r8 = runCli(['features', 'stats', data, '--out', out, '--default-cnn', cnnDir, '--no-cache', '--num', '8']);
  assert.equal(r8.status, 0, r8.stderr);
  assert.deepEqual(readNpz(out).pool.shape, [8, net.poolDim]);
});

test('`dit features train` keeps an intact stored network (no training without --force)', () => {
  const r = runCli(['features', 'train', '--out', cnnDir]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /already holds the default feature network.*--force retrains it/);
});

test('bad inputs are refused with clear messages', () => {
  writeNpz(path.join(tmp, 'float-images.npz'), { arr_0: { dtype: 'float32', shape: [1, 2, 2, 3], data: new Float32Array(12) } });
  const r = runCli(['evaluate', path.join(tmp, 'float-images.npz'), path.join(tmp, 'float-images.npz'), '--default-cnn', cnnDir, '--no-cache', '--json']);
  assert.equal(r.status, 1);
  assert.match(JSON.parse(r.stdout).absent.fid, /arr_0 is float32\[1, 2, 2, 3\]; expected uint8/);
  writeNpz(path.join(tmp, 'empty.npz'), { labels: textArray('x') });
  assert.throws(() => readEvalNpz(path.join(tmp, 'empty.npz')), /holds none of arr_0/);
  const u = runCli(['evaluate', path.join(tmp, 'empty.npz')]);
  assert.equal(u.status, 2);
  assert.match(u.stderr, /expected REF and SAMPLE/);
});

test('class accuracy: samples carrying their labels (arr_1) are scored by the default CNN; absent or refused otherwise, with the reason', () => {
  assert.equal(classAccuracy([0, 1, 1, 0, 2, 2], 2, [1, 0, 1]), 2 / 3, 'argmax, the first class on ties');
  assert.throws(() => classAccuracy([0, 1], 2, [2]), /label 2 of sample 0 is not one of the classifier's 2 classes/);
  assert.throws(() => classAccuracy([0, 1, 0], 2, [1]), /1 labels need 1 x 2 logits, got 3 values/);
  const px = images(21);
  const f = net.forward(px, N, 32, 32);
  const logits = f.logits.dataSync() as Float32Array;
  tf.dispose([f.pool, f.logits, f.spatial]);
  const k = net.numClasses;
  // The first half labelled as the network's argmax, the second half as another class: 50%.
  const labels = Int32Array.from({ length: N }, (_, i) => {
    let best = 0;
    for (let c = 1; c < k; c++) if (logits[i * k + c] > logits[i * k + best]) best = c;
    return i < N / 2 ? best : (best + 1) % k;
  });
  const sample = path.join(tmp, 'labelled.npz'), ref = path.join(tmp, 'labelled-ref.npz');
  writeNpz(sample, { arr_0: arr0(px), arr_1: { dtype: 'int64', shape: [N], data: BigInt64Array.from(labels, (v) => BigInt(v)) } });
  writeNpz(ref, { arr_0: arr0(images(22)) });
  const e = evaluateJson(ref, sample);
  assert.equal(e.class_accuracy, 0.5);
  assert.deepEqual(e.absent, {});
  const text = runCli(['evaluate', ref, sample, '--default-cnn', cnnDir, '--no-cache']);
  assert.match(text.stdout, /^Class accuracy: 0\.5$/m);
  // Unlabelled samples: not attempted, not printed.
  const plain = runCli(['evaluate', ref, ref, '--default-cnn', cnnDir, '--no-cache']);
  assert.doesNotMatch(plain.stdout, /Class accuracy/);
  // The FID Inception's outputs are not the samples' classes.
  const inc = runCli(['evaluate', ref, sample, '--features', 'inception', '--inception-weights', path.join(tmp, 'missing.pth'), '--no-cache', '--json']);
  assert.match(JSON.parse(inc.stdout).absent.class_accuracy, /needs logits of the kit's default CNN/);
  writeNpz(path.join(tmp, 'bad-labels.npz'), { arr_0: arr0(px), arr_1: { dtype: 'float32', shape: [N], data: new Float32Array(N) } });
  assert.throws(() => readEvalNpz(path.join(tmp, 'bad-labels.npz')), /arr_1 \(labels\) must be a 1-d integer array, got float32\[48\]/);
  writeNpz(path.join(tmp, 'short-labels.npz'), { arr_0: arr0(px), arr_1: { dtype: 'int32', shape: [3], data: new Int32Array(3) } });
  assert.match(evaluateJson(ref, path.join(tmp, 'short-labels.npz')).absent.class_accuracy as string, /3 labels \(arr_1\) for 48 samples/);
});
