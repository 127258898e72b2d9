// Host-side n-d arrays shared by every file reader and writer in lib/io.
// Data is always C-ordered and held in a JS typed array; float16 and bfloat16 are
// upcast to Float32Array on read while `dtype` keeps the stored type, so a
// round-trip writes the same dtype back.
import { constants as bufferConstants } from 'buffer';

export type DType =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'bfloat16'
  | 'int64'
  | 'int32'
  | 'int16'
  | 'int8'
  | 'uint8'
  | 'bool';

export type HostData = Float32Array | Float64Array | Int32Array | BigInt64Array | Int16Array | Int8Array | Uint8Array;

export interface HostArray {
  dtype: DType;
  shape: number[];
  data: HostData;
}

export const DTYPES: readonly DType[] = [
  'float32',
  'float64',
  'float16',
  'bfloat16',
  'int64',
  'int32',
  'int16',
  'int8',
  'uint8',
  'bool',
];

/** Bytes per element as stored on disk (not in memory: float16 lives in a Float32Array). */
const ITEM_SIZE: Record<DType, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && (DTYPES as readonly string[]).includes(s);
}

export function itemSize(dtype: DType): number {
  return ITEM_SIZE[dtype];
}

export function isFloatDType(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64' || dtype === 'float16' || dtype === 'bfloat16';
}

/** Number of elements of a shape; [] (a scalar) has one. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function checkShape(shape: readonly number[], what = 'shape'): void {
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`${what} [${shape.join(', ')}] has an invalid dimension ${d}`);
  }
}

/** Most dimensions a file may declare (numpy 2 and torch allow 64). */
export const MAX_RANK = 64;

/** Most elements one typed array can hold on this Node (buffer.constants.MAX_LENGTH). */
export const MAX_ELEMENTS = bufferConstants.MAX_LENGTH;

/**
 * Validates a shape read from a file and returns its element count. Refuses a rank
 * over MAX_RANK and a count over MAX_ELEMENTS up front, so a hostile shape gives a
 * message instead of "Invalid typed array length" or a huge allocation.
 */
export function checkedNumel(shape: readonly number[], what = 'shape'): number {
  if (shape.length > MAX_RANK) throw new Error(`${what} has ${shape.length} dimensions, more than the ${MAX_RANK} supported`);
  checkShape(shape, what);
  const n = numel(shape);
  if (n > MAX_ELEMENTS) {
    const count = Number.isSafeInteger(n) ? String(n) : `about ${n.toExponential(2)}`;
    throw new Error(`${what} [${shape.join(', ')}] has ${count} elements, more than the ${MAX_ELEMENTS} one array can hold`);
  }
  return n;
}

/**
 * An empty name -> value table with no prototype, for names read from files: a key
 * such as '__proto__' or 'constructor' is then an ordinary entry, never a lookup of
 * (or write to) Object.prototype.
 */
export function nameTable<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** Own entry `key` of a table, never one inherited from Object.prototype. */
export function ownEntry<T>(table: Record<string, T>, key: string): T | undefined {
  return Object.prototype.hasOwnProperty.call(table, key) ? table[key] : undefined;
}

type HostDataCtor =
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | Int32ArrayConstructor
  | BigInt64ArrayConstructor
  | Int16ArrayConstructor
  | Int8ArrayConstructor
  | Uint8ArrayConstructor;

/** The typed array class that holds a dtype in memory. */
export function dataCtor(dtype: DType): HostDataCtor {
  switch (dtype) {
    case 'float32':
    case 'float16':
    case 'bfloat16':
      return Float32Array;
    case 'float64':
      return Float64Array;
    case 'int64':
      return BigInt64Array;
    case 'int32':
      return Int32Array;
    case 'int16':
      return Int16Array;
    case 'int8':
      return Int8Array;
    case 'uint8':
    case 'bool':
      return Uint8Array;
  }
}

