// Training the default feature network: softmax cross-entropy, AdamW (lib/train/adamw)
// with a linear warm-up and a cosine decay to zero, horizontal flips, seeded batch order.
// Every conv is trained as conv -> BatchNorm (batch statistics) -> ReLU, which trains several
// times faster than plain convs; the BatchNorm (with its running statistics, as PyTorch
// keeps them) is folded into the conv's weights and bias when training ends, so the stored
// network is plain conv + bias + ReLU. Everything random comes from the seed, so the same
// seed on the same backend gives the same weights.
import * as tf from '@tensorflow/tfjs-core';
import { Batch, ImageDataset, flipImage, imageBytes } from '../data/dataset';
import { HostArray } from '../io/array';
import { checkLabels } from '../model/labels';
import { conv2d } from '../ops/conv';
import { AdamWConfig, createAdamW, disposeAdamW } from '../train/adamw';
import { StreamOrder, drawFlips } from '../train/order';
import { optimizerStep } from '../train/step';
import { derivedSeed, Rng } from '../util/rng';
import {
  DEFAULT_CNN_CONFIG, DefaultCnnConfig, DefaultCnn, checkDefaultCnnConfig, defaultCnnInput, defaultCnnShapes,
  initDefaultCnnWeights,
} from './default_cnn';

export interface DefaultCnnTrainOptions {
  config?: DefaultCnnConfig;
  /** Seeds the initial weights, the batch order and the flips. Default 0. */
  seed?: number;
  /** Optimiser steps. Default 2500 (3.2 epochs of 50,000 images at batch 64). */
  steps?: number;
  batchSize?: number;
  /** Peak learning rate. Default 2e-3. */
  lr?: number;
  /** Share of the steps spent warming the learning rate up linearly. Default 0.1. */
  warmup?: number;
  weightDecay?: number;
  /** Random horizontal flips (the synthetic classes are mirror-symmetric as sets). Default true. */
  flip?: boolean;
  /** Called after every step with the batch loss. */
  onStep?: (step: number, steps: number, loss: number) => void;
}

export const DEFAULT_TRAIN_OPTIONS = { seed: 0, steps: 2500, batchSize: 64, lr: 2e-3, warmup: 0.1, weightDecay: 1e-4, flip: true };

export interface DefaultCnnTrainResult {
  weights: Record<string, HostArray>;
  config: DefaultCnnConfig;
  /** The options used, defaults filled in (for the manifest). */
  recipe: typeof DEFAULT_TRAIN_OPTIONS;
  /** Mean loss over the last 100 steps. */
  finalLoss: number;
  seconds: number;
}

/** Learning rate at step s (0-based): linear warm-up, then cosine to zero. */
export function learningRate(s: number, steps: number, peak: number, warmup: number): number {
  const w = Math.max(1, Math.round(warmup * steps));
  if (s < w) return (peak * (s + 1)) / w;
  return 0.5 * peak * (1 + Math.cos((Math.PI * (s - w)) / Math.max(1, steps - w)));
}

/** Mean softmax cross-entropy of logits [N, K] against integer labels. */
export function crossEntropy(logits: tf.Tensor2D, labels: Int32Array): tf.Scalar {
  return tf.tidy(() => {
    const onehot = tf.oneHot(tf.tensor1d(labels, 'int32'), logits.shape[1]);
    return tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
  });
}

export const BN_EPS = 1e-5;
export const BN_MOMENTUM = 0.1;

/** Trainable tensors: conv{i}.weight, bn{i}.gamma, bn{i}.beta, fc.weight, fc.bias. */
export function trainingShapes(c: DefaultCnnConfig): Array<[string, number[]]> {
  const out: Array<[string, number[]]> = [];
  for (const [name, shape] of defaultCnnShapes(c)) {
    if (name.startsWith('conv') && name.endsWith('.bias')) {
      const i = name.slice(4, -5);
      out.push([`bn${i}.gamma`, shape], [`bn${i}.beta`, shape]);
    } else {
      out.push([name, shape]);
    }
  }
  return out;
}

/** Running BatchNorm statistics, updated as torch.nn.BatchNorm2d does (unbiased variance). */
export interface RunningStats {
  mean: Float64Array[];
  variance: Float64Array[];
}

