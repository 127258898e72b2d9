// Loads native/build/ditnative.node (built by native/build.sh). Kept apart from the backend so
// tests and benchmarks can ask "is the addon here, and if not, why" without registering it.
import * as fs from 'fs';
import * as path from 'path';
import { repoRoot } from '../util/paths';

/** The addon's functions. All arrays are float32 and are read/written in place (zero copy). */
export interface NativeAddon {
  /** out[i] = op(a[i % batchA]) @ op(b[i % batchB]) (+ bias [N] on every row); out is [batchOut, M, N]; trans* are 0/1. */
  matmul(a: Float32Array, b: Float32Array, out: Float32Array, batchA: number, batchB: number,
    batchOut: number, M: number, N: number, K: number, transA: number, transB: number, bias: Float32Array | null): void;
  /** dst[dOff + sum i_k dStrides_k] = src[sOff + sum i_k sStrides_k] over all i < shape. */
  copy(src: Float32Array, srcOffset: number, srcStrides: number[], dst: Float32Array,
    dstOffset: number, dstStrides: number[], shape: number[]): void;
  /** out (contiguous, shape) = a op b with per-operand strides (0 = broadcast). */
  binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array, shape: number[],
    aStrides: number[], bStrides: number[]): void;
  unary(op: number, x: Float32Array, out: Float32Array, alpha: number): void;
  /** x is [outer, r, inner]; out is [outer, inner]. */
  reduce(op: number, x: Float32Array, out: Float32Array, outer: number, r: number, inner: number): void;
  softmax(x: Float32Array, out: Float32Array, rows: number, cols: number): void;
  geluTanhGrad(x: Float32Array, dy: Float32Array, dx: Float32Array): void;
  /** The DiT MLP: h = x w1 + b1 (h null: not kept), g = gelu_tanh(h), y = g w2 + b2. Absent from older builds. */
  mlpForward?(x: Float32Array, w1: Float32Array, b1: Float32Array, w2: Float32Array, b2: Float32Array, y: Float32Array,
    h: Float32Array | null, g: Float32Array, rows: number, D: number, H: number, DO: number): void;
  /** mlpForward's gradients (dh [rows, H] is scratch). Absent from older builds. */
  mlpBackward?(x: Float32Array, w1: Float32Array, w2: Float32Array, h: Float32Array, g: Float32Array, dy: Float32Array,
    dx: Float32Array, dw1: Float32Array, db1: Float32Array, dw2: Float32Array, db2: Float32Array, dh: Float32Array,
    rows: number, D: number, H: number, DO: number): void;
  /** Layer norm of rows of D, then y * (1 + scale[n]) + shift[n] when shift/scale ([N, D]) are given. */
  lnModForward(x: Float32Array, shift: Float32Array | null, scale: Float32Array | null, y: Float32Array,
    N: number, T: number, D: number, eps: number): void;
  lnModBackward(x: Float32Array, scale: Float32Array | null, dy: Float32Array, dx: Float32Array,
    dshift: Float32Array | null, dscale: Float32Array | null, N: number, T: number, D: number, eps: number): void;
  /** out = x + g[:, None] * h; x, h, out [N, T, D], g [N, D]. */
  gatedResidual(x: Float32Array, h: Float32Array, g: Float32Array, out: Float32Array, N: number, T: number, D: number): void;
  /** dh = g[:, None] * dy, dg = sum over T of h * dy. */
  gatedResidualGrad(h: Float32Array, g: Float32Array, dy: Float32Array, dh: Float32Array, dg: Float32Array, N: number, T: number, D: number): void;
  /** q/k/v given as (array, offset, row stride); out [N, Tq, H*hd], probs [N, H, Tq, Tk] or null (not kept). */
  attnForward(q: Float32Array, qOff: number, qStride: number, k: Float32Array, kOff: number, kStride: number,
    v: Float32Array, vOff: number, vStride: number, out: Float32Array, probs: Float32Array | null,
    N: number, Tq: number, Tk: number, H: number, hd: number, scale: number): void;
  /** dq/dk/dv share the layout of q/k/v. */
  attnBackward(q: Float32Array, qOff: number, qStride: number, k: Float32Array, kOff: number, kStride: number,
    v: Float32Array, vOff: number, vStride: number, probs: Float32Array, dout: Float32Array,
    dq: Float32Array, dk: Float32Array, dv: Float32Array, N: number, Tq: number, Tk: number, H: number, hd: number,
    scale: number): void;
  /** One AdamW step over equal-length arrays; consts = [b1, 1-b1, b2, 1-b2, sqrtBc2, eps, keep, stepSize, decay]. */
  adamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, p1: Float32Array, m1: Float32Array,
    v1: Float32Array, consts: number[]): void;
  /** e1 = e decay + p oneMinusDecay (float32 constants, the tf ops' rounding). */
  ema(e: Float32Array, p: Float32Array, e1: Float32Array, decay: number, oneMinusDecay: number): void;
  /**
   * NHWC convolution, filter [FH, FW, C, OC]. mode 0: out = conv(a = x, b = w); 1: out = dx from
   * (a = dy, b = w); 2: out = dw from (a = x, b = dy); 3/4: out = max/avg pool of a over FHxFW
   * windows (b unused, OC = C). geom = [N, H, W, C, OH, OW, OC, FH, FW, strideH, strideW,
   * dilationH, dilationW, padTop, padLeft].
   */
  conv2d(mode: 0 | 1 | 2 | 3 | 4, a: Float32Array, b: Float32Array, out: Float32Array, geom: number[]): void;
  /**
   * Float64 mean (mu, d) and unbiased covariance (sigma, d x d) of n x d row-major features,
   * as np.mean / np.cov(rowvar=False) (dsyrk). Absent from builds older than the FID linear algebra.
   */
  featureCovariance?(x: Float32Array | Float64Array, n: number, d: number, mu: Float64Array, sigma: Float64Array): void;
  /**
   * tr sqrtm(S1 S2) pieces through LAPACK (dpstrf, dtrmm, dsyevd): writes the eigenvalues of
   * L^T S2[P, P] L (S1[P, P] = L L^T) to eig[0..rank) and the left-out diagonal of S1 to
   * resid[0..n-rank); returns the rank of S1. Absent from older builds.
   */
  traceSqrtProduct?(s1: Float64Array, s2: Float64Array, n: number, eig: Float64Array, resid: Float64Array): number;
  /**
   * Precision/recall's k-NN radii update of one distance block (lib/metrics/precision_recall.ts
   * radiiBlock, value for value). Absent from older builds.
   */
  radiiBlock?(uv: Float32Array, rows: number, w: number, r0: number, c0: number, mirrorFrom: number, norms: Float32Array,
    best: Float64Array, worst: Float64Array, k1: number): void;
  /** evaluate_pr's comparisons of one distance block (precision_recall.ts prBlock). Absent from older builds. */
  prBlock?(uv: Float32Array, rows: number, w: number, r0: number, c0: number, refNorms: Float32Array, sampleNorms: Float32Array,
    refRadii: Float32Array, sampleRadii: Float32Array, refIn: Uint8Array, sampleIn: Uint8Array): void;
  setThreads(n: number): void;
  getThreads(): number;
  blasConfig(): string;
  /**
   * Which kernel does the products native/src/gemm.c's own kernels are faster for (A not
   * transposed, packed B within L2; gemm.h says where each pays; the MLP's GELU epilogues):
   * 'auto' picks AVX-512 when the CPU has it, else AVX2 + FMA; 'openblas' sends every product
   * to OpenBLAS; 'avx2' and 'avx512' force that kernel (an error where the CPU lacks it).
   * Returns the kernel now used ('own-avx512', 'own-avx2' or 'openblas'). Absent from older builds.
   */
  setGemm?(mode: GemmMode): string;
}

