// Data parallelism over worker threads, for one training run on several cores (issue #15).
// The main thread draws each step's batch from the run's one seeded stream, as a single
// process does, and cuts it into row blocks: it computes the gradient of the first block
// itself while each worker (its own tfjs and backend, data_parallel_worker.ts) computes
// that of another, all at once. The blocks' mean-loss gradients, weighted by their rows,
// are the full batch's; the main thread takes the one AdamW and EMA step and the workers
// read the new weights at the next step. So a run is the single-process run of the same
// seed and global batch up to float rounding (the batch sums of the weight gradients are
// split in other places), and its checkpoints are interchangeable with it.
//
// The exchange goes through shared memory, and the main thread waits with Atomics.wait, so
// a step stays synchronous (trainStep, the benchmark and the notebooks call it as before).
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { MessageChannel, MessagePort, Worker, receiveMessageOnPort } from 'worker_threads';
import { copyValuesInto } from '../backend/native_util';
import { CreateDiffusionOptions } from '../diffusion';
import { DiTConfig } from '../model/config';
import { DiT } from '../model/dit';
import { DiTBatch } from './dit_loss';
import { LossGrads } from './step';

/** Slots of a worker's control array. */
export const CTRL = {
  /** Job number the main thread posted (-1: stop). */
  job: 0,
  /** Job number the worker finished (-2: it exited). */
  done: 1,
  /** 0 once the worker's model is built; 1 while starting; -1 if it failed to start. */
  ready: 2,
  /** 0: the last job succeeded; 1: it failed (the error is on the port). */
  failed: 3,
} as const;

/** Slots of a worker's result array (float64). */
export const META = { rows: 0, loss: 1, mse: 2, vb: 3, tensors: 4 } as const;

/** What a worker is started with (structured-cloned; the buffers are shared). */
export interface WorkerSpec {
  backend: string;
  model: DiTConfig;
  diffusion: CreateDiffusionOptions;
  shape: [number, number, number];
  /** Every parameter's name, in the order of the weights buffer (frozen ones too: a replica starts from the model's config, not its checkpoint). */
  weightKeys: string[];
  /** The trainable ones, in the order of the gradients buffer. */
  keys: string[];
  ctrl: SharedArrayBuffer;
  meta: SharedArrayBuffer;
  /** Current weights (written by the main thread, shared by all workers). */
  weights: SharedArrayBuffer;
  grads: SharedArrayBuffer;
  x: SharedArrayBuffer;
  noise: SharedArrayBuffer;
  y: SharedArrayBuffer;
  t: SharedArrayBuffer;
  port: MessagePort;
}

interface Replica {
  worker: Worker;
  port: MessagePort;
  ctrl: Int32Array;
  meta: Float64Array;
  grads: Float32Array;
  x: Float32Array;
  noise: Float32Array;
  y: Int32Array;
  t: Int32Array;
  job: number;
}

export interface DataParallel {
  /** Threads in all, the main thread included. */
  threads: number;
  weightKeys: string[];
  keys: string[];
  sizes: number[];
  shapes: number[][];
  weights: Float32Array;
  replicas: Replica[];
  /** Values per sample. */
  per: number;
  /**
   * A worker that has not answered this many seconds (plus 50x the main thread's own part)
   * after the main thread finished its part is taken for lost: a thread killed from outside
   * (terminate(), out of heap) runs none of its exit code, so nothing else would say so.
   */
  patienceS: number;
  /** The first worker failure: the workers are out of step with the run after it, so every later step throws it. */
  broken?: Error;
}

const WORKER_FILE = path.join(__dirname, 'data_parallel_worker.js');

/** Row counts of `threads` blocks of a batch of `n`: as even as possible, the main thread's (first) never the larger. */
export function splitRows(n: number, threads: number): number[] {
  if (!(Number.isInteger(threads) && threads >= 1)) throw new Error(`data parallelism needs a positive integer number of threads, got ${threads}`);
  if (n < threads) throw new Error(`data parallelism over ${threads} threads needs a batch of at least ${threads}, got ${n}`);
  const base = Math.floor(n / threads), extra = n % threads;
  return Array.from({ length: threads }, (_, i) => base + (i >= threads - extra ? 1 : 0));
}

