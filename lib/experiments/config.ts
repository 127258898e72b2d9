// Experiment configs: plain JSON files in experiments/ (presets smoke, quick, mini, paper).
// An experiment names its data, autoencoder, training and evaluation settings and a
// list of studies (the paper's figures); the sweep trains each (model, variant) cell
// once and evaluates it for every study that needs it.
import * as fs from 'fs';
import * as path from 'path';
import { SYNTHETIC_SIZES } from '../data/synthetic';
import type { GuidanceChannels } from '../diffusion/guidance';
import { configNames, DIT_CONFIG_FIELDS, ditConfig, DiTConfig, VARIANTS, Variant } from '../model/config';
import { SAMPLER_NAMES, SamplerName } from '../diffusion/samplers';
import { readJsonFile, repoRoot } from '../util/paths';
import {
  allOptional, bool, fileName, filePath, Infer, int, invalid, list, num, object, oneOf, optional, orNull, parseObject,
  refine, rngSeed, SchemaError, tagged, text, Value, withDefault,
} from '../util/schema';

// Each section is declared once, below: its keys' types, ranges, defaults and meanings.
// The exported types are inferred from these schemas; cross-key rules follow them.

/** The samplers eval.sampler may name: the sampler registry's (lib/diffusion/samplers.ts). */
const SAMPLERS: readonly SamplerName[] = SAMPLER_NAMES;

/** Length of the diffusion process the sweep trains (sweep.ts trainOptions): the most sampling steps. */
const DIFFUSION_STEPS = 1000;

const samplingSteps = (doc: string) => int(doc, { min: 1, max: DIFFUSION_STEPS });
const cfgScale = (doc: string) => num(doc, { min: 0 });

const DATA = tagged('kind', {
  /** The kit's procedural dataset (generated on demand). */
  synthetic: {
    size: oneOf(SYNTHETIC_SIZES, 'image side in pixels', 'synthetic image size'),
    num: int('number of images', { min: 1 }),
    seed: rngSeed('seed of the generated images'),
  },
  /** A shard folder made by `dit data pack` (an ImageNet-style folder, CIFAR-10, ADM npz). */
  shard: {
    path: filePath('the shard folder (relative to the kit root, or absolute)'),
    size: int('image side in pixels (the shard must hold this size)', { min: 1 }),
  },
}, 'the training images');

const AUTOENCODER = {
  kind: oneOf(['kl', 'identity'], "'kl': the kit's KL autoencoder (trained on the data); 'identity': pixel space", 'autoencoder kind'),
  factor: optional(oneOf([2, 4], 'downsampling of an autoencoder the kit trains', 'factor'), '2'),
  steps: optional(int('training steps of an autoencoder the kit trains', { min: 1 }), "the kit's recipe (DEFAULT_VAE_TRAIN)"),
  seed: optional(rngSeed('training seed of an autoencoder the kit trains'), '0'),
  weights: optional(filePath('use these weights (a folder or file from `dit vae train`) instead of training'), 'train one'),
};

// name and variant are not overridable: the cell names the model and its variant.
const { name: _name, variant: _variant, ...OVERRIDABLE } = DIT_CONFIG_FIELDS;
const MODEL_OVERRIDES = allOptional(OVERRIDABLE, "the named model's value");

const TRAIN = {
  steps: int('training steps', { min: 1 }),
  batchSize: int('images per step', { min: 1 }),
  lr: num('AdamW learning rate', { above: 0 }),
  emaDecay: num('EMA decay; 0.9999 (paper) is for 400K steps, mini runs want ~0.995', { min: 0, below: 1 }),
  emaWarmup: bool('EMA decay warm-up: min(decay, (1 + step) / (10 + step))'),
  seed: rngSeed('training seed (initialisation, data order, noise) of cells without their own'),
  ckptEvery: int('checkpoint interval in steps (evaluations happen at checkpoints)', { min: 1 }),
  flip: bool('horizontal-flip augmentation'),
  gradClip: orNull(num('clip of the global gradient norm', { above: 0 }), 'off, as the paper'),
  lrWarmup: optional(int('linear learning-rate warm-up in steps', { min: 0 }), 'none, as the paper'),
};

