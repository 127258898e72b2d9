// Gaussian diffusion as in ADM / improved DDPM (gaussian_diffusion.py + respace.py),
// the process DiT trains and samples with. Per-timestep constants live on the host in
// float64 and are gathered per example into float32 tensors ([N, 1, 1, ...]).
// Equation numbers: DDPM = Ho et al. 2020, IDDPM = Nichol & Dhariwal 2021, DDIM = Song et al. 2021.
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../util/rng';
import { discretizedGaussianLogLikelihood, meanFlat, normalKl, stopGradient } from './losses';
import { ScheduleArrays, computeScheduleArrays } from './schedule';

/**
 * A denoiser: x is [N, C, ...] (NCHW), t holds int32 *original* timestep indices, shape [N].
 * Returns [N, C, ...] (fixed variance) or [N, 2C, ...] (learned variance: eps | v).
 * Conditioning (labels, guidance) is closed over by the caller.
 */
export type ModelFn = (x: tf.Tensor, t: tf.Tensor) => tf.Tensor;

/** What the model predicts: the noise eps (DDPM eq. 11) or x_0 itself. */
export type ModelMeanType = 'epsilon' | 'start_x';
/**
 * The reverse-process variance: fixed beta~_t ('fixed_small'), fixed beta_t ('fixed_large'),
 * learned interpolation in the log domain between the two (IDDPM eq. 15, 'learned_range'),
 * or a directly learned log variance ('learned').
 */
export type ModelVarType = 'fixed_small' | 'fixed_large' | 'learned_range' | 'learned';
/** 'mse': eps MSE (+ vb when the variance is learned, DiT); 'rescaled_mse': vb scaled by T/1000; 'kl' / 'rescaled_kl': the bound itself. */
export type LossType = 'mse' | 'rescaled_mse' | 'kl' | 'rescaled_kl';
/** Timestep indices of *this* (possibly respaced) process: an int tensor [N] or host numbers. */
export type Timesteps = tf.Tensor | ArrayLike<number>;
/** Called after each reverse step: step runs 1..total. */
export type ProgressFn = (step: number, total: number) => void;

export interface GaussianDiffusionOptions {
  betas: ArrayLike<number>;
  modelMeanType: ModelMeanType;
  modelVarType: ModelVarType;
  lossType: LossType;
  /** Original timestep of each step of this process (SpacedDiffusion.timestep_map); identity by default. */
  timestepMap?: ArrayLike<number>;
  /** Length of the original process the map points into; default betas.length. */
  originalNumSteps?: number;
}

export type MeanVariance = {
  mean: tf.Tensor;
  variance: tf.Tensor;
  logVariance: tf.Tensor;
  predXstart: tf.Tensor;
};

export interface PMeanVarianceOptions {
  /** Clip the x_0 prediction to [-1, 1] (ADM default true; DiT's sampler passes false). */
  clipDenoised?: boolean;
  /** Applied to the x_0 prediction before clipping. */
  denoisedFn?: (x: tf.Tensor) => tf.Tensor;
}

/** Noise for one step: given explicitly, or drawn from rng. */
export interface StepNoise {
  noise?: tf.Tensor;
  rng?: Rng;
}

export interface SampleLoopOptions extends PMeanVarianceOptions {
  /** x_T; drawn from the generator when absent. */
  noise?: tf.Tensor;
  /** Seed of the generator for x_T and every step's noise (or pass rng). */
  seed?: number;
  rng?: Rng;
  progress?: ProgressFn;
}

export type TrainingLossTerms = {
  /** Per-example loss [N]: mse (+ vb), or the bound for 'kl' losses. */
  loss: tf.Tensor1D;
  /** Per-example mean squared error on the prediction target [N] (MSE losses). */
  mse?: tf.Tensor1D;
  /** Per-example variational-bound term in bits per dim [N] (learned variance or KL losses). */
  vb?: tf.Tensor1D;
};

const LN2 = Math.log(2);

export class GaussianDiffusion {
  readonly modelMeanType: ModelMeanType;
  readonly modelVarType: ModelVarType;
  readonly lossType: LossType;
  readonly numTimesteps: number;
  readonly originalNumSteps: number;
  /** Respaced index -> original timestep passed to the model. */
  readonly timestepMap: Int32Array;
  /** float64 host constants (betas, alphas_cumprod, posterior coefficients, ...). */
  readonly arrays: ScheduleArrays;
  private readonly f32 = new Map<Float64Array, Float32Array>();
  private readonly oneMinusAlphasCumprod: Float64Array;
  private readonly sqrtAlphasCumprodPrev: Float64Array;
  private readonly ddimCache = new Map<number, { sigma: Float64Array; epsCoef: Float64Array }>();

