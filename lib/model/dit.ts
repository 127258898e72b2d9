// Diffusion Transformer (Peebles & Xie, 2023), the four block designs of Sec. 3.2.
// Follows the official models.py: patchify -> + fixed 2-D sin-cos positions ->
// N blocks conditioned on t and y -> final layer -> unpatchify to 2C channels.
// A model is plain data: its config plus a map from state_dict key to variable.
import * as tf from '@tensorflow/tfjs-core';
import { DiTConfig, hasNullClass, numTokens, outChannels, validateConfig } from './config';
import { sincos2dPosEmbed, timestepEmbedding } from './embed';
import { gatedResidual, layerNorm, layerNormModulate, linear, mlp, multiHeadAttention, patchify, selfAttention, silu, unpatchify } from './layers';
import { adaLNChunks, Init, ParamSpec, paramSpecs, usesAdaLN } from './params';
import { checkLabels } from './labels';
import { Rng } from '../util/rng';
import { classifierFreeGuidance, GuidanceChannels } from '../diffusion/guidance';

export interface DiT {
  config: DiTConfig;
  /** Keyed by the published state_dict names; linear weights stored [in, out]. */
  params: Record<string, tf.Variable>;
}

function initValues(spec: ParamSpec, c: DiTConfig, rng: Rng): Float32Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const init: Init = spec.init;
  switch (init.kind) {
    case 'zeros':
      return out;
    case 'ones':
      return out.fill(1);
    case 'normal':
      return rng.fillNormal(out, 0, init.std);
    case 'xavier': {
      const bound = Math.sqrt(6 / (init.fanIn + init.fanOut));
      return rng.fillUniform(out, -bound, bound);
    }
    case 'sincos2d':
      return sincos2dPosEmbed(c.hiddenSize, c.inputSize / c.patchSize);
  }
}

/** Builds a DiT with the published initialisation, reproducible from `seed`. */
export function createDiT(config: DiTConfig, seed = 0): DiT {
  validateConfig(config);
  const rng = new Rng(seed);
  const params: Record<string, tf.Variable> = {};
  for (const spec of paramSpecs(config)) {
    const values = initValues(spec, config, rng);
    // tf.variable shares the tensor's data and does not own it: tidy disposes the tensor.
    params[spec.name] = tf.tidy(() => tf.variable(tf.tensor(values, spec.shape, 'float32'), spec.trainable));
  }
  return { config, params };
}

export function disposeDiT(model: DiT): void {
  for (const v of Object.values(model.params)) v.dispose();
}

/** Trainable variables in state_dict order (pos_embed excluded). */
export function trainableVariables(model: DiT): tf.Variable[] {
  return Object.values(model.params).filter((v) => v.trainable);
}

/** Total number of parameter values held by the model. */
export function modelParamCount(model: DiT): number {
  return Object.values(model.params).reduce((n, v) => n + v.size, 0);
}

/**
 * LabelEmbedder.token_drop for classifier-free guidance: each label becomes the
 * null class (index numClasses) with probability `prob`. Host-side, seeded.
 */
export function dropLabels(y: ArrayLike<number>, prob: number, numClasses: number, rng: Rng): Int32Array {
  const out = Int32Array.from(y);
  if (prob > 0) for (let i = 0; i < out.length; i++) if (rng.uniform() < prob) out[i] = numClasses;
  return out;
}

function checkInputs(c: DiTConfig, x: tf.Tensor, t: tf.Tensor, y: tf.Tensor): void {
  const want = [c.inChannels, c.inputSize, c.inputSize];
  if (x.rank !== 4 || x.shape.slice(1).some((s, i) => s !== want[i])) {
    throw new Error(`DiT ${c.name}: x must be [N, ${want.join(', ')}] (NCHW), got [${x.shape.join(', ')}]`);
  }
  const n = x.shape[0];
  if (t.rank !== 1 || t.shape[0] !== n) throw new Error(`DiT ${c.name}: t must be [${n}], got [${t.shape.join(', ')}]`);
  if (y.rank !== 1 || y.shape[0] !== n) throw new Error(`DiT ${c.name}: y must be [${n}], got [${y.shape.join(', ')}]`);
  if (y.dtype !== 'int32') throw new Error(`DiT ${c.name}: y must be int32 labels, got ${y.dtype}`);
  // Labels are read back once per tensor (a sampling loop passes the same y at every step).
  if (!checkedLabels.has(y)) {
    checkLabels(y.dataSync() as Int32Array, c.numClasses, { allowNull: hasNullClass(c), what: `DiT ${c.name}: y` });
    checkedLabels.add(y);
  }
}