const EVAL = {
  atSteps: list(int('training step at which the EMA model is evaluated', { min: 1 }), 'training steps at which the EMA model is evaluated'),
  numSamples: int('samples per evaluation', { min: 1 }),
  sampler: oneOf(SAMPLERS, 'sampler of the evaluations', 'sampler'),
  samplingSteps: samplingSteps('sampling steps of the evaluations'),
  cfgScale: cfgScale('classifier-free guidance scale (1: none)'),
  guidanceChannels: oneOf<GuidanceChannels>(['first3', 'all'], 'channels classifier-free guidance applies to', 'guidance channels'),
  features: oneOf(['default', 'inception'], "FID features: 'default', the kit's CNN (not comparable with Inception FIDs); 'inception' needs weights", 'feature network'),
  refImages: int('reference statistics are computed on this many images', { min: 1 }),
  seed: rngSeed('seed of the sampling noise (and the bootstrap and validation draws)'),
  featureNetSteps: optional(int('train the default feature network for only this many steps (smoke and quick runs)', { min: 1 }), 'its full recipe'),
  refSeed: optional(
    rngSeed('reference images from the synthetic generator with this seed: the first refImages the reference set, the next the held-out images'),
    'the first refImages training images'),
  finalNumSamples: optional(int('samples at the final step', { min: 1 }), 'numSamples'),
  space: optional(
    oneOf(['study', 'study-contrast', 'features'], "FID space: 'study', z-scored [CNN pool || 8x8x3 pixel means] (eval/space.ts); 'study-contrast', the same || 4x4x3 pixel stds; 'features', the feature network alone", 'FID space'),
    "'features'"),
  bootstrap: optional(refine(int('bootstrap rounds of each FID standard error (fid_se)', { min: 0 }), '0 (none) or an integer >= 2', (n) => n !== 1), '0, no fid_se'),
  valLatents: optional(int('held-out latents of the validation loss (val_loss)', { min: 0 }), '0, no val_loss'),
};

const STUDY = {
  name: fileName("the paper figure it feeds: 'scaling', 'conditioning', 'sampling-compute', ..."),
  models: list(oneOf(configNames(), 'model name', 'model'), 'models of the study'),
  variants: list(oneOf(VARIANTS, 'block design', 'variant'), 'block designs of the study'),
  finalSamplingSteps: optional(list(samplingSteps('sampling steps'), 'extra sampling step counts at the final checkpoint (Fig. 10)'), 'none'),
  finalCfgScales: optional(list(cfgScale('guidance scale'), 'extra guidance scales at the final checkpoint'), 'none'),
  seeds: optional(list(rngSeed('training seed'), 'training seeds: a cell per seed; ids of seeds other than train.seed end in -seed<N>'), 'train.seed'),
};

const EXPERIMENT = {
  name: fileName('the experiment: results/<name>.csv, data/runs/<name>/'),
  description: withDefault(text('what the experiment is for'), ''),
  data: DATA,
  autoencoder: object(AUTOENCODER, 'the latent space DiT trains in'),
  modelOverrides: withDefault(object(MODEL_OVERRIDES, 'model config values applied to every named model (numClasses, inputSize, ...)'), {}),
  train: object(TRAIN, 'training of every cell'),
  eval: object(EVAL, 'evaluation of every cell'),
  studies: list(object(STUDY, 'a study'), "the studies (the paper's figures); a (model, variant, seed) cell is trained once for all that name it"),
};

export type DataSpec = Value<typeof DATA>;
export type AutoencoderSpec = Infer<typeof AUTOENCODER>;
export type ModelOverrides = Infer<typeof MODEL_OVERRIDES>;
export type TrainSpec = Infer<typeof TRAIN>;
export type EvalSpec = Infer<typeof EVAL>;
export type StudySpec = Infer<typeof STUDY>;
export type ExperimentConfig = Infer<typeof EXPERIMENT>;

