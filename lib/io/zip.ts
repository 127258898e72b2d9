// Minimal zip reader and writer for torch.save archives and .npz files.
// Reading goes through the central directory (never local headers alone, since
// np.savez writes local headers with zip64 placeholder sizes), supports stored and
// deflate entries and zip64. Writing produces stored entries, zip64 when needed.
import { constants as bufferConstants } from 'buffer';
import * as zlib from 'zlib';
import { ByteSource, bufferSource } from './source';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;
const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;

export const METHOD_STORED = 0;
export const METHOD_DEFLATE = 8;

/**
 * Deflate's best case is about 1032:1 (258-byte matches in ~2 bits), so a member
 * declaring more than this times its compressed size plus a little is lying.
 */
export const MAX_DEFLATE_RATIO = 1032;
const RATIO_SLACK = 1024;

/** Largest member one read returns: what one Node buffer can hold. */
const MAX_MEMBER = bufferConstants.MAX_LENGTH;

/**
 * The default ceiling on what an archive's deflated members may inflate to, all reads of
 * one opened archive together: `ratio` times the file's size, at least `floor`, at most
 * `cap`. Deflate can honestly reach 1032:1, so without it a 16 MB file could fill 16 GB;
 * real checkpoints and npz files (stored, or compressed floats at about 1.1:1) stay far
 * below it. Raised per call with ZipReadOptions.maxInflated, or for every reader with the
 * environment variable DIT_MAX_INFLATE (bytes).
 */
export const INFLATE_LIMIT = { ratio: 64, floor: 128 * 2 ** 20, cap: 16 * 2 ** 30 };

/** The default inflation budget of a file of `size` bytes (INFLATE_LIMIT, or DIT_MAX_INFLATE). */
export function defaultInflateBudget(size: number, env: NodeJS.ProcessEnv = process.env): number {
  const v = env.DIT_MAX_INFLATE;
  if (v !== undefined && v !== '') {
    const n = Number(v);
    if (!(Number.isSafeInteger(n) && n > 0)) throw new Error(`DIT_MAX_INFLATE must be a positive whole number of bytes, got '${v}'`);
    return n;
  }
  return Math.min(INFLATE_LIMIT.cap, Math.max(INFLATE_LIMIT.floor, INFLATE_LIMIT.ratio * size));
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(n < 2 ** 20 ? 3 : 0)} MiB`;

// ---- CRC-32 (IEEE, as zip uses), slicing-by-8 for speed on big checkpoints ----

let crcTables: Uint32Array[] | null = null;

function crcTable(): Uint32Array[] {
  if (crcTables) return crcTables;
  const t: Uint32Array[] = [];
  for (let k = 0; k < 8; k++) t.push(new Uint32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[0][n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[0][n];
    for (let k = 1; k < 8; k++) {
      c = t[0][c & 0xff] ^ (c >>> 8);
      t[k][n] = c >>> 0;
    }
  }
  return (crcTables = t);
}

/** CRC-32 of data; pass a previous result as `crc` to continue over several chunks. */
export function crc32(data: Uint8Array, crc = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = crcTable();
  let c = ~crc >>> 0;
  let i = 0;
  const n = data.length;
  for (; i + 8 <= n; i += 8) {
    const a = (c ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24))) >>> 0;
    c =
      t7[a & 0xff] ^
      t6[(a >>> 8) & 0xff] ^
      t5[(a >>> 16) & 0xff] ^
      t4[a >>> 24] ^
      t3[data[i + 4]] ^
      t2[data[i + 5]] ^
      t1[data[i + 6]] ^
      t0[data[i + 7]];
  }
  for (; i < n; i++) c = t0[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

// ---- reading ----------------------------------------------------------------

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function u64(view: DataView, at: number, what: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${what} is too large (${v})`);
  return Number(v);
}

/** True when bytes start like a zip archive (a local header, or an empty archive). */
export function looksLikeZip(head: Uint8Array): boolean {
  if (head.length < 4) return false;
  const sig = dv(head).getUint32(0, true);
  return sig === SIG_LOCAL || sig === SIG_EOCD;
}

interface Directory {
  count: number;
  offset: number;
  size: number;
}

