import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend';
import { MemoryDataset } from '../lib/data/dataset';
import { encodeSafetensors, readSafetensors } from '../lib/io/safetensors';
import { ditConfig } from '../lib/model/config';
import { createDiT, disposeDiT, ditForward } from '../lib/model/dit';
import { adamWStep, clipGradNorm, createAdamW, disposeAdamW, DIT_ADAMW, gradNorm } from '../lib/train/adamw';
import { EpochOrder, StreamOrder, drawFlips, epochPermutation } from '../lib/train/order';
import { optimizerStep, TrainingDiverged } from '../lib/train/step';
import { closeRun, openRun, train } from '../lib/train/trainer';
import { Rng } from '../lib/util/rng';
import { reshapeCheckpointTensor, tempDirs, tinyRun } from './helpers';
import { repoRoot } from '../lib/util/paths';
import { truncateStepCsv } from '../lib/util/step_csv';

const tmp = tempDirs('dit-');

function weights(vars: Record<string, tf.Variable>): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [k, v] of Object.entries(vars)) out[k] = Array.from(v.dataSync());
  return out;
}

test.before(async () => {
  await initBackend({ quiet: true });
});

test('AdamW and gradient clipping match torch.optim.AdamW / clip_grad_norm_', () => {
  const fx = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'test/fixtures/train/adamw.json'), 'utf8'));
  for (const cs of fx.cases) {
    const params: Record<string, tf.Variable> = {};
    for (const [k, s] of Object.entries(fx.shapes)) params[k] = tf.variable(tf.tensor(fx.p0[k], s as number[]));
    const st = createAdamW(params, { ...DIT_ADAMW, lr: cs.lr, weightDecay: cs.weightDecay });
    fx.grads.forEach((g: Record<string, number[]>, i: number) => {
      const grads: Record<string, tf.Tensor> = {};
      for (const [k, s] of Object.entries(fx.shapes)) grads[k] = tf.tensor(g[k], s as number[]);
      adamWStep(st, params, grads);
      for (const k of Object.keys(params)) {
        const got = params[k].dataSync();
        cs.after[i][k].forEach((w: number, j: number) => assert.ok(Math.abs(got[j] - w) <= 1e-6 + 1e-5 * Math.abs(w), `lr ${cs.lr} step ${i + 1} ${k}[${j}]: ${got[j]} vs ${w}`));
      }
    });
  }
  const grads: Record<string, tf.Tensor> = {};
  for (const [k, s] of Object.entries(fx.shapes)) grads[k] = tf.tensor(fx.grads[2][k], s as number[]);
  const { grads: clipped, norm } = clipGradNorm(grads, fx.clip.maxNorm);
  assert.ok(Math.abs(norm - fx.clip.norm) < 1e-4 * fx.clip.norm);
  for (const k of Object.keys(clipped)) {
    const got = clipped[k].dataSync();
    fx.clip.grads[k].forEach((w: number, j: number) => assert.ok(Math.abs(got[j] - w) < 1e-5));
  }
});

test('training lowers the loss and keeps the tensor count flat', async () => {
  const { options, source } = tinyRun({ steps: 30, ckptEvery: 1000 });
  const dir = tmp('train-');
  const atOpen = tf.memory().numTensors;
  const counts: number[] = [];
  const losses: number[] = [];
  const st = await train(dir, options, source, { quiet: true, onStep: (log) => { counts.push(tf.memory().numTensors); losses.push(log.loss); } });
  assert.equal(new Set(counts.slice(2)).size, 1, `tensor count drifts: ${counts.join(',')}`);
  const early = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
  const late = losses.slice(-5).reduce((a, b) => a + b) / 5;
  assert.ok(late < early, `loss did not go down: ${early} -> ${late}`);
  const csv = fs.readFileSync(path.join(dir, 'loss.csv'), 'utf8').trim().split('\n');
  assert.equal(csv[0], 'step,loss,mse,vb,train_gflops');
  assert.equal(csv.length, 31);
  closeRun(st);
  // tf.variable does not own its initial tensor: a run that kept them leaked four copies of the model per cell.
  assert.equal(tf.memory().numTensors, atOpen, 'closing a run frees every tensor its model, EMA and optimiser made');
});

