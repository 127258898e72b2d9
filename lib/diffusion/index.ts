// Gaussian diffusion for DiT: create_diffusion of DiT's diffusion/__init__.py and re-exports.
import { GaussianDiffusion, LossType } from './gaussian-diffusion';
import { respaceBetas, spaceTimesteps } from './respace';
import { NoiseSchedule, computeScheduleArrays, getNamedBetaSchedule } from './schedule';
import { DIT_DIFFUSION } from './settings';

export * from './gaussian-diffusion';
export * from './guidance';
export * from './losses';
export * from './respace';
export * from './samplers';
export * from './schedule';
export * from './settings';

export interface CreateDiffusionOptions {
  /** "" / undefined: all steps; "250"; "10,15,20"; "ddim50"; or section counts. */
  timestepRespacing?: string | number[];
  noiseSchedule?: NoiseSchedule;
  /** Train on the rescaled variational bound alone (RESCALED_KL). */
  useKl?: boolean;
  /** Fixed variance beta~_t instead of beta_t (only without learnSigma). */
  sigmaSmall?: boolean;
  /** Predict x_0 instead of eps. */
  predictXstart?: boolean;
  /** Learned diagonal covariance, LEARNED_RANGE (DiT: true). */
  learnSigma?: boolean;
  /** RESCALED_MSE: vb term times numTimesteps / 1000. */
  rescaleLearnedSigmas?: boolean;
  diffusionSteps?: number;
}

/**
 * DiT's create_diffusion: linear schedule over 1000 steps, eps prediction, learned-range
 * variance, loss MSE (+ vb), respaced by timestepRespacing (e.g. "250" for sampling, "" for training).
 */
export function createDiffusion(opts: CreateDiffusionOptions = {}): GaussianDiffusion {
  const steps = opts.diffusionSteps ?? DIT_DIFFUSION.diffusionSteps;
  const spec = opts.timestepRespacing;
  return spacedDiffusion(opts, spaceTimesteps(steps, spec === undefined || spec === '' ? [steps] : spec));
}

/** SpacedDiffusion: the process of createDiffusion(opts) restricted to the original timesteps useTimesteps. */
export function spacedDiffusion(opts: Omit<CreateDiffusionOptions, 'timestepRespacing'>, useTimesteps: Iterable<number>): GaussianDiffusion {
  const steps = opts.diffusionSteps ?? DIT_DIFFUSION.diffusionSteps;
  const learnSigma = opts.learnSigma ?? DIT_DIFFUSION.learnSigma;
  const baseBetas = getNamedBetaSchedule(opts.noiseSchedule ?? DIT_DIFFUSION.noiseSchedule, steps);
  const lossType: LossType = opts.useKl ? 'rescaled_kl' : opts.rescaleLearnedSigmas ? 'rescaled_mse' : 'mse';
  const { betas, timestepMap } = respaceBetas(computeScheduleArrays(baseBetas).alphasCumprod, useTimesteps);
  return new GaussianDiffusion({
    betas,
    timestepMap,
    originalNumSteps: steps,
    modelMeanType: (opts.predictXstart ?? DIT_DIFFUSION.predictXstart) ? 'start_x' : 'epsilon',
    modelVarType: learnSigma ? 'learned_range' : opts.sigmaSmall ? 'fixed_small' : 'fixed_large',
    lossType,
  });
}
