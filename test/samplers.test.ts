// The sampler registry, the one way of saying how many sampling steps, and the diffusion
// settings that travel with a checkpoint (pure functions; the end-to-end checks are in sample.test.ts).
import { before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend';
import {
  DIT_DIFFUSION, ModelFn, SAMPLER_NAMES, SAMPLERS, checkDiffusionSettings, checkSampler, checkSamplingRequest, createDiffusion,
  resolveDiffusion, samplingTimesteps, spaceTimesteps, spacedDiffusion, trainingDiffusion,
} from '../lib/diffusion';
import { repoRoot } from '../lib/util/paths';
import { tinyRun } from './helpers';

const FX: any = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'test', 'fixtures', 'diffusion', 'diffusion.json'), 'utf8'));

before(async () => {
  await initBackend({ quiet: true });
});

describe('sampler registry', () => {
  test('names come from the registry; unknown names are refused where they were given', () => {
    assert.deepEqual(SAMPLER_NAMES, ['ddpm', 'ddim']);
    assert.equal(checkSampler('ddim', 'x'), 'ddim');
    assert.throws(() => checkSampler('euler', 'mini.json.eval.sampler'), /^Error: mini\.json\.eval\.sampler: unknown sampler 'euler'; use ddpm or ddim$/);
    // Keys of Object.prototype are not samplers.
    assert.throws(() => checkSampler('toString', '--sampler'), /unknown sampler 'toString'/);
    assert.throws(() => checkSampler(undefined, '--sampler'), /unknown sampler 'undefined'/);
  });

  test('steps are spaced by DiT sample.py\'s rule for both samplers (golden ADM space_timesteps)', () => {
    for (const name of SAMPLER_NAMES) {
      assert.deepEqual(samplingTimesteps(name, 1000, { steps: 250 }), FX.respacing['250'].timesteps, name);
      assert.deepEqual(samplingTimesteps(name, 1000, { steps: 25 }), FX.respacing['25'].timesteps, name);
      assert.deepEqual(SAMPLERS[name].respace(1000, 25), FX.respacing['25'].timesteps, name);
    }
  });

  test('explicit respacing: section counts under any sampler, ddimN under ddim only', () => {
    for (const name of SAMPLER_NAMES) {
      assert.deepEqual(samplingTimesteps(name, 1000, { respacing: '10,15,20' }), FX.respacing['10,15,20'].timesteps);
      assert.deepEqual(samplingTimesteps(name, 1000, { respacing: [10, 15, 20] }), FX.respacing['10,15,20'].timesteps);
    }
    assert.deepEqual(samplingTimesteps('ddim', 1000, { respacing: 'ddim50' }), FX.respacing.ddim50.timesteps);
    assert.throws(() => samplingTimesteps('ddim', 1000, { respacing: 'ddim37' }), /cannot create exactly 37 steps from 1000/);
  });

  test('contradictory requests are refused with the conflict named', () => {
    assert.throws(() => checkSamplingRequest('ddpm', { respacing: 'ddim50' }),
      /respacing 'ddim50' is the ddim sampler's own form; it contradicts sampler 'ddpm' \(give steps, or section counts such as '50'\)/);
    assert.throws(() => checkSamplingRequest('ddim', { steps: 37, respacing: 'ddim37' }), /steps 37 and respacing 'ddim37' both say how many sampling steps: give one/);
    assert.throws(() => checkSamplingRequest('ddpm', { steps: 50, respacing: '50' }), /both say how many sampling steps/);
    assert.throws(() => checkSamplingRequest('ddpm', { steps: 10, eta: 0.5 }), /eta is a parameter of ddim; sampler 'ddpm' does not take it/);
    assert.throws(() => checkSamplingRequest('ddpm', { respacing: 'euler10' }), /no sampler names a respacing 'euler'/);
    assert.throws(() => checkSamplingRequest('ddpm', {}), /steps must be a positive integer, got undefined/);
    assert.throws(() => checkSamplingRequest('ddim', { steps: 0 }), /steps must be a positive integer, got 0/);
    assert.throws(() => checkSamplingRequest('heun' as any, { steps: 5 }), /unknown sampler 'heun'/);
    checkSamplingRequest('ddim', { steps: 10, eta: 0.5 });
    checkSamplingRequest('ddpm', { steps: 10, eta: undefined, respacing: undefined });
  });

  test('each entry walks the reverse process it names', () => {
    const C = 2;
    const shape = [2, C, 2, 2];
    // eps = 0.5 x, variance channels 0 (halfway between beta~ and beta).
    const model: ModelFn = (x) => tf.tidy(() => tf.concat([x.mul(0.5), tf.zerosLike(x)], 1));
    const d = createDiffusion({ timestepRespacing: '6' });
    const run = (f: () => tf.Tensor) => {
      const t = f();
      const v = Array.from(t.dataSync());
      t.dispose();
      return v;
    };
    const o = { seed: 3, clipDenoised: false };
    const ddpm = run(() => SAMPLERS.ddpm.loop(d, model, shape, o));
    assert.deepEqual(ddpm, run(() => d.pSampleLoop(model, shape, o)));
    assert.deepEqual(run(() => SAMPLERS.ddim.loop(d, model, shape, { ...o, eta: 0.5 })), run(() => d.ddimSampleLoop(model, shape, { ...o, eta: 0.5 })));
    assert.notDeepEqual(run(() => SAMPLERS.ddim.loop(d, model, shape, o)), ddpm);
  });
});

describe('diffusion settings', () => {
  const cosine = { diffusionSteps: 1000, noiseSchedule: 'cosine', learnSigma: true, predictXstart: false } as const;

  test('a recorded value wins only when nothing contradicts it; the message names both values', () => {
    assert.deepEqual(resolveDiffusion(cosine, {}, 'run.safetensors'), cosine);
    assert.deepEqual(resolveDiffusion(cosine, { noiseSchedule: 'cosine', diffusionSteps: 1000 }, 'run.safetensors'), cosine);
    assert.throws(() => resolveDiffusion(cosine, { noiseSchedule: 'linear' }, 'run.safetensors'),
      /^Error: run\.safetensors was trained with noise schedule 'cosine', but 'linear' was requested$/);
    assert.throws(() => resolveDiffusion(cosine, { diffusionSteps: 500 }, 'run.safetensors'), /diffusion steps 1000, but 500 was requested/);
    assert.throws(() => resolveDiffusion(cosine, { predictXstart: true }, 'f'), /prediction epsilon, but x_0 was requested/);
    assert.throws(() => resolveDiffusion(cosine, { learnSigma: false }, 'f'), /learned sigma true, but false was requested/);
  });

  test('bare weights: DiT\'s published settings, their own learnSigma, and what the request fills in', () => {
    assert.deepEqual(DIT_DIFFUSION, { diffusionSteps: 1000, noiseSchedule: 'linear', learnSigma: true, predictXstart: false });
    assert.deepEqual(resolveDiffusion({ learnSigma: false }, {}, 'w.pt'), { ...DIT_DIFFUSION, learnSigma: false });
    assert.deepEqual(resolveDiffusion({ learnSigma: true }, { noiseSchedule: 'cosine', diffusionSteps: 500, predictXstart: true }, 'w.pt'),
      { diffusionSteps: 500, noiseSchedule: 'cosine', learnSigma: true, predictXstart: true });
  });

  test('bad or missing values are errors', () => {
    assert.throws(() => resolveDiffusion({}, { noiseSchedule: 'quadratic' as any }, 'w.pt'), /requested diffusion: noise schedule must be linear or cosine, got "quadratic"/);
    assert.throws(() => resolveDiffusion({ diffusionSteps: 2.5 }, {}, 'run'), /run: diffusion steps must be a positive integer, got 2\.5/);
    assert.throws(() => checkDiffusionSettings({ diffusionSteps: 1000, learnSigma: true, predictXstart: false }, 'old.safetensors', true),
      /old\.safetensors does not record its noise schedule/);
  });

  test('a training run\'s settings, and the process they build', () => {
    const { options } = tinyRun({ noiseSchedule: 'cosine', diffusionSteps: 400 });
    const s = trainingDiffusion(options);
    assert.deepEqual(s, { diffusionSteps: 400, noiseSchedule: 'cosine', learnSigma: true, predictXstart: false });
    const d = spacedDiffusion(s, spaceTimesteps(400, [40]));
    const ref = createDiffusion({ diffusionSteps: 400, noiseSchedule: 'cosine', timestepRespacing: '40' });
    assert.deepEqual(Array.from(d.arrays.betas), Array.from(ref.arrays.betas));
    assert.deepEqual(Array.from(d.timestepMap), Array.from(ref.timestepMap));
    assert.equal(spacedDiffusion({ ...s, predictXstart: true }, [0, 1]).modelMeanType, 'start_x');
    assert.notDeepEqual(Array.from(spacedDiffusion({ ...s, noiseSchedule: 'linear' }, spaceTimesteps(400, [40])).arrays.betas), Array.from(d.arrays.betas));
  });
});
