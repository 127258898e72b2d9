// Fixed embeddings of the published DiT (models.py): 2-D sin-cos positions (MAE
// style) and the sinusoidal timestep frequencies of the timestep embedder.
import * as tf from '@tensorflow/tfjs-core';

/** 1-D sin-cos embedding of positions (M) into D dims: [sin(pos * w), cos(pos * w)]. */
function sincos1d(D: number, pos: Float64Array): Float64Array[] {
  const half = D / 2;
  return Array.from(pos, (p) => {
    const row = new Float64Array(D);
    for (let d = 0; d < half; d++) {
      const omega = 1 / 10000 ** (d / half);
      row[d] = Math.sin(p * omega);
      row[half + d] = Math.cos(p * omega);
    }
    return row;
  });
}

/**
 * get_2d_sincos_pos_embed(D, gridSize) as float32 [gridSize^2, D], row-major over the
 * grid. As in the official code, np.meshgrid(grid_w, grid_h) makes the first half of
 * the channels encode the column index and the second half the row index.
 */
export function sincos2dPosEmbed(D: number, gridSize: number): Float32Array {
  const T = gridSize * gridSize;
  const col = new Float64Array(T);
  const row = new Float64Array(T);
  for (let i = 0; i < gridSize; i++) {
    for (let j = 0; j < gridSize; j++) {
      col[i * gridSize + j] = j;
      row[i * gridSize + j] = i;
    }
  }
  const a = sincos1d(D / 2, col);
  const b = sincos1d(D / 2, row);
  const out = new Float32Array(T * D);
  for (let t = 0; t < T; t++) {
    out.set(a[t], t * D);
    out.set(b[t], t * D + D / 2);
  }
  return out;
}

/**
 * TimestepEmbedder.timestep_embedding: [cos(t * f), sin(t * f)] with
 * f_k = exp(-ln(10000) * k / half), k < half. t may be fractional. Returns [N, dim].
 */
export function timestepEmbedding(t: tf.Tensor1D, dim = 256, maxPeriod = 10000): tf.Tensor2D {
  return tf.tidy(() => {
    const half = Math.floor(dim / 2);
    const freqs = new Float32Array(half);
    for (let k = 0; k < half; k++) freqs[k] = Math.exp((-Math.log(maxPeriod) * k) / half);
    const args = tf.mul(tf.reshape(tf.cast(t, 'float32'), [-1, 1]), tf.tensor2d(freqs, [1, half]));
    let emb = tf.concat([tf.cos(args), tf.sin(args)], 1);
    if (dim % 2) emb = tf.concat([emb, tf.zeros([emb.shape[0], 1])], 1);
    return emb as tf.Tensor2D;
  });
}
