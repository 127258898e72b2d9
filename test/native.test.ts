// The 'native' backend against tfjs' plain 'cpu' backend: every overridden kernel, forward
// and gradient, on shapes that hit the special cases (transposes, broadcasting, strided
// views, fallbacks). Skipped, with the reason, when the addon is not built.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs'; // registers the gradients (bare tfjs-core has none)
import { GemmMode, loadNativeAddon } from '../lib/backend/native_addon';
import { copyValuesInto, f32 } from '../lib/backend/native_util';
import { lcg, nativeSkip, size } from './native-helpers';

const skip = nativeSkip();

const rand = lcg(12345);

type Out = tf.Tensor | tf.Tensor[] | tf.NamedTensorMap;
function flat(o: Out): tf.Tensor[] {
  if (o instanceof tf.Tensor) return [o];
  if (Array.isArray(o)) return o;
  return Object.keys(o).sort().map((k) => o[k]);
}

/** Runs f on 'cpu' and on 'native' and checks shapes, dtypes and values agree. */
function same(f: () => Out, tol = 1e-5, label = ''): void {
  const run = (backend: string) => {
    tf.setBackend(backend);
    return tf.tidy(() => flat(f()).map((t) => ({ shape: t.shape, dtype: t.dtype, values: Array.from(t.dataSync() as Float32Array) })));
  };
  const want = run('cpu');
  const got = run('native');
  assert.equal(got.length, want.length, `${label}: number of outputs`);
  want.forEach((w, i) => {
    const g = got[i];
    assert.deepEqual(g.shape, w.shape, `${label}[${i}]: shape`);
    assert.equal(g.dtype, w.dtype, `${label}[${i}]: dtype`);
    for (let j = 0; j < w.values.length; j++) {
      const a = g.values[j], b = w.values[j];
      if (a === b) continue;
      if (Number.isNaN(b)) {
        assert.ok(Number.isNaN(a), `${label}[${i}][${j}]: got ${a}, want NaN`);
        continue;
      }
      const err = Math.abs(a - b) / Math.max(1, Math.abs(b));
      assert.ok(err <= tol, `${label}[${i}][${j}]: got ${a}, want ${b} (rel err ${err})`);
    }
  });
}

/** The gradient of sum(f(xs) * w) with respect to every input, w fixed and random. */
function grads(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: Array<[Float32Array, number[]]>): () => tf.Tensor[] {
  let wv: Float32Array | null = null; // drawn once, shared by both backends' runs
  return () => {
    const xs = inputs.map(([v, s]) => tf.tensor(v, s));
    const probe = f(...xs);
    wv ??= rand(size(probe.shape));
    const w = tf.tensor(wv, probe.shape);
    const g = tf.grads((...ys: tf.Tensor[]) => tf.sum(tf.mul(f(...ys), w)));
    return [probe, ...g(xs)];
  };
}

test('matMul: transposes, batches and batch broadcasting', { skip }, () => {
  const cases: Array<[number[], number[], boolean, boolean]> = [
    [[5, 7], [7, 3], false, false], [[7, 5], [7, 3], true, false], [[5, 7], [3, 7], false, true],
    [[7, 5], [3, 7], true, true], [[4, 5, 7], [4, 7, 3], false, false], [[4, 7, 5], [4, 3, 7], true, true],
    [[4, 5, 7], [7, 3], false, false], [[4, 7, 5], [7, 3], true, false], [[5, 7], [4, 7, 3], false, false],
    [[2, 3, 5, 7], [2, 3, 7, 4], false, false], [[2, 3, 5, 7], [2, 3, 4, 7], false, true], [[1, 4], [4, 1], false, false],
  ];
  for (const [sa, sb, ta, tb] of cases) {
    const a = rand(size(sa)), b = rand(size(sb));
    // tfjs' BatchMatMul gradient does not sum over a broadcast batch: forward only there.
    const f = (x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y, ta, tb);
    const check = sa.length === sb.length ? grads(f, [[a, sa], [b, sb]]) : () => f(tf.tensor(a, sa), tf.tensor(b, sb));
    same(check, 1e-4, `matMul ${sa} ${sb} ${ta} ${tb}`);
  }
  same(() => tf.matMul(tf.zeros([3, 0]), tf.zeros([0, 4])), 0, 'matMul K=0');
  same(() => tf.matMul(tf.tensor([[1, 2], [3, 4]], undefined, 'int32'), tf.tensor([[5], [6]], undefined, 'int32')), 0, 'int32 falls back');
});

