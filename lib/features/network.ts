// What every feature network gives the metrics (lib/metrics): per image a pool vector
// (FID, precision/recall), class logits (Inception Score) and spatial features (sFID),
// as Inception-v3 does for ADM's evaluation suite.
import * as tf from '@tensorflow/tfjs-core';

export interface FeatureTensors {
  /** [N, poolDim] */
  pool: tf.Tensor2D;
  /** [N, numClasses] */
  logits: tf.Tensor2D;
  /** [N, spatialDim] */
  spatial: tf.Tensor2D;
}

export interface FeatureNet {
  /** 'inception' or 'default' (the kit's CNN). */
  kind: 'inception' | 'default';
  /** Identifies the weights: reference statistics are cached per id. */
  id: string;
  poolDim: number;
  numClasses: number;
  spatialDim: number;
  /** Image side the network was made for (inputs of another size are resized). */
  inputSize: number;
  /** Features of n uint8 NHWC images of h x w x 3; the caller disposes the tensors. */
  forward(images: Uint8Array, n: number, h: number, w: number): FeatureTensors;
  /** The classifier head alone: logits of n pool vectors (row-major n x poolDim). */
  logitsFromPool(pool: Float32Array, n: number): Float32Array;
  dispose(): void;
}

/** Host copies of a batch of features, row-major. */
export interface FeatureArrays {
  n: number;
  pool: Float32Array;
  logits: Float32Array;
  spatial: Float32Array;
}

/** Checks a uint8 NHWC batch before it goes into a network. */
export function checkImages(images: Uint8Array, n: number, h: number, w: number, what = 'images'): void {
  if (!(images instanceof Uint8Array)) throw new Error(`${what}: expected uint8 pixels`);
  for (const [k, v] of [['n', n], ['h', h], ['w', w]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) throw new Error(`${what}: ${k} must be a positive integer, got ${v}`);
  }
  if (images.length !== n * h * w * 3) throw new Error(`${what}: ${images.length} bytes are not ${n} RGB images of ${h}x${w}`);
}

/** uint8 NHWC -> float32 tensor [N, H, W, 3] with x / scale + shift per pixel value. */
export function imagesToTensor(images: Uint8Array, n: number, h: number, w: number, scale: number, shift: number): tf.Tensor4D {
  const lut = new Float32Array(256);
  for (let v = 0; v < 256; v++) lut[v] = v / scale + shift;
  const out = new Float32Array(images.length);
  for (let i = 0; i < images.length; i++) out[i] = lut[images[i]];
  return tf.tensor4d(out, [n, h, w, 3]);
}

/** Runs a linear head (pool @ wT [+ bias]) on host pool vectors. */
export function linearHead(pool: Float32Array, n: number, wT: tf.Tensor2D, bias: tf.Tensor1D | null): Float32Array {
  const d = wT.shape[0];
  if (pool.length !== n * d) throw new Error(`logitsFromPool: ${n} pool vectors of ${d} values need ${n * d} values, got ${pool.length}`);
  return tf.tidy(() => {
    const z = tf.matMul(tf.tensor2d(pool, [n, d]), wT);
    return (bias ? tf.add(z, bias) : z).dataSync() as Float32Array;
  });
}