/**
 * The training-mode forward: conv -> BatchNorm on batch statistics -> ReLU, then global
 * average pool and fc. Each layer's batch mean and biased variance are handed to onStats.
 */
export function trainingLogits(
  params: Record<string, tf.Tensor>, c: DefaultCnnConfig, x: tf.Tensor4D,
  onStats?: (i: number, mean: Float32Array, variance: Float32Array, count: number) => void,
): tf.Tensor2D {
  let h: tf.Tensor4D = x;
  c.widths.forEach((_, i) => {
    const z = conv2d(h, params[`conv${i}.weight`] as tf.Tensor4D, { stride: c.strides[i], pad: 'same' });
    const { mean, variance } = tf.moments(z, [0, 1, 2]);
    onStats?.(i, mean.dataSync() as Float32Array, variance.dataSync() as Float32Array, z.shape[0] * z.shape[1] * z.shape[2]);
    const zn = tf.add(tf.mul(tf.mul(tf.sub(z, mean), tf.rsqrt(tf.add(variance, BN_EPS))), params[`bn${i}.gamma`]), params[`bn${i}.beta`]);
    h = tf.relu(zn) as tf.Tensor4D;
  });
  const pool = tf.mean(h, [1, 2]);
  return tf.add(tf.matMul(pool as tf.Tensor2D, params['fc.weight'] as tf.Tensor2D), params['fc.bias']) as tf.Tensor2D;
}

/** Folds each BatchNorm into its conv: W' = W g / sqrt(v + eps), b' = beta - m g / sqrt(v + eps). */
export function foldBatchNorm(c: DefaultCnnConfig, trained: Record<string, Float32Array>, stats: RunningStats): Record<string, HostArray> {
  const out: Record<string, HostArray> = {};
  for (const [name, shape] of defaultCnnShapes(c)) {
    const conv = /^conv(\d+)\.(weight|bias)$/.exec(name);
    if (!conv) {
      out[name] = { dtype: 'float32', shape, data: trained[name].slice() };
      continue;
    }
    const i = Number(conv[1]);
    const gamma = trained[`bn${i}.gamma`], beta = trained[`bn${i}.beta`];
    const m = stats.mean[i], v = stats.variance[i];
    const cout = shape[shape.length - 1];
    const scale = Float64Array.from({ length: cout }, (_, o) => gamma[o] / Math.sqrt(v[o] + BN_EPS));
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (conv[2] === 'bias') {
      for (let o = 0; o < cout; o++) data[o] = beta[o] - m[o] * scale[o];
    } else {
      const w = trained[name];
      for (let k = 0; k < data.length; k++) data[k] = w[k] * scale[k % cout];
    }
    out[name] = { dtype: 'float32', shape, data };
  }
  return out;
}

/** Pixels of the whole dataset when they fit comfortably in memory, else null (read per batch). */
function preload(ds: ImageDataset): Batch | null {
  return ds.size * imageBytes(ds) <= 512 * 1024 * 1024 ? ds.readBatch(0, ds.size) : null;
}

