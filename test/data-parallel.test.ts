import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend';
import { splitRows, workerTensorCounts } from '../lib/train/data_parallel';
import { EpochOrder } from '../lib/train/order';
import { TrainingDiverged } from '../lib/train/step';
import { closeRun, openRun, train, TrainOptions, TrainState, trainStep } from '../lib/train/trainer';
import { TrainingSource } from '../lib/train/source';
import { tempDirs, tinyRun } from './helpers';

const tmp = tempDirs('dit-dp-');

test.before(async () => {
  await initBackend({ quiet: true });
});

function values(vars: Record<string, tf.Variable>): Record<string, Float32Array> {
  return Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, v.dataSync() as Float32Array]));
}

/** Largest |a - b| over all entries of two parameter sets. */
function maxDiff(a: Record<string, Float32Array>, b: Record<string, Float32Array>): number {
  let d = 0;
  for (const k of Object.keys(a)) a[k].forEach((v, i) => { d = Math.max(d, Math.abs(v - b[k][i])); });
  return d;
}

function steps(st: TrainState, source: TrainingSource, n: number): number[] {
  const order = new EpochOrder(source.size, st.options.seed);
  return Array.from({ length: n }, () => trainStep(st, source, order).loss);
}

test('splitRows cuts a batch into near-equal blocks, the main thread\'s never the larger, and names bad counts', () => {
  assert.deepEqual(splitRows(8, 2), [4, 4]);
  assert.deepEqual(splitRows(7, 2), [3, 4]);
  assert.deepEqual(splitRows(7, 3), [2, 2, 3]);
  assert.deepEqual(splitRows(5, 1), [5]);
  assert.throws(() => splitRows(1, 2), /over 2 threads needs a batch of at least 2, got 1/);
  assert.throws(() => splitRows(8, 0), /positive integer number of threads, got 0/);
  assert.throws(() => splitRows(8, 1.5), /positive integer number of threads, got 1.5/);
});

test('a data-parallel step is the single-thread step: same losses, weights and EMA up to float rounding, tensor counts flat', () => {
  // Batch 7: uneven blocks (3 + 4 and 2 + 2 + 3) check the row weighting of the gradients.
  const runs = [1, 2, 3].map((threads) => {
    const { options, source } = tinyRun({ dataParallel: threads, batchSize: 7 });
    const st = openRun(tmp('run-'), options, source);
    const losses = steps(st, source, 2);
    const counts = [tf.memory().numTensors];
    losses.push(...steps(st, source, 4));
    counts.push(tf.memory().numTensors);
    const out = { threads, losses, counts, workers: st.parallel ? workerTensorCounts(st.parallel) : [], params: values(st.model.params), ema: values(st.ema) };
    closeRun(st);
    return out;
  });
  const [one] = runs;
  for (const r of runs.slice(1)) {
    r.losses.forEach((l, i) => assert.ok(Math.abs(l - one.losses[i]) < 1e-6, `${r.threads} threads, step ${i + 1}: loss ${l} vs ${one.losses[i]}`));
    assert.ok(maxDiff(r.params, one.params) < 1e-5, `${r.threads} threads: weights differ by ${maxDiff(r.params, one.params)}`);
    assert.ok(maxDiff(r.ema, one.ema) < 1e-5, `${r.threads} threads: EMA differs by ${maxDiff(r.ema, one.ema)}`);
    assert.equal(r.counts[0], r.counts[1], `${r.threads} threads: main-thread tensors ${r.counts}`);
    assert.equal(r.workers.length, r.threads - 1);
    // A worker keeps its replica's weights and nothing else between jobs.
    for (const w of r.workers) assert.equal(w, Object.keys(one.params).length);
  }
  // The same thread count again: bit for bit the same run (the blocks and their sums are fixed).
  {
    const { options, source } = tinyRun({ dataParallel: 2, batchSize: 7 });
    const st = openRun(tmp('run-'), options, source);
    steps(st, source, 6);
    assert.equal(maxDiff(values(st.model.params), runs[1].params), 0, 'two 2-thread runs differ');
    closeRun(st);
  }
  // The weights moved (a comparison of two untrained models would pass trivially).
  const { options, source } = tinyRun();
  const fresh = openRun(tmp('run-'), options, source);
  assert.ok(maxDiff(values(fresh.model.params), one.params) > 1e-3);
  closeRun(fresh);
});

