// `npm run bench`: how fast the kit's CPU backends are against PyTorch and numpy/scipy on
// this machine, like for like: every Python reference runs with OPENBLAS_NUM_THREADS=1 (and
// OMP/MKL), the kit's OpenBLAS on one thread, and each side reports the BLAS and thread
// count it actually ran, read back from the library.
//   1. matmul GFLOP/s of each CPU backend vs PyTorch, same shapes, same run;
//   2. DiT (bench/dit_step.ts: the reference config, mini-XL/2, a 256-token config): the
//      kit's training step (flips, label dropout, hybrid loss with vb, AdamW, EMA) and a
//      forward vs bench/torch_dit.py doing the same step; 30 warm-up steps, then kit and
//      PyTorch repeats alternating; medians with their spread, CPU and wall time; the
//      share of the measured single-thread SGEMM peak a training step reaches;
//   3. memory over 1000 steps of the kit's trainer (tensor count and RSS);
//   4. FID, and FID + precision/recall, of 10k vs 10k 2048-d features vs numpy/scipy
//      (bench/metrics.ts, bench/numpy_metrics.py), alternating repeats;
//   5. feature-extraction throughput of the default feature network.
// The load average is printed at the start and the end. Options: --json (one JSON object
// per line: every ratio with its method), --backends native,wasm (default: the ones that
// start; the DiT step runs on wasm/cpu only when named), --configs reference,mini-XL/2,256
// (DiT configs by label, name or token count), --reps N (DiT repeats, 5), --steps N (steps
// per repeat, 5), --warmup N (30), --metrics-reps N (3), --metrics-n N, --metrics-d N,
// --no-matmul, --no-dit, --no-soak / --soak N, --no-metrics, --no-features.
import * as path from 'path';
import { initBackend } from '../lib/backend';
import { nativeAddon, registerNativeBackend } from '../lib/backend/native';
import { nativeGemmKernel, nativeLoadError } from '../lib/backend/native_addon';
import { fusedOpsNative } from '../lib/ops';
import { repoRoot } from '../lib/util/paths';
import { BENCH_CONFIGS, BenchConfig, benchConfig, benchDiTConfig, describeConfig, openDiTSession, REFERENCE, TOKENS_256, trainStepFlops } from './dit_step';
import * as fs from 'fs';
import * as os from 'os';
import * as tf from '@tensorflow/tfjs-core';
import { ditConfig } from '../lib/model/config';
import { gflops } from '../lib/model/gflops';
import { arraySource } from '../lib/train/source';
import { closeRun, DEFAULT_TRAIN, train } from '../lib/train/trainer';
import { Rng } from '../lib/util/rng';
import { benchMetrics } from './metrics';
import { benchFeatures } from './features';
import { MATMUL_SHAPES, ONE_THREAD_ENV, SMALL_SHAPES, tfMatmulGflops, torchMatmulGflops, torchPython } from './kernels';
import { fmtRatio, fmtSpread, loadAverage, ratio, Ratio, sides, Sides, timeCalls, Timing } from './measure';
import { PyWorker } from './pyworker';

interface Options {
  json: boolean;
  backends: string[] | null;
  matmul: boolean;
  dit: boolean;
  /** DiT configs to time (labels, names or token counts); null: all. */
  configs: string[] | null;
  /** DiT repeats per side. */
  reps: number;
  /** Consecutive steps (or forwards) per repeat. */
  steps: number;
  /** Warm-up steps (and forwards) per side before the repeats. */
  warmup: number;
  metricsReps: number;
  metricsN: number;
  metricsD: number;
  /** Training steps of the memory soak (0: skip). */
  soak: number;
  metrics: boolean;
  features: boolean;
}

