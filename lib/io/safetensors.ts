// .safetensors: u64 little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"k": "v"}}
// then the data buffer; offsets are relative to its start. Validation follows the
// reference implementation: tensors must tile the buffer exactly, with no gaps or
// overlaps, and each byte range must match dtype x shape.
import { DType, HostArray, checkedNumel, fromBytes, itemSize, nameTable, ownEntry, toBytes, validateHostArray } from './array';
import { ByteSource, withSource } from './source';
import { writeFileAtomic } from '../util/paths';

const CODE_TO_DTYPE: Record<string, DType> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  F64: 'float64',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};
const DTYPE_TO_CODE = Object.fromEntries(Object.entries(CODE_TO_DTYPE).map(([c, d]) => [d, c])) as Record<DType, string>;

/** The reference implementation's cap on header size; guards against reading garbage as a length. */
const MAX_HEADER = 100_000_000;

export interface SafetensorsEntry {
  name: string;
  dtype: DType;
  shape: number[];
  /** Byte range within the data buffer. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  entries: SafetensorsEntry[];
  metadata?: Record<string, string>;
  /** Absolute file offset of the data buffer. */
  dataStart: number;
}

export interface SafetensorsFile {
  tensors: Record<string, HostArray>;
  metadata?: Record<string, string>;
}

/** Whether the first bytes and size are consistent with a safetensors header. */
export function looksLikeSafetensors(head: Uint8Array, size: number): boolean {
  if (head.length < 9 || size < 10) return false;
  const n = new DataView(head.buffer, head.byteOffset, head.byteLength).getBigUint64(0, true);
  return n >= 2n && n <= BigInt(MAX_HEADER) && 8n + n <= BigInt(size) && head[8] === 0x7b; // '{'
}

/** Parses and validates the header of a safetensors source. */
export function readSafetensorsHeader(src: ByteSource): SafetensorsHeader {
  const file = src.name;
  if (src.size === 0) throw new Error(`${file}: empty file, not a safetensors file`);
  if (src.size < 8) throw new Error(`${file}: truncated safetensors file (${src.size} bytes, no header length)`);
  const lenBytes = src.read(0, 8);
  const n64 = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER)) throw new Error(`${file}: safetensors header length ${n64} is implausible; not a safetensors file?`);
  const n = Number(n64);
  if (8 + n > src.size) throw new Error(`${file}: truncated safetensors file: header needs ${n} bytes, file has ${src.size - 8}`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(src.read(8, n)));
  } catch (err) {
    throw new Error(`${file}: safetensors header is not valid JSON (${(err as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${file}: safetensors header is not a JSON object`);
  const dataStart = 8 + n;
  const dataLen = src.size - dataStart;
  const entries: SafetensorsEntry[] = [];
  let metadata: Record<string, string> | undefined;
  // JSON.parse makes '__proto__' an own key, so Object.entries sees every name.
  for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(v, file);
      continue;
    }
    entries.push(parseEntry(name, v, file));
  }
  // Tensors must tile [0, dataLen) exactly.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const e of sorted) {
    if (e.begin !== at) {
      throw new Error(
        `${file}: tensor '${e.name}' data_offsets [${e.begin}, ${e.end}] ${e.begin < at ? 'overlap the previous tensor' : `leave a gap after byte ${at}`}`,
      );
    }
    at = e.end;
  }
  if (at > dataLen) throw new Error(`${file}: truncated safetensors file: tensors need ${at} data bytes, file has ${dataLen}`);
  if (at < dataLen) throw new Error(`${file}: safetensors data has ${dataLen - at} bytes not covered by any tensor`);
  return { entries, metadata, dataStart };
}

/** A short, non-recursive rendering of a JSON value for error messages (a nested one can be a million levels deep). */
function brief(v: unknown): string {
  if (Array.isArray(v)) {
    const flat = v.every((x) => x === null || typeof x !== 'object');
    const s = flat ? JSON.stringify(v) : `[${v.length} items, some nested]`;
    return s.length > 80 ? s.slice(0, 80) + '...' : s;
  }
  if (v !== null && typeof v === 'object') return 'an object';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? s.slice(0, 80) + '...' : s;
}

