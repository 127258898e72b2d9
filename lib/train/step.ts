// One optimiser step, shared by every trainer (DiT, autoencoder, feature network) and the
// benchmark: gradients of a loss closure with respect to the named trainable variables,
// mapped back to their state_dict names, a finite check, optional global-norm clipping,
// AdamW. A failed check throws before any weight or optimiser moment has changed, so what
// a run saved before stays its last good state.
import * as tf from '@tensorflow/tfjs-core';
import { AdamWState, adamWStep, clipGradNorm, gradNorm } from './adamw';

/** The loss (or the gradients) stopped being finite; thrown before anything was updated. */
export class TrainingDiverged extends Error {}

/** What a loss closure returns: the scalar to minimise, or it with terms to log (read back, not differentiated). */
export type StepLoss = tf.Scalar | { loss: tf.Scalar; terms?: Record<string, tf.Tensor | undefined> };

export interface StepOptions {
  /** The model's variables by state_dict name; the trainable ones are optimised. */
  params: Record<string, tf.Variable>;
  opt: AdamWState;
  /** 1-based number of the step being taken, named in errors. */
  step: number;
  /** Learning rate of this step (default: the optimiser's). */
  lr?: number;
  /** Clip the global gradient norm to this (null, 0 or absent: off). */
  gradClip?: number | null;
  /** Also require finite gradients (one reduction more; always checked when clipping, which computes the norm anyway). */
  checkGrads?: boolean;
  /** Who trains, for errors ('autoencoder training'). */
  label?: string;
  /** What survives a failure, for errors ('the last good checkpoint in runs/x is kept'). */
  kept?: string;
  /** Advice appended to errors ('try a lower --lr'). */
  hint?: string;
}

export interface StepResult {
  loss: number;
  /** The closure's terms, read back as the first value of each. */
  terms: Record<string, number>;
  /** Global gradient norm before clipping; null when neither clipping nor checkGrads needed it. */
  gradNorm: number | null;
}

/** A loss and its gradients by state_dict key, before any check or update. */
export interface LossGrads {
  loss: number;
  terms: Record<string, number>;
  grads: Record<string, tf.Tensor>;
}

/**
 * The gradients of `lossFn` with respect to the trainable `params`, keyed by state_dict
 * name. Throws (disposing them) when a trainable parameter gets none. The caller owns the
 * gradients. Data-parallel workers (data_parallel.ts) call it on their part of a batch.
 */
export function lossGrads(lossFn: () => StepLoss, params: Record<string, tf.Variable>, label = 'training'): LossGrads {
  const names = Object.keys(params).filter((k) => params[k].trainable);
  const vars = names.map((k) => params[k]);
  const terms: Record<string, number> = {};
  const { value, grads } = tf.tidy(() => tf.variableGrads(() => {
    const r = lossFn();
    if (r instanceof tf.Tensor) return r;
    // Read inside the closure: the gradient's forward scope disposes them afterwards.
    for (const [k, t] of Object.entries(r.terms ?? {})) if (t) terms[k] = t.dataSync()[0];
    return r.loss;
  }, vars));
  const loss = value.dataSync()[0];
  value.dispose();
  // variableGrads keys gradients by the variables' engine names; map back to state_dict keys.
  const byKey: Record<string, tf.Tensor> = {};
  const missing: string[] = [];
  names.forEach((k, i) => {
    const g = grads[vars[i].name];
    if (g) byKey[k] = g;
    else missing.push(k);
  });
  if (missing.length) {
    tf.dispose(Object.values(byKey));
    throw new Error(`${label}: no gradient reaches ${missing.map((k) => `'${k}'`).join(', ')}: ` +
      'every trainable parameter must take part in the loss (or be made non-trainable)');
  }
  return { loss, terms, grads: byKey };
}

/**
 * Checks a loss and its gradients, clips, takes one AdamW step; disposes the gradients
 * (also when it throws).
 */
export function applyGrads(r: LossGrads, o: StepOptions): StepResult {
  const fail = (err: Error): Error => {
    tf.dispose(Object.values(r.grads));
    return err;
  };
  const diverged = (what: string) => fail(new TrainingDiverged(
    `${o.label ?? 'training'} diverged: ${what} at step ${o.step}; stopping (${o.kept ?? 'nothing was updated'})${o.hint ? `; ${o.hint}` : ''}`));
  if (!Number.isFinite(r.loss)) throw diverged(`loss is ${r.loss}`);
  let norm: number | null = null;
  if (o.checkGrads || o.gradClip) {
    norm = gradNorm(r.grads);
    if (!Number.isFinite(norm)) throw diverged(`the gradient norm is ${norm}`);
  }
  const g = o.gradClip ? clipGradNorm(r.grads, o.gradClip, norm!).grads : r.grads;
  try {
    adamWStep(o.opt, o.params, g, o.lr);
  } finally {
    tf.dispose(Object.values(g));
  }
  return { loss: r.loss, terms: r.terms, gradNorm: norm };
}

/** Computes the gradients of `lossFn`, checks them, clips, takes one AdamW step. Disposes everything it made. */
export function optimizerStep(lossFn: () => StepLoss, o: StepOptions): StepResult {
  return applyGrads(lossGrads(lossFn, o.params, o.label), o);
}
