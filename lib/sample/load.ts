// Loads a DiT for sampling from any file the kit knows: a training checkpoint
// (EMA weights by default, as all the paper's results use) or model weights
// (.pt / .pth / .safetensors in the published state_dict layout), together with the
// diffusion it must be sampled with.
import * as tf from '@tensorflow/tfjs-core';
import { DiffusionSettings, checkDiffusionSettings, resolveDiffusion, trainingDiffusion } from '../diffusion';
import { toFloat32 } from '../io/array';
import { readTensorFile } from '../io/checkpoint';
import { ditFromTensorFile } from '../model/checkpoint';
import { DiTConfig, validateConfig } from '../model/config';
import { createDiT, DiT, disposeDiT } from '../model/dit';
import { CHECKPOINT_KIND } from '../train/checkpoint';
import type { TrainOptions } from '../train/trainer';
import { parseJsonField } from '../util/paths';

export interface LoadedModel {
  model: DiT;
  /** 'training checkpoint (ema, step 2000)' or 'model weights (torch)'. */
  source: string;
  step: number | null;
  /** What the checkpoint records, else DiT's published settings (and the request's). */
  diffusion: DiffusionSettings;
}

export interface LoadOptions {
  config?: DiTConfig;
  weights?: 'ema' | 'model';
  /** Diffusion settings asked for: fill in what the file does not record; contradicting it is an error. */
  diffusion?: Partial<DiffusionSettings>;
}

export function loadModelFile(file: string, opts: LoadOptions = {}): LoadedModel {
  const f = readTensorFile(file);
  if (f.metadata?.kind === CHECKPOINT_KIND) {
    const which = opts.weights ?? 'ema';
    const options = parseJsonField(file, 'options', f.metadata.options) as TrainOptions;
    const config = validateConfig(options.model);
    if (opts.config && JSON.stringify(opts.config) !== JSON.stringify(config)) {
      throw new Error(`${file} was trained as ${config.name} (${config.variant}); it does not match the requested ${opts.config.name}`);
    }
    // Checked before any weights are read: a contradicting request fails fast.
    const recorded = trainingDiffusion(options);
    checkDiffusionSettings(recorded, file, true);
    const diffusion = resolveDiffusion(recorded, opts.diffusion ?? {}, file);
    const model = createDiT(config, 0);
    try {
      for (const [k, v] of Object.entries(model.params)) {
        const a = f.tensors[`${which}/${k}`];
        if (!a) throw new Error(`${file}: training checkpoint has no ${which}/${k}`);
        v.assign(tf.tensor(toFloat32(a), v.shape));
      }
    } catch (err) {
      disposeDiT(model);
      throw err;
    }
    const step = Number(f.metadata.step);
    return { model, source: `training checkpoint (${which} weights, step ${step})`, step, diffusion };
  }
  const model = ditFromTensorFile(f, file, opts.config);
  try {
    // Bare weights record only what their final layer fixes: learned sigma or not.
    const diffusion = resolveDiffusion({ learnSigma: model.config.learnSigma }, opts.diffusion ?? {}, file);
    return { model, source: `model weights (${f.format})`, step: null, diffusion };
  } catch (err) {
    disposeDiT(model);
    throw err;
  }
}