/** Finds the end-of-central-directory record, following zip64 records when present. */
function findDirectory(src: ByteSource): Directory {
  const tailLen = Math.min(src.size, EOCD_SIZE + MAX_COMMENT);
  const tailStart = src.size - tailLen;
  const tail = src.read(tailStart, tailLen);
  const view = dv(tail);
  let at = -1;
  // Scan backwards; prefer a record whose comment length reaches exactly the file end.
  for (let i = tail.length - EOCD_SIZE; i >= 0; i--) {
    if (view.getUint32(i, true) !== SIG_EOCD) continue;
    if (i + EOCD_SIZE + view.getUint16(i + 20, true) === tail.length) {
      at = i;
      break;
    }
    if (at < 0) at = i;
  }
  if (at < 0) {
    const head = src.read(0, Math.min(4, src.size));
    const why = looksLikeZip(head)
      ? 'it starts like a zip but has no end-of-central-directory record, so it is truncated or corrupt'
      : 'not a zip archive (no end-of-central-directory record)';
    throw new Error(`${src.name}: ${why}`);
  }
  let count = view.getUint16(at + 10, true);
  let size = view.getUint32(at + 12, true);
  let offset = view.getUint32(at + 16, true);
  const eocdPos = tailStart + at;
  if (eocdPos >= 20) {
    const loc = dv(src.read(eocdPos - 20, 20));
    if (loc.getUint32(0, true) === SIG_ZIP64_LOCATOR) {
      const recPos = u64(loc, 8, `${src.name}: zip64 record offset`);
      const rec = dv(src.read(recPos, 56));
      if (rec.getUint32(0, true) !== SIG_ZIP64_EOCD) {
        throw new Error(`${src.name}: corrupt zip: zip64 locator points at ${recPos}, which is not a zip64 record`);
      }
      count = u64(rec, 32, `${src.name}: zip64 entry count`);
      size = u64(rec, 40, `${src.name}: zip64 directory size`);
      offset = u64(rec, 48, `${src.name}: zip64 directory offset`);
    }
  }
  if (offset + size > eocdPos) {
    throw new Error(
      `${src.name}: corrupt or truncated zip: central directory (${size} bytes at ${offset}) runs past its end record at ${eocdPos}`,
    );
  }
  return { count, offset, size };
}

function parseDirectory(src: ByteSource, dir: Directory): ZipEntry[] {
  if (dir.count * 46 > dir.size) {
    throw new Error(
      `${src.name}: corrupt zip: declares ${dir.count} entries but its central directory (${dir.size} bytes) has room for at most ${Math.floor(dir.size / 46)}`,
    );
  }
  const buf = src.read(dir.offset, dir.size);
  const view = dv(buf);
  const entries: ZipEntry[] = [];
  const dec = new TextDecoder('utf-8');
  let p = 0;
  for (let k = 0; k < dir.count; k++) {
    if (p + 46 > buf.length || view.getUint32(p, true) !== SIG_CENTRAL) {
      throw new Error(`${src.name}: corrupt zip: central directory entry ${k} of ${dir.count} is missing or damaged`);
    }
    const flags = view.getUint16(p + 8, true);
    const method = view.getUint16(p + 10, true);
    const crc = view.getUint32(p + 16, true);
    let compressedSize = view.getUint32(p + 20, true);
    let size = view.getUint32(p + 24, true);
    const nameLen = view.getUint16(p + 28, true);
    const extraLen = view.getUint16(p + 30, true);
    const commentLen = view.getUint16(p + 32, true);
    let localHeaderOffset = view.getUint32(p + 42, true);
    const end = p + 46 + nameLen + extraLen + commentLen;
    if (end > buf.length) throw new Error(`${src.name}: corrupt zip: central directory entry ${k} runs past the directory`);
    const name = dec.decode(buf.subarray(p + 46, p + 46 + nameLen));
    // Zip64 extra field: 64-bit values, only for fields that hold the 0xFFFFFFFF marker.
    let q = p + 46 + nameLen;
    const extraEnd = q + extraLen;
    while (q + 4 <= extraEnd) {
      const id = view.getUint16(q, true);
      const len = view.getUint16(q + 2, true);
      if (id === 0x0001) {
        let r = q + 4;
        const take = (what: string): number => {
          if (r + 8 > q + 4 + len) throw new Error(`${src.name}: corrupt zip64 field for '${name}' (${what} missing)`);
          const v = u64(view, r, `${src.name}: '${name}' ${what}`);
          r += 8;
          return v;
        };
        if (size === U32_MAX) size = take('size');
        if (compressedSize === U32_MAX) compressedSize = take('compressed size');
        if (localHeaderOffset === U32_MAX) localHeaderOffset = take('offset');
      }
      q += 4 + len;
    }
    entries.push({ name, method, flags, crc32: crc, compressedSize, size, localHeaderOffset });
    p = end;
  }
  return entries;
}

