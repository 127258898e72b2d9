// Sweeps: train every (model, variant) cell of an experiment once, evaluate its EMA
// model at the configured steps (and the final checkpoint at extra sampling step
// counts / guidance scales), append one results row per evaluation. Resumable:
// finished evaluations are found in the results CSV and skipped; a partly trained
// cell resumes from its checkpoint. Each cell is run under its own lock
// (<runs>/<cell>/sweep.lock), so two sweeps on one runs folder never train or evaluate
// the same cell at once: the second runs the other cells first, then waits for the busy
// ones and finds them done.
import * as fs from 'fs';
import * as path from 'path';
import { backendInfo } from '../backend';
import { gflops as modelGflops, samplingGflops, trainingGflops } from '../model/gflops';
import { paramCount } from '../model/params';
import { DiT } from '../model/dit';
import { appendResultsOrKeep, readResultsAndPending, ResultRow } from '../results/registry';
import { dataStd, sampleScale, SampleScale } from '../sample/health';
import { balancedLabels, sampleDiT } from '../sample/sample';
import { closeRun, train, TrainOptions, TrainState } from '../train/trainer';
import { TrainingSource } from '../train/source';
import { DIT_ADAMW } from '../train/adamw';
import { ValidationLoss } from '../train/validation';
import { GaussianDiffusion, trainingDiffusion } from '../diffusion';
import { describeHolder, hostName, Lock, lockAsync, lockState, tryLock } from '../util/lock';
import { writeFileAtomic } from '../util/paths';
import { configHash, gitCommit } from '../util/provenance';
import { Cell, ExperimentConfig, experimentCells, modelConfig } from './config';

/** Metrics of one evaluation; a metric that could not be computed is null. */
export interface Metrics {
  fid: number | null;
  sfid: number | null;
  inception_score: number | null;
  precision: number | null;
  recall: number | null;
  /** With a study eval.space (eval/space.ts): the primary FID's bootstrap se, the CNN-only FID, class accuracy. */
  fid_se?: number | null;
  fid_cnn?: number | null;
  class_accuracy?: number | null;
}

/** What a sweep needs from the data side: training data, decoding and evaluation. */
export interface Pipeline {
  source: TrainingSource;
  /** Latents [N, C, H, W] (model space) -> uint8 NHWC images. */
  decode(latents: Float32Array, shape: [number, number, number, number]): Uint8Array;
  /** Metrics of generated images (uint8 NHWC, generated for `labels`) against the reference set. */
  evaluate(images: Uint8Array, n: number, labels?: Int32Array): Promise<Metrics>;
  /** The held-out diffusion loss of a model (eval.valLatents > 0). */
  validate?: (model: DiT, diffusion: GaussianDiffusion) => ValidationLoss;
  /** Name of the feature network, for the feature_net column. */
  featureNet: string;
}

export interface EvalPoint {
  study: string;
  step: number;
  numSamples: number;
  samplingSteps: number;
  cfgScale: number;
}

export function trainOptions(e: ExperimentConfig, cell: Cell): TrainOptions {
  const t = e.train;
  return {
    model: modelConfig(e, cell.model, cell.variant),
    steps: t.steps,
    batchSize: t.batchSize,
    seed: cell.seed,
    optimizer: { ...DIT_ADAMW, lr: t.lr },
    ...(t.lrWarmup ? { lrWarmup: t.lrWarmup } : {}),
    ema: { decay: t.emaDecay, warmup: t.emaWarmup },
    gradClip: t.gradClip,
    flip: t.flip,
    diffusionSteps: 1000,
    noiseSchedule: 'linear',
    ckptEvery: t.ckptEvery,
  };
}

