// Sampling a DiT: respaced DDPM or DDIM over the diffusion process, optional
// classifier-free guidance (DiT sample.py: p_sample_loop(model.forward_with_cfg, ...,
// clip_denoised=False)). Returns latents; decoding to pixels is the autoencoder's job.
import * as tf from '@tensorflow/tfjs-core';
import { createDiffusion, GuidanceChannels, ProgressFn } from '../diffusion';
import { DiT, ditForward, forwardWithCfg } from '../model/dit';
import { samplingGflops } from '../model/gflops';
import { derivedSeed } from '../util/rng';

export type SamplerName = 'ddpm' | 'ddim';

export interface SampleOptions {
  /** One label per sample. */
  labels: ArrayLike<number>;
  sampler: SamplerName;
  /** Number of sampling steps (respacing of the 1000-step process). */
  steps: number;
  /** Override the respacing spec ("250", "10,15,20", "ddim50"); default: String(steps). */
  respacing?: string;
  cfgScale: number;
  guidanceChannels: GuidanceChannels;
  seed: number;
  /** DDIM eta (0: deterministic). */
  eta?: number;
  /** Samples per model batch (memory); the noise is drawn for the whole set first. */
  batchSize?: number;
  diffusionSteps?: number;
  noiseSchedule?: 'linear' | 'cosine';
  progress?: ProgressFn;
}

export interface SampleResult {
  /** [N, C, H, W] float32 latents. */
  latents: Float32Array;
  shape: [number, number, number, number];
  labels: Int32Array;
  /** Forward Gflops spent per image (x2 under guidance, which runs two passes). */
  gflopsPerImage: number;
}

export function sampleDiT(model: DiT, o: SampleOptions): SampleResult {
  const c = model.config;
  const labels = Int32Array.from(o.labels);
  for (const l of labels) {
    if (!(Number.isInteger(l) && l >= 0 && l < c.numClasses)) throw new Error(`class ${l} is outside [0, ${c.numClasses}) for ${c.name}`);
  }
  if (!(Number.isInteger(o.steps) && o.steps > 0)) throw new Error(`steps must be a positive integer, got ${o.steps}`);
  if (o.sampler !== 'ddpm' && o.sampler !== 'ddim') throw new Error(`unknown sampler '${o.sampler}': use ddpm or ddim`);
  const diffusion = createDiffusion({
    timestepRespacing: o.respacing ?? String(o.steps),
    diffusionSteps: o.diffusionSteps ?? 1000,
    noiseSchedule: o.noiseSchedule ?? 'linear',
    learnSigma: c.learnSigma,
  });
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
    // Each batch has its own seed so results do not depend on how many came before.
    const opts = { seed: derivedSeed(o.seed * 7919 + b), clipDenoised: false, progress: o.progress };
    const x = o.sampler === 'ddpm' ? diffusion.pSampleLoop(fn, shape, opts) : diffusion.ddimSampleLoop(fn, shape, { ...opts, eta: o.eta ?? 0 });
    out.set(x.dataSync() as Float32Array, start * per);
    tf.dispose([x, y]);
  }
  return {
    latents: out,
    shape: [n, c.inChannels, c.inputSize, c.inputSize],
    labels,
    gflopsPerImage: samplingGflops(c, diffusion.numTimesteps, guided),
  };
}

/** `count` labels cycling through the classes (class-balanced sampling). */
export function balancedLabels(count: number, numClasses: number): Int32Array {
  return Int32Array.from({ length: count }, (_, i) => i % numClasses);
}