const GEMM_MODES = ['auto', 'openblas', 'avx2', 'avx512'] as const;
export type GemmMode = (typeof GEMM_MODES)[number];

export const BUILD_COMMAND = 'npm run build:native   (or: bash native/build.sh; needs gcc and libopenblas-dev)';

let loaded: { addon: NativeAddon | null; error: string; file: string } | null = null;
let gemmKernel = 'openblas';

/** The kernel the loaded addon uses for the products setGemm governs ('own-avx512', 'own-avx2' or 'openblas'; DIT_NATIVE_GEMM chooses). */
export function nativeGemmKernel(): string {
  return gemmKernel;
}

/** Path of the built addon (it may not exist). DIT_NATIVE_ADDON overrides, for tests. */
export function addonPath(): string {
  return process.env.DIT_NATIVE_ADDON || path.join(repoRoot(), 'native', 'build', 'ditnative.node');
}

/** The addon, or null with the reason in nativeLoadError(). Loads once per process. */
export function loadNativeAddon(): NativeAddon | null {
  if (loaded) return loaded.addon;
  const file = addonPath();
  if (!fs.existsSync(file)) {
    loaded = { addon: null, error: `${file} is not built`, file };
    return null;
  }
  const isa = missingCpuFlags(file);
  if (isa) {
    loaded = { addon: null, error: `${file} was built for CPU features this machine lacks (${isa}); rebuild it here`, file };
    return null;
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a compiled addon at a path known at run time
    const addon = require(file) as NativeAddon;
    if (typeof addon.matmul !== 'function') throw new Error('it has no matmul export (stale build?)');
    // One BLAS thread: on the shared 2-vCPU machines two threads were slower at DiT sizes.
    const threads = Number(process.env.DIT_NATIVE_THREADS || 1);
    addon.setThreads(Number.isFinite(threads) && threads >= 1 ? Math.floor(threads) : 1);
    const gemm = process.env.DIT_NATIVE_GEMM || 'auto';
    if (!(GEMM_MODES as readonly string[]).includes(gemm)) throw new Error(`DIT_NATIVE_GEMM='${gemm}' is not a GEMM choice; use ${GEMM_MODES.join(', ')}`);
    gemmKernel = addon.setGemm?.(gemm as GemmMode) ?? 'openblas';
    loaded = { addon, error: '', file };
  } catch (err) {
    loaded = { addon: null, error: `${file} failed to load: ${(err as Error).message}`, file };
  }
  return loaded.addon;
}

/** CPU flags the build needs (build/ditnative.json) that /proc/cpuinfo does not list, or ''. */
function missingCpuFlags(file: string): string {
  const meta = path.join(path.dirname(file), 'ditnative.json');
  if (!fs.existsSync(meta) || !fs.existsSync('/proc/cpuinfo')) return '';
  try {
    const need = (JSON.parse(fs.readFileSync(meta, 'utf8')) as { cpuFlags?: string[] }).cpuFlags ?? [];
    const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags')) ?? '';
    const have = new Set(line.split(':')[1]?.trim().split(/\s+/) ?? []);
    return need.filter((f) => !have.has(f)).join(', ');
  } catch {
    return '';
  }
}

/** Why loadNativeAddon() returned null ('' when it loaded or was not tried). */
export function nativeLoadError(): string {
  return loaded?.error ?? '';
}