function parseMetadata(v: unknown, file: string): Record<string, string> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${file}: __metadata__ is not an object`);
  const out = nameTable<string>();
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') throw new Error(`${file}: __metadata__ value for '${k}' is not a string`);
    out[k] = x;
  }
  return out;
}

function parseEntry(name: string, v: unknown, file: string): SafetensorsEntry {
  const where = `${file}: tensor '${name}'`;
  if (v === null || typeof v !== 'object') throw new Error(`${where}: header entry is not an object`);
  const { dtype: code, shape, data_offsets: off } = v as Record<string, unknown>;
  const dtype = typeof code === 'string' ? ownEntry(CODE_TO_DTYPE, code) : undefined;
  if (!dtype) {
    throw new Error(`${where}: dtype ${brief(code)} is not supported (supported: ${Object.keys(CODE_TO_DTYPE).join(' ')})`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`${where}: bad shape ${brief(shape)}`);
  }
  if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1]) {
    throw new Error(`${where}: bad data_offsets ${brief(off)}`);
  }
  const need = checkedNumel(shape, `${where}: shape`) * itemSize(dtype);
  if (off[1] - off[0] !== need) {
    throw new Error(`${where}: data_offsets span ${off[1] - off[0]} bytes but ${dtype} [${shape.join(', ')}] needs ${need}`);
  }
  return { name, dtype, shape: [...shape], begin: off[0], end: off[1] };
}

/** Reads a .safetensors file (path, bytes or source); `names` limits which tensors are decoded. */
export function readSafetensors(input: string | Uint8Array | ByteSource, opts: { names?: string[] } = {}): SafetensorsFile {
  return withSource(input, (src) => {
    const h = readSafetensorsHeader(src);
    const want = opts.names ? new Set(opts.names) : null;
    if (want) {
      const have = new Set(h.entries.map((e) => e.name));
      const missing = [...want].filter((n) => !have.has(n));
      if (missing.length) throw new Error(`${src.name}: no tensor named ${missing.map((m) => `'${m}'`).join(', ')}`);
    }
    const tensors = nameTable<HostArray>();
    for (const e of h.entries) {
      if (want && !want.has(e.name)) continue;
      const bytes = src.read(h.dataStart + e.begin, e.end - e.begin);
      tensors[e.name] = fromBytes(e.dtype, e.shape, bytes, `${src.name}: tensor '${e.name}'`);
    }
    return h.metadata ? { tensors, metadata: h.metadata } : { tensors };
  }, 'safetensors file');
}

/** Safetensors bytes for named arrays; the header is space-padded to 8 bytes like the reference writer. */
export function encodeSafetensors(tensors: Record<string, HostArray>, metadata?: Record<string, string>): Buffer {
  // No prototype: a tensor named '__proto__' must become a header key, not vanish.
  const header = nameTable<unknown>();
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`safetensors metadata '${k}' must be a string, got ${typeof v}`);
    }
    header.__metadata__ = metadata;
  }
  const blobs: Uint8Array[] = [];
  let at = 0;
  for (const [name, a] of Object.entries(tensors)) {
    if (name === '__metadata__') throw new Error("safetensors: '__metadata__' cannot be a tensor name");
    validateHostArray(a, `tensor '${name}'`);
    const bytes = toBytes(a, `tensor '${name}'`);
    header[name] = { dtype: DTYPE_TO_CODE[a.dtype], shape: a.shape, data_offsets: [at, at + bytes.length] };
    blobs.push(bytes);
    at += bytes.length;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, ...blobs]);
}

/** Writes a .safetensors file atomically. */
export function writeSafetensors(path: string, tensors: Record<string, HostArray>, metadata?: Record<string, string>): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}