  constructor(opts: GaussianDiffusionOptions) {
    this.modelMeanType = checkEnum('modelMeanType', opts.modelMeanType, ['epsilon', 'start_x']);
    this.modelVarType = checkEnum('modelVarType', opts.modelVarType, ['fixed_small', 'fixed_large', 'learned_range', 'learned']);
    this.lossType = checkEnum('lossType', opts.lossType, ['mse', 'rescaled_mse', 'kl', 'rescaled_kl']);
    this.arrays = computeScheduleArrays(opts.betas);
    this.numTimesteps = this.arrays.numTimesteps;
    this.timestepMap = opts.timestepMap
      ? Int32Array.from(opts.timestepMap)
      : Int32Array.from({ length: this.numTimesteps }, (_, i) => i);
    if (this.timestepMap.length !== this.numTimesteps) {
      throw new Error(`timestepMap has ${this.timestepMap.length} entries for ${this.numTimesteps} steps`);
    }
    this.originalNumSteps = opts.originalNumSteps ?? this.numTimesteps;
    if (this.timestepMap.some((v) => v < 0 || v >= this.originalNumSteps)) {
      throw new Error(`timestepMap points outside the original ${this.originalNumSteps} steps`);
    }
    this.oneMinusAlphasCumprod = this.arrays.alphasCumprod.map((v) => 1 - v);
    this.sqrtAlphasCumprodPrev = this.arrays.alphasCumprodPrev.map((v) => Math.sqrt(v));
  }

  get learnSigma(): boolean {
    return this.modelVarType === 'learned_range' || this.modelVarType === 'learned';
  }

  /** Uniform timestep sampling for training: [n] indices in [0, numTimesteps). */
  sampleTimesteps(rng: Rng, n: number): Int32Array {
    const t = new Int32Array(n);
    for (let i = 0; i < n; i++) t[i] = rng.int(this.numTimesteps);
    return t;
  }

  /** The model seen through this process: respaced indices -> original timesteps (rescale_timesteps=False). */
  wrapModel(model: ModelFn): ModelFn {
    return (x, t) => tf.tidy(() => model(x, tf.gather(tf.tensor1d(this.timestepMap, 'int32'), tf.cast(t, 'int32'))));
  }

  /** q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) (DDPM eq. 4). */
  qMeanVariance(xStart: tf.Tensor, t: Timesteps): { mean: tf.Tensor; variance: tf.Tensor; logVariance: tf.Tensor } {
    return tf.tidy(() => {
      const r = xStart.rank;
      const a = this.arrays;
      return {
        mean: this.extract(a.sqrtAlphasCumprod, t, r).mul(xStart),
        variance: this.extract(this.oneMinusAlphasCumprod, t, r).mul(tf.onesLike(xStart)),
        logVariance: this.extract(a.logOneMinusAlphasCumprod, t, r).mul(tf.onesLike(xStart)),
      };
    });
  }

  /** x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (DDPM eq. 4 reparametrised). */
  qSample(xStart: tf.Tensor, t: Timesteps, noise: tf.Tensor): tf.Tensor {
    assertSameShape(xStart, noise, 'qSample: x_start and noise');
    return tf.tidy(() => {
      const r = xStart.rank;
      return this.extract(this.arrays.sqrtAlphasCumprod, t, r)
        .mul(xStart)
        .add(this.extract(this.arrays.sqrtOneMinusAlphasCumprod, t, r).mul(noise));
    });
  }

  /** q(x_{t-1} | x_t, x_0) = N(mu~_t, beta~_t I) (DDPM eqs. 6-7). */
  qPosteriorMeanVariance(
    xStart: tf.Tensor,
    xT: tf.Tensor,
    t: Timesteps,
  ): { mean: tf.Tensor; variance: tf.Tensor; logVarianceClipped: tf.Tensor } {
    assertSameShape(xStart, xT, 'qPosteriorMeanVariance: x_start and x_t');
    return tf.tidy(() => {
      const r = xT.rank;
      const a = this.arrays;
      const ones = tf.onesLike(xT);
      return {
        mean: this.extract(a.posteriorMeanCoef1, t, r).mul(xStart).add(this.extract(a.posteriorMeanCoef2, t, r).mul(xT)),
        variance: this.extract(a.posteriorVariance, t, r).mul(ones),
        logVarianceClipped: this.extract(a.posteriorLogVarianceClipped, t, r).mul(ones),
      };
    });
  }

