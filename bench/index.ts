// `npm run bench`: how fast the kit's CPU backends are against PyTorch on this machine.
//   1. matmul GFLOP/s of each CPU backend vs PyTorch on one thread, same shapes, same run;
//   2. the reference mini DiT (bench/dit_step.ts): one step of the kit's trainer and one
//      forward on each backend vs bench/torch_dit.py (PyTorch, one thread). Target: ratio <= 2.
//   3. memory over 1000 steps of the kit's trainer (tensor count and RSS);
//   4. FID + precision/recall for 10k vs 10k 2048-d features (target 60 s);
//   5. feature-extraction throughput of the default feature network.
// Options: --json (one JSON object per line), --backends native,wasm (default: the ones that
// start; the DiT step runs on wasm/cpu only when named, they take tens of seconds a step),
// --no-matmul, --no-dit, --no-soak / --soak N, --no-metrics, --no-features, --reps N.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { initBackend } from '../lib/backend';
import { nativeAddon, registerNativeBackend } from '../lib/backend/native';
import { nativeLoadError } from '../lib/backend/native_addon';
import { fusedOpsNative } from '../lib/ops';
import { repoRoot } from '../lib/util/paths';
import { LARGEST, REFERENCE, timeDiT } from './dit_step';
import * as fs from 'fs';
import * as os from 'os';
import * as tf from '@tensorflow/tfjs-core';
import { ditConfig } from '../lib/model/config';
import { arraySource } from '../lib/train/source';
import { closeRun, DEFAULT_TRAIN, train } from '../lib/train/trainer';
import { Rng } from '../lib/util/rng';
import { benchMetrics } from './metrics';
import { benchFeatures } from './features';
import { MATMUL_SHAPES, SMALL_SHAPES, tfMatmulGflops, torchMatmulGflops, torchPython } from './kernels';

interface Options {
  json: boolean;
  backends: string[] | null;
  matmul: boolean;
  dit: boolean;
  reps: number;
  /** Training steps of the memory soak (0: skip). */
  soak: number;
  metrics: boolean;
  features: boolean;
}

function parse(argv: string[]): Options {
  const o: Options = { json: false, backends: null, matmul: true, dit: true, reps: 5, soak: 1000, metrics: true, features: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') o.json = true;
    else if (a === '--no-matmul') o.matmul = false;
    else if (a === '--no-dit') o.dit = false;
    else if (a === '--backends') o.backends = (argv[++i] ?? '').split(',').filter(Boolean);
    else if (a === '--reps') o.reps = Number(argv[++i]);
    else if (a === '--soak') o.soak = Number(argv[++i]);
    else if (a === '--no-soak') o.soak = 0;
    else if (a === '--no-metrics') o.metrics = false;
    else if (a === '--no-features') o.features = false;
    else throw new Error(`bench: unknown option '${a}' (use --json, --backends a,b, --no-matmul, --no-dit, --no-soak, --soak N, --no-metrics, --no-features, --reps N)`);
  }
  if (!(o.reps >= 1)) throw new Error('bench: --reps wants a positive number');
  return o;
}

let opts: Options;
const note = (msg: string) => { if (!opts.json) console.log(msg); };
const emit = (obj: Record<string, unknown>, text: string) => console.log(opts.json ? JSON.stringify(obj) : text);
const fmt = (x: number | null, d = 1) => (x == null ? '-' : x.toFixed(d));

async function tryBackend(name: string): Promise<boolean> {
  try {
    await initBackend({ name, quiet: true });
    return true;
  } catch (err) {
    note(`  (${name} skipped: ${(err as Error).message})`);
    return false;
  }
}

