// NumPy .npy and .npz files (format versions 1.0, 2.0 and 3.0), little-endian,
// C order. Fortran order and big-endian data are refused rather than guessed at.
import { DType, HostArray, checkedNumel, fromBytes, itemSize, nameTable, ownEntry, toBytes, validateHostArray } from './array';
import { ZipReadOptions, openZip, writeZip } from './zip';
import { ByteSource, bufferSource, withSource } from './source';
import { writeFileAtomic } from '../util/paths';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ALIGN = 64; // numpy pads headers so data starts 64-byte aligned

/**
 * Longest header read. numpy itself refuses headers over 10000 bytes by default
 * (max_header_size); only structured dtypes, which are not supported, come close.
 */
const MAX_HEADER = 1 << 16;
/** Deepest bracket nesting in a header; numpy writes at most two ({ and the shape's (). */
const MAX_HEADER_DEPTH = 8;

const DESCR_TO_DTYPE: Record<string, DType> = {
  '<f4': 'float32',
  '<f8': 'float64',
  '<f2': 'float16',
  '<i8': 'int64',
  '<i4': 'int32',
  '<i2': 'int16',
  '|i1': 'int8',
  '|u1': 'uint8',
  '|b1': 'bool',
};

const DTYPE_TO_DESCR: Partial<Record<DType, string>> = Object.fromEntries(
  Object.entries(DESCR_TO_DTYPE).map(([d, t]) => [t, d]),
);

export function isNpy(head: Uint8Array): boolean {
  return head.length >= 6 && MAGIC.every((b, i) => head[i] === b);
}

// ---- header: a Python dict literal ------------------------------------------

type PyLit = string | number | boolean | null | PyLit[] | { [k: string]: PyLit };

/** Parses the small Python literal subset numpy writes in headers (depth-limited recursion). */
function parsePyLiteral(src: string, what: string): PyLit {
  let i = 0;
  let depth = 0;
  const fail = (msg: string): never => {
    const text = src.trim();
    throw new Error(`${what}: bad .npy header (${msg} at column ${i}): ${text.length > 120 ? text.slice(0, 120) + '...' : text}`);
  };
  const ws = () => {
    while (i < src.length && /\s/.test(src[i])) i++;
  };
  const value = (): PyLit => {
    ws();
    const c = src[i];
    if (c === '{' || c === '(' || c === '[') {
      const close = c === '{' ? '}' : c === '(' ? ')' : ']';
      if (++depth > MAX_HEADER_DEPTH) fail(`nested more than ${MAX_HEADER_DEPTH} deep`);
      i++;
      const items: PyLit[] = [];
      // No prototype: a '__proto__' key is data, not a prototype to inherit 'descr' from.
      const dict = nameTable<PyLit>();
      for (;;) {
        ws();
        if (src[i] === close) {
          i++;
          break;
        }
        const v = value();
        if (c === '{') {
          ws();
          if (src[i] !== ':') fail("expected ':'");
          i++;
          if (typeof v !== 'string') fail('dict key is not a string');
          dict[v as string] = value();
        } else {
          items.push(v);
        }
        ws();
        if (src[i] === ',') i++;
        else if (src[i] !== close) fail(`expected ',' or '${close}'`);
      }
      depth--;
      return c === '{' ? dict : items;
    }
    if (c === "'" || c === '"') {
      const end = src.indexOf(c, i + 1);
      if (end < 0) fail('unterminated string');
      const s = src.slice(i + 1, end);
      i = end + 1;
      return s;
    }
    const m = /^(True|False|None|-?\d+L?)/.exec(src.slice(i));
    if (!m) return fail('unexpected token');
    i += m[0].length;
    if (m[0] === 'True') return true;
    if (m[0] === 'False') return false;
    if (m[0] === 'None') return null;
    return Number(m[0].replace('L', ''));
  };
  const v = value();
  ws();
  if (i !== src.length) fail('trailing characters');
  return v;
}

interface NpyHeader {
  dtype: DType;
  shape: number[];
  dataOffset: number;
}

