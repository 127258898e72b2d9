// The fused ops of lib/ops: on 'native' they run the fused kernels, on 'cpu' the composite
// tf-op versions. Both must give the same values and gradients, and the native gradients
// must match finite differences. Skipped, with the reason, when the addon is not built.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs'; // registers the gradients of the built-in ops
import * as ops from '../lib/ops';
import { loadNativeAddon } from '../lib/backend/native_addon';
import { lcg, nativeSkip, size } from './native-helpers';

const skip = nativeSkip();

const rand = lcg(777);
type Input = [Float32Array, number[]];

/** f(xs) and the gradients of sum(f(xs) * w) on `backend`, as plain arrays. */
function evaluate(backend: string, f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: Input[], w: Float32Array): Float32Array[] {
  tf.setBackend(backend);
  return tf.tidy(() => {
    const xs = inputs.map(([v, s]) => tf.tensor(v, s));
    const y = f(...xs);
    const g = tf.grads((...ys: tf.Tensor[]) => tf.sum(tf.mul(f(...ys), tf.tensor(w, y.shape))))(xs);
    return [y, ...g].map((t) => t.dataSync() as Float32Array).map((a) => Float32Array.from(a));
  });
}

function close(got: Float32Array, want: Float32Array, tol: number, label: string): void {
  assert.equal(got.length, want.length, `${label}: length`);
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i]));
    assert.ok(err <= tol, `${label}[${i}]: got ${got[i]}, want ${want[i]}`);
  }
}

/** Native fused == cpu composite (values, gradients), and native gradients == finite differences. */
function check(label: string, f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: Input[], outShape: number[]): void {
  const w = rand(size(outShape));
  const want = evaluate('cpu', f, inputs, w);
  const got = evaluate('native', f, inputs, w);
  assert.equal(ops.fusedOpsNative(), true, 'native backend runs the fused kernels');
  want.forEach((v, i) => close(got[i], v, 2e-5, `${label} ${i === 0 ? 'value' : `grad ${i - 1}`}`));

  // Central differences of L(x) = sum(f(x) * w) in float32, at a few coordinates per input.
  tf.setBackend('native');
  const loss = (xs: Float32Array[]) => tf.tidy(() => {
    const y = f(...xs.map((v, i) => tf.tensor(v, inputs[i][1])));
    return tf.sum(tf.mul(y, tf.tensor(w, y.shape))).dataSync()[0];
  });
  const h = 1e-2;
  inputs.forEach(([v], i) => {
    for (let n = 0; n < 6; n++) {
      const j = (n * 7919) % v.length;
      const xs = inputs.map(([u]) => Float32Array.from(u));
      xs[i][j] = v[j] + h;
      const up = loss(xs);
      xs[i][j] = v[j] - h;
      const down = loss(xs);
      const fd = (up - down) / (2 * h);
      const g = got[i + 1][j];
      assert.ok(Math.abs(fd - g) <= 2e-2 * Math.max(1, Math.abs(g)), `${label} d/dinput${i}[${j}]: analytic ${g}, finite difference ${fd}`);
    }
  });
}

test('geluTanh', { skip }, () => {
  check('geluTanh', ops.geluTanh, [[rand(4 * 50, -5, 5), [4, 50]]], [4, 50]);
  // Saturated inputs: the native kernel uses x * sigmoid(2u), which must not overflow.
  const big = new Float32Array([-1e4, -100, -30, -9, 0, 9, 30, 100, 1e4]);
  const w = rand(big.length);
  close(evaluate('native', ops.geluTanh, [[big, [big.length]]], w)[0], evaluate('cpu', ops.geluTanh, [[big, [big.length]]], w)[0], 1e-6, 'geluTanh saturated');
  close(evaluate('native', ops.geluTanh, [[big, [big.length]]], w)[1], evaluate('cpu', ops.geluTanh, [[big, [big.length]]], w)[1], 1e-6, 'geluTanh saturated grad');
});

