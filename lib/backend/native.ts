// The 'native' tfjs backend: tfjs' own CPU backend (data in JS TypedArrays) with its hot
// kernels replaced by calls into native/build/ditnative.node (OpenBLAS sgemm, vectorized
// elementwise loops), which read and write those arrays in place. Every other kernel is the
// plain cpu one, re-registered under 'native'; any case a native kernel does not cover
// (non-float32 dtypes, unusual broadcasting) falls through to the cpu kernel too. The 'cpu'
// backend stays untouched, so tests can compare the two.
import * as tf from '@tensorflow/tfjs-core';
import { NativeAddon, loadNativeAddon } from './native_addon';
import { registerFusedKernels } from './native_ops';
import { NativeBackend } from './native_backend';
import { REDUCE, alloc, f32, output, size, stridesOf } from './native_util';

type TensorInfo = tf.TensorInfo;
// Kernel arguments as tfjs passes them (inputs by name; a list for AddN and Concat).
type Args = { inputs: Record<string, TensorInfo>; backend: unknown; attrs?: tf.NamedAttrMap };
type KernelImpl = (args: Args) => TensorInfo | TensorInfo[];

// Op codes: must match native/src/ditnative.c (binary, reduce) and vmath.h (unary).
const BINARY: Record<string, number> = {
  Add: 0, Sub: 1, Multiply: 2, RealDiv: 3, Maximum: 4, Minimum: 5, SquaredDifference: 6, Pow: 7,
};
const UNARY: Record<string, number> = {
  Neg: 0, Square: 1, Sqrt: 2, Rsqrt: 3, Reciprocal: 4, Abs: 5, Relu: 6, Step: 7, LeakyRelu: 8, Relu6: 9,
  Exp: 11, Log: 12, Tanh: 13, Sigmoid: 14, Sin: 15, Cos: 16, Softplus: 17, Log1p: 18, Expm1: 19,
  Erf: 20, Elu: 21,
};
const UNARY_CUBE = 10; // (22 is the tanh GELU, used by native_ops.ts)

let addon: NativeAddon;
let cpuKernels: Map<string, tf.KernelConfig>;

function cpuKernel(name: string): KernelImpl {
  const k = cpuKernels.get(name);
  if (!k) throw new Error(`native backend: no cpu kernel '${name}' to fall back to`);
  return k.kernelFunc as unknown as KernelImpl;
}

// ---- helpers -----------------------------------------------------------------------------

/** The loaded addon (only valid once registerNativeBackend() returned true). */
export function nativeAddon(): NativeAddon {
  return addon;
}

/**
 * Simplifies an iteration space shared by several operands: drops size-1 dims and merges a
 * dim into the next when every operand steps through both as one (keeps C loops long).
 */
function simplify(shape: number[], strides: number[][]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let k = 0; k < shape.length; k++) {
    if (shape[k] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((s, j) => outStrides[j][last] === s[k] * shape[k])) {
      outShape[last] *= shape[k];
      strides.forEach((s, j) => (outStrides[j][last] = s[k]));
    } else {
      outShape.push(shape[k]);
      strides.forEach((s, j) => outStrides[j].push(s[k]));
    }
  }
  return { shape: outShape, strides: outStrides };
}

/** Strides of `shape` read as broadcast to `outShape` (0 along broadcast dims). */
function broadcastStrides(shape: number[], outShape: number[]): number[] {
  const s = stridesOf(shape);
  const pad = outShape.length - shape.length;
  return outShape.map((_, k) => (k < pad || shape[k - pad] === 1 ? 0 : s[k - pad]));
}

/** out = a op b with numpy broadcasting, on the addon. */
export function binaryInto(op: number, a: Float32Array, aShape: number[], b: Float32Array, bShape: number[],
  out: Float32Array, outShape: number[]): void {
  const { shape, strides } = simplify(outShape, [broadcastStrides(aShape, outShape), broadcastStrides(bShape, outShape)]);
  addon.binary(op, a, b, out, shape, strides[0], strides[1]);
}

// ---- kernels -----------------------------------------------------------------------------

// x ** c for the constant exponents that gradients and GELU produce, without powf.
const POW_AS_UNARY: Record<number, number> = { 2: UNARY.Square, 3: UNARY_CUBE, 0.5: UNARY.Sqrt, [-0.5]: UNARY.Rsqrt, [-1]: UNARY.Reciprocal };