  /** x_0 = sqrt(1/abar_t) x_t - sqrt(1/abar_t - 1) eps. */
  predictXstartFromEps(xT: tf.Tensor, t: Timesteps, eps: tf.Tensor): tf.Tensor {
    assertSameShape(xT, eps, 'predictXstartFromEps: x_t and eps');
    return tf.tidy(() => {
      const r = xT.rank;
      return this.extract(this.arrays.sqrtRecipAlphasCumprod, t, r)
        .mul(xT)
        .sub(this.extract(this.arrays.sqrtRecipm1AlphasCumprod, t, r).mul(eps));
    });
  }

  predictEpsFromXstart(xT: tf.Tensor, t: Timesteps, predXstart: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const r = xT.rank;
      return this.extract(this.arrays.sqrtRecipAlphasCumprod, t, r)
        .mul(xT)
        .sub(predXstart)
        .div(this.extract(this.arrays.sqrtRecipm1AlphasCumprod, t, r));
    });
  }

  /** p(x_{t-1} | x_t): runs the (wrapped) model, then pMeanVarianceFromOutput. */
  pMeanVariance(model: ModelFn, x: tf.Tensor, t: Timesteps, opts: PMeanVarianceOptions = {}): MeanVariance {
    return tf.tidy(() => {
      const out = this.wrapModel(model)(x, toIntTensor(t));
      return this.pMeanVarianceFromOutput(out, x, t, opts);
    });
  }

  /**
   * p(x_{t-1} | x_t) from a model output already computed: mean = mu~_t(x_0-hat, x_t),
   * variance per modelVarType (LEARNED_RANGE: IDDPM eq. 15 with v = (out_var + 1) / 2).
   */
  pMeanVarianceFromOutput(output: tf.Tensor, x: tf.Tensor, t: Timesteps, opts: PMeanVarianceOptions = {}): MeanVariance {
    const clipDenoised = opts.clipDenoised ?? true;
    const C = x.shape[1] as number;
    this.checkOutput(output, x);
    return tf.tidy((): MeanVariance => {
      const r = x.rank;
      const a = this.arrays;
      let meanOut = output;
      let variance: tf.Tensor;
      let logVariance: tf.Tensor;
      if (this.learnSigma) {
        const [m, v] = tf.split(output, [C, C], 1);
        meanOut = m;
        if (this.modelVarType === 'learned') {
          logVariance = v;
        } else {
          const minLog = this.extract(a.posteriorLogVarianceClipped, t, r);
          const maxLog = this.extract(a.logBetas, t, r);
          const frac = v.add(1).div(2);
          logVariance = frac.mul(maxLog).add(tf.scalar(1).sub(frac).mul(minLog));
        }
        variance = tf.exp(logVariance);
      } else {
        const ones = tf.onesLike(x);
        const small = this.modelVarType === 'fixed_small';
        variance = this.extract(small ? a.posteriorVariance : a.fixedLargeVariance, t, r).mul(ones);
        logVariance = this.extract(small ? a.posteriorLogVarianceClipped : a.fixedLargeLogVariance, t, r).mul(ones);
      }
      const processXstart = (x0: tf.Tensor): tf.Tensor => {
        let y = opts.denoisedFn ? opts.denoisedFn(x0) : x0;
        if (clipDenoised) y = tf.clipByValue(y, -1, 1);
        return y;
      };
      const predXstart =
        this.modelMeanType === 'start_x' ? processXstart(meanOut) : processXstart(this.predictXstartFromEps(x, t, meanOut));
      const { mean } = this.qPosteriorMeanVariance(predXstart, x, t);
      return { mean, variance, logVariance, predXstart };
    });
  }

  /** One ancestral step x_t -> x_{t-1} (DDPM Algorithm 2); no noise where t == 0. */
  pSample(
    model: ModelFn,
    x: tf.Tensor,
    t: Timesteps,
    opts: PMeanVarianceOptions & StepNoise = {},
  ): { sample: tf.Tensor; predXstart: tf.Tensor } {
    return tf.tidy(() => {
      const out = this.pMeanVariance(model, x, t, opts);
      const noise = stepNoise(opts, x.shape, 'pSample');
      const mask = nonzeroMask(t, x.rank);
      const sample = out.mean.add(mask.mul(tf.exp(out.logVariance.mul(0.5))).mul(noise));
      return { sample, predXstart: out.predXstart };
    });
  }

  /**
   * One DDIM step (DDIM eq. 12): x_{t-1} = sqrt(abar_{t-1}) x_0-hat + sqrt(1 - abar_{t-1} - sigma^2) eps-hat + sigma z,
   * sigma = eta sqrt((1 - abar_{t-1}) / (1 - abar_t)) sqrt(1 - abar_t / abar_{t-1}).
   */
  ddimSample(
    model: ModelFn,
    x: tf.Tensor,
    t: Timesteps,
    opts: PMeanVarianceOptions & StepNoise & { eta?: number } = {},
  ): { sample: tf.Tensor; predXstart: tf.Tensor } {
    const eta = opts.eta ?? 0;
    return tf.tidy(() => {
      const out = this.pMeanVariance(model, x, t, opts);
      const eps = this.predictEpsFromXstart(x, t, out.predXstart);
      const { sigma, epsCoef } = this.ddimCoefficients(eta);
      const r = x.rank;
      const meanPred = out.predXstart
        .mul(this.extract(this.sqrtAlphasCumprodPrev, t, r))
        .add(this.extract(epsCoef, t, r).mul(eps));
      if (eta === 0) return { sample: meanPred, predXstart: out.predXstart };
      const noise = stepNoise(opts, x.shape, 'ddimSample');
      const sample = meanPred.add(nonzeroMask(t, r).mul(this.extract(sigma, t, r)).mul(noise));
      return { sample, predXstart: out.predXstart };
    });
  }

  /** DDIM's sigma_t(eta) and sqrt(1 - abar_{t-1} - sigma_t^2), per step, in float64. */
  ddimCoefficients(eta: number): { sigma: Float64Array; epsCoef: Float64Array } {
    const cached = this.ddimCache.get(eta);
    if (cached) return cached;
    const a = this.arrays;
    const T = this.numTimesteps;
    const sigma = new Float64Array(T);
    const epsCoef = new Float64Array(T);
    for (let i = 0; i < T; i++) {
      const ab = a.alphasCumprod[i];
      const abPrev = a.alphasCumprodPrev[i];
      sigma[i] = eta * Math.sqrt((1 - abPrev) / (1 - ab)) * Math.sqrt(1 - ab / abPrev);
      epsCoef[i] = Math.sqrt(Math.max(0, 1 - abPrev - sigma[i] * sigma[i]));
    }
    const coefs = { sigma, epsCoef };
    this.ddimCache.set(eta, coefs);
    return coefs;
  }

  /** Ancestral sampling over every step of this process, from x_T ~ N(0, I) to x_0. */
  pSampleLoop(model: ModelFn, shape: number[], opts: SampleLoopOptions = {}): tf.Tensor {
    const { clipDenoised, denoisedFn } = opts;
    return this.sampleLoop(shape, opts, 'pSampleLoop', (x, t, rng) =>
      this.pSample(model, x, t, { clipDenoised, denoisedFn, noise: drawNormal(rng, shape) }).sample,
    );
  }

  /** DDIM sampling (eta = 0: deterministic given x_T) over every step of this process. */
  ddimSampleLoop(model: ModelFn, shape: number[], opts: SampleLoopOptions & { eta?: number } = {}): tf.Tensor {
    const { clipDenoised, denoisedFn } = opts;
    const eta = opts.eta ?? 0;
    return this.sampleLoop(shape, opts, 'ddimSampleLoop', (x, t, rng) =>
      this.ddimSample(model, x, t, { clipDenoised, denoisedFn, eta, noise: eta > 0 ? drawNormal(rng, shape) : undefined }).sample,
    );
  }

  /**
   * One term of the variational bound in bits per dim (IDDPM eqs. 4-6): KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t))
   * for t > 0, the discretised decoder NLL -log p(x_0|x_1) at t == 0. Takes the model output directly.
   */
  vbTermsBpdFromOutput(
    output: tf.Tensor,
    xStart: tf.Tensor,
    xT: tf.Tensor,
    t: Timesteps,
    opts: { clipDenoised?: boolean } = {},
  ): { output: tf.Tensor1D; predXstart: tf.Tensor } {
    return tf.tidy(() => {
      const truth = this.qPosteriorMeanVariance(xStart, xT, t);
      const out = this.pMeanVarianceFromOutput(output, xT, t, { clipDenoised: opts.clipDenoised ?? true });
      const kl = () => meanFlat(normalKl(truth.mean, truth.logVarianceClipped, out.mean, out.logVariance)).div(LN2) as tf.Tensor1D;
      const decoderNll = () => meanFlat(discretizedGaussianLogLikelihood(xStart, out.mean, out.logVariance.mul(0.5)))
        .neg()
        .div(LN2) as tf.Tensor1D;
      // Host timesteps say which term each example takes: a batch without t == 0 (the usual
      // training batch) skips the decoder NLL, one with only t == 0 skips the KL. Same values
      // and gradients as computing both and selecting.
      const host = isHost(t) ? Array.from(t) : null;
      const zeros = host ? host.filter((v) => v === 0).length : -1;
      const vb = zeros === 0 ? kl() : zeros === host?.length ? decoderNll() : tf.where(isZero(t), decoderNll(), kl()) as tf.Tensor1D;
      return { output: vb, predXstart: out.predXstart };
    });
  }

  /** vbTermsBpdFromOutput with the (wrapped) model run on x_t. */
  vbTermsBpd(
    model: ModelFn,
    xStart: tf.Tensor,
    xT: tf.Tensor,
    t: Timesteps,
    opts: { clipDenoised?: boolean } = {},
  ): { output: tf.Tensor1D; predXstart: tf.Tensor } {
    return tf.tidy(() => this.vbTermsBpdFromOutput(this.wrapModel(model)(xT, toIntTensor(t)), xStart, xT, t, opts));
  }

  /**
   * training_losses for one batch of timesteps. MSE losses: mean_flat((target - out)^2) with
   * target eps (or x_0); with a learned variance, plus the vb term computed on
   * concat([stopGradient(mean part), variance part]) so the bound trains only the variance
   * (IDDPM L_hybrid, sec. 3.1; DiT sec. 3). 'rescaled_mse' multiplies vb by numTimesteps / 1000.
   * Noise is given (opts.noise) or drawn from opts.rng.
   */
  trainingLosses(model: ModelFn, xStart: tf.Tensor, t: Timesteps, opts: StepNoise = {}): TrainingLossTerms {
    return tf.tidy((): TrainingLossTerms => {
      const noise = stepNoise(opts, xStart.shape, 'trainingLosses');
      const xT = this.qSample(xStart, t, noise);
      const wrapped = this.wrapModel(model);
      if (this.lossType === 'kl' || this.lossType === 'rescaled_kl') {
        let vb = this.vbTermsBpd(model, xStart, xT, t, { clipDenoised: false }).output;
        if (this.lossType === 'rescaled_kl') vb = vb.mul<tf.Tensor1D>(this.numTimesteps);
        return { loss: vb, vb };
      }
      const output = wrapped(xT, toIntTensor(t));
      this.checkOutput(output, xT);
      const C = xT.shape[1] as number;
      let meanOut = output;
      let vb: tf.Tensor1D | undefined;
      if (this.learnSigma) {
        const [m, v] = tf.split(output, [C, C], 1);
        meanOut = m;
        const frozen = tf.concat([stopGradient(m), v], 1);
        vb = this.vbTermsBpdFromOutput(frozen, xStart, xT, t, { clipDenoised: false }).output;
        if (this.lossType === 'rescaled_mse') vb = vb.mul<tf.Tensor1D>(this.numTimesteps / 1000);
      }
      const target = this.modelMeanType === 'start_x' ? xStart : noise;
      const mse = meanFlat(target.sub(meanOut).square());
      const loss = vb ? mse.add<tf.Tensor1D>(vb) : mse;
      return vb ? { loss, mse, vb } : { loss, mse };
    });
  }

  /** Per-example constant arr[t] as a float32 tensor of shape [N, 1, ..., 1] (rank r). */
  extract(arr: Float64Array, t: Timesteps, rank: number): tf.Tensor {
    const tail = new Array<number>(Math.max(0, rank - 1)).fill(1);
    if (!isHost(t)) {
      return tf.tidy(() => tf.gather(tf.tensor1d(this.asF32(arr)), tf.cast(t, 'int32')).reshape([-1, ...tail]));
    }
    const out = new Float32Array(t.length);
    for (let i = 0; i < t.length; i++) {
      const ti = t[i];
      if (!Number.isInteger(ti) || ti < 0 || ti >= arr.length) {
        throw new Error(`timestep ${ti} is outside [0, ${arr.length}) of this process`);
      }
      out[i] = arr[ti];
    }
    return tf.tensor(out, [t.length, ...tail]);
  }

  private asF32(arr: Float64Array): Float32Array {
    let v = this.f32.get(arr);
    if (!v) {
      v = Float32Array.from(arr);
      this.f32.set(arr, v);
    }
    return v;
  }

  private checkOutput(output: tf.Tensor, x: tf.Tensor): void {
    const C = x.shape[1] as number;
    const want = [x.shape[0], this.learnSigma ? 2 * C : C, ...x.shape.slice(2)];
    if (output.rank !== x.rank || output.shape.some((d, i) => d !== want[i])) {
      throw new Error(
        `model output has shape [${output.shape}], expected [${want}] (${this.learnSigma ? '2C channels: learned variance' : 'C channels: fixed variance'})`,
      );
    }
  }

  private sampleLoop(
    shape: number[],
    opts: SampleLoopOptions,
    name: string,
    step: (x: tf.Tensor, t: Int32Array, rng: Rng) => tf.Tensor,
  ): tf.Tensor {
    if (opts.rng === undefined && opts.seed === undefined) throw new Error(`${name}: pass a seed (or rng) so sampling is reproducible`);
    const rng = opts.rng ?? new Rng(opts.seed as number);
    if (opts.noise) assertShape(opts.noise, shape, `${name}: noise`);
    let img = opts.noise ?? drawNormal(rng, shape);
    const total = this.numTimesteps;
    for (let k = 0; k < total; k++) {
      const i = total - 1 - k;
      const t = new Int32Array(shape[0]).fill(i);
      const prev = img;
      img = tf.tidy(() => step(prev, t, rng));
      if (prev !== opts.noise) prev.dispose();
      opts.progress?.(k + 1, total);
    }
    // The caller owns the result; never hand back their own noise tensor.
    return img === opts.noise ? img.clone() : img;
  }
}