const checkedLabels = new WeakSet<tf.Tensor>();

/**
 * The label table lookup as one-hot @ table: same values as a gather, and its
 * gradient is a matmul (gather's gradient kernel is missing on some backends).
 */
function labelEmbedding(table: tf.Tensor, y: tf.Tensor1D): tf.Tensor2D {
  // tfjs-wasm 4.22 returns zeros for oneHot(..., 'float32'): build int32, then cast.
  return tf.matMul(tf.cast(tf.oneHot(y, table.shape[0]!), 'float32'), table as tf.Tensor2D);
}

function blockMlp(P: Record<string, tf.Tensor>, b: string, x: tf.Tensor3D): tf.Tensor3D {
  return mlp(x, P[`${b}.mlp.fc1.weight`], P[`${b}.mlp.fc1.bias`], P[`${b}.mlp.fc2.weight`], P[`${b}.mlp.fc2.bias`]) as tf.Tensor3D;
}

function attn(P: Record<string, tf.Tensor>, b: string, x: tf.Tensor3D, heads: number): tf.Tensor3D {
  return selfAttention(x, heads, P[`${b}.attn.qkv.weight`], P[`${b}.attn.qkv.bias`], P[`${b}.attn.proj.weight`], P[`${b}.attn.proj.bias`]);
}

/** adaLN-Zero (6 chunks, gated residuals) and adaLN (4 chunks, plain residuals) blocks. */
export function adaLNBlock(P: Record<string, tf.Tensor>, c: DiTConfig, i: number, x: tf.Tensor3D, siluC: tf.Tensor2D): tf.Tensor3D {
  const b = `blocks.${i}`;
  const k = adaLNChunks(c);
  const mod = tf.split(linear(siluC, P[`${b}.adaLN_modulation.1.weight`], P[`${b}.adaLN_modulation.1.bias`]), k, 1) as tf.Tensor2D[];
  if (k === 6) {
    const [shiftMsa, scaleMsa, gateMsa, shiftMlp, scaleMlp, gateMlp] = mod;
    x = gatedResidual(x, attn(P, b, layerNormModulate(x, shiftMsa, scaleMsa), c.numHeads), gateMsa);
    return gatedResidual(x, blockMlp(P, b, layerNormModulate(x, shiftMlp, scaleMlp)), gateMlp);
  }
  const [shiftMsa, scaleMsa, shiftMlp, scaleMlp] = mod;
  x = tf.add(x, attn(P, b, layerNormModulate(x, shiftMsa, scaleMsa), c.numHeads));
  return tf.add(x, blockMlp(P, b, layerNormModulate(x, shiftMlp, scaleMlp)));
}

/** Pre-norm ViT block; used with the two conditioning tokens appended (in-context). */
function plainBlock(P: Record<string, tf.Tensor>, c: DiTConfig, i: number, x: tf.Tensor3D): tf.Tensor3D {
  const b = `blocks.${i}`;
  x = tf.add(x, attn(P, b, layerNorm(x, P[`${b}.norm1.weight`], P[`${b}.norm1.bias`]) as tf.Tensor3D, c.numHeads));
  return tf.add(x, blockMlp(P, b, layerNorm(x, P[`${b}.norm2.weight`], P[`${b}.norm2.bias`]) as tf.Tensor3D));
}

/** Self-attention, then multi-head cross-attention over the [t, y] sequence, then MLP. */
function crossAttentionBlock(P: Record<string, tf.Tensor>, c: DiTConfig, i: number, x: tf.Tensor3D, cond: tf.Tensor3D): tf.Tensor3D {
  const b = `blocks.${i}`;
  const d = c.hiddenSize;
  x = tf.add(x, attn(P, b, layerNorm(x, P[`${b}.norm1.weight`], P[`${b}.norm1.bias`]) as tf.Tensor3D, c.numHeads));
  const q = linear(layerNorm(x, P[`${b}.norm2.weight`], P[`${b}.norm2.bias`]), P[`${b}.cross_attn.q.weight`], P[`${b}.cross_attn.q.bias`]);
  const [k, v] = tf.split(linear(cond, P[`${b}.cross_attn.kv.weight`], P[`${b}.cross_attn.kv.bias`]), [d, d], 2) as tf.Tensor3D[];
  const ca = linear(multiHeadAttention(q as tf.Tensor3D, k, v, c.numHeads), P[`${b}.cross_attn.proj.weight`], P[`${b}.cross_attn.proj.bias`]);
  x = tf.add(x, ca);
  return tf.add(x, blockMlp(P, b, layerNorm(x, P[`${b}.norm3.weight`], P[`${b}.norm3.bias`]) as tf.Tensor3D));
}

