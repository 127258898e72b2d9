import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend';
import { configNames, ditConfig, familyPatchSizes, VARIANTS, DiTConfig } from '../lib/model/config';
import { adaLNBlock, createDiT, disposeDiT, ditForward, dropLabels, forwardWithCfg, modelParamCount, trainableVariables, DiT } from '../lib/model/dit';
import { gflops } from '../lib/model/gflops';
import { paramCount } from '../lib/model/params';
import { Rng } from '../lib/util/rng';

const TABLE4: Record<string, number> = {
  'DiT-S/8': 0.36, 'DiT-S/4': 1.41, 'DiT-S/2': 6.06, 'DiT-B/8': 1.42, 'DiT-B/4': 5.56, 'DiT-B/2': 23.01,
  'DiT-L/8': 5.03, 'DiT-L/4': 19.7, 'DiT-L/2': 80.71, 'DiT-XL/8': 7.39, 'DiT-XL/4': 29.05, 'DiT-XL/2': 118.64,
};
const VARIANT_GFLOPS = { 'in-context': 119.4, 'cross-attention': 137.6, adaln: 118.6, 'adaln-zero': 118.6 };

const tiny = (variant: DiTConfig['variant'], o: Partial<DiTConfig> = {}): DiTConfig =>
  ditConfig('mini-S/4', { variant, inputSize: 8, hiddenSize: 16, numHeads: 2, depth: 2, numClasses: 3, ...o });

/** Replaces every parameter by random values so zero-initialised paths carry signal. */
function randomise(model: DiT, seed: number): void {
  const rng = new Rng(seed);
  for (const v of Object.values(model.params)) {
    v.assign(tf.tensor(rng.fillNormal(new Float32Array(v.size), 0, 0.3), v.shape));
  }
}

function inputs(c: DiTConfig, n: number, seed: number) {
  const rng = new Rng(seed);
  const x = tf.tensor4d(rng.fillNormal(new Float32Array(n * c.inChannels * c.inputSize ** 2)), [n, c.inChannels, c.inputSize, c.inputSize]);
  const t = tf.tensor1d(Array.from({ length: n }, () => rng.int(1000)), 'int32');
  const y = tf.tensor1d(Array.from({ length: n }, () => rng.int(c.numClasses)), 'int32');
  return { x, t, y };
}

test.before(async () => {
  await initBackend({ quiet: true });
});

test('Gflops reproduce every Table 4 value within 1%', () => {
  for (const [name, want] of Object.entries(TABLE4)) {
    const got = gflops(ditConfig(name));
    assert.ok(Math.abs(got / want - 1) < 0.01, `${name}: ${got} vs ${want}`);
  }
});

test('Gflops of the four conditioning variants of DiT-XL/2 within 1%', () => {
  for (const [variant, want] of Object.entries(VARIANT_GFLOPS)) {
    const got = gflops(ditConfig('DiT-XL/2', { variant: variant as DiTConfig['variant'] }));
    assert.ok(Math.abs(got / want - 1) < 0.01, `${variant}: ${got} vs ${want}`);
  }
});

test('DiT-XL/2 has the published 675M parameters', () => {
  assert.equal(paramCount(ditConfig('DiT-XL/2')), 675129632);
});

test('analytic parameter count equals the built model exactly (all variants, mini family)', () => {
  const cfgs = [...VARIANTS.map((v) => tiny(v)), ...configNames('mini').map((n) => ditConfig(n)), tiny('adaln-zero', { learnSigma: false, classDropoutProb: 0 })];
  for (const c of cfgs) {
    const m = createDiT(c, 1);
    assert.equal(modelParamCount(m), paramCount(c), `${c.name} ${c.variant}`);
    disposeDiT(m);
  }
});

test('mini family keeps the paper ordering and spans two orders of magnitude of Gflops', () => {
  const g = configNames('mini').map((n) => gflops(ditConfig(n)));
  assert.ok(Math.max(...g) / Math.min(...g) >= 100, `span ${Math.max(...g) / Math.min(...g)}`);
  const patches = familyPatchSizes('mini');
  assert.deepEqual([...patches], [4, 2, 1]);
  for (const p of patches) {
    const row = ['S', 'B', 'L', 'XL'].map((s) => gflops(ditConfig(`mini-${s}/${p}`)));
    for (let i = 1; i < row.length; i++) assert.ok(row[i] > row[i - 1], `mini row p=${p} not increasing`);
  }
  for (const s of ['S', 'B', 'L', 'XL']) {
    const col = patches.map((p) => gflops(ditConfig(`mini-${s}/${p}`)));
    for (let i = 1; i < col.length; i++) assert.ok(col[i] > col[i - 1], `mini-${s}: smaller patches must cost more`);
  }
});