/** Reads and checks the header of the .npy in `src`; `what` names it in errors. */
function parseHeader(src: ByteSource, what: string): NpyHeader {
  const buf = src.read(0, Math.min(src.size, 12));
  if (!isNpy(buf)) throw new Error(`${what}: not a .npy file (missing \\x93NUMPY magic)`);
  if (buf.length < 10) throw new Error(`${what}: truncated .npy header`);
  const major = buf[6];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let hlen: number;
  let start: number;
  if (major === 1) {
    hlen = view.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) throw new Error(`${what}: truncated .npy header`);
    hlen = view.getUint32(8, true);
    start = 12;
  } else {
    throw new Error(`${what}: unsupported .npy format version ${major}.${buf[7]}`);
  }
  if (hlen > MAX_HEADER) throw new Error(`${what}: .npy header length ${hlen} is implausible (more than ${MAX_HEADER} bytes)`);
  if (start + hlen > src.size) throw new Error(`${what}: truncated .npy header (needs ${hlen} bytes)`);
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(src.read(start, hlen));
  const h = parsePyLiteral(text, what);
  if (h === null || typeof h !== 'object' || Array.isArray(h)) throw new Error(`${what}: .npy header is not a dict: ${text.trim()}`);
  for (const k of ['descr', 'fortran_order', 'shape']) {
    if (!(k in h)) throw new Error(`${what}: .npy header has no '${k}': ${text.trim().slice(0, 120)}`);
  }
  const { descr, fortran_order: fortran, shape } = h;
  if (typeof descr !== 'string') {
    throw new Error(`${what}: structured .npy dtypes are not supported (descr ${JSON.stringify(descr)})`);
  }
  if (fortran !== false) {
    throw new Error(`${what}: fortran_order arrays are not supported; save a C-ordered copy (np.ascontiguousarray)`);
  }
  if (descr.startsWith('>')) {
    throw new Error(`${what}: big-endian .npy data ('${descr}') is not supported; save with a little-endian dtype`);
  }
  // 1-byte types may be written with '|', '<' or '='; normalise before lookup.
  const norm = /^[<=|]?[iub]1$/.test(descr) ? '|' + descr.replace(/^[<=|]/, '') : descr.replace(/^=/, '<');
  const dtype = ownEntry(DESCR_TO_DTYPE, norm);
  if (!dtype) {
    throw new Error(`${what}: .npy dtype '${descr}' is not supported (supported: ${Object.keys(DESCR_TO_DTYPE).join(' ')})`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`${what}: bad .npy shape ${JSON.stringify(shape)}`);
  }
  checkedNumel(shape as number[], `${what}: .npy shape`);
  return { dtype, shape: shape as number[], dataOffset: start + hlen };
}

/** Decodes the .npy in a source: the header's shape is checked against the data length before the data is read. */
function readNpySource(src: ByteSource, name = src.name): HostArray {
  const h = parseHeader(src, name);
  const have = src.size - h.dataOffset;
  const need = checkedNumel(h.shape) * itemSize(h.dtype);
  if (have < need) throw new Error(`${name}: truncated .npy data: needs ${need} bytes, has ${have}`);
  if (have > need) throw new Error(`${name}: .npy has ${have - need} unexpected bytes after the data`);
  return fromBytes(h.dtype, h.shape, src.read(h.dataOffset, need), name);
}

/** Decodes .npy bytes. `name` is used in error messages. */
export function decodeNpy(buf: Uint8Array, name = '<buffer>'): HostArray {
  return readNpySource(bufferSource(buf, name));
}

/** Reads a .npy file (path, a regular file) or bytes. */
export function readNpy(input: string | Uint8Array): HostArray {
  return withSource(input, (src) => readNpySource(src), '.npy file');
}

function shapeRepr(shape: number[]): string {
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(', ')})`;
}

/** .npy bytes (format 1.0, or 2.0 when the header is too long) for a HostArray. */
export function encodeNpy(a: HostArray, name = 'array'): Buffer {
  validateHostArray(a, name);
  const descr = DTYPE_TO_DESCR[a.dtype];
  if (!descr) throw new Error(`${name}: .npy has no ${a.dtype} type; convert it (e.g. asFloat32Array) before saving`);
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeRepr(a.shape)}, }`;
  let version = 1;
  let pre = 10;
  let padded = pad(dict, pre);
  if (padded.length > 0xffff) {
    version = 2;
    pre = 12;
    padded = pad(dict, pre);
  }
  const head = Buffer.alloc(pre + padded.length);
  head.set(MAGIC, 0);
  head[6] = version;
  head[7] = 0;
  if (version === 1) head.writeUInt16LE(padded.length, 8);
  else head.writeUInt32LE(padded.length, 8);
  head.write(padded, pre, 'latin1');
  return Buffer.concat([head, toBytes(a, name)]);
}

function pad(dict: string, pre: number): string {
  const total = Math.ceil((pre + dict.length + 1) / ALIGN) * ALIGN;
  return dict + ' '.repeat(total - pre - dict.length - 1) + '\n';
}

// ---- .npz ---------------------------------------------------------------------

/**
 * Reads an .npz (np.savez or np.savez_compressed) from a path or bytes.
 * Keys are the array names without the '.npy' suffix.
 */
export function readNpz(input: string | Uint8Array | ByteSource, opts: ZipReadOptions = {}): Record<string, HostArray> {
  return withSource(input, (src) => {
    if (src.size === 0) throw new Error(`${src.name}: empty file, not an .npz`);
    const zip = openZip(src);
    // No prototype: members named __proto__.npy or constructor.npy are ordinary keys.
    const out = nameTable<HostArray>();
    for (const e of zip.entries) {
      if (e.name.endsWith('/')) continue; // directory entries carry no array
      if (!e.name.endsWith('.npy')) throw new Error(`${src.name}: .npz member '${e.name}' is not a .npy array`);
      out[e.name.slice(0, -4)] = decodeNpy(zip.read(e, opts), `${src.name}:${e.name}`);
    }
    return out;
  }, '.npz file');
}

/** .npz bytes (stored, like np.savez) for named arrays. */
export function encodeNpz(arrays: Record<string, HostArray>): Buffer {
  return writeZip(Object.entries(arrays).map(([k, a]) => ({ name: `${k}.npy`, data: encodeNpy(a, k) })));
}

/** Writes named arrays as an .npz, atomically. */
export function writeNpz(path: string, arrays: Record<string, HostArray>): void {
  writeFileAtomic(path, encodeNpz(arrays));
}