/** Every evaluation a cell owes its studies. */
export function evalPoints(e: ExperimentConfig, cell: Cell): EvalPoint[] {
  const out: EvalPoint[] = [];
  const last = e.train.steps;
  const n = (step: number) => (step === last ? e.eval.finalNumSamples ?? e.eval.numSamples : e.eval.numSamples);
  for (const s of e.studies) {
    if (!cell.studies.includes(s.name)) continue;
    for (const step of e.eval.atSteps) out.push({ study: s.name, step, numSamples: n(step), samplingSteps: e.eval.samplingSteps, cfgScale: e.eval.cfgScale });
    for (const samplingSteps of s.finalSamplingSteps ?? []) {
      for (const cfgScale of s.finalCfgScales ?? [e.eval.cfgScale]) out.push({ study: s.name, step: last, numSamples: n(last), samplingSteps, cfgScale });
    }
    if (!s.finalSamplingSteps) {
      for (const cfgScale of s.finalCfgScales ?? []) out.push({ study: s.name, step: last, numSamples: n(last), samplingSteps: e.eval.samplingSteps, cfgScale });
    }
  }
  // One evaluation per (study, step, sampling steps, scale).
  const seen = new Set<string>();
  return out.filter((p) => {
    const k = pointKey(p);
    return seen.has(k) ? false : (seen.add(k), true);
  });
}

/**
 * Estimated compute of a cell in Gflops: its training (Gflops x batch x steps x 3) plus
 * the sampling of its evaluations (each shared evaluation once).
 */
export function cellCost(e: ExperimentConfig, cell: Cell): number {
  const cfg = modelConfig(e, cell.model, cell.variant);
  const evals = new Map(evalPoints(e, cell).map((p) => [`${p.step}|${p.samplingSteps}|${p.cfgScale}`, p]));
  let sampling = 0;
  for (const p of evals.values()) sampling += p.numSamples * samplingGflops(cfg, p.samplingSteps, p.cfgScale !== 1);
  return trainingGflops(cfg, e.train.batchSize, e.train.steps) + sampling;
}

/** The cells in n groups of similar cost, for n sweep processes: costliest first, each into the lightest group. */
export function partitionCells(e: ExperimentConfig, n: number): Cell[][] {
  if (!Number.isInteger(n) || n < 1) throw new Error(`jobs must be a positive integer, got ${n}`);
  const groups = Array.from({ length: n }, () => ({ cells: [] as Cell[], cost: 0 }));
  const byCost = experimentCells(e).map((c) => ({ c, cost: cellCost(e, c) })).sort((a, b) => b.cost - a.cost);
  for (const { c, cost } of byCost) {
    const g = groups.reduce((a, b) => (b.cost < a.cost ? b : a));
    g.cells.push(c);
    g.cost += cost;
  }
  return groups.map((g) => g.cells).filter((g) => g.length);
}

/** One evaluation's identity within a cell (the registry's study, train_step, sampling_steps, cfg_scale). */
export const pointKey = (p: Omit<EvalPoint, 'numSamples'>) => `${p.study}|${p.step}|${p.samplingSteps}|${p.cfgScale}`;

/** The hash that says two rows come from the same settings (training, evaluation, data). */
export function sweepHash(e: ExperimentConfig, cell: Cell, source: TrainingSource, featureNet: string): string {
  return configHash({ train: trainOptions(e, cell), eval: { ...e.eval, atSteps: undefined }, data: source.id, featureNet });
}

function doneKeys(file: string, experiment: string, cell: Cell, hash: string): Set<string> {
  const rows = readResultsAndPending(file).filter((r) => r.experiment === experiment && r.cell === cell.id && r.config_hash === hash);
  return new Set(rows.map((r) => pointKey({ study: String(r.study), step: Number(r.train_step), samplingSteps: Number(r.sampling_steps), cfgScale: Number(r.cfg_scale) })));
}

