// PyTorch checkpoints written by torch.save, in both of its formats:
//   zip (torch >= 1.6):
//     <archive>/data.pkl     pickled object tree; tensors refer to storages by key
//     <archive>/data/<key>   raw little-endian bytes of each storage
//     <archive>/byteorder    'little' or 'big' (torch >= 2.1; absent means little)
//   legacy (torch < 1.6, or _use_new_zipfile_serialization=False): five pickles in a
//     row (magic number, protocol version 1001, sys_info, the object tree, the sorted
//     storage keys), then for each key an int64 element count and the raw bytes.
// The unpickler only admits what a plain state_dict needs, and tensors are kept as
// references until selected, so reading {'model','ema','opt'} for 'ema' decodes only
// the EMA weights.
import {
  DType,
  HostArray,
  HostData,
  checkedNumel,
  dataCtor,
  decodeElements,
  fromBytes,
  itemSize,
  lazyHostArray,
  nameTable,
  numel,
  ownEntry,
} from './array';
import { NO_GLOBALS, PyDict, PyTuple, UnpickleHooks, typeName, unpickle, unpickleAt } from './pickle';
import { ByteSource, withSource } from './source';
import { ZipReader, looksLikeZip } from './zip';

const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: 'float32',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  DoubleStorage: 'float64',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

/** A torch storage as named in the pickle: its bytes are read only when needed. */
export interface StorageRef {
  key: string;
  dtype: DType;
  numel: number;
  location: string;
}

/** A tensor view into a storage (torch._utils._rebuild_tensor_v2 arguments). */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
    readonly requiresGrad: boolean,
  ) {}
  get dtype(): DType {
    return this.storage.dtype;
  }
}

class StorageType {
  constructor(readonly name: string, readonly dtype: DType) {}
}
class Fn {
  constructor(readonly name: string) {}
}
class Layout {
  constructor(readonly name: string) {}
}

const ORDERED_DICT = new Fn('collections.OrderedDict');
// DiT's train.py saves its argparse.Namespace as "args": kept as inert fields.
const NAMESPACE = new Fn('argparse.Namespace');
const REBUILD_TENSOR = new Fn('torch._utils._rebuild_tensor_v2');
const REBUILD_PARAMETER = new Fn('torch._utils._rebuild_parameter');
const GET_LAYOUT = new Fn('torch.serialization._get_layout');

/** The only globals a plain state_dict pickle needs; anything else is refused. */
function findGlobal(module: string, name: string): unknown {
  if (module === 'collections' && name === 'OrderedDict') return ORDERED_DICT;
  if (module === 'argparse' && name === 'Namespace') return NAMESPACE;
  if (module === 'torch._utils' && name === '_rebuild_tensor_v2') return REBUILD_TENSOR;
  if (module === 'torch._utils' && name === '_rebuild_parameter') return REBUILD_PARAMETER;
  if (module === 'torch.serialization' && name === '_get_layout') return GET_LAYOUT;
  if (module === 'torch' && name === 'strided') return new Layout('torch.strided');
  // ownEntry: `name in` would also admit inherited names such as torch.constructor.
  const storage = module === 'torch' ? ownEntry(STORAGE_DTYPES, name) : undefined;
  if (storage) return new StorageType(name, storage);
  throw new Error(`pickle content outside a plain state_dict: ${module}.${name}`);
}

function int(v: unknown, what: string): number {
  if (typeof v === 'bigint') throw new Error(`${what} is too large (${v})`);
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new Error(`${what} is not an integer (${typeName(v)})`);
  return v;
}

function intTuple(v: unknown, what: string): number[] {
  if (!(v instanceof PyTuple)) throw new Error(`${what} is not a tuple (${typeName(v)})`);
  return v.items.map((x, i) => int(x, `${what}[${i}]`));
}