test('layerNorm and layerNormModulate', { skip }, () => {
  check('layerNorm', (x) => ops.layerNorm(x), [[rand(3 * 5 * 16), [3, 5, 16]]], [3, 5, 16]);
  check('layerNorm eps', (x) => ops.layerNorm(x, 1e-2), [[rand(7 * 8, -0.1, 0.1), [7, 8]]], [7, 8]);
  check('layerNormModulate', (x, sh, sc) => ops.layerNormModulate(x as tf.Tensor3D, sh as tf.Tensor2D, sc as tf.Tensor2D),
    [[rand(3 * 5 * 16), [3, 5, 16]], [rand(3 * 16), [3, 16]], [rand(3 * 16), [3, 16]]], [3, 5, 16]);
  assert.throws(() => ops.layerNormModulate(tf.zeros([2, 3, 4]), tf.zeros([2, 4]), tf.zeros([3, 4])), /scale \[N, D\]/);
});

test('gatedResidual', { skip }, () => {
  check('gatedResidual', (x, h, g) => ops.gatedResidual(x as tf.Tensor3D, h as tf.Tensor3D, g as tf.Tensor2D),
    [[rand(3 * 5 * 16), [3, 5, 16]], [rand(3 * 5 * 16), [3, 5, 16]], [rand(3 * 16), [3, 16]]], [3, 5, 16]);
  // The forward pass rounds as the composite ops do (product, then sum): equal bit for bit.
  const inputs: Input[] = [[rand(2 * 7 * 9, -3, 3), [2, 7, 9]], [rand(2 * 7 * 9, -3, 3), [2, 7, 9]], [rand(2 * 9, -3, 3), [2, 9]]];
  const f = (x: tf.Tensor, h: tf.Tensor, g: tf.Tensor) => ops.gatedResidual(x as tf.Tensor3D, h as tf.Tensor3D, g as tf.Tensor2D);
  const w = rand(2 * 7 * 9);
  assert.deepEqual(evaluate('native', f, inputs, w)[0], evaluate('cpu', f, inputs, w)[0]);
  assert.throws(() => ops.gatedResidual(tf.zeros([2, 3, 4]), tf.zeros([2, 3, 4]), tf.zeros([3, 4])), /g \[N, D\]/);
  assert.throws(() => ops.gatedResidual(tf.zeros([2, 3, 4]), tf.zeros([2, 4, 4]), tf.zeros([2, 4])), /want x and h \[N, T, D\]/);
});

test('attention and qkvAttention', { skip }, () => {
  const [N, T, Tk, D, H] = [2, 6, 4, 8, 2];
  check('attention', (q, k, v) => ops.attention(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, H),
    [[rand(N * T * D), [N, T, D]], [rand(N * Tk * D), [N, Tk, D]], [rand(N * Tk * D), [N, Tk, D]]], [N, T, D]);
  check('qkvAttention', (qkv) => ops.qkvAttention(qkv as tf.Tensor3D, H), [[rand(N * T * 3 * D), [N, T, 3 * D]]], [N, T, D]);
  check('qkvAttention 1 head', (qkv) => ops.qkvAttention(qkv as tf.Tensor3D, 1), [[rand(1 * 3 * 12), [1, 3, 12]]], [1, 3, 4]);
  assert.throws(() => ops.qkvAttention(tf.zeros([1, 2, 9]), 2), /not divisible into 2 heads/);
});