async function main(): Promise<void> {
  opts = parse(process.argv.slice(2));
  const py = torchPython();
  if (!py) note('PyTorch not found (DIT_PYTHON, python3, /usr/bin/python3; Debian: apt-get install python3-torch): torch columns skipped');
  if (!registerNativeBackend()) note(`native backend unavailable: ${nativeLoadError()}`);
  const backends = opts.backends ?? ['native', 'wasm', 'cpu'];

  if (opts.matmul) {
    note('\nmatmul GFLOP/s (float32, one thread): by wall time, and by process CPU time');
    const shapes = [...MATMUL_SHAPES, ...SMALL_SHAPES.filter((s) => !MATMUL_SHAPES.some((m) => m.name === s.name))];
    let torch: Array<{ wall: number; cpu: number | null }> = [];
    if (py) {
      try {
        torch = torchMatmulGflops(py, shapes);
        emit({ bench: 'matmul_peak', backend: 'torch', shape: '1024x1024x1024', gflops: torch[0].wall, gflops_cpu: torch[0].cpu },
          `  PyTorch single-core peak (1024^3): ${fmt(torch[0].wall)} GFLOP/s (by CPU time ${fmt(torch[0].cpu)})`);
      } catch (err) {
        note(`  ${(err as Error).message}`);
      }
    }
    for (const b of backends) {
      if (!(await tryBackend(b))) continue;
      for (const s of b === 'cpu' ? SMALL_SHAPES : MATMUL_SHAPES) {
        const g = tfMatmulGflops(s);
        const t = torch[shapes.findIndex((x) => x.name === s.name)];
        emit({ bench: 'matmul', backend: b, shape: s.name, batch: s.batch, M: s.M, N: s.N, K: s.K, transA: s.transA, transB: s.transB,
          gflops: g.wall, torch_gflops: t?.wall ?? null, ratio_to_torch: t ? g.wall / t.wall : null,
          gflops_cpu: g.cpu, torch_gflops_cpu: t?.cpu ?? null },
        `  ${b.padEnd(7)} ${s.name.padEnd(20)} ${`${s.batch}x${s.M}x${s.N}x${s.K}`.padEnd(16)} ${fmt(g.wall).padStart(7)}  torch ${fmt(t?.wall ?? null).padStart(7)}` +
          `   by CPU time ${fmt(g.cpu).padStart(7)}  torch ${fmt(t?.cpu ?? null).padStart(7)}`);
      }
      if (b === 'native') {
        // OpenBLAS with 2 threads, for the record: the kit uses 1 (DIT_NATIVE_THREADS overrides).
        const addon = nativeAddon();
        const before = addon.getThreads();
        addon.setThreads(2);
        for (const s of MATMUL_SHAPES.filter((x) => x.name === 'square 1024' || x.name === 'mlp fc1 fwd')) {
          const g = tfMatmulGflops(s);
          emit({ bench: 'matmul', backend: 'native', threads: 2, shape: s.name, batch: s.batch, M: s.M, N: s.N, K: s.K,
            transA: s.transA, transB: s.transB, gflops: g.wall, gflops_cpu: g.cpu },
          `  ${'native'.padEnd(7)} ${`${s.name}, 2 thr`.padEnd(20)} ${`${s.batch}x${s.M}x${s.N}x${s.K}`.padEnd(16)} ${fmt(g.wall).padStart(7)}` +
            `                 by CPU time ${fmt(g.cpu).padStart(7)} (both threads)`);
        }
        addon.setThreads(before);
      }
    }
  }

  if (opts.dit) {
    for (const bc of [REFERENCE, LARGEST]) {
      const config = `${bc.name} depth ${bc.depth} hidden ${bc.hiddenSize} heads ${bc.numHeads} batch ${bc.batch} (adaLN-Zero, 16x16x4, patch 2)`;
      note(`\n${bc === REFERENCE ? 'reference' : 'largest mini'} DiT: ${config}`);
      let torch: { torch_train_step_s: number; torch_forward_s: number; torch_train_step_cpu_s: number; torch_forward_cpu_s: number } | null = null;
      if (py) {
        const r = spawnSync(py, [path.join(repoRoot(), 'bench', 'torch_dit.py'), '--depth', String(bc.depth), '--hidden',
          String(bc.hiddenSize), '--heads', String(bc.numHeads), '--batch', String(bc.batch), '--reps', String(opts.reps)],
        { encoding: 'utf8' });
        if (r.status === 0) torch = JSON.parse(r.stdout.trim().split('\n').pop()!);
        else note(`  torch_dit.py failed: ${r.stderr.trim().split('\n').pop()}`);
      }
      // The slow backends run the DiT step only when asked for by name.
      for (const b of opts.backends ?? ['native']) {
        if (!(await tryBackend(b))) continue;
        const r = await timeDiT({ config: bc, reps: opts.reps, warmup: 2 });
        const tr = torch ? r.train_step_s / torch.torch_train_step_s : null;
        const fr = torch ? r.forward_s / torch.torch_forward_s : null;
        // CPU-time ratios as well: on a shared machine they wobble less than wall time.
        const trc = torch ? r.train_step_cpu_s / torch.torch_train_step_cpu_s : null;
        const frc = torch ? r.forward_cpu_s / torch.torch_forward_cpu_s : null;
        emit({ bench: 'dit', config, reference: bc === REFERENCE, backend: b, fused_ops: fusedOpsNative(), train_step_s: r.train_step_s, forward_s: r.forward_s,
          torch_train_step_s: torch?.torch_train_step_s ?? null, torch_forward_s: torch?.torch_forward_s ?? null,
          train_ratio: tr, forward_ratio: fr, train_step_cpu_s: r.train_step_cpu_s, forward_cpu_s: r.forward_cpu_s,
          torch_train_step_cpu_s: torch?.torch_train_step_cpu_s ?? null, torch_forward_cpu_s: torch?.torch_forward_cpu_s ?? null,
          train_cpu_ratio: trc, forward_cpu_ratio: frc },
        `  ${b.padEnd(7)} train step ${fmt(r.train_step_s, 3)} s (torch ${fmt(torch?.torch_train_step_s ?? null, 3)} s, ratio ${fmt(tr, 2)}; cpu-time ratio ${fmt(trc, 2)})` +
          `   forward ${fmt(r.forward_s, 3)} s (torch ${fmt(torch?.torch_forward_s ?? null, 3)} s, ratio ${fmt(fr, 2)}; cpu-time ratio ${fmt(frc, 2)})`);
      }
    }
  }

  if (opts.soak > 0) {
    await initBackend({ quiet: true });
    note(`\nmemory over ${opts.soak} training steps (the kit's trainer, mini-S/4 on 16x16x4, batch 32)`);
    const s = await soak(opts.soak);
    emit({ bench: 'memory', steps: opts.soak, backend: s.backend, ...s.at, tensors_flat: s.tensorsFlat, rss_growth_mb: s.rssGrowthMb },
      `  tensors ${s.tensors.join(' -> ')} (${s.tensorsFlat ? 'flat' : 'GROWING'}); RSS MB ${s.rss.map((r) => r.toFixed(0)).join(' -> ')} ` +
      `(growth after warm-up ${s.rssGrowthMb.toFixed(1)} MB)`);
  }

  if (opts.metrics) {
    await initBackend({ quiet: true });
    note('\nmetrics: FID and precision/recall, 10k vs 10k 2048-d features (target: 60 s)');
    const m = await benchMetrics({ log: () => {} });
    const fidS = m.fid!.total.wall_s, prS = m.pr!.total.wall_s;
    emit({ bench: 'metrics', backend: m.backend, n: m.n, d: m.d, fid_s: fidS, fid_cpu_s: m.fid!.total.cpu_s, pr_s: prS, pr_cpu_s: m.pr!.total.cpu_s,
      total_s: fidS + prS, total_cpu_s: m.fid!.total.cpu_s + m.pr!.total.cpu_s, within_target: fidS + prS <= 60 },
    `  FID ${fmt(fidS)} s, precision/recall ${fmt(prS)} s, total ${fmt(fidS + prS)} s wall (${fmt(m.fid!.total.cpu_s + m.pr!.total.cpu_s)} s CPU)`);
  }

  if (opts.features) {
    await initBackend({ quiet: true });
    note('\nfeature extraction, default network');
    const f = await benchFeatures({ log: () => {} });
    for (const r of f.rows) {
      emit({ bench: 'features', backend: f.backend, net: f.net, ...r },
        `  ${f.net} (${r.conv} conv): ${fmt(r.images_per_s, 0)} images/s (${fmt(r.images_per_cpu_s, 0)} per CPU-second)`);
    }
  }
}