/** Samples from the EMA weights and evaluates them; also returns the samples' scale against the data's (sample/health). */
export async function evaluatePoint(
  e: ExperimentConfig, cell: Cell, state: TrainState, p: EvalPoint, pipe: Pipeline, hash: string, onProgress?: () => void,
): Promise<{ row: Partial<ResultRow>; scale: SampleScale }> {
  const t0 = Date.now();
  const cfg = state.options.model;
  const ema: DiT = { config: cfg, params: state.ema };
  const labels = balancedLabels(p.numSamples, pipe.source.numClasses);
  const s = sampleDiT(ema, {
    diffusion: trainingDiffusion(state.options), labels, sampler: e.eval.sampler, steps: p.samplingSteps, cfgScale: p.cfgScale,
    guidanceChannels: e.eval.guidanceChannels, seed: e.eval.seed, batchSize: 125, progress: onProgress,
  });
  const scale = sampleScale(s.latents, dataStd(pipe.source));
  const images = pipe.decode(s.latents, s.shape);
  const m = await pipe.evaluate(images, s.shape[0], labels);
  const row: Partial<ResultRow> = {
    experiment: e.name, study: p.study, cell: cell.id, model: cell.model, variant: cell.variant, patch_size: cfg.patchSize,
    gflops: modelGflops(cfg), params: paramCount(cfg), train_step: p.step, batch_size: e.train.batchSize,
    train_gflops: trainingGflops(cfg, e.train.batchSize, p.step), seed: cell.seed, sampler: e.eval.sampler,
    sampling_steps: p.samplingSteps, cfg_scale: p.cfgScale, guidance_channels: e.eval.guidanceChannels,
    num_samples: p.numSamples, sampling_gflops_per_image: s.gflopsPerImage, feature_net: pipe.featureNet, ...m,
    sample_std_ratio: scale.ratio,
    config_hash: hash, data_id: pipe.source.id, git_commit: gitCommit(), backend: backendInfo()?.name ?? 'unknown',
    wall_time_s: (Date.now() - t0) / 1000, timestamp: new Date().toISOString(),
  };
  return { row, scale };
}

/** This process's Slurm job (ARRAYJOB_TASK for an array task), or null outside Slurm. */
export function slurmJobId(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.SLURM_ARRAY_JOB_ID && env.SLURM_ARRAY_TASK_ID) return `${env.SLURM_ARRAY_JOB_ID}_${env.SLURM_ARRAY_TASK_ID}`;
  return env.SLURM_JOB_ID ?? null;
}

/**
 * The exit code of a sweep stopped by SIGTERM with its checkpoints saved: EX_TEMPFAIL,
 * "try again"; the Slurm scripts requeue on it (so can a cluster's RequeueExit).
 */
export const SWEEP_INTERRUPTED_EXIT = 75;

/** A sweep stopped by its signal (SIGTERM): what it trained is checkpointed, a rerun resumes. */
export class SweepInterrupted extends Error {}

export interface SweepOptions {
  runsDir: string;
  resultsFile: string;
  /** Only these cell ids (default: all). */
  cells?: string[];
  quiet?: boolean;
  log?: (msg: string) => void;
  /** Once aborted (SIGTERM), the cell under way checkpoints and the sweep stops with SweepInterrupted. */
  signal?: AbortSignal;
}

/** Written when a cell's run throws, removed when it is run again: `dit sweep --status` reports it failed. */
export const cellFailedFile = (runsDir: string, cell: Cell) => path.join(runsDir, cell.id, 'failed.json');

function stopIfAborted(o: SweepOptions, what: string): void {
  if (o.signal?.aborted) throw new SweepInterrupted(`stopped by SIGTERM ${what}; rerun (or requeue) to resume`);
}

/**
 * A cell's lock: held for its whole training and evaluation, refreshed at every training
 * and sampling step, so a lock of another host untouched for an hour is stale.
 */
export const CELL_LOCK = { staleMs: 3600_000, pollMs: [500, 5000] as [number, number] };

/** The lock file of a cell. */
export function cellLockFile(runsDir: string, cell: Cell): string {
  return path.join(runsDir, cell.id, 'sweep.lock');
}

