// Training-state checkpoints: named groups of variables (model, EMA, AdamW moments)
// stored as 'group/name' in one .safetensors file with the run's metadata (step, RNG
// state, run hash, options), written atomically (temp file, then rename), so a run
// killed at any moment resumes from its last checkpoint. The DiT trainer, the
// autoencoder trainer and `dit sample` read and write them here and nowhere else.
import * as fs from 'fs';
import * as tf from '@tensorflow/tfjs-core';
import { HostArray, toFloat32 } from '../io/array';
import { readSafetensors, encodeSafetensors } from '../io/safetensors';
import { DiT } from '../model/dit';
import { AdamWState } from './adamw';
import type { TrainOptions } from './trainer';
import { parseJsonField, writeFileAtomic } from '../util/paths';
import { RngState } from '../util/rng';

/** Variables by group ('model', 'ema', 'adam_m', ...), then by parameter name. */
export type VariableGroups = Record<string, Record<string, tf.Variable>>;

/** What a kind of checkpoint is called in errors, and its metadata `kind` tag. */
export interface CheckpointKind {
  kind: string;
  /** 'checkpoint', 'autoencoder checkpoint': "corrupt <what> FILE: ...". */
  what: string;
  /** What the file should have been: "FILE is not <description> (kind '...')". */
  description: string;
  /** Appended to the corrupt-file error, e.g. '; delete it to start over'. */
  corruptHint?: string;
}

/** A checkpoint's raw content: metadata strings and tensors by 'group/name'. */
export interface StateCheckpoint {
  file: string;
  metadata: Record<string, string>;
  tensors: Record<string, HostArray>;
}

function host(v: tf.Tensor): HostArray {
  return { dtype: 'float32', shape: v.shape.slice(), data: v.dataSync() as Float32Array };
}

/** Writes every group's tensors and the metadata (strings as they are, the rest as JSON) atomically. */
export function writeStateCheckpoint(file: string, groups: VariableGroups, metadata: Record<string, unknown>): void {
  const tensors: Record<string, HostArray> = Object.create(null);
  for (const [g, vars] of Object.entries(groups)) {
    for (const [k, v] of Object.entries(vars)) tensors[`${g}/${k}`] = host(v);
  }
  const md: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) md[k] = typeof v === 'string' ? v : JSON.stringify(v);
  writeFileAtomic(file, encodeSafetensors(tensors, md));
}

/** A checkpoint of `kind` from tensors and metadata already read; a file of another kind is an error. */
export function stateCheckpointFrom(file: string, st: { tensors: Record<string, HostArray>; metadata?: Record<string, string> }, k: CheckpointKind): StateCheckpoint {
  const md = st.metadata ?? {};
  if (md.kind !== k.kind) throw new Error(`${file} is not ${k.description} (kind '${md.kind ?? 'none'}')`);
  return { file, metadata: md, tensors: st.tensors };
}

/** Reads a checkpoint of `kind`; a missing, truncated or foreign file is a clear error. */
export function readStateCheckpoint(file: string, k: CheckpointKind): StateCheckpoint {
  if (!fs.existsSync(file)) throw new Error(`${k.what} not found: ${file}`);
  let st;
  try {
    st = readSafetensors(file);
  } catch (err) {
    throw new Error(`corrupt ${k.what} ${file}: ${(err as Error).message}${k.corruptHint ?? ''}`);
  }
  return stateCheckpointFrom(file, st, k);
}

/** A metadata field parsed as JSON; a missing or malformed one names the file and field. */
export function metadataJson<T>(ck: StateCheckpoint, field: string): T {
  return parseJsonField(ck.file, field, ck.metadata[field]) as T;
}

/**
 * Copies the checkpoint's tensors into `groups`, after checking that every one is there
 * with exactly the variable's shape (the same element count in another shape is refused,
 * never reshaped). `fits` names what the checkpoint must fit in the error ('this run').
 */
