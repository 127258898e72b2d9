// What data parallelism (lib/train/data_parallel.ts, `dit train --data-parallel N`) buys one
// training run here: `node dist/bench/data_parallel.js [--reps N] [--steps N] [--threads N]
// [--config reference|mini-XL/2|256]` times the kit's whole training step (the batch, the
// threads' gradients, their averaging, the weight hand-over, AdamW, EMA) on one thread and
// shared by N threads, alternating in one window after 30 warm-up steps each, and prints
// the median wall and CPU seconds per step of each, their ratio and the load average.
// CPU time is the process's, workers included: it shows what the exchange costs.
import { initBackend } from '../lib/backend';
import { benchConfig, openDiTSession } from './dit_step';
import { loadAverage, spread, timeCalls, Timing } from './measure';

function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(args[i + 1]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} needs a positive integer, got '${args[i + 1]}'`);
  return v;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const reps = option(args, '--reps', 5), steps = option(args, '--steps', 20), threads = option(args, '--threads', 2);
  const ci = args.indexOf('--config');
  const config = benchConfig(ci >= 0 ? args[ci + 1] : 'reference', '--config');
  const info = await initBackend({ name: 'native', quiet: true });
  console.log(`data parallelism, ${config.label} (batch ${config.batch}) on ${info.name}, 1 thread against ${threads}; load average ${loadAverage().join(' ')}`);
  const one = openDiTSession(config), many = openDiTSession(config, { dataParallel: threads });
  try {
    timeCalls(one.trainStep, 30);
    timeCalls(many.trainStep, 30);
    const a: Timing[] = [], b: Timing[] = [];
    for (let r = 0; r < reps; r++) {
      a.push(timeCalls(one.trainStep, steps));
      b.push(timeCalls(many.trainStep, steps));
      console.log(`  repeat ${r + 1}: 1 thread ${a[r].wall_s.toFixed(3)} s/step (cpu ${a[r].cpu_s.toFixed(3)}); ` +
        `${threads} threads ${b[r].wall_s.toFixed(3)} s/step (cpu ${b[r].cpu_s.toFixed(3)})`);
    }
    const w1 = spread(a.map((t) => t.wall_s)), w2 = spread(b.map((t) => t.wall_s));
    const c1 = spread(a.map((t) => t.cpu_s)), c2 = spread(b.map((t) => t.cpu_s));
    console.log(`median wall per step: 1 thread ${w1.median.toFixed(3)} s (${w1.min.toFixed(3)}-${w1.max.toFixed(3)}), ` +
      `${threads} threads ${w2.median.toFixed(3)} s (${w2.min.toFixed(3)}-${w2.max.toFixed(3)}): ${(w1.median / w2.median).toFixed(2)}x faster; ` +
      `CPU per step ${c1.median.toFixed(3)} s against ${c2.median.toFixed(3)} s (${(c2.median / c1.median).toFixed(2)}x); load average ${loadAverage().join(' ')}`);
  } finally {
    one.close();
    many.close();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
