// DiT <-> PyTorch-style state_dicts: load published checkpoints (.pt, .safetensors)
// with per-tensor shape checks, save to safetensors, infer the architecture.
import * as tf from '@tensorflow/tfjs-core';
import { HostArray, nameTable, ownEntry, toFloat32 } from '../io/array';
import { readTensorFile, TensorFile } from '../io/tensor_file';
import { writeSafetensors } from '../io/safetensors';
import { DiTConfig, PAPER_SIZES, MINI_SIZES, Variant, ditConfig, parseModelName, validateConfig } from './config';
import { diffusersDiTFolder, readDiffusersDiT } from './diffusers';
import { createDiT, DiT } from './dit';
import { ParamSpec, paramSpecs } from './params';

const shapeStr = (s: readonly number[]) => `[${s.join(', ')}]`;

/** Torch-layout values -> the kit's layout (see params.ts Layout). */
function toKitLayout(spec: ParamSpec, data: Float32Array): Float32Array {
  if (spec.layout === 'plain') return data;
  // linear [out, in] -> [in, out]; conv [D, C, p, p] = [D, C*p*p] -> [C*p*p, D]
  const rows = spec.torchShape[0];
  const cols = data.length / rows;
  return transpose2d(data, rows, cols);
}

/** The kit's layout -> torch layout. */
function toTorchLayout(spec: ParamSpec, data: Float32Array): Float32Array {
  if (spec.layout === 'plain') return data;
  const [rows, cols] = spec.shape;
  return transpose2d(data, rows, cols);
}

function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

/**
 * Loads a state_dict into `model`. Every key must be present with its PyTorch shape;
 * one error lists all missing, unexpected and mismatched keys.
 */
export function loadStateDict(model: DiT, tensors: Record<string, HostArray>, source = 'state_dict'): void {
  const specs = paramSpecs(model.config);
  const missing: string[] = [];
  const mismatched: string[] = [];
  const known = new Set(specs.map((s) => s.name));
  const unexpected = Object.keys(tensors).filter((k) => !known.has(k));
  // ownEntry: a plain-object table must not answer 'constructor' from its prototype.
  for (const spec of specs) {
    const t = ownEntry(tensors, spec.name);
    if (!t) missing.push(spec.name);
    else if (t.shape.length !== spec.torchShape.length || t.shape.some((d, i) => d !== spec.torchShape[i])) {
      mismatched.push(`${spec.name}: checkpoint ${shapeStr(t.shape)} vs model ${shapeStr(spec.torchShape)}`);
    }
  }
  if (missing.length || unexpected.length || mismatched.length) {
    const parts = [`${source} does not fit ${model.config.name} (${model.config.variant})`];
    if (missing.length) parts.push(`missing keys (${missing.length}): ${missing.join(', ')}`);
    if (unexpected.length) parts.push(`unexpected keys (${unexpected.length}): ${unexpected.join(', ')}`);
    if (mismatched.length) parts.push(`shape mismatches (${mismatched.length}): ${mismatched.join('; ')}`);
    throw new Error(parts.join('\n  '));
  }
  for (const spec of specs) {
    const values = toKitLayout(spec, toFloat32(tensors[spec.name]));
    model.params[spec.name].assign(tf.tensor(values, spec.shape, 'float32'));
  }
}

/** The model's parameters as a PyTorch-layout state_dict (float32). */
export function stateDict(model: DiT): Record<string, HostArray> {
  const out = nameTable<HostArray>();
  for (const spec of paramSpecs(model.config)) {
    const data = toTorchLayout(spec, model.params[spec.name].dataSync() as Float32Array);
    out[spec.name] = { dtype: 'float32', shape: spec.torchShape.slice(), data };
  }
  return out;
}

/** Saves a DiT to .safetensors with its config in the metadata (atomic write). */
export function saveDiT(model: DiT, file: string, metadata: Record<string, string> = {}): void {
  writeSafetensors(file, stateDict(model), { ...metadata, dit_config: JSON.stringify(model.config) });
}

export interface InferredArchitecture {
  /** Everything that the tensors determine; numHeads is a guess (not in the weights). */
  config: DiTConfig;
  headsGuessed: boolean;
}