test('a run killed with kill -9 resumes to the same weights as an uninterrupted run', async () => {
  const { options, source } = tinyRun();
  const full = await train(tmp('full-'), options, source, { quiet: true });
  const want = { model: weights(full.model.params), ema: weights(full.ema) };
  closeRun(full);

  const dir = tmp('kill-');
  const child = spawn(process.execPath, [path.join(repoRoot(), 'test/fixtures/train/child.js'), path.join(__dirname, '..'), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      // Kill mid-run: after the step-3 log line, i.e. after the step-2 checkpoint and before step 4's.
      if (/step 3\n/.test(out)) {
        child.kill('SIGKILL');
        resolve();
      }
    });
    child.on('exit', (code) => (code === 0 ? reject(new Error('child finished before it was killed')) : resolve()));
  });
  await new Promise((r) => child.on('close', r));
  assert.ok(fs.existsSync(path.join(dir, 'checkpoint.safetensors')));
  const resumed = await train(dir, options, source, { quiet: true });
  assert.equal(resumed.step, 8);
  assert.deepEqual(weights(resumed.model.params), want.model);
  assert.deepEqual(weights(resumed.ema), want.ema);
  const csv = fs.readFileSync(path.join(dir, 'loss.csv'), 'utf8').trim().split('\n');
  assert.deepEqual(csv.slice(1).map((l) => Number(l.split(',')[0])), [1, 2, 3, 4, 5, 6, 7, 8]);
  closeRun(resumed);
});

test('corrupt and mismatched checkpoints are refused with a clear error', async () => {
  const { options, source } = tinyRun({ steps: 2 });
  const dir = tmp('ck-');
  closeRun(await train(dir, options, source, { quiet: true }));
  // A different run (other seed) must not silently continue this one.
  assert.throws(() => openRun(dir, { ...options, seed: 8 }, source), /belongs to a different run/);
  const f = path.join(dir, 'checkpoint.safetensors');
  const bytes = fs.readFileSync(f);
  // An EMA or optimiser tensor with the right element count in the wrong shape is refused, not reshaped.
  for (const group of ['ema/', 'adam_m/', 'adam_v/']) {
    const name = reshapeCheckpointTensor(f, f, group);
    assert.throws(() => openRun(dir, options, source), (e: Error) => e.message.startsWith(`checkpoint ${f} does not fit this run: ${name} has shape [`));
    fs.writeFileSync(f, bytes);
  }
  // A truncated file.
  fs.writeFileSync(f, bytes.subarray(0, Math.floor(bytes.length / 2)));
  assert.throws(() => openRun(dir, options, source), /corrupt checkpoint .*checkpoint\.safetensors/);
  // Not a checkpoint at all.
  fs.writeFileSync(f, 'hello');
  assert.throws(() => openRun(dir, options, source), /corrupt checkpoint/);
});

test('a NaN loss stops the run with a clear error and keeps the last good checkpoint', async () => {
  const good = tinyRun({ steps: 2 });
  const dir = tmp('nan-');
  closeRun(await train(dir, good.options, good.source, { quiet: true }));
  const before = fs.readFileSync(path.join(dir, 'checkpoint.safetensors'));
  const bad = tinyRun({ steps: 4 }, true);
  await assert.rejects(train(dir, bad.options, bad.source, { quiet: true }), (e: Error) => e instanceof TrainingDiverged && /loss is NaN at step 3/.test(e.message));
  // The shared optimiser step's error, with the trainer's context.
  await assert.rejects(train(dir, bad.options, bad.source, { quiet: true }),
    (e: Error) => /^DiT training diverged: loss is NaN at step 3; stopping \(the last good checkpoint in .* is kept\)$/.test(e.message));
  assert.deepEqual(fs.readFileSync(path.join(dir, 'checkpoint.safetensors')), before);
});