function reduce(fn: unknown, args: unknown[]): unknown {
  if (fn === ORDERED_DICT) {
    const d = new PyDict('OrderedDict');
    // OrderedDict(items) with a list of (key, value) pairs; torch writes OrderedDict() then SETITEMS.
    if (args.length > 0 && Array.isArray(args[0])) {
      for (const pair of args[0]) {
        if (!(pair instanceof PyTuple) || pair.items.length !== 2) throw new Error('OrderedDict items are not pairs');
        d.map.set(pair.items[0], pair.items[1]);
      }
    }
    return d;
  }
  if (fn === NAMESPACE) {
    if (args.length !== 0) throw new Error('argparse.Namespace is built with arguments, which pickle never does');
    return new PyDict('argparse.Namespace');
  }
  if (fn === REBUILD_TENSOR) {
    const [storage, offset, size, stride, requiresGrad] = args;
    if (!isStorageRef(storage)) throw new Error(`_rebuild_tensor_v2 got ${typeName(storage)} instead of a storage`);
    const shape = intTuple(size, 'tensor size');
    const strides = intTuple(stride, 'tensor stride');
    if (shape.length !== strides.length) throw new Error(`tensor size ${shape} and stride ${strides} differ in rank`);
    return new TensorRef(storage, int(offset, 'storage offset'), shape, strides, requiresGrad === true);
  }
  if (fn === REBUILD_PARAMETER) {
    if (!(args[0] instanceof TensorRef)) throw new Error(`_rebuild_parameter got ${typeName(args[0])} instead of a tensor`);
    return args[0];
  }
  if (fn === GET_LAYOUT) return new Layout(String(args[0]));
  const what = fn instanceof Fn || fn instanceof StorageType ? fn.name : typeName(fn);
  throw new Error(`pickle calls ${what}, which a plain state_dict never does`);
}

function isStorageRef(v: unknown): v is StorageRef {
  return typeof v === 'object' && v !== null && 'key' in v && 'numel' in v && 'dtype' in v;
}

function makeHooks(storages = new Map<string, StorageRef>()): UnpickleHooks {
  return {
    findGlobal,
    reduce,
    persistentLoad(pid) {
      // ('storage', torch.FloatStorage, key, location, numel), legacy files add view_metadata
      if (!(pid instanceof PyTuple) || pid.items[0] !== 'storage' || pid.items.length < 5) {
        throw new Error(`unknown persistent id ${typeName(pid)}; expected ('storage', type, key, location, numel)`);
      }
      const [, type, key, location, n, view] = pid.items;
      if (view !== undefined && view !== null) throw new Error('storage views (torch < 0.4 view_metadata) are not supported; re-save the file with a current torch');
      if (!(type instanceof StorageType)) throw new Error(`storage type is ${typeName(type)}`);
      if (typeof key !== 'string') throw new Error(`storage key is ${typeName(key)}`);
      const prev = storages.get(key);
      if (prev) {
        if (prev.dtype !== type.dtype) throw new Error(`storage '${key}' is used as both ${prev.dtype} and ${type.dtype}`);
        return prev;
      }
      const count = int(n, `storage '${key}' size`);
      if (count < 0) throw new Error(`storage '${key}' has a negative size (${count})`);
      const ref: StorageRef = { key, dtype: type.dtype, numel: count, location: String(location) };
      storages.set(key, ref);
      return ref;
    },
    build(obj, state) {
      // A Namespace's fields arrive as its BUILD state.
      if (obj instanceof PyDict && obj.className === 'argparse.Namespace' && state instanceof PyDict) {
        for (const [k, v] of state.map) obj.map.set(k, v);
        return obj;
      }
      // state_dict() attaches `_metadata` (module versions) to its OrderedDict this way.
      if (obj instanceof PyDict && state instanceof PyDict) {
        obj.attrs = state.map;
        return obj;
      }
      throw new Error(`pickle sets state on ${typeName(obj)}, which a plain state_dict never does`);
    },
  };
}

// ---- the archive --------------------------------------------------------------