test('every mini model is at least 1.5x as wide as its tokens hold values (no token bottleneck)', () => {
  for (const n of configNames('mini')) {
    const c = ditConfig(n);
    const perToken = c.patchSize * c.patchSize * c.inChannels;
    assert.ok(c.hiddenSize >= 1.5 * perToken, `${n}: width ${c.hiddenSize} < 1.5 x ${perToken}`);
  }
  // The paper's narrowest ratio, for comparison: DiT-S/8 (384 wide, 8 x 8 x 4 = 256 per token).
  assert.equal(ditConfig('DiT-S/8').hiddenSize / (8 * 8 * 4), 1.5);
  assert.throws(() => ditConfig('mini-S/8'), /the mini family has p = 4, 2, 1/);
});

test('every variant maps NCHW [N, C, H, W] to [N, 2C, H, W] (C without learnSigma)', () => {
  for (const v of VARIANTS) {
    for (const learnSigma of [true, false]) {
      const c = tiny(v, { learnSigma });
      const m = createDiT(c, 2);
      const { x, t, y } = inputs(c, 3, 5);
      const out = ditForward(m, x, t, y);
      assert.deepEqual(out.shape, [3, learnSigma ? 8 : 4, 8, 8], `${v}`);
      tf.dispose([x, t, y, out]);
      disposeDiT(m);
    }
  }
});

test('adaLN-Zero: zero-initialised blocks are exact identities and the initial output is zero', () => {
  const c = tiny('adaln-zero');
  const m = createDiT(c, 3);
  const rng = new Rng(9);
  const h = tf.tensor3d(rng.fillNormal(new Float32Array(2 * 16 * 16)), [2, 16, 16]);
  const siluC = tf.tensor2d(rng.fillNormal(new Float32Array(2 * 16)), [2, 16]);
  for (let i = 0; i < c.depth; i++) {
    const out = adaLNBlock(m.params, c, i, h, siluC);
    assert.deepEqual(Array.from(out.dataSync()), Array.from(h.dataSync()), `block ${i} is not the identity`);
    out.dispose();
  }
  const { x, t, y } = inputs(c, 2, 1);
  const out = ditForward(m, x, t, y);
  assert.equal(tf.max(tf.abs(out)).dataSync()[0], 0);
  // The plain adaLN variant is not zero-initialised: its blocks change their input.
  const a = createDiT(tiny('adaln'), 3);
  const outA = adaLNBlock(a.params, a.config, 0, h, siluC);
  assert.ok(tf.max(tf.abs(tf.sub(outA, h))).dataSync()[0] > 1e-3);
  tf.dispose([h, siluC, x, t, y, out, outA]);
  disposeDiT(m);
  disposeDiT(a);
});

test('every variant uses its conditioning: output depends on the label and the timestep', () => {
  for (const v of VARIANTS) {
    const c = tiny(v);
    const m = createDiT(c, 4);
    randomise(m, 6);
    const { x, t, y } = inputs(c, 2, 2);
    const base = ditForward(m, x, t, y);
    const y2 = tf.tensor1d([c.numClasses, c.numClasses], 'int32'); // the null label
    const t2 = tf.add(t, 100) as tf.Tensor1D;
    const diffY = tf.max(tf.abs(tf.sub(ditForward(m, x, t, y2), base))).dataSync()[0];
    const diffT = tf.max(tf.abs(tf.sub(ditForward(m, x, t2, y), base))).dataSync()[0];
    assert.ok(diffY > 1e-4, `${v}: label ignored`);
    assert.ok(diffT > 1e-4, `${v}: timestep ignored`);
    disposeDiT(m);
  }
});