test('fused matMul with bias and activations', { skip }, () => {
  const a = rand(6 * 8), b = rand(8 * 5), bias = rand(5), bias2 = rand(6 * 5);
  for (const activation of ['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu'] as const) {
    same(() => tf.fused.matMul({ a: tf.tensor(a, [6, 8]), b: tf.tensor(b, [8, 5]), bias: tf.tensor(bias, [5]), activation }), 1e-5, activation);
  }
  same(() => tf.fused.matMul({ a: tf.tensor(a, [8, 6]), b: tf.tensor(b, [5, 8]), transposeA: true, transposeB: true, bias: tf.tensor(bias2, [6, 5]) }), 1e-5, 'bias [M,N]');
  same(grads((x, w, c) => tf.fused.matMul({ a: x, b: w, bias: c, activation: 'relu' }), [[a, [6, 8]], [b, [8, 5]], [bias, [5]]]), 1e-4, 'fused grads');
  // Batched, transposed, and [1, N] / [1] biases.
  const a2 = rand(2 * 6 * 8), b2 = rand(2 * 8 * 5);
  same(() => tf.fused.matMul({ a: tf.tensor(a2, [2, 6, 8]), b: tf.tensor(b, [8, 5]), bias: tf.tensor(bias, [1, 5]) }), 1e-5, 'batched a, shared b, bias [1, N]');
  same(() => tf.fused.matMul({ a: tf.tensor(a2, [2, 8, 6]), b: tf.tensor(b2, [2, 5, 8]), transposeA: true, transposeB: true, bias: tf.tensor(bias, [5]) }), 1e-5, 'batched, both transposed, bias [N]');
  same(() => tf.fused.matMul({ a: tf.tensor(a, [6, 8]), b: tf.tensor(b, [8, 5]), bias: tf.tensor(bias.subarray(0, 1), [1]) }), 1e-5, 'scalar-like bias [1]');
});

test('binary ops with broadcasting, and their gradients', { skip }, () => {
  const shapes: Array<[number[], number[]]> = [
    [[2, 3, 4], [2, 3, 4]], [[2, 3, 4], [4]], [[2, 3, 4], [2, 1, 4]], [[2, 1, 4], [1, 3, 1]], [[2, 3, 4], []],
    [[], [3, 2]], [[3, 1], [1, 5]], [[1], [1]], [[64, 128], [64, 1]], [[2, 0, 3], [3]],
  ];
  const ops: Record<string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor> = {
    add: tf.add, sub: tf.sub, mul: tf.mul, div: tf.div, maximum: tf.maximum, minimum: tf.minimum,
    squaredDifference: tf.squaredDifference,
  };
  for (const [sa, sb] of shapes) {
    const a = rand(size(sa)), b = rand(size(sb), 0.5, 2); // b away from 0 for div
    for (const [name, op] of Object.entries(ops)) {
      // tfjs' gradients of maximum/minimum/squaredDifference do not reduce broadcast dims.
      const gradOk = ['add', 'sub', 'mul', 'div'].includes(name) || tf.util.arraysEqual(sa, sb);
      const check = gradOk ? grads(op, [[a, sa], [b, sb]]) : () => op(tf.tensor(a, sa), tf.tensor(b, sb));
      same(check, 1e-5, `${name} ${sa} ${sb}`);
    }
  }
  same(() => tf.maximum(tf.tensor([NaN, 1, 2]), tf.tensor([0, NaN, 3])), 0, 'NaN propagates');
  same(() => tf.add(tf.tensor([1, 2], undefined, 'int32'), tf.tensor([3, 4], undefined, 'int32')), 0, 'int32 add falls back');
  const [n1, n2, n3] = [rand(6), rand(6), rand(6)];
  same(() => tf.addN([tf.tensor(n1, [2, 3]), tf.tensor(n2, [2, 3]), tf.tensor(n3, [2, 3])]), 1e-6, 'addN');
});

