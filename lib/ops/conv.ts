// 2-D convolution (NHWC, filters [kh, kw, in, out] as tfjs) for the feature networks and
// the autoencoder.
// Two equivalent implementations:
//   'tf'      tf.conv2d, the backend's own kernels;
//   'im2col'  patches gathered into a [N*Ho*Wo, kh*kw*in] matrix by a plain JS loop (its
//             gradient is the matching col2im scatter), then one tf.matMul.
// 'im2col' exists because the CPU backends' conv kernels are tfjs-cpu's JS loops: forward
// about 0.4 GFLOP/s and the two backward kernels about 0.01 GFLOP/s here, while matMul
// reaches OpenBLAS speed on the 'native' backend. 'auto' (the default) takes 'tf' when the
// running backend brings its own Conv2D, Conv2DBackpropInput and Conv2DBackpropFilter
// kernels (tfjs-node, or native conv kernels once they exist) and 'im2col' when it would
// fall back to tfjs-cpu's (or has none, as wasm lacks Conv2DBackpropFilter).
import * as tf from '@tensorflow/tfjs-core';

/** 'valid', 'same' (TF semantics), or explicit [top, bottom, left, right]. */
export type Padding = 'valid' | 'same' | [number, number, number, number];

export interface Conv2dOptions {
  /** Stride, one number or [sh, sw]. Default 1. */
  stride?: number | [number, number];
  /** Default 'valid'. */
  pad?: Padding;
}

export type ConvImpl = 'auto' | 'tf' | 'im2col';

let chosen: ConvImpl = 'auto';

/** Forces an implementation (tests, benchmarks); 'auto' restores the default choice. */
export function setConvImpl(impl: ConvImpl): void {
  if (impl !== 'auto' && impl !== 'tf' && impl !== 'im2col') throw new Error(`conv implementation must be auto, tf or im2col, got '${impl}'`);
  chosen = impl;
}

const CONV_KERNELS = ['Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter'];

/** True when the running backend has its own conv kernels (not tfjs-cpu's JS loops). */
export function backendHasFastConv(): boolean {
  const backend = tf.getBackend();
  return CONV_KERNELS.every((name) => {
    const k = tf.getKernel(name, backend);
    if (!k) return false;
    const cpu = tf.getKernel(name, 'cpu');
    return !cpu || k.kernelFunc !== cpu.kernelFunc;
  });
}

/** The implementation conv2d uses now. */
export function convImplInUse(): 'tf' | 'im2col' {
  if (chosen !== 'auto') return chosen;
  return backendHasFastConv() ? 'tf' : 'im2col';
}

/** Everything the im2col loops need about one convolution. */
export interface ConvGeometry {
  n: number; h: number; w: number; c: number;
  kh: number; kw: number; sh: number; sw: number;
  /** Top and left padding (bottom/right follow from the output size). */
  pt: number; pl: number;
  ho: number; wo: number;
}

/** Output size and padding of a convolution, as tf.conv2d computes them. */
export function convGeometry(xShape: readonly number[], kh: number, kw: number, opts: Conv2dOptions = {}): ConvGeometry & { pb: number; pr: number } {
  const [n, h, w, c] = xShape;
  const [sh, sw] = typeof opts.stride === 'number' || opts.stride === undefined ? [opts.stride ?? 1, opts.stride ?? 1] : opts.stride;
  const pad = opts.pad ?? 'valid';
  let pt: number, pb: number, pl: number, pr: number;
  if (pad === 'valid') {
    pt = pb = pl = pr = 0;
  } else if (pad === 'same') {
    // TF: out = ceil(in / stride); the odd pixel of padding goes after.
    const th = Math.max((Math.ceil(h / sh) - 1) * sh + kh - h, 0);
    const tw = Math.max((Math.ceil(w / sw) - 1) * sw + kw - w, 0);
    pt = Math.floor(th / 2); pb = th - pt; pl = Math.floor(tw / 2); pr = tw - pl;
  } else {
    [pt, pb, pl, pr] = pad;
  }
  const ho = Math.floor((h + pt + pb - kh) / sh) + 1;
  const wo = Math.floor((w + pl + pr - kw) / sw) + 1;
  if (!(ho > 0 && wo > 0)) throw new Error(`conv2d: a ${kh}x${kw} kernel does not fit a ${h}x${w} input with padding [${pt}, ${pb}, ${pl}, ${pr}]`);
  return { n, h, w, c, kh, kw, sh, sw, pt, pl, ho, wo, pb, pr };
}

/**
 * Visits every patch row of the im2col matrix that falls inside the image: `visit(pixel,
 * col, len)` pairs the `len` contiguous values at offset `pixel` of the NHWC batch with
 * those at offset `col` of the matrix (zero padding is simply not visited).
 */