/** Checks that data matches dtype and shape; returns the array for chaining. */
export function validateHostArray(a: HostArray, name = 'array'): HostArray {
  if (!isDType(a.dtype)) throw new Error(`${name}: unknown dtype '${String(a.dtype)}'`);
  checkShape(a.shape, `${name}: shape`);
  const Ctor = dataCtor(a.dtype);
  if (!(a.data instanceof Ctor)) {
    throw new Error(`${name}: dtype ${a.dtype} needs ${Ctor.name} data, got ${a.data?.constructor?.name ?? typeof a.data}`);
  }
  const n = numel(a.shape);
  if (a.data.length !== n) {
    throw new Error(`${name}: shape [${a.shape.join(', ')}] has ${n} elements but data has ${a.data.length}`);
  }
  return a;
}

/**
 * A HostArray whose data is computed on first access and then kept as a plain
 * property: listing the shapes of a file does not decode, or allocate, views that
 * are larger than the bytes behind them (torch stride-0 or overlapping views).
 */
export function lazyHostArray(dtype: DType, shape: readonly number[], compute: () => HostData): HostArray {
  const a = { dtype, shape: [...shape] } as HostArray;
  const settle = (data: HostData) => Object.defineProperty(a, 'data', { value: data, writable: true, enumerable: true, configurable: true });
  Object.defineProperty(a, 'data', {
    enumerable: true,
    configurable: true,
    get() {
      const data = compute();
      settle(data);
      return data;
    },
    set(data: HostData) {
      settle(data);
    },
  });
  return a;
}

/** False while a lazyHostArray's data has not been computed yet. */
export function isMaterialized(a: HostArray): boolean {
  const d = Object.getOwnPropertyDescriptor(a, 'data');
  return d !== undefined && 'value' in d;
}

/** A validated HostArray. */
export function hostArray(dtype: DType, shape: number[], data: HostData): HostArray {
  return validateHostArray({ dtype, shape: [...shape], data });
}

export function zeros(dtype: DType, shape: number[]): HostArray {
  checkShape(shape);
  return { dtype, shape: [...shape], data: new (dataCtor(dtype))(numel(shape)) };
}

// ---- half precision ---------------------------------------------------------

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

let f16Table: Float32Array | null = null;

/** All 65536 float16 values, built once: decoding is then one lookup per element. */
function f16Lookup(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const f = h & 0x3ff;
    if (e === 0) t[h] = sign * f * 2 ** -24;
    else if (e === 31) t[h] = f ? NaN : sign * Infinity;
    else t[h] = sign * (1 + f / 1024) * 2 ** (e - 15);
  }
  return (f16Table = t);
}

export function f16ToF32(h: number): number {
  return f16Lookup()[h & 0xffff];
}

/** float32 -> float16 bits, round to nearest even (as numpy and torch do). */
export function f32ToF16(x: number): number {
  f32Scratch[0] = x;
  const b = u32Scratch[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: value in units of 2^-24 is m * 2^(e - 14).
    const shift = 14 - e;
    if (shift > 24) return sign;
    const m = mant | 0x800000;
    let q = m >>> shift;
    const r = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (r > half || (r === half && q & 1)) q++;
    return sign | q;
  }
  let h = (e << 10) | (mant >>> 13);
  const r = mant & 0x1fff;
  // A carry out of the mantissa rolls into the exponent, and into infinity at the top.
  if (r > 0x1000 || (r === 0x1000 && h & 1)) h++;
  return sign | h;
}

export function bf16ToF32(h: number): number {
  u32Scratch[0] = (h & 0xffff) << 16;
  return f32Scratch[0];
}