test('linear', { skip }, () => {
  check('linear', (x, w, b) => ops.linear(x, w, b), [[rand(2 * 3 * 5), [2, 3, 5]], [rand(5 * 4), [5, 4]], [rand(4), [4]]], [2, 3, 4]);
  check('linear no bias', (x, w) => ops.linear(x, w), [[rand(6 * 5), [6, 5]], [rand(5 * 4), [5, 4]]], [6, 4]);
  // No rows: the weight and bias gradients are zeros, not reused pooled memory (dirty
  // buffers of both sizes are put in the pool first).
  const fout = 4096;
  tf.setBackend('native');
  tf.dispose([tf.add(tf.ones([2 * fout]), 6), tf.add(tf.ones([fout]), 6)]);
  const [, , gw, gb] = evaluate('native', (x, w, b) => ops.linear(x, w, b), [[new Float32Array(0), [0, 2]], [rand(2 * fout), [2, fout]], [rand(fout), [fout]]], new Float32Array(0));
  assert.ok(gw.every((v) => v === 0) && gb.every((v) => v === 0) && gw.length === 2 * fout && gb.length === fout, 'zero gradients for no rows');
});

test('mlp: the fused MLP (GELU inside the GEMMs) equals linear, geluTanh, linear, with the own GEMM and with OpenBLAS', { skip }, () => {
  const addon = loadNativeAddon()!;
  const mlpOf = (x: tf.Tensor, w1: tf.Tensor, b1: tf.Tensor, w2: tf.Tensor, b2: tf.Tensor) => ops.mlp(x, w1, b1, w2, b2);
  const composite = (x: tf.Tensor, w1: tf.Tensor, b1: tf.Tensor, w2: tf.Tensor, b2: tf.Tensor) => ops.linear(ops.geluTanh(ops.linear(x, w1, b1)), w2, b2);
  // Rows and widths off the 14 x 32 tile; inputs wide enough to reach GELU's saturated tails.
  const [N, T, D, H, DO] = [3, 5, 7, 37, 6];
  const inputs: Input[] = [[rand(N * T * D, -3, 3), [N, T, D]], [rand(D * H, -1, 1), [D, H]], [rand(H), [H]], [rand(H * DO), [H, DO]], [rand(DO), [DO]]];
  try {
    for (const mode of ['auto', 'openblas'] as const) {
      addon.setGemm!(mode);
      check(`mlp (${mode})`, mlpOf, inputs, [N, T, DO]);
      const w = rand(N * T * DO);
      const fused = evaluate('native', mlpOf, inputs, w), plain = evaluate('native', composite, inputs, w);
      // With OpenBLAS the fused kernels run the composite's very products and GELU loops: equal
      // bit for bit. The own GEMM sums in another order (the bias first).
      const tol = mode === 'openblas' ? 0 : 1e-5;
      fused.forEach((v, i) => close(v, plain[i], tol, `mlp (${mode}) vs composite on native ${i === 0 ? 'value' : `grad ${i - 1}`}`));
      // Without a tape (sampling) the kernel keeps nothing and gives the same values.
      tf.setBackend('native');
      const before = tf.memory().numTensors;
      const xs = inputs.map(([v, sh]) => tf.tensor(v, sh));
      const y = mlpOf(xs[0], xs[1], xs[2], xs[3], xs[4]);
      close(y.dataSync() as Float32Array, fused[0], 0, `mlp (${mode}) without a tape`);
      assert.equal(tf.memory().numTensors, before + xs.length + 1, 'no tensor left behind without a tape');
      tf.dispose([...xs, y]);
    }
  } finally {
    addon.setGemm!('auto');
  }
  tf.setBackend('native');
  assert.throws(() => ops.mlp(tf.zeros([2, 4]), tf.zeros([4, 8]), tf.zeros([8]), tf.zeros([7, 3]), tf.zeros([3])), /mlp: want x \[..., D\], w1 \[D, H\]/);
});

test('the fused ops do not leak tensors', { skip }, () => {
  tf.setBackend('native');
  const x = tf.tensor(rand(2 * 4 * 6), [2, 4, 6]) as tf.Tensor3D;
  const s = tf.tensor(rand(2 * 6), [2, 6]) as tf.Tensor2D;
  const qkv = tf.tensor(rand(2 * 4 * 18), [2, 4, 18]) as tf.Tensor3D;
  const before = tf.memory().numTensors;
  const g = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
    tf.sum(tf.add(ops.geluTanh(ops.layerNormModulate(a as tf.Tensor3D, b as tf.Tensor2D, b as tf.Tensor2D)), ops.qkvAttention(c as tf.Tensor3D, 2))))([x, s, qkv]);
  assert.equal(tf.memory().numTensors, before + 3);
  tf.dispose(g);
  const y = ops.qkvAttention(qkv, 3);
  assert.equal(tf.memory().numTensors, before + 1);
  y.dispose();
});