/** Trains the default CNN on a labelled dataset of square RGB images. */
export function trainDefaultCnn(ds: ImageDataset, options: DefaultCnnTrainOptions = {}): DefaultCnnTrainResult {
  const config = checkDefaultCnnConfig(options.config ?? DEFAULT_CNN_CONFIG);
  const recipe = { ...DEFAULT_TRAIN_OPTIONS };
  for (const k of Object.keys(recipe) as Array<keyof typeof recipe>) {
    if (options[k] !== undefined) (recipe as Record<string, unknown>)[k] = options[k];
  }
  if (ds.channels !== 3) throw new Error(`default CNN: needs RGB images, the dataset has ${ds.channels} channels`);
  if (ds.numClasses !== config.numClasses) throw new Error(`default CNN: the dataset has ${ds.numClasses} classes, the network ${config.numClasses}`);
  if (!(recipe.batchSize >= 2 && recipe.batchSize <= ds.size)) throw new Error(`default CNN: batch size ${recipe.batchSize} does not fit ${ds.size} images`);
  const t0 = Date.now();
  const init = initDefaultCnnWeights(config, recipe.seed);
  const params: Record<string, tf.Variable> = {};
  for (const [name, shape] of trainingShapes(config)) {
    params[name] = tf.tidy(() => tf.variable(init[name] ? tf.tensor(init[name].data as Float32Array, shape) : name.endsWith('.gamma') ? tf.ones(shape) : tf.zeros(shape), true));
  }
  const running: RunningStats = {
    mean: config.widths.map((w) => new Float64Array(w)),
    variance: config.widths.map((w) => new Float64Array(w).fill(1)),
  };
  const updateStats = (i: number, mean: Float32Array, variance: Float32Array, count: number) => {
    const rm = running.mean[i], rv = running.variance[i], unbias = count / Math.max(1, count - 1);
    for (let o = 0; o < rm.length; o++) {
      rm[o] = (1 - BN_MOMENTUM) * rm[o] + BN_MOMENTUM * mean[o];
      rv[o] = (1 - BN_MOMENTUM) * rv[o] + BN_MOMENTUM * variance[o] * unbias;
    }
  };
  const adam: AdamWConfig = { lr: recipe.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: recipe.weightDecay };
  const opt = createAdamW(params, adam);
  const all = preload(ds);
  const labelsAll = ds.allLabels();
  checkLabels(labelsAll, config.numClasses, { what: 'default CNN training data' });
  // One stream for the batch order and the flips, in that order each step.
  const rng = new Rng(derivedSeed(recipe.seed + 1));
  const order = new StreamOrder(ds.size, rng);
  const s = ds.imageSize, stride = imageBytes(ds), bs = recipe.batchSize;
  const recent: number[] = [];
  try {
    for (let step = 0; step < recipe.steps; step++) {
      const idx = order.next(bs);
      let images: Uint8Array;
      const labels = new Int32Array(bs);
      if (all) {
        images = new Uint8Array(bs * stride);
        for (let k = 0; k < bs; k++) {
          images.set(all.images.subarray(idx[k] * stride, (idx[k] + 1) * stride), k * stride);
          labels[k] = labelsAll[idx[k]];
        }
      } else {
        const b = ds.readIndices(idx);
        images = b.images;
        labels.set(b.labels);
      }
      const flips = drawFlips(rng, bs, recipe.flip);
      if (flips) for (let k = 0; k < bs; k++) if (flips[k]) flipImage(images, k, s, 3);
      const { loss } = optimizerStep(() => crossEntropy(trainingLogits(params, config, defaultCnnInput(images, bs, s, s, config), updateStats), labels), {
        params, opt, step: step + 1, lr: learningRate(step, recipe.steps, recipe.lr, recipe.warmup), label: 'default CNN training', kept: 'nothing is written',
      });
      recent.push(loss);
      if (recent.length > 100) recent.shift();
      options.onStep?.(step + 1, recipe.steps, loss);
    }
    const trained: Record<string, Float32Array> = {};
    for (const [name, v] of Object.entries(params)) trained[name] = v.dataSync().slice() as Float32Array;
    const weights = foldBatchNorm(config, trained, running);
    return { weights, config, recipe, finalLoss: recent.reduce((a, b) => a + b, 0) / recent.length, seconds: (Date.now() - t0) / 1000 };
  } finally {
    disposeAdamW(opt);
    for (const v of Object.values(params)) v.dispose();
  }
}

/** Share of a labelled dataset the network classifies correctly (argmax of the logits). */
export function classifierAccuracy(net: DefaultCnn, ds: ImageDataset, batchSize = 500): number {
  let correct = 0;
  for (let start = 0; start < ds.size; start += batchSize) {
    const n = Math.min(batchSize, ds.size - start);
    const b = ds.readBatch(start, n);
    const out = net.forward(b.images, n, ds.imageSize, ds.imageSize);
    const pred = tf.tidy(() => tf.argMax(out.logits, 1).dataSync());
    tf.dispose([out.pool, out.logits, out.spatial]);
    for (let i = 0; i < n; i++) if (pred[i] === b.labels[i]) correct++;
  }
  return correct / ds.size;
}
