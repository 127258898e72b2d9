// End to end: a small MLP eps-model with learned sigma, trained with the kit's hybrid loss
// on a class-conditional mixture of 2-D Gaussians (a point is a [N, 2, 1, 1] "image"),
// then sampled with 50 respaced DDPM steps and with classifier-free guidance.
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend';
import { Rng } from '../lib/util/rng';
import { CondModelFn, classifierFreeGuidance, createDiffusion } from '../lib/diffusion';

const MEANS = [
  [-0.5, -0.4],
  [0.5, -0.3],
  [0.0, 0.6],
];
const STD = 0.08;
const K = MEANS.length; // label K is the null class
const HIDDEN = 96;
const FREQS = 8;

function dense(rng: Rng, nIn: number, nOut: number): { w: tf.Variable; b: tf.Variable } {
  const lim = Math.sqrt(6 / (nIn + nOut));
  return {
    w: tf.variable(tf.tensor2d(rng.fillUniform(new Float32Array(nIn * nOut), -lim, lim), [nIn, nOut])),
    b: tf.variable(tf.zeros([nOut])),
  };
}

function initMlp(rng: Rng): tf.Variable[] {
  const l1 = dense(rng, 2 + 2 * FREQS + K + 1, HIDDEN);
  const l2 = dense(rng, HIDDEN, HIDDEN);
  const l3 = dense(rng, HIDDEN, 4);
  return [l1.w, l1.b, l2.w, l2.b, l3.w, l3.b];
}

/** eps/variance MLP on [x, sinusoidal(t), onehot(y)]; one-hot labels avoid the gather gradient. */
function mlp(p: tf.Tensor[]): CondModelFn {
  const freqs = Array.from({ length: FREQS }, (_, k) => Math.exp((-Math.log(1000) * k) / FREQS));
  const silu = (h: tf.Tensor) => h.mul(tf.sigmoid(h));
  return (x, t, y) =>
    tf.tidy(() => {
      const n = x.shape[0] as number;
      const arg = tf.cast(t, 'float32').reshape([n, 1]).mul(tf.tensor2d(freqs, [1, FREQS]));
      const feats = tf.concat([x.reshape([n, 2]), tf.sin(arg), tf.cos(arg), tf.oneHot(tf.cast(y, 'int32'), K + 1).toFloat()], 1);
      let h = silu(tf.matMul(feats, p[0]).add(p[1]));
      h = silu(tf.matMul(h, p[2]).add(p[3]));
      return tf.matMul(h, p[4]).add(p[5]).reshape([n, 4, 1, 1]);
    });
}

function batch(rng: Rng, n: number, dropProb: number): { x: tf.Tensor; y: Int32Array; yTrain: Int32Array } {
  const pts = new Float32Array(n * 2);
  const y = new Int32Array(n);
  const yTrain = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = rng.int(K);
    yTrain[i] = rng.uniform() < dropProb ? K : y[i];
    pts[2 * i] = MEANS[y[i]][0] + STD * rng.normal();
    pts[2 * i + 1] = MEANS[y[i]][1] + STD * rng.normal();
  }
  return { x: tf.tensor(pts, [n, 2, 1, 1]), y, yTrain };
}

function classStats(samples: Float32Array, labels: number[]): Array<{ mean: number[]; std: number }> {
  return MEANS.map((_, k) => {
    const idx = labels.flatMap((l, i) => (l === k ? [i] : []));
    const m = [0, 1].map((d) => idx.reduce((s, i) => s + samples[2 * i + d], 0) / idx.length);
    const v = idx.reduce((s, i) => s + (samples[2 * i] - m[0]) ** 2 + (samples[2 * i + 1] - m[1]) ** 2, 0) / (2 * idx.length);
    return { mean: m, std: Math.sqrt(v) };
  });
}

before(async () => {
  await initBackend({ quiet: true });
});

