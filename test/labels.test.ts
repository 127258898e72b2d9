// Class labels outside [0, numClasses) are an error wherever they enter (the JS forward,
// sampling, training data, `dit inspect --forward`, `dit sample --classes`), naming the
// value and the allowed range; the null class (index numClasses) stays usable by
// classifier-free guidance. Also: batch sizes and empty data say what is wrong.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend';
import { readNpz, writeNpz } from '../lib/io/npy';
import { ditConfig } from '../lib/model/config';
import { createDiT, disposeDiT, ditForward, forwardWithCfg } from '../lib/model/dit';
import { sampleDiT } from '../lib/sample/sample';
import { arraySource, TrainingSource } from '../lib/train/source';
import { train } from '../lib/train/trainer';
import { repoRoot } from '../lib/util/paths';
import { tempDirs, tinyRun } from './helpers';

const tmp = tempDirs('dit-labels-');
const FIX = path.join(repoRoot(), 'test', 'fixtures', 'dit');
const CLI = path.join(__dirname, '..', 'lib', 'cli', 'index.js');

test.before(async () => {
  await initBackend({ quiet: true });
});

const tiny = (over: Record<string, unknown> = {}) => ditConfig('mini-S/4', { inputSize: 8, hiddenSize: 16, numHeads: 2, depth: 1, numClasses: 3, ...over });

test('the forward pass refuses labels outside the classes, and takes the null class only where guidance has one', () => {
  const m = createDiT(tiny(), 0);
  const noNull = createDiT(tiny({ classDropoutProb: 0 }), 0);
  try {
    const x = tf.zeros([2, 4, 8, 8]);
    const t = tf.tensor1d([5, 9], 'int32');
    const fwd = (model: typeof m, y: number[]) => tf.tidy(() => ditForward(model, x, t, tf.tensor1d(y, 'int32')).shape);
    assert.deepEqual(fwd(m, [0, 2]), [2, 8, 8, 8]);
    assert.deepEqual(fwd(m, [3, 1]), [2, 8, 8, 8], 'the null class (3) of a model with label dropout');
    assert.throws(() => fwd(m, [1, 4]), /y: label 4 \(index 1\) is outside the allowed range \[0, 3\) or 3 \(the null class of classifier-free guidance\): the model has 3 classes/);
    assert.throws(() => fwd(m, [-1, 0]), /label -1 \(index 0\) is outside/);
    assert.throws(() => fwd(noNull, [3, 0]), /label 3 \(index 0\) is outside the allowed range \[0, 3\): the model has 3 classes/);
    // Guidance passes the null class itself.
    assert.deepEqual(tf.tidy(() => forwardWithCfg(m, x, t, tf.tensor1d([0, 2], 'int32'), 2).shape), [2, 8, 8, 8]);
    tf.dispose([x, t]);
  } finally {
    disposeDiT(m);
    disposeDiT(noNull);
  }
});

test('sampling refuses labels outside the classes (the null class too) and a batch size of 0; guided sampling works', { timeout: 60_000 }, () => {
  const m = createDiT(tiny(), 0);
  try {
    const o = { sampler: 'ddpm' as const, steps: 2, cfgScale: 1, guidanceChannels: 'first3' as const, seed: 0 };
    assert.throws(() => sampleDiT(m, { ...o, labels: [0, 3] }), /sampling mini-S\/4: label 3 \(index 1\) is outside the allowed range \[0, 3\): the model has 3 classes/);
    assert.throws(() => sampleDiT(m, { ...o, labels: [0.5] }), /label 0\.5 is outside/);
    assert.throws(() => sampleDiT(m, { ...o, labels: [0, 1], batchSize: 0 }), /batch size must be a positive integer, got 0/);
    const r = sampleDiT(m, { ...o, labels: [0, 1, 2], cfgScale: 3 });
    assert.deepEqual(r.shape, [3, 4, 8, 8]);
    assert.ok(r.latents.every(Number.isFinite));
  } finally {
    disposeDiT(m);
  }
});

