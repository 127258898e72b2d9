// Loads a DiT for sampling from any file the kit knows: a training checkpoint
// (EMA weights by default, as all the paper's results use), model weights
// (.pt / .pth / .safetensors in the published state_dict layout, DiT's train.py
// checkpoints, legacy torch.save files) or a diffusers DiT folder, together with the
// diffusion it must be sampled with.
import { DiffusionSettings, checkDiffusionSettings, resolveDiffusion, trainingDiffusion } from '../diffusion';
import { WeightsKey, ditFromTensorFile, loadDiT, readDiTTensors } from '../model/checkpoint';
import { diffusersDiTFolder } from '../model/diffusers';
import { DiTConfig, validateConfig } from '../model/config';
import { createDiT, DiT, disposeDiT } from '../model/dit';
import { isTrainingCheckpoint, restoreWeights, trainingCheckpointFrom, trainingOptions } from '../train/checkpoint';

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
  /** Kit training checkpoints and train.py dicts: which weights (default ema). */
  weights?: WeightsKey;
  /** Diffusion settings asked for: fill in what the file does not record; contradicting it is an error. */
  diffusion?: Partial<DiffusionSettings>;
}

export function loadModelFile(file: string, opts: LoadOptions = {}): LoadedModel {
  if (diffusersDiTFolder(file)) {
    if (opts.weights === 'model') throw new Error(`${file}: a diffusers DiT folder holds one set of weights; --key model does not apply`);
    return bareWeights(loadDiT(file, opts.config), 'diffusers DiT folder', file, opts);
  }
  const f = readDiTTensors(file, opts.weights);
  if (isTrainingCheckpoint(f)) {
    const ck = trainingCheckpointFrom(file, f);
    const which = opts.weights ?? 'ema';
    const options = trainingOptions(ck);
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
      restoreWeights(ck, which, model.params, `${config.name} (${which} weights)`);
    } catch (err) {
      disposeDiT(model);
      throw err;
    }
    const step = ck.meta.step;
    return { model, source: `training checkpoint (${which} weights, step ${step})`, step, diffusion };
  }
  const what = f.args ? `train.py checkpoint (${f.chosen} weights, ${f.format})` : `model weights (${f.format}${f.chosen ? `, ${f.chosen}` : ''})`;
  return bareWeights(ditFromTensorFile(f, file, opts.config), what, file, opts);
}

function bareWeights(model: DiT, source: string, file: string, opts: LoadOptions): LoadedModel {
  try {
    // Bare weights record only what their final layer fixes: learned sigma or not.
    const diffusion = resolveDiffusion({ learnSigma: model.config.learnSigma }, opts.diffusion ?? {}, file);
    return { model, source, step: null, diffusion };
  } catch (err) {
    disposeDiT(model);
    throw err;
  }
}