function checkEnum<T extends string>(name: string, v: T, allowed: readonly T[]): T {
  if (!allowed.includes(v)) throw new Error(`${name} '${String(v)}' is not one of ${allowed.join(', ')}`);
  return v;
}

/** Host timesteps (plain array or typed array) rather than a tensor. */
function isHost(t: Timesteps): t is ArrayLike<number> {
  return Array.isArray(t) || ArrayBuffer.isView(t);
}

function toIntTensor(t: Timesteps): tf.Tensor {
  return isHost(t) ? tf.tensor1d(Int32Array.from(t), 'int32') : tf.cast(t, 'int32');
}

/** [N, 1, ...] float mask: 1 where t != 0. */
function nonzeroMask(t: Timesteps, rank: number): tf.Tensor {
  const tail = new Array<number>(Math.max(0, rank - 1)).fill(1);
  if (!isHost(t)) return tf.tidy(() => tf.cast(tf.notEqual(t, 0), 'float32').reshape([-1, ...tail]));
  return tf.tensor(Float32Array.from(t, (v) => (v !== 0 ? 1 : 0)), [t.length, ...tail]);
}

/** [N] bool: t == 0. */
function isZero(t: Timesteps): tf.Tensor {
  if (!isHost(t)) return tf.equal(tf.cast(t, 'int32'), 0);
  return tf.tensor1d(Array.from(t, (v) => v === 0), 'bool');
}

function drawNormal(rng: Rng, shape: number[]): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(rng.fillNormal(new Float32Array(n)), shape);
}

function stepNoise(opts: StepNoise, shape: number[], name: string): tf.Tensor {
  if (opts.noise) {
    assertShape(opts.noise, shape, `${name}: noise`);
    return opts.noise;
  }
  if (opts.rng) return drawNormal(opts.rng, shape);
  throw new Error(`${name}: pass noise or rng`);
}

function assertShape(x: tf.Tensor, shape: number[], what: string): void {
  if (x.rank !== shape.length || x.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`${what} has shape [${x.shape}], expected [${shape}]`);
  }
}

function assertSameShape(a: tf.Tensor, b: tf.Tensor, what: string): void {
  assertShape(b, a.shape, what);
}