/** Runs (or resumes) the whole sweep; returns the rows it appended. */
export async function runSweep(e: ExperimentConfig, pipe: Pipeline, o: SweepOptions): Promise<Array<Partial<ResultRow>>> {
  const log = o.log ?? ((m: string) => process.stderr.write(`[sweep] ${m}\n`));
  const cells = experimentCells(e).filter((c) => !o.cells || o.cells.includes(c.id));
  if (o.cells) for (const id of o.cells) if (!cells.some((c) => c.id === id)) throw new Error(`no cell '${id}' in ${e.name}: cells are ${experimentCells(e).map((c) => c.id).join(', ')}`);
  const written: Array<Partial<ResultRow>> = [];
  const busy: Array<[number, Cell]> = [];
  for (const [i, cell] of cells.entries()) {
    stopIfAborted(o, `before cell ${cell.id}`);
    if (!owes(e, pipe, o, cell).length) {
      log(`cell ${i + 1}/${cells.length} ${cell.id}: done (all ${evalPoints(e, cell).length} evaluations in ${path.basename(o.resultsFile)})`);
      continue;
    }
    const file = cellLockFile(o.runsDir, cell);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const lock = tryLock(file, { ...CELL_LOCK, purpose: `sweep cell ${cell.id}`, log });
    if (!lock) {
      log(`cell ${i + 1}/${cells.length} ${cell.id}: being run by ${describeHolder(lockState(file, CELL_LOCK.staleMs)?.holder ?? null)}; back to it after the other cells`);
      busy.push([i, cell]);
      continue;
    }
    await runCellLocked(e, pipe, o, cell, `cell ${i + 1}/${cells.length}`, lock, log, written);
  }
  // Cells another process was running: wait for each, then do what it left (usually nothing).
  for (const [i, cell] of busy) {
    stopIfAborted(o, `before waiting for cell ${cell.id}`);
    const file = cellLockFile(o.runsDir, cell);
    const taking = lockAsync(file, {
      ...CELL_LOCK, timeoutMs: Infinity, purpose: `sweep cell ${cell.id}`, log,
      onWait: (h) => log(`cell ${i + 1}/${cells.length} ${cell.id}: waiting for ${describeHolder(h)} to finish it (${file})`),
    });
    // A lock taken after the wait was given up is let go at once.
    void taking.then((l) => o.signal?.aborted && l.release(), () => {});
    const lock = await Promise.race([taking, aborted(o.signal, `while waiting for cell ${cell.id}`)]);
    await runCellLocked(e, pipe, o, cell, `cell ${i + 1}/${cells.length}`, lock, log, written);
  }
  return written;
}

/** Rejects with SweepInterrupted once the signal is aborted (never settles without one). */
function aborted(signal: AbortSignal | undefined, what: string): Promise<never> {
  return new Promise((_, reject) => {
    const stop = () => reject(new SweepInterrupted(`stopped by SIGTERM ${what}; rerun (or requeue) to resume`));
    if (signal?.aborted) stop();
    else signal?.addEventListener('abort', stop, { once: true });
  });
}

/** The evaluations a cell still owes (those not in the registry nor pending). */
function owes(e: ExperimentConfig, pipe: Pipeline, o: SweepOptions, cell: Cell): EvalPoint[] {
  const done = doneKeys(o.resultsFile, e.name, cell, sweepHash(e, cell, pipe.source, pipe.featureNet));
  return evalPoints(e, cell).filter((p) => !done.has(pointKey(p)));
}

/** Trains and evaluates one cell while holding its lock (released at the end). */
async function runCellLocked(
  e: ExperimentConfig, pipe: Pipeline, o: SweepOptions, cell: Cell, label: string, lock: Lock,
  log: (m: string) => void, written: Array<Partial<ResultRow>>,
): Promise<void> {
  try {
    // Read again under the lock: another process may have finished the cell meanwhile.
    const pending = owes(e, pipe, o, cell);
    if (!pending.length) {
      log(`${label} ${cell.id}: done (all ${evalPoints(e, cell).length} evaluations in ${path.basename(o.resultsFile)})`);
      return;
    }
    fs.rmSync(cellFailedFile(o.runsDir, cell), { force: true });
    await runCell(e, pipe, o, cell, label, pending, lock, log, written);
  } catch (err) {
    if (!(err instanceof SweepInterrupted)) {
      const failure = { error: (err as Error).message, at: new Date().toISOString(), host: hostName(), pid: process.pid, slurmJob: slurmJobId() };
      try {
        writeFileAtomic(cellFailedFile(o.runsDir, cell), JSON.stringify(failure, null, 2) + '\n');
      } catch {
        /* the error itself matters more than its record */
      }
    }
    throw err;
  } finally {
    if (!lock.release()) log(`  warning: the lock of ${cell.id} (${lock.file}) was broken by another process while this one held it`);
  }
}

