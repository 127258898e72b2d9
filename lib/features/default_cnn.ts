// The kit's embedded default feature network: a small CNN classifier trained by the kit
// on its default synthetic dataset (32x32, 10 classes), standing in for Inception-v3
// where the published Inception weights are not available. It gives the same three
// outputs, so every metric runs on either network:
//   pool     global average pool of the last conv (like Inception's pool_3)
//   logits   the 10 class logits (Inception Score)
//   spatial  the first channels of a middle 8x8 feature map, flattened NHWC (like
//            ADM's mixed_6/conv[..., :7] for sFID)
// FIDs measured with it are NOT comparable with Inception FIDs (lib/features/README.md).
//
// Convolutions go through ./conv (im2col + matMul on CPU backends without fast conv
// kernels). No BatchNorm: the network is shallow enough to train without it, and the
// forward pass stays a plain function of its weights.
import * as tf from '@tensorflow/tfjs-core';
import { HostArray } from '../io/array';
import { conv2d } from '../ops/conv';
import { FeatureNet, FeatureTensors, checkImages, imagesToTensor, linearHead } from './network';
import { Rng } from '../util/rng';

export interface DefaultCnnConfig {
  /** Image side the network is trained at; other sizes are resized bilinearly. */
  inputSize: number;
  numClasses: number;
  /** Output channels of each 3x3 conv (+ bias + ReLU). */
  widths: number[];
  /** Stride of each conv (2 halves the map). */
  strides: number[];
  /** Index of the conv whose output gives the spatial features. */
  spatialLayer: number;
  /** Leading channels of that output kept for the spatial features. */
  spatialChannels: number;
}

/** Version of the architecture and training recipe: cached weights of another version are retrained. */
export const DEFAULT_CNN_VERSION = 2;

export const DEFAULT_CNN_CONFIG: DefaultCnnConfig = {
  inputSize: 32,
  numClasses: 10,
  widths: [16, 32, 32, 64, 64, 128],
  strides: [1, 2, 1, 2, 1, 2],
  spatialLayer: 4,
  spatialChannels: 32,
};

/** Map side after each conv ('same' padding). */
export function layerSides(c: DefaultCnnConfig): number[] {
  let s = c.inputSize;
  return c.strides.map((st) => (s = Math.ceil(s / st)));
}

export function checkDefaultCnnConfig(c: DefaultCnnConfig): DefaultCnnConfig {
  if (c.widths.length === 0 || c.widths.length !== c.strides.length) throw new Error('DefaultCnnConfig: widths and strides must be non-empty and of equal length');
  if (!(c.spatialLayer >= 0 && c.spatialLayer < c.widths.length)) throw new Error(`DefaultCnnConfig: spatialLayer ${c.spatialLayer} is not a conv index`);
  if (!(c.spatialChannels >= 1 && c.spatialChannels <= c.widths[c.spatialLayer])) throw new Error(`DefaultCnnConfig: spatialChannels must be in [1, ${c.widths[c.spatialLayer]}]`);
  return c;
}

export function spatialDimOf(c: DefaultCnnConfig): number {
  const s = layerSides(c)[c.spatialLayer];
  return s * s * c.spatialChannels;
}

/** Parameter names and shapes: conv{i}.weight [3, 3, in, out], conv{i}.bias, fc.weight [in, classes], fc.bias. */
export function defaultCnnShapes(c: DefaultCnnConfig): Array<[string, number[]]> {
  const out: Array<[string, number[]]> = [];
  let cin = 3;
  c.widths.forEach((w, i) => {
    out.push([`conv${i}.weight`, [3, 3, cin, w]], [`conv${i}.bias`, [w]]);
    cin = w;
  });
  out.push(['fc.weight', [cin, c.numClasses]], ['fc.bias', [c.numClasses]]);
  return out;
}

/**
 * Initial weights from a seeded generator, zero biases. 'torch' (training): PyTorch's default
 * for Conv2d/Linear, U(-1/sqrt(fan_in), 1/sqrt(fan_in)); with BatchNorm after each conv the
 * scale of a conv's weights only sets its effective step size under Adam, and this smaller
 * scale trains markedly better here than He's. 'he': He-normal, which keeps activations O(1)
 * in the plain (BatchNorm-free) network, for a network of random weights (tests, benchmarks).
 */