/** Starts threads - 1 workers holding a replica of `model` for batches of up to `batch` rows. */
export function startDataParallel(threads: number, model: DiT, diffusion: CreateDiffusionOptions, shape: [number, number, number], batch: number): DataParallel {
  const blocks = splitRows(batch, threads);
  if (!fs.existsSync(WORKER_FILE)) throw new Error(`data parallelism: the worker script ${WORKER_FILE} is missing (run the compiled kit from dist/)`);
  const keys = Object.keys(model.params).filter((k) => model.params[k].trainable);
  const shapes = keys.map((k) => model.params[k].shape);
  const sizes = keys.map((k) => model.params[k].size);
  const total = sizes.reduce((a, b) => a + b, 0);
  const weightKeys = Object.keys(model.params);
  const weightTotal = weightKeys.reduce((a, k) => a + model.params[k].size, 0);
  const per = shape[0] * shape[1] * shape[2];
  const rows = Math.max(...blocks);
  const weights = new SharedArrayBuffer(4 * weightTotal);
  const backend = tf.getBackend();
  const replicas: Replica[] = [];
  for (let i = 1; i < threads; i++) {
    const { port1, port2 } = new MessageChannel();
    const spec: WorkerSpec = {
      backend, model: model.config, diffusion, shape, weightKeys, keys,
      ctrl: new SharedArrayBuffer(4 * 4), meta: new SharedArrayBuffer(8 * 8), weights,
      grads: new SharedArrayBuffer(4 * total),
      x: new SharedArrayBuffer(4 * rows * per), noise: new SharedArrayBuffer(4 * rows * per),
      y: new SharedArrayBuffer(4 * rows), t: new SharedArrayBuffer(4 * rows),
      port: port2,
    };
    const ctrl = new Int32Array(spec.ctrl);
    ctrl[CTRL.ready] = 1;
    const worker = new Worker(WORKER_FILE, { workerData: spec, transferList: [port2] });
    // A worker never holds the process open; stopDataParallel ends it.
    worker.unref();
    worker.on('error', () => { /* reported through the control array (the worker's exit hook) */ });
    replicas.push({
      worker, port: port1, ctrl, meta: new Float64Array(spec.meta), grads: new Float32Array(spec.grads),
      x: new Float32Array(spec.x), noise: new Float32Array(spec.noise), y: new Int32Array(spec.y), t: new Int32Array(spec.t), job: 0,
    });
  }
  return { threads, weightKeys, keys, sizes, shapes, weights: new Float32Array(weights), replicas, per, patienceS: 60 };
}

/** The message a failed worker left on its port. */
function workerError(r: Replica, i: number, what: string): Error {
  const m = receiveMessageOnPort(r.port)?.message as { error?: string } | undefined;
  return new Error(`data-parallel worker ${i + 1} ${what}: ${m?.error ?? 'it exited without saying why'}`);
}

/** Blocks until ctrl[slot] is no longer `value` or `deadline` (ms since the epoch) has passed; false then. */
function waitWhile(ctrl: Int32Array, slot: number, value: number, deadline = Infinity): boolean {
  while (Atomics.load(ctrl, slot) === value) {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    Atomics.wait(ctrl, slot, value, Math.min(left, 1000));
  }
  return true;
}

/**
 * The batch's loss terms and mean-loss gradients, its row blocks computed at once: the
 * first by `ownGrads` on this thread, the others by the workers. The caller owns the grads.
 */
