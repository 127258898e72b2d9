// Matmul throughput of the tfjs backends, and of PyTorch on one thread (the machine's
// single-core float32 reference), on the shapes a DiT training step produces; and the
// environment every Python reference of the bench runs in.
import { spawnSync } from 'child_process';
import * as tf from '@tensorflow/tfjs-core';
import { median } from '../lib/figures/stats';

export interface MatmulShape {
  name: string;
  batch: number;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
}

const shape = (name: string, batch: number, M: number, N: number, K: number, transA = false, transB = false): MatmulShape =>
  ({ name, batch, M, N, K, transA, transB });

/** 1024^3 (peak), then the reference DiT's shapes: linear forward/backward, attention. */
export const MATMUL_SHAPES: MatmulShape[] = [
  shape('square 1024', 1, 1024, 1024, 1024),
  shape('square 1024 A^T', 1, 1024, 1024, 1024, true),
  shape('square 1024 B^T', 1, 1024, 1024, 1024, false, true),
  shape('mlp fc1 fwd', 1, 2048, 512, 128),
  shape('mlp fc1 dW (A^T)', 1, 128, 512, 2048, true),
  shape('mlp fc2 dX (B^T)', 1, 2048, 512, 128, false, true),
  shape('attn scores (B^T)', 128, 64, 64, 32, false, true),
  shape('attn out', 128, 64, 32, 64),
];

/** A smaller set for the pure-JS cpu backend (0.4 GFLOP/s would take minutes). */
export const SMALL_SHAPES: MatmulShape[] = [
  shape('square 256', 1, 256, 256, 256),
  shape('attn scores (B^T)', 128, 64, 64, 32, false, true),
];

export const flops = (s: MatmulShape) => 2 * s.batch * s.M * s.N * s.K;


/**
 * GFLOP/s of tf.matMul on the active backend, median over reps after a warmup: by wall time
 * and by process CPU time (steadier when other work shares the cores).
 */
export function tfMatmulGflops(s: MatmulShape, minSeconds = 0.3): { wall: number; cpu: number } {
  const aShape = s.transA ? [s.K, s.M] : [s.M, s.K];
  const bShape = s.transB ? [s.N, s.K] : [s.K, s.N];
  const a = tf.randomNormal(s.batch > 1 ? [s.batch, ...aShape] : aShape);
  const b = tf.randomNormal(s.batch > 1 ? [s.batch, ...bShape] : bShape);
  const cpuTimes: number[] = [];
  const once = () => {
    const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
    // The CPU backends compute synchronously: the product is there when matMul returns.
    // (dataSync would hand the output array out and keep the native backend from reusing it.)
    tf.matMul(a, b, s.transA, s.transB).dispose();
    const cu = process.cpuUsage(c0);
    cpuTimes.push((cu.user + cu.system) / 1e6);
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  once();
  cpuTimes.length = 0;
  const times: number[] = [];
  let total = 0;
  while (times.length < 3 || (total < minSeconds && times.length < 50)) {
    const t = once();
    times.push(t);
    total += t;
  }
  tf.dispose([a, b]);
  // CPU time has a coarse clock: use the mean for it.
  const cpu = cpuTimes.reduce((x, y) => x + y, 0) / cpuTimes.length;
  return { wall: flops(s) / median(times) / 1e9, cpu: cpu > 0 ? flops(s) / cpu / 1e9 : NaN };
}

/**
 * The environment of the Python references: one BLAS thread. torch.set_num_threads(1) does
 * not limit Debian's OpenBLAS (it starts one thread per core); OPENBLAS_NUM_THREADS does.
 * The kit runs OpenBLAS on one thread too (DIT_NATIVE_THREADS, default 1).
 */
export const ONE_THREAD_ENV = { OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' } as const;

export function referenceEnv(): NodeJS.ProcessEnv {
  return { ...process.env, ...ONE_THREAD_ENV };
}

/**
 * A python3 that imports `modules` (DIT_PYTHON, /usr/bin/python3, python3), or null. The
 * system Python first: Debian's numpy, scipy and torch link the system OpenBLAS, the
 * library the kit's addon links, where pip wheels bring copies of their own.
 */
export function pythonWith(modules: string): string | null {
  for (const py of [process.env.DIT_PYTHON, '/usr/bin/python3', 'python3']) {
    if (!py) continue;
    const r = spawnSync(py, ['-c', `import ${modules}`], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return null;
}

/** A python3 that imports torch (Debian: python3-torch), or null. */
export const torchPython = (): string | null => pythonWith('torch');

const TORCH_MATMUL = `
import json, statistics, sys, time, torch
torch.set_num_threads(1)
out = []
for s in json.loads(sys.argv[1]):
    a = torch.randn(*([s["batch"]] if s["batch"] > 1 else []), *((s["K"], s["M"]) if s["transA"] else (s["M"], s["K"])))
    b = torch.randn(*([s["batch"]] if s["batch"] > 1 else []), *((s["N"], s["K"]) if s["transB"] else (s["K"], s["N"])))
    f = lambda: (a.transpose(-1, -2) if s["transA"] else a) @ (b.transpose(-1, -2) if s["transB"] else b)
    f()
    ts, cs, total = [], [], 0.0
    while len(ts) < 3 or (total < 0.3 and len(ts) < 50):
        t0, c0 = time.perf_counter(), time.process_time(); f(); t = time.perf_counter() - t0
        ts.append(t); cs.append(time.process_time() - c0); total += t
    fl = 2 * s["batch"] * s["M"] * s["N"] * s["K"]
    out.append({"wall": fl / statistics.median(ts) / 1e9, "cpu": fl / statistics.mean(cs) / 1e9 if sum(cs) > 0 else None})
print(json.dumps(out))
`;

/** PyTorch's single-thread GFLOP/s on the same shapes, by wall and by CPU time. */
export function torchMatmulGflops(py: string, shapes: MatmulShape[]): Array<{ wall: number; cpu: number | null }> {
  const r = spawnSync(py, ['-c', TORCH_MATMUL, JSON.stringify(shapes)], { encoding: 'utf8', env: referenceEnv() });
  if (r.status !== 0) throw new Error(`torch matmul benchmark failed: ${r.stderr.trim().split('\n').pop()}`);
  return JSON.parse(r.stdout) as Array<{ wall: number; cpu: number | null }>;
}
