// Gaussian diffusion against golden values from scripts/fixtures/make_diffusion_fixtures.py
// (a float64 numpy re-statement of ADM's gaussian_diffusion.py / respace.py).
import { before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend';
import { repoRoot } from '../lib/util/paths';
import { Rng } from '../lib/util/rng';
import {
  GaussianDiffusion,
  ModelFn,
  ModelMeanType,
  ModelVarType,
  LossType,
  classifierFreeGuidance,
  computeScheduleArrays,
  createDiffusion,
  getNamedBetaSchedule,
  respaceBetas,
  spaceTimesteps,
  stopGradient,
} from '../lib/diffusion';

const FX: any = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'test', 'fixtures', 'diffusion', 'diffusion.json'), 'utf8'));
const SHAPE: number[] = FX.shape;
const C: number = FX.C;

/** |a - e| <= rtol |e| elementwise (float64 host arrays). */
function closeF64(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rtol = 1e-6): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    assert.ok(Math.abs(a - e) <= rtol * Math.abs(e), `${what}[${i}]: got ${a}, expected ${e}`);
  }
}

/** float32 tensors: |a - e| <= rtol (|e| + atol-scale); atol guards values that cancel to ~0. */
function closeF32(actual: tf.Tensor, expected: ArrayLike<number>, what: string, rtol = 1e-4, atol = 1e-5): void {
  const a = actual.dataSync();
  assert.equal(a.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i];
    assert.ok(Math.abs(a[i] - e) <= rtol * Math.abs(e) + atol, `${what}[${i}]: got ${a[i]}, expected ${e}`);
  }
}

/** The fixture's analytic model: out[:, c] = sin(A_c x[:, c mod C] + B_c t/1000 + 0.3 y + P_c), 2C channels. */
function analyticModel(x: tf.Tensor, t: tf.Tensor, y: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const n = x.shape[0] as number;
    const tail = new Array<number>(x.rank - 2).fill(1);
    const tf32 = tf.cast(t, 'float32').reshape([n, 1, ...tail]);
    const yf = tf.cast(y, 'float32').reshape([n, 1, ...tail]);
    const chans = tf.split(x, C, 1);
    const out: tf.Tensor[] = [];
    for (let c = 0; c < 2 * C; c++) {
      const a = 0.7 + 0.15 * c;
      const b = 1.3 - 0.1 * c;
      const p = 0.2 * c - 0.5;
      out.push(tf.sin(chans[c % C].mul(a).add(tf32.mul(b / 1000)).add(yf.mul(0.3)).add(p)));
    }
    return tf.concat(out, 1);
  });
}

function modelFor(varType: ModelVarType, y: number[]): ModelFn {
  return (x, t) =>
    tf.tidy(() => {
      const out = analyticModel(x, t, tf.tensor1d(y, 'int32'));
      return varType === 'learned_range' ? out : out.slice([0, 0], [-1, C]);
    });
}

function diffusionFor(respacing: string, meanType: ModelMeanType, varType: ModelVarType, lossType: LossType): GaussianDiffusion {
  const base = getNamedBetaSchedule('linear', 1000);
  const { betas, timestepMap } = respaceBetas(computeScheduleArrays(base).alphasCumprod, spaceTimesteps(1000, respacing || [1000]));
  return new GaussianDiffusion({ betas, timestepMap, originalNumSteps: 1000, modelMeanType: meanType, modelVarType: varType, lossType });
}

const T = (a: number[], shape = SHAPE) => tf.tensor(a, shape);

before(async () => {
  await initBackend({ quiet: true });
});