test('a resumed run keeps the loss rows up to its checkpoint step and rewrites the rest', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-csv-'));
  try {
    const f = path.join(dir, 'loss.csv');
    const header = 'step,loss\n';
    truncateStepCsv(f, header, 4);
    assert.equal(fs.readFileSync(f, 'utf8'), header, 'a new log starts with its header');
    fs.appendFileSync(f, '1,0.9\n2,0.8\n3,0.7\n10,0.5\n');
    truncateStepCsv(f, header, 2);
    assert.equal(fs.readFileSync(f, 'utf8'), 'step,loss\n1,0.9\n2,0.8\n');
    truncateStepCsv(f, header, 0);
    assert.equal(fs.readFileSync(f, 'utf8'), header, 'step 0 starts over');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** Two trainable tensors and a frozen one, and a loss in which all three take part. */
function smallParams() {
  const params: Record<string, tf.Variable> = {
    w: tf.variable(tf.tensor2d([[0.5, -1], [2, 0.25]]), true, 'step-test-w-' + Math.random()),
    b: tf.variable(tf.tensor1d([0.1, -0.3]), true, 'step-test-b-' + Math.random()),
    frozen: tf.variable(tf.tensor1d([3, 4]), false, 'step-test-f-' + Math.random()),
  };
  const x = tf.tensor2d([[1, 2], [-1, 0.5], [0, 3]]);
  // Mean squared output of x w + b + frozen: every parameter takes part.
  const loss = () => tf.mean(tf.square(tf.add(tf.add(tf.matMul(x, params.w), params.b), params.frozen))) as tf.Scalar;
  const dispose = () => tf.dispose([x, ...Object.values(params)]);
  return { params, loss, dispose };
}

test('the shared optimiser step: gradients by state_dict name reach every trainable parameter, then clip and AdamW', () => {
  const clip = 0.5;
  for (const gradClip of [null, clip]) {
    const a = smallParams(), b = smallParams();
    const optA = createAdamW(a.params, { ...DIT_ADAMW, lr: 0.01 }), optB = createAdamW(b.params, { ...DIT_ADAMW, lr: 0.01 });
    assert.deepEqual(Object.keys(optA.m).sort(), ['b', 'w'], 'the frozen tensor has no optimiser state');
    const before = tf.memory().numTensors;
    const r = optimizerStep(() => ({ loss: a.loss(), terms: { twice: tf.mul(a.loss(), 2), none: undefined } }), { params: a.params, opt: optA, step: 1, lr: 0.02, gradClip });
    assert.equal(tf.memory().numTensors, before, 'the step disposes what it made');
    // The same step by hand.
    const { value, grads } = tf.variableGrads(b.loss, [b.params.w, b.params.b]);
    let g: Record<string, tf.Tensor> = { w: grads[b.params.w.name], b: grads[b.params.b.name] };
    const norm = gradNorm(g);
    if (gradClip) g = clipGradNorm(g, gradClip).grads;
    adamWStep(optB, b.params, g, 0.02);
    assert.equal(r.loss, value.dataSync()[0]);
    assert.equal(r.terms.twice, 2 * r.loss, 'logged terms are read back');
    assert.ok(!('none' in r.terms));
    assert.equal(r.gradNorm, gradClip ? norm : null);
    if (gradClip) assert.ok(norm > clip, 'the clip is active in this test');
    assert.equal(optA.step, 1);
    assert.equal(optA.config.lr, 0.01, 'the step lr does not change the configured one');
    assert.deepEqual(weights(a.params), weights(b.params));
    assert.deepEqual(weights(optA.m), weights(optB.m));
    assert.deepEqual(Array.from(a.params.frozen.dataSync()), [3, 4], 'non-trainable tensors stay');
    for (const k of ['w', 'b']) assert.notDeepEqual(Array.from(a.params[k].dataSync()), Array.from(smallParams().params[k].dataSync()), `${k} moved`);
    tf.dispose([value, ...Object.values(g)]);
    disposeAdamW(optA);
    disposeAdamW(optB);
    a.dispose();
    b.dispose();
  }
});

test('the shared optimiser step reaches every trainable tensor of a DiT', () => {
  // xavier everywhere (not adaLN-Zero, whose zero layers give exact zero gradients at init).
  const model = createDiT(ditConfig('mini-S/4', { inputSize: 8, hiddenSize: 16, numHeads: 2, depth: 1, numClasses: 3, variant: 'adaln' }), 3);
  const opt = createAdamW(model.params, { ...DIT_ADAMW, lr: 1e-2 });
  const start = weights(model.params);
  const rng = new Rng(4);
  const x = tf.tensor4d(rng.fillNormal(new Float32Array(4 * 4 * 8 * 8)), [4, 4, 8, 8]);
  const t = tf.tensor1d([1, 200, 500, 999], 'int32'), y = tf.tensor1d([0, 1, 2, 3], 'int32');
  optimizerStep(() => tf.mean(tf.square(ditForward(model, x, t, y))) as tf.Scalar, { params: model.params, opt, step: 1 });
  const after = weights(model.params);
  for (const [k, v] of Object.entries(model.params)) {
    if (v.trainable) assert.notDeepEqual(after[k], start[k], `${k} did not move`);
    else assert.deepEqual(after[k], start[k], `${k} is not trainable but moved`);
  }
  assert.ok(!model.params['pos_embed'].trainable);
  tf.dispose([x, t, y]);
  disposeAdamW(opt);
  disposeDiT(model);
});

test('the shared optimiser step: a non-finite loss or gradient, or a parameter out of the loss, changes nothing', () => {
  const a = smallParams();
  const opt = createAdamW(a.params, DIT_ADAMW);
  optimizerStep(a.loss, { params: a.params, opt, step: 1 });
  const root = { r: tf.variable(tf.tensor1d([0, 4]), true, 'step-test-r-' + Math.random()) };
  const rootOpt = createAdamW(root, DIT_ADAMW);
  const snapshot = () => ({ p: weights(a.params), m: weights(opt.m), v: weights(opt.v), step: opt.step });
  const before = snapshot();
  const tensors = tf.memory().numTensors;
  assert.throws(() => optimizerStep(() => tf.mul(a.loss(), NaN) as tf.Scalar, { params: a.params, opt, step: 2, label: 'test training', kept: 'the checkpoint is kept', hint: 'try a lower --lr' }),
    (e: Error) => e instanceof TrainingDiverged && e.message === 'test training diverged: loss is NaN at step 2; stopping (the checkpoint is kept); try a lower --lr');
  assert.throws(() => optimizerStep(() => tf.div(a.loss(), 0) as tf.Scalar, { params: a.params, opt, step: 7 }),
    (e: Error) => e.message === 'training diverged: loss is Infinity at step 7; stopping (nothing was updated)');
  // sqrt at 0: a finite loss with an infinite gradient, caught when asked for (and whenever clipping).
  const sqrtLoss = () => tf.sum(tf.sqrt(root.r)) as tf.Scalar;
  for (const o of [{ checkGrads: true }, { gradClip: 1 }]) {
    assert.throws(() => optimizerStep(sqrtLoss, { params: root, opt: rootOpt, step: 3, ...o }), (e: Error) => e instanceof TrainingDiverged && /the gradient norm is Infinity at step 3/.test(e.message));
    assert.deepEqual(Array.from(root.r.dataSync()), [0, 4]);
  }
  assert.equal(optimizerStep(sqrtLoss, { params: root, opt: rootOpt, step: 3 }).gradNorm, null, 'unchecked by default');
  assert.throws(() => optimizerStep(() => tf.sum(a.params.w) as tf.Scalar, { params: a.params, opt, step: 4 }), /no gradient reaches 'b'/);
  assert.deepEqual(snapshot(), before);
  assert.equal(tf.memory().numTensors, tensors, 'a failed step disposes its gradients');
  disposeAdamW(opt);
  disposeAdamW(rootOpt);
  a.dispose();
  root.r.dispose();
});

test('the data order: a permutation per epoch from the seed alone, the same from any sample', () => {
  const n = 7;
  const a = new EpochOrder(n, 5);
  const seq = Array.from({ length: 4 * n }, (_, k) => a.index(k));
  // Pinned: the order of runs already under way must not change.
  assert.deepEqual(seq.slice(0, 16), [0, 2, 3, 1, 6, 5, 4, 6, 5, 2, 4, 3, 1, 0, 3, 2]);
  for (let e = 0; e < 4; e++) {
    const epoch = seq.slice(e * n, (e + 1) * n);
    assert.deepEqual([...epoch].sort(), [0, 1, 2, 3, 4, 5, 6], `epoch ${e} is a permutation`);
    assert.deepEqual(Array.from(epochPermutation(n, 5, e)), epoch);
  }
  assert.notDeepEqual(seq.slice(0, n), seq.slice(n, 2 * n), 'epochs are shuffled anew');
  // Resumed anywhere, in any order of access: the same samples.
  for (const k of [25, 3, 13, 14, 0, 27]) assert.equal(new EpochOrder(n, 5).index(k), seq[k]);
  assert.deepEqual(Array.from(new EpochOrder(n, 5).batch(3, 4)), seq.slice(12, 16), 'batch 3 runs across the epoch boundary');
  assert.notDeepEqual(Array.from({ length: n }, (_, k) => new EpochOrder(n, 6).index(k)), seq.slice(0, n), 'another seed, another order');
  assert.throws(() => new EpochOrder(0, 1), /positive number of samples/);
});

test('the data orders over a dataset: every image once per epoch; the stream order drops the remainder', () => {
  const s = 4, c = 3;
  const images = Uint8Array.from({ length: 8 * s * s * c }, (_, i) => i % 251);
  const ds = new MemoryDataset(images, Int32Array.from({ length: 8 }, (_, i) => i % 3), s, c, ['a', 'b', 'c']);
  // Identify an image by its first pixel's bytes (unique per image here).
  const ids = (idx: Int32Array) => {
    const b = ds.readIndices(idx);
    return Array.from(idx, (_, k) => [...Array(8).keys()].findIndex((i) => images[i * s * s * c + 1] === b.images[k * s * s * c + 1]));
  };
  const order = new EpochOrder(ds.size, 1);
  const seen = Array.from({ length: 6 }, (_, step) => ids(order.batch(step, 3))).flat().slice(0, 16);
  assert.deepEqual(seen.slice(0, 8).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(seen.slice(8, 16).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7]);
  // Batches of 3 from 8 images: two whole batches an epoch, the remainder dropped.
  const stream = new StreamOrder(ds.size, new Rng(1));
  for (let epoch = 0; epoch < 2; epoch++) assert.equal(new Set([...ids(stream.next(3)), ...ids(stream.next(3))]).size, 6);
});

test('flips are drawn from the run stream: one uniform per sample, nothing when off', () => {
  const rng = new Rng(3);
  const state = JSON.stringify(rng.getState());
  assert.equal(drawFlips(rng, 5, false), undefined);
  assert.equal(JSON.stringify(rng.getState()), state, 'no draws when off');
  const ref = Rng.fromState(rng.getState());
  const f = drawFlips(rng, 64, true)!;
  assert.deepEqual(Array.from(f), Array.from({ length: 64 }, () => (ref.uniform() < 0.5 ? 1 : 0)));
  assert.equal(JSON.stringify(rng.getState()), JSON.stringify(ref.getState()));
  assert.ok(f.includes(0) && f.includes(1));
});

test('the stream order: whole batches, remainder dropped, reshuffled from the run stream between its flips', () => {
  const rng = new Rng(12);
  const order = new StreamOrder(7, rng);
  const idx: number[] = [], flips: number[] = [];
  for (let step = 0; step < 5; step++) {
    idx.push(...order.next(3));
    flips.push(...drawFlips(rng, 3, true)!);
  }
  // Pinned to the feature network's order before it moved here (its cached networks depend on it).
  assert.deepEqual(idx, [0, 4, 2, 5, 1, 6, 4, 3, 6, 1, 0, 5, 0, 2, 4]);
  assert.deepEqual(flips, [1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 0, 1, 1, 0, 1]);
  for (const e of [idx.slice(0, 6), idx.slice(6, 12)]) assert.equal(new Set(e).size, 6, 'no sample twice in an epoch');
  assert.throws(() => order.next(8), /batch of 8 from 7/);
});

test('checkpoint metadata that is missing or not JSON is an error naming the file and the field', async () => {
  const { options, source } = tinyRun({ steps: 2 });
  const dir = tmp('meta-');
  closeRun(await train(dir, options, source, { quiet: true }));
  const f = path.join(dir, 'checkpoint.safetensors');
  const st = readSafetensors(f);
  fs.writeFileSync(f, encodeSafetensors(st.tensors, { ...st.metadata, rng: '{"s": [1,' }));
  assert.throws(() => openRun(dir, options, source), (e: Error) => e.message.startsWith(`${f}: metadata 'rng' is not valid JSON (`));
  const { options: _o, ...noOptions } = st.metadata!;
  fs.writeFileSync(f, encodeSafetensors(st.tensors, noOptions));
  assert.throws(() => openRun(dir, options, source), (e: Error) => e.message === `${f}: metadata 'options' is missing`);
});
