// Exponential moving average of the weights (DiT's update_ema; all the paper's
// results use the EMA model). decay 0.9999 averages over ~10K steps: right for 400K
// steps, far too slow for a 2K-step mini run, hence the warm-up option.
import * as tf from '@tensorflow/tfjs-core';
import { emaUpdate } from '../ops';

export interface EmaConfig {
  decay: number;
  /**
   * Warm-up: decay_t = min(decay, (1 + step) / (10 + step)), so early averages are not
   * dominated by the random initialisation (the schedule of Tensorflow's EMA with num_updates).
   */
  warmup: boolean;
}

/** A copy of the parameters (DiT: `ema = deepcopy(model)`; update_ema(ema, model, decay=0)). */
export function createEma(params: Record<string, tf.Variable>): Record<string, tf.Variable> {
  const ema: Record<string, tf.Variable> = {};
  for (const [k, p] of Object.entries(params)) ema[k] = tf.tidy(() => tf.variable(tf.clone(p), false));
  return ema;
}

export function emaDecayAt(cfg: EmaConfig, step: number): number {
  return cfg.warmup ? Math.min(cfg.decay, (1 + step) / (10 + step)) : cfg.decay;
}

/** ema <- decay * ema + (1 - decay) * param, for every trainable parameter. */
export function updateEma(ema: Record<string, tf.Variable>, params: Record<string, tf.Variable>, decay: number): void {
  tf.tidy(() => {
    for (const [k, p] of Object.entries(params)) {
      if (!p.trainable) continue;
      const e = ema[k];
      e.assign(emaUpdate(e, p, decay));
    }
  });
}