describe('schedules (float64, 1e-6 relative)', () => {
  const keys: Record<string, string> = {
    betas: 'betas',
    alphas_cumprod: 'alphasCumprod',
    alphas_cumprod_prev: 'alphasCumprodPrev',
    alphas_cumprod_next: 'alphasCumprodNext',
    sqrt_alphas_cumprod: 'sqrtAlphasCumprod',
    sqrt_one_minus_alphas_cumprod: 'sqrtOneMinusAlphasCumprod',
    log_one_minus_alphas_cumprod: 'logOneMinusAlphasCumprod',
    sqrt_recip_alphas_cumprod: 'sqrtRecipAlphasCumprod',
    sqrt_recipm1_alphas_cumprod: 'sqrtRecipm1AlphasCumprod',
    posterior_variance: 'posteriorVariance',
    posterior_log_variance_clipped: 'posteriorLogVarianceClipped',
    posterior_mean_coef1: 'posteriorMeanCoef1',
    posterior_mean_coef2: 'posteriorMeanCoef2',
  };
  for (const [label, s] of Object.entries<any>(FX.schedules)) {
    test(label, () => {
      const arrays: any = computeScheduleArrays(getNamedBetaSchedule(s.name, s.steps));
      for (const [py, ts] of Object.entries(keys)) {
        const got = (s.indices as number[]).map((i) => arrays[ts][i] as number);
        closeF64(got, s.arrays[py], `${label}.${py}`);
        assert.ok(arrays[ts] instanceof Float64Array);
      }
    });
  }

  test('fixed-large variance is append(posterior_variance[1], betas[1:]); log at t=0 clipped', () => {
    const a = computeScheduleArrays(getNamedBetaSchedule('linear', 1000));
    assert.equal(a.fixedLargeVariance[0], a.posteriorVariance[1]);
    assert.equal(a.fixedLargeVariance[5], a.betas[5]);
    assert.equal(a.posteriorLogVarianceClipped[0], Math.log(a.posteriorVariance[1]));
    assert.equal(a.posteriorVariance[0], 0);
  });

  test('bad schedules raise', () => {
    assert.throws(() => getNamedBetaSchedule('quadratic' as any, 10), /unknown beta schedule 'quadratic'/);
    assert.throws(() => getNamedBetaSchedule('linear', 0), /positive integer/);
    assert.throws(() => computeScheduleArrays([0.1, 0]), /betas must lie in \(0, 1\]/);
  });
});

describe('timestep respacing', () => {
  for (const [spec, r] of Object.entries<any>(FX.respacing)) {
    test(`space_timesteps ${spec}`, () => {
      const s = spec.includes(':') ? spec.split(':')[1] : spec;
      const kept = spaceTimesteps(r.num_timesteps, s);
      assert.deepEqual(kept, r.timesteps);
      if (r.betas) {
        const d = createDiffusion({ timestepRespacing: s });
        assert.deepEqual(Array.from(d.timestepMap), r.timesteps);
        assert.equal(d.numTimesteps, r.timesteps.length);
        assert.equal(d.originalNumSteps, 1000);
        closeF64(d.arrays.betas, r.betas, `betas(${s})`);
      }
    });
  }

  test('list form and the empty spec', () => {
    assert.deepEqual(spaceTimesteps(300, [10, 15, 20]), spaceTimesteps(300, '10,15,20'));
    const full = createDiffusion({ timestepRespacing: '' });
    assert.equal(full.numTimesteps, 1000);
    closeF64(full.arrays.betas, getNamedBetaSchedule('linear', 1000), 'unspaced betas', 1e-12);
  });

  test('bad specs raise clear errors', () => {
    // 7 is reachable on 1000 steps (stride 143); 37 and 49 are not.
    assert.throws(() => spaceTimesteps(1000, 'ddim37'), /'ddim37': cannot create exactly 37 steps from 1000 with an integer stride/);
    assert.throws(() => createDiffusion({ timestepRespacing: 'ddim49' }), /exactly 49 steps .*integer stride/);
    assert.throws(() => spaceTimesteps(100, 'ddim11'), /'ddim11': cannot create exactly 11 steps from 100/);
    assert.throws(() => spaceTimesteps(1000, '600,10'), /cannot divide section 0 of 500 steps into 600/);
    assert.throws(() => spaceTimesteps(100, '101'), /cannot divide section 0 of 100 steps into 101/);
    assert.throws(() => spaceTimesteps(1000, '25x'), /'25x' is not a step count/);
    assert.throws(() => spaceTimesteps(1000, 'ddim'), /'' is not a step count/);
    assert.throws(() => spaceTimesteps(1000, ''), /empty spec/);
    assert.throws(() => spaceTimesteps(1000, [2.5]), /non-negative integers/);
  });
});

