// Beta schedules and the float64 host arrays derived from them, as in ADM /
// improved-DDPM gaussian_diffusion.py (Ho et al. 2020 eqs. 4, 6, 7; Nichol &
// Dhariwal 2021 eq. 17 for the cosine schedule).

export const NOISE_SCHEDULES = ['linear', 'cosine'] as const;
export type NoiseSchedule = (typeof NOISE_SCHEDULES)[number];

/** ADM's linear schedule, extended to any number of steps: scale = 1000 / T, beta in [scale*1e-4, scale*0.02]. */
export function linearBetas(numDiffusionTimesteps: number): Float64Array {
  checkSteps(numDiffusionTimesteps);
  const scale = 1000 / numDiffusionTimesteps;
  return linspace(scale * 0.0001, scale * 0.02, numDiffusionTimesteps);
}

/**
 * Discretises a cumulative alpha_bar(t), t in [0, 1]:
 * beta_i = min(1 - alpha_bar((i+1)/T) / alpha_bar(i/T), maxBeta).
 */
export function betasForAlphaBar(
  numDiffusionTimesteps: number,
  alphaBar: (t: number) => number,
  maxBeta = 0.999,
): Float64Array {
  checkSteps(numDiffusionTimesteps);
  const betas = new Float64Array(numDiffusionTimesteps);
  for (let i = 0; i < numDiffusionTimesteps; i++) {
    const t1 = i / numDiffusionTimesteps;
    const t2 = (i + 1) / numDiffusionTimesteps;
    betas[i] = Math.min(1 - alphaBar(t2) / alphaBar(t1), maxBeta);
  }
  return betas;
}

/** Cosine schedule (improved DDPM eq. 17, s = 0.008); DiT calls it squaredcos_cap_v2. */
export function cosineBetas(numDiffusionTimesteps: number): Float64Array {
  return betasForAlphaBar(numDiffusionTimesteps, (t) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2);
}

/** get_named_beta_schedule: 'linear' or 'cosine' (alias 'squaredcos_cap_v2'). */
export function getNamedBetaSchedule(name: NoiseSchedule | 'squaredcos_cap_v2', numDiffusionTimesteps: number): Float64Array {
  if (name === 'linear') return linearBetas(numDiffusionTimesteps);
  if (name === 'cosine' || name === 'squaredcos_cap_v2') return cosineBetas(numDiffusionTimesteps);
  throw new Error(`unknown beta schedule '${String(name)}'; use 'linear' or 'cosine'`);
}

/** Every per-timestep constant of the process, in float64 on the host. */
export interface ScheduleArrays {
  numTimesteps: number;
  betas: Float64Array;
  alphasCumprod: Float64Array;
  alphasCumprodPrev: Float64Array;
  alphasCumprodNext: Float64Array;
  sqrtAlphasCumprod: Float64Array;
  sqrtOneMinusAlphasCumprod: Float64Array;
  logOneMinusAlphasCumprod: Float64Array;
  sqrtRecipAlphasCumprod: Float64Array;
  sqrtRecipm1AlphasCumprod: Float64Array;
  /** beta~_t = beta_t (1 - abar_{t-1}) / (1 - abar_t) (DDPM eq. 7). */
  posteriorVariance: Float64Array;
  /** log beta~_t, with t = 0 (where beta~_0 = 0) clipped to log beta~_1. */
  posteriorLogVarianceClipped: Float64Array;
  posteriorMeanCoef1: Float64Array;
  posteriorMeanCoef2: Float64Array;
  /** log beta_t: the upper end of LEARNED_RANGE. */
  logBetas: Float64Array;
  /** FIXED_LARGE variance: append(posterior_variance[1], betas[1:]). */
  fixedLargeVariance: Float64Array;
  fixedLargeLogVariance: Float64Array;
}

export function computeScheduleArrays(betasIn: ArrayLike<number>): ScheduleArrays {
  const T = betasIn.length;
  if (T < 1) throw new Error('betas must be a non-empty 1-D array');
  const betas = Float64Array.from(betasIn);
  for (let i = 0; i < T; i++) {
    if (!(betas[i] > 0 && betas[i] <= 1)) throw new Error(`betas must lie in (0, 1]; betas[${i}] = ${betas[i]}`);
  }
  const f = () => new Float64Array(T);
  const a = {
    numTimesteps: T,
    betas,
    alphasCumprod: f(),
    alphasCumprodPrev: f(),
    alphasCumprodNext: f(),
    sqrtAlphasCumprod: f(),
    sqrtOneMinusAlphasCumprod: f(),
    logOneMinusAlphasCumprod: f(),
    sqrtRecipAlphasCumprod: f(),
    sqrtRecipm1AlphasCumprod: f(),
    posteriorVariance: f(),
    posteriorLogVarianceClipped: f(),
    posteriorMeanCoef1: f(),
    posteriorMeanCoef2: f(),
    logBetas: f(),
    fixedLargeVariance: f(),
    fixedLargeLogVariance: f(),
  };
  let cum = 1;
  for (let i = 0; i < T; i++) {
    cum *= 1 - betas[i];
    a.alphasCumprod[i] = cum;
  }
  for (let i = 0; i < T; i++) {
    const ac = a.alphasCumprod[i];
    const acPrev = i === 0 ? 1 : a.alphasCumprod[i - 1];
    a.alphasCumprodPrev[i] = acPrev;
    a.alphasCumprodNext[i] = i === T - 1 ? 0 : a.alphasCumprod[i + 1];
    a.sqrtAlphasCumprod[i] = Math.sqrt(ac);
    a.sqrtOneMinusAlphasCumprod[i] = Math.sqrt(1 - ac);
    a.logOneMinusAlphasCumprod[i] = Math.log(1 - ac);
    a.sqrtRecipAlphasCumprod[i] = Math.sqrt(1 / ac);
    a.sqrtRecipm1AlphasCumprod[i] = Math.sqrt(1 / ac - 1);
    a.posteriorVariance[i] = (betas[i] * (1 - acPrev)) / (1 - ac);
    a.posteriorMeanCoef1[i] = (betas[i] * Math.sqrt(acPrev)) / (1 - ac);
    a.posteriorMeanCoef2[i] = ((1 - acPrev) * Math.sqrt(1 - betas[i])) / (1 - ac);
    a.logBetas[i] = Math.log(betas[i]);
  }
  // With a single step there is no posterior_variance[1]; ADM leaves the array empty,
  // here it falls back to the (zero) variance itself so every index stays defined.
  const pv1 = T > 1 ? a.posteriorVariance[1] : a.posteriorVariance[0];
  for (let i = 0; i < T; i++) {
    a.posteriorLogVarianceClipped[i] = Math.log(i === 0 ? pv1 : a.posteriorVariance[i]);
    a.fixedLargeVariance[i] = i === 0 ? pv1 : betas[i];
    a.fixedLargeLogVariance[i] = Math.log(a.fixedLargeVariance[i]);
  }
  return a;
}

function linspace(start: number, end: number, n: number): Float64Array {
  const out = new Float64Array(n);
  if (n === 1) {
    out[0] = start;
    return out;
  }
  const step = (end - start) / (n - 1);
  for (let i = 0; i < n; i++) out[i] = start + i * step;
  out[n - 1] = end;
  return out;
}

function checkSteps(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`number of diffusion steps must be a positive integer, got ${n}`);
}