export function restoreGroups(ck: StateCheckpoint, groups: VariableGroups, fits: string): void {
  const problems: string[] = [];
  for (const [g, vars] of Object.entries(groups)) {
    for (const [k, v] of Object.entries(vars)) {
      const a = ck.tensors[`${g}/${k}`];
      if (!a) problems.push(`missing ${g}/${k}`);
      else if (a.shape.join(',') !== v.shape.join(',')) problems.push(`${g}/${k} has shape [${a.shape}], expected [${v.shape}]`);
    }
  }
  if (problems.length) {
    const more = problems.length > 8 ? ` (+${problems.length - 8} more)` : '';
    throw new Error(`checkpoint ${ck.file} does not fit ${fits}: ${problems.slice(0, 8).join('; ')}${more}`);
  }
  for (const [g, vars] of Object.entries(groups)) {
    for (const [k, v] of Object.entries(vars)) v.assign(tf.tensor(toFloat32(ck.tensors[`${g}/${k}`]), v.shape));
  }
}

// The DiT trainer's checkpoint: model, EMA and AdamW moments, and how to continue.

export const CHECKPOINT_KIND = 'dit-kit/train-checkpoint/v1';

const DIT_CHECKPOINT: CheckpointKind = {
  kind: CHECKPOINT_KIND,
  what: 'checkpoint',
  description: 'a dit-kit training checkpoint; model-only weights load with loadDiT',
};

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

function ditGroups(t: TrainingTensors): VariableGroups {
  return { model: t.model.params, ema: t.ema, adam_m: t.opt.m, adam_v: t.opt.v };
}

/** Writes the checkpoint atomically. Tensors are kept in the kit's internal layout. */
export function saveTrainingCheckpoint(file: string, t: TrainingTensors, meta: Omit<CheckpointMeta, 'kind' | 'savedAt'>): void {
  const full: CheckpointMeta = { ...meta, kind: CHECKPOINT_KIND, savedAt: new Date().toISOString() };
  writeStateCheckpoint(file, ditGroups(t), { ...full });
}

export interface LoadedCheckpoint extends StateCheckpoint {
  meta: CheckpointMeta;
}

/** Whether tensors read from a file (readTensorFile) are a DiT training checkpoint. */
export function isTrainingCheckpoint(f: { metadata?: Record<string, string> }): boolean {
  return f.metadata?.kind === CHECKPOINT_KIND;
}

/** The DiT training checkpoint in tensors and metadata already read, validated. */
export function trainingCheckpointFrom(file: string, st: { tensors: Record<string, HostArray>; metadata?: Record<string, string> }): LoadedCheckpoint {
  const ck = stateCheckpointFrom(file, st, DIT_CHECKPOINT);
  const md = ck.metadata;
  const meta = {
    kind: CHECKPOINT_KIND,
    step: Number(md.step),
    runHash: md.runHash,
    options: md.options,
    rng: metadataJson(ck, 'rng'),
    optimizerStep: Number(md.optimizerStep),
    loop: md.loop,
    gitCommit: md.gitCommit,
    savedAt: md.savedAt,
  } as CheckpointMeta;
  if (!Number.isInteger(meta.step) || meta.step < 0) throw new Error(`corrupt checkpoint ${file}: bad step '${md.step}'`);
  metadataJson(ck, 'options');
  return { ...ck, meta };
}

/** Reads and validates a training checkpoint; a truncated or foreign file is a clear error. */
export function readTrainingCheckpoint(file: string): LoadedCheckpoint {
  return trainingCheckpointFrom(file, readStateCheckpoint(file, DIT_CHECKPOINT));
}

/** The run's options recorded in the checkpoint (model config, diffusion, optimiser, ...). */
export function trainingOptions(ck: LoadedCheckpoint): TrainOptions {
  return metadataJson<TrainOptions>(ck, 'options');
}

/** Copies a checkpoint's tensors into live variables, checking every name and shape. */
export function restoreTrainingTensors(ck: LoadedCheckpoint, t: TrainingTensors): void {
  restoreGroups(ck, ditGroups(t), 'this run');
  t.opt.step = ck.meta.optimizerStep;
}

/** Copies the checkpoint's EMA (or raw model) weights into `params`, checking every name and shape. */
export function restoreWeights(ck: LoadedCheckpoint, which: 'ema' | 'model', params: Record<string, tf.Variable>, fits: string): void {
  restoreGroups(ck, { [which]: params }, fits);
}
