// The Inception-v3 that FID tools use, in tfjs: pytorch-fid's fid_inception_v3(), which is
// torchvision's Inception3 layout (1008 classes, no aux head) with the blocks patched to
// reproduce TensorFlow's 2015-12-05 graph (the one ADM's evaluator and the original FID
// code run): the pool branch of FIDInceptionA/C/E_1 averages without counting the zero
// padding, and FIDInceptionE_2 (Mixed_7c) max-pools there instead.
//
// Weights: the published pt_inception-2015-12-05-6726825d.pth state_dict (keys such as
// Conv2d_1a_3x3.conv.weight, Mixed_5b.branch1x1.bn.running_mean, fc.weight), with every
// BatchNorm (eps 0.001) folded into its conv at load time. A state_dict whose channel
// counts are all divided by 2, 4, 8 or 16 loads as the same architecture at that width
// (the test fixtures use 1/16).
//
// Outputs per image (preprocessing as pytorch-fid: /255, bilinear resize to 299x299
// with align_corners=False, then 2x - 1):
//   pool     2048-d global average pool after Mixed_7c (TF pool_3)
//   logits   pool @ fc.weight^T: the 1008 unbiased logits ADM and improved-gan compute the
//            Inception Score from (TF softmax/logits/MatMul); {logitsBias: true} adds fc.bias
//   spatial  ADM's sFID features, TF mixed_6/conv[..., :7] flattened in NHWC order. TF's
//            mixed_6 is the seventh mixed block, torchvision's Mixed_6d (mixed = Mixed_5b,
//            ..., mixed_3 = Mixed_6a, mixed_4..7 = Mixed_6b..6e), and mixed_6/conv is its
//            branch1x1 (after BatchNorm and ReLU), whose channels come first in the block's
//            output: 17 x 17 x 7 = 2023 values.
import * as fs from 'fs';
import * as tf from '@tensorflow/tfjs-core';
import { HostArray, toFloat64 } from '../io/array';
import { readTensorFile } from '../io/tensor_file';
import { conv2d, Padding } from '../ops/conv';
import { sha256FileCached } from '../util/hash';
import { FeatureNet, FeatureTensors, checkImages, imagesToTensor, linearHead } from './network';

export const INCEPTION_SIZE = 299;
export const INCEPTION_CLASSES = 1008;
export const INCEPTION_BN_EPS = 0.001;
/** Channels of mixed_6/conv kept for sFID, as ADM's evaluator. */
export const SPATIAL_CHANNELS = 7;
/** The file name of the published weights (pytorch-fid's FID_WEIGHTS_URL). */
export const INCEPTION_WEIGHTS_FILE = 'pt_inception-2015-12-05-6726825d.pth';

/** One BasicConv2d: conv (no bias) + BatchNorm + ReLU. */
interface ConvSpec {
  name: string;
  cin: number;
  cout: number;
  kh: number;
  kw: number;
  stride: number;
  /** [top, bottom, left, right]; PyTorch pads symmetrically. */
  pad: [number, number, number, number];
}

function spec(name: string, cin: number, cout: number, k: number | [number, number], stride = 1, pad: number | [number, number] = 0): ConvSpec {
  const [kh, kw] = typeof k === 'number' ? [k, k] : k;
  const [ph, pw] = typeof pad === 'number' ? [pad, pad] : pad;
  return { name, cin, cout, kh, kw, stride, pad: [ph, ph, pw, pw] };
}

// ---- architecture (channel counts at full width, divided by d) --------------------------

function inceptionA(p: string, cin: number, poolFeatures: number, d: number): ConvSpec[] {
  return [
    spec(`${p}.branch1x1`, cin, 64 / d, 1),
    spec(`${p}.branch5x5_1`, cin, 48 / d, 1),
    spec(`${p}.branch5x5_2`, 48 / d, 64 / d, 5, 1, 2),
    spec(`${p}.branch3x3dbl_1`, cin, 64 / d, 1),
    spec(`${p}.branch3x3dbl_2`, 64 / d, 96 / d, 3, 1, 1),
    spec(`${p}.branch3x3dbl_3`, 96 / d, 96 / d, 3, 1, 1),
    spec(`${p}.branch_pool`, cin, poolFeatures / d, 1),
  ];
}

function inceptionB(p: string, cin: number, d: number): ConvSpec[] {
  return [
    spec(`${p}.branch3x3`, cin, 384 / d, 3, 2),
    spec(`${p}.branch3x3dbl_1`, cin, 64 / d, 1),
    spec(`${p}.branch3x3dbl_2`, 64 / d, 96 / d, 3, 1, 1),
    spec(`${p}.branch3x3dbl_3`, 96 / d, 96 / d, 3, 2),
  ];
}

