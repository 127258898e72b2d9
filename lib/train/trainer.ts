// The DiT training loop (paper Sec. 4 / DiT train.py): AdamW, label dropout, uniform
// timesteps, the hybrid loss, EMA, horizontal flips; resumable and deterministic: every
// random draw comes from one seeded stream whose state is checkpointed.
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { createDiffusion, GaussianDiffusion } from '../diffusion';
import { DiTConfig, validateConfig } from '../model/config';
import { createDiT, DiT, disposeDiT, dropLabels } from '../model/dit';
import { checkLabels } from '../model/labels';
import { trainingGflops } from '../model/gflops';
import { AdamWConfig, AdamWState, DIT_ADAMW, createAdamW, disposeAdamW } from './adamw';
import { EmaConfig, createEma, emaDecayAt, updateEma } from './ema';
import { readTrainingCheckpoint, restoreTrainingTensors, saveTrainingCheckpoint } from './checkpoint';
import { EpochOrder, drawFlips } from './order';
import { TrainingSource } from './source';
import { applyGrads, lossGrads } from './step';
import { batchRows, DiTBatch, ditBatchLoss } from './dit_loss';
import { parallelLossGrads, splitRows, startDataParallel, stopDataParallel, DataParallel } from './data_parallel';
import { configHash, gitCommit } from '../util/provenance';
import { progress } from '../util/progress';
import { derivedSeed, Rng } from '../util/rng';
import { cleanStaleTemps } from '../util/paths';
import { truncateStepCsv } from '../util/step_csv';

export interface TrainOptions {
  model: DiTConfig;
  steps: number;
  batchSize: number;
  seed: number;
  optimizer: AdamWConfig;
  /** Linear learning-rate warm-up over this many steps (0 or absent: none, as the paper). */
  lrWarmup?: number;
  ema: EmaConfig;
  /** Clip the global gradient norm (null: off, as in the paper). */
  gradClip: number | null;
  /** Horizontal-flip augmentation (the paper's only augmentation). */
  flip: boolean;
  diffusionSteps: number;
  noiseSchedule: 'linear' | 'cosine';
  /** Save a checkpoint every this many steps (and at the end). */
  ckptEvery: number;
  /**
   * Threads that share each step's batch (data parallelism, data_parallel.ts; 1 or absent:
   * off). Not part of the run: the results are the single-thread run's up to float rounding,
   * and a run may resume with another count.
   */
  dataParallel?: number;
}

export const DEFAULT_TRAIN: Omit<TrainOptions, 'model' | 'steps'> = {
  batchSize: 256,
  seed: 0,
  optimizer: DIT_ADAMW,
  ema: { decay: 0.9999, warmup: false },
  gradClip: null,
  flip: true,
  diffusionSteps: 1000,
  noiseSchedule: 'linear',
  ckptEvery: 1000,
};

export interface StepLog {
  step: number;
  loss: number;
  mse: number;
  vb: number;
  stepsPerSec: number;
  /** Cumulative training compute so far (paper Fig. 9: Gflops x batch x steps x 3). */
  trainGflops: number;
}

export interface TrainHooks {
  /** After the run is opened (fresh or resumed), before the first step. */
  onStart?: (state: TrainState) => void | Promise<void>;
  /** After each step (the loss is already checked to be finite). */
  onStep?: (log: StepLog, state: TrainState) => void | Promise<void>;
  /** Steps at which to call onEval (after the step and its checkpoint). */
  evalSteps?: number[];
  onEval?: (step: number, state: TrainState) => void | Promise<void>;
  /** Once aborted, the run stops after the step under way and checkpoints it (SIGTERM before a time limit); a rerun resumes there. */
  signal?: AbortSignal;
  quiet?: boolean;
}

export interface TrainState {
  options: TrainOptions;
  model: DiT;
  ema: Record<string, tf.Variable>;
  opt: AdamWState;
  rng: Rng;
  step: number;
  diffusion: GaussianDiffusion;
  dir: string;
  /** The workers of a data-parallel run. */
  parallel?: DataParallel;
}

const CKPT = 'checkpoint.safetensors';
const LOSS_CSV = 'loss.csv';