test('gradients reach every trainable parameter in every variant', () => {
  for (const v of VARIANTS) {
    const c = tiny(v);
    const m = createDiT(c, 7);
    randomise(m, 8);
    const { x, t, y } = inputs(c, 2, 3);
    const vars = trainableVariables(m);
    const { grads } = tf.variableGrads(() => tf.mean(tf.square(ditForward(m, x, t, y))) as tf.Scalar, vars);
    const names = Object.keys(m.params).filter((k) => m.params[k].trainable);
    for (const [i, g] of Object.values(grads).entries()) {
      assert.ok(tf.max(tf.abs(g)).dataSync()[0] > 0, `${v}: no gradient for ${names[i]}`);
    }
    assert.ok(!('pos_embed' in grads), 'pos_embed is fixed');
    disposeDiT(m);
  }
});

test('bad inputs and configs give clear errors', () => {
  const c = tiny('adaln-zero');
  const m = createDiT(c, 0);
  const { x, t, y } = inputs(c, 2, 0);
  assert.throws(() => ditForward(m, tf.zeros([2, 3, 8, 8]), t, y), /x must be \[N, 4, 8, 8\] \(NCHW\), got \[2, 3, 8, 8\]/);
  assert.throws(() => ditForward(m, x, tf.zeros([3], 'int32'), y), /t must be \[2\]/);
  assert.throws(() => ditForward(m, x, t, tf.zeros([2])), /y must be int32/);
  assert.throws(() => ditConfig('DiT-XXL/2'), /unknown model 'DiT-XXL\/2'/);
  assert.throws(() => ditConfig('DiT-S/2', { hiddenSizes: 3 } as never), /bad config key 'hiddenSizes'/);
  assert.throws(() => ditConfig('DiT-S/2', { variant: 'film' as never }), /bad variant 'film'/);
  assert.throws(() => ditConfig('DiT-S/2', { inputSize: 31 }), /not divisible by patchSize 2/);
  disposeDiT(m);
});

test('label dropout replaces labels by the null class at the requested rate, reproducibly', () => {
  const y = new Int32Array(20000).map((_, i) => i % 10);
  const a = dropLabels(y, 0.1, 10, new Rng(1));
  const rate = a.filter((v) => v === 10).length / y.length;
  assert.ok(Math.abs(rate - 0.1) < 0.01, `rate ${rate}`);
  assert.ok(a.every((v, i) => v === 10 || v === y[i]));
  assert.deepEqual(dropLabels(y, 0.1, 10, new Rng(1)), a);
  assert.deepEqual(dropLabels(y, 0, 10, new Rng(1)), y);
});

test('the forward pass leaks no tensors', () => {
  const c = tiny('cross-attention');
  const m = createDiT(c, 0);
  const { x, t, y } = inputs(c, 2, 0);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) ditForward(m, x, t, y).dispose();
  assert.equal(tf.memory().numTensors, before);
  disposeDiT(m);
});

test('forwardWithCfg: scale 1 is the conditional pass; first3 and all guide the right channels', () => {
  const c = tiny('adaln-zero');
  const m = createDiT(c, 10);
  randomise(m, 11);
  const { x, t, y } = inputs(c, 2, 4);
  const cond = ditForward(m, x, t, y);
  const uncond = ditForward(m, x, t, tf.fill([2], c.numClasses, 'int32') as tf.Tensor1D);
  assert.deepEqual(Array.from(forwardWithCfg(m, x, t, y, 1).dataSync()), Array.from(cond.dataSync()));
  const s = 2.5;
  const want = tf.add(uncond, tf.mul(tf.sub(cond, uncond), s));
  const close = (a: tf.Tensor, b: tf.Tensor) => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] < 1e-4;
  const ch = (a: tf.Tensor, lo: number, n: number) => tf.slice(a, [0, lo, 0, 0], [-1, n, -1, -1]);
  const all = forwardWithCfg(m, x, t, y, s, 'all');
  assert.ok(close(ch(all, 0, 4), ch(want, 0, 4)), 'all: eps channels guided');
  assert.ok(close(ch(all, 4, 4), ch(cond, 4, 4)), 'all: variance stays conditional');
  const f3 = forwardWithCfg(m, x, t, y, s, 'first3');
  assert.ok(close(ch(f3, 0, 3), ch(want, 0, 3)), 'first3: channels 0..2 guided');
  assert.ok(close(ch(f3, 3, 5), ch(cond, 3, 5)), 'first3: channel 3 and variance conditional');
  assert.ok(!close(ch(f3, 3, 1), ch(want, 3, 1)), 'the two forms differ on channel 3');
  disposeDiT(m);
});