export function parallelLossGrads(dp: DataParallel, model: DiT, b: DiTBatch, ownGrads: (rows: number) => LossGrads): LossGrads {
  if (dp.broken) throw dp.broken;
  const n = b.y.length;
  const rows = splitRows(n, dp.threads);
  for (const [i, r] of dp.replicas.entries()) {
    if (Atomics.load(r.ctrl, CTRL.ready) === 1) waitWhile(r.ctrl, CTRL.ready, 1);
    if (Atomics.load(r.ctrl, CTRL.ready) !== 0) throw (dp.broken = workerError(r, i, 'did not start'));
  }
  // The workers are idle: hand them this step's weights and their rows.
  let off = 0;
  for (const k of dp.weightKeys) {
    const v = model.params[k];
    copyValuesInto(v, dp.weights, off);
    off += v.size;
  }
  let start = rows[0];
  for (const [i, r] of dp.replicas.entries()) {
    const m = rows[i + 1];
    r.x.set(b.x.subarray(start * dp.per, (start + m) * dp.per));
    r.noise.set(b.noise.subarray(start * dp.per, (start + m) * dp.per));
    r.y.set(b.y.subarray(start, start + m));
    r.t.set(b.t.subarray(start, start + m));
    r.meta[META.rows] = m;
    start += m;
    r.job += 1;
    Atomics.store(r.ctrl, CTRL.job, r.job);
    Atomics.notify(r.ctrl, CTRL.job);
  }
  let own: LossGrads | undefined;
  let ownError: unknown;
  const t0 = Date.now();
  try {
    own = ownGrads(rows[0]);
  } catch (err) {
    ownError = err;
  }
  const patience = dp.patienceS * 1000 + 50 * (Date.now() - t0);
  // Every worker finishes its job before anything returns, so none reads a buffer the next step writes.
  let failure: Error | undefined;
  for (const [i, r] of dp.replicas.entries()) {
    if (!waitWhile(r.ctrl, CTRL.done, r.job - 1, Date.now() + patience)) {
      failure ??= new Error(`data-parallel worker ${i + 1} gave no answer ${(patience / 1000).toFixed(0)} s after the main thread finished its part of the batch ` +
        '(it was killed, or ran out of memory); the run stops at its last checkpoint');
      continue;
    }
    const done = Atomics.load(r.ctrl, CTRL.done);
    if (done !== r.job) failure ??= workerError(r, i, 'exited');
    else if (Atomics.load(r.ctrl, CTRL.failed)) failure ??= workerError(r, i, 'failed');
  }
  if (failure) dp.broken = failure;
  if (ownError !== undefined || failure) {
    if (own) tf.dispose(Object.values(own.grads));
    throw ownError ?? failure;
  }
  const w = rows.map((m) => m / n);
  const grads: Record<string, tf.Tensor> = {};
  off = 0;
  for (const [j, k] of dp.keys.entries()) {
    const size = dp.sizes[j];
    grads[k] = tf.tidy(() => {
      let g = tf.mul(own!.grads[k], w[0]);
      for (const [i, r] of dp.replicas.entries()) {
        // A view, not a copy: the tensor lives only inside this tidy, and the worker writes
        // its buffer again only at the next step's job.
        g = tf.add(g, tf.mul(tf.tensor(r.grads.subarray(off, off + size), dp.shapes[j]), w[i + 1]));
      }
      return g;
    });
    own!.grads[k].dispose();
    off += size;
  }
  const mix = (slot: number, ownValue: number | undefined): number | undefined => {
    if (ownValue === undefined) return undefined;
    return dp.replicas.reduce((s, r, i) => s + w[i + 1] * r.meta[slot], w[0] * ownValue);
  };
  const terms: Record<string, number> = {};
  for (const [name, slot] of [['mse', META.mse], ['vb', META.vb]] as const) {
    const v = mix(slot, own!.terms[name]);
    if (v !== undefined) terms[name] = v;
  }
  return { loss: mix(META.loss, own!.loss)!, terms, grads };
}

/** Live tensors of each worker after its last job (for leak checks). */
export function workerTensorCounts(dp: DataParallel): number[] {
  return dp.replicas.map((r) => r.meta[META.tensors]);
}

/** Ends the workers (they dispose their replicas first). */
export function stopDataParallel(dp: DataParallel): void {
  for (const r of dp.replicas) {
    Atomics.store(r.ctrl, CTRL.job, -1);
    Atomics.notify(r.ctrl, CTRL.job);
    r.port.close();
    void r.worker.terminate();
  }
  dp.replicas.length = 0;
}