function inceptionC(p: string, cin: number, c7: number, d: number): ConvSpec[] {
  const c = c7 / d;
  return [
    spec(`${p}.branch1x1`, cin, 192 / d, 1),
    spec(`${p}.branch7x7_1`, cin, c, 1),
    spec(`${p}.branch7x7_2`, c, c, [1, 7], 1, [0, 3]),
    spec(`${p}.branch7x7_3`, c, 192 / d, [7, 1], 1, [3, 0]),
    spec(`${p}.branch7x7dbl_1`, cin, c, 1),
    spec(`${p}.branch7x7dbl_2`, c, c, [7, 1], 1, [3, 0]),
    spec(`${p}.branch7x7dbl_3`, c, c, [1, 7], 1, [0, 3]),
    spec(`${p}.branch7x7dbl_4`, c, c, [7, 1], 1, [3, 0]),
    spec(`${p}.branch7x7dbl_5`, c, 192 / d, [1, 7], 1, [0, 3]),
    spec(`${p}.branch_pool`, cin, 192 / d, 1),
  ];
}

function inceptionD(p: string, cin: number, d: number): ConvSpec[] {
  return [
    spec(`${p}.branch3x3_1`, cin, 192 / d, 1),
    spec(`${p}.branch3x3_2`, 192 / d, 320 / d, 3, 2),
    spec(`${p}.branch7x7x3_1`, cin, 192 / d, 1),
    spec(`${p}.branch7x7x3_2`, 192 / d, 192 / d, [1, 7], 1, [0, 3]),
    spec(`${p}.branch7x7x3_3`, 192 / d, 192 / d, [7, 1], 1, [3, 0]),
    spec(`${p}.branch7x7x3_4`, 192 / d, 192 / d, 3, 2),
  ];
}

function inceptionE(p: string, cin: number, d: number): ConvSpec[] {
  return [
    spec(`${p}.branch1x1`, cin, 320 / d, 1),
    spec(`${p}.branch3x3_1`, cin, 384 / d, 1),
    spec(`${p}.branch3x3_2a`, 384 / d, 384 / d, [1, 3], 1, [0, 1]),
    spec(`${p}.branch3x3_2b`, 384 / d, 384 / d, [3, 1], 1, [1, 0]),
    spec(`${p}.branch3x3dbl_1`, cin, 448 / d, 1),
    spec(`${p}.branch3x3dbl_2`, 448 / d, 384 / d, 3, 1, 1),
    spec(`${p}.branch3x3dbl_3a`, 384 / d, 384 / d, [1, 3], 1, [0, 1]),
    spec(`${p}.branch3x3dbl_3b`, 384 / d, 384 / d, [3, 1], 1, [1, 0]),
    spec(`${p}.branch_pool`, cin, 192 / d, 1),
  ];
}

/** Every BasicConv2d of the network at width 1/d, in state_dict order. */
export function inceptionConvSpecs(d: number): ConvSpec[] {
  return [
    spec('Conv2d_1a_3x3', 3, 32 / d, 3, 2),
    spec('Conv2d_2a_3x3', 32 / d, 32 / d, 3),
    spec('Conv2d_2b_3x3', 32 / d, 64 / d, 3, 1, 1),
    spec('Conv2d_3b_1x1', 64 / d, 80 / d, 1),
    spec('Conv2d_4a_3x3', 80 / d, 192 / d, 3),
    ...inceptionA('Mixed_5b', 192 / d, 32, d),
    ...inceptionA('Mixed_5c', 256 / d, 64, d),
    ...inceptionA('Mixed_5d', 288 / d, 64, d),
    ...inceptionB('Mixed_6a', 288 / d, d),
    ...inceptionC('Mixed_6b', 768 / d, 128, d),
    ...inceptionC('Mixed_6c', 768 / d, 160, d),
    ...inceptionC('Mixed_6d', 768 / d, 160, d),
    ...inceptionC('Mixed_6e', 768 / d, 192, d),
    ...inceptionD('Mixed_7a', 768 / d, d),
    ...inceptionE('Mixed_7b', 1280 / d, d),
    ...inceptionE('Mixed_7c', 2048 / d, d),
  ];
}

/** Width divisors for which every channel count stays whole. */
export const WIDTH_DIVISORS = [1, 2, 4, 8, 16];

// ---- weights ---------------------------------------------------------------------------

/** A conv with its BatchNorm folded in: filter [kh, kw, in, out] and bias [out]. */
interface FoldedConv {
  spec: ConvSpec;
  filter: tf.Tensor4D;
  bias: tf.Tensor1D;
}