/**
 * Forward pass: x [N, C, H, W] (NCHW, as PyTorch), t [N] timesteps (int or float),
 * y [N] int32 labels (numClasses = the null label). Returns [N, 2C, H, W] when
 * learnSigma (noise prediction, then the covariance channels), else [N, C, H, W].
 */
export function ditForward(model: DiT, x: tf.Tensor, t: tf.Tensor, y: tf.Tensor): tf.Tensor4D {
  const c = model.config;
  checkInputs(c, x, t, y);
  return tf.tidy(() => {
    const P = model.params as Record<string, tf.Tensor>;
    const T = numTokens(c);
    const patches = patchify(x as tf.Tensor4D, c.patchSize);
    let h = tf.add(linear(patches, P['x_embedder.proj.weight'], P['x_embedder.proj.bias']), P['pos_embed']) as tf.Tensor3D;

    const tFreq = timestepEmbedding(t as tf.Tensor1D, 256);
    const tEmb = linear(silu(linear(tFreq, P['t_embedder.mlp.0.weight'], P['t_embedder.mlp.0.bias'])), P['t_embedder.mlp.2.weight'], P['t_embedder.mlp.2.bias']) as tf.Tensor2D;
    const yEmb = labelEmbedding(P['y_embedder.embedding_table.weight'], y as tf.Tensor1D);

    let siluC: tf.Tensor2D | null = null;
    if (usesAdaLN(c)) {
      // c = t + y; every adaLN_modulation is Sequential(SiLU, Linear): SiLU(c) is shared.
      siluC = silu(tf.add(tEmb, yEmb)) as tf.Tensor2D;
      for (let i = 0; i < c.depth; i++) h = adaLNBlock(P, c, i, h, siluC);
    } else if (c.variant === 'in-context') {
      const n = h.shape[0];
      h = tf.concat([h, tf.reshape(tEmb, [n, 1, -1]), tf.reshape(yEmb, [n, 1, -1])], 1);
      for (let i = 0; i < c.depth; i++) h = plainBlock(P, c, i, h);
      h = tf.slice(h, [0, 0, 0], [n, T, c.hiddenSize]); // drop the conditioning tokens
    } else {
      const cond = tf.stack([tEmb, yEmb], 1) as tf.Tensor3D;
      for (let i = 0; i < c.depth; i++) h = crossAttentionBlock(P, c, i, h, cond);
    }

    let z: tf.Tensor3D;
    if (siluC) {
      const [shift, scale] = tf.split(linear(siluC, P['final_layer.adaLN_modulation.1.weight'], P['final_layer.adaLN_modulation.1.bias']), 2, 1) as tf.Tensor2D[];
      z = layerNormModulate(h, shift, scale);
    } else {
      z = layerNorm(h, P['final_layer.norm_final.weight'], P['final_layer.norm_final.bias']) as tf.Tensor3D;
    }
    const out = linear(z, P['final_layer.linear.weight'], P['final_layer.linear.bias']) as tf.Tensor3D;
    return unpatchify(out, c.patchSize, outChannels(c));
  });
}

/** The label used for the unconditional pass of classifier-free guidance. */
export function nullLabel(c: DiTConfig): number {
  if (!hasNullClass(c)) throw new Error(`DiT ${c.name} has no null class (classDropoutProb = 0): guidance needs one`);
  return c.numClasses;
}

/**
 * DiT.forward_with_cfg: one batched pass over the conditional and null labels, noise
 * channels guided as eps_u + s * (eps_c - eps_u). channels 'first3' is the published
 * sampler (guides channels 0..2 only); 'all' is the standard form. Scale 1 skips the
 * unconditional pass.
 */
export function forwardWithCfg(
  model: DiT, x: tf.Tensor, t: tf.Tensor, y: tf.Tensor, cfgScale: number, channels: GuidanceChannels = 'first3',
): tf.Tensor4D {
  const guided = classifierFreeGuidance((xx, tt, yy) => ditForward(model, xx, tt, yy), {
    y, nullLabel: nullLabel(model.config), cfgScale, channels, dataChannels: model.config.inChannels,
  });
  return guided(x, t) as tf.Tensor4D;
}
