// Training checkpoints: model, EMA, AdamW moments, RNG state, step and config in one
// .safetensors file, written atomically (temp file, then rename), so a run killed at
// any moment resumes from its last checkpoint.
import * as fs from 'fs';
import * as tf from '@tensorflow/tfjs-core';
import { HostArray, toFloat32 } from '../io/array';
import { readSafetensors, encodeSafetensors } from '../io/safetensors';
import { DiT } from '../model/dit';
import { AdamWState } from './adamw';
import { parseJsonField, writeFileAtomic } from '../util/paths';
import { RngState } from '../util/rng';

export const CHECKPOINT_KIND = 'dit-kit/train-checkpoint/v1';

export interface CheckpointMeta {
  kind: typeof CHECKPOINT_KIND;
  step: number;
  /** Hash of everything that must match for a resume (model config, optimiser, data, seed). */
  runHash: string;
  /** The run's options as JSON (for humans and for `dit sample`). */
  options: string;
  rng: { s: RngState; spare: number | null };
  optimizerStep: number;
  /** Number of training samples seen, epochs, ... anything the loop needs to continue. */
  loop: string;
  gitCommit: string;
  savedAt: string;
}

export interface TrainingTensors {
  model: DiT;
  ema: Record<string, tf.Variable>;
  opt: AdamWState;
}

function host(v: tf.Tensor): HostArray {
  return { dtype: 'float32', shape: v.shape.slice(), data: v.dataSync() as Float32Array };
}

/** Writes the checkpoint atomically. Tensors are kept in the kit's internal layout. */
export function saveTrainingCheckpoint(file: string, t: TrainingTensors, meta: Omit<CheckpointMeta, 'kind' | 'savedAt'>): void {
  const tensors: Record<string, HostArray> = {};
  for (const [k, v] of Object.entries(t.model.params)) tensors[`model/${k}`] = host(v);
  for (const [k, v] of Object.entries(t.ema)) tensors[`ema/${k}`] = host(v);
  for (const [k, v] of Object.entries(t.opt.m)) tensors[`adam_m/${k}`] = host(v);
  for (const [k, v] of Object.entries(t.opt.v)) tensors[`adam_v/${k}`] = host(v);
  const full: CheckpointMeta = { ...meta, kind: CHECKPOINT_KIND, savedAt: new Date().toISOString() };
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(full)) metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
  writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}

export interface LoadedCheckpoint {
  meta: CheckpointMeta;
  tensors: Record<string, HostArray>;
}

/** Reads and validates a training checkpoint; a truncated or foreign file is a clear error. */
export function readTrainingCheckpoint(file: string): LoadedCheckpoint {
  if (!fs.existsSync(file)) throw new Error(`checkpoint not found: ${file}`);
  let st;
  try {
    st = readSafetensors(file);
  } catch (err) {
    throw new Error(`corrupt checkpoint ${file}: ${(err as Error).message}`);
  }
  const md = st.metadata ?? {};
  if (md.kind !== CHECKPOINT_KIND) {
    throw new Error(`${file} is not a dit-kit training checkpoint (kind '${md.kind ?? 'none'}'); model-only weights load with loadDiT`);
  }
  const meta = {
    kind: CHECKPOINT_KIND,
    step: Number(md.step),
    runHash: md.runHash,
    options: md.options,
    rng: parseJsonField(file, 'rng', md.rng),
    optimizerStep: Number(md.optimizerStep),
    loop: md.loop,
    gitCommit: md.gitCommit,
    savedAt: md.savedAt,
  } as CheckpointMeta;
  if (!Number.isInteger(meta.step) || meta.step < 0) throw new Error(`corrupt checkpoint ${file}: bad step '${md.step}'`);
  return { meta, tensors: st.tensors };
}

/** Copies a checkpoint's tensors into live variables, checking every name and shape. */
export function restoreTrainingTensors(file: string, ck: LoadedCheckpoint, t: TrainingTensors): void {
  const groups: Array<[string, Record<string, tf.Variable>]> = [
    ['model', t.model.params], ['ema', t.ema], ['adam_m', t.opt.m], ['adam_v', t.opt.v],
  ];
  const problems: string[] = [];
  for (const [g, vars] of groups) {
    for (const [k, v] of Object.entries(vars)) {
      const a = ck.tensors[`${g}/${k}`];
      if (!a) problems.push(`missing ${g}/${k}`);
      else if (a.shape.join(',') !== v.shape.join(',')) problems.push(`${g}/${k}: [${a.shape}] vs [${v.shape}]`);
    }
  }
  if (problems.length) throw new Error(`checkpoint ${file} does not fit this run: ${problems.slice(0, 8).join('; ')}${problems.length > 8 ? ` (+${problems.length - 8} more)` : ''}`);
  for (const [g, vars] of groups) {
    for (const [k, v] of Object.entries(vars)) v.assign(tf.tensor(toFloat32(ck.tensors[`${g}/${k}`]), v.shape));
  }
  t.opt.step = ck.meta.optimizerStep;
}
