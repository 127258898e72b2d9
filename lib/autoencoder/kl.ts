// A KL-regularised autoencoder in the style of Stable Diffusion's AutoencoderKL (ldm
// `Encoder`/`Decoder`, taming-transformers lineage): conv_in -> per level ResNet blocks
// (GroupNorm, SiLU, 3x3 convs) and a stride-2 Downsample -> mid (ResNet, self-attention,
// ResNet) -> GroupNorm, SiLU, conv_out to the mean and log-variance of z; quant_conv and
// post_quant_conv are the 1x1 convs around the latent; the decoder mirrors the encoder
// with nearest-neighbour 2x upsampling + 3x3 conv.
//
// A model is plain data: a config and a map from SD state_dict key to variable. Inside,
// tensors are NHWC with conv filters [kh, kw, in, out] (tfjs layout); weights are saved
// in PyTorch layout [out, in, kh, kw] under the SD names (lib/autoencoder/weights.ts).
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../util/rng';
import { conv2d, Padding } from '../ops/conv';

export interface KLConfig {
  kind: 'kl';
  /** Image side (SD: resolution) and channels (in_ch = out_ch). */
  resolution: number;
  inChannels: number;
  /** Latent channels (SD: z_channels = embed_dim = 4). */
  zChannels: number;
  /** Base width and the per-level multipliers; factor = 2^(levels - 1). */
  ch: number;
  chMult: number[];
  numResBlocks: number;
  /** GroupNorm groups (SD: 32 on 128+ channels). */
  normGroups: number;
  /** Single-head self-attention in the mid block, as SD. */
  midAttention: boolean;
}

/** Spatial downsampling factor of a config. */
export function klFactor(c: KLConfig): number {
  return 2 ** (c.chMult.length - 1);
}

/**
 * The kit's default autoencoders for 32x32 RGB: factor 2 -> 16x16x4 latents (what the
 * mini DiTs take), factor 4 -> 8x8x4. Sized to train in about 20 minutes on 2 shared CPU
 * cores (lib/autoencoder/README.md: at equal CPU time, width 16 reached a higher PSNR
 * than width 32). GroupNorm groups default to width / 4, SD's 4 channels per group
 * (32 groups on 128 channels).
 */
export function klConfig(factor: 2 | 4 = 2, over: Partial<Omit<KLConfig, 'kind'>> = {}): KLConfig {
  if (factor !== 2 && factor !== 4) throw new Error(`the autoencoder downsamples by 2 or 4, not ${factor}`);
  const ch = over.ch ?? 16;
  const base: KLConfig = {
    kind: 'kl', resolution: 32, inChannels: 3, zChannels: 4,
    ch, chMult: factor === 2 ? [1, 2] : [1, 2, 2], numResBlocks: 1, normGroups: Math.max(1, Math.floor(ch / 4)), midAttention: true,
  };
  return validateKLConfig({ ...base, ...over });
}

export function validateKLConfig(c: KLConfig): KLConfig {
  const bad = (what: string): never => {
    throw new Error(`autoencoder config: ${what}`);
  };
  if (c.kind !== 'kl') bad(`kind must be 'kl', got ${JSON.stringify(c.kind)}`);
  for (const k of ['resolution', 'inChannels', 'zChannels', 'ch', 'numResBlocks', 'normGroups'] as const) {
    if (!Number.isSafeInteger(c[k]) || c[k] <= 0) bad(`${k} must be a positive integer, got ${JSON.stringify(c[k])}`);
  }
  if (!Array.isArray(c.chMult) || c.chMult.length < 1 || !c.chMult.every((m) => Number.isSafeInteger(m) && m > 0)) bad(`chMult must be positive integers, got ${JSON.stringify(c.chMult)}`);
  if (c.resolution % klFactor(c) !== 0) bad(`resolution ${c.resolution} is not divisible by the factor ${klFactor(c)}`);
  for (const m of c.chMult) if ((c.ch * m) % c.normGroups !== 0) bad(`width ${c.ch * m} is not divisible by normGroups ${c.normGroups}`);
  if (typeof c.midAttention !== 'boolean') bad('midAttention must be a boolean');
  return c;
}