/** Rules between keys (the schemas check each key alone). */
function checkExperiment(c: ExperimentConfig): void {
  const ae = c.autoencoder;
  if (ae.kind === 'identity') {
    const extra = Object.keys(ae).filter((k) => k !== 'kind');
    if (extra.length) invalid(`autoencoder.${extra[0]}`, "the 'identity' autoencoder takes no other keys (allowed: kind)");
  } else if (ae.weights !== undefined) {
    const extra = (['factor', 'steps', 'seed'] as const).find((k) => ae[k] !== undefined);
    if (extra) invalid(`autoencoder.${extra}`, 'does not apply to given weights (allowed with weights: kind, weights)');
  }
  const { steps, ckptEvery } = c.train;
  c.eval.atSteps.forEach((s, i) => {
    const where = `eval.atSteps[${i}]`;
    if (s > steps) invalid(where, `step ${s} is after the last training step ${steps}`);
    if (s % ckptEvery !== 0 && s !== steps) {
      invalid(where, `step ${s} is not a checkpoint step (ckptEvery ${ckptEvery}): a resumed run could not evaluate it (allowed: multiples of train.ckptEvery, and train.steps)`);
    }
  });
  const ev = c.eval;
  if (ev.refSeed !== undefined) {
    if (c.data.kind !== 'synthetic') invalid('eval.refSeed', "draws held-out images from the synthetic generator: needs data.kind 'synthetic'");
    else if (ev.refSeed === c.data.seed) invalid('eval.refSeed', `${ev.refSeed} is the training data's seed (allowed: any other seed)`);
  }
  if (ev.space !== undefined && ev.space !== 'features') {
    if (ev.features !== 'default') invalid('eval.space', `'${ev.space}' builds on the default CNN (needs eval.features 'default')`);
    if (ev.refSeed === undefined) invalid('eval.space', `'${ev.space}' needs held-out reference images (eval.refSeed)`);
  }
  const names = new Set<string>();
  c.studies.forEach((s, i) => {
    if (names.has(s.name)) invalid(`studies[${i}].name`, `'${s.name}' is already a study's name (allowed: a new name)`);
    names.add(s.name);
    s.models.forEach((m, j) => {
      for (const v of s.variants) {
        try {
          modelConfig(c, m, v);
        } catch (err) {
          invalid(`studies[${i}].models[${j}]`, `${m} (${v}) with modelOverrides: ${(err as Error).message}`);
        }
      }
    });
  });
}

/** Validates a parsed config and returns it typed; every error names the source, the key path and what is allowed. */
export function validateExperiment(raw: unknown, source = 'config'): ExperimentConfig {
  try {
    const c = parseObject(EXPERIMENT, raw, '');
    checkExperiment(c);
    return c;
  } catch (err) {
    throw err instanceof SchemaError ? new Error(`experiment config ${source}: ${err.message}`) : err;
  }
}

/** The DiT config of one cell of an experiment. */
export function modelConfig(e: ExperimentConfig, model: string, variant: Variant): DiTConfig {
  return ditConfig(model, { ...e.modelOverrides, variant });
}

export function experimentsDir(): string {
  return path.join(repoRoot(), 'experiments');
}

/** Loads a preset name ('smoke', 'mini', 'paper') or a path to a JSON file. */
export function loadExperiment(nameOrPath: string): ExperimentConfig {
  const file = nameOrPath.endsWith('.json') ? nameOrPath : path.join(experimentsDir(), `${nameOrPath}.json`);
  if (!fs.existsSync(file)) {
    const presets = fs.existsSync(experimentsDir()) ? fs.readdirSync(experimentsDir()).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)) : [];
    throw new Error(`experiment '${nameOrPath}' not found (${file}); presets: ${presets.join(', ')}`);
  }
  return validateExperiment(readJsonFile(file), file);
}

export interface Cell {
  /** Directory-safe id, e.g. 'mini-XL_2-adaln-zero'. */
  id: string;
  model: string;
  variant: Variant;
  /** Training seed. */
  seed: number;
  /** Studies this cell serves. */
  studies: string[];
}

/** The distinct (model, variant) training cells of an experiment, in study order. */
export function experimentCells(e: ExperimentConfig): Cell[] {
  const cells = new Map<string, Cell>();
  for (const s of e.studies) {
    for (const model of s.models) {
      for (const variant of s.variants) for (const seed of s.seeds ?? [e.train.seed]) {
        const id = `${model.replace('/', '_')}-${variant}${seed === e.train.seed ? '' : `-seed${seed}`}`;
        const c = cells.get(id) ?? { id, model, variant, seed, studies: [] };
        if (!c.studies.includes(s.name)) c.studies.push(s.name);
        cells.set(id, c);
      }
    }
  }
  return [...cells.values()];
}
