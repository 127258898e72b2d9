// Small helpers shared by the native backend's kernels (native.ts, native_ops.ts).
import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { NativeBackend } from './native_backend';

/** Reduction op codes of native/src/ditnative.c. */
export const REDUCE = { Sum: 0, Mean: 1, Max: 2, Min: 3 } as const;

/** The float32 values behind a tensor of the (cpu-derived) native backend, or null. */
export function f32(backend: unknown, t: tf.TensorInfo): Float32Array | null {
  if (t.dtype !== 'float32') return null;
  const v = (backend as MathBackendCPU).data.get(t.dataId).values;
  return v instanceof Float32Array ? v : null;
}

/**
 * Copies a float32 tensor's values into `into` at `offset`. On the native backend straight
 * from its buffer: dataSync() would hand the buffer out, and a buffer once handed out never
 * returns to the pool, so a copy made every step (data parallelism's weights and
 * gradients) would allocate that much fresh memory every step.
 */
export function copyValuesInto(t: tf.Tensor, into: Float32Array, offset = 0): void {
  const backend = tf.backend();
  const v = backend instanceof NativeBackend ? f32(backend, t) : null;
  into.set(v ?? (t.dataSync() as Float32Array), offset);
}

/** Like f32, for kernels whose callers guarantee float32 (lib/ops checks dtypes). */
export function mustF32(backend: unknown, t: tf.TensorInfo, what: string): Float32Array {
  const v = f32(backend, t);
  if (!v) throw new Error(`native kernel: ${what} must be a float32 tensor, got ${t.dtype}`);
  return v;
}

/** A new float32 tensor of this backend holding `values` (taken over, not copied). */
export function output(backend: unknown, shape: number[], values: Float32Array): tf.TensorInfo {
  return (backend as MathBackendCPU).makeTensorInfo(shape, 'float32', values);
}

/** An output array of n floats (pooled on the native backend); the kernel must fill all of it. */
export function alloc(backend: unknown, n: number): Float32Array {
  return backend instanceof NativeBackend ? backend.alloc(n) : new Float32Array(n);
}

/** Returns alloc()'s scratch array to the native backend's pool (a no-op elsewhere). */
export function recycle(backend: unknown, a: Float32Array): void {
  if (backend instanceof NativeBackend) backend.recycle(a);
}

export function size(shape: number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function stridesOf(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let k = shape.length - 1; k >= 0; k--) {
    s[k] = acc;
    acc *= shape[k];
  }
  return s;
}