/** Infers a DiT config from a state_dict's keys and shapes. */
export function inferConfig(tensors: Record<string, HostArray>, name = 'checkpoint'): InferredArchitecture {
  const has = (k: string) => ownEntry(tensors, k) !== undefined;
  const need = (k: string): HostArray => {
    const t = ownEntry(tensors, k);
    if (!t) throw new Error(`${name}: not a DiT state_dict (no '${k}')`);
    return t;
  };
  const proj = need('x_embedder.proj.weight'); // [D, C, p, p]
  if (proj.shape.length !== 4) throw new Error(`${name}: x_embedder.proj.weight should be 4-D, got ${shapeStr(proj.shape)}`);
  const [D, C, p] = proj.shape;
  const T = need('pos_embed').shape[1];
  const grid = Math.round(Math.sqrt(T));
  const table = need('y_embedder.embedding_table.weight').shape[0];
  const finalOut = need('final_layer.linear.weight').shape[0];
  let depth = 0;
  while (has(`blocks.${depth}.attn.qkv.weight`)) depth++;
  const fc1 = need('blocks.0.mlp.fc1.weight').shape[0];
  let variant: Variant = 'in-context';
  const ada = ownEntry(tensors, 'blocks.0.adaLN_modulation.1.weight');
  if (ada) variant = ada.shape[0] === 6 * D ? 'adaln-zero' : 'adaln';
  else if (has('blocks.0.cross_attn.q.weight')) variant = 'cross-attention';
  // Heads are not stored in the weights: match the paper's / mini family's width, else 64-wide heads.
  const known = [...Object.values(PAPER_SIZES), ...Object.values(MINI_SIZES)].find((s) => s.hiddenSize === D);
  const numHeads = known ? known.numHeads : Math.max(1, Math.round(D / 64));
  const learnSigma = finalOut === p * p * 2 * C;
  const config = validateConfig({
    name,
    variant,
    inputSize: grid * p,
    inChannels: C,
    patchSize: p,
    hiddenSize: D,
    depth,
    numHeads,
    mlpRatio: fc1 / D,
    // The published label table has a null row for classifier-free guidance.
    numClasses: table - 1,
    classDropoutProb: 0.1,
    learnSigma,
  });
  return { config, headsGuessed: !known };
}

/**
 * The architecture a DiT train.py (or fast-DiT) checkpoint names in its args: a
 * published model name at image_size / 8 (the SD autoencoder's factor) with
 * num_classes; null when args.model is not a published name.
 */
export function configFromTrainArgs(args: Record<string, unknown>, file: string): DiTConfig | null {
  const model = args.model;
  const m = typeof model === 'string' ? parseModelName(model) : null;
  if (!m || m.family !== 'DiT') return null;
  const over: Partial<DiTConfig> = {};
  if (args.image_size !== undefined) {
    const size = args.image_size;
    if (!Number.isSafeInteger(size) || (size as number) % 8 !== 0) throw new Error(`${file}: args.image_size ${JSON.stringify(size)} is not a multiple of 8`);
    over.inputSize = (size as number) / 8;
  }
  if (args.num_classes !== undefined) over.numClasses = args.num_classes as number;
  try {
    return ditConfig(model as string, over);
  } catch (err) {
    throw new Error(`${file}: args describe no valid DiT (${(err as Error).message})`);
  }
}

/**
 * Builds a DiT from tensors already read (readTensorFile). With `config`, they must fit
 * it exactly; without, a config stored in safetensors metadata, named by a train.py
 * checkpoint's args, or inferred from the tensors is used.
 */
export function ditFromTensorFile(f: TensorFile, file: string, config?: DiTConfig): DiT {
  let cfg = config ?? (f.args ? configFromTrainArgs(f.args, file) ?? undefined : undefined);
  const stored = f.metadata ? ownEntry(f.metadata, 'dit_config') : undefined;
  if (!cfg && stored) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(stored);
    } catch (err) {
      throw new Error(`${file}: metadata dit_config is not valid JSON (${(err as Error).message})`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new Error(`${file}: metadata dit_config is not a JSON object`);
    }
    try {
      cfg = validateConfig(parsed as DiTConfig);
    } catch (err) {
      throw new Error(`${file}: metadata dit_config: ${(err as Error).message}`);
    }
  }
  if (!cfg) {
    cfg = inferConfig(f.tensors, file).config;
    const n = f.args?.num_classes;
    if (n !== undefined && n !== cfg.numClasses) throw new Error(`${file}: args.num_classes is ${JSON.stringify(n)} but the label table has ${cfg.numClasses} classes (+1 null)`);
  }
  const model = createDiT(cfg, 0);
  try {
    loadStateDict(model, f.tensors, file);
  } catch (err) {
    for (const v of Object.values(model.params)) v.dispose();
    throw err;
  }
  return model;
}

/** Which weights of a file holding several: train.py's {model, ema} (default ema, as its sample.py). */
export type WeightsKey = 'ema' | 'model';

/**
 * Reads the tensors of a DiT weights file. A train.py checkpoint gives its EMA weights
 * unless `key` says 'model'; one without EMA weights is an error unless key is 'model'.
 */
export function readDiTTensors(file: string, key?: WeightsKey): TensorFile {
  // The key selects inside torch files only; a kit training checkpoint names its weights 'ema/...' and 'model/...'.
  const f = readTensorFile(file, (format) => (format === 'torch' && key !== undefined ? { key } : {}));
  if (f.args && f.chosen !== 'ema' && key === undefined) {
    throw new Error(`${file}: a train.py checkpoint without EMA weights (has ${f.chosen ?? 'none'}); pass --key model (key: 'model') to use the raw weights`);
  }
  return f;
}

/** Reads a DiT from a .pt / .pth / .safetensors file or a diffusers folder (see ditFromTensorFile). */
export function loadDiT(file: string, config?: DiTConfig, key?: WeightsKey): DiT {
  const diffusers = diffusersDiTFolder(file);
  if (diffusers) {
    const d = readDiffusersDiT(file);
    return ditFromTensorFile({ format: 'safetensors', tensors: d.tensors }, d.file, config ?? d.config);
  }
  return ditFromTensorFile(readDiTTensors(file, key), file, config);
}