async function runCell(
  e: ExperimentConfig, pipe: Pipeline, o: SweepOptions, cell: Cell, label: string, pending: EvalPoint[], lock: Lock,
  log: (m: string) => void, written: Array<Partial<ResultRow>>,
): Promise<void> {
  const hash = sweepHash(e, cell, pipe.source, pipe.featureNet);
  const refresh = () => lock.refresh();
  log(`${label} ${cell.id}: ${pending.length} evaluation(s) to go`);
  const byStep = new Map<number, EvalPoint[]>();
  for (const p of pending) byStep.set(p.step, [...(byStep.get(p.step) ?? []), p]);
  const evalAt = async (step: number, state: TrainState) => {
    // Studies that share a cell often want the same evaluation: sample and score it once.
    const same = new Map<string, { row: Partial<ResultRow>; scale: SampleScale }>();
    // The held-out loss depends on the weights alone: once per step.
    let val: Partial<ResultRow> | undefined;
    const validation = () => {
      if (!val) {
        const v = pipe.validate?.({ config: state.options.model, params: state.ema }, state.diffusion);
        val = v ? { val_loss: v.loss, val_mse: v.mse, val_vb: v.vb } : {};
      }
      return val;
    };
    for (const p of byStep.get(step) ?? []) {
      const k = `${p.samplingSteps}|${p.cfgScale}|${p.numSamples}`;
      const prev = same.get(k);
      const r = prev
        ? { row: { ...prev.row, study: p.study, timestamp: new Date().toISOString() }, scale: prev.scale }
        : await evaluatePoint(e, cell, state, p, pipe, hash, refresh);
      Object.assign(r.row, validation());
      same.set(k, r);
      const { row, scale } = r;
      refresh();
      // The row is paid for: written once, or kept pending when the registry cannot be locked.
      if (!appendResultsOrKeep(o.resultsFile, [row], { unique: true, warn: (m) => log(`  warning: ${m}`) }).length) {
        log(`  ${cell.id} step ${step} ${p.study}: already in ${path.basename(o.resultsFile)} (written by another process); not added again`);
        continue;
      }
      written.push(row);
      const fid = typeof row.fid === 'number' ? row.fid.toFixed(2) : 'n/a';
      const parts = [
        `FID ${fid}${typeof row.fid_se === 'number' ? ` ± ${row.fid_se.toFixed(2)}` : ''}${typeof row.fid_cnn === 'number' ? ` (CNN ${row.fid_cnn.toFixed(2)})` : ''}`,
        typeof row.class_accuracy === 'number' ? `class accuracy ${(100 * row.class_accuracy).toFixed(1)}%` : '',
        typeof row.val_loss === 'number' ? `val loss ${row.val_loss.toFixed(4)}` : '',
        `sample std ${scale.ratio.toFixed(2)}x data (${(row.wall_time_s as number).toFixed(0)} s)`,
      ];
      log(`  ${cell.id} step ${step} ${p.study} ${e.eval.sampler}-${p.samplingSteps} cfg ${p.cfgScale} n ${p.numSamples}: ${parts.filter(Boolean).join(', ')}`);
      if (scale.warning && !prev) log(`  warning: ${cell.id} step ${step}: ${scale.warning}`);
    }
    byStep.delete(step);
  };
  const state = await train(path.join(o.runsDir, cell.id), trainOptions(e, cell), pipe.source, {
    quiet: o.quiet,
    evalSteps: [...byStep.keys()],
    onEval: evalAt,
    onStep: refresh,
    signal: o.signal,
    // A run resumed exactly at an evaluation step (killed between its checkpoint and
    // its evaluation), or already finished, evaluates what it still owes first.
    onStart: async (st) => {
      if (byStep.has(st.step)) await evalAt(st.step, st);
    },
  });
  const lost = [...byStep.keys()];
  closeRun(state);
  if (state.step < state.options.steps) {
    log(`  ${cell.id}: stopped by SIGTERM at step ${state.step} of ${state.options.steps}, checkpoint saved`);
    stopIfAborted(o, `in cell ${cell.id} at step ${state.step}`);
  }
  if (lost.length) log(`  ${cell.id}: no checkpoint left for step(s) ${lost.join(', ')}; delete ${path.join(o.runsDir, cell.id)} to retrain them`);
}
