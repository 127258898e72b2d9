// The Stable Diffusion KL-f8 autoencoder DiT was trained in (paper Sec. 3:
// stabilityai/sd-vae-ft-ema / -mse, latents scaled by 0.18215), read from the files
// users have. Its architecture is the kit's KL model at the published size (kl.ts
// follows LDM's module names), so loading is renaming:
//   - the LDM layout: vae-ft-mse-840000-ema-pruned.ckpt / .safetensors, or a full
//     LDM/SD checkpoint whose autoencoder keys start with `first_stage_model.`;
//     these are kl.ts's names, attention as 1x1 convs;
//   - the diffusers layout: a folder with config.json and
//     diffusion_pytorch_model.safetensors (or .bin), AutoencoderKL names, attention
//     as Linear layers under `query/key/value/proj_attn` (old) or
//     `to_q/to_k/to_v/to_out.0` (new); or a pipeline folder with it in vae/.
import * as fs from 'fs';
import * as path from 'path';
import { HostArray, nameTable, ownEntry } from '../io/array';
import { readTensorFile } from '../io/tensor_file';
import { sha256FileCached } from '../util/hash';
import { readJsonFile } from '../util/paths';
import { KLConfig, KLModel, klFactor, validateKLConfig } from './kl';
import { klFromTorchTensors } from './weights';

/** SD's latent scale: DiT trains on 0.18215 * z. */
export const SD_VAE_SCALE = 0.18215;

/** The published KL-f8: ch 128, ch_mult 1,2,4,4, 2 ResNet blocks per level, mid attention, z 4, 32 groups. */
export function sdVaeConfig(resolution = 256): KLConfig {
  return validateKLConfig({
    kind: 'kl', resolution, inChannels: 3, zChannels: 4, ch: 128, chMult: [1, 2, 4, 4], numResBlocks: 2, normGroups: 32, midAttention: true,
  });
}

export interface LoadedSDVae {
  model: KLModel;
  scale: number;
  /** sha256 of the weights file. */
  sha256: string;
  file: string;
  layout: 'ldm' | 'ldm (first_stage_model)' | 'diffusers';
}

export interface SDVaeOptions {
  /** Image side the autoencoder is used at (any multiple of 8; default: the config's sample_size, else 256). */
  resolution?: number;
  /** Or: the latent side it must decode (resolution = latentSize * the downsampling factor). */
  latentSize?: number;
  /** GroupNorm groups when the file does not say (LDM layout); SD uses 32. */
  normGroups?: number;
}

const DIFFUSERS_WEIGHTS = ['diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.bin'];

// ---- diffusers names -> LDM names -------------------------------------------------

const ATTENTION: Record<string, string> = {
  query: 'q', key: 'k', value: 'v', proj_attn: 'proj_out', to_q: 'q', to_k: 'k', to_v: 'v', 'to_out.0': 'proj_out', group_norm: 'norm',
};