export interface ZipReadOptions {
  /** Check the CRC-32 (default true; skipped anyway when the writer left it 0). */
  verify?: boolean;
  /**
   * Largest uncompressed size the caller accepts. Always bounded besides by the
   * declared size, MAX_DEFLATE_RATIO x the compressed size, and one buffer.
   */
  maxBytes?: number;
  /**
   * Most bytes the archive's deflated members may inflate to, counted over every read of
   * this opened archive (default: defaultInflateBudget of the file's size). Infinity lifts it.
   */
  maxInflated?: number;
}

export class ZipReader {
  /** Bytes inflated so far, by member (a member read twice counts once). */
  private readonly inflated = new Map<ZipEntry, number>();
  private inflatedTotal = 0;
  readonly entries: ZipEntry[];
  private readonly byName = new Map<string, ZipEntry>();
  /** Where each member's data must end: the next local header (named), or the central directory. */
  private readonly dataEnd = new Map<ZipEntry, { at: number; what: string }>();

  constructor(readonly src: ByteSource) {
    const dir = findDirectory(src);
    this.entries = parseDirectory(src, dir);
    for (const e of this.entries) {
      // Two members of one name would make a lookup pick one of them silently.
      if (this.byName.has(e.name)) throw new Error(`${src.name}: corrupt zip: two entries are named '${e.name}'`);
      this.byName.set(e.name, e);
    }
    const byOffset = [...this.entries].sort((a, b) => a.localHeaderOffset - b.localHeaderOffset);
    byOffset.forEach((e, i) => {
      const next = byOffset[i + 1];
      this.dataEnd.set(
        e,
        next
          ? { at: next.localHeaderOffset, what: `member '${next.name}' (local header at byte ${next.localHeaderOffset})` }
          : { at: dir.offset, what: `the central directory (at byte ${dir.offset})` },
      );
    });
  }

  get name(): string {
    return this.src.name;
  }