test('learns a class-conditional 2-D Gaussian mixture and samples it back (50 DDPM steps)', () => {
  const t0 = Date.now();
  const rng = new Rng(1234);
  const train = createDiffusion({ timestepRespacing: '' }); // 1000 steps, learned range, loss mse + vb
  const vars = initMlp(rng);
  const model = mlp(vars);
  // EMA of the weights, as DiT samples with (decay shortened for a short run).
  const ema = vars.map((v) => tf.variable(v.clone(), false));
  const DECAY = 0.99;
  const opt = tf.train.adam(3e-3);
  const STEPS = 1500;
  const B = 256;
  // Loss terms at steps 0, 50, 100, 150 (early) and over the last 200 steps (late).
  const early: Array<{ vb: number; mse: number }> = [];
  const late: Array<{ vb: number; mse: number }> = [];
  for (let step = 0; step < STEPS; step++) {
    const { x, yTrain } = batch(rng, B, 0.1);
    const t = train.sampleTimesteps(rng, B);
    const noise = tf.tensor(rng.fillNormal(new Float32Array(B * 2)), [B, 2, 1, 1]);
    const y = tf.tensor1d(yTrain, 'int32');
    const record = step < 200 ? step % 50 === 0 : step >= STEPS - 200;
    const loss = opt.minimize(
      () => {
        const terms = train.trainingLosses((xx, tt) => model(xx, tt, y), x, t, { noise });
        if (record) {
          (step < 200 ? early : late).push({ vb: tf.mean(terms.vb!).dataSync()[0], mse: tf.mean(terms.mse!).dataSync()[0] });
        }
        return tf.mean(terms.loss) as tf.Scalar;
      },
      true,
      vars,
    );
    tf.dispose([x, noise, y, loss!]);
    tf.tidy(() => ema.forEach((e, i) => e.assign(e.mul(DECAY).add(vars[i].mul(1 - DECAY)))));
  }
  const emaModel = mlp(ema);
  const avg = (a: Array<{ vb: number; mse: number }>) => ({
    vb: a.reduce((s, v) => s + v.vb, 0) / a.length,
    mse: a.reduce((s, v) => s + v.mse, 0) / a.length,
  });
  const [e0, e1] = [avg(early), avg(late)];
  const trainS = (Date.now() - t0) / 1000;

  // Sample 50 respaced DDPM steps, 120 per class, DiT-style (no clipping).
  const sampler = createDiffusion({ timestepRespacing: '50' });
  const labels = Array.from({ length: 3 * 120 }, (_, i) => i % K);
  const before = tf.memory().numTensors;
  const cond = classifierFreeGuidance(emaModel, { y: labels, nullLabel: K, cfgScale: 1, channels: 'all' });
  const out = sampler.pSampleLoop(cond, [labels.length, 2, 1, 1], { seed: 99, clipDenoised: false });
  const samples = out.dataSync() as Float32Array;
  out.dispose();
  const stats = classStats(samples, labels);

  // Guided sampling (scale 3): classes stay separated, and each tightens around its mean.
  const guided = classifierFreeGuidance(emaModel, { y: labels, nullLabel: K, cfgScale: 3, channels: 'all' });
  const outG = sampler.pSampleLoop(guided, [labels.length, 2, 1, 1], { seed: 99, clipDenoised: false });
  const statsG = classStats(outG.dataSync() as Float32Array, labels);
  outG.dispose();
  assert.equal(tf.memory().numTensors, before, 'sampling leaked tensors');
  const totalS = (Date.now() - t0) / 1000;

  const report = JSON.stringify({ trainS, totalS, early: e0, late: e1, stats, statsG });
  process.stderr.write(`[diffusion-e2e] ${report}\n`);
  assert.ok(e1.mse < 0.6 * e0.mse, `mse did not fall: ${report}`);
  assert.ok(e1.vb < 0.8 * e0.vb, `vb (learned sigma) did not fall: ${report}`);
  stats.forEach((s, k) => {
    const err = Math.hypot(s.mean[0] - MEANS[k][0], s.mean[1] - MEANS[k][1]);
    assert.ok(err < 0.05, `class ${k} mean ${s.mean} vs ${MEANS[k]} (err ${err.toFixed(3)}): ${report}`);
    assert.ok(s.std > 0.6 * STD && s.std < 1.5 * STD, `class ${k} std ${s.std.toFixed(3)} vs ${STD}: ${report}`);
  });
  statsG.forEach((s, k) => {
    const err = Math.hypot(s.mean[0] - MEANS[k][0], s.mean[1] - MEANS[k][1]);
    assert.ok(err < 0.15, `guided class ${k} mean ${s.mean} vs ${MEANS[k]}: ${report}`);
    assert.ok(s.std < 0.75 * stats[k].std, `guided class ${k} std ${s.std.toFixed(3)} not below unguided ${stats[k].std.toFixed(3)}: ${report}`);
  });
  tf.dispose([...vars, ...ema]);
  opt.dispose();
});
