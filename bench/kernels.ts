// Matmul throughput of the tfjs backends, and of PyTorch on one thread (the machine's
// single-core float32 reference), on the shapes a DiT training step produces.
import { spawnSync } from 'child_process';
import * as tf from '@tensorflow/tfjs-core';

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

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** GFLOP/s of tf.matMul on the active backend: median over reps after a warmup. */
export function tfMatmulGflops(s: MatmulShape, minSeconds = 0.3): number {
  const aShape = s.transA ? [s.K, s.M] : [s.M, s.K];
  const bShape = s.transB ? [s.N, s.K] : [s.K, s.N];
  const a = tf.randomNormal(s.batch > 1 ? [s.batch, ...aShape] : aShape);
  const b = tf.randomNormal(s.batch > 1 ? [s.batch, ...bShape] : bShape);
  const once = () => {
    const t0 = process.hrtime.bigint();
    const c = tf.matMul(a, b, s.transA, s.transB);
    c.dataSync();
    c.dispose();
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  once();
  const times: number[] = [];
  let total = 0;
  while (times.length < 3 || (total < minSeconds && times.length < 50)) {
    const t = once();
    times.push(t);
    total += t;
  }
  tf.dispose([a, b]);
  return flops(s) / median(times) / 1e9;
}

/** A python3 that imports torch (DIT_PYTHON, python3, /usr/bin/python3), or null. */
export function torchPython(): string | null {
  for (const py of [process.env.DIT_PYTHON, 'python3', '/usr/bin/python3']) {
    if (!py) continue;
    const r = spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return null;
}

const TORCH_MATMUL = `
import json, statistics, sys, time, torch
torch.set_num_threads(1)
out = []
for s in json.loads(sys.argv[1]):
    a = torch.randn(*([s["batch"]] if s["batch"] > 1 else []), *((s["K"], s["M"]) if s["transA"] else (s["M"], s["K"])))
    b = torch.randn(*([s["batch"]] if s["batch"] > 1 else []), *((s["N"], s["K"]) if s["transB"] else (s["K"], s["N"])))
    f = lambda: (a.transpose(-1, -2) if s["transA"] else a) @ (b.transpose(-1, -2) if s["transB"] else b)
    f()
    ts, total = [], 0.0
    while len(ts) < 3 or (total < 0.3 and len(ts) < 50):
        t0 = time.perf_counter(); f(); t = time.perf_counter() - t0
        ts.append(t); total += t
    out.append(2 * s["batch"] * s["M"] * s["N"] * s["K"] / statistics.median(ts) / 1e9)
print(json.dumps(out))
`;

/** PyTorch's single-thread GFLOP/s on the same shapes (null entries when torch is missing). */
export function torchMatmulGflops(py: string, shapes: MatmulShape[]): number[] {
  const r = spawnSync(py, ['-c', TORCH_MATMUL, JSON.stringify(shapes)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`torch matmul benchmark failed: ${r.stderr.trim().split('\n').pop()}`);
  return JSON.parse(r.stdout) as number[];
}