function binaryKernel(name: string): KernelImpl {
  const op = BINARY[name];
  return (args) => {
    const { a, b } = args.inputs;
    const av = f32(args.backend, a), bv = f32(args.backend, b);
    if (!av || !bv) return cpuKernel(name)(args);
    if (name === 'Pow' && bv.length === 1 && POW_AS_UNARY[bv[0]] !== undefined && a.shape.length >= b.shape.length) {
      const out = alloc(args.backend, av.length);
      addon.unary(POW_AS_UNARY[bv[0]], av, out, 0);
      return output(args.backend, a.shape.slice(), out);
    }
    const outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const out = alloc(args.backend, size(outShape));
    if (out.length > 0) binaryInto(op, av, a.shape, bv, b.shape, out, outShape);
    return output(args.backend, outShape, out);
  };
}

function unaryKernel(name: string): KernelImpl {
  const op = UNARY[name];
  return (args) => {
    const { x } = args.inputs;
    const xv = f32(args.backend, x);
    if (!xv) return cpuKernel(name)(args);
    const out = alloc(args.backend, xv.length);
    addon.unary(op, xv, out, Number(args.attrs?.alpha ?? 0));
    return output(args.backend, x.shape.slice(), out);
  };
}

function addN(args: Args): TensorInfo {
  const xs = args.inputs as unknown as TensorInfo[];
  const vs = xs.map((t) => f32(args.backend, t));
  if (vs.some((v) => !v) || xs.some((t) => !tf.util.arraysEqual(t.shape, xs[0].shape))) {
    return cpuKernel('AddN')(args) as TensorInfo;
  }
  const out = alloc(args.backend, vs[0]!.length);
  out.set(vs[0]!);
  const flat = [out.length];
  for (let i = 1; i < vs.length; i++) addon.binary(BINARY.Add, out, vs[i]!, out, flat, [1], [1]);
  return output(args.backend, xs[0].shape.slice(), out);
}

function batchMatMul(args: Args): TensorInfo {
  const { a, b } = args.inputs;
  const transposeA = Boolean(args.attrs?.transposeA), transposeB = Boolean(args.attrs?.transposeB);
  const av = f32(args.backend, a), bv = f32(args.backend, b);
  if (!av || !bv) return cpuKernel('BatchMatMul')(args) as TensorInfo;
  const ra = a.shape.length, rb = b.shape.length;
  const M = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const K = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const Kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const N = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (K !== Kb) {
    throw new Error(`Error in matMul: inner shapes (${K}) and (${Kb}) of Tensors with shapes ${a.shape} and ` +
      `${b.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`);
  }
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const batchA = size(a.shape.slice(0, -2)), batchB = size(b.shape.slice(0, -2)), batch = size(outer);
  // Batch broadcasting is "one side has a single matrix" (as in the cpu kernel); anything
  // else goes to the cpu kernel.
  if ((batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1)) {
    return cpuKernel('BatchMatMul')(args) as TensorInfo;
  }
  const out = alloc(args.backend, batch * M * N);
  if (out.length > 0) addon.matmul(av, bv, out, batchA, batchB, batch, M, N, K, +transposeA, +transposeB, null);
  return output(args.backend, [...outer, M, N], out);
}

const ACTIVATION: Record<string, number | undefined> = {
  relu: UNARY.Relu, relu6: UNARY.Relu6, elu: UNARY.Elu, sigmoid: UNARY.Sigmoid, leakyrelu: UNARY.LeakyRelu,
};

function fusedMatMul(args: Args): TensorInfo {
  const { bias, preluActivationWeights } = args.inputs;
  const activation = (args.attrs?.activation as string | undefined) ?? 'linear';
  const act = ACTIVATION[activation];
  const biasV = bias ? f32(args.backend, bias) : null;
  if (preluActivationWeights || (activation !== 'linear' && act === undefined) || (bias && !biasV)) {
    return cpuKernel('_FusedMatMul')(args) as TensorInfo;
  }
  // (The kit's linear layer has its own kernel, with the bias inside sgemm: native_ops.ts.)
  const y = batchMatMul({ ...args, inputs: { a: args.inputs.a, b: args.inputs.b } });
  const yv = f32(args.backend, y);
  if (!yv) return y;
  // Bias and activation are applied in place on the fresh product (same index in and out).
  if (bias && biasV) {
    const outShape = tf.backend_util.assertAndGetBroadcastShape(y.shape, bias.shape);
    if (!tf.util.arraysEqual(outShape, y.shape)) throw new Error('fusedMatMul: bias does not broadcast to the product');
    binaryInto(BINARY.Add, yv, y.shape, biasV, bias.shape, yv, y.shape);
  }
  if (act !== undefined) addon.unary(act, yv, yv, Number(args.attrs?.leakyreluAlpha ?? 0.2));
  return y;
}

