// The DiT configs of `npm run bench` and the kit's side of their timing on the active tfjs
// backend: one step of the kit's trainer (lib/train trainStep on an opened run: the batch,
// flips, label dropout, timesteps, the hybrid loss with its vb term, backward, AdamW, EMA)
// and one forward pass. bench/torch_dit.py does the same step in PyTorch.
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { ditConfig, DiTConfig, numTokens } from '../lib/model/config';
import { ditForward } from '../lib/model/dit';
import { gflops } from '../lib/model/gflops';
import { median } from '../lib/figures/stats';
import { EpochOrder } from '../lib/train/order';
import { arraySource } from '../lib/train/source';
import { closeRun, DEFAULT_TRAIN, openRun, trainStep } from '../lib/train/trainer';
import { Rng } from '../lib/util/rng';
import { timeCalls } from './measure';

export interface BenchConfig {
  /** What the bench calls it ('reference', 'mini-XL/2', '256 tokens'). */
  label: string;
  name: string;
  depth: number;
  hiddenSize: number;
  numHeads: number;
  inputSize: number;
  patch: number;
  batch: number;
}

/**
 * The benchmark's reference config (fixed since the first benchmark, so ratios stay
 * comparable): adaLN-Zero, 16x16x4 input, patch 2 (64 tokens), hidden 128, depth 6,
 * 4 heads; batch 32. It is not a member of today's mini family (8x8x4 latents).
 */
export const REFERENCE: BenchConfig = { label: 'reference', name: 'mini-L/2', depth: 6, hiddenSize: 128, numHeads: 4, inputSize: 16, patch: 2, batch: 32 };
/** The previous family's largest config (16x16x4, p = 2, hidden 160, depth 8, 5 heads), timed the same way. */
export const LARGEST: BenchConfig = { label: 'mini-XL/2', name: 'mini-XL/2', depth: 8, hiddenSize: 160, numHeads: 5, inputSize: 16, patch: 2, batch: 32 };
/**
 * The reference model at patch 1: 256 tokens, where attention is a larger share of the
 * step; batch 8 keeps the step's 2048 tokens of the reference.
 */
export const TOKENS_256: BenchConfig = { label: '256 tokens', name: 'mini-L/1', depth: 6, hiddenSize: 128, numHeads: 4, inputSize: 16, patch: 1, batch: 8 };

export const BENCH_CONFIGS: readonly BenchConfig[] = [REFERENCE, LARGEST, TOKENS_256];

/** A bench config by its label, its name, or its token count ('reference', 'mini-L/1', '256'); `what` names the option in errors. */
export function benchConfig(n: string, what = 'bench'): BenchConfig {
  const c = BENCH_CONFIGS.find((b) => b.label === n || b.name === n || `${(b.inputSize / b.patch) ** 2}` === n || b.label === `${n} tokens`);
  if (!c) throw new Error(`${what}: unknown DiT config '${n}' (use ${BENCH_CONFIGS.map((b) => `'${b.label}'`).join(', ')})`);
  return c;
}

export function benchDiTConfig(b: BenchConfig = REFERENCE): DiTConfig {
  return ditConfig(b.name, { inputSize: b.inputSize, patchSize: b.patch, depth: b.depth, hiddenSize: b.hiddenSize, numHeads: b.numHeads });
}

/** 'depth 6, hidden 128, 4 heads, 16x16x4, patch 2 (64 tokens), batch 32' */
export function describeConfig(b: BenchConfig): string {
  const c = benchDiTConfig(b);
  return `${b.name}: depth ${c.depth}, hidden ${c.hiddenSize}, ${c.numHeads} heads, ${c.inputSize}x${c.inputSize}x${c.inChannels}, ` +
    `patch ${c.patchSize} (${numTokens(c)} tokens), batch ${b.batch}, adaLN-Zero`;
}

/**
 * FLOPs of one training step: the paper's forward Gflops (lib/model/gflops.ts: multiply-adds
 * of the linear, matmul and conv layers) x 2 flops per multiply-add x 3 (forward + backward,
 * the paper's Fig. 9 convention) x batch. Norms, activations and the optimiser are not counted.
 */
