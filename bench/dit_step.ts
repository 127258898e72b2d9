// Times the reference mini DiT (the benchmark's reference config) on the active tfjs backend: one step of
// the kit's trainer (lib/train trainStep on an opened run: label dropout, timesteps, the
// hybrid loss, backward, AdamW, EMA) and one forward pass. bench/torch_dit.py times a
// plainer PyTorch step (MSE loss and AdamW only), so the kit's side does the more work.
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { ditConfig, DiTConfig } from '../lib/model/config';
import { ditForward } from '../lib/model/dit';
import { median } from '../lib/figures/stats';
import { EpochOrder } from '../lib/train/order';
import { arraySource } from '../lib/train/source';
import { closeRun, DEFAULT_TRAIN, openRun, trainStep } from '../lib/train/trainer';
import { Rng } from '../lib/util/rng';

export interface BenchConfig {
  name: string;
  depth: number;
  hiddenSize: number;
  numHeads: number;
  batch: number;
}

/**
 * The benchmark's reference config (fixed since the first benchmark, so ratios stay
 * comparable): adaLN-Zero, 16x16x4 input, patch 2 (64 tokens), hidden 128, depth 6,
 * 4 heads; batch 32. It is not a member of today's mini family (8x8x4 latents).
 */
export const REFERENCE: BenchConfig = { name: 'mini-L/2', depth: 6, hiddenSize: 128, numHeads: 4, batch: 32 };
/** The previous family's largest config (16x16x4, p = 2, hidden 160, depth 8, 5 heads), timed the same way. */
export const LARGEST: BenchConfig = { name: 'mini-XL/2', depth: 8, hiddenSize: 160, numHeads: 5, batch: 32 };

export function benchDiTConfig(b: BenchConfig = REFERENCE): DiTConfig {
  return ditConfig(b.name, { inputSize: 16, depth: b.depth, hiddenSize: b.hiddenSize, numHeads: b.numHeads });
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


/** Median seconds of `reps` training steps and forward passes (after `warmup` of each). */
export async function timeDiT(opts: { config?: BenchConfig; reps?: number; warmup?: number; profile?: boolean } = {}): Promise<DiTTimes> {
  const reps = opts.reps ?? 5, warmup = opts.warmup ?? 2;
  const bc = opts.config ?? REFERENCE;
  const c = benchDiTConfig(bc);
  const B = bc.batch, I = c.inputSize;
  const rng = new Rng(0);
  // A run on B random samples that is never saved (trainStep writes nothing; the folder does not exist).
  const source = arraySource(rng.fillNormal(new Float32Array(B * c.inChannels * I * I)), Int32Array.from({ length: B }, (_, i) => i % c.numClasses),
    [c.inChannels, I, I], c.numClasses, 'bench');
  const state = openRun(path.join(os.tmpdir(), `dit-bench-${process.pid}-unsaved`), {
    ...DEFAULT_TRAIN, model: c, steps: Number.MAX_SAFE_INTEGER, batchSize: B, seed: 0, ckptEvery: Number.MAX_SAFE_INTEGER,
  }, source);
  const order = new EpochOrder(source.size, 0);
  const model = state.model;
  const x = tf.tensor(rng.fillNormal(new Float32Array(B * c.inChannels * I * I), 0, 1), [B, c.inChannels, I, I]);
  const t = tf.tensor(Int32Array.from({ length: B }, (_, i) => (i * 37) % 1000), [B], 'int32');
  const y = tf.tensor(Int32Array.from({ length: B }, (_, i) => i % c.numClasses), [B], 'int32');

  const step = () => {
    trainStep(state, source, order);
  };
  const forward = () => {
    const out = ditForward(model, x, t, y);
    out.dataSync();
    out.dispose();
  };
  const time = (f: () => void) => {
    for (let i = 0; i < warmup; i++) f();
    const wall: number[] = [], cpu: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
      f();
      const c = process.cpuUsage(c0);
      wall.push(Number(process.hrtime.bigint() - t0) / 1e9);
      cpu.push((c.user + c.system) / 1e6);
    }
    return [median(wall), median(cpu)];
  };
  try {
    const [trainWall, trainCpu] = time(step);
    const [fwdWall, fwdCpu] = time(forward);
    const out: DiTTimes = { train_step_s: trainWall, forward_s: fwdWall, train_step_cpu_s: trainCpu, forward_cpu_s: fwdCpu };
    if (opts.profile) {
      const info = await tf.profile(step);
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
    closeRun(state);
    tf.dispose([x, t, y]);
  }
}
