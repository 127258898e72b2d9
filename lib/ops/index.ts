// Fused DiT ops with gradients. On a backend that implements the fused kernel (the 'native'
// CPU backend, lib/backend/native_ops.ts) each op is one kernel forward and one backward;
// on any other backend (tensorflow, wasm, cpu) it is the same math as plain tf ops, so
// model code calls these and never depends on a backend. Inputs must be float32.
//
//   geluTanh(x)                          GELU, tanh approximation (nn.GELU(approximate="tanh"))
//   layerNorm(x, eps = 1e-6)             LayerNorm over the last axis, no affine
//   layerNormModulate(x, shift, scale)   LN(x) * (1 + scale[:, None]) + shift[:, None] (adaLN);
//                                        x [N, T, D], shift/scale [N, D]
//   gatedResidual(x, h, g)               x + g[:, None] * h (adaLN-Zero's gated residual);
//                                        x, h [N, T, D], g [N, D]
//   attention(q, k, v, heads)            softmax(q k^T / sqrt(hd)) v per head; q [N, Tq, D],
//                                        k/v [N, Tk, D] -> [N, Tq, D]
//   qkvAttention(qkv, heads)             self-attention on a fused projection [N, T, 3D]
//                                        (q | k | v, heads inside each, timm layout) -> [N, T, D]
//   linear(x, w, b?)                     x @ w + b, w [in, out], b [out], any rank of x (bias in the GEMM)
//   mlp(x, w1, b1, w2, b2)               linear(geluTanh(linear(x, w1, b1)), w2, b2), GELU inside the GEMMs
//   adamWUpdate(p, g, m, v, config, step) one AdamW step (torch's order of operations) ->
//                                        new { p, m, v }; no gradient
//   emaUpdate(e, p, decay)               e * decay + p * (1 - decay), the weight EMA; no gradient
//
// conv2d (./conv.ts), for the feature networks and the autoencoder, picks the backend's
// conv kernels or an im2col + matMul formulation of its own.
import * as tf from '@tensorflow/tfjs-core';
import * as K from './kernel_names';

export * from './conv';

/** True when the active backend runs the fused kernels (else the composite tf-op versions run). */
export function fusedOpsNative(): boolean {
  return tf.getKernel(K.GELU_TANH, tf.getBackend()) != null;
}

function useKernel(name: string, xs: tf.Tensor[]): boolean {
  return tf.getKernel(name, tf.getBackend()) != null && xs.every((x) => x.dtype === 'float32');
}

const run = (name: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap = {}) =>
  tf.engine().runKernel(name, inputs, attrs);

// ---- GELU --------------------------------------------------------------------------------

const GELU_K = Math.sqrt(2 / Math.PI);

export function geluTanh(x: tf.Tensor): tf.Tensor {
  if (useKernel(K.GELU_TANH, [x])) return run(K.GELU_TANH, { x }) as tf.Tensor;
  return tf.tidy(() => {
    // x * x * x rather than pow: pow is slow on the JS backends.
    const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), GELU_K);
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
  });
}

tf.registerGradient({
  kernelName: K.GELU_TANH,
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => ({ x: () => run(K.GELU_TANH_GRAD, { x: saved[0], dy: dy as tf.Tensor }) as tf.Tensor }),
});

// ---- layer norm --------------------------------------------------------------------------

function checkEps(eps: number): void {
  if (!(eps > 0)) throw new Error(`layerNorm: eps must be positive, got ${eps}`);
}

export function layerNorm(x: tf.Tensor, eps = 1e-6): tf.Tensor {
  checkEps(eps);
  if (useKernel(K.LAYER_NORM, [x])) return run(K.LAYER_NORM, { x }, { eps }) as tf.Tensor;
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, x.rank - 1, true);
    return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
  });
}

tf.registerGradient({
  kernelName: K.LAYER_NORM,
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => ({
    x: () => run(K.LAYER_NORM_GRAD, { x: saved[0], dy: dy as tf.Tensor }, { eps: attrs.eps as number }) as tf.Tensor,
  }),
});

