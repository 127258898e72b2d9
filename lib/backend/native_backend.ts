// The backend object of 'native': tfjs' MathBackendCPU (tensor data in JS TypedArrays) plus
// a pool of float32 output buffers. A DiT training step allocates hundreds of megabytes of
// short-lived outputs; fresh ArrayBuffers cost page faults, zeroing and, above all, V8
// garbage collections driven by external memory. Reusing the buffers of disposed tensors
// removes most of that.
//
// A buffer goes back to the pool only when it is certainly unreachable:
//  - it was allocated by alloc() (never a caller's array passed to tf.tensor);
//  - no live tensor's data uses it (counted per ArrayBuffer, so slice views count too);
//  - its values were never handed out by readSync/read (dataSync(), data(), array(),
//    moving to another backend), since the caller may keep that array.
import * as os from 'os';
import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

type DataId = object;

const MIN_POOLED = 4096; // floats; smaller arrays are cheap to allocate
// A reference DiT training step cycles through ~0.5 GB of outputs: a smaller pool misses
// about 40% of allocations (measured). DIT_NATIVE_POOL_MB overrides (0 turns pooling off).
const MAX_POOLED_BYTES = (() => {
  const mb = Number(process.env.DIT_NATIVE_POOL_MB);
  if (process.env.DIT_NATIVE_POOL_MB !== undefined && Number.isFinite(mb) && mb >= 0) return mb * 2 ** 20;
  return Math.min(1024 * 2 ** 20, os.totalmem() / 8);
})();

export class NativeBackend extends MathBackendCPU {
  private readonly pool = new Map<number, Float32Array[]>();
  private pooledBytes = 0;
  /** Full arrays of the buffers alloc() created. */
  private readonly owned = new WeakMap<ArrayBuffer, Float32Array>();
  /** Number of live data entries per tracked buffer. */
  private readonly users = new Map<ArrayBuffer, number>();
  private readonly exposed = new WeakSet<ArrayBuffer>();

  constructor() {
    super();
    // No "install tfjs-node" console banner: this backend is the fast path.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  /** A float32 array of n elements with arbitrary contents; kernels overwrite all of it. */
  alloc(n: number): Float32Array {
    const free = this.pool.get(n);
    if (free && free.length > 0) {
      this.pooledBytes -= 4 * n;
      return free.pop()!;
    }
    const a = new Float32Array(n);
    if (n >= MIN_POOLED) this.owned.set(a.buffer, a);
    return a;
  }

  /**
   * Gives back an alloc()'d array that never became a tensor's values (a kernel's scratch);
   * any other array is left alone.
   */
  recycle(a: Float32Array): void {
    const buf = a.buffer as ArrayBuffer;
    if (this.owned.get(buf) !== a || this.users.has(buf) || this.exposed.has(buf)) return;
    if (this.pooledBytes + a.byteLength > MAX_POOLED_BYTES) return;
    let free = this.pool.get(a.length);
    if (!free) this.pool.set(a.length, (free = []));
    if (free.includes(a)) return;
    free.push(a);
    this.pooledBytes += a.byteLength;
  }

  private track(values: unknown): void {
    if (!(values instanceof Float32Array)) return;
    const buf = values.buffer as ArrayBuffer;
    if (!this.owned.has(buf)) return;
    this.users.set(buf, (this.users.get(buf) ?? 0) + 1);
  }

  private untrack(values: unknown): void {
    if (!(values instanceof Float32Array)) return;
    const buf = values.buffer as ArrayBuffer;
    const n = this.users.get(buf);
    if (n === undefined) return;
    if (n > 1) {
      this.users.set(buf, n - 1);
      return;
    }
    this.users.delete(buf);
    const full = this.owned.get(buf)!;
    if (this.exposed.has(buf) || this.pooledBytes + full.byteLength > MAX_POOLED_BYTES) return;
    let free = this.pool.get(full.length);
    if (!free) this.pool.set(full.length, (free = []));
    free.push(full);
    this.pooledBytes += full.byteLength;
  }

  override write(values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType): DataId {
    this.track(values);
    return super.write(values, shape, dtype);
  }

  override move(dataId: DataId, values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType, refCount: number): void {
    this.track(values);
    super.move(dataId, values, shape, dtype, refCount);
  }

  override readSync(dataId: DataId): tf.backend_util.BackendValues {
    const values = this.data.get(dataId)?.values;
    if (values instanceof Float32Array) this.exposed.add(values.buffer as ArrayBuffer);
    return super.readSync(dataId);
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const values = this.data.get(dataId)?.values;
    const released = super.disposeData(dataId, force);
    if (released && values !== undefined) this.untrack(values);
    return released;
  }

  override dispose(): void {
    this.pool.clear();
    this.pooledBytes = 0;
    super.dispose();
  }
}
