// The building blocks of a DiT block, as plain functions on tfjs tensors.
// Tokens are kept as [N, T, D]; matmuls run on [N*T, D] views (reshapes are free).
import * as tf from '@tensorflow/tfjs-core';

/** x @ W + b with W stored [in, out] (see params.ts 'linear' layout). Works on any rank. */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  const shape = x.shape;
  const fin = shape[shape.length - 1];
  const y2 = tf.matMul(tf.reshape(x, [-1, fin]), w as tf.Tensor2D);
  const y = b ? tf.add(y2, b) : y2;
  return tf.reshape(y, [...shape.slice(0, -1), w.shape[1]!]);
}

/** LayerNorm over the last axis; affine only when weight/bias are given. eps 1e-6 as in DiT. */
export function layerNorm(x: tf.Tensor, weight?: tf.Tensor, bias?: tf.Tensor, eps = 1e-6): tf.Tensor {
  const axis = x.rank - 1;
  const { mean, variance } = tf.moments(x, axis, true);
  let y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
  if (weight) y = tf.mul(y, weight);
  if (bias) y = tf.add(y, bias);
  return y;
}

/** modulate(x, shift, scale) = x * (1 + scale) + shift, with per-sample [N, D] shift/scale. */
export function modulate(x: tf.Tensor3D, shift: tf.Tensor2D, scale: tf.Tensor2D): tf.Tensor3D {
  const [n, , d] = x.shape;
  return tf.add(tf.mul(x, tf.add(tf.reshape(scale, [n, 1, d]), 1)), tf.reshape(shift, [n, 1, d])) as tf.Tensor3D;
}

/** Per-sample gate broadcast over tokens: gate[:, None] * x. */
export function gate(x: tf.Tensor3D, g: tf.Tensor2D): tf.Tensor3D {
  const [n, , d] = x.shape;
  return tf.mul(x, tf.reshape(g, [n, 1, d])) as tf.Tensor3D;
}

/** GELU with the tanh approximation (nn.GELU(approximate="tanh") in DiT's MLP). */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  const c = Math.sqrt(2 / Math.PI);
  const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), c);
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

/** Splits the last axis into heads: [N, T, H*hd] -> [N, H, T, hd]. */
function heads(x: tf.Tensor3D, h: number): tf.Tensor4D {
  const [n, t, d] = x.shape;
  return tf.transpose(tf.reshape(x, [n, t, h, d / h]), [0, 2, 1, 3]);
}

/** Scaled dot-product attention of q [N, Tq, D] over k, v [N, Tk, D] with h heads. */
export function multiHeadAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, h: number): tf.Tensor3D {
  const [n, tq, d] = q.shape;
  const scale = 1 / Math.sqrt(d / h);
  const scores = tf.matMul(tf.mul(heads(q, h), scale), heads(k, h), false, true);
  const out = tf.matMul(tf.softmax(scores), heads(v, h)); // [N, H, Tq, hd]
  return tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [n, tq, d]);
}

/** timm Attention: fused qkv projection, attention, output projection. */
export function selfAttention(x: tf.Tensor3D, h: number, qkvW: tf.Tensor, qkvB: tf.Tensor, projW: tf.Tensor, projB: tf.Tensor): tf.Tensor3D {
  const d = x.shape[2];
  const qkv = linear(x, qkvW, qkvB) as tf.Tensor3D; // [N, T, 3D] ordered (q | k | v), heads inside each
  const [q, k, v] = tf.split(qkv, [d, d, d], 2) as tf.Tensor3D[];
  return linear(multiHeadAttention(q, k, v, h), projW, projB) as tf.Tensor3D;
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