export function layerNormModulate(x: tf.Tensor3D, shift: tf.Tensor2D, scale: tf.Tensor2D, eps = 1e-6): tf.Tensor3D {
  checkEps(eps);
  const [n, , d] = x.shape;
  for (const [name, t] of [['shift', shift], ['scale', scale]] as const) {
    if (x.rank !== 3 || t.rank !== 2 || t.shape[0] !== n || t.shape[1] !== d) {
      throw new Error(`layerNormModulate: x must be [N, T, D] and ${name} [N, D]; got x [${x.shape}], ${name} [${t.shape}]`);
    }
  }
  if (useKernel(K.LAYER_NORM_MODULATE, [x, shift, scale])) {
    return run(K.LAYER_NORM_MODULATE, { x, shift, scale }, { eps }) as tf.Tensor3D;
  }
  return tf.tidy(() => {
    const y = layerNorm(x, eps);
    return tf.add(tf.mul(y, tf.add(tf.reshape(scale, [n, 1, d]), 1)), tf.reshape(shift, [n, 1, d])) as tf.Tensor3D;
  });
}

tf.registerGradient({
  kernelName: K.LAYER_NORM_MODULATE,
  inputsToSave: ['x', 'scale'],
  gradFunc: (dy, saved, attrs) => {
    // One kernel gives all three gradients; computed here, in the engine's backward scope,
    // and handed out by the closures.
    const [x, scale] = saved;
    const [dx, dshift, dscale] = run(K.LAYER_NORM_MODULATE_GRAD, { x, scale, dy: dy as tf.Tensor }, { eps: attrs.eps as number }) as tf.Tensor[];
    return { x: () => dx, shift: () => dshift, scale: () => dscale };
  },
});

// ---- gated residual ----------------------------------------------------------------------

export function gatedResidual(x: tf.Tensor3D, h: tf.Tensor3D, g: tf.Tensor2D): tf.Tensor3D {
  const [n, t, d] = x.shape;
  if (x.rank !== 3 || !tf.util.arraysEqual(h.shape, x.shape) || g.rank !== 2 || g.shape[0] !== n || g.shape[1] !== d) {
    throw new Error(`gatedResidual: want x and h [N, T, D], g [N, D]; got x [${x.shape}], h [${h.shape}], g [${g.shape}]`);
  }
  if (useKernel(K.GATED_RESIDUAL, [x, h, g]) && n * t * d > 0) return run(K.GATED_RESIDUAL, { x, h, g }) as tf.Tensor3D;
  return tf.tidy(() => tf.add(x, tf.mul(h, tf.reshape(g, [n, 1, d]))) as tf.Tensor3D);
}

tf.registerGradient({
  kernelName: K.GATED_RESIDUAL,
  inputsToSave: ['h', 'g'],
  gradFunc: (dy, saved) => {
    const [h, g] = saved;
    const [dh, dg] = run(K.GATED_RESIDUAL_GRAD, { h, g, dy: dy as tf.Tensor }) as tf.Tensor[];
    return { x: () => (dy as tf.Tensor).clone(), h: () => dh, g: () => dg };
  },
});

// ---- attention ---------------------------------------------------------------------------

function checkHeads(what: string, d: number, heads: number): void {
  if (!Number.isInteger(heads) || heads <= 0 || d % heads !== 0) {
    throw new Error(`${what}: width ${d} is not divisible into ${heads} heads`);
  }
}

/** [N, T, H*hd] -> [N, H, T, hd]. */
function splitHeads(x: tf.Tensor3D, h: number): tf.Tensor4D {
  const [n, t, d] = x.shape;
  return tf.transpose(tf.reshape(x, [n, t, h, d / h]), [0, 2, 1, 3]);
}

function compositeAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [n, tq, d] = q.shape;
    const scores = tf.matMul(tf.mul(splitHeads(q, heads), 1 / Math.sqrt(d / heads)), splitHeads(k, heads), false, true);
    const out = tf.matMul(tf.softmax(scores), splitHeads(v, heads));
    return tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [n, tq, d]) as tf.Tensor3D;
  });
}

export function attention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number): tf.Tensor3D {
  const [n, , d] = q.shape;
  if (q.rank !== 3 || k.rank !== 3 || v.rank !== 3 || k.shape[0] !== n || v.shape[0] !== n ||
      k.shape[2] !== d || v.shape[2] !== d || k.shape[1] !== v.shape[1]) {
    throw new Error(`attention: want q [N, Tq, D], k and v [N, Tk, D]; got [${q.shape}], [${k.shape}], [${v.shape}]`);
  }
  checkHeads('attention', d, heads);
  if (!useKernel(K.ATTENTION, [q, k, v])) return compositeAttention(q, k, v, heads);
  return withSaved(K.ATTENTION, K.ATTENTION_GRAD, { q, k, v }, ['probs'], { heads }) as tf.Tensor3D;
}