test('unary ops and their gradients', { skip }, () => {
  const x = rand(300, -4, 4), pos = rand(300, 0.1, 4), unit = rand(300, -0.9, 0.9);
  const ops: Array<[string, (t: tf.Tensor) => tf.Tensor, Float32Array]> = [
    ['neg', tf.neg, x], ['square', tf.square, x], ['sqrt', tf.sqrt, pos], ['rsqrt', tf.rsqrt, pos],
    ['reciprocal', tf.reciprocal, pos], ['abs', tf.abs, x], ['relu', tf.relu, x], ['relu6', tf.relu6, rand(300, -3, 9)],
    ['leakyRelu', (t) => tf.leakyRelu(t, 0.3), x], ['step', (t) => tf.step(t, 0.5), x], ['exp', tf.exp, x],
    ['log', tf.log, pos], ['tanh', tf.tanh, x], ['sigmoid', tf.sigmoid, x], ['sin', tf.sin, x], ['cos', tf.cos, x],
    ['softplus', tf.softplus, rand(300, -30, 30)], ['log1p', tf.log1p, unit], ['expm1', tf.expm1, x],
    ['erf', tf.erf, x], ['elu', tf.elu, x],
  ];
  for (const [name, op, v] of ops) {
    // libmvec's vector transcendentals are within a few ulp of the scalar ones.
    same(grads(op, [[v, [3, 100]]]), 2e-5, name);
  }
  same(() => tf.exp(tf.tensor([NaN, Infinity, -Infinity, 100, -100])), 1e-6, 'exp specials');
  same(() => tf.tanh(tf.tensor([NaN, Infinity, -Infinity, 20, -20])), 1e-6, 'tanh specials');
  same(() => tf.relu(tf.tensor([NaN, -1, 1])), 0, 'relu NaN');
  same(() => tf.sigmoid(tf.tensor([-1e4, -100, -88, 0, 88, 100, 1e4])), 1e-6, 'sigmoid saturated');
});

test('reductions over adjacent and scattered axes', { skip }, () => {
  const s = [3, 4, 5, 6];
  const x = rand(size(s));
  const axes: Array<number | number[] | undefined> = [undefined, -1, 0, 1, 2, [1, 2], [0, 1], [2, 3], [0, 2], [0, 3], [1, 3]];
  for (const axis of axes) {
    for (const keepDims of [false, true]) {
      for (const [name, op] of Object.entries({ sum: tf.sum, mean: tf.mean, max: tf.max, min: tf.min })) {
        same(grads((t) => op(t, axis, keepDims), [[x, s]]), 1e-5, `${name} ${axis} ${keepDims}`);
      }
    }
  }
  const x5 = rand(120);
  same(() => tf.sum(tf.tensor(x5, [3, 1, 5, 1, 8]), [1, 2, 3]), 1e-5, 'size-1 dims between reduced axes');
  same(() => tf.max(tf.tensor([1, NaN, 3, 4], [2, 2]), 1), 0, 'max NaN');
  same(() => tf.sum(tf.tensor([1, 2, 3], undefined, 'int32')), 0, 'int32 sum falls back');
});

test('softmax, logSoftmax and their gradients', { skip }, () => {
  for (const s of [[7], [4, 9], [2, 3, 64]]) {
    const x = rand(size(s), -8, 8);
    same(grads((t) => tf.softmax(t), [[x, s]]), 1e-5, `softmax ${s}`);
    same(grads((t) => tf.logSoftmax(t), [[x, s]]), 1e-5, `logSoftmax ${s}`);
  }
});

test('transpose, slice, split, concat, tile and their gradients', { skip }, () => {
  const s = [2, 3, 4, 5];
  const x = rand(size(s));
  for (const perm of [[0, 1, 2, 3], [0, 2, 1, 3], [3, 2, 1, 0], [1, 0, 3, 2], [0, 1, 3, 2], [2, 0, 3, 1]]) {
    same(grads((t) => tf.transpose(t, perm), [[x, s]]), 0, `transpose ${perm}`);
  }
  for (const [begin, sz] of [[[0, 0, 0, 0], [2, 3, 4, 5]], [[1, 0, 0, 0], [1, 3, 4, 5]], [[0, 1, 1, 2], [2, 2, 3, 3]],
    [[0, 0, 0, 4], [2, 3, 4, 1]], [[1, 2, 0, 0], [1, 1, 4, 5]], [[0, 0, 2, 0], [-1, -1, -1, -1]]]) {
    same(grads((t) => tf.slice(t, begin, sz), [[x, s]]), 0, `slice ${begin} ${sz}`);
  }
  const x4 = rand(2 * 3 * 4 * 4);
  for (const [axis, splits] of [[0, 2], [1, [1, 2]], [3, 2], [-1, [3, 1]]] as Array<[number, number | number[]]>) {
    same(grads((t) => tf.concat(tf.split(t, splits, axis).reverse(), axis), [[x4, [2, 3, 4, 4]]]), 0, `split/concat ${axis}`);
  }
  const y = rand(2 * 3 * 4);
  same(grads((a, b) => tf.concat([a, b, a], 1), [[x, s], [rand(2 * 4 * 5), [2, 1, 4, 5]]]), 0, 'concat 3 inputs');
  same(grads((t) => tf.tile(t, [2, 1, 3]), [[y, [2, 3, 4]]]), 0, 'tile');
  same(() => tf.concat([tf.zeros([2, 0]), tf.ones([2, 3])], 1), 0, 'concat with an empty input');
});