export function initDefaultCnnWeights(c: DefaultCnnConfig, seed: number, scheme: 'torch' | 'he' = 'torch'): Record<string, HostArray> {
  const rng = new Rng(seed);
  const out: Record<string, HostArray> = {};
  for (const [name, shape] of defaultCnnShapes(c)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (name.endsWith('.weight')) {
      const fanIn = shape.slice(0, -1).reduce((a, b) => a * b, 1);
      if (scheme === 'he') rng.fillNormal(data, 0, Math.sqrt((name.startsWith('fc') ? 1 : 2) / fanIn));
      else rng.fillUniform(data, -1 / Math.sqrt(fanIn), 1 / Math.sqrt(fanIn));
    }
    out[name] = { dtype: 'float32', shape, data };
  }
  return out;
}

/**
 * The network on a float batch [N, S, S, 3] in [-1, 1] (S = inputSize).
 * params: tensors keyed as defaultCnnShapes names.
 */
export function defaultCnnForward(params: Record<string, tf.Tensor>, c: DefaultCnnConfig, x: tf.Tensor4D): FeatureTensors {
  return tf.tidy(() => {
    let h = x;
    let spatial: tf.Tensor2D | null = null;
    c.widths.forEach((_, i) => {
      h = tf.relu(tf.add(conv2d(h, params[`conv${i}.weight`] as tf.Tensor4D, { stride: c.strides[i], pad: 'same' }), params[`conv${i}.bias`])) as tf.Tensor4D;
      if (i === c.spatialLayer) {
        const [n, sh, sw] = h.shape;
        spatial = tf.reshape(tf.slice(h, [0, 0, 0, 0], [n, sh, sw, c.spatialChannels]), [n, sh * sw * c.spatialChannels]) as tf.Tensor2D;
      }
    });
    const pool = tf.mean(h, [1, 2]) as tf.Tensor2D;
    const logits = tf.add(tf.matMul(pool, params['fc.weight'] as tf.Tensor2D), params['fc.bias']) as tf.Tensor2D;
    return { pool, logits, spatial: spatial! };
  });
}

/** uint8 NHWC images -> the network's input: [-1, 1] (ADM's scaling), resized to inputSize. */
export function defaultCnnInput(images: Uint8Array, n: number, h: number, w: number, c: DefaultCnnConfig): tf.Tensor4D {
  checkImages(images, n, h, w);
  return tf.tidy(() => {
    const x = imagesToTensor(images, n, h, w, 127.5, -1);
    return h === c.inputSize && w === c.inputSize ? x : tf.image.resizeBilinear(x, [c.inputSize, c.inputSize], false, true);
  });
}

/** The trained network as a FeatureNet. */
export class DefaultCnn implements FeatureNet {
  readonly kind = 'default' as const;
  readonly poolDim: number;
  readonly numClasses: number;
  readonly spatialDim: number;
  readonly inputSize: number;
  private readonly params: Record<string, tf.Tensor>;

  constructor(weights: Record<string, HostArray>, readonly config: DefaultCnnConfig, readonly id: string) {
    checkDefaultCnnConfig(config);
    this.params = {};
    for (const [name, shape] of defaultCnnShapes(config)) {
      const a = weights[name];
      if (!a || a.shape.length !== shape.length || a.shape.some((v, i) => v !== shape[i])) {
        this.dispose();
        throw new Error(`default CNN weights: ${name} should have shape [${shape.join(', ')}], found ${a ? `[${a.shape.join(', ')}]` : 'nothing'}`);
      }
      this.params[name] = tf.tensor(a.data as Float32Array, shape, 'float32');
    }
    this.poolDim = config.widths[config.widths.length - 1];
    this.numClasses = config.numClasses;
    this.spatialDim = spatialDimOf(config);
    this.inputSize = config.inputSize;
  }

  forward(images: Uint8Array, n: number, h: number, w: number): FeatureTensors {
    const x = defaultCnnInput(images, n, h, w, this.config);
    try {
      return defaultCnnForward(this.params, this.config, x);
    } finally {
      x.dispose();
    }
  }

  logitsFromPool(pool: Float32Array, n: number): Float32Array {
    return linearHead(pool, n, this.params['fc.weight'] as tf.Tensor2D, this.params['fc.bias'] as tf.Tensor1D);
  }

  dispose(): void {
    for (const t of Object.values(this.params)) t.dispose();
  }
}
