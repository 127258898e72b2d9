// The DiT training loss of one batch whose random draws are already made (paper Sec. 3:
// the hybrid loss of IDDPM, L_simple + L_vlb): shared by the trainer and its
// data-parallel workers, so both compute a block of rows the same way.
import * as tf from '@tensorflow/tfjs-core';
import { GaussianDiffusion } from '../diffusion';
import { DiT, ditForward } from '../model/dit';
import { StepLoss } from './step';

/** One batch with every draw of the step: inputs (flipped), labels after dropout, timesteps, noise. */
export interface DiTBatch {
  x: Float32Array;
  y: Int32Array;
  t: Int32Array;
  noise: Float32Array;
}

/** Rows [start, start + n) of a batch of samples of `per` values each (views, not copies). */
export function batchRows(b: DiTBatch, per: number, start: number, n: number): DiTBatch {
  return {
    x: b.x.subarray(start * per, (start + n) * per),
    y: b.y.subarray(start, start + n),
    t: b.t.subarray(start, start + n),
    noise: b.noise.subarray(start * per, (start + n) * per),
  };
}

/** The mean hybrid loss over the batch's rows, with its MSE and vb terms to log. */
export function ditBatchLoss(model: DiT, diffusion: GaussianDiffusion, shape: [number, number, number], b: DiTBatch): StepLoss {
  const [c, h, w] = shape;
  const n = b.y.length;
  const x = tf.tensor4d(b.x, [n, c, h, w]);
  const y = tf.tensor1d(b.y, 'int32');
  const modelFn = (xt: tf.Tensor, ts: tf.Tensor) => ditForward(model, xt, ts, y);
  // Host timesteps: a batch without t = 0 skips the decoder NLL (gaussian-diffusion.ts).
  const l = diffusion.trainingLosses(modelFn, x, b.t, { noise: tf.tensor4d(b.noise, [n, c, h, w]) });
  return { loss: tf.mean(l.loss) as tf.Scalar, terms: { mse: l.mse && tf.mean(l.mse), vb: l.vb && tf.mean(l.vb) } };
}