describe('forward process and posterior (float32, 1e-4)', () => {
  test('q_sample and q_posterior_mean_variance', () => {
    const d = diffusionFor('', 'epsilon', 'learned_range', 'mse');
    const q = FX.q;
    tf.tidy(() => {
      closeF32(d.qSample(T(FX.x0), q.t, T(FX.noise)), q.q_sample, 'q_sample (host t)');
      closeF32(d.qSample(T(FX.x0), tf.tensor1d(q.t, 'int32'), T(FX.noise)), q.q_sample, 'q_sample (tensor t)');
      const p = d.qPosteriorMeanVariance(T(FX.x0), T(FX.x_noisy), q.t);
      closeF32(p.mean, q.post_mean, 'posterior mean');
      closeF32(p.variance, q.post_var, 'posterior variance', 1e-4, 0);
      closeF32(p.logVarianceClipped, q.post_logvar, 'posterior log variance');
    });
  });

  for (const c of FX.p_mean_variance) {
    test(`p_mean_variance ${c.mean_type} ${c.var_type} clip=${c.clip} (respaced ${c.respacing})`, () => {
      const d = diffusionFor(c.respacing, c.mean_type, c.var_type, 'mse');
      tf.tidy(() => {
        for (const t of [c.t, tf.tensor1d(c.t, 'int32')]) {
          const o = d.pMeanVariance(modelFor(c.var_type, FX.y), T(FX.x_noisy), t, { clipDenoised: c.clip });
          closeF32(o.mean, c.mean, 'mean');
          closeF32(o.variance, c.variance, 'variance', 1e-4, 0);
          closeF32(o.logVariance, c.log_variance, 'log_variance');
          closeF32(o.predXstart, c.pred_xstart, 'pred_xstart');
        }
      });
    });
  }

  test('a model output with the wrong channel count is a clear error', () => {
    const d = diffusionFor('', 'epsilon', 'learned_range', 'mse');
    tf.tidy(() => {
      assert.throws(() => d.pMeanVariance(modelFor('fixed_small', FX.y), T(FX.x_noisy), [0, 1, 2]), /expected \[3,8,2,2\].*learned variance/);
      assert.throws(() => d.qSample(T(FX.x0), [0, 1, 1000], T(FX.noise)), /timestep 1000 is outside \[0, 1000\)/);
    });
  });
});

describe('training losses (hybrid: mse + vb, bits per dim)', () => {
  for (const c of FX.losses) {
    test(`${c.loss_type} respacing='${c.respacing}' t=${c.t}`, () => {
      const d = diffusionFor(c.respacing, 'epsilon', 'learned_range', c.loss_type);
      tf.tidy(() => {
        const terms = d.trainingLosses(modelFor('learned_range', FX.y), T(FX.x0), tf.tensor1d(c.t, 'int32'), { noise: T(FX.noise) });
        closeF32(terms.mse!, c.mse, 'mse');
        closeF32(terms.vb!, c.vb, 'vb');
        closeF32(terms.loss, c.loss, 'loss');
        // Host timesteps give the same terms.
        const host = d.trainingLosses(modelFor('learned_range', FX.y), T(FX.x0), c.t, { noise: T(FX.noise) });
        closeF32(host.loss, c.loss, 'loss (host t)');
      });
    });
  }

  test('t = 0 uses the discretised decoder NLL, t > 0 the KL', () => {
    const c = FX.losses[1]; // t = [0, 0, 500]
    assert.deepEqual(c.t, [0, 0, 500]);
    assert.deepEqual([c.vb[0], c.vb[1], c.vb[2]], [c.nll_all[0], c.nll_all[1], c.kl_all[2]]);
    assert.notEqual(c.nll_all[2], c.kl_all[2]);
  });


  test('host timesteps skip the unused vb term: same values and gradients as computing both', () => {
    const d = diffusionFor('', 'epsilon', 'learned_range', 'mse');
    const out0 = T(FX.losses[0].model_output, [SHAPE[0], 2 * C, SHAPE[2], SHAPE[3]]);
    for (const t of [[1, 500, 999], [0, 0, 0]]) {
      // A tensor t takes the general path (both terms, then a select).
      const run = (tt: number[] | tf.Tensor) => tf.tidy(() => {
        const f = (o: tf.Tensor) => tf.sum(d.trainingLosses(() => o, T(FX.x0), tt, { noise: T(FX.noise) }).vb!);
        const vb = d.trainingLosses(() => out0, T(FX.x0), tt, { noise: T(FX.noise) }).vb!;
        return [Array.from(vb.dataSync()), Array.from(tf.grad(f)(out0).dataSync())];
      });
      const tt = tf.tensor1d(t, 'int32');
      const [vbT, gT] = run(tt);
      const [vbH, gH] = run(t);
      tt.dispose();
      assert.deepEqual(vbH, vbT, `vb, t = ${t}`);
      assert.deepEqual(gH, gT, `gradient, t = ${t}`);
      assert.ok(gH.some((v) => v !== 0), `the vb gradient is not trivially zero, t = ${t}`);
    }
    out0.dispose();
  });
  test('vb has no gradient into the mean channels; mse none into the variance channels', () => {
    const d = diffusionFor('', 'epsilon', 'learned_range', 'mse');
    const out0 = T(FX.losses[0].model_output, [SHAPE[0], 2 * C, SHAPE[2], SHAPE[3]]);
    const t = FX.losses[0].t as number[];
    const grad = (term: 'vb' | 'mse') =>
      tf.grad((o: tf.Tensor) => tf.sum(d.trainingLosses(() => o, T(FX.x0), t, { noise: T(FX.noise) })[term]!))(out0);
    const gVb = grad('vb');
    const gMse = grad('mse');
    const [vbMean, vbVar] = tf.split(gVb, 2, 1);
    const [mseMean, mseVar] = tf.split(gMse, 2, 1);
    assert.equal(tf.max(tf.abs(vbMean)).dataSync()[0], 0);
    assert.ok(tf.max(tf.abs(vbVar)).dataSync()[0] > 1e-3);
    assert.equal(tf.max(tf.abs(mseVar)).dataSync()[0], 0);
    assert.ok(tf.max(tf.abs(mseMean)).dataSync()[0] > 1e-3);
    tf.dispose([out0, gVb, gMse, vbMean, vbVar, mseMean, mseVar]);
    const x = tf.tensor([1, 2, 3]);
    const g = tf.grad((v: tf.Tensor) => tf.sum(stopGradient(v).mul(v)))(x);
    assert.deepEqual(Array.from(g.dataSync()), [1, 2, 3]);
    tf.dispose([x, g]);
  });

  test('uniform timestep sampling', () => {
    const d = createDiffusion({ timestepRespacing: '' });
    const t = d.sampleTimesteps(new Rng(3), 20000);
    let lo = 0;
    for (const v of t) {
      assert.ok(v >= 0 && v < 1000);
      if (v < 500) lo++;
    }
    assert.ok(Math.abs(lo / t.length - 0.5) < 0.02, `${lo}`);
    assert.deepEqual(Array.from(d.sampleTimesteps(new Rng(3), 5)), Array.from(t.slice(0, 5)));
  });
});

