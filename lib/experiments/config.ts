// Experiment configs: plain JSON files in experiments/ (presets smoke, mini, paper).
// An experiment names its data, autoencoder, training and evaluation settings and a
// list of studies (the paper's figures); the sweep trains each (model, variant) cell
// once and evaluates it for every study that needs it.
import * as fs from 'fs';
import * as path from 'path';
import { ditConfig, DiTConfig, VARIANTS, Variant } from '../model/config';
import { readJsonFile, repoRoot } from '../util/paths';

export type DataSpec =
  /** The kit's procedural dataset (generated on demand). */
  | { kind: 'synthetic'; size: number; num: number; seed: number }
  /** A shard folder made by `dit data pack` (an ImageNet-style folder, CIFAR-10, ADM npz). */
  | { kind: 'shard'; path: string; size: number };

export interface AutoencoderSpec {
  /** 'kl': the kit's KL autoencoder (trained on the data); 'identity': pixel space. */
  kind: 'kl' | 'identity';
  /** Downsampling of an autoencoder the kit trains (2 or 4). */
  factor?: 2 | 4;
  steps?: number;
  seed?: number;
  /** Use these weights (a folder or file from `dit vae train`) instead of training. */
  weights?: string;
}

export interface TrainSpec {
  steps: number;
  batchSize: number;
  lr: number;
  /** EMA decay; 0.9999 (paper) is for 400K steps, mini runs want ~0.999 with warm-up. */
  emaDecay: number;
  emaWarmup: boolean;
  seed: number;
  ckptEvery: number;
  flip: boolean;
  gradClip: number | null;
  /** Linear learning-rate warm-up over this many steps (absent: none, as the paper). */
  lrWarmup?: number;
}

export interface EvalSpec {
  /** Training steps at which the EMA model is evaluated. */
  atSteps: number[];
  numSamples: number;
  sampler: 'ddpm' | 'ddim';
  samplingSteps: number;
  cfgScale: number;
  guidanceChannels: 'first3' | 'all';
  /** 'default': the kit's CNN (not comparable with Inception FIDs); 'inception' needs weights. */
  features: 'default' | 'inception';
  /** Reference statistics are computed on this many dataset images. */
  refImages: number;
  seed: number;
  /**
   * Train the default feature network for only this many steps (smoke and quick runs,
   * which cannot spend its full 15 minutes); its held-out accuracy is logged.
   */
  featureNetSteps?: number;
  /**
   * Reference images that neither the DiTs nor the feature network trained on: the same
   * synthetic generator with another seed. The first refImages are the reference set, the
   * next numSamples the held-out calibration images and validation latents. Absent: the
   * first refImages training images (the old behaviour, kept for shard data).
   */
  refSeed?: number;
  /** Samples at the final step (absent: numSamples); intermediate steps use numSamples. */
  finalNumSamples?: number;
  /**
   * 'study': FID in the z-scored [CNN pool || 8x8x3 pixel means] space (eval/space.ts) with
   * the CNN FID as a secondary column; 'features' (default): FID of the feature network alone.
   */
  space?: 'study' | 'features';
  /** Bootstrap rounds of each FID's standard error (fid_se; absent or 0: none). */
  bootstrap?: number;
  /** Held-out latents of the validation loss (val_loss; absent or 0: none). */
  valLatents?: number;
}

export interface StudySpec {
  /** 'scaling', 'conditioning', 'sampling-compute', ... (the paper figure it feeds). */
  name: string;
  models: string[];
  variants: Variant[];
  /** Extra evaluations of the final checkpoint (Fig. 10: several sampling step counts; guidance scales). */
  finalSamplingSteps?: number[];
  finalCfgScales?: number[];
  /** Training seeds (absent: train.seed); a cell per seed, ids of other seeds end in -seed<N>. */
  seeds?: number[];
}

export interface ExperimentConfig {
  name: string;
  description: string;
  data: DataSpec;
  autoencoder: AutoencoderSpec;
  /** Model config overrides applied to every named model (numClasses, inputSize, ...). */
  modelOverrides: Partial<DiTConfig>;
  train: TrainSpec;
  eval: EvalSpec;
  studies: StudySpec[];
}

const TOP_KEYS = ['name', 'description', 'data', 'autoencoder', 'modelOverrides', 'train', 'eval', 'studies'];
const SECTION_KEYS: Record<string, string[]> = {
  data: ['kind', 'size', 'num', 'seed'],
  autoencoder: ['kind', 'factor', 'steps', 'seed', 'weights'],
  train: ['steps', 'batchSize', 'lr', 'emaDecay', 'emaWarmup', 'seed', 'ckptEvery', 'flip', 'gradClip', 'lrWarmup'],
  eval: ['atSteps', 'numSamples', 'sampler', 'samplingSteps', 'cfgScale', 'guidanceChannels', 'features', 'refImages', 'seed', 'featureNetSteps', 'refSeed', 'finalNumSamples', 'space', 'bootstrap', 'valLatents'],
};
const OPTIONAL: Record<string, string[]> = {
  train: ['lrWarmup'],
  eval: ['featureNetSteps', 'refSeed', 'finalNumSamples', 'space', 'bootstrap', 'valLatents'],
};
const STUDY_KEYS = ['name', 'models', 'variants', 'finalSamplingSteps', 'finalCfgScales', 'seeds'];

function fail(where: string, msg: string): never {
  throw new Error(`experiment config ${where}: ${msg}`);
}