function forEachPatchRun(g: ConvGeometry, visit: (pixel: number, col: number, len: number) => void): void {
  const { n, h, w, c, kh, kw, sh, sw, pt, pl, ho, wo } = g;
  let o = 0;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < ho; oy++) {
      for (let ox = 0; ox < wo; ox++) {
        const x0 = ox * sw - pl;
        // Columns j0..j1-1 of the kernel fall inside the row; they are contiguous in x.
        const j0 = Math.max(0, -x0), j1 = Math.min(kw, w - x0);
        for (let i = 0; i < kh; i++) {
          const iy = oy * sh - pt + i;
          if (iy >= 0 && iy < h && j1 > j0) visit(((b * h + iy) * w + x0 + j0) * c, o + j0 * c, (j1 - j0) * c);
          o += kw * c;
        }
      }
    }
  }
}

/**
 * Patches of an NHWC batch as rows: row (n, oy, ox) holds x[n, oy*sh - pt + i, ox*sw - pl + j, :]
 * for i < kh, j < kw in that order (zeros outside the image), matching a [kh, kw, c, out]
 * filter reshaped to [kh*kw*c, out].
 */
export function im2colHost(x: Float32Array, g: ConvGeometry): Float32Array {
  const out = new Float32Array(g.n * g.ho * g.wo * g.kh * g.kw * g.c);
  forEachPatchRun(g, (pixel, col, len) => out.set(x.subarray(pixel, pixel + len), col));
  return out;
}

/** The adjoint of im2colHost: each column entry is added back to the pixel it came from. */
export function col2imHost(cols: Float32Array, g: ConvGeometry): Float32Array {
  const out = new Float32Array(g.n * g.h * g.w * g.c);
  forEachPatchRun(g, (pixel, col, len) => {
    for (let t = 0; t < len; t++) out[pixel + t] += cols[col + t];
  });
  return out;
}

/** im2col as a differentiable tfjs op. */
function im2col(x: tf.Tensor4D, g: ConvGeometry): tf.Tensor2D {
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const xx = args[0] as tf.Tensor;
    return {
      value: tf.tensor2d(im2colHost(xx.dataSync() as Float32Array, g), [g.n * g.ho * g.wo, g.kh * g.kw * g.c]),
      gradFunc: (dy: tf.Tensor) => tf.tensor4d(col2imHost(dy.dataSync() as Float32Array, g), [g.n, g.h, g.w, g.c]),
    };
  });
  return op(x) as tf.Tensor2D;
}

/** Most floats one im2col matrix may hold before the batch is split (64 MB). */
const MAX_COLS = 16 * 1024 * 1024;

function conv2dIm2col(x: tf.Tensor4D, filter: tf.Tensor4D, opts: Conv2dOptions): tf.Tensor4D {
  const [kh, kw, ci, co] = filter.shape;
  const g = convGeometry(x.shape, kh, kw, opts);
  const wmat = tf.reshape(filter, [kh * kw * ci, co]);
  const pointwise = kh === 1 && kw === 1 && g.sh === 1 && g.sw === 1 && g.pt === 0 && g.pl === 0 && g.pb === 0 && g.pr === 0;
  if (pointwise) return tf.reshape(tf.matMul(tf.reshape(x, [g.n * g.h * g.w, ci]), wmat), [g.n, g.h, g.w, co]);
  const perImage = g.ho * g.wo * kh * kw * ci;
  const chunk = Math.max(1, Math.floor(MAX_COLS / perImage));
  if (g.n <= chunk) return tf.reshape(tf.matMul(im2col(x, g), wmat), [g.n, g.ho, g.wo, co]);
  const parts: tf.Tensor4D[] = [];
  for (let b = 0; b < g.n; b += chunk) {
    const m = Math.min(chunk, g.n - b);
    const xb = tf.slice(x, [b, 0, 0, 0], [m, g.h, g.w, ci]);
    parts.push(tf.reshape(tf.matMul(im2col(xb, { ...g, n: m }), wmat), [m, g.ho, g.wo, co]));
  }
  return tf.concat(parts, 0);
}

/** tfjs' explicit padding for NHWC. */
function explicitPad(g: { pt: number; pb: number; pl: number; pr: number }): [[number, number], [number, number], [number, number], [number, number]] {
  return [[0, 0], [g.pt, g.pb], [g.pl, g.pr], [0, 0]];
}

/** conv2d(x [N,H,W,Cin], filter [kh,kw,Cin,Cout]) -> [N,Ho,Wo,Cout], no bias. */
export function conv2d(x: tf.Tensor4D, filter: tf.Tensor4D, opts: Conv2dOptions = {}): tf.Tensor4D {
  if (x.rank !== 4 || filter.rank !== 4) throw new Error(`conv2d: x and filter must be 4-d, got [${x.shape}] and [${filter.shape}]`);
  if (x.shape[3] !== filter.shape[2]) throw new Error(`conv2d: x has ${x.shape[3]} channels, the filter expects ${filter.shape[2]}`);
  return tf.tidy(() => {
    if (convImplInUse() === 'im2col') return conv2dIm2col(x, filter, opts);
    const g = convGeometry(x.shape, filter.shape[0], filter.shape[1], opts);
    return tf.conv2d(x, filter, [g.sh, g.sw], explicitPad(g));
  });
}