/** [outer, r, inner] view of a reduction over `axes`, or null when the axes are not adjacent. */
function reductionView(shape: number[], axes: number[]): { outer: number; r: number; inner: number } | null {
  const kept = axes.filter((ax) => shape[ax] !== 1).sort((x, y) => x - y);
  if (kept.length === 0) return { outer: size(shape), r: 1, inner: 1 };
  // Size-1 dims between reduced axes do not break adjacency.
  for (let k = kept[0]; k <= kept[kept.length - 1]; k++) {
    if (!kept.includes(k) && shape[k] !== 1) return null;
  }
  return {
    outer: size(shape.slice(0, kept[0])),
    r: size(kept.map((ax) => shape[ax])),
    inner: size(shape.slice(kept[kept.length - 1] + 1)),
  };
}

function reduceKernel(name: keyof typeof REDUCE, axisAttr: 'axis' | 'reductionIndices'): KernelImpl {
  return (args) => {
    const { x } = args.inputs;
    const xv = f32(args.backend, x);
    const axes = tf.util.parseAxisParam(args.attrs?.[axisAttr] as number | number[], x.shape);
    const view = xv && xv.length > 0 ? reductionView(x.shape, axes) : null;
    if (!xv || !view) return cpuKernel(name)(args);
    const [outShape] = tf.backend_util.computeOutAndReduceShapes(x.shape, axes);
    const shape = args.attrs?.keepDims ? tf.backend_util.expandShapeToKeepDim(outShape, axes) : outShape;
    const out = alloc(args.backend, view.outer * view.inner);
    addon.reduce(REDUCE[name], xv, out, view.outer, view.r, view.inner);
    return output(args.backend, shape, out);
  };
}

function softmax(args: Args): TensorInfo {
  const { logits } = args.inputs;
  const xv = f32(args.backend, logits);
  const rank = logits.shape.length;
  const dim = Number(args.attrs?.dim ?? -1);
  if (!xv || rank === 0 || (dim !== -1 && dim !== rank - 1)) return cpuKernel('Softmax')(args) as TensorInfo;
  const cols = logits.shape[rank - 1];
  const out = alloc(args.backend, xv.length);
  if (out.length > 0) addon.softmax(xv, out, xv.length / cols, cols);
  return output(args.backend, logits.shape.slice(), out);
}

/** out[i] = x[offset + sum i_k strides_k] over `shape`; out is contiguous. */
function gather(backend: unknown, x: Float32Array, offset: number, strides: number[], shape: number[]): Float32Array {
  const out = alloc(backend, size(shape));
  if (out.length === 0) return out;
  const s = simplify(shape, [strides, stridesOf(shape)]);
  addon.copy(x, offset, s.strides[0], out, 0, s.strides[1], s.shape);
  return out;
}

function transpose(args: Args): TensorInfo {
  const { x } = args.inputs;
  const perm = args.attrs?.perm as number[];
  const xv = f32(args.backend, x);
  if (!xv) return cpuKernel('Transpose')(args) as TensorInfo;
  const xs = stridesOf(x.shape);
  const shape = perm.map((p) => x.shape[p]);
  return output(args.backend, shape, gather(args.backend, xv, 0, perm.map((p) => xs[p]), shape));
}

function slice(args: Args): TensorInfo {
  const { x } = args.inputs;
  const xv = f32(args.backend, x);
  if (!xv) return cpuKernel('Slice')(args) as TensorInfo;
  const [begin, sz] = tf.slice_util.parseSliceParams(x as tf.Tensor, args.attrs?.begin as number[], args.attrs?.size as number[]);
  tf.slice_util.assertParamsValid(x as tf.Tensor, begin, sz);
  const xs = stridesOf(x.shape);
  const offset = begin.reduce((acc, b, k) => acc + b * xs[k], 0);
  // A contiguous slice is a view, as in the cpu backend (tensor data is never written in place).
  if (tf.slice_util.isSliceContinous(x.shape, begin, sz)) {
    return output(args.backend, sz, xv.subarray(offset, offset + size(sz)));
  }
  return output(args.backend, sz, gather(args.backend, xv, offset, xs, sz));
}