function parse(argv: string[]): Options {
  const o: Options = {
    json: false, backends: null, matmul: true, dit: true, configs: null, reps: 5, steps: 5, warmup: 30,
    metricsReps: 3, metricsN: 10000, metricsD: 2048, soak: 1000, metrics: true, features: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') o.json = true;
    else if (a === '--no-matmul') o.matmul = false;
    else if (a === '--no-dit') o.dit = false;
    else if (a === '--backends') o.backends = (argv[++i] ?? '').split(',').filter(Boolean);
    else if (a === '--configs') o.configs = (argv[++i] ?? '').split(',').filter(Boolean);
    else if (a === '--reps') o.reps = Number(argv[++i]);
    else if (a === '--steps') o.steps = Number(argv[++i]);
    else if (a === '--warmup') o.warmup = Number(argv[++i]);
    else if (a === '--metrics-reps') o.metricsReps = Number(argv[++i]);
    else if (a === '--metrics-n') o.metricsN = Number(argv[++i]);
    else if (a === '--metrics-d') o.metricsD = Number(argv[++i]);
    else if (a === '--soak') o.soak = Number(argv[++i]);
    else if (a === '--no-soak') o.soak = 0;
    else if (a === '--no-metrics') o.metrics = false;
    else if (a === '--no-features') o.features = false;
    else {
      throw new Error(`bench: unknown option '${a}' (use --json, --backends a,b, --configs a,b, --reps N, --steps N, --warmup N, ` +
        '--metrics-reps N, --metrics-n N, --metrics-d N, --no-matmul, --no-dit, --no-soak, --soak N, --no-metrics, --no-features)');
    }
  }
  for (const k of ['reps', 'steps', 'metricsReps', 'metricsN', 'metricsD'] as const) {
    if (!(Number.isInteger(o[k]) && o[k] >= 1)) throw new Error(`bench: --${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} wants a positive integer`);
  }
  if (!(Number.isInteger(o.warmup) && o.warmup >= 0)) throw new Error('bench: --warmup wants a non-negative integer');
  if (o.metricsN < 4) throw new Error('bench: --metrics-n wants at least 4 features (k = 3 neighbours)');
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
  if (!py) note('PyTorch not found (DIT_PYTHON, /usr/bin/python3, python3; Debian: apt-get install python3-torch): torch columns skipped');
  if (!registerNativeBackend()) note(`native backend unavailable: ${nativeLoadError()}`);
  const backends = opts.backends ?? ['native', 'wasm', 'cpu'];
  const load0 = loadAverage();
  // The machine behind the ratios: sessions here have run on different CPU types, and the
  // kit's own GEMM differs by ISA (nativeGemmKernel: own-avx512, own-avx2 or openblas).
  const cpuModel = os.cpus()[0]?.model ?? 'unknown';
  emit({ bench: 'load', at: 'start', load_average: load0, cpus: os.cpus().length, cpu_model: cpuModel, own_gemm: nativeGemmKernel() },
    `load average at the start: ${load0.join(' ')} (${os.cpus().length} CPUs, ${cpuModel}; own GEMM ${nativeGemmKernel()}); timings taken while other work runs are not valid measurements`);

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

  if (opts.dit) await benchDiT(py);

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
    note(`\nmetrics: FID and precision/recall, ${opts.metricsN} vs ${opts.metricsN} ${opts.metricsD}-d features, kit vs numpy/scipy (ADM's evaluator), ` +
      `one BLAS thread each, alternating repeats: ${opts.metricsReps}; medians (min-max)`);
    const m = await benchMetrics({ n: opts.metricsN, d: opts.metricsD, reps: opts.metricsReps, log: note });
    const method = {
      kit: { fid_linalg: m.linalg, distances_backend: m.backend, blas: m.kit.blas, openblas_threads: m.kit.threads },
      numpy: m.numpy?.info ?? null, repeats: m.reps,
      order: 'alternating: kit FID, numpy FID, kit P/R, numpy P/R, per repeat',
      statistic: 'median of repeats (min, max); ratio = kit median / numpy median; paired = ratios of the repeats taken side by side',
      clocks: 'cpu_s: process CPU time (process.cpuUsage; time.process_time), wall_s: hrtime; perf_counter',
      load_average: m.loadAverage, env: ONE_THREAD_ENV,
    };
    for (const [what, key] of [['fid', 'fid'], ['fid+pr', 'fidPr']] as const) {
      if (opts.json) console.log(JSON.stringify({
        bench: 'metrics', what, n: m.n, d: m.d, kit: m.kit[key], numpy: m.numpy?.[key] ?? null, ratio: m.ratio?.[key] ?? null,
        kit_values: { fid: m.kit.fid_value, precision: m.kit.precision, recall: m.kit.recall },
        numpy_values: m.numpy ? { fid: m.numpy.fid_value, precision: m.numpy.precision, recall: m.numpy.recall } : null,
        target_cpu_ratio: key === 'fidPr' ? 0.5 : null, method,
      }));
    }
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
  const load1 = loadAverage();
  emit({ bench: 'load', at: 'end', load_average: load1 }, `\nload average at the end: ${load1.join(' ')}`);
}