function checkKeys(where: string, o: unknown, allowed: string[], required = allowed): void {
  if (!o || typeof o !== 'object' || Array.isArray(o)) fail(where, 'must be an object');
  for (const k of Object.keys(o as object)) if (!allowed.includes(k)) fail(where, `unknown key '${k}' (valid: ${allowed.join(', ')})`);
  for (const k of required) if (!(k in (o as object))) fail(where, `missing key '${k}'`);
}

const posInt = (where: string, v: unknown) => {
  if (!Number.isInteger(v) || (v as number) <= 0) fail(where, `must be a positive integer, got ${JSON.stringify(v)}`);
};

/** Validates a parsed config and returns it typed; every error names the key. */
export function validateExperiment(raw: unknown, source = 'config'): ExperimentConfig {
  checkKeys(source, raw, TOP_KEYS, TOP_KEYS.filter((k) => k !== 'modelOverrides' && k !== 'description'));
  const c = raw as ExperimentConfig;
  c.description ??= '';
  c.modelOverrides ??= {};
  if (c.data?.kind === 'shard') {
    checkKeys(`${source}.data`, c.data, ['kind', 'path', 'size']);
  } else {
    checkKeys(`${source}.data`, c.data, SECTION_KEYS.data);
    if (c.data.kind !== 'synthetic') fail(`${source}.data.kind`, `use 'synthetic' or 'shard', got '${(c.data as { kind: string }).kind}'`);
    posInt(`${source}.data.num`, c.data.num);
  }
  posInt(`${source}.data.size`, c.data.size);
  checkKeys(`${source}.autoencoder`, c.autoencoder, SECTION_KEYS.autoencoder, ['kind']);
  if (c.autoencoder.kind !== 'kl' && c.autoencoder.kind !== 'identity') fail(`${source}.autoencoder.kind`, `use 'kl' or 'identity'`);
  checkKeys(`${source}.train`, c.train, SECTION_KEYS.train, SECTION_KEYS.train.filter((k) => !OPTIONAL.train.includes(k)));
  if (c.train.lrWarmup !== undefined && !(Number.isInteger(c.train.lrWarmup) && c.train.lrWarmup >= 0)) fail(`${source}.train.lrWarmup`, 'must be a non-negative integer');
  for (const k of ['steps', 'batchSize', 'ckptEvery'] as const) posInt(`${source}.train.${k}`, c.train[k]);
  if (!(c.train.emaDecay >= 0 && c.train.emaDecay < 1)) fail(`${source}.train.emaDecay`, 'must be in [0, 1)');
  checkKeys(`${source}.eval`, c.eval, SECTION_KEYS.eval, SECTION_KEYS.eval.filter((k) => !OPTIONAL.eval.includes(k)));
  for (const k of ['finalNumSamples', 'refSeed'] as const) if (c.eval[k] !== undefined) posInt(`${source}.eval.${k}`, c.eval[k]);
  for (const k of ['bootstrap', 'valLatents'] as const) {
    if (c.eval[k] !== undefined && !(Number.isInteger(c.eval[k]) && (c.eval[k] as number) >= 0)) fail(`${source}.eval.${k}`, 'must be a non-negative integer');
  }
  if (c.eval.space !== undefined && c.eval.space !== 'study' && c.eval.space !== 'features') fail(`${source}.eval.space`, `use 'study' or 'features'`);
  if (c.eval.space === 'study' && c.eval.features !== 'default') fail(`${source}.eval.space`, `'study' builds on the default CNN (eval.features 'default')`);
  for (const s of c.eval.atSteps) {
    posInt(`${source}.eval.atSteps`, s);
    if (s > c.train.steps) fail(`${source}.eval.atSteps`, `step ${s} is after the last training step ${c.train.steps}`);
    if (s % c.train.ckptEvery !== 0 && s !== c.train.steps) fail(`${source}.eval.atSteps`, `step ${s} is not a checkpoint step (ckptEvery ${c.train.ckptEvery}): a resumed run could not evaluate it`);
  }
  posInt(`${source}.eval.numSamples`, c.eval.numSamples);
  posInt(`${source}.eval.samplingSteps`, c.eval.samplingSteps);
  if (c.eval.sampler !== 'ddpm' && c.eval.sampler !== 'ddim') fail(`${source}.eval.sampler`, `use 'ddpm' or 'ddim'`);
  if (c.eval.features !== 'default' && c.eval.features !== 'inception') fail(`${source}.eval.features`, `use 'default' or 'inception'`);
  if (!Array.isArray(c.studies) || !c.studies.length) fail(`${source}.studies`, 'must be a non-empty list');
  c.studies.forEach((s, i) => {
    const w = `${source}.studies[${i}]`;
    checkKeys(w, s, STUDY_KEYS, ['name', 'models', 'variants']);
    for (const v of s.variants) if (!(VARIANTS as readonly string[]).includes(v)) fail(`${w}.variants`, `unknown variant '${v}'`);
    if (s.seeds !== undefined && (!Array.isArray(s.seeds) || !s.seeds.length || !s.seeds.every((x) => Number.isInteger(x) && x >= 0))) fail(`${w}.seeds`, 'must be a non-empty list of non-negative integers');
    for (const m of s.models) {
      try {
        modelConfig(c, m, s.variants[0]);
      } catch (err) {
        fail(`${w}.models`, (err as Error).message);
      }
    }
  });
  return c;
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
  return validateExperiment(readJsonFile(file), path.basename(file));
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