/** [C, H, W] of the latent of one image. */
export function klLatentShape(c: KLConfig): [number, number, number] {
  const s = c.resolution / klFactor(c);
  return [c.zChannels, s, s];
}

// ---- parameters ----------------------------------------------------------------------

export interface KLParamSpec {
  name: string;
  /** Kit layout: conv [kh, kw, in, out]; norm and bias [C]. */
  shape: number[];
  /** PyTorch layout: conv [out, in, kh, kw]. */
  torchShape: number[];
  role: 'conv' | 'bias' | 'norm.weight' | 'norm.bias';
  /** Fan-in of the conv it belongs to (PyTorch's default init bound is 1/sqrt(fanIn)). */
  fanIn: number;
}

function convSpecs(name: string, cin: number, cout: number, k: number): KLParamSpec[] {
  const fanIn = cin * k * k;
  return [
    { name: `${name}.weight`, shape: [k, k, cin, cout], torchShape: [cout, cin, k, k], role: 'conv', fanIn },
    { name: `${name}.bias`, shape: [cout], torchShape: [cout], role: 'bias', fanIn },
  ];
}

function normSpecs(name: string, c: number): KLParamSpec[] {
  return [
    { name: `${name}.weight`, shape: [c], torchShape: [c], role: 'norm.weight', fanIn: 0 },
    { name: `${name}.bias`, shape: [c], torchShape: [c], role: 'norm.bias', fanIn: 0 },
  ];
}

function resnetSpecs(name: string, cin: number, cout: number): KLParamSpec[] {
  return [
    ...normSpecs(`${name}.norm1`, cin),
    ...convSpecs(`${name}.conv1`, cin, cout, 3),
    ...normSpecs(`${name}.norm2`, cout),
    ...convSpecs(`${name}.conv2`, cout, cout, 3),
    ...(cin !== cout ? convSpecs(`${name}.nin_shortcut`, cin, cout, 1) : []),
  ];
}

function attnSpecs(name: string, c: number): KLParamSpec[] {
  return [
    ...normSpecs(`${name}.norm`, c),
    ...convSpecs(`${name}.q`, c, c, 1),
    ...convSpecs(`${name}.k`, c, c, 1),
    ...convSpecs(`${name}.v`, c, c, 1),
    ...convSpecs(`${name}.proj_out`, c, c, 1),
  ];
}

function midSpecs(prefix: string, c: number, attention: boolean): KLParamSpec[] {
  return [
    ...resnetSpecs(`${prefix}.mid.block_1`, c, c),
    ...(attention ? attnSpecs(`${prefix}.mid.attn_1`, c) : []),
    ...resnetSpecs(`${prefix}.mid.block_2`, c, c),
  ];
}