/**
 * A fused kernel that returns [out, ...kept] (attention: the probabilities; the MLP: its
 * pre-activation and activation), whose backward reads the kept tensors. Registering the
 * kernel's own gradient would make tfjs feed a zero-filled dy for every kept output (for
 * attention an [N, H, T, T] allocation per layer per step: 48 MB at 256 tokens, measured),
 * so the op is a customGrad whose only output is `out` and which saves the kept tensors
 * for its backward: gradKernel gets the inputs, the kept tensors by `keptNames`, and dy.
 * Without a tape (sampling, evaluation) the kernel runs with attrs.save false and keeps nothing.
 */
function withSaved(kernel: string, gradKernel: string, inputs: Record<string, tf.Tensor>, keptNames: string[],
  attrs: tf.NamedAttrMap): tf.Tensor {
  if (!tf.engine().isTapeOn()) return run(kernel, inputs, { ...attrs, save: false }) as tf.Tensor;
  const names = Object.keys(inputs);
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const xs = args.slice(0, names.length) as tf.Tensor[];
    const save = args[names.length] as tf.GradSaveFunc;
    const named = Object.fromEntries(names.map((n, i) => [n, xs[i]]));
    const [out, ...kept] = run(kernel, named, attrs) as tf.Tensor[];
    save([...xs, ...kept]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const s = Object.fromEntries([...names, ...keptNames].map((n, i) => [n, saved[i]]));
        const g = run(gradKernel, { ...s, dy }, attrs);
        return Array.isArray(g) ? g : [g];
      },
    };
  });
  return op(...names.map((n) => inputs[n]));
}

export function qkvAttention(qkv: tf.Tensor3D, heads: number): tf.Tensor3D {
  if (qkv.rank !== 3 || qkv.shape[2] % 3 !== 0) throw new Error(`qkvAttention: want qkv [N, T, 3D], got [${qkv.shape}]`);
  const d = qkv.shape[2] / 3;
  checkHeads('qkvAttention', d, heads);
  if (!useKernel(K.QKV_ATTENTION, [qkv])) {
    return tf.tidy(() => {
      const [q, k, v] = tf.split(qkv, 3, 2) as tf.Tensor3D[];
      return compositeAttention(q, k, v, heads);
    });
  }
  return withSaved(K.QKV_ATTENTION, K.QKV_ATTENTION_GRAD, { qkv }, ['probs'], { heads }) as tf.Tensor3D;
}

// ---- linear ------------------------------------------------------------------------------

/**
 * x @ w (+ b) with w stored [in, out], any rank of x. On a backend with the fused kernel it
 * is one kernel forward and one backward (about 15 fewer engine calls per layer and step
 * than reshapes around tf.fused.matMul); elsewhere the bias is fused into tf.fused.matMul.
 */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  const fin = x.shape[x.rank - 1];
  if (w.rank !== 2 || w.shape[0] !== fin) throw new Error(`linear: x [${x.shape}] does not fit w [${w.shape}]`);
  if (b && (b.rank !== 1 || b.shape[0] !== w.shape[1])) throw new Error(`linear: bias [${b.shape}] does not fit w [${w.shape}]`);
  if (x.rank >= 2 && useKernel(K.LINEAR, b ? [x, w, b] : [x, w])) return run(K.LINEAR, b ? { x, w, b } : { x, w }, { hasBias: b !== undefined }) as tf.Tensor;
  return tf.tidy(() => {
    const y = tf.fused.matMul({ a: tf.reshape(x, [-1, fin]) as tf.Tensor2D, b: w as tf.Tensor2D, bias: b });
    return tf.reshape(y, [...x.shape.slice(0, -1), w.shape[1] as number]);
  });
}

tf.registerGradient({
  kernelName: K.LINEAR,
  inputsToSave: ['x', 'w'],
  gradFunc: (dy, saved, attrs) => {
    const [x, w] = saved;
    const grads = run(K.LINEAR_GRAD, { x, w, dy: dy as tf.Tensor }, { hasBias: attrs.hasBias as boolean }) as tf.Tensor[];
    return { x: () => grads[0], w: () => grads[1], b: () => grads[2] };
  },
});

// ---- MLP ---------------------------------------------------------------------------------

/**
 * The transformer MLP, fc2(gelu_tanh(fc1(x))): linear(geluTanh(linear(x, w1, b1)), w2, b2).
 * On a backend with the fused kernel it is one kernel each way, and GELU and its derivative
 * run inside the GEMMs (no pass over the hidden activations); elsewhere it is those three ops.
 */