/** What must match between a checkpoint and the run resuming from it. */
function runHash(o: TrainOptions, source: TrainingSource): string {
  const { steps: _s, ckptEvery: _c, dataParallel: _d, ...rest } = o;
  return configHash({ ...rest, data: source.id });
}

/** Fresh state, or the state of the checkpoint in `dir` when there is one. */
export function openRun(dir: string, options: TrainOptions, source: TrainingSource): TrainState {
  const o = { ...options, model: validateConfig(options.model) };
  const [c, h, w] = source.shape;
  if (c !== o.model.inChannels || h !== o.model.inputSize || w !== o.model.inputSize) {
    throw new Error(`data samples are [${source.shape}] but ${o.model.name} takes [${o.model.inChannels}, ${o.model.inputSize}, ${o.model.inputSize}]`);
  }
  if (!(Number.isInteger(o.batchSize) && o.batchSize > 0)) throw new Error(`training ${o.model.name}: batch size must be a positive integer, got ${o.batchSize}`);
  if (source.size === 0) throw new Error(`training ${o.model.name}: the training data ${source.id} is empty (no samples)`);
  if (source.numClasses > o.model.numClasses) {
    throw new Error(`data has ${source.numClasses} classes but the model only ${o.model.numClasses}`);
  }
  const threads = o.dataParallel ?? 1;
  if (threads !== 1) splitRows(o.batchSize, threads); // names a bad thread count or too small a batch
  const model = createDiT(o.model, o.seed);
  const diffusionOptions = { diffusionSteps: o.diffusionSteps, noiseSchedule: o.noiseSchedule, learnSigma: o.model.learnSigma };
  const state: TrainState = {
    options: o,
    model,
    ema: createEma(model.params),
    opt: createAdamW(model.params, o.optimizer),
    rng: new Rng(derivedSeed(o.seed + 1)),
    step: 0,
    diffusion: createDiffusion(diffusionOptions),
    dir,
  };
  const file = path.join(dir, CKPT);
  // A kill during a checkpoint write leaves its temporary file beside the checkpoint.
  cleanStaleTemps(file);
  if (fs.existsSync(file)) {
    const ck = readTrainingCheckpoint(file);
    const want = runHash(o, source);
    if (ck.meta.runHash !== want) {
      closeRun(state);
      throw new Error(`checkpoint ${file} belongs to a different run (hash ${ck.meta.runHash}, this run ${want}): ` +
        `model, optimiser, seed or data differ. Use another --out directory or delete the checkpoint.`);
    }
    try {
      restoreTrainingTensors(ck, state);
    } catch (err) {
      closeRun(state);
      throw err;
    }
    state.rng = Rng.fromState(ck.meta.rng);
    state.step = ck.meta.step;
  }
  if (threads > 1) {
    try {
      state.parallel = startDataParallel(threads, model, diffusionOptions, source.shape, o.batchSize);
    } catch (err) {
      closeRun(state);
      throw err;
    }
  }
  return state;
}

export function closeRun(state: TrainState): void {
  if (state.parallel) stopDataParallel(state.parallel);
  disposeDiT(state.model);
  for (const v of Object.values(state.ema)) v.dispose();
  disposeAdamW(state.opt);
}

export function saveRun(state: TrainState, source: TrainingSource): void {
  saveTrainingCheckpoint(path.join(state.dir, CKPT), state, {
    step: state.step,
    runHash: runHash(state.options, source),
    options: JSON.stringify(state.options),
    rng: state.rng.getState(),
    optimizerStep: state.opt.step,
    loop: JSON.stringify({ samplesSeen: state.step * state.options.batchSize }),
    gitCommit: gitCommit(),
  });
}

/** The learning rate of step `step` (0-based): linear warm-up, then constant. */
export function lrAt(o: Pick<TrainOptions, 'optimizer' | 'lrWarmup'>, step: number): number {
  const w = o.lrWarmup ?? 0;
  return w > 0 && step < w ? (o.optimizer.lr * (step + 1)) / w : o.optimizer.lr;
}