/** Every parameter in SD state_dict order (encoder, decoder, quant_conv, post_quant_conv). */
export function klParamSpecs(c: KLConfig): KLParamSpec[] {
  validateKLConfig(c);
  const L = c.chMult.length;
  const specs: KLParamSpec[] = [];
  // Encoder
  specs.push(...convSpecs('encoder.conv_in', c.inChannels, c.ch, 3));
  let blockIn = c.ch;
  for (let i = 0; i < L; i++) {
    const blockOut = c.ch * c.chMult[i];
    for (let j = 0; j < c.numResBlocks; j++) {
      specs.push(...resnetSpecs(`encoder.down.${i}.block.${j}`, blockIn, blockOut));
      blockIn = blockOut;
    }
    if (i !== L - 1) specs.push(...convSpecs(`encoder.down.${i}.downsample.conv`, blockIn, blockIn, 3));
  }
  specs.push(...midSpecs('encoder', blockIn, c.midAttention));
  specs.push(...normSpecs('encoder.norm_out', blockIn));
  specs.push(...convSpecs('encoder.conv_out', blockIn, 2 * c.zChannels, 3));
  // Decoder
  blockIn = c.ch * c.chMult[L - 1];
  specs.push(...convSpecs('decoder.conv_in', c.zChannels, blockIn, 3));
  specs.push(...midSpecs('decoder', blockIn, c.midAttention));
  const up: KLParamSpec[][] = [];
  for (let i = L - 1; i >= 0; i--) {
    const blockOut = c.ch * c.chMult[i];
    const level: KLParamSpec[] = [];
    for (let j = 0; j < c.numResBlocks + 1; j++) {
      level.push(...resnetSpecs(`decoder.up.${i}.block.${j}`, blockIn, blockOut));
      blockIn = blockOut;
    }
    if (i !== 0) level.push(...convSpecs(`decoder.up.${i}.upsample.conv`, blockIn, blockIn, 3));
    up[i] = level;
  }
  // SD's ModuleList is indexed by level, so its state_dict lists up.0 first.
  for (const level of up) specs.push(...level);
  specs.push(...normSpecs('decoder.norm_out', blockIn));
  specs.push(...convSpecs('decoder.conv_out', blockIn, c.inChannels, 3));
  specs.push(...convSpecs('quant_conv', 2 * c.zChannels, 2 * c.zChannels, 1));
  specs.push(...convSpecs('post_quant_conv', c.zChannels, c.zChannels, 1));
  return specs;
}

export interface KLModel {
  config: KLConfig;
  /** Keyed by SD state_dict names; kit layout (NHWC convs). */
  params: Record<string, tf.Variable>;
}

/** PyTorch's default init (kaiming_uniform(a=sqrt 5) convs and biases, GroupNorm 1/0), from `seed`. */
export function createKL(config: KLConfig, seed = 0): KLModel {
  const rng = new Rng(seed);
  const params: Record<string, tf.Variable> = {};
  for (const s of klParamSpecs(config)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    if (s.role === 'conv' || s.role === 'bias') {
      const bound = 1 / Math.sqrt(s.fanIn);
      rng.fillUniform(v, -bound, bound);
    } else if (s.role === 'norm.weight') {
      v.fill(1);
    }
    params[s.name] = tf.tidy(() => tf.variable(tf.tensor(v, s.shape, 'float32'), true));
  }
  return { config, params };
}

export function disposeKL(m: KLModel): void {
  for (const v of Object.values(m.params)) v.dispose();
}

export function klParamCount(c: KLConfig): number {
  return klParamSpecs(c).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
}

// ---- layers (NHWC) -------------------------------------------------------------------------

type P = Record<string, tf.Tensor>;

/** Conv with bias; 3x3 convs pad 1 on every side (stride 1 keeps the size). */
function conv(P: P, name: string, x: tf.Tensor4D, stride = 1, pad?: Padding): tf.Tensor4D {
  const w = P[`${name}.weight`] as tf.Tensor4D;
  if (!w) throw new Error(`autoencoder: no parameter '${name}.weight'`);
  const p = (w.shape[0] - 1) >> 1;
  return tf.add(conv2d(x, w, { stride, pad: pad ?? [p, p, p, p] }), P[`${name}.bias`]) as tf.Tensor4D;
}

/**
 * GroupNorm (eps 1e-6, affine) over NHWC. Statistics are taken per channel over the
 * pixels, then per group over its channels, and broadcast back per channel: every
 * reduction, in the forward pass and in the gradient, is over one axis or adjacent
 * axes, which the native backend reduces in place (a [1, 3] reduction falls back to a
 * transpose in JS that cost more than all the convs).
 */