export function mlp(x: tf.Tensor, w1: tf.Tensor, b1: tf.Tensor, w2: tf.Tensor, b2: tf.Tensor): tf.Tensor {
  const d = x.shape[x.rank - 1];
  if (w1.rank !== 2 || w1.shape[0] !== d || w2.rank !== 2 || w2.shape[0] !== w1.shape[1] ||
      b1.rank !== 1 || b1.shape[0] !== w1.shape[1] || b2.rank !== 1 || b2.shape[0] !== w2.shape[1]) {
    throw new Error(`mlp: want x [..., D], w1 [D, H], b1 [H], w2 [H, DO], b2 [DO]; got [${x.shape}], [${w1.shape}], [${b1.shape}], [${w2.shape}], [${b2.shape}]`);
  }
  if (x.rank < 2 || x.size === 0 || !useKernel(K.MLP, [x, w1, b1, w2, b2])) return linear(geluTanh(linear(x, w1, b1)), w2, b2);
  return withSaved(K.MLP, K.MLP_GRAD, { x, w1, b1, w2, b2 }, ['h', 'g'], {});
}

// ---- AdamW -------------------------------------------------------------------------------

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/**
 * One AdamW update as torch.optim.AdamW (single-tensor) computes it, `step` counting from 1:
 *   m' = m b1 + g (1 - b1);  v' = v b2 + g^2 (1 - b2)
 *   p' = p (1 - lr wd) - lr / (1 - b1^step) * m' / (sqrt(v') / sqrt(1 - b2^step) + eps)
 * Returns new tensors (the caller assigns them). The native kernel does it in one pass and
 * rounds every step exactly like the composite version.
 */
export function adamWUpdate(p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, c: AdamWHyper, step: number): { p: tf.Tensor; m: tf.Tensor; v: tf.Tensor } {
  for (const [name, t] of [['g', g], ['m', m], ['v', v]] as const) {
    if (!tf.util.arraysEqual(t.shape, p.shape)) throw new Error(`adamWUpdate: ${name} [${t.shape}] does not match p [${p.shape}]`);
  }
  if (!(step >= 1)) throw new Error(`adamWUpdate: step counts from 1, got ${step}`);
  const sqrtBc2 = Math.sqrt(1 - c.beta2 ** step);
  const stepSize = c.lr / (1 - c.beta1 ** step);
  const keep = 1 - c.lr * c.weightDecay;
  if (useKernel(K.ADAMW, [p, g, m, v])) {
    const f = Math.fround;
    const consts = [f(c.beta1), f(1 - c.beta1), f(c.beta2), f(1 - c.beta2), f(sqrtBc2), f(c.eps), f(keep), f(stepSize), c.weightDecay ? 1 : 0];
    const [p1, m1, v1] = run(K.ADAMW, { p, g, m, v }, { consts }) as tf.Tensor[];
    return { p: p1, m: m1, v: v1 };
  }
  return tf.tidy(() => {
    const m1 = tf.add(tf.mul(m, c.beta1), tf.mul(g, 1 - c.beta1));
    const v1 = tf.add(tf.mul(v, c.beta2), tf.mul(tf.square(g), 1 - c.beta2));
    const denom = tf.add(tf.div(tf.sqrt(v1), sqrtBc2), c.eps);
    const decayed = c.weightDecay ? tf.mul(p, keep) : p;
    return { p: tf.sub(decayed, tf.mul(tf.div(m1, denom), stepSize)), m: m1, v: v1 };
  });
}

// ---- weight EMA --------------------------------------------------------------------------

/**
 * e * decay + p * (1 - decay) as a new tensor (DiT's update_ema). The native kernel does it
 * in one pass and rounds exactly like the composite version (two products, then the sum).
 */
export function emaUpdate(e: tf.Tensor, p: tf.Tensor, decay: number): tf.Tensor {
  if (!tf.util.arraysEqual(e.shape, p.shape)) throw new Error(`emaUpdate: ema [${e.shape}] does not match param [${p.shape}]`);
  if (useKernel(K.EMA, [e, p])) return run(K.EMA, { e, p }, { consts: [Math.fround(decay), Math.fround(1 - decay)] }) as tf.Tensor;
  return tf.tidy(() => tf.add(tf.mul(e, decay), tf.mul(p, 1 - decay)));
}