// ---- DiT: the kit's training step and forward vs PyTorch's, alternating ------------------

const SGEMM_N = 1024;

interface Peak {
  /** GFLOP/s of the best repeat of each side, by CPU and by wall time; peak = the larger side. */
  kit: { cpu: number; wall: number } | null;
  torch: { cpu: number; wall: number } | null;
  peak: { cpu: number; wall: number };
}

/**
 * The machine's single-thread SGEMM peak: 1024^3 products through the kit's OpenBLAS
 * (the addon's matmul) and PyTorch's, three alternating repeats of 10 products each.
 */
async function sgemmPeak(worker: PyWorker | null): Promise<Peak | null> {
  const addon = registerNativeBackend() ? nativeAddon() : null;
  if (!addon && !worker) return null;
  const n = SGEMM_N, flop = 2 * n ** 3;
  const a = new Rng(1).fillNormal(new Float32Array(n * n)), b = new Rng(2).fillNormal(new Float32Array(n * n)), c = new Float32Array(n * n);
  const mm = () => addon!.matmul(a, b, c, 1, 1, 1, n, n, n, 0, 0, null);
  const kit: Timing[] = [], torch: Timing[] = [];
  if (addon) mm();
  for (let r = 0; r < 3; r++) {
    if (addon) kit.push(timeCalls(mm, 10));
    if (worker) torch.push(await worker.request({ op: 'sgemm', n, calls: 10 }) as unknown as Timing);
  }
  const best = (ts: Timing[]) => (ts.length ? { cpu: flop / Math.min(...ts.map((t) => t.cpu_s)) / 1e9, wall: flop / Math.min(...ts.map((t) => t.wall_s)) / 1e9 } : null);
  const k = best(kit), t = best(torch);
  return { kit: k, torch: t, peak: { cpu: Math.max(k?.cpu ?? 0, t?.cpu ?? 0), wall: Math.max(k?.wall ?? 0, t?.wall ?? 0) } };
}

function selectConfigs(names: string[] | null): BenchConfig[] {
  if (!names) return [...BENCH_CONFIGS];
  return names.map((n) => benchConfig(n));
}

/** Issue 15's targets, kit / PyTorch by CPU time: training <= 0.8 and forward <= 0.7 on the reference and 256-token configs. */
function targetRatio(bc: BenchConfig, phase: 'train' | 'forward'): number | null {
  if (bc !== REFERENCE && bc !== TOKENS_256) return null;
  return phase === 'train' ? 0.8 : 0.7;
}

function torchArgs(bc: BenchConfig): string[] {
  return ['--serve', '--depth', String(bc.depth), '--hidden', String(bc.hiddenSize), '--heads', String(bc.numHeads),
    '--batch', String(bc.batch), '--input-size', String(bc.inputSize), '--patch', String(bc.patch)];
}

/** What the PyTorch side reported about itself, in one line. */
function describeTorch(ready: Record<string, unknown>): string {
  const b = ready.blas as { library: string; threads: number | null };
  return `PyTorch ${String(ready.torch_version)} (BLAS_INFO ${String(ready.torch_blas_info)}): ${b.library}, ` +
    `${b.threads ?? '?'} OpenBLAS thread(s), torch.get_num_threads() ${String(ready.torch_threads)}`;
}