export function groupNorm(x: tf.Tensor4D, groups: number, weight: tf.Tensor, bias: tf.Tensor, eps = 1e-6): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  if (c % groups !== 0) throw new Error(`groupNorm: ${c} channels do not split into ${groups} groups`);
  const cg = c / groups;
  const perChannel = (t: tf.Tensor) => {
    const g = tf.mean(tf.reshape(tf.mean(t, 1, true), [n, groups, cg]), 2, true);
    return tf.reshape(tf.broadcastTo(g, [n, groups, cg]), [n, 1, c]);
  };
  const x3 = tf.reshape(x, [n, h * w, c]);
  const d = tf.sub(x3, perChannel(x3));
  const scale = tf.mul(tf.rsqrt(tf.add(perChannel(tf.square(d)), eps)), weight);
  return tf.reshape(tf.add(tf.mul(d, scale), bias), [n, h, w, c]) as tf.Tensor4D;
}

function silu(x: tf.Tensor4D): tf.Tensor4D {
  return tf.mul(x, tf.sigmoid(x)) as tf.Tensor4D;
}

function norm(P: P, name: string, x: tf.Tensor4D, groups: number): tf.Tensor4D {
  return groupNorm(x, groups, P[`${name}.weight`], P[`${name}.bias`]);
}

/** ldm ResnetBlock without the timestep embedding; dropout 0. */
function resnetBlock(P: P, name: string, x: tf.Tensor4D, groups: number): tf.Tensor4D {
  let h = conv(P, `${name}.conv1`, silu(norm(P, `${name}.norm1`, x, groups)));
  h = conv(P, `${name}.conv2`, silu(norm(P, `${name}.norm2`, h, groups)));
  const skip = P[`${name}.nin_shortcut.weight`] ? conv(P, `${name}.nin_shortcut`, x) : x;
  return tf.add(skip, h) as tf.Tensor4D;
}

/** ldm AttnBlock: single-head self-attention over the pixels, 1x1-conv projections. */
function attnBlock(P: P, name: string, x: tf.Tensor4D, groups: number): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const hn = norm(P, `${name}.norm`, x, groups);
  const flat = (t: tf.Tensor4D) => tf.reshape(t, [n, h * w, c]) as tf.Tensor3D;
  const q = flat(conv(P, `${name}.q`, hn));
  const k = flat(conv(P, `${name}.k`, hn));
  const v = flat(conv(P, `${name}.v`, hn));
  const probs = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(c)));
  const out = tf.reshape(tf.matMul(probs, v), [n, h, w, c]) as tf.Tensor4D;
  return tf.add(x, conv(P, `${name}.proj_out`, out)) as tf.Tensor4D;
}

/** ldm Downsample(with_conv): pad (0, 1, 0, 1), 3x3 conv with stride 2. */
function downsample(P: P, name: string, x: tf.Tensor4D): tf.Tensor4D {
  return conv(P, `${name}.conv`, x, 2, [0, 1, 0, 1]);
}

/** Nearest-neighbour 2x upsampling as two concats (their gradients are slices on every backend). */
export function upsampleNearest2x(x: tf.Tensor4D): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const xw = tf.reshape(x, [n, h, w, 1, c]);
  const wide = tf.reshape(tf.concat([xw, xw], 3), [n, h, 1, 2 * w * c]);
  return tf.reshape(tf.concat([wide, wide], 2), [n, 2 * h, 2 * w, c]) as tf.Tensor4D;
}

function upsample(P: P, name: string, x: tf.Tensor4D): tf.Tensor4D {
  return conv(P, `${name}.conv`, upsampleNearest2x(x));
}

function mid(P: P, prefix: string, x: tf.Tensor4D, c: KLConfig): tf.Tensor4D {
  let h = resnetBlock(P, `${prefix}.mid.block_1`, x, c.normGroups);
  if (c.midAttention) h = attnBlock(P, `${prefix}.mid.attn_1`, h, c.normGroups);
  return resnetBlock(P, `${prefix}.mid.block_2`, h, c.normGroups);
}