test('the attention backward makes no zero-filled gradient for the saved probabilities', { skip }, () => {
  // tfjs feeds zeros for each unused output of a kernel on the tape; the probs [N, H, T, T]
  // must not be one (48 MB a step at 256 tokens).
  tf.setBackend('native');
  const [N, T, D, H] = [2, 5, 8, 2];
  const qkv = tf.tensor(rand(N * T * 3 * D), [N, T, 3 * D]);
  const q = tf.tensor(rand(N * T * D), [N, T, D]);
  const engine = tf.engine() as unknown as { makeTensor: (...a: unknown[]) => tf.Tensor };
  const made: number[][] = [];
  const orig = engine.makeTensor;
  engine.makeTensor = function (this: unknown, ...a: unknown[]) {
    made.push((a[1] as number[]).slice());
    return orig.apply(this, a);
  };
  try {
    const g = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.add(tf.sum(ops.qkvAttention(x as tf.Tensor3D, H)),
      tf.sum(ops.attention(y as tf.Tensor3D, y as tf.Tensor3D, y as tf.Tensor3D, H))))([qkv, q]);
    tf.dispose(g);
  } finally {
    engine.makeTensor = orig;
  }
  assert.ok(made.length > 0, 'the spy sees the tensors the engine makes');
  assert.deepEqual(made.filter((s) => s.length === 4 && s[0] === N && s[1] === H && s[2] === T && s[3] === T), []);
  tf.dispose([qkv, q]);
});

test('emaUpdate: native kernel equals the composite version bit for bit', { skip }, () => {
  const n = 5000;
  const [e, p] = [rand(n), rand(n, -3, 3)];
  for (const decay of [0, 0.5, 0.9, 0.982, 0.999, 0.9999, 1]) {
    const [want, got] = ['cpu', 'native'].map((backend) => {
      tf.setBackend(backend);
      return tf.tidy(() => Float32Array.from(ops.emaUpdate(tf.tensor(e), tf.tensor(p), decay).dataSync() as Float32Array));
    });
    assert.deepEqual(got, want, `ema, decay ${decay}`);
  }
  assert.throws(() => ops.emaUpdate(tf.zeros([2]), tf.zeros([3]), 0.9), /does not match/);
});

test('adamWUpdate: native kernel equals the composite version bit for bit', { skip }, () => {
  const n = 5000;
  const [p, g, m, v] = [rand(n), rand(n, -0.1, 0.1), rand(n, -0.01, 0.01), rand(n, 0, 1e-3)];
  for (const c of [{ lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 }, { lr: 3e-3, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.05 }]) {
    for (const step of [1, 7]) {
      const results = ['cpu', 'native'].map((backend) => {
        tf.setBackend(backend);
        return tf.tidy(() => {
          const r = ops.adamWUpdate(tf.tensor(p), tf.tensor(g), tf.tensor(m), tf.tensor(v), c, step);
          return [r.p, r.m, r.v].map((t) => Float32Array.from(t.dataSync() as Float32Array));
        });
      });
      results[0].forEach((want, i) => assert.deepEqual(results[1][i], want, `adamW output ${i} (wd ${c.weightDecay}, step ${step})`));
    }
  }
  assert.throws(() => ops.adamWUpdate(tf.zeros([2]), tf.zeros([3]), tf.zeros([2]), tf.zeros([2]), { lr: 1, beta1: 0.9, beta2: 0.9, eps: 1, weightDecay: 0 }, 1), /does not match/);
});