/** One diffusers AutoencoderKL key in LDM's name, or null when it is not an autoencoder weight. */
export function ldmName(key: string, levels: number): string | null {
  let m = /^(encoder|decoder)\.(down|up)_blocks\.(\d+)\.(resnets|downsamplers|upsamplers)\.(\d+)\.(.+)$/.exec(key);
  if (m) {
    const [, side, dir, idx, kind, j, rest] = m;
    // diffusers lists the decoder's levels from the deepest; LDM indexes them by resolution.
    const level = dir === 'down' ? Number(idx) : levels - 1 - Number(idx);
    if (kind === 'resnets') return `${side}.${dir}.${level}.block.${j}.${rest.replace(/^conv_shortcut\./, 'nin_shortcut.')}`;
    return `${side}.${dir}.${level}.${dir === 'down' ? 'downsample' : 'upsample'}.${rest}`;
  }
  m = /^(encoder|decoder)\.mid_block\.resnets\.([01])\.(.+)$/.exec(key);
  if (m) return `${m[1]}.mid.block_${Number(m[2]) + 1}.${m[3]}`;
  m = /^(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(weight|bias)$/.exec(key);
  if (m) {
    const part = ownEntry(ATTENTION, m[2]);
    return part ? `${m[1]}.mid.attn_1.${part}.${m[3]}` : null;
  }
  m = /^(encoder|decoder)\.conv_norm_out\.(weight|bias)$/.exec(key);
  if (m) return `${m[1]}.norm_out.${m[2]}`;
  if (/^(encoder|decoder)\.(conv_in|conv_out)\.(weight|bias)$/.test(key) || /^(post_)?quant_conv\.(weight|bias)$/.test(key)) return key;
  return null;
}

/** Attention projections stored as Linear [C, C] become the 1x1 convs [C, C, 1, 1] of LDM. */
function asConv1x1(a: HostArray): HostArray {
  return a.shape.length === 2 ? { ...a, shape: [...a.shape, 1, 1] } : a;
}

function fromDiffusers(tensors: Record<string, HostArray>, levels: number, what: string): Record<string, HostArray> {
  const out = nameTable<HostArray>();
  const unknown: string[] = [];
  for (const [k, v] of Object.entries(tensors)) {
    const name = ldmName(k, levels);
    if (!name) unknown.push(k);
    else out[name] = /\.attn_1\.(q|k|v|proj_out)\.weight$/.test(name) ? asConv1x1(v) : v;
  }
  if (unknown.length) throw new Error(`${what}: not AutoencoderKL weights: ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ` (+${unknown.length - 5} more)` : ''}`);
  return out;
}

// ---- configs --------------------------------------------------------------------

function intList(v: unknown, what: string): number[] {
  if (!Array.isArray(v) || !v.every((x) => Number.isSafeInteger(x) && x > 0)) throw new Error(`${what} must be a list of positive integers, got ${JSON.stringify(v)}`);
  return v as number[];
}

/** A KL config from a diffusers AutoencoderKL config.json. */
export function configFromDiffusers(c: Record<string, unknown>, file: string, resolution?: number): { config: KLConfig; scale: number } {
  const bad = (msg: string): never => {
    throw new Error(`${file}: ${msg}`);
  };
  if (c._class_name !== undefined && c._class_name !== 'AutoencoderKL') bad(`_class_name is ${JSON.stringify(c._class_name)}, not AutoencoderKL`);
  const widths = intList(c.block_out_channels, `${file}: block_out_channels`);
  const ch = widths[0];
  if (!widths.every((w) => w % ch === 0)) bad(`block_out_channels ${JSON.stringify(widths)} are not multiples of the first`);
  if (c.act_fn !== undefined && c.act_fn !== 'silu') bad(`act_fn ${JSON.stringify(c.act_fn)}: only silu (SD's) is supported`);
  if (c.in_channels !== undefined && c.out_channels !== undefined && c.in_channels !== c.out_channels) bad('in_channels and out_channels differ');
  for (const k of ['use_quant_conv', 'use_post_quant_conv'] as const) if (c[k] === false) bad(`${k}: false is not the SD autoencoder`);
  const scale = c.scaling_factor === undefined ? SD_VAE_SCALE : Number(c.scaling_factor);
  if (!(scale > 0 && Number.isFinite(scale))) bad(`scaling_factor ${JSON.stringify(c.scaling_factor)} is not a positive number`);
  const config = validateKLConfig({
    kind: 'kl',
    resolution: resolution ?? (c.sample_size as number | undefined) ?? 256,
    inChannels: (c.in_channels as number | undefined) ?? 3,
    zChannels: (c.latent_channels as number | undefined) ?? 4,
    ch,
    chMult: widths.map((w) => w / ch),
    numResBlocks: (c.layers_per_block as number | undefined) ?? 2,
    normGroups: (c.norm_num_groups as number | undefined) ?? 32,
    midAttention: c.mid_block_add_attention !== false,
  });
  return { config, scale };
}

/** A KL config from LDM-named tensors' shapes; GroupNorm groups are not in the weights. */
export function configFromLdmTensors(t: Record<string, HostArray>, what: string, opts: SDVaeOptions = {}): KLConfig {
  const need = (k: string): HostArray => {
    const a = ownEntry(t, k);
    if (!a) throw new Error(`${what}: not an SD autoencoder (no '${k}')`);
    return a;
  };
  const [ch, inChannels] = need('encoder.conv_in.weight').shape;
  let levels = 0;
  while (ownEntry(t, `encoder.down.${levels}.block.0.conv1.weight`)) levels++;
  let numResBlocks = 0;
  while (ownEntry(t, `encoder.down.0.block.${numResBlocks}.conv1.weight`)) numResBlocks++;
  const chMult = Array.from({ length: levels }, (_, i) => need(`encoder.down.${i}.block.0.conv2.weight`).shape[0] / ch);
  return validateKLConfig({
    kind: 'kl', resolution: opts.resolution ?? 256, inChannels, zChannels: need('post_quant_conv.weight').shape[0], ch, chMult, numResBlocks,
    normGroups: opts.normGroups ?? 32, midAttention: ownEntry(t, 'encoder.mid.attn_1.q.weight') !== undefined,
  });
}

// ---- loading ----------------------------------------------------------------------

/** The convolutional autoencoder runs at any multiple of its factor: size it for the latents asked for. */
function atLatentSize(c: KLConfig, opts: SDVaeOptions): KLConfig {
  if (opts.latentSize === undefined || opts.resolution !== undefined) return c;
  return validateKLConfig({ ...c, resolution: opts.latentSize * klFactor(c) });
}

const FIRST_STAGE = 'first_stage_model.';

function weightsIn(dir: string): string {
  for (const w of DIFFUSERS_WEIGHTS) if (fs.existsSync(path.join(dir, w))) return path.join(dir, w);
  throw new Error(`${dir}: a diffusers folder without weights (expected ${DIFFUSERS_WEIGHTS.join(' or ')})`);
}

/** Reads the SD autoencoder from a diffusers folder (or pipeline folder) or an LDM file; every weight name and shape is checked. */
export function readSDVae(p: string, opts: SDVaeOptions = {}): LoadedSDVae {
  if (!fs.existsSync(p)) throw new Error(`SD autoencoder not found: ${p}`);
  if (fs.statSync(p).isDirectory()) {
    const dir = !fs.existsSync(path.join(p, 'config.json')) && fs.existsSync(path.join(p, 'vae', 'config.json')) ? path.join(p, 'vae') : p;
    const cfgFile = path.join(dir, 'config.json');
    if (!fs.existsSync(cfgFile)) {
      const found = fs.readdirSync(p).slice(0, 8).join(', ') || 'nothing';
      throw new Error(`${p}: not a diffusers autoencoder folder (no config.json or vae/config.json; found ${found})`);
    }
    const raw = readJsonFile(cfgFile);
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${cfgFile}: not a JSON object`);
    const { config: c0, scale } = configFromDiffusers(raw as Record<string, unknown>, cfgFile, opts.resolution);
    const config = atLatentSize(c0, opts);
    const file = weightsIn(dir);
    const tensors = fromDiffusers(readTensorFile(file).tensors, config.chMult.length, file);
    return { model: klFromTorchTensors(config, tensors, `SD autoencoder weights ${file}`), scale, sha256: sha256FileCached(file), file, layout: 'diffusers' };
  }
  const f = readTensorFile(p);
  let tensors = f.tensors;
  let layout: LoadedSDVae['layout'] = 'ldm';
  const keys = Object.keys(tensors);
  if (keys.some((k) => k.startsWith(FIRST_STAGE))) {
    // A full LDM/SD checkpoint: the autoencoder is one part of it.
    tensors = nameTable<HostArray>();
    for (const k of keys) if (k.startsWith(FIRST_STAGE) && !k.slice(FIRST_STAGE.length).startsWith('loss.')) tensors[k.slice(FIRST_STAGE.length)] = f.tensors[k];
    layout = 'ldm (first_stage_model)';
  } else if (keys.some((k) => k.includes('.down_blocks.') || k.includes('.mid_block.'))) {
    throw new Error(`${p}: diffusers AutoencoderKL weights without their config.json; pass the folder that holds both`);
  } else {
    // The training loss (LPIPS, discriminator) travels with some .ckpt files; it is not the autoencoder.
    tensors = nameTable<HostArray>();
    for (const k of keys) if (!k.startsWith('loss.') && !k.startsWith('model_ema.')) tensors[k] = f.tensors[k];
  }
  const config = atLatentSize(configFromLdmTensors(tensors, p, opts), opts);
  return { model: klFromTorchTensors(config, tensors, `SD autoencoder weights ${p}`), scale: SD_VAE_SCALE, sha256: sha256FileCached(p), file: p, layout };
}