export function trainStepFlops(b: BenchConfig): number {
  return gflops(benchDiTConfig(b)) * 1e9 * 2 * 3 * b.batch;
}

/** A training run and a fixed forward batch of a bench config, on the active backend. */
export interface DiTSession {
  config: DiTConfig;
  /** One step of the kit's trainer. */
  trainStep(): void;
  /** One forward pass (output read back). */
  forward(): void;
  close(): void;
}

/** `dataParallel`: threads that share each training step's batch (lib/train/data_parallel.ts). */
export function openDiTSession(bc: BenchConfig = REFERENCE, opts: { dataParallel?: number } = {}): DiTSession {
  const c = benchDiTConfig(bc);
  const B = bc.batch, I = c.inputSize;
  const rng = new Rng(0);
  // A run on B random samples that is never saved (trainStep writes nothing; the folder does not exist).
  const source = arraySource(rng.fillNormal(new Float32Array(B * c.inChannels * I * I)), Int32Array.from({ length: B }, (_, i) => i % c.numClasses),
    [c.inChannels, I, I], c.numClasses, 'bench');
  const state = openRun(path.join(os.tmpdir(), `dit-bench-${process.pid}-unsaved`), {
    ...DEFAULT_TRAIN, model: c, steps: Number.MAX_SAFE_INTEGER, batchSize: B, seed: 0, ckptEvery: Number.MAX_SAFE_INTEGER,
    ...(opts.dataParallel ? { dataParallel: opts.dataParallel } : {}),
  }, source);
  const order = new EpochOrder(source.size, 0);
  const x = tf.tensor(rng.fillNormal(new Float32Array(B * c.inChannels * I * I), 0, 1), [B, c.inChannels, I, I]);
  const t = tf.tensor(Int32Array.from({ length: B }, (_, i) => (i * 37) % 1000), [B], 'int32');
  const y = tf.tensor(Int32Array.from({ length: B }, (_, i) => i % c.numClasses), [B], 'int32');
  return {
    config: c,
    trainStep: () => void trainStep(state, source, order),
    forward: () => {
      const out = ditForward(state.model, x, t, y);
      out.dataSync();
      out.dispose();
    },
    close: () => {
      closeRun(state);
      tf.dispose([x, t, y]);
    },
  };
}

export interface DiTTimes {
  train_step_s: number;
  forward_s: number;
  /** Process CPU seconds (user + system) per step: steadier than wall time on a shared machine. */
  train_step_cpu_s: number;
  forward_cpu_s: number;
  /** Per-kernel milliseconds of one training step (only with profile). */
  kernels?: Array<{ name: string; ms: number; calls: number }>;
}

/** Median seconds of `reps` single training steps and forward passes (after `warmup` of each): bench/profile_dit.ts. */
export async function timeDiT(opts: { config?: BenchConfig; reps?: number; warmup?: number; profile?: boolean } = {}): Promise<DiTTimes> {
  const reps = opts.reps ?? 5, warmup = opts.warmup ?? 30;
  const s = openDiTSession(opts.config ?? REFERENCE);
  const time = (f: () => void) => {
    timeCalls(f, warmup);
    const runs = Array.from({ length: reps }, () => timeCalls(f));
    return [median(runs.map((r) => r.wall_s)), median(runs.map((r) => r.cpu_s))];
  };
  try {
    const [trainWall, trainCpu] = time(s.trainStep);
    const [fwdWall, fwdCpu] = time(s.forward);
    const out: DiTTimes = { train_step_s: trainWall, forward_s: fwdWall, train_step_cpu_s: trainCpu, forward_cpu_s: fwdCpu };
    if (opts.profile) {
      const info = await tf.profile(s.trainStep);
      const byKernel = new Map<string, { ms: number; calls: number }>();
      for (const k of info.kernels) {
        const e = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
        e.ms += Number(await k.kernelTimeMs);
        e.calls += 1;
        byKernel.set(k.name, e);
      }
      out.kernels = [...byKernel.entries()].map(([name, e]) => ({ name, ...e })).sort((a, b) => b.ms - a.ms);
    }
    return out;
  } finally {
    s.close();
  }
}