export interface InceptionOptions {
  /** Add fc.bias to the logits (torchvision's fc); default false, the unbiased logits ADM uses. */
  logitsBias?: boolean;
  /** Used in the network id; default: derived from the weights. */
  id?: string;
}

export interface InceptionWeights {
  /** Width divisor of the state_dict (1 for the published weights). */
  widthDiv: number;
  numClasses: number;
  convs: Map<string, { filter: Float32Array; bias: Float32Array; spec: ConvSpec }>;
  /** fc weight transposed to [poolDim, numClasses], and the bias. */
  fcT: Float32Array;
  fcBias: Float32Array;
}

function shapeOf(a: HostArray | undefined): string {
  return a ? `[${a.shape.join(', ')}]` : 'missing';
}

/**
 * Reads a state_dict into folded weights: checks every key and shape, folds each
 * BatchNorm as W' = W * gamma / sqrt(var + eps), b' = beta - mean * gamma / sqrt(var + eps)
 * (in float64), and transposes filters from PyTorch's [out, in, kh, kw] to [kh, kw, in, out].
 */
export function foldInceptionStateDict(sd: Record<string, HostArray>, what = 'state_dict'): InceptionWeights {
  const first = sd['Conv2d_1a_3x3.conv.weight'];
  if (!first) {
    const keys = Object.keys(sd);
    throw new Error(`${what}: not an FID Inception-v3 state_dict (no Conv2d_1a_3x3.conv.weight; has ${keys.slice(0, 4).join(', ')}${keys.length > 4 ? ', ...' : ''})`);
  }
  const d = 32 / first.shape[0];
  if (!WIDTH_DIVISORS.includes(d)) {
    throw new Error(`${what}: Conv2d_1a_3x3.conv.weight has ${first.shape[0]} output channels; expected 32 (or 32 divided by ${WIDTH_DIVISORS.slice(1).join(', ')})`);
  }
  const specs = inceptionConvSpecs(d);
  const used = new Set<string>();
  const take = (key: string, shape: number[]): Float64Array => {
    const a = sd[key];
    if (!a || a.shape.length !== shape.length || a.shape.some((v, i) => v !== shape[i])) {
      throw new Error(`${what}: ${key} should have shape [${shape.join(', ')}] (width 1/${d}), found ${shapeOf(a)}`);
    }
    used.add(key);
    return toFloat64(a);
  };
  const convs = new Map<string, { filter: Float32Array; bias: Float32Array; spec: ConvSpec }>();
  for (const s of specs) {
    const w = take(`${s.name}.conv.weight`, [s.cout, s.cin, s.kh, s.kw]);
    const gamma = take(`${s.name}.bn.weight`, [s.cout]);
    const beta = take(`${s.name}.bn.bias`, [s.cout]);
    const mean = take(`${s.name}.bn.running_mean`, [s.cout]);
    const variance = take(`${s.name}.bn.running_var`, [s.cout]);
    const filter = new Float32Array(w.length);
    const bias = new Float32Array(s.cout);
    for (let o = 0; o < s.cout; o++) {
      const scale = gamma[o] / Math.sqrt(variance[o] + INCEPTION_BN_EPS);
      bias[o] = beta[o] - mean[o] * scale;
      for (let i = 0; i < s.cin; i++) {
        for (let y = 0; y < s.kh; y++) {
          for (let x = 0; x < s.kw; x++) {
            filter[((y * s.kw + x) * s.cin + i) * s.cout + o] = w[((o * s.cin + i) * s.kh + y) * s.kw + x] * scale;
          }
        }
      }
    }
    convs.set(s.name, { filter, bias, spec: s });
  }
  const poolDim = 2048 / d;
  const fcW = sd['fc.weight'];
  if (!fcW || fcW.shape.length !== 2 || fcW.shape[1] !== poolDim) {
    throw new Error(`${what}: fc.weight should have shape [classes, ${poolDim}], found ${shapeOf(fcW)}`);
  }
  const numClasses = fcW.shape[0];
  const w = take('fc.weight', [numClasses, poolDim]);
  const fcBias = Float32Array.from(take('fc.bias', [numClasses]));
  const fcT = new Float32Array(poolDim * numClasses);
  for (let c = 0; c < numClasses; c++) for (let k = 0; k < poolDim; k++) fcT[k * numClasses + c] = w[c * poolDim + k];
  // Tolerated extras: BatchNorm step counters and torchvision's auxiliary classifier.
  const extra = Object.keys(sd).filter((k) => !used.has(k) && !k.endsWith('.num_batches_tracked') && !k.startsWith('AuxLogits.'));
  if (extra.length) throw new Error(`${what}: unexpected keys for FID Inception-v3: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ` (+${extra.length - 5} more)` : ''}`);
  return { widthDiv: d, numClasses, convs, fcT, fcBias };
}