async function benchDiT(py: string | null): Promise<void> {
  const configs = selectConfigs(opts.configs);
  const W = opts.warmup, reps = opts.reps, k = opts.steps;
  note(`\nDiT: the kit's training step (lib/train trainStep: batch, flips, label dropout, timesteps, hybrid loss with the vb term, ` +
    `backward, AdamW, EMA) and a forward pass, vs bench/torch_dit.py doing the same step (${py ? 'PyTorch' : 'PyTorch not found: kit only'})`);
  note(`  method: ${W} warm-up steps (and forwards) each side, then ${reps} repeats of ${k} consecutive steps, kit and PyTorch alternating; ` +
    'each figure the median of the repeats (min-max) per step; ratio = kit median / PyTorch median (range of the side-by-side repeat ratios)');
  note('  step FLOPs = 2 x 3 x forward Gflops x batch (lib/model/gflops.ts: multiply-adds of the linear, matmul and conv layers; x3 for forward + backward)');
  let peak: Peak | null = null;
  for (const bc of configs) {
    let torch: { worker: PyWorker; ready: Record<string, unknown> } | null = null;
    if (py) {
      try {
        torch = await PyWorker.start(py, path.join(repoRoot(), 'bench', 'torch_dit.py'), torchArgs(bc));
      } catch (err) {
        note(`  torch_dit.py failed to start: ${(err as Error).message}`);
      }
    }
    try {
      if (!peak) {
        peak = await sgemmPeak(torch?.worker ?? null);
        if (peak) {
          emit({ bench: 'sgemm_peak', n: SGEMM_N, threads: 1, kit_gflops: peak.kit, torch_gflops: peak.torch, peak_gflops: peak.peak },
            `  single-thread SGEMM peak (${SGEMM_N}^3, best of 3 repeats): kit ${fmt(peak.kit?.cpu ?? null)}, PyTorch ${fmt(peak.torch?.cpu ?? null)} GFLOP/s ` +
            `by CPU time (wall ${fmt(peak.kit?.wall ?? null)}, ${fmt(peak.torch?.wall ?? null)}): peak ${fmt(peak.peak.cpu)} (${fmt(peak.peak.wall)} by wall time)`);
        }
      }
      const flops = trainStepFlops(bc);
      note(`\n${bc.label} — ${describeConfig(bc)}; ${(flops / 1e9).toFixed(2)} GFLOP per training step ` +
        `(2 x 3 x ${gflops(benchDiTConfig(bc)).toFixed(4)} Gflops x ${bc.batch})`);
      if (torch) note(`  ${describeTorch(torch.ready)}`);
      let torchWarm = false;
      for (const b of opts.backends ?? ['native']) {
        if (!(await tryBackend(b))) continue;
        const kitInfo = b === 'native' ? { backend: b, blas: nativeAddon().blasConfig(), openblas_threads: nativeAddon().getThreads() } : { backend: b };
        note(`  kit on ${b}${b === 'native' ? `: ${kitInfo.blas}, ${kitInfo.openblas_threads} OpenBLAS thread(s)` : ''}`);
        const s = openDiTSession(bc);
        try {
          timeCalls(s.trainStep, W);
          timeCalls(s.forward, W);
          if (torch && !torchWarm) {
            await torch.worker.request({ op: 'train', steps: W });
            await torch.worker.request({ op: 'forward', steps: W });
            torchWarm = true;
          }
          const start = loadAverage();
          const kit = { train: [] as Timing[], forward: [] as Timing[] }, ref = { train: [] as Timing[], forward: [] as Timing[] };
          for (let r = 0; r < reps; r++) {
            for (const phase of ['train', 'forward'] as const) {
              kit[phase].push(timeCalls(phase === 'train' ? s.trainStep : s.forward, k));
              if (torch) ref[phase].push(await torch.worker.request({ op: phase, steps: k }) as unknown as Timing);
            }
          }
          const end = loadAverage();
          const method = {
            kit: kitInfo,
            torch: torch ? {
              version: torch.ready.torch_version, torch_threads: torch.ready.torch_threads, blas_info: torch.ready.torch_blas_info,
              blas: torch.ready.blas, env: torch.ready.env,
            } : null,
            warmup_steps: { kit: W, torch: torch ? W : null }, repeats: reps, steps_per_repeat: k,
            order: 'interleaved: per repeat, kit train, PyTorch train, kit forward, PyTorch forward',
            statistic: 'per-step seconds of each repeat; median of repeats (min, max); ratio = kit median / PyTorch median; paired = ratios of the repeats taken side by side',
            clocks: 'cpu_s: process CPU time (process.cpuUsage; time.process_time), wall_s: hrtime; perf_counter',
            load_average: { start, end },
          };
          for (const phase of ['train', 'forward'] as const) {
            const ks = sides(kit[phase]), ts = torch ? sides(ref[phase]) : null;
            const rt: Ratio | null = torch ? ratio(kit[phase], ref[phase]) : null;
            const frac = phase === 'train' && peak ? {
              peak_gflops: peak.peak,
              kit_cpu: flops / ks.cpu_s.median / 1e9 / peak.peak.cpu, kit_wall: flops / ks.wall_s.median / 1e9 / peak.peak.wall,
              torch_cpu: ts ? flops / ts.cpu_s.median / 1e9 / peak.peak.cpu : null, torch_wall: ts ? flops / ts.wall_s.median / 1e9 / peak.peak.wall : null,
            } : null;
            emitDiT({ bench: 'dit', config: bc.label, model: describeConfig(bc), backend: b, phase: phase === 'train' ? 'train_step' : 'forward',
              fused_ops: fusedOpsNative(), kit: ks, torch: ts, ratio: rt, target_cpu_ratio: targetRatio(bc, phase),
              ...(phase === 'train' ? { step_gflop: flops / 1e9, sgemm_peak_fraction: frac } : {}),
              method: { ...method, ...(phase === 'train' ? { flops: 'forward Gflops (lib/model/gflops.ts, multiply-adds) x 2 x 3 (forward + backward) x batch' } : {}) } });
          }
          note(`  load average ${start.join(' ')} -> ${end.join(' ')}`);
        } finally {
          s.close();
        }
      }
    } finally {
      torch?.worker.close();
    }
  }
}

