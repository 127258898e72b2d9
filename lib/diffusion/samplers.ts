// Samplers as small swappable pieces (the diffusers scheduler idea, as plain data): each
// says how it spaces `steps` sampling steps over the trained process and how it walks
// the reverse process. sampleDiT, `dit sample --sampler` and experiment configs take
// their choices from SAMPLERS; a new sampler is one more entry.
import type * as tf from '@tensorflow/tfjs-core';
import type { GaussianDiffusion, ModelFn, SampleLoopOptions } from './gaussian-diffusion';
import { spaceTimesteps } from './respace';

/** Parameters only some samplers take. */
export interface SamplerParams {
  /** DDIM eta (0: deterministic given x_T; 1: DDPM-like noise). */
  eta?: number;
}

export interface Sampler {
  /** One line for usage texts. */
  about: string;
  /** The original timesteps visited with `steps` sampling steps of a numTimesteps process. */
  respace(numTimesteps: number, steps: number): number[];
  /**
   * The named respacing form this sampler owns, if any: 'ddim' makes respacing 'ddimN'
   * (the DDIM paper's integer stride, ADM space_timesteps) mean something. Under any other
   * sampler the name contradicts the sampler and is refused.
   */
  respacingName?: string;
  /** Which SamplerParams it takes; any other one given is an error. */
  params: ReadonlyArray<keyof SamplerParams>;
  /** The reverse process over every step of d, from x_T to x_0. */
  loop(d: GaussianDiffusion, model: ModelFn, shape: number[], o: SampleLoopOptions & SamplerParams): tf.Tensor;
}

/** DiT sample.py's rule for DDPM and DDIM alike: create_diffusion(str(steps)), one section strided evenly. */
const evenly = (numTimesteps: number, steps: number): number[] => spaceTimesteps(numTimesteps, [steps]);

const REGISTRY = {
  ddpm: {
    about: 'ancestral sampling (DDPM Algorithm 2), the paper\'s sampler',
    respace: evenly,
    params: [],
    loop: (d, model, shape, o) => d.pSampleLoop(model, shape, o),
  },
  ddim: {
    about: 'DDIM (eq. 12); eta 0 (default) is deterministic given x_T',
    respace: evenly,
    respacingName: 'ddim',
    params: ['eta'],
    loop: (d, model, shape, o) => d.ddimSampleLoop(model, shape, o),
  },
} satisfies Record<string, Sampler>;

export type SamplerName = keyof typeof REGISTRY;
export const SAMPLERS: Readonly<Record<SamplerName, Sampler>> = REGISTRY;
export const SAMPLER_NAMES = Object.keys(SAMPLERS) as SamplerName[];

/** The sampler's name, checked; `where` names the setting in the message (e.g. 'mini.json.eval.sampler'). */
export function checkSampler(name: unknown, where: string): SamplerName {
  if (typeof name === 'string' && Object.prototype.hasOwnProperty.call(SAMPLERS, name)) return name as SamplerName;
  throw new Error(`${where}: unknown sampler '${String(name)}'; use ${SAMPLER_NAMES.join(' or ')}`);
}

/**
 * How many steps to sample with, said once: `steps`, spaced by the sampler's own rule, or
 * `respacing`, ADM section counts ("10,15,20" or [10, 15, 20]; "ddimN" under the ddim sampler).
 */
export interface SamplingRequest extends SamplerParams {
  steps?: number;
  respacing?: string | number[];
}

/** Refuses a request that says contradictory things; needs no model, so callers can check before loading one. */
export function checkSamplingRequest(name: SamplerName, r: SamplingRequest): void {
  const sampler = SAMPLERS[checkSampler(name, 'sampling')];
  const { steps, respacing } = r;
  if (steps !== undefined && respacing !== undefined) {
    throw new Error(`steps ${steps} and respacing '${respacing}' both say how many sampling steps: give one ` +
      `(steps: spaced by the sampler's rule; respacing: explicit section counts)`);
  }
  if (respacing === undefined && !(Number.isInteger(steps) && (steps as number) > 0)) {
    throw new Error(`steps must be a positive integer, got ${steps}`);
  }
  const spec = typeof respacing === 'string' ? respacing.trim() : '';
  const named = /^[a-z]+/i.exec(spec)?.[0];
  if (named !== undefined && named !== sampler.respacingName) {
    const owner = SAMPLER_NAMES.find((n) => SAMPLERS[n].respacingName === named);
    throw new Error(owner
      ? `respacing '${respacing}' is the ${owner} sampler's own form; it contradicts sampler '${name}' (give steps, or section counts such as '${spec.slice(named.length)}')`
      : `respacing '${respacing}': no sampler names a respacing '${named}'; give section counts such as '10,15,20'`);
  }
  for (const k of Object.keys(r) as Array<keyof SamplingRequest>) {
    if (k === 'steps' || k === 'respacing' || r[k] === undefined || sampler.params.includes(k)) continue;
    const takers = SAMPLER_NAMES.filter((n) => SAMPLERS[n].params.includes(k));
    throw new Error(`${k} is a parameter of ${takers.join(', ') || 'no sampler'}; sampler '${name}' does not take it`);
  }
}

/** The original timesteps a request visits on a numTimesteps process. */
export function samplingTimesteps(name: SamplerName, numTimesteps: number, r: SamplingRequest): number[] {
  checkSamplingRequest(name, r);
  return r.respacing !== undefined ? spaceTimesteps(numTimesteps, r.respacing) : SAMPLERS[name].respace(numTimesteps, r.steps as number);
}