test('a DiT-like block: gradients agree with the cpu backend', { skip }, () => {
  const B = 2, T = 8, D = 16, H = 2;
  const inputs: Array<[Float32Array, number[]]> = [
    [rand(B * T * D), [B, T, D]], [rand(D * 3 * D, -0.3, 0.3), [D, 3 * D]], [rand(D * D, -0.3, 0.3), [D, D]],
    [rand(B * D), [B, D]],
  ];
  same(grads((x, wqkv, wo, c) => {
    const mean = tf.mean(x, -1, true);
    const v = tf.mean(tf.square(tf.sub(x, mean)), -1, true);
    const h = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(v, 1e-6)));
    const m = tf.add(tf.mul(h, tf.add(1, tf.expandDims(c, 1))), tf.expandDims(c, 1));
    const qkv = tf.reshape(tf.matMul(tf.reshape(m, [B * T, D]), wqkv), [B, T, 3, H, D / H]);
    const [q, k, vv] = tf.split(tf.transpose(qkv, [2, 0, 3, 1, 4]), 3, 0).map((t) => tf.squeeze(t, [0]));
    const att = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(D / H)));
    const o = tf.reshape(tf.transpose(tf.matMul(att, vv), [0, 2, 1, 3]), [B * T, D]);
    const y = tf.matMul(o, wo);
    return tf.add(x, tf.reshape(tf.mul(y, tf.tanh(y)), [B, T, D]));
  }, inputs), 1e-4, 'block');
});

test('buffer pool: arrays handed out, views and repeated training stay intact', { skip }, () => {
  tf.setBackend('native');
  const n = 64 * 128; // above the pool's minimum size
  // An array from dataSync() must keep its values after its tensor is disposed and the
  // backend has since produced many outputs of the same size.
  const a = tf.add(tf.tensor(rand(n), [64, 128]), 1);
  const held = a.dataSync() as Float32Array;
  const copy = Float32Array.from(held);
  a.dispose();
  for (let i = 0; i < 5; i++) tf.tidy(() => tf.mul(tf.ones([64, 128]), i).dataSync());
  assert.deepEqual(held, copy);

  // A contiguous slice is a view of its parent's buffer: the view outlives the parent.
  const parent = tf.exp(tf.tensor(rand(2 * n), [2, 64, 128]));
  const view = tf.slice(parent, [1, 0, 0], [1, 64, 128]);
  const want = Float32Array.from((parent.dataSync() as Float32Array).subarray(n));
  const parent2 = tf.exp(tf.tensor(rand(2 * n), [2, 64, 128]));
  const view2 = tf.slice(parent2, [1, 0, 0], [1, 64, 128]); // not read before the parent goes
  const want2 = Float32Array.from((tf.slice(parent2, [1, 0, 0], [1, 64, 128]).dataSync() as Float32Array));
  parent.dispose();
  parent2.dispose();
  for (let i = 0; i < 5; i++) tf.tidy(() => tf.mul(tf.ones([2, 64, 128]), i).dataSync());
  assert.deepEqual(view.dataSync(), want);
  assert.deepEqual(view2.dataSync(), want2);
  tf.dispose([view, view2]);

  // Several optimizer steps on tensors above the pool threshold match the cpu backend.
  const w0 = rand(128 * 96, -0.1, 0.1), x0 = rand(64 * 128);
  same(() => {
    const w = tf.variable(tf.tensor(w0, [128, 96]));
    const x = tf.tensor(x0, [64, 128]);
    const opt = tf.train.adam(0.01);
    for (let i = 0; i < 4; i++) {
      opt.minimize(() => tf.mean(tf.square(tf.tanh(tf.matMul(x, w)))) as tf.Scalar, false, [w]);
    }
    const out = tf.clone(w);
    opt.dispose();
    w.dispose();
    return out;
  }, 1e-5, 'adam steps');
});