interface DiTRecord {
  bench: 'dit';
  backend: string;
  phase: 'train_step' | 'forward';
  kit: Sides;
  torch: Sides | null;
  ratio: Ratio | null;
  sgemm_peak_fraction?: { kit_cpu: number; kit_wall: number; torch_cpu: number | null; torch_wall: number | null } | null;
  [key: string]: unknown;
}

function emitDiT(r: DiTRecord): void {
  if (opts.json) {
    console.log(JSON.stringify(r));
    return;
  }
  const what = `${r.backend} ${r.phase === 'train_step' ? 'train step' : 'forward'}`.padEnd(18);
  for (const clock of ['cpu_s', 'wall_s'] as const) {
    const torch = r.torch ? `  PyTorch ${fmtSpread(r.torch[clock])}` : '';
    const target = clock === 'cpu_s' && typeof r.target_cpu_ratio === 'number' ? ` (target <= ${r.target_cpu_ratio})` : '';
    const rt = r.ratio ? `  ratio ${clock === 'cpu_s' ? fmtRatio(r.ratio.cpu, r.ratio.paired_cpu) : fmtRatio(r.ratio.wall, r.ratio.paired_wall)}${target}` : '';
    console.log(`  ${clock === 'cpu_s' ? what : ''.padEnd(18)} ${clock === 'cpu_s' ? 'CPU ' : 'wall'}  kit ${fmtSpread(r.kit[clock])}${torch}${rt}`);
  }
  const f = r.sgemm_peak_fraction;
  if (f) {
    const pct = (x: number | null) => (x == null ? '-' : `${(100 * x).toFixed(0)}%`);
    console.log(`  SGEMM peak reached by a training step: kit ${pct(f.kit_cpu)} by CPU time (${pct(f.kit_wall)} wall), ` +
      `PyTorch ${pct(f.torch_cpu)} (${pct(f.torch_wall)} wall)`);
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
