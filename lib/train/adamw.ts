// AdamW (Loshchilov & Hutter) as torch.optim.AdamW computes it, with plain,
// serialisable state so a checkpoint can hold it and a resumed run is bit-identical.
import * as tf from '@tensorflow/tfjs-core';
import * as ops from '../ops';

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** The paper's optimiser: AdamW, lr 1e-4, no weight decay, PyTorch's default betas and eps. */
export const DIT_ADAMW: AdamWConfig = { lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

export interface AdamWState {
  config: AdamWConfig;
  /** Number of updates taken (PyTorch's `step`), for bias correction. */
  step: number;
  /** First and second moments, keyed like the parameters. */
  m: Record<string, tf.Variable>;
  v: Record<string, tf.Variable>;
}

export function createAdamW(params: Record<string, tf.Variable>, config: AdamWConfig = DIT_ADAMW): AdamWState {
  const m: Record<string, tf.Variable> = {};
  const v: Record<string, tf.Variable> = {};
  for (const [k, p] of Object.entries(params)) {
    if (!p.trainable) continue;
    // tidy: tf.variable does not own its initial tensor.
    m[k] = tf.tidy(() => tf.variable(tf.zerosLike(p), false));
    v[k] = tf.tidy(() => tf.variable(tf.zerosLike(p), false));
  }
  return { config, step: 0, m, v };
}

/**
 * One update: p <- p * (1 - lr * wd) - lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps),
 * the order of operations of torch's single-tensor AdamW.
 */
export function adamWStep(state: AdamWState, params: Record<string, tf.Variable>, grads: Record<string, tf.Tensor>, lr = state.config.lr): void {
  state.step += 1;
  const config = lr === state.config.lr ? state.config : { ...state.config, lr };
  for (const [k, g] of Object.entries(grads)) {
    const p = params[k];
    const m = state.m[k];
    const v = state.v[k];
    if (!p || !m || !v) throw new Error(`AdamW: no parameter or state for gradient '${k}'`);
    // One fused kernel on the native backend, the same tf ops elsewhere (lib/ops).
    const r = ops.adamWUpdate(p, g, m, v, config, state.step);
    p.assign(r.p);
    m.assign(r.m);
    v.assign(r.v);
    tf.dispose([r.p, r.m, r.v]);
  }
}

export function disposeAdamW(state: AdamWState): void {
  for (const t of [...Object.values(state.m), ...Object.values(state.v)]) t.dispose();
}

/** The global L2 norm of a set of gradients (NaN or Infinity when any of them is not finite). */
export function gradNorm(grads: Record<string, tf.Tensor>): number {
  return tf.tidy(() => tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g))))).dataSync()[0]);
}

/**
 * Scales gradients so their global L2 norm is at most maxNorm (torch.nn.utils.clip_grad_norm_).
 * Returns the norm before clipping; `norm` skips recomputing it when the caller has it.
 */
export function clipGradNorm(grads: Record<string, tf.Tensor>, maxNorm: number, norm = gradNorm(grads)): { grads: Record<string, tf.Tensor>; norm: number } {
  const coef = maxNorm / (norm + 1e-6);
  if (coef >= 1) return { grads, norm };
  const out: Record<string, tf.Tensor> = {};
  for (const [k, g] of Object.entries(grads)) {
    out[k] = tf.mul(g, coef);
    g.dispose();
  }
  return { grads: out, norm };
}