test('copyValuesInto copies a tensor without handing its buffer out, so the buffer returns to the pool', { skip }, () => {
  tf.setBackend('native');
  const backend = tf.backend() as unknown as { alloc(n: number): Float32Array };
  const n = 64 * 128;
  const into = new Float32Array(n + 3);
  const a = tf.add(tf.tensor(rand(n), [64, 128]), 1);
  const buffer = f32(tf.backend(), a)!;
  copyValuesInto(a, into, 3);
  assert.deepEqual(into.subarray(3), buffer);
  a.dispose();
  assert.equal(backend.alloc(n), buffer, 'the disposed tensor\'s buffer is reused');
  // What dataSync() would have done instead: a buffer handed out is never reused.
  const b = tf.add(tf.tensor(rand(n), [64, 128]), 1);
  const held = b.dataSync() as Float32Array;
  b.dispose();
  assert.notEqual(backend.alloc(n), held);
});

test('conv2d (im2col + sgemm), pooling, and their gradients', { skip }, () => {
  type Case = [number[], number[], number | [number, number], 'valid' | 'same' | number, number | [number, number]];
  const cases: Case[] = [
    [[2, 7, 6, 3], [3, 3, 3, 4], 1, 'same', 1], [[2, 7, 6, 3], [3, 3, 3, 4], 2, 'same', 1],
    [[1, 8, 8, 2], [4, 4, 2, 5], 2, 'valid', 1], [[2, 5, 5, 4], [1, 1, 4, 6], 1, 'valid', 1],
    [[1, 6, 7, 3], [3, 2, 3, 2], [2, 1], 1, 1], [[2, 4, 4, 8], [2, 2, 8, 16], 2, 'valid', 1],
    [[1, 9, 9, 2], [3, 3, 2, 3], 1, 'same', 2], [[1, 3, 3, 2], [5, 5, 2, 3], 1, 'same', 1],
  ];
  for (const [xs, ws, strides, pad, dil] of cases) {
    const x = rand(size(xs)), w = rand(size(ws));
    const f = (a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, strides, pad, 'NHWC', dil);
    // tfjs has no conv gradient with dilation > 1: forward only there.
    const check = dil === 1 ? grads(f, [[x, xs], [w, ws]]) : () => f(tf.tensor(x, xs), tf.tensor(w, ws));
    same(check, 1e-4, `conv2d x ${xs} w ${ws} s ${strides} pad ${pad} d ${dil}`);
  }
  for (const [shape, k, st, pad] of [[[2, 7, 7, 3], 3, 2, 'valid'], [[2, 7, 6, 5], 3, 1, 'same'], [[1, 8, 8, 4], 2, 2, 'valid'],
    [[1, 5, 9, 2], [2, 3], [1, 2], 'same'], [[1, 4, 4, 3], 1, 1, 'valid'], [[1, 6, 6, 2], 3, 2, 1]] as Array<[number[], number | [number, number], number | [number, number], 'valid' | 'same' | number]>) {
    const v = rand(size(shape));
    same(grads((t) => tf.maxPool(t as tf.Tensor4D, k, st, pad), [[v, shape]]), 1e-6, `maxPool ${shape} ${k} ${st} ${pad}`);
    same(grads((t) => tf.avgPool(t as tf.Tensor4D, k, st, pad), [[v, shape]]), 1e-5, `avgPool ${shape} ${k} ${st} ${pad}`);
  }
  same(() => tf.maxPool(tf.tensor4d([NaN, 1, 2, NaN], [1, 2, 2, 1]), 2, 1, 'valid'), 0, 'maxPool skips NaN like tfjs');
  const x = rand(2 * 6 * 6 * 3), w = rand(3 * 3 * 3 * 4), b = rand(4);
  same(grads((a, k, c) => tf.fused.conv2d({ x: a as tf.Tensor4D, filter: k as tf.Tensor4D, strides: 1, pad: 'same', bias: c, activation: 'relu' }),
    [[x, [2, 6, 6, 3]], [w, [3, 3, 3, 4]], [b, [4]]]), 1e-4, 'fused conv2d');
});