  names(): string[] {
    return this.entries.map((e) => e.name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  entry(name: string): ZipEntry {
    const e = this.byName.get(name);
    if (!e) throw new Error(`${this.src.name}: zip has no entry '${name}'`);
    return e;
  }

  /** Absolute offset of an entry's (possibly compressed) data, from its local header. */
  dataOffset(e: ZipEntry): number {
    if (e.localHeaderOffset + 30 > this.src.size) {
      throw new Error(`${this.src.name}: truncated zip: local header of '${e.name}' is past the end of the file`);
    }
    const h = dv(this.src.read(e.localHeaderOffset, 30));
    if (h.getUint32(0, true) !== SIG_LOCAL) {
      throw new Error(`${this.src.name}: corrupt zip: no local header for '${e.name}' at ${e.localHeaderOffset}`);
    }
    return e.localHeaderOffset + 30 + h.getUint16(26, true) + h.getUint16(28, true);
  }

  /**
   * The uncompressed bytes of an entry. Sizes are checked before anything is read
   * (see ZipReadOptions.maxBytes) and deflate output is capped at the declared size
   * while inflating, so a bomb stops at that size instead of filling memory. Checks
   * the CRC unless verify is false or the writer left it 0 (torch can skip it).
   */
  read(nameOrEntry: string | ZipEntry, opts: ZipReadOptions = {}): Uint8Array {
    const e = typeof nameOrEntry === 'string' ? this.entry(nameOrEntry) : nameOrEntry;
    const where = `${this.src.name}: zip entry '${e.name}'`;
    if (e.flags & 1) throw new Error(`${where} is encrypted`);
    if (e.method !== METHOD_STORED && e.method !== METHOD_DEFLATE) {
      throw new Error(`${where} uses compression method ${e.method}; only stored (0) and deflate (8) are supported`);
    }
    const cap = Math.min(opts.maxBytes ?? MAX_MEMBER, MAX_MEMBER);
    if (e.size > cap) {
      throw new Error(
        `${where}: declares ${e.size} bytes uncompressed, more than the ${cap} ${opts.maxBytes !== undefined && opts.maxBytes <= MAX_MEMBER ? 'allowed here' : 'one buffer can hold'}`,
      );
    }
    if (e.method === METHOD_STORED && e.compressedSize !== e.size) {
      throw new Error(`${where}: stored entry with different sizes (${e.compressedSize} stored, ${e.size} declared)`);
    }
    if (e.method === METHOD_DEFLATE && e.size > MAX_DEFLATE_RATIO * e.compressedSize + RATIO_SLACK) {
      throw new Error(
        `${where}: declares ${e.size} bytes from ${e.compressedSize} compressed, more than deflate can produce; a zip bomb or a corrupt size field`,
      );
    }
    if (e.method === METHOD_DEFLATE && !this.inflated.has(e)) {
      const budget = opts.maxInflated ?? defaultInflateBudget(this.src.size);
      if (this.inflatedTotal + e.size > budget) {
        const dflt = opts.maxInflated === undefined && !process.env.DIT_MAX_INFLATE;
        throw new Error(
          `${where}: inflating its ${e.size} bytes would take the archive's compressed members to ${this.inflatedTotal + e.size} bytes, ` +
          `more than the ${budget} (${mib(budget)}) allowed ${dflt ? `for a ${this.src.size}-byte file (${INFLATE_LIMIT.ratio}x its size, at least ${mib(INFLATE_LIMIT.floor)}, at most ${mib(INFLATE_LIMIT.cap)})` : 'here'}; ` +
          `a zip bomb? For a file you trust, raise the limit (DIT_MAX_INFLATE=BYTES, or the reader's maxInflated option)`,
        );
      }
    }
    const start = this.dataOffset(e);
    if (start + e.compressedSize > this.src.size) {
      throw new Error(`${where}: truncated: data runs past the end of the file (${start + e.compressedSize} > ${this.src.size})`);
    }
    const end = this.dataEnd.get(e);
    if (end && start + e.compressedSize > end.at) {
      // Members sharing bytes are the "overlapping zip bomb": each re-inflates the same data.
      throw new Error(
        `${where}: data (bytes ${start}..${start + e.compressedSize}) overlaps ${end.what}; the zip is corrupt or a zip bomb`,
      );
    }
    const raw = this.src.read(start, e.compressedSize);
    let data: Uint8Array;
    if (e.method === METHOD_STORED) {
      data = raw;
    } else {
      try {
        // maxOutputLength stops inflating as soon as the output passes the declared size.
        data = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
          throw new Error(`${where}: inflates to more than its declared ${e.size} bytes; refused (a zip bomb or a corrupt size field)`);
        }
        throw new Error(`${where}: deflate data is corrupt (${(err as Error).message})`);
      }
      if (data.length !== e.size) {
        throw new Error(`${where}: deflate data is corrupt (inflated to ${data.length} bytes, expected ${e.size})`);
      }
      if (!this.inflated.has(e)) {
        this.inflated.set(e, data.length);
        this.inflatedTotal += data.length;
      }
    }
    if (opts.verify !== false && e.crc32 !== 0) {
      const c = crc32(data);
      if (c !== e.crc32) {
        throw new Error(`${where}: CRC-32 mismatch (stored ${hex(e.crc32)}, computed ${hex(c)}); the file is corrupt`);
      }
    }
    return data;
  }
}

function hex(n: number): string {
  return '0x' + n.toString(16).padStart(8, '0');
}

/** Opens a zip from bytes in memory or any ByteSource. */
export function openZip(input: Uint8Array | ByteSource, name?: string): ZipReader {
  return new ZipReader(input instanceof Uint8Array ? bufferSource(input, name) : input);
}

/** All entries of an in-memory zip, uncompressed, in archive order. */
export function readZip(buf: Uint8Array, name?: string, opts: ZipReadOptions = {}): Map<string, Uint8Array> {
  const z = openZip(buf, name);
  const out = new Map<string, Uint8Array>();
  for (const e of z.entries) out.set(e.name, z.read(e, opts));
  return out;
}

// ---- writing ----------------------------------------------------------------

export interface ZipInput {
  name: string;
  data: Uint8Array;
}

export interface WriteZipOptions {
  /** Write zip64 records even when sizes do not need them (Python zipfile's force_zip64). */
  forceZip64?: boolean;
}

// A fixed timestamp (1980-01-01 00:00) keeps archives byte-for-byte reproducible.
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

/** A zip of stored (uncompressed) entries with correct CRC-32s. */
export function writeZip(files: ZipInput[] | Record<string, Uint8Array>, opts: WriteZipOptions = {}): Buffer {
  const list: ZipInput[] = Array.isArray(files) ? files : Object.entries(files).map(([name, data]) => ({ name, data }));
  const seen = new Set<string>();
  const chunks: Uint8Array[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const f of list) {
    if (!f.name) throw new Error('writeZip: empty entry name');
    if (seen.has(f.name)) throw new Error(`writeZip: duplicate entry '${f.name}'`);
    seen.add(f.name);
    const name = Buffer.from(f.name, 'utf8');
    if (name.length > U16_MAX) throw new Error(`writeZip: entry name too long: '${f.name.slice(0, 40)}...'`);
    const utf8Flag = /^[\x20-\x7e]*$/.test(f.name) ? 0 : 1 << 11;
    const crc = crc32(f.data);
    const size = f.data.length;
    const big = opts.forceZip64 || size >= U32_MAX || offset >= U32_MAX;
    const version = big ? 45 : 20;

    // Zip64 entries carry the sizes in the extra field; the headers hold the 0xFFFFFFFF marker.
    const entry = { version, utf8Flag, crc, size: big ? U32_MAX : size, nameLength: name.length };
    const localExtra = big ? zip64Extra([size, size]) : Buffer.alloc(0);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(SIG_LOCAL, 0);
    writeEntryFields(local, 4, entry, localExtra.length);

    const cenExtra = big ? zip64Extra([size, size, offset]) : Buffer.alloc(0);
    const cen = Buffer.alloc(46);
    cen.writeUInt32LE(SIG_CENTRAL, 0);
    cen.writeUInt16LE(version, 4); // version made by
    writeEntryFields(cen, 6, entry, cenExtra.length);
    cen.writeUInt32LE(big ? U32_MAX : offset, 42);
    central.push(cen, name, cenExtra);

    chunks.push(local, name, localExtra, f.data);
    offset += local.length + name.length + localExtra.length + size;
  }
  const cdOffset = offset;
  const cdSize = central.reduce((s, b) => s + b.length, 0);
  chunks.push(...central);
  const count = list.length;
  const needZip64 = opts.forceZip64 || count >= U16_MAX || cdOffset >= U32_MAX || cdSize >= U32_MAX;
  if (needZip64) {
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(SIG_ZIP64_EOCD, 0);
    rec.writeBigUInt64LE(44n, 4); // size of the rest of this record
    rec.writeUInt16LE(45, 12);
    rec.writeUInt16LE(45, 14);
    rec.writeBigUInt64LE(BigInt(count), 24);
    rec.writeBigUInt64LE(BigInt(count), 32);
    rec.writeBigUInt64LE(BigInt(cdSize), 40);
    rec.writeBigUInt64LE(BigInt(cdOffset), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(SIG_ZIP64_LOCATOR, 0);
    loc.writeBigUInt64LE(BigInt(cdOffset + cdSize), 8);
    loc.writeUInt32LE(1, 16);
    chunks.push(rec, loc);
  }
  const eocd = Buffer.alloc(EOCD_SIZE);
  eocd.writeUInt32LE(SIG_EOCD, 0);
  eocd.writeUInt16LE(needZip64 ? U16_MAX : count, 8);
  eocd.writeUInt16LE(needZip64 ? U16_MAX : count, 10);
  eocd.writeUInt32LE(needZip64 ? U32_MAX : cdSize, 12);
  eocd.writeUInt32LE(needZip64 ? U32_MAX : cdOffset, 16);
  chunks.push(eocd);
  return Buffer.concat(chunks);
}

/**
 * The fields a local header (from byte 4) and a central directory entry (from byte 6)
 * share, in the same order: version needed, flags, method, time, date, CRC-32, both
 * sizes (stored entries: the two are equal), name and extra field lengths.
 */
function writeEntryFields(
  b: Buffer, at: number, e: { version: number; utf8Flag: number; crc: number; size: number; nameLength: number }, extraLength: number,
): void {
  b.writeUInt16LE(e.version, at);
  b.writeUInt16LE(e.utf8Flag, at + 2);
  b.writeUInt16LE(METHOD_STORED, at + 4);
  b.writeUInt16LE(DOS_TIME, at + 6);
  b.writeUInt16LE(DOS_DATE, at + 8);
  b.writeUInt32LE(e.crc, at + 10);
  b.writeUInt32LE(e.size, at + 14);
  b.writeUInt32LE(e.size, at + 18);
  b.writeUInt16LE(e.nameLength, at + 22);
  b.writeUInt16LE(extraLength, at + 24);
}

function zip64Extra(values: number[]): Buffer {
  const b = Buffer.alloc(4 + 8 * values.length);
  b.writeUInt16LE(0x0001, 0);
  b.writeUInt16LE(8 * values.length, 2);
  values.forEach((v, i) => b.writeBigUInt64LE(BigInt(v), 4 + 8 * i));
  return b;
}