/** An opened torch.save file of either format: the object tree with lazy tensors, and their bytes. */
export interface TorchFile {
  readonly name: string;
  readonly root: unknown;
  /** Raw bytes of a storage, checked against the size the pickle declares. */
  storageBytes(s: StorageRef): Uint8Array;
}

/** An opened torch.save zip archive. */
export class TorchArchive implements TorchFile {
  readonly root: unknown;
  private readonly prefix: string;

  constructor(
    readonly zip: ZipReader,
    private readonly verify = true,
    /** Largest zip member (pickle or storage) to read; see ZipReadOptions.maxBytes. */
    private readonly maxBytes?: number,
    /** Most bytes the archive may inflate to; see ZipReadOptions.maxInflated. */
    private readonly maxInflated?: number,
  ) {
    const pkls = zip.names().filter((n) => n === 'data.pkl' || /^[^/]+\/data\.pkl$/.test(n));
    if (pkls.length !== 1) {
      throw new Error(
        `${zip.name}: not a torch.save checkpoint (${pkls.length === 0 ? 'no data.pkl' : 'several data.pkl'} in the zip)`,
      );
    }
    this.prefix = pkls[0].slice(0, -'data.pkl'.length);
    const bo = this.prefix + 'byteorder';
    if (zip.has(bo)) {
      const order = new TextDecoder().decode(zip.read(bo, { verify, maxBytes: 64 })).trim();
      if (order !== 'little') throw new Error(`${zip.name}: checkpoint byte order is '${order}'; only little-endian is supported`);
    }
    this.root = unpickle(zip.read(pkls[0], { verify, maxBytes, maxInflated }), makeHooks(), `${zip.name}:${pkls[0]}`);
  }

  get name(): string {
    return this.zip.name;
  }

  /** Raw bytes of a storage, checked against the size the pickle declares before reading. */
  storageBytes(s: StorageRef): Uint8Array {
    const name = `${this.prefix}data/${s.key}`;
    if (!this.zip.has(name)) throw new Error(`${this.zip.name}: storage '${s.key}' is missing from the archive (${name})`);
    const entry = this.zip.entry(name);
    const need = s.numel * itemSize(s.dtype);
    if (entry.size < need) {
      throw new Error(`${this.zip.name}: storage '${s.key}' has ${entry.size} bytes, needs ${need} for ${s.numel} ${s.dtype}`);
    }
    const bytes = this.zip.read(entry, { verify: this.verify, maxBytes: this.maxBytes, maxInflated: this.maxInflated });
    if (bytes.length < need) {
      throw new Error(`${this.zip.name}: storage '${s.key}' has ${bytes.length} bytes, needs ${need} for ${s.numel} ${s.dtype}`);
    }
    return bytes;
  }
}

// torch.save's legacy format opens with a pickled magic number, 0x1950a86a20f9469cfc6c:
// as LONG1 after PROTO at protocol 2+, as a text LONG at protocols 0 and 1.
const LEGACY_MAGIC = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const LEGACY_MAGIC_TEXT = 'L119547037146038801333356L';

/** What a file that is not a zip but starts like a pickle is, or null when it does not. */
export function describeBarePickle(head: Uint8Array): string | null {
  const text = new TextDecoder('latin1').decode(head.subarray(0, LEGACY_MAGIC_TEXT.length));
  const binary = head.length >= 2 && head[0] === 0x80 && head[1] >= 2 && head[1] <= 5;
  const magic =
    text === LEGACY_MAGIC_TEXT ||
    (binary && head[2] === 0x8a && head[3] === 0x0a && LEGACY_MAGIC.every((b, i) => 4 + i >= head.length || head[4 + i] === b));
  if (magic) return 'legacy torch.save format (not a zip archive), written by torch < 1.6 or with _use_new_zipfile_serialization=False';
  if (binary) return 'a bare pickle stream (not a zip archive), not a torch.save checkpoint';
  return null;
}

const LEGACY_MAGIC_NUMBER = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL_VERSION = 1001;
const LEGACY = 'legacy torch.save file (torch < 1.6 or _use_new_zipfile_serialization=False)';