/** The next step's batch with all its draws from the run's stream, in this order: flips, label dropout, timesteps, noise. */
export function drawBatch(state: TrainState, source: TrainingSource, order: EpochOrder): DiTBatch {
  const o = state.options;
  const B = o.batchSize;
  const rng = state.rng;
  const batch = source.read(order.batch(state.step, B), drawFlips(rng, B, o.flip));
  checkLabels(batch.y, o.model.numClasses, { what: `training data ${source.id}` });
  const y = dropLabels(batch.y, o.model.classDropoutProb, o.model.numClasses, rng);
  const t = state.diffusion.sampleTimesteps(rng, B);
  const noise = rng.fillNormal(new Float32Array(batch.x.length));
  return { x: batch.x, y, t, noise };
}

/** One optimisation step on the batch the run's stream selects. Returns the mean loss terms. */
export function trainStep(state: TrainState, source: TrainingSource, order: EpochOrder): { loss: number; mse: number; vb: number } {
  const o = state.options;
  const b = drawBatch(state, source, order);
  const label = 'DiT training';
  const grads = (part: DiTBatch) => lossGrads(() => ditBatchLoss(state.model, state.diffusion, source.shape, part), state.model.params, label);
  const per = b.x.length / b.y.length;
  const g = state.parallel ? parallelLossGrads(state.parallel, state.model, b, (rows) => grads(batchRows(b, per, 0, rows))) : grads(b);
  const r = applyGrads(g, {
    params: state.model.params, opt: state.opt, step: state.step + 1, lr: lrAt(o, state.step), gradClip: o.gradClip,
    label, kept: `the last good checkpoint in ${state.dir} is kept`,
  });
  updateEma(state.ema, state.model.params, emaDecayAt(o.ema, state.step));
  state.step += 1;
  return { loss: r.loss, mse: r.terms.mse ?? NaN, vb: r.terms.vb ?? 0 };
}

/**
 * Trains until `options.steps` (resuming from `dir` when a checkpoint is there), writing
 * `dir/checkpoint.safetensors` every ckptEvery steps and at the end, and the loss
 * history to `dir/loss.csv`.
 */
export async function train(dir: string, options: TrainOptions, source: TrainingSource, hooks: TrainHooks = {}): Promise<TrainState> {
  fs.mkdirSync(dir, { recursive: true });
  const state = openRun(dir, options, source);
  const o = state.options;
  const order = new EpochOrder(source.size, o.seed);
  const csv = path.join(dir, LOSS_CSV);
  truncateStepCsv(csv, 'step,loss,mse,vb,train_gflops\n', state.step);
  const evalSteps = new Set(hooks.evalSteps ?? []);
  const bar = hooks.quiet ? null : progress(`train ${o.model.name}`, o.steps, { start: state.step });
  if (!hooks.quiet && state.step > 0) process.stderr.write(`[dit] resuming ${dir} at step ${state.step}\n`);
  await hooks.onStart?.(state);
  const t0 = Date.now();
  const startStep = state.step;
  let saved = state.step;
  while (state.step < o.steps && !hooks.signal?.aborted) {
    let r;
    try {
      r = trainStep(state, source, order);
    } catch (err) {
      closeRun(state); // the checkpoint on disk is the last good state
      throw err;
    }
    const sps = (state.step - startStep) / Math.max((Date.now() - t0) / 1000, 1e-9);
    const log: StepLog = { step: state.step, ...r, stepsPerSec: sps, trainGflops: trainingGflops(o.model, o.batchSize, state.step) };
    fs.appendFileSync(csv, `${log.step},${log.loss},${log.mse},${log.vb},${log.trainGflops}\n`);
    bar?.update(state.step, `loss ${r.loss.toFixed(4)}`);
    if (state.step % o.ckptEvery === 0 || state.step === o.steps) {
      saveRun(state, source);
      saved = state.step;
    }
    await hooks.onStep?.(log, state);
    if (evalSteps.has(state.step)) await hooks.onEval?.(state.step, state);
    // A step never waits on I/O: give a pending signal (SIGTERM's handler) its turn.
    if (hooks.signal) await new Promise((res) => setImmediate(res));
  }
  // Stopped early: keep the steps since the last checkpoint (the stream's state is in it, so the resumed run is the same run).
  if (state.step !== saved) saveRun(state, source);
  if (state.step === o.steps) bar?.done(`train compute ${trainingGflops(o.model, o.batchSize, o.steps).toExponential(3)} Gflops`);
  return state;
}