// ---- the network ---------------------------------------------------------------------

export class InceptionV3 implements FeatureNet {
  readonly kind = 'inception' as const;
  readonly id: string;
  readonly poolDim: number;
  readonly numClasses: number;
  readonly spatialDim = 17 * 17 * SPATIAL_CHANNELS;
  readonly inputSize = INCEPTION_SIZE;
  readonly widthDiv: number;
  private readonly convs = new Map<string, FoldedConv>();
  private readonly fcT: tf.Tensor2D;
  private readonly fcBias: tf.Tensor1D;
  private readonly logitsBias: boolean;

  constructor(weights: InceptionWeights, opts: InceptionOptions = {}) {
    this.widthDiv = weights.widthDiv;
    this.poolDim = 2048 / weights.widthDiv;
    this.numClasses = weights.numClasses;
    this.logitsBias = opts.logitsBias ?? false;
    this.id = opts.id ?? `inception-w${weights.widthDiv}`;
    for (const [name, c] of weights.convs) {
      const s = c.spec;
      this.convs.set(name, { spec: s, filter: tf.tensor4d(c.filter, [s.kh, s.kw, s.cin, s.cout]), bias: tf.tensor1d(c.bias) });
    }
    this.fcT = tf.tensor2d(weights.fcT, [this.poolDim, this.numClasses]);
    this.fcBias = tf.tensor1d(weights.fcBias);
  }

  /** BasicConv2d: folded conv + bias + ReLU. */
  private conv(name: string, x: tf.Tensor4D): tf.Tensor4D {
    const c = this.convs.get(name);
    if (!c) throw new Error(`InceptionV3: no conv ${name}`);
    const pad: Padding = c.spec.pad;
    return tf.relu(tf.add(conv2d(x, c.filter, { stride: c.spec.stride, pad }), c.bias)) as tf.Tensor4D;
  }

  private chain(x: tf.Tensor4D, ...names: string[]): tf.Tensor4D {
    return names.reduce((h, n) => this.conv(n, h), x);
  }

  private blockA(p: string, x: tf.Tensor4D): tf.Tensor4D {
    return tf.concat([
      this.conv(`${p}.branch1x1`, x),
      this.chain(x, `${p}.branch5x5_1`, `${p}.branch5x5_2`),
      this.chain(x, `${p}.branch3x3dbl_1`, `${p}.branch3x3dbl_2`, `${p}.branch3x3dbl_3`),
      // tfjs' 'same' average pool divides by the pixels inside the image: count_include_pad=False.
      this.conv(`${p}.branch_pool`, tf.avgPool(x, 3, 1, 'same')),
    ], 3);
  }

  private blockB(p: string, x: tf.Tensor4D): tf.Tensor4D {
    return tf.concat([
      this.conv(`${p}.branch3x3`, x),
      this.chain(x, `${p}.branch3x3dbl_1`, `${p}.branch3x3dbl_2`, `${p}.branch3x3dbl_3`),
      tf.maxPool(x, 3, 2, 'valid'),
    ], 3);
  }

  private blockC(p: string, x: tf.Tensor4D): tf.Tensor4D {
    return tf.concat([
      this.conv(`${p}.branch1x1`, x),
      this.chain(x, `${p}.branch7x7_1`, `${p}.branch7x7_2`, `${p}.branch7x7_3`),
      this.chain(x, `${p}.branch7x7dbl_1`, `${p}.branch7x7dbl_2`, `${p}.branch7x7dbl_3`, `${p}.branch7x7dbl_4`, `${p}.branch7x7dbl_5`),
      this.conv(`${p}.branch_pool`, tf.avgPool(x, 3, 1, 'same')),
    ], 3);
  }

  private blockD(p: string, x: tf.Tensor4D): tf.Tensor4D {
    return tf.concat([
      this.chain(x, `${p}.branch3x3_1`, `${p}.branch3x3_2`),
      this.chain(x, `${p}.branch7x7x3_1`, `${p}.branch7x7x3_2`, `${p}.branch7x7x3_3`, `${p}.branch7x7x3_4`),
      tf.maxPool(x, 3, 2, 'valid'),
    ], 3);
  }

