// Classifier-free guidance (Ho & Salimans 2021; DiT sec. 3.1):
// eps = eps(x, t, null) + s * (eps(x, t, y) - eps(x, t, null)).
import * as tf from '@tensorflow/tfjs-core';
import type { ModelFn } from './gaussian-diffusion';

/** A class-conditional denoiser: x [N, C, ...], t int32 [N], y int32 labels [N] -> [N, C or 2C, ...]. */
export type CondModelFn = (x: tf.Tensor, t: tf.Tensor, y: tf.Tensor) => tf.Tensor;

/**
 * Which channels are guided. 'first3': channels 0..2 only, as the public DiT sampler does
 * (eps = model_out[:, :3]; kept "for exact reproducibility"); 'all': every noise channel 0..C-1.
 */
export type GuidanceChannels = 'first3' | 'all';

export interface GuidanceOptions {
  /** Class labels [N] (int32). */
  y: tf.Tensor | ArrayLike<number>;
  /** The label of the null class (DiT: num_classes). */
  nullLabel: number;
  /** Guidance scale s; 1 means no guidance (and no unconditional pass). */
  cfgScale: number;
  channels: GuidanceChannels;
  /**
   * Number of data channels C of x. Default: x.shape[1]. The model output has C (fixed
   * variance) or 2C (learned variance) channels; the variance half is never guided.
   */
  dataChannels?: number;
}

/**
 * A ModelFn that applies classifier-free guidance with one batched pass on
 * concat([x, x]) / concat([y, null]). Returns the conditional output with its guided
 * noise channels replaced by uncond + s * (cond - uncond); every other channel
 * (including the learned variance) is the conditional one. cfgScale == 1 runs only
 * the conditional pass. The returned function does not own y: keep it alive while sampling.
 */
export function classifierFreeGuidance(condModel: CondModelFn, opts: GuidanceOptions): ModelFn {
  const { nullLabel, cfgScale, channels } = opts;
  if (!Number.isFinite(cfgScale)) throw new Error(`cfgScale must be a finite number, got ${cfgScale}`);
  if (!Number.isInteger(nullLabel)) throw new Error(`nullLabel must be an integer, got ${nullLabel}`);
  if (channels !== 'first3' && channels !== 'all') throw new Error(`guidance channels '${String(channels)}' is not 'first3' or 'all'`);
  return (x, t) =>
    tf.tidy(() => {
      const N = x.shape[0] as number;
      const y = labelsTensor(opts.y, N);
      if (cfgScale === 1) return condModel(x, t, y);
      const C = opts.dataChannels ?? (x.shape[1] as number);
      const k = channels === 'first3' ? 3 : C;
      if (k > C) throw new Error(`guidance 'first3' needs at least 3 data channels, x has ${C}`);
      const out = condModel(tf.concat([x, x], 0), tf.concat([t, t], 0), tf.concat([y, tf.fill([N], nullLabel, 'int32')], 0));
      const [cond, uncond] = tf.split(out, 2, 0);
      const total = cond.shape[1] as number;
      const rest = total - k;
      const [condEps, condRest] = rest > 0 ? tf.split(cond, [k, rest], 1) : [cond, null];
      const uncondEps = rest > 0 ? tf.split(uncond, [k, rest], 1)[0] : uncond;
      const guided = uncondEps.add(condEps.sub(uncondEps).mul(cfgScale));
      return condRest ? tf.concat([guided, condRest], 1) : guided;
    });
}

function labelsTensor(y: tf.Tensor | ArrayLike<number>, n: number): tf.Tensor {
  const t = Array.isArray(y) || ArrayBuffer.isView(y) ? tf.tensor1d(Int32Array.from(y as ArrayLike<number>), 'int32') : tf.cast(y as tf.Tensor, 'int32');
  if (t.rank !== 1 || t.shape[0] !== n) throw new Error(`labels y have shape [${t.shape}], expected [${n}]`);
  return t;
}
