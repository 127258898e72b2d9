// Validation loss: the diffusion loss of a model on a fixed held-out set, a low-noise
// scaling signal beside FID (the pretraining loss of DiTs follows a power law in
// compute: Liang et al., "Scaling Laws for Diffusion Transformers"). Every latent gets
// a fixed timestep from an even grid over [0, T) and fixed noise, so two models (or
// two steps of one model) are scored on exactly the same terms.
import * as tf from '@tensorflow/tfjs-core';
import { GaussianDiffusion } from '../diffusion';
import { DiT, ditForward } from '../model/dit';
import { Rng } from '../util/rng';

export interface ValidationSet {
  /** Held-out latents (model space), [n, c, h, w] row-major. */
  x: Float32Array;
  y: Int32Array;
  t: Int32Array;
  noise: Float32Array;
  n: number;
  shape: [number, number, number];
}

/** A held-out set with timesteps floor((i + 0.5) T / n) and noise from `seed`. */
export function validationSet(x: Float32Array, y: Int32Array, shape: [number, number, number], numTimesteps: number, seed = 0): ValidationSet {
  const n = y.length;
  const per = shape[0] * shape[1] * shape[2];
  if (!n || x.length !== n * per) throw new Error(`validationSet: ${x.length} values are not ${n} latents of [${shape}]`);
  const t = Int32Array.from({ length: n }, (_, i) => Math.floor(((i + 0.5) * numTimesteps) / n));
  return { x, y, t, noise: new Rng(seed).fillNormal(new Float32Array(x.length)), n, shape };
}

export interface ValidationLoss {
  /** mse + vb: the hybrid objective the model is trained on. */
  loss: number;
  /** The epsilon MSE term (mean over values). */
  mse: number;
  /** The variational-bound term of the learned covariance (0 without learnSigma). */
  vb: number;
}

/** Mean loss terms of `model` on the set (labels conditional, no dropout). */
export function validationLoss(model: DiT, diffusion: GaussianDiffusion, v: ValidationSet, batchSize = 128): ValidationLoss {
  const [c, h, w] = v.shape;
  const per = c * h * w;
  let mse = 0, vb = 0;
  for (let s = 0; s < v.n; s += batchSize) {
    const b = Math.min(batchSize, v.n - s);
    const [m, k] = tf.tidy(() => {
      const x = tf.tensor4d(v.x.subarray(s * per, (s + b) * per), [b, c, h, w]);
      const eps = tf.tensor4d(v.noise.subarray(s * per, (s + b) * per), [b, c, h, w]);
      const y = tf.tensor1d(v.y.subarray(s, s + b), 'int32');
      const l = diffusion.trainingLosses((xt, ts) => ditForward(model, xt, ts, y), x, v.t.subarray(s, s + b), { noise: eps });
      return [tf.sum(l.mse!).dataSync()[0], l.vb ? tf.sum(l.vb).dataSync()[0] : 0];
    });
    mse += m;
    vb += k;
  }
  return { loss: (mse + vb) / v.n, mse: mse / v.n, vb: vb / v.n };
}
