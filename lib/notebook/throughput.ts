// Measured speed of a DiT config on the active backend: one forward pass and one
// training step (AdamW, the hybrid loss, EMA) on random data, timed after a warm-up.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend';
import { DiTConfig } from '../model/config';
import { createDiT, ditForward, disposeDiT } from '../model/dit';
import { gflops, modelStats } from '../model/gflops';
import { DIT_ADAMW } from '../train/adamw';
import { arraySource } from '../train/source';
import { EpochOrder } from '../train/order';
import { closeRun, DEFAULT_TRAIN, openRun, trainStep } from '../train/trainer';
import { Rng } from '../util/rng';
import { median } from '../figures/stats';

export interface Throughput extends Record<string, string | number> {
  model: string;
  variant: string;
  backend: string;
  batch_size: number;
  tokens: number;
  params: number;
  gflops: number;
  /** Median wall time of one forward pass of the batch (ms). */
  forward_ms: number;
  /** Median wall time of one training step of the batch (ms). */
  train_step_ms: number;
  forward_images_per_s: number;
  train_images_per_s: number;
  /** Model Gflops x batch / forward time: the multiply-adds per second the forward pass achieved. */
  forward_gmacs_per_s: number;
}

export interface ThroughputOptions {
  batchSize: number;
  /** Timed repetitions (the median is reported; default 3). */
  repeats?: number;
  /** Untimed warm-up runs (default 1). */
  warmup?: number;
  seed?: number;
}


function timeIt(fn: () => void, warmup: number, repeats: number): number {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(times);
}

/** Times a forward pass and a training step of `config` with batch `batchSize` on the active backend. */
export async function measureThroughput(config: DiTConfig, o: ThroughputOptions): Promise<Throughput> {
  const info = await initBackend({ quiet: true });
  const B = o.batchSize;
  const repeats = o.repeats ?? 3;
  const warmup = o.warmup ?? 1;
  const seed = o.seed ?? 0;
  const { inChannels: C, inputSize: S } = config;
  const rng = new Rng(seed);
  const xs = rng.fillNormal(new Float32Array(B * C * S * S));
  const labels = Int32Array.from({ length: B }, (_, i) => i % config.numClasses);

  // Forward pass (read back, so the time includes the whole computation).
  const model = createDiT(config, seed);
  const x = tf.tensor4d(xs, [B, C, S, S]);
  const t = tf.tensor1d(Int32Array.from({ length: B }, (_, i) => (i * 97) % 1000), 'int32');
  const y = tf.tensor1d(labels, 'int32');
  let forwardMs: number;
  try {
    forwardMs = timeIt(() => {
      const out = ditForward(model, x, t, y);
      out.dataSync();
      out.dispose();
    }, warmup, repeats);
  } finally {
    tf.dispose([x, t, y]);
    disposeDiT(model);
  }

  // Training step: the kit's trainer on random data (nothing is written to disk).
  const source = arraySource(xs, labels, [C, S, S], config.numClasses, `throughput-${config.name}`);
  const dir = path.join(os.tmpdir(), `dit-throughput-${process.pid}-nonexistent`);
  const state = openRun(dir, {
    ...DEFAULT_TRAIN, model: config, steps: 1_000_000, batchSize: B, seed, optimizer: DIT_ADAMW,
    ema: { decay: 0.9999, warmup: false }, ckptEvery: 1_000_000,
  }, source);
  let trainMs: number;
  try {
    const order = new EpochOrder(B, seed);
    trainMs = timeIt(() => trainStep(state, source, order), warmup, repeats);
  } finally {
    closeRun(state);
    if (fs.existsSync(dir)) fs.rmSync(dir, { recursive: true, force: true });
  }
  const s = modelStats(config);
  return {
    model: config.name,
    variant: config.variant,
    backend: info.name,
    batch_size: B,
    tokens: s.tokens,
    params: s.params,
    gflops: s.gflops,
    forward_ms: forwardMs,
    train_step_ms: trainMs,
    forward_images_per_s: (1000 * B) / forwardMs,
    train_images_per_s: (1000 * B) / trainMs,
    forward_gmacs_per_s: (gflops(config) * B) / (forwardMs / 1000),
  };
}