/** True when `head` opens with the legacy format's pickled magic number. */
export function isLegacyTorch(head: Uint8Array): boolean {
  return describeBarePickle(head)?.startsWith('legacy') === true;
}

/**
 * An opened legacy torch.save file. The pickles are parsed from a window at the start
 * of the file that grows until they fit (they are small next to the storages); the
 * storages are located by walking their 8-byte headers, and read only when selected.
 */
export class LegacyTorchFile implements TorchFile {
  readonly root: unknown;
  private readonly dataAt = new Map<string, number>();

  constructor(private readonly src: ByteSource, private readonly maxBytes?: number) {
    const name = src.name;
    const fail = (msg: string): never => {
      throw new Error(`${name}: ${LEGACY}: ${msg}`);
    };
    if (src.read(0, 1)[0] !== 0x80) fail('written with pickle protocol 0 or 1 (text), which this reader does not read; re-save it with torch.save (protocol 2 or later)');
    let window = Math.min(src.size, 1 << 20);
    let parsed: { root: unknown; keys: unknown; end: number; storages: Map<string, StorageRef> } | null = null;
    while (!parsed) {
      const head = src.read(0, window);
      try {
        parsed = LegacyTorchFile.parsePickles(head, name, fail);
      } catch (err) {
        const msg = (err as Error).message;
        if (window < src.size && msg.includes('truncated pickle')) window = Math.min(src.size, window * 4);
        else fail(`${msg.includes('truncated pickle') ? 'truncated: ' : ''}${msg.startsWith(name + ': ') ? msg.slice(name.length + 2) : msg}`);
      }
    }
    this.root = parsed.root;
    const keys = parsed.keys;
    if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) fail(`the storage key list is a ${typeName(keys)}, not a list of strings`);
    let at = parsed.end;
    for (const key of keys as string[]) {
      const s = parsed.storages.get(key);
      if (!s) fail(`storage '${key}' has data but no tensor refers to it`);
      if (this.dataAt.has(key)) fail(`storage '${key}' is listed twice`);
      if (at + 8 > src.size) fail(`truncated: storage '${key}' starts past the end of the file (byte ${at} of ${src.size})`);
      const h = src.read(at, 8);
      const count = new DataView(h.buffer, h.byteOffset, 8).getBigInt64(0, true);
      if (count !== BigInt(s!.numel)) fail(`storage '${key}' holds ${count} elements, its tensors declare ${s!.numel}`);
      const end = at + 8 + s!.numel * itemSize(s!.dtype);
      if (end > src.size) fail(`truncated: storage '${key}' needs bytes ${at + 8}..${end} of a ${src.size}-byte file`);
      this.dataAt.set(key, at + 8);
      at = end;
    }
    for (const key of parsed.storages.keys()) if (!this.dataAt.has(key)) fail(`storage '${key}' is used by a tensor but has no data`);
  }

  private static parsePickles(head: Uint8Array, name: string, fail: (msg: string) => never) {
    let at = 0;
    const next = (hooks: UnpickleHooks = NO_GLOBALS): unknown => {
      const r = unpickleAt(head, at, hooks, name);
      at = r.end;
      return r.value;
    };
    const magic = next();
    if (magic !== LEGACY_MAGIC_NUMBER) fail(`bad magic number ${String(magic)}`);
    const protocol = next();
    if (protocol !== LEGACY_PROTOCOL_VERSION) fail(`protocol version ${String(protocol)}, expected ${LEGACY_PROTOCOL_VERSION}`);
    const sysInfo = next();
    if (sysInfo instanceof PyDict && sysInfo.get('little_endian') === false) fail('written on a big-endian machine; only little-endian is supported');
    const storages = new Map<string, StorageRef>();
    const root = next(makeHooks(storages));
    const keys = next();
    return { root, keys, end: at, storages };
  }

  get name(): string {
    return this.src.name;
  }

  storageBytes(s: StorageRef): Uint8Array {
    const at = this.dataAt.get(s.key);
    if (at === undefined) throw new Error(`${this.name}: ${LEGACY}: storage '${s.key}' has no data`);
    const n = s.numel * itemSize(s.dtype);
    if (this.maxBytes !== undefined && n > this.maxBytes) {
      throw new Error(`${this.name}: storage '${s.key}' has ${n} bytes, more than the ${this.maxBytes} allowed here`);
    }
    return this.src.read(at, n);
  }
}