function splitV(args: Args): TensorInfo[] {
  const { x } = args.inputs;
  const xv = f32(args.backend, x);
  if (!xv) return cpuKernel('SplitV')(args) as TensorInfo[];
  const axis = tf.util.parseAxisParam(args.attrs?.axis as number, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, args.attrs?.numOrSizeSplits as number[] | number, axis);
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((s) => {
    const sz = x.shape.slice();
    sz[axis] = s;
    const t = slice({ inputs: { x }, backend: args.backend, attrs: { begin: begin.slice(), size: sz } });
    begin[axis] += s;
    return t;
  });
}

function concat(args: Args): TensorInfo {
  const xs = args.inputs as unknown as TensorInfo[];
  const vs = xs.map((t) => f32(args.backend, t));
  if (xs.length === 0 || vs.some((v) => !v)) return cpuKernel('Concat')(args) as TensorInfo;
  const axis = tf.util.parseAxisParam(args.attrs?.axis as number, xs[0].shape)[0];
  const outShape = tf.backend_util.computeOutShape(xs.map((t) => t.shape), axis);
  const out = alloc(args.backend, size(outShape));
  const os = stridesOf(outShape);
  let at = 0;
  xs.forEach((t, i) => {
    if (size(t.shape) > 0) {
      const s = simplify(t.shape, [stridesOf(t.shape), os]);
      addon.copy(vs[i]!, 0, s.strides[0], out, at * os[axis], s.strides[1], s.shape);
    }
    at += t.shape[axis];
  });
  return output(args.backend, outShape, out);
}

function tile(args: Args): TensorInfo {
  const { x } = args.inputs;
  const reps = args.attrs?.reps as number[];
  const xv = f32(args.backend, x);
  if (!xv || reps.length !== x.shape.length) return cpuKernel('Tile')(args) as TensorInfo;
  // Out viewed as [r0, d0, r1, d1, ...]: the source stride is 0 along every rep axis.
  const xs = stridesOf(x.shape);
  const shape = x.shape.flatMap((d, k) => [reps[k], d]);
  const strides = xs.flatMap((s) => [0, s]);
  return output(args.backend, x.shape.map((d, k) => d * reps[k]), gather(args.backend, xv, 0, strides, shape));
}

// NHWC convolutions (im2col + sgemm). Other layouts and depthwise convs use the cpu kernels.
function convGeometry(info: tf.backend_util.Conv2DInfo): number[] {
  return [info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.outHeight, info.outWidth, info.outChannels,
    info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth, info.dilationHeight, info.dilationWidth,
    info.padInfo.top, info.padInfo.left];
}

function convInfo(xShape: number[], filterShape: number[], attrs: tf.NamedAttrMap, dilations: number | [number, number]) {
  return tf.backend_util.computeConv2DInfo(xShape as [number, number, number, number],
    filterShape as [number, number, number, number], attrs.strides as [number, number], dilations,
    attrs.pad as 'valid' | 'same' | number, attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined, false, 'channelsLast');
}

const nhwc = (attrs: tf.NamedAttrMap | undefined) => (attrs?.dataFormat ?? 'NHWC') === 'NHWC';

function conv2D(args: Args): TensorInfo {
  const { x, filter } = args.inputs;
  const xv = f32(args.backend, x), wv = f32(args.backend, filter);
  if (!xv || !wv || !nhwc(args.attrs)) return cpuKernel('Conv2D')(args) as TensorInfo;
  const info = convInfo(x.shape, filter.shape, args.attrs!, args.attrs!.dilations as [number, number]);
  const out = alloc(args.backend, size(info.outShape));
  if (out.length > 0) addon.conv2d(0, xv, wv, out, convGeometry(info));
  return output(args.backend, info.outShape, out);
}

function conv2DBackpropInput(args: Args): TensorInfo {
  const { dy, filter } = args.inputs;
  const dyv = f32(args.backend, dy), wv = f32(args.backend, filter);
  if (!dyv || !wv || !nhwc(args.attrs)) return cpuKernel('Conv2DBackpropInput')(args) as TensorInfo;
  const info = convInfo(args.attrs!.inputShape as number[], filter.shape, args.attrs!, 1);
  const out = alloc(args.backend, size(info.inShape));
  if (out.length > 0) addon.conv2d(1, dyv, wv, out, convGeometry(info));
  return output(args.backend, info.inShape.slice(), out);
}