/** Encoder + quant_conv: NHWC images in [-1, 1] -> NHWC [mean | logvar] (2 * zChannels). */
export function klMoments(m: KLModel, x: tf.Tensor4D): tf.Tensor4D {
  const c = m.config;
  const P = m.params;
  const L = c.chMult.length;
  let h = conv(P, 'encoder.conv_in', x);
  for (let i = 0; i < L; i++) {
    for (let j = 0; j < c.numResBlocks; j++) h = resnetBlock(P, `encoder.down.${i}.block.${j}`, h, c.normGroups);
    if (i !== L - 1) h = downsample(P, `encoder.down.${i}.downsample`, h);
  }
  h = mid(P, 'encoder', h, c);
  h = conv(P, 'encoder.conv_out', silu(norm(P, 'encoder.norm_out', h, c.normGroups)));
  return conv(P, 'quant_conv', h);
}

/** post_quant_conv + Decoder: NHWC latents z (unscaled) -> NHWC images. */
export function klDecode(m: KLModel, z: tf.Tensor4D): tf.Tensor4D {
  const c = m.config;
  const P = m.params;
  const L = c.chMult.length;
  let h = conv(P, 'decoder.conv_in', conv(P, 'post_quant_conv', z));
  h = mid(P, 'decoder', h, c);
  for (let i = L - 1; i >= 0; i--) {
    for (let j = 0; j < c.numResBlocks + 1; j++) h = resnetBlock(P, `decoder.up.${i}.block.${j}`, h, c.normGroups);
    if (i !== 0) h = upsample(P, `decoder.up.${i}.upsample`, h);
  }
  return conv(P, 'decoder.conv_out', silu(norm(P, 'decoder.norm_out', h, c.normGroups)));
}

/** ldm DiagonalGaussianDistribution: mean and log-variance clamped to [-30, 20]. */
export interface Posterior {
  mean: tf.Tensor4D;
  logvar: tf.Tensor4D;
}

export function posterior(moments: tf.Tensor4D): Posterior {
  const [mean, logvar] = tf.split(moments, 2, 3) as [tf.Tensor4D, tf.Tensor4D];
  return { mean, logvar: tf.clipByValue(logvar, -30, 20) };
}

/** mean + exp(logvar / 2) * noise (noise has the posterior's shape). */
export function posteriorSample(p: Posterior, noise: tf.Tensor): tf.Tensor4D {
  return tf.add(p.mean, tf.mul(tf.exp(tf.mul(p.logvar, 0.5)), noise)) as tf.Tensor4D;
}

/** KL(q || N(0, I)) summed over each latent: [N]. */
export function posteriorKL(p: Posterior): tf.Tensor1D {
  return tf.mul(tf.sum(tf.sub(tf.sub(tf.add(tf.square(p.mean), tf.exp(p.logvar)), 1), p.logvar), [1, 2, 3]), 0.5) as tf.Tensor1D;
}

export type RecLoss = 'l1' | 'l2';

export interface KLLoss {
  /** The optimised objective: mean over the batch of (per-image summed reconstruction + klWeight * KL). */
  loss: tf.Scalar;
  /** Mean per-pixel reconstruction error (L1 or L2), for logs. */
  rec: tf.Scalar;
  /** Mean per-image KL. */
  kl: tf.Scalar;
}

/**
 * SD's autoencoder objective without LPIPS and the patch discriminator: per-image sums
 * of |x - x_rec| (or squared), plus klWeight (SD: 1e-6) times the per-image KL, averaged
 * over the batch. x NHWC in [-1, 1]; noise draws the posterior sample.
 */
export function klLoss(m: KLModel, x: tf.Tensor4D, noise: tf.Tensor4D, opts: { klWeight: number; recLoss: RecLoss }): KLLoss {
  const p = posterior(klMoments(m, x));
  const rec = klDecode(m, posteriorSample(p, noise));
  const diff = tf.sub(x, rec);
  const err = opts.recLoss === 'l1' ? tf.abs(diff) : tf.square(diff);
  const n = x.shape[0];
  const kl = posteriorKL(p);
  const recSum = tf.div(tf.sum(err), n);
  const klMean = tf.mean(kl);
  const loss = tf.add(recSum, tf.mul(klMean, opts.klWeight)) as tf.Scalar;
  return { loss, rec: tf.div(recSum, x.size / n) as tf.Scalar, kl: klMean as tf.Scalar };
}