describe('sampler steps and guidance', () => {
  const condModel = (x: tf.Tensor, t: tf.Tensor, y: tf.Tensor) => analyticModel(x, t, y);
  for (const c of FX.steps) {
    test(`${c.sampler} ${c.respacing} eta=${c.eta} clip=${c.clip} guidance=${c.guidance}`, () => {
      const d = diffusionFor(c.respacing, 'epsilon', 'learned_range', 'mse');
      tf.tidy(() => {
        const y = tf.tensor1d(FX.y, 'int32');
        const model: ModelFn =
          c.guidance === null
            ? modelFor('learned_range', FX.y)
            : classifierFreeGuidance(condModel, {
                y,
                nullLabel: c.null_label,
                cfgScale: c.cfg_scale,
                channels: c.guidance === 'scale1' ? 'all' : c.guidance,
              });
        const tOrig = tf.tensor1d(c.t.map((i: number) => d.timestepMap[i]), 'int32');
        closeF32(model(T(FX.x_noisy), tOrig), c.model_output, 'model output');
        const opts = { noise: T(FX.step_noise), clipDenoised: c.clip };
        const r = c.sampler === 'ddpm' ? d.pSample(model, T(FX.x_noisy), c.t, opts) : d.ddimSample(model, T(FX.x_noisy), c.t, { ...opts, eta: c.eta });
        closeF32(r.sample, c.sample, 'sample');
        closeF32(r.predXstart, c.pred_xstart, 'pred_xstart');
      });
    });
  }

  test('guidance: one batched pass; cfgScale 1 skips the unconditional pass', () => {
    const calls: number[][] = [];
    const spy = (x: tf.Tensor, t: tf.Tensor, y: tf.Tensor) => {
      calls.push(Array.from(y.dataSync()));
      return analyticModel(x, t, y);
    };
    tf.tidy(() => {
      const x = T(FX.x_noisy);
      const t = tf.tensor1d([5, 6, 7], 'int32');
      classifierFreeGuidance(spy, { y: FX.y, nullLabel: 10, cfgScale: 4, channels: 'all' })(x, t);
      classifierFreeGuidance(spy, { y: FX.y, nullLabel: 10, cfgScale: 1, channels: 'first3' })(x, t);
      assert.deepEqual(calls, [[1, 3, 0, 10, 10, 10], [1, 3, 0]]);
      // 'first3' leaves channel 3 and the variance channels conditional.
      const g = classifierFreeGuidance(condModel, { y: FX.y, nullLabel: 10, cfgScale: 4, channels: 'first3' })(x, t);
      const cond = analyticModel(x, t, tf.tensor1d(FX.y, 'int32'));
      closeF32(g.slice([0, 3], [-1, 5]), cond.slice([0, 3], [-1, 5]).dataSync(), 'unguided channels', 0, 0);
      assert.throws(
        () => classifierFreeGuidance(condModel, { y: [1, 2], nullLabel: 10, cfgScale: 4, channels: 'all' })(x, t),
        /labels y have shape \[2\], expected \[3\]/,
      );
    });
  });
});