function conv2DBackpropFilter(args: Args): TensorInfo {
  const { x, dy } = args.inputs;
  const xv = f32(args.backend, x), dyv = f32(args.backend, dy);
  if (!xv || !dyv || !nhwc(args.attrs)) return cpuKernel('Conv2DBackpropFilter')(args) as TensorInfo;
  const filterShape = args.attrs!.filterShape as number[];
  const info = convInfo(x.shape, filterShape, args.attrs!, 1);
  const out = alloc(args.backend, size(filterShape));
  if (out.length > 0) addon.conv2d(2, xv, dyv, out, convGeometry(info));
  return output(args.backend, filterShape.slice(), out);
}

function fusedConv2D(args: Args): TensorInfo {
  const { x, filter, bias, preluActivationWeights } = args.inputs;
  const activation = (args.attrs?.activation as string | undefined) ?? 'linear';
  const act = ACTIVATION[activation];
  const biasV = bias ? f32(args.backend, bias) : null;
  if (preluActivationWeights || (activation !== 'linear' && act === undefined) || (bias && !biasV) || !nhwc(args.attrs)) {
    return cpuKernel('FusedConv2D')(args) as TensorInfo;
  }
  const y = conv2D({ ...args, inputs: { x, filter } });
  const yv = f32(args.backend, y);
  if (!yv) return y;
  if (bias && biasV) {
    if (!tf.util.arraysEqual(tf.backend_util.assertAndGetBroadcastShape(y.shape, bias.shape), y.shape)) {
      throw new Error('fusedConv2d: bias does not broadcast to the output');
    }
    binaryInto(BINARY.Add, yv, y.shape, biasV, bias.shape, yv, y.shape);
  }
  if (act !== undefined) addon.unary(act, yv, yv, Number(args.attrs?.leakyreluAlpha ?? 0.2));
  return y;
}

// Max/avg pooling forward (NHWC). The gradients stay tfjs-cpu's (the kit trains no pools).
function poolKernel(name: 'MaxPool' | 'AvgPool'): KernelImpl {
  return (args) => {
    const { x } = args.inputs;
    const xv = f32(args.backend, x);
    if (!xv || x.shape.length !== 4) return cpuKernel(name)(args);
    const a = args.attrs!;
    const info = tf.backend_util.computePool2DInfo(x.shape as [number, number, number, number],
      a.filterSize as [number, number] | number, a.strides as [number, number] | number, 1,
      a.pad as 'valid' | 'same' | number, a.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined);
    const out = alloc(args.backend, size(info.outShape));
    if (out.length > 0) addon.conv2d(name === 'MaxPool' ? 3 : 4, xv, xv, out, convGeometry(info));
    return output(args.backend, info.outShape, out);
  };
}

// ---- registration ------------------------------------------------------------------------

function overrides(): Record<string, KernelImpl> {
  const k: Record<string, KernelImpl> = {
    BatchMatMul: batchMatMul, _FusedMatMul: fusedMatMul, AddN: addN,
    Sum: reduceKernel('Sum', 'axis'), Mean: reduceKernel('Mean', 'axis'),
    Max: reduceKernel('Max', 'reductionIndices'), Min: reduceKernel('Min', 'axis'),
    Softmax: softmax, Transpose: transpose, Slice: slice, SplitV: splitV, Concat: concat, Tile: tile,
    Conv2D: conv2D, Conv2DBackpropInput: conv2DBackpropInput, Conv2DBackpropFilter: conv2DBackpropFilter,
    FusedConv2D: fusedConv2D, MaxPool: poolKernel('MaxPool'), AvgPool: poolKernel('AvgPool'),
  };
  for (const name of Object.keys(BINARY)) k[name] = binaryKernel(name);
  for (const name of Object.keys(UNARY)) k[name] = unaryKernel(name);
  return k;
}

let registered: boolean | null = null;

/**
 * Registers the 'native' backend and its kernels once. False (with nativeLoadError() saying
 * why) when the addon is not built or does not load; nothing is registered then.
 */
export function registerNativeBackend(): boolean {
  if (registered !== null) return registered;
  const loadedAddon = loadNativeAddon();
  if (!loadedAddon) return (registered = false);
  addon = loadedAddon;
  cpuKernels = new Map(tf.getKernelsForBackend('cpu').map((k) => [k.kernelName, k]));
  tf.registerBackend('native', () => new NativeBackend(), 1);
  const native = overrides();
  for (const config of cpuKernels.values()) {
    const kernelFunc = native[config.kernelName];
    tf.registerKernel({ ...config, backendName: 'native', ...(kernelFunc ? { kernelFunc: kernelFunc as unknown as tf.KernelFunc } : {}) });
  }
  registerFusedKernels(addon);
  return (registered = true);
}