/** Opens a torch.save checkpoint (zip or legacy); errors name the file and what is wrong. */
export function openTorchArchive(src: ByteSource, opts: { verify?: boolean; maxBytes?: number; maxInflated?: number } = {}): TorchFile {
  if (src.size === 0) throw new Error(`${src.name}: empty file, not a torch checkpoint`);
  const head = src.read(0, Math.min(src.size, 32));
  if (!looksLikeZip(head)) {
    if (isLegacyTorch(head)) return new LegacyTorchFile(src, opts.maxBytes);
    const pickle = describeBarePickle(head);
    if (pickle) throw new Error(`${src.name}: ${pickle}`);
    throw new Error(`${src.name}: not a torch checkpoint (not a zip archive)`);
  }
  return new TorchArchive(new ZipReader(src), opts.verify !== false, opts.maxBytes, opts.maxInflated);
}

// ---- tensors -----------------------------------------------------------------

function isCContiguous(shape: number[], stride: number[]): boolean {
  let expect = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expect) return false;
    expect *= shape[d];
  }
  return true;
}

/** Copies a strided view out of a decoded storage into C order. */
function gather(src: HostData, dtype: DType, shape: number[], stride: number[], offset: number): HostData {
  const n = numel(shape);
  const out = new (dataCtor(dtype))(n) as HostData;
  const o = out as unknown as { [i: number]: number | bigint };
  const s = src as unknown as { [i: number]: number | bigint };
  const rank = shape.length;
  if (rank === 0) {
    o[0] = s[offset];
    return out;
  }
  const idx = new Array<number>(rank).fill(0);
  const last = rank - 1;
  const inner = shape[last];
  const innerStride = stride[last];
  let base = offset;
  for (let i = 0; i < n; i += inner) {
    for (let j = 0; j < inner; j++) o[i + j] = s[base + j * innerStride];
    // Odometer over the outer dimensions.
    for (let d = last - 1; d >= 0; d--) {
      idx[d]++;
      base += stride[d];
      if (idx[d] < shape[d]) break;
      base -= stride[d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

/**
 * Checks a view against its storage and returns its element count: a sane shape
 * (checkedNumel), no negative offset or stride, and its last element inside the
 * storage. Stride 0 and overlapping strides are legal (torch expand, as_strided).
 */
function checkView(t: TensorRef, what: string): number {
  const n = checkedNumel(t.shape, `${what}: size`);
  if (t.offset < 0 || t.stride.some((s) => s < 0)) {
    throw new Error(`${what}: negative storage offset or stride (offset ${t.offset}, stride [${t.stride}])`);
  }
  if (n === 0) return 0;
  let last = t.offset;
  for (let d = 0; d < t.shape.length; d++) last += (t.shape[d] - 1) * t.stride[d];
  if (!(last < t.storage.numel)) {
    throw new Error(
      `${what}: view (offset ${t.offset}, size [${t.shape}], stride [${t.stride}]) reaches element ${last} of a storage of ${t.storage.numel}`,
    );
  }
  return n;
}

/**
 * How many times its storage's bytes the views of one storage may decode eagerly.
 * Honest files stay far below it (tied weights, q/k/v views of a fused matrix).
 */
const EAGER_FACTOR = 4;

/** The data of a view in C order: a slice when contiguous, else gathered from the decoded storage. */
function viewData(t: TensorRef, n: number, bytes: Uint8Array, decode: () => HostData, what: string): HostData {
  if (isCContiguous(t.shape, t.stride)) {
    const sz = itemSize(t.dtype);
    return fromBytes(t.dtype, t.shape, bytes.subarray(t.offset * sz, (t.offset + n) * sz), what).data;
  }
  return gather(decode(), t.dtype, t.shape, t.stride, t.offset);
}

/**
 * Decodes tensors from an archive into C-ordered HostArrays. Storage bytes shared by
 * several selected tensors are read once and dropped after their last user. Views
 * that would decode to more than their storage holds (stride 0, overlapping, or one
 * of many over the same bytes) are lazy (lazyHostArray): their data is built on first
 * access, so reading or listing a small crafted file cannot allocate gigabytes.
 */
export function materialize(archive: TorchFile, tensors: Array<[string, TensorRef]>): Record<string, HostArray> {
  const uses = new Map<string, number>();
  for (const [, t] of tensors) uses.set(t.storage.key, (uses.get(t.storage.key) ?? 0) + 1);
  const raw = new Map<string, Uint8Array>();
  const decoded = new Map<string, HostData>();
  const spent = new Map<string, number>();
  const out = nameTable<HostArray>();
  for (const [name, t] of tensors) {
    const key = t.storage.key;
    const what = `${archive.name}: tensor '${name}'`;
    const n = checkView(t, what);
    if (n === 0) {
      out[name] = { dtype: t.dtype, shape: [...t.shape], data: new (dataCtor(t.dtype))(0) };
    } else {
      let bytes = raw.get(key);
      if (!bytes) {
        bytes = archive.storageBytes(t.storage);
        if ((uses.get(key) ?? 0) > 1) raw.set(key, bytes);
      }
      const sz = itemSize(t.dtype);
      const budget = EAGER_FACTOR * t.storage.numel * sz;
      const used = spent.get(key) ?? 0;
      if (n <= t.storage.numel && used + n * sz <= budget) {
        spent.set(key, used + n * sz);
        const held = bytes;
        const decode = () => {
          let d = decoded.get(key);
          if (!d) {
            d = decodeElements(t.dtype, held, t.storage.numel);
            if ((uses.get(key) ?? 0) > 1) decoded.set(key, d);
          }
          return d;
        };
        out[name] = { dtype: t.dtype, shape: [...t.shape], data: viewData(t, n, held, decode, what) };
      } else {
        const held = bytes;
        out[name] = lazyHostArray(t.dtype, t.shape, () =>
          viewData(t, n, held, () => decodeElements(t.dtype, held, t.storage.numel), what),
        );
      }
    }
    const left = (uses.get(key) ?? 1) - 1;
    uses.set(key, left);
    if (left === 0) {
      raw.delete(key);
      decoded.delete(key);
    }
  }
  return out;
}

// ---- picking the state_dict ------------------------------------------------------

export interface TorchReadOptions {
  /**
   * Which nested dict holds the state_dict, e.g. 'ema' or 'model' ('a/b' for deeper).
   * Without it: the top-level dict if it holds tensors, else its only dict that does.
   */
  key?: string;
  /** Check zip CRC-32s (default true). */
  verify?: boolean;
  /** Largest zip member (the pickle or one storage) to read; see ZipReadOptions.maxBytes. */
  maxBytes?: number;
  /** Most bytes the archive may inflate to; see ZipReadOptions.maxInflated. */
  maxInflated?: number;
}

export interface TorchCheckpoint {
  tensors: Record<string, HostArray>;
  /** The nested dict read ('ema', 'model', 'state_dict', ...), or null for the top level. */
  chosen: string | null;
  /** Inert fields of an argparse.Namespace saved as "args" (DiT's train.py), when present. */
  args?: Record<string, unknown>;
  /** Entries of the chosen dict that are not tensors: "name (type)". */
  skipped: string[];
  /** Top-level keys when the file holds a dict, to show what `key` can be. */
  topKeys: string[];
}

function keysOf(v: unknown): string[] {
  return v instanceof PyDict ? [...v.map.keys()].map(String) : [];
}

function holdsTensors(v: unknown): boolean {
  return v instanceof PyDict && [...v.map.values()].some((x) => x instanceof TensorRef);
}

/** Plain JS data of an inert pickled value (dicts become objects; tensors and the rest become their type name). */
function plainData(v: unknown, depth = 0): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  if (typeof v === 'bigint') return v.toString();
  if (depth > 8) return '<nested>';
  if (Array.isArray(v)) return v.map((x) => plainData(x, depth + 1));
  if (v instanceof PyTuple) return v.items.map((x) => plainData(x, depth + 1));
  if (v instanceof PyDict) {
    const o: Record<string, unknown> = Object.create(null);
    for (const [k, x] of v.map) o[String(k)] = plainData(x, depth + 1);
    return o;
  }
  return `<${typeName(v)}>`;
}

function pickStateDict(root: unknown, file: string, key?: string): [PyDict, string | null] {
  if (root instanceof TensorRef) throw new Error(`${file}: holds a single tensor, not a state_dict`);
  if (!(root instanceof PyDict)) throw new Error(`${file}: holds a ${typeName(root)}, not a state_dict`);
  if (key !== undefined) {
    let cur: unknown = root;
    for (const part of key.split('/')) {
      if (!(cur instanceof PyDict) || !cur.map.has(part)) {
        throw new Error(`${file}: no entry '${key}' (top-level keys: ${keysOf(root).join(', ') || 'none'})`);
      }
      cur = cur.map.get(part);
    }
    if (!(cur instanceof PyDict)) throw new Error(`${file}: entry '${key}' is a ${typeName(cur)}, not a state_dict`);
    return [cur, key];
  }
  if (holdsTensors(root)) return [root, null];
  const nested = [...root.map.entries()].filter(([, v]) => holdsTensors(v));
  if (nested.length === 1) return [nested[0][1] as PyDict, String(nested[0][0])];
  // DiT's train.py (and fast-DiT's) save {model, ema, opt, args}: EMA by default, as sample.py reads.
  const ema = nested.find(([k]) => k === 'ema');
  if (ema && nested.some(([k]) => k === 'model')) return [ema[1] as PyDict, 'ema'];
  if (nested.length === 0) throw new Error(`${file}: no tensors found (top-level keys: ${keysOf(root).join(', ') || 'none'})`);
  throw new Error(
    `${file}: holds several state_dicts (${nested.map(([k]) => String(k)).join(', ')}); choose one with the key option`,
  );
}

/** Reads a torch.save checkpoint: the chosen state_dict's tensors plus what was skipped. */
export function readTorchCheckpoint(input: string | Uint8Array | ByteSource, opts: TorchReadOptions = {}): TorchCheckpoint {
  return withSource(input, (src) => {
    const archive = openTorchArchive(src, opts);
    const [sd, chosen] = pickStateDict(archive.root, src.name, opts.key);
    const tensors: Array<[string, TensorRef]> = [];
    const skipped: string[] = [];
    for (const [k, v] of sd.map) {
      if (typeof k === 'string' && v instanceof TensorRef) tensors.push([k, v]);
      else skipped.push(`${String(k)} (${typeName(v)})`);
    }
    const ns = archive.root instanceof PyDict ? archive.root.get('args') : undefined;
    const args = ns instanceof PyDict && ns.className === 'argparse.Namespace' ? (plainData(ns) as Record<string, unknown>) : undefined;
    const out: TorchCheckpoint = { tensors: materialize(archive, tensors), chosen, skipped, topKeys: keysOf(archive.root) };
    if (args) out.args = args;
    return out;
  }, 'torch checkpoint');
}

/** The tensors of a torch.save state_dict (see TorchReadOptions.key for wrapped ones). */
export function readTorchStateDict(input: string | Uint8Array | ByteSource, opts: TorchReadOptions = {}): Record<string, HostArray> {
  return readTorchCheckpoint(input, opts).tensors;
}
