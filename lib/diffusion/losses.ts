// Likelihood helpers of ADM / improved DDPM (diffusion_utils.py / losses.py).
import * as tf from '@tensorflow/tfjs-core';

/** KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)), elementwise, in nats. */
export function normalKl(
  mean1: tf.Tensor | number,
  logvar1: tf.Tensor | number,
  mean2: tf.Tensor | number,
  logvar2: tf.Tensor | number,
): tf.Tensor {
  return tf.tidy(() => {
    const lv1 = tf.scalar(0).add(logvar1);
    const lv2 = tf.scalar(0).add(logvar2);
    const d = tf.sub(mean1, mean2);
    return tf
      .scalar(-1)
      .add(lv2)
      .sub(lv1)
      .add(tf.exp(lv1.sub(lv2)))
      .add(d.square().mul(tf.exp(lv2.neg())))
      .mul(0.5);
  });
}

/** A fast approximation of the standard normal CDF (the tanh form used by ADM). */
export function approxStandardNormalCdf(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const inner = x.add(x.square().mul(x).mul(0.044715)).mul(Math.sqrt(2 / Math.PI));
    return tf.tanh(inner).add(1).mul(0.5);
  });
}

/**
 * Log-likelihood (nats, elementwise) of x under a Gaussian discretised to 256 bins
 * on [-1, 1] (DDPM sec. 3.3), with open-ended edge bins at -1 and +1.
 */
export function discretizedGaussianLogLikelihood(x: tf.Tensor, means: tf.Tensor, logScales: tf.Tensor): tf.Tensor {
  if (!shapesEqual(x.shape, means.shape) || !shapesEqual(x.shape, logScales.shape)) {
    throw new Error(`discretizedGaussianLogLikelihood: shapes differ ${x.shape} / ${means.shape} / ${logScales.shape}`);
  }
  return tf.tidy(() => {
    const centered = x.sub(means);
    const invStdv = tf.exp(logScales.neg());
    const cdfPlus = approxStandardNormalCdf(invStdv.mul(centered.add(1 / 255)));
    const cdfMin = approxStandardNormalCdf(invStdv.mul(centered.sub(1 / 255)));
    const logCdfPlus = tf.log(tf.maximum(cdfPlus, 1e-12));
    const logOneMinusCdfMin = tf.log(tf.maximum(tf.scalar(1).sub(cdfMin), 1e-12));
    const logCdfDelta = tf.log(tf.maximum(cdfPlus.sub(cdfMin), 1e-12));
    return tf.where(tf.less(x, -0.999), logCdfPlus, tf.where(tf.greater(x, 0.999), logOneMinusCdfMin, logCdfDelta));
  });
}

/** Mean over every dimension but the batch one: [N, ...] -> [N]. */
export function meanFlat(x: tf.Tensor): tf.Tensor1D {
  if (x.rank < 2) return x.as1D();
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i + 1);
  return tf.mean(x, axes) as tf.Tensor1D;
}

/** Identity forward, zero gradient backward (torch's .detach()); tfjs-core has no stopGradient. */
export const stopGradient: (x: tf.Tensor) => tf.Tensor = tf.customGrad((...inputs) => {
  const x = inputs[0] as tf.Tensor;
  return { value: x.clone(), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) };
});

function shapesEqual(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