test('training data with a label outside the model\'s classes is an error naming it; empty data and batch size 0 too', async () => {
  const { options, source } = tinyRun({ steps: 1 });
  assert.throws(() => arraySource(new Float32Array(2 * 256), Int32Array.from([0, 3]), [4, 8, 8], 3, 'bad'), /arraySource bad: label 3 \(index 1\) is outside the allowed range \[0, 3\)/);
  // A source whose labels lie (a corrupt dataset): the step that reads them says so.
  const lying: TrainingSource = { ...source, read: (idx, flips) => ({ ...source.read(idx, flips), y: Int32Array.from(idx, () => 7) }) };
  await assert.rejects(train(tmp(), options, lying, { quiet: true }), /training data tiny: label 7 \(index 0\) is outside the allowed range \[0, 3\): the model has 3 classes/);
  await assert.rejects(train(tmp(), { ...options, batchSize: 0 }, source, { quiet: true }), /batch size must be a positive integer, got 0/);
  const empty = arraySource(new Float32Array(0), new Int32Array(0), [4, 8, 8], 3, 'none');
  await assert.rejects(train(tmp(), options, empty, { quiet: true }), /the training data none is empty/);
});

test('`dit inspect --forward` refuses labels outside the checkpoint\'s classes, naming the file', () => {
  const dir = tmp();
  const io = readNpz(path.join(FIX, 'tiny-p2.io.npz'));
  const run = (y: number[]) => {
    const file = path.join(dir, `y${y.join('_')}.npz`);
    writeNpz(file, { x: io.x, t: io.t, y: { dtype: 'int64', shape: [3], data: BigInt64Array.from(y.map(BigInt)) } });
    return spawnSync(process.execPath, [CLI, 'inspect', '--checkpoint', path.join(FIX, 'tiny-p2.pt'), '--model', path.join(FIX, 'tiny-p2.json'),
      '--forward', file, '--out', path.join(dir, 'out.npz')], { encoding: 'utf8', env: { ...process.env, DIT_QUIET: '1' } });
  };
  // tiny-p2: 5 classes with label dropout, so 5 is its null row (PyTorch accepts it too).
  assert.equal(run([0, 4, 5]).status, 0);
  const bad = run([0, 6, 1]);
  assert.equal(bad.status, 1, bad.stderr);
  assert.match(bad.stderr, /y0_6_1\.npz: y: label 6 \(index 1\) is outside the allowed range \[0, 5\) or 5 \(the null class of classifier-free guidance\): the model has 5 classes/);
  assert.match(run([-2, 0, 0]).stderr, /label -2 \(index 0\) is outside/);
});

test('`dit sample` says what is wrong with --classes and --batch-size 0', () => {
  const dir = tmp();
  const sample = (...flags: string[]) => spawnSync(process.execPath, [CLI, 'sample', '--checkpoint', path.join(FIX, 'tiny-p2.pt'), '--model', path.join(FIX, 'tiny-p2.json'),
    '--steps', '2', '--out', path.join(dir, 's.npz'), ...flags], { encoding: 'utf8', env: { ...process.env, DIT_QUIET: '1' } });
  const cls = sample('--classes', '1,5');
  assert.equal(cls.status, 1);
  assert.match(cls.stderr, /--classes: label 5 \(index 1\) is outside the allowed range \[0, 5\): the model has 5 classes/);
  const bs = sample('--batch-size', '0');
  assert.equal(bs.status, 2);
  assert.match(bs.stderr, /flag --batch-size needs a positive integer, got '0'/);
  const ok = sample('--classes', '0,4', '--batch-size', '1');
  assert.equal(ok.status, 0, ok.stderr);
  assert.deepEqual(Array.from(readNpz(path.join(dir, 's.npz')).labels.data as Int32Array), [0, 4]);
});
