// The fused DiT kernels of lib/ops (names in lib/ops/kernel_names.ts) for the 'native'
// backend, on native/src/fused.c and vmath.c. lib/ops only calls them with float32 tensors
// of the shapes it documents; the gradients are registered by lib/ops.
import * as tf from '@tensorflow/tfjs-core';
import * as K from '../ops/kernel_names';
import { NativeAddon } from './native_addon';
import { REDUCE, alloc, mustF32, output, recycle, size } from './native_util';

type TensorInfo = tf.TensorInfo;
type Args = { inputs: Record<string, TensorInfo>; backend: unknown; attrs?: tf.NamedAttrMap };

const UNARY_GELU_TANH = 22; // vmath.h U_GELU_TANH

export function registerFusedKernels(addon: NativeAddon): void {
  const reg = (kernelName: string, f: (args: Args) => TensorInfo | TensorInfo[]) =>
    tf.registerKernel({ kernelName, backendName: 'native', kernelFunc: f as unknown as tf.KernelFunc });

  reg(K.GELU_TANH, ({ inputs: { x }, backend }) => {
    const out = alloc(backend, size(x.shape));
    addon.unary(UNARY_GELU_TANH, mustF32(backend, x, 'x'), out, 0);
    return output(backend, x.shape.slice(), out);
  });
  reg(K.GELU_TANH_GRAD, ({ inputs: { x, dy }, backend }) => {
    const dx = alloc(backend, size(x.shape));
    addon.geluTanhGrad(mustF32(backend, x, 'x'), mustF32(backend, dy, 'dy'), dx);
    return output(backend, x.shape.slice(), dx);
  });

  // Layer norm over the last axis: x viewed as [rows, D]; with modulation x is [N, T, D] and
  // shift/scale are [N, D].
  const rowsOf = (x: TensorInfo) => {
    const D = x.shape[x.shape.length - 1];
    return { D, rows: size(x.shape) / D };
  };
  reg(K.LAYER_NORM, ({ inputs: { x }, backend, attrs }) => {
    const { D, rows } = rowsOf(x);
    const y = alloc(backend, rows * D);
    addon.lnModForward(mustF32(backend, x, 'x'), null, null, y, rows, 1, D, Number(attrs!.eps));
    return output(backend, x.shape.slice(), y);
  });
  reg(K.LAYER_NORM_GRAD, ({ inputs: { x, dy }, backend, attrs }) => {
    const { D, rows } = rowsOf(x);
    const dx = alloc(backend, rows * D);
    addon.lnModBackward(mustF32(backend, x, 'x'), null, mustF32(backend, dy, 'dy'), dx, null, null, rows, 1, D, Number(attrs!.eps));
    return output(backend, x.shape.slice(), dx);
  });
  reg(K.LAYER_NORM_MODULATE, ({ inputs: { x, shift, scale }, backend, attrs }) => {
    const [N, T, D] = x.shape;
    const y = alloc(backend, N * T * D);
    addon.lnModForward(mustF32(backend, x, 'x'), mustF32(backend, shift, 'shift'), mustF32(backend, scale, 'scale'), y, N, T, D, Number(attrs!.eps));
    return output(backend, x.shape.slice(), y);
  });
  reg(K.LAYER_NORM_MODULATE_GRAD, ({ inputs: { x, scale, dy }, backend, attrs }) => {
    const [N, T, D] = x.shape;
    const dx = alloc(backend, N * T * D), dshift = alloc(backend, N * D), dscale = alloc(backend, N * D);
    addon.lnModBackward(mustF32(backend, x, 'x'), mustF32(backend, scale, 'scale'), mustF32(backend, dy, 'dy'), dx, dshift, dscale, N, T, D, Number(attrs!.eps));
    return [output(backend, x.shape.slice(), dx), output(backend, [N, D], dshift), output(backend, [N, D], dscale)];
  });

  // adaLN-Zero's gated residual: x, h [N, T, D], g [N, D].
  reg(K.GATED_RESIDUAL, ({ inputs: { x, h, g }, backend }) => {
    const [N, T, D] = x.shape;
    const out = alloc(backend, N * T * D);
    addon.gatedResidual(mustF32(backend, x, 'x'), mustF32(backend, h, 'h'), mustF32(backend, g, 'g'), out, N, T, D);
    return output(backend, x.shape.slice(), out);
  });
  reg(K.GATED_RESIDUAL_GRAD, ({ inputs: { h, g, dy }, backend }) => {
    const [N, T, D] = h.shape;
    const dh = alloc(backend, N * T * D), dg = alloc(backend, N * D);
    addon.gatedResidualGrad(mustF32(backend, h, 'h'), mustF32(backend, g, 'g'), mustF32(backend, dy, 'dy'), dh, dg, N, T, D);
    return [output(backend, h.shape.slice(), dh), output(backend, [N, D], dg)];
  });

  // Attention. Outputs [out [N, Tq, D], probs [N, H, Tq, Tk]] (probs kept for the gradient);
  // with attrs.save false only out.
  type Layout = [Float32Array, number, number]; // array, offset, row stride
  const forward = (backend: unknown, q: Layout, k: Layout, v: Layout, N: number, Tq: number, Tk: number, D: number,
    attrs: tf.NamedAttrMap | undefined) => {
    const heads = Number(attrs!.heads), hd = D / heads;
    const out = alloc(backend, N * Tq * D), probs = attrs!.save === false ? null : alloc(backend, N * heads * Tq * Tk);
    addon.attnForward(...q, ...k, ...v, out, probs, N, Tq, Tk, heads, hd, 1 / Math.sqrt(hd));
    const o = output(backend, [N, Tq, D], out);
    return probs ? [o, output(backend, [N, heads, Tq, Tk], probs)] : o;
  };
  const backward = (q: Layout, k: Layout, v: Layout, probs: Float32Array, dy: Float32Array, grads: Float32Array[],
    N: number, Tq: number, Tk: number, D: number, heads: number) => {
    const hd = D / heads;
    addon.attnBackward(...q, ...k, ...v, probs, dy, grads[0], grads[1], grads[2], N, Tq, Tk, heads, hd, 1 / Math.sqrt(hd));
  };
  reg(K.QKV_ATTENTION, ({ inputs: { qkv }, backend, attrs }) => {
    const [N, T, D3] = qkv.shape;
    const a = mustF32(backend, qkv, 'qkv'), D = D3 / 3;
    return forward(backend, [a, 0, D3], [a, D, D3], [a, 2 * D, D3], N, T, T, D, attrs);
  });
  reg(K.QKV_ATTENTION_GRAD, ({ inputs: { qkv, probs, dy }, backend, attrs }) => {
    const [N, T, D3] = qkv.shape;
    const a = mustF32(backend, qkv, 'qkv'), D = D3 / 3;
    const dqkv = alloc(backend, a.length); // the three thirds of every row are all written
    backward([a, 0, D3], [a, D, D3], [a, 2 * D, D3], mustF32(backend, probs, 'probs'), mustF32(backend, dy, 'dy'),
      [dqkv, dqkv, dqkv], N, T, T, D, Number(attrs!.heads));
    return output(backend, qkv.shape.slice(), dqkv);
  });
  reg(K.ATTENTION, ({ inputs: { q, k, v }, backend, attrs }) => {
    const [N, Tq, D] = q.shape, Tk = k.shape[1];
    return forward(backend, [mustF32(backend, q, 'q'), 0, D], [mustF32(backend, k, 'k'), 0, D], [mustF32(backend, v, 'v'), 0, D],
      N, Tq, Tk, D, attrs);
  });
  reg(K.ATTENTION_GRAD, ({ inputs: { q, k, v, probs, dy }, backend, attrs }) => {
    const [N, Tq, D] = q.shape, Tk = k.shape[1];
    const grads = [q, k, v].map((t) => alloc(backend, size(t.shape)));
    backward([mustF32(backend, q, 'q'), 0, D], [mustF32(backend, k, 'k'), 0, D], [mustF32(backend, v, 'v'), 0, D],
      mustF32(backend, probs, 'probs'), mustF32(backend, dy, 'dy'), grads, N, Tq, Tk, D, Number(attrs!.heads));
    return [q, k, v].map((t, i) => output(backend, t.shape.slice(), grads[i]));
  });

  // Linear layer: x [..., in] @ w [in, out] (+ b [out]) -> [..., out], one sgemm with the bias
  // in C. Its gradient is one kernel: dx = dy w^T, dw = x^T dy, db = column sums of dy (the
  // same sgemm calls and reduction as tfjs' fused-matMul gradient, so the same values).
  reg(K.LINEAR, ({ inputs: { x, w, b }, backend }) => {
    const [fin, fout] = w.shape, rows = size(x.shape) / fin;
    const out = alloc(backend, rows * fout);
    if (out.length > 0) {
      addon.matmul(mustF32(backend, x, 'x'), mustF32(backend, w, 'w'), out, 1, 1, 1, rows, fout, fin, 0, 0, b ? mustF32(backend, b, 'b') : null);
    }
    return output(backend, [...x.shape.slice(0, -1), fout], out);
  });
  reg(K.LINEAR_GRAD, ({ inputs: { x, w, dy }, backend, attrs }) => {
    const [fin, fout] = w.shape, rows = size(x.shape) / fin;
    const xv = mustF32(backend, x, 'x'), wv = mustF32(backend, w, 'w'), dyv = mustF32(backend, dy, 'dy');
    const dx = alloc(backend, rows * fin), dw = alloc(backend, fin * fout);
    addon.matmul(dyv, wv, dx, 1, 1, 1, rows, fin, fout, 0, 1, null);
    addon.matmul(xv, dyv, dw, 1, 1, 1, fin, fout, rows, 1, 0, null); // zeros when rows = 0 (K = 0)
    const outs = [output(backend, x.shape.slice(), dx), output(backend, [fin, fout], dw)];
    if (attrs!.hasBias) {
      const db = alloc(backend, fout);
      if (rows > 0) addon.reduce(REDUCE.Sum, dyv, db, 1, rows, fout);
      else db.fill(0);
      outs.push(output(backend, [fout], db));
    }
    return outs;
  });

  // The DiT MLP fc2(gelu_tanh(fc1(x))): x [..., D], w1 [D, H], w2 [H, DO]. Outputs [y, h, g]
  // (h the pre-activation and g = gelu(h), kept for the gradient), or y alone with
  // attrs.save false (g is then scratch).
  if (addon.mlpForward && addon.mlpBackward) {
    const mlpForward = addon.mlpForward, mlpBackward = addon.mlpBackward;
    reg(K.MLP, ({ inputs: { x, w1, b1, w2, b2 }, backend, attrs }) => {
      const [D, H] = w1.shape, DO = w2.shape[1], rows = size(x.shape) / D;
      const y = alloc(backend, rows * DO), g = alloc(backend, rows * H), save = attrs!.save !== false;
      const h = save ? alloc(backend, rows * H) : null;
      mlpForward(mustF32(backend, x, 'x'), mustF32(backend, w1, 'w1'), mustF32(backend, b1, 'b1'), mustF32(backend, w2, 'w2'),
        mustF32(backend, b2, 'b2'), y, h, g, rows, D, H, DO);
      const out = output(backend, [...x.shape.slice(0, -1), DO], y);
      if (!h) {
        recycle(backend, g);
        return out;
      }
      return [out, output(backend, [rows, H], h), output(backend, [rows, H], g)];
    });
    reg(K.MLP_GRAD, ({ inputs: { x, w1, w2, h, g, dy }, backend }) => {
      const [D, H] = w1.shape, DO = w2.shape[1], rows = size(x.shape) / D;
      const dx = alloc(backend, rows * D), dw1 = alloc(backend, D * H), db1 = alloc(backend, H);
      const dw2 = alloc(backend, H * DO), db2 = alloc(backend, DO), dh = alloc(backend, rows * H);
      mlpBackward(mustF32(backend, x, 'x'), mustF32(backend, w1, 'w1'), mustF32(backend, w2, 'w2'), mustF32(backend, h, 'h'),
        mustF32(backend, g, 'g'), mustF32(backend, dy, 'dy'), dx, dw1, db1, dw2, db2, dh, rows, D, H, DO);
      recycle(backend, dh);
      return [output(backend, x.shape.slice(), dx), output(backend, [D, H], dw1), output(backend, [H], db1),
        output(backend, [H, DO], dw2), output(backend, [DO], db2)];
    });
  }

  // AdamW: [p1, m1, v1] from p, g, m, v in one pass; attrs are the float32 constants.
  reg(K.ADAMW, ({ inputs: { p, g, m, v }, backend, attrs }) => {
    const n = size(p.shape);
    const outs = [alloc(backend, n), alloc(backend, n), alloc(backend, n)];
    addon.adamw(mustF32(backend, p, 'p'), mustF32(backend, g, 'g'), mustF32(backend, m, 'm'), mustF32(backend, v, 'v'),
      outs[0], outs[1], outs[2], attrs!.consts as number[]);
    return outs.map((o) => output(backend, p.shape.slice(), o));
  });

  // Weight EMA: e1 from e, p in one pass; attrs.consts = [decay, 1 - decay] as float32.
  reg(K.EMA, ({ inputs: { e, p }, backend, attrs }) => {
    const out = alloc(backend, size(e.shape));
    const [d, omd] = attrs!.consts as number[];
    addon.ema(mustF32(backend, e, 'e'), mustF32(backend, p, 'p'), out, d, omd);
    return output(backend, e.shape.slice(), out);
  });
}