  /** pool 'avg': FIDInceptionE_1 (Mixed_7b); 'max': FIDInceptionE_2 (Mixed_7c). */
  private blockE(p: string, x: tf.Tensor4D, pool: 'avg' | 'max'): tf.Tensor4D {
    const b3 = this.conv(`${p}.branch3x3_1`, x);
    const bd = this.chain(x, `${p}.branch3x3dbl_1`, `${p}.branch3x3dbl_2`);
    const pooled = pool === 'avg' ? tf.avgPool(x, 3, 1, 'same') : tf.maxPool(x, 3, 1, 'same');
    return tf.concat([
      this.conv(`${p}.branch1x1`, x),
      this.conv(`${p}.branch3x3_2a`, b3), this.conv(`${p}.branch3x3_2b`, b3),
      this.conv(`${p}.branch3x3dbl_3a`, bd), this.conv(`${p}.branch3x3dbl_3b`, bd),
      this.conv(`${p}.branch_pool`, pooled),
    ], 3);
  }

  /** pytorch-fid's input transform: /255, bilinear resize to 299 (align_corners=False), 2x - 1. */
  preprocess(images: Uint8Array, n: number, h: number, w: number): tf.Tensor4D {
    checkImages(images, n, h, w);
    return tf.tidy(() => {
      let x: tf.Tensor4D = imagesToTensor(images, n, h, w, 255, 0);
      if (h !== INCEPTION_SIZE || w !== INCEPTION_SIZE) x = tf.image.resizeBilinear(x, [INCEPTION_SIZE, INCEPTION_SIZE], false, true);
      return tf.sub(tf.mul(x, 2), 1) as tf.Tensor4D;
    });
  }

  /** The network on preprocessed input [N, 299, 299, 3]. */
  forwardPreprocessed(x: tf.Tensor4D): FeatureTensors {
    return tf.tidy(() => {
      let h = this.chain(x, 'Conv2d_1a_3x3', 'Conv2d_2a_3x3', 'Conv2d_2b_3x3');
      h = tf.maxPool(h, 3, 2, 'valid');
      h = this.chain(h, 'Conv2d_3b_1x1', 'Conv2d_4a_3x3');
      h = tf.maxPool(h, 3, 2, 'valid');
      h = this.blockA('Mixed_5b', h);
      h = this.blockA('Mixed_5c', h);
      h = this.blockA('Mixed_5d', h);
      h = this.blockB('Mixed_6a', h);
      h = this.blockC('Mixed_6b', h);
      h = this.blockC('Mixed_6c', h);
      h = this.blockC('Mixed_6d', h);
      const [n, sh, sw] = h.shape;
      const spatial = tf.reshape(tf.slice(h, [0, 0, 0, 0], [n, sh, sw, SPATIAL_CHANNELS]), [n, sh * sw * SPATIAL_CHANNELS]) as tf.Tensor2D;
      h = this.blockC('Mixed_6e', h);
      h = this.blockD('Mixed_7a', h);
      h = this.blockE('Mixed_7b', h, 'avg');
      h = this.blockE('Mixed_7c', h, 'max');
      const pool = tf.mean(h, [1, 2]) as tf.Tensor2D;
      const unbiased = tf.matMul(pool, this.fcT);
      const logits = (this.logitsBias ? tf.add(unbiased, this.fcBias) : unbiased) as tf.Tensor2D;
      return { pool, logits, spatial };
    });
  }

  forward(images: Uint8Array, n: number, h: number, w: number): FeatureTensors {
    const x = this.preprocess(images, n, h, w);
    try {
      return this.forwardPreprocessed(x);
    } finally {
      x.dispose();
    }
  }

  logitsFromPool(pool: Float32Array, n: number): Float32Array {
    return linearHead(pool, n, this.fcT, this.logitsBias ? this.fcBias : null);
  }

  dispose(): void {
    for (const c of this.convs.values()) {
      c.filter.dispose();
      c.bias.dispose();
    }
    this.fcT.dispose();
    this.fcBias.dispose();
  }
}


/**
 * Loads pt_inception-2015-12-05-6726825d.pth (or a state_dict of the same layout, .pt or
 * .safetensors). The network id carries the file's sha256 prefix, so cached reference
 * statistics never mix weights.
 */
export function loadInception(file: string, opts: InceptionOptions = {}): InceptionV3 {
  if (!fs.existsSync(file)) {
    throw new Error(`${file}: no such file. The FID Inception weights are ${INCEPTION_WEIGHTS_FILE} ` +
      '(pytorch-fid\'s release); download it where you have network access and pass its path');
  }
  const weights = foldInceptionStateDict(readTensorFile(file).tensors, file);
  const id = opts.id ?? `inception-w${weights.widthDiv}-${sha256FileCached(file).slice(0, 12)}${opts.logitsBias ? '-biased' : ''}`;
  return new InceptionV3(weights, { ...opts, id });
}
