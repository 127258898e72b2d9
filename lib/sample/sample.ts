// Sampling a DiT: a sampler of the registry (DDPM, DDIM) over the respaced diffusion
// process the model was trained with, optional classifier-free guidance (DiT sample.py:
// p_sample_loop(model.forward_with_cfg, ..., clip_denoised=False)). Returns latents;
// decoding to pixels is the autoencoder's job.
import * as tf from '@tensorflow/tfjs-core';
import {
  DiffusionSettings, GuidanceChannels, ProgressFn, resolveDiffusion, SAMPLERS, SamplerName, SamplingRequest, samplingTimesteps, spacedDiffusion,
} from '../diffusion';
import { DiT, ditForward, forwardWithCfg } from '../model/dit';
import { samplingGflops } from '../model/gflops';
import { checkLabels } from '../model/labels';
import { derivedSeed } from '../util/rng';

export type { SamplerName } from '../diffusion';

/** DiT sample.py's default classes (--class-labels): golden retriever, otter, lesser panda, geyser, macaw, valley, balloon, Arctic fox. */
export const SAMPLE_PY_CLASSES: readonly number[] = Object.freeze([207, 360, 387, 974, 88, 979, 417, 279]);

/** What to sample and how; the number of steps is `steps` or `respacing`, never both (SamplingRequest). */
export interface SampleOptions extends SamplingRequest {
  /** One label per sample. */
  labels: ArrayLike<number>;
  sampler: SamplerName;
  cfgScale: number;
  guidanceChannels: GuidanceChannels;
  seed: number;
  /** Samples per model batch (memory); the noise is drawn for the whole set first. */
  batchSize?: number;
  /**
   * The diffusion the model was trained with (loadModelFile(...).diffusion). Default: DiT's
   * published one with the model's learnSigma; a learnSigma the model's output contradicts is an error.
   */
  diffusion?: DiffusionSettings;
  progress?: ProgressFn;
}

export interface SampleResult {
  /** [N, C, H, W] float32 latents. */
  latents: Float32Array;
  shape: [number, number, number, number];
  labels: Int32Array;
  /** Sampling steps taken (model evaluations per image, x2 under guidance). */
  steps: number;
  /** Forward Gflops spent per image (x2 under guidance, which runs two passes). */
  gflopsPerImage: number;
}

/** The seed of batch b: each batch has its own, so results do not depend on how many came before. */
export function batchSeed(seed: number, b: number): number {
  return derivedSeed(seed * 7919 + b);
}

export function sampleDiT(model: DiT, o: SampleOptions): SampleResult {
  const c = model.config;
  const labels = Int32Array.from(o.labels);
  // The class of each sample: a real class (guidance adds the null class itself).
  checkLabels(o.labels, c.numClasses, { what: `sampling ${c.name}` });
  if (o.batchSize !== undefined && !(Number.isInteger(o.batchSize) && o.batchSize > 0)) throw new Error(`sampling ${c.name}: batch size must be a positive integer, got ${o.batchSize}`);
  const settings = resolveDiffusion({ learnSigma: c.learnSigma }, o.diffusion ?? {}, c.name);
  const { steps, respacing, eta } = o;
  const diffusion = spacedDiffusion(settings, samplingTimesteps(o.sampler, settings.diffusionSteps, { steps, respacing, eta }));
  const sampler = SAMPLERS[o.sampler];
  const n = labels.length;
  const per = c.inChannels * c.inputSize * c.inputSize;
  const out = new Float32Array(n * per);
  const bs = o.batchSize ?? n;
  const guided = o.cfgScale !== 1;
  for (let start = 0, b = 0; start < n; start += bs, b++) {
    const m = Math.min(bs, n - start);
    const y = tf.tensor1d(labels.subarray(start, start + m), 'int32');
    const fn = (x: tf.Tensor, t: tf.Tensor) =>
      guided ? forwardWithCfg(model, x, t, y, o.cfgScale, o.guidanceChannels) : ditForward(model, x, t, y);
    const shape = [m, c.inChannels, c.inputSize, c.inputSize];
    const x = sampler.loop(diffusion, fn, shape, { seed: batchSeed(o.seed, b), clipDenoised: false, progress: o.progress, eta });
    out.set(x.dataSync() as Float32Array, start * per);
    tf.dispose([x, y]);
  }
  return {
    latents: out,
    shape: [n, c.inChannels, c.inputSize, c.inputSize],
    labels,
    steps: diffusion.numTimesteps,
    gflopsPerImage: samplingGflops(c, diffusion.numTimesteps, guided),
  };
}

/** `count` labels cycling through the classes (class-balanced sampling). */
export function balancedLabels(count: number, numClasses: number): Int32Array {
  return Int32Array.from({ length: count }, (_, i) => i % numClasses);
}