test('the workers use the main thread\'s frozen weights too, not their own initialisation', () => {
  // pos_embed is frozen (the fixed sin-cos table); a run whose table differs, as a loaded one may, trains the same on 1 and 2 threads.
  const run = (threads: number) => {
    const { options, source } = tinyRun({ dataParallel: threads, batchSize: 6 });
    const st = openRun(tmp('frozen-'), options, source);
    const pe = st.model.params.pos_embed;
    assert.equal(pe.trainable, false);
    pe.assign(tf.mul(pe, 3));
    steps(st, source, 3);
    const out = values(st.model.params);
    closeRun(st);
    return out;
  };
  const one = run(1), two = run(2);
  assert.ok(maxDiff(one, two) < 1e-5, `frozen weights: 2 threads differ by ${maxDiff(one, two)}`);
});

test('a run resumes with another thread count: the checkpoint is the same run', async () => {
  const base: Partial<TrainOptions> = { steps: 6, ckptEvery: 2, batchSize: 6 };
  const { options, source } = tinyRun(base);
  const straight = await train(tmp('straight-'), options, source, { quiet: true });
  const want = values(straight.model.params);
  closeRun(straight);
  const dir = tmp('switched-');
  const first = await train(dir, { ...options, steps: 4, dataParallel: 2 }, source, { quiet: true });
  closeRun(first);
  const rest = await train(dir, options, source, { quiet: true });
  assert.equal(rest.step, 6);
  assert.ok(maxDiff(values(rest.model.params), want) < 1e-5, `resumed run differs by ${maxDiff(values(rest.model.params), want)}`);
  closeRun(rest);
});

test('data parallelism: bad rows in a worker\'s block stop the step before any update; a lost worker is named, not waited on forever', async () => {
  const { options, source } = tinyRun({ dataParallel: 2, batchSize: 4 });
  // NaN only in the samples the worker gets (rows 2-3 of the first batch): the main thread's own block is finite.
  const order = new EpochOrder(source.size, options.seed);
  const idx = order.batch(0, 4);
  const poisoned: TrainingSource = {
    ...source,
    read(indices, flips) {
      const r = source.read(indices, flips);
      const per = r.x.length / indices.length;
      for (let i = 0; i < indices.length; i++) if (indices[i] === idx[2] || indices[i] === idx[3]) r.x.fill(NaN, i * per, (i + 1) * per);
      return r;
    },
  };
  const st = openRun(tmp('poison-'), options, poisoned);
  const before = values(st.model.params);
  assert.throws(() => steps(st, poisoned, 1), (e: Error) => e instanceof TrainingDiverged && /loss is NaN at step 1/.test(e.message));
  assert.equal(maxDiff(values(st.model.params), before), 0, 'nothing was updated');
  assert.equal(st.opt.step, 0);
  closeRun(st);

  const live = openRun(tmp('lost-'), options, source);
  steps(live, source, 1);
  await live.parallel!.replicas[0].worker.terminate();
  live.parallel!.patienceS = 0.5;
  assert.throws(() => steps(live, source, 1), /data-parallel worker 1 gave no answer \d+ s after the main thread finished its part/);
  assert.throws(() => steps(live, source, 1), /data-parallel worker 1 gave no answer/, 'the run stays stopped');
  closeRun(live);
});

test('data parallelism names a bad thread count and too small a batch', () => {
  const { options, source } = tinyRun({ batchSize: 2 });
  assert.throws(() => openRun(tmp('bad-'), { ...options, dataParallel: 3 }, source), /over 3 threads needs a batch of at least 3, got 2/);
  assert.throws(() => openRun(tmp('bad-'), { ...options, dataParallel: 0 }, source), /positive integer number of threads, got 0/);
});
