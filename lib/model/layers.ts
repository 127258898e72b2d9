// The building blocks of a DiT block, as plain functions on tfjs tensors.
// Tokens are kept as [N, T, D]; matmuls run on [N*T, D] views (reshapes are free).
import * as tf from '@tensorflow/tfjs-core';
import * as ops from '../ops';

// linear, mlp, geluTanh, layerNormModulate, attention and adaLN-Zero's gated residual
// (x + gate[:, None] * h) come from lib/ops: one kernel each (forward and backward) on the
// native CPU backend, plain tf ops elsewhere.
export const linear = ops.linear;
export const mlp = ops.mlp;
export const geluTanh = ops.geluTanh;
export const multiHeadAttention = ops.attention;
export const gatedResidual = ops.gatedResidual;

/** LayerNorm over the last axis; affine only when weight/bias are given. eps 1e-6 as in DiT. */
export function layerNorm(x: tf.Tensor, weight?: tf.Tensor, bias?: tf.Tensor, eps = 1e-6): tf.Tensor {
  let y = ops.layerNorm(x, eps);
  if (weight) y = tf.mul(y, weight);
  if (bias) y = tf.add(y, bias);
  return y;
}

/** modulate(LN(x), shift, scale) = LN(x) * (1 + scale) + shift: adaLN with per-sample [N, D] shift/scale. */
export function layerNormModulate(x: tf.Tensor3D, shift: tf.Tensor2D, scale: tf.Tensor2D): tf.Tensor3D {
  return ops.layerNormModulate(x, shift, scale, 1e-6);
}

/** timm Attention: fused qkv projection ([N, T, 3D] ordered q | k | v), attention, output projection. */
export function selfAttention(x: tf.Tensor3D, h: number, qkvW: tf.Tensor, qkvB: tf.Tensor, projW: tf.Tensor, projB: tf.Tensor): tf.Tensor3D {
  const qkv = linear(x, qkvW, qkvB) as tf.Tensor3D;
  return linear(ops.qkvAttention(qkv, h), projW, projB) as tf.Tensor3D;
}

export function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

/** Patchify NCHW [N, C, H, W] -> [N, T, C*p*p], patch features ordered (c, i, j) like the conv weight. */
export function patchify(x: tf.Tensor4D, p: number): tf.Tensor3D {
  const [n, c, hh, ww] = x.shape;
  const h = hh / p;
  const w = ww / p;
  const t = tf.transpose(tf.reshape(x, [n, c, h, p, w, p]), [0, 2, 4, 1, 3, 5]);
  return tf.reshape(t, [n, h * w, c * p * p]);
}

/** Unpatchify [N, T, p*p*C] (features ordered (i, j, c) as DiT's final linear) -> NCHW. */
export function unpatchify(x: tf.Tensor3D, p: number, c: number): tf.Tensor4D {
  const [n, tokens] = x.shape;
  const h = Math.round(Math.sqrt(tokens));
  if (h * h !== tokens) throw new Error(`unpatchify: ${tokens} tokens do not form a square grid`);
  const t = tf.transpose(tf.reshape(x, [n, h, h, p, p, c]), [0, 5, 1, 3, 2, 4]);
  return tf.reshape(t, [n, c, h * p, h * p]);
}
