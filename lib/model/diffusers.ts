// DiT in the diffusers layout (DiTPipeline.save_pretrained, e.g. facebook/DiT-XL-2-256):
//   model_index.json
//   transformer/config.json + diffusion_pytorch_model.safetensors (or .bin)
//     DiTTransformer2DModel names: pos_embed.proj, transformer_blocks.N.{norm1, attn1,
//     ff}, proj_out_1/2; every block carries its own copy of the timestep and class
//     embedders (norm1.emb), all equal in a converted DiT
//   vae/ the SD autoencoder (lib/autoencoder/sd.ts)
// Converted on load to the published names (models.py), so the model that runs is the
// published DiT. The fixed sin-cos positions are not stored; they are recomputed.
import * as fs from 'fs';
import * as path from 'path';
import { HostArray, nameTable, ownEntry, toFloat32 } from '../io/array';
import { readTensorFile } from '../io/tensor_file';
import { readJsonFile } from '../util/paths';
import { DiTConfig, PAPER_SIZES, validateConfig } from './config';
import { sincos2dPosEmbed } from './embed';

const WEIGHTS = ['diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.bin'];
const CLASSES = ['DiTTransformer2DModel', 'Transformer2DModel'];

/** The transformer folder of a diffusers DiT (the folder itself, or its transformer/), or null. */
export function diffusersDiTFolder(p: string): string | null {
  if (!fs.existsSync(p) || !fs.statSync(p).isDirectory()) return null;
  for (const dir of [path.join(p, 'transformer'), p]) {
    const cfg = path.join(dir, 'config.json');
    if (!fs.existsSync(cfg)) continue;
    const c = readJsonFile(cfg) as Record<string, unknown> | null;
    if (c && CLASSES.includes(String(c._class_name))) return dir;
  }
  return null;
}