describe('sampling loops', () => {
  const shape = [2, C, 2, 2];
  const y = [4, 7];
  const cfg = classifierFreeGuidance((x, t, yy) => analyticModel(x, t, yy), { y, nullLabel: 10, cfgScale: 1.5, channels: 'first3' });

  test('deterministic given a seed; progress per step; no tensor leaks', () => {
    const d = createDiffusion({ timestepRespacing: '10' });
    const before = tf.memory().numTensors;
    const seen: Array<[number, number]> = [];
    const a = d.pSampleLoop(cfg, shape, { seed: 7, clipDenoised: false, progress: (s, n) => seen.push([s, n]) });
    const b = d.pSampleLoop(cfg, shape, { seed: 7, clipDenoised: false });
    const c = d.pSampleLoop(cfg, shape, { rng: new Rng(8), clipDenoised: false });
    assert.deepEqual(seen, Array.from({ length: 10 }, (_, i) => [i + 1, 10]));
    assert.deepEqual(Array.from(a.dataSync()), Array.from(b.dataSync()));
    assert.notDeepEqual(Array.from(a.dataSync()), Array.from(c.dataSync()));
    assert.ok(a.dataSync().every(Number.isFinite));
    tf.dispose([a, b, c]);
    assert.equal(tf.memory().numTensors, before, 'pSampleLoop leaked tensors');
  });

  test('DDIM loop: eta = 0 is a deterministic function of x_T; eta > 0 is seeded; no leaks', () => {
    const d = createDiffusion({ timestepRespacing: 'ddim10' });
    const noise = tf.randomNormal(shape, 0, 1, 'float32', 1);
    const before = tf.memory().numTensors;
    const a = d.ddimSampleLoop(cfg, shape, { noise, seed: 1, clipDenoised: false });
    const b = d.ddimSampleLoop(cfg, shape, { noise, seed: 2, clipDenoised: false });
    const e1 = d.ddimSampleLoop(cfg, shape, { seed: 3, eta: 1 });
    const e2 = d.ddimSampleLoop(cfg, shape, { seed: 3, eta: 1 });
    let steps = 0;
    const e3 = d.ddimSampleLoop(cfg, shape, { seed: 4, eta: 1, progress: () => steps++ });
    assert.deepEqual(Array.from(a.dataSync()), Array.from(b.dataSync()));
    assert.deepEqual(Array.from(e1.dataSync()), Array.from(e2.dataSync()));
    assert.notDeepEqual(Array.from(e1.dataSync()), Array.from(e3.dataSync()));
    assert.equal(steps, 10);
    assert.ok(!noise.isDisposed);
    tf.dispose([a, b, e1, e2, e3]);
    assert.equal(tf.memory().numTensors, before, 'ddimSampleLoop leaked tensors');
    noise.dispose();
  });

  test('training losses leave only their returned terms', () => {
    const d = createDiffusion({ timestepRespacing: '' });
    const x0 = T(FX.x0);
    const before = tf.memory().numTensors;
    const terms = d.trainingLosses(modelFor('learned_range', FX.y), x0, d.sampleTimesteps(new Rng(1), 3), { rng: new Rng(2) });
    assert.equal(tf.memory().numTensors, before + 3);
    tf.dispose([terms.loss, terms.mse!, terms.vb!]);
    assert.equal(tf.memory().numTensors, before);
    x0.dispose();
  });

  test('sampling needs a seed or rng', () => {
    const d = createDiffusion({ timestepRespacing: '5' });
    assert.throws(() => d.pSampleLoop(cfg, shape), /pass a seed \(or rng\)/);
  });
});

test('createDiffusion mirrors DiT defaults', () => {
  const d = createDiffusion({ timestepRespacing: '250' });
  assert.equal(d.modelMeanType, 'epsilon');
  assert.equal(d.modelVarType, 'learned_range');
  assert.equal(d.lossType, 'mse');
  assert.equal(d.numTimesteps, 250);
  assert.equal(createDiffusion({ learnSigma: false }).modelVarType, 'fixed_large');
  assert.equal(createDiffusion({ learnSigma: false, sigmaSmall: true }).modelVarType, 'fixed_small');
  assert.equal(createDiffusion({ rescaleLearnedSigmas: true }).lossType, 'rescaled_mse');
  assert.equal(createDiffusion({ useKl: true }).lossType, 'rescaled_kl');
  assert.equal(createDiffusion({ predictXstart: true }).modelMeanType, 'start_x');
});