/** Trains a small DiT with the kit's trainer and samples the tensor count and RSS along the way. */
async function soak(steps: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-soak-'));
  const rng = new Rng(0);
  const n = 512;
  const source = arraySource(rng.fillNormal(new Float32Array(n * 4 * 16 * 16)), Int32Array.from({ length: n }, (_, i) => i % 10), [4, 16, 16], 10, 'soak');
  const marks = [Math.min(100, steps), Math.floor(steps / 2), steps];
  const tensors: number[] = [], rss: number[] = [];
  const at: Record<string, number> = {};
  const st = await train(dir, { ...DEFAULT_TRAIN, model: ditConfig('mini-S/4', { inputSize: 16 }), steps, batchSize: 32, ckptEvery: steps }, source, {
    quiet: true,
    onStep: (log) => {
      if (!marks.includes(log.step)) return;
      const t = tf.memory().numTensors;
      const r = process.memoryUsage().rss / 2 ** 20;
      tensors.push(t);
      rss.push(r);
      at[`tensors_at_${log.step}`] = t;
      at[`rss_mb_at_${log.step}`] = r;
    },
  });
  closeRun(st);
  fs.rmSync(dir, { recursive: true, force: true });
  return { backend: tf.getBackend(), at, tensors, rss, tensorsFlat: new Set(tensors).size === 1, rssGrowthMb: rss[rss.length - 1] - rss[0] };
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