/** float32 -> bfloat16 bits, round to nearest even; NaN stays a (quiet) NaN. */
export function f32ToBf16(x: number): number {
  f32Scratch[0] = x;
  const b = u32Scratch[0];
  if ((b & 0x7f800000) === 0x7f800000 && b & 0x7fffff) return ((b >>> 16) | 0x40) & 0xffff;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

// ---- raw little-endian bytes <-> HostArray ----------------------------------

const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function requireLittleEndianHost(): void {
  if (!hostIsLittleEndian) throw new Error('lib/io assumes a little-endian host; this machine is big-endian');
}

/** An aligned copy of bytes, so a typed array can view it. */
function alignedCopy(bytes: Uint8Array): ArrayBuffer {
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  return out.buffer;
}

/**
 * Decodes C-ordered little-endian raw bytes into a HostArray (always a copy).
 * `what` names the source for error messages.
 */
export function fromBytes(dtype: DType, shape: number[], bytes: Uint8Array, what = 'array'): HostArray {
  requireLittleEndianHost();
  const n = checkedNumel(shape, `${what}: shape`);
  const need = n * ITEM_SIZE[dtype];
  if (bytes.length !== need) {
    throw new Error(
      `${what}: ${dtype} [${shape.join(', ')}] needs ${need} bytes of data, found ${bytes.length}`,
    );
  }
  return { dtype, shape: [...shape], data: decodeElements(dtype, bytes, n) };
}

/** Decodes n little-endian elements of dtype from bytes (length already checked). */
export function decodeElements(dtype: DType, bytes: Uint8Array, n: number): HostData {
  switch (dtype) {
    case 'float16': {
      const t = f16Lookup();
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = t[bytes[2 * i] | (bytes[2 * i + 1] << 8)];
      return out;
    }
    case 'bfloat16': {
      const out = new Float32Array(n);
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = ((bytes[2 * i] | (bytes[2 * i + 1] << 8)) << 16) >>> 0;
      return out;
    }
    case 'bool': {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = bytes[i] ? 1 : 0;
      return out;
    }
    default: {
      const Ctor = dataCtor(dtype);
      return new Ctor(alignedCopy(bytes.subarray(0, n * ITEM_SIZE[dtype])), 0, n) as HostData;
    }
  }
}

/** Encodes a HostArray as C-ordered little-endian bytes in its stored dtype. */
export function toBytes(a: HostArray, what = 'array'): Uint8Array {
  requireLittleEndianHost();
  validateHostArray(a, what);
  const n = a.data.length;
  if (a.dtype === 'float16' || a.dtype === 'bfloat16') {
    const enc = a.dtype === 'float16' ? f32ToF16 : f32ToBf16;
    const src = a.data as Float32Array;
    const out = new Uint8Array(2 * n);
    for (let i = 0; i < n; i++) {
      const h = enc(src[i]);
      out[2 * i] = h & 0xff;
      out[2 * i + 1] = h >>> 8;
    }
    return out;
  }
  if (a.dtype === 'bool') {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = a.data[i] ? 1 : 0;
    return out;
  }
  return new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
}

// ---- conversions ------------------------------------------------------------

/** The values as a Float32Array (a copy, except float32-held data which is returned as is). */
export function toFloat32(a: HostArray): Float32Array {
  if (a.data instanceof Float32Array) return a.data;
  const out = new Float32Array(a.data.length);
  if (a.data instanceof BigInt64Array) {
    for (let i = 0; i < out.length; i++) out[i] = Number(a.data[i]);
  } else {
    out.set(a.data);
  }
  return out;
}

export function toFloat64(a: HostArray): Float64Array {
  if (a.data instanceof Float64Array) return a.data;
  const out = new Float64Array(a.data.length);
  if (a.data instanceof BigInt64Array) {
    for (let i = 0; i < out.length; i++) out[i] = Number(a.data[i]);
  } else {
    out.set(a.data);
  }
  return out;
}

/**
 * The values as an Int32Array. Integer and bool dtypes only; int64 values outside the
 * int32 range are an error rather than a silent wrap.
 */
export function toInt32(a: HostArray, what = 'array'): Int32Array {
  if (isFloatDType(a.dtype)) throw new Error(`${what}: toInt32 needs an integer or bool array, got ${a.dtype}`);
  if (a.data instanceof Int32Array) return a.data;
  const out = new Int32Array(a.data.length);
  if (a.data instanceof BigInt64Array) {
    for (let i = 0; i < out.length; i++) {
      const v = a.data[i];
      if (v > 2147483647n || v < -2147483648n) {
        throw new Error(`${what}: int64 value ${v} at flat index ${i} does not fit in int32`);
      }
      out[i] = Number(v);
    }
  } else {
    out.set(a.data as Int16Array | Int8Array | Uint8Array);
  }
  return out;
}

/** A new HostArray of dtype 'float32' holding the same values. */
export function asFloat32Array(a: HostArray): HostArray {
  const data = toFloat32(a);
  return { dtype: 'float32', shape: [...a.shape], data: data === a.data ? data.slice() : data };
}

/** Short human description: "float16[3, 4]". */
export function describe(a: HostArray): string {
  return `${a.dtype}[${a.shape.join(', ')}]`;
}