test('the own GEMMs (native/src/gemm.c, AVX2 and AVX-512) against float64 and OpenBLAS, on ragged tiles, with and without a bias', { skip }, () => {
  const addon = loadNativeAddon()!;
  // The kernels this CPU runs: each is tested, whichever 'auto' picks.
  const kernels = (['avx2', 'avx512'] as const).filter((k) => {
    try {
      return addon.setGemm!(k) === `own-${k}`;
    } catch {
      return false;
    }
  });
  try {
    // matmul(a, b, out, batchA, batchB, batchOut, M, N, K, transA, transB, bias)
    const product = (mode: GemmMode, a: Float32Array, b: Float32Array, M: number, N: number, K: number, tb: boolean, bias: Float32Array | null) => {
      addon.setGemm!(mode);
      const out = new Float32Array(M * N).fill(NaN); // every element must be written
      addon.matmul(a, b, out, 1, 1, 1, M, N, K, 0, tb ? 1 : 0, bias);
      return out;
    };
    const same = (x: Float32Array, y: Float32Array, what: string) => assert.deepEqual(Array.from(x), Array.from(y), what);
    for (const kernel of kernels) {
      // M >= 256 (where the AVX2 kernel pays) around the 6- and 14-row tiles; N around the 8-,
      // 16- and 32-column vectors and tiles; K at and past the AVX-512 kernel's threshold.
      // Then every row count of the last tile (1 .. 13 rows).
      const ragged = Array.from({ length: 14 }, (_, r) => [266 + r, 17, 384]);
      for (const [M, N, K] of [[256, 1, 384], [257, 15, 384], [262, 16, 385], [263, 17, 400], [269, 33, 512], [270, 100, 384], [258, 31, 1000], ...ragged]) {
        for (const tb of [false, true]) {
          const a = rand(M * K), b = rand(K * N), bias = rand(N);
          for (const withBias of [false, true]) {
            const got = product(kernel, a, b, M, N, K, tb, withBias ? bias : null);
            const blas = product('openblas', a, b, M, N, K, tb, withBias ? bias : null);
            for (let i = 0; i < M; i++) {
              for (let j = 0; j < N; j++) {
                let ref = withBias ? bias[j] : 0, scale = 1;
                for (let k = 0; k < K; k++) {
                  const bv = tb ? b[j * K + k] : b[k * N + j];
                  ref += a[i * K + k] * bv;
                  scale += Math.abs(a[i * K + k] * bv);
                }
                const label = `${kernel} ${M}x${N}x${K} tb=${tb} bias=${withBias} [${i},${j}]`;
                assert.ok(Math.abs(got[i * N + j] - ref) <= 1e-6 * scale, `${label}: got ${got[i * N + j]}, float64 ${ref}`);
                assert.ok(Math.abs(got[i * N + j] - blas[i * N + j]) <= 2e-6 * scale, `${label}: own ${got[i * N + j]}, OpenBLAS ${blas[i * N + j]}`);
              }
            }
          }
        }
      }
      // A row's result does not depend on the other rows in the call (data parallelism splits rows).
      const M = 600, N = 40, K = 512, a = rand(M * K), b = rand(K * N);
      const all = product(kernel, a, b, M, N, K, false, null);
      for (const [r0, r1] of [[0, 256], [3, 300], [14, 290], [300, 600]]) {
        same(product(kernel, a.subarray(r0 * K, r1 * K), b, r1 - r0, N, K, false, null), all.subarray(r0 * N, r1 * N), `${kernel}: rows ${r0}-${r1} alone`);
      }
      // Where the kernel does not pay (gemm.h), the product stays with OpenBLAS, bit for bit:
      // AVX-512 below K = 384, AVX2 below M = 256.
      const [M2, K2] = kernel === 'avx512' ? [300, 383] : [255, 384];
      const a2 = rand(M2 * K2), b2 = rand(K2 * 20);
      same(product(kernel, a2, b2, M2, 20, K2, false, null), product('openblas', a2, b2, M2, 20, K2, false, null), `${kernel}: ${M2} x 20 x ${K2}`);
      // So does a product whose packed B would not stay in L2 (384 x 700 floats: over 1 MB).
      const a3 = rand(256 * 384), b3 = rand(384 * 700);
      same(product(kernel, a3, b3, 256, 700, 384, false, null), product('openblas', a3, b3, 256, 700, 384, false, null), `${kernel}: B of 384 x 700`);
    }
    assert.throws(() => addon.setGemm!('mkl' as GemmMode), /setGemm: mode must be 'auto', 'openblas', 'avx2' or 'avx512'/);
    if (!kernels.includes('avx512')) assert.throws(() => addon.setGemm!('avx512'), /one this CPU runs/);
  } finally {
    addon.setGemm!('auto');
  }
});