/** A DiT config from a DiTTransformer2DModel config.json (mlp ratio from the weights). */
export function configFromDiffusersDiT(c: Record<string, unknown>, file: string, mlpHidden: number): DiTConfig {
  const bad = (msg: string): never => {
    throw new Error(`${file}: ${msg}`);
  };
  const num = (k: string): number => {
    const v = c[k];
    if (!Number.isSafeInteger(v) || (v as number) <= 0) bad(`${k} must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  if (c.norm_type !== undefined && c.norm_type !== 'ada_norm_zero') bad(`norm_type ${JSON.stringify(c.norm_type)}: only DiT's ada_norm_zero is supported`);
  if (c.activation_fn !== undefined && c.activation_fn !== 'gelu-approximate') bad(`activation_fn ${JSON.stringify(c.activation_fn)}: DiT uses gelu-approximate`);
  const hiddenSize = num('num_attention_heads') * num('attention_head_dim');
  const inChannels = num('in_channels');
  const out = c.out_channels === undefined || c.out_channels === null ? inChannels : num('out_channels');
  if (out !== inChannels && out !== 2 * inChannels) bad(`out_channels ${out} is neither in_channels nor twice it`);
  const patchSize = num('patch_size');
  const depth = num('num_layers');
  const size = Object.entries(PAPER_SIZES).find(([, s]) => s.hiddenSize === hiddenSize && s.depth === depth && s.numHeads === num('num_attention_heads'));
  return validateConfig({
    name: size ? `DiT-${size[0]}/${patchSize}` : path.basename(path.dirname(path.dirname(file))) || 'diffusers DiT',
    variant: 'adaln-zero',
    inputSize: num('sample_size'),
    inChannels,
    patchSize,
    hiddenSize,
    depth,
    numHeads: num('num_attention_heads'),
    mlpRatio: mlpHidden / hiddenSize,
    numClasses: num('num_embeds_ada_norm'),
    classDropoutProb: 0.1,
    learnSigma: out === 2 * inChannels,
  });
}

function sameValues(a: HostArray, b: HostArray): boolean {
  if (a.shape.join(',') !== b.shape.join(',')) return false;
  const x = toFloat32(a);
  const y = toFloat32(b);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** DiTTransformer2DModel tensors -> the published state_dict (pos_embed recomputed). */
export function fromDiffusersDiT(t: Record<string, HostArray>, config: DiTConfig, what: string): Record<string, HostArray> {
  const used = new Set<string>();
  const take = (k: string): HostArray => {
    const a = ownEntry(t, k);
    if (!a) throw new Error(`${what}: not a diffusers DiT (no '${k}')`);
    used.add(k);
    return a;
  };
  const out = nameTable<HostArray>();
  out['x_embedder.proj.weight'] = take('pos_embed.proj.weight');
  out['x_embedder.proj.bias'] = take('pos_embed.proj.bias');
  const grid = config.inputSize / config.patchSize;
  out.pos_embed = { dtype: 'float32', shape: [1, grid * grid, config.hiddenSize], data: sincos2dPosEmbed(config.hiddenSize, grid) };
  const shared: Array<[string, string]> = [
    ['timestep_embedder.linear_1.weight', 't_embedder.mlp.0.weight'],
    ['timestep_embedder.linear_1.bias', 't_embedder.mlp.0.bias'],
    ['timestep_embedder.linear_2.weight', 't_embedder.mlp.2.weight'],
    ['timestep_embedder.linear_2.bias', 't_embedder.mlp.2.bias'],
    ['class_embedder.embedding_table.weight', 'y_embedder.embedding_table.weight'],
  ];
  for (const [from, to] of shared) out[to] = take(`transformer_blocks.0.norm1.emb.${from}`);
  for (let i = 0; i < config.depth; i++) {
    const b = `transformer_blocks.${i}`;
    // The published model has one embedder; blocks whose copies differ were trained apart from it.
    if (i > 0) {
      for (const [from, to] of shared) {
        if (!sameValues(take(`${b}.norm1.emb.${from}`), out[to])) {
          throw new Error(`${what}: ${b}.norm1.emb.${from} differs from block 0's; not a DiT converted from the published layout`);
        }
      }
    }
    out[`blocks.${i}.adaLN_modulation.1.weight`] = take(`${b}.norm1.linear.weight`);
    out[`blocks.${i}.adaLN_modulation.1.bias`] = take(`${b}.norm1.linear.bias`);
    for (const kind of ['weight', 'bias'] as const) {
      const parts = ['q', 'k', 'v'].map((p) => take(`${b}.attn1.to_${p}.${kind}`));
      const data = new Float32Array(parts.reduce((n, p) => n + p.data.length, 0));
      let at = 0;
      for (const p of parts) {
        data.set(toFloat32(p), at);
        at += p.data.length;
      }
      out[`blocks.${i}.attn.qkv.${kind}`] = { dtype: 'float32', shape: [3 * parts[0].shape[0], ...parts[0].shape.slice(1)], data };
    }
    out[`blocks.${i}.attn.proj.weight`] = take(`${b}.attn1.to_out.0.weight`);
    out[`blocks.${i}.attn.proj.bias`] = take(`${b}.attn1.to_out.0.bias`);
    out[`blocks.${i}.mlp.fc1.weight`] = take(`${b}.ff.net.0.proj.weight`);
    out[`blocks.${i}.mlp.fc1.bias`] = take(`${b}.ff.net.0.proj.bias`);
    out[`blocks.${i}.mlp.fc2.weight`] = take(`${b}.ff.net.2.weight`);
    out[`blocks.${i}.mlp.fc2.bias`] = take(`${b}.ff.net.2.bias`);
  }
  out['final_layer.adaLN_modulation.1.weight'] = take('proj_out_1.weight');
  out['final_layer.adaLN_modulation.1.bias'] = take('proj_out_1.bias');
  out['final_layer.linear.weight'] = take('proj_out_2.weight');
  out['final_layer.linear.bias'] = take('proj_out_2.bias');
  const extra = Object.keys(t).filter((k) => !used.has(k));
  if (extra.length) throw new Error(`${what}: unexpected tensors for a ${config.depth}-block DiT: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ` (+${extra.length - 5} more)` : ''}`);
  return out;
}

/** Reads a diffusers DiT folder (pipeline or transformer/): its config and the published state_dict. */
export function readDiffusersDiT(p: string): { config: DiTConfig; tensors: Record<string, HostArray>; file: string } {
  const dir = diffusersDiTFolder(p);
  if (!dir) throw new Error(`${p}: not a diffusers DiT folder (no transformer/config.json naming ${CLASSES.join(' or ')})`);
  const cfgFile = path.join(dir, 'config.json');
  const file = WEIGHTS.map((w) => path.join(dir, w)).find((f) => fs.existsSync(f));
  if (!file) throw new Error(`${dir}: a diffusers DiT folder without weights (expected ${WEIGHTS.join(' or ')})`);
  const t = readTensorFile(file).tensors;
  const fc1 = ownEntry(t, 'transformer_blocks.0.ff.net.0.proj.weight');
  if (!fc1) throw new Error(`${file}: not a diffusers DiT (no 'transformer_blocks.0.ff.net.0.proj.weight')`);
  const config = configFromDiffusersDiT(readJsonFile(cfgFile) as Record<string, unknown>, cfgFile, fc1.shape[0]);
  return { config, tensors: fromDiffusersDiT(t, config, file), file };
}
