// Would data parallelism pay for one training run on this machine? `node dist/bench/data_parallel.js
// [--reps N] [--steps N] [--config reference|mini-XL/2|256]`: worker threads, each with its own
// tfjs and native backend, time the training steps of a bench config: one worker at the full
// batch, against two workers at half the batch each, running at the same time (started
// together by a barrier). Their alternation is repeated; it prints the median wall seconds
// per step of each layout and their ratio. Not timed: averaging the two gradient sets
// (about 5 MB for the reference config) and copying the updated weights back, which a real
// data-parallel step adds; so the ratio is an upper bound on the speed-up.
import * as path from 'path';
import { Worker, isMainThread, parentPort, workerData } from 'worker_threads';
import { initBackend } from '../lib/backend';
import { BENCH_CONFIGS, BenchConfig, openDiTSession } from './dit_step';
import { loadAverage, spread, timeCalls } from './measure';

interface Job {
  config: BenchConfig;
  batch: number;
  warmup: number;
  steps: number;
  /** Workers started together: each waits until all have finished their warm-up. */
  barrier: SharedArrayBuffer;
  parties: number;
}

async function workerMain(job: Job): Promise<void> {
  await initBackend({ name: 'native', quiet: true });
  const s = openDiTSession({ ...job.config, batch: job.batch });
  try {
    timeCalls(s.trainStep, job.warmup);
    const ready = new Int32Array(job.barrier);
    Atomics.add(ready, 0, 1);
    Atomics.notify(ready, 0);
    while (Atomics.load(ready, 0) < job.parties) Atomics.wait(ready, 0, Atomics.load(ready, 0), 50);
    parentPort!.postMessage(timeCalls(s.trainStep, job.steps).wall_s);
  } finally {
    s.close();
  }
}

/** Wall seconds per step of each of `workers` concurrent workers at `batch`. */
function runLayout(config: BenchConfig, workers: number, batch: number, warmup: number, steps: number): Promise<number[]> {
  const barrier = new SharedArrayBuffer(4);
  const job: Job = { config, batch, warmup, steps, barrier, parties: workers };
  return Promise.all(Array.from({ length: workers }, () => new Promise<number>((resolve, reject) => {
    const w = new Worker(path.join(__dirname, 'data_parallel.js'), { workerData: job });
    w.once('message', (wall: number) => {
      resolve(wall);
      void w.terminate();
    });
    w.once('error', reject);
    w.once('exit', (code) => {
      // 1 is terminate() after the answer; a worker that fails before answering exits 2.
      if (code !== 0 && code !== 1) reject(new Error(`bench worker exited with code ${code}`));
    });
  })));
}

function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(args[i + 1]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} needs a positive integer, got '${args[i + 1]}'`);
  return v;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const reps = option(args, '--reps', 3), steps = option(args, '--steps', 20);
  const ci = args.indexOf('--config');
  const label = ci >= 0 ? args[ci + 1] : 'reference';
  const config = BENCH_CONFIGS.find((b) => b.label === label || (label === '256' && b.label === '256 tokens'));
  if (!config) throw new Error(`--config: unknown '${label}' (one of ${BENCH_CONFIGS.map((b) => b.label).join(', ')})`);
  if (config.batch % 2 !== 0) throw new Error(`data parallelism over 2 workers needs an even batch, ${config.label} has ${config.batch}`);
  const info = await initBackend({ name: 'native', quiet: true });
  console.log(`data parallelism, ${config.label} (batch ${config.batch}) on ${info.name}; load average ${loadAverage().join(' ')}`);
  const one: number[] = [], two: number[] = [];
  for (let r = 0; r < reps; r++) {
    const [a] = await runLayout(config, 1, config.batch, 30, steps);
    const b = await runLayout(config, 2, config.batch / 2, 30, steps);
    one.push(a);
    two.push(Math.max(...b)); // a step waits for the slower worker
    console.log(`  repeat ${r + 1}: 1 x batch ${config.batch} ${a.toFixed(3)} s/step; 2 x batch ${config.batch / 2} ${b.map((x) => x.toFixed(3)).join(' and ')} s/step`);
  }
  const s1 = spread(one), s2 = spread(two);
  console.log(`median wall per step: one worker ${s1.median.toFixed(3)} s (${s1.min.toFixed(3)}-${s1.max.toFixed(3)}), ` +
    `two workers ${s2.median.toFixed(3)} s (${s2.min.toFixed(3)}-${s2.max.toFixed(3)}): ${(s1.median / s2.median).toFixed(2)}x ` +
    `before gradient averaging; load average ${loadAverage().join(' ')}`);
}

if (isMainThread) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
} else {
  workerMain(workerData as Job).catch((e) => {
    console.error(e);
    process.exit(2);
  });
}
