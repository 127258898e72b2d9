// A data-parallel worker (data_parallel.ts): a replica of the model on its own tfjs and
// backend. Per job it reads the current weights and its rows of the batch from shared
// memory, computes their mean-loss gradients with the trainer's loss (dit_loss.ts) and
// writes them back. It holds no optimiser, EMA or random stream: the main thread does.
import * as tf from '@tensorflow/tfjs-core';
import { parentPort, workerData } from 'worker_threads';
import { initBackend } from '../backend';
import { copyValuesInto } from '../backend/native_util';
import { createDiffusion } from '../diffusion';
import { createDiT, DiT, disposeDiT } from '../model/dit';
import { CTRL, META, WorkerSpec } from './data_parallel';
import { ditBatchLoss } from './dit_loss';
import { lossGrads } from './step';

async function main(spec: WorkerSpec): Promise<void> {
  const ctrl = new Int32Array(spec.ctrl);
  const finish = (slot: number, value: number) => {
    Atomics.store(ctrl, slot, value);
    Atomics.notify(ctrl, slot);
  };
  // However the thread ends, a main thread waiting on it wakes up.
  process.on('exit', () => {
    finish(CTRL.done, -2);
    if (Atomics.load(ctrl, CTRL.ready) === 1) finish(CTRL.ready, -1);
  });
  const report = (err: unknown) => spec.port.postMessage({ error: err instanceof Error ? err.message : String(err) });
  let model: DiT;
  try {
    await initBackend({ name: spec.backend, quiet: true });
    model = createDiT(spec.model);
  } catch (err) {
    report(err);
    finish(CTRL.ready, -1);
    return;
  }
  // The main thread's choice of what trains (a caller may freeze or unfreeze parameters).
  for (const k of spec.weightKeys) model.params[k].trainable = spec.keys.includes(k);
  const diffusion = createDiffusion(spec.diffusion);
  const weights = new Float32Array(spec.weights), grads = new Float32Array(spec.grads);
  const meta = new Float64Array(spec.meta);
  const x = new Float32Array(spec.x), noise = new Float32Array(spec.noise), y = new Int32Array(spec.y), t = new Int32Array(spec.t);
  const per = spec.shape[0] * spec.shape[1] * spec.shape[2];
  finish(CTRL.ready, 0);
  let seen = 0;
  for (;;) {
    Atomics.wait(ctrl, CTRL.job, seen);
    const job = Atomics.load(ctrl, CTRL.job);
    if (job < 0) break;
    if (job === seen) continue;
    seen = job;
    let failed = 0;
    try {
      let off = 0;
      for (const k of spec.weightKeys) {
        const v = model.params[k];
        tf.tidy(() => v.assign(tf.tensor(weights.slice(off, off + v.size), v.shape)));
        off += v.size;
      }
      const n = meta[META.rows];
      const batch = { x: x.slice(0, n * per), noise: noise.slice(0, n * per), y: y.slice(0, n), t: t.slice(0, n) };
      const r = lossGrads(() => ditBatchLoss(model, diffusion, spec.shape, batch), model.params, 'DiT training (data-parallel worker)');
      off = 0;
      for (const k of spec.keys) {
        const g = r.grads[k];
        copyValuesInto(g, grads, off);
        off += g.size;
      }
      tf.dispose(Object.values(r.grads));
      meta[META.loss] = r.loss;
      meta[META.mse] = r.terms.mse ?? NaN;
      meta[META.vb] = r.terms.vb ?? NaN;
    } catch (err) {
      report(err);
      failed = 1;
    }
    meta[META.tensors] = tf.memory().numTensors;
    Atomics.store(ctrl, CTRL.failed, failed);
    finish(CTRL.done, job);
  }
  disposeDiT(model);
}

if (parentPort) void main(workerData as WorkerSpec);
