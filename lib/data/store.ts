// On-disk datasets: one binary shard (uint8 NHWC images, then uint8 or uint16 little-
// endian labels) plus manifest.json (shape, classes, provenance, sha256 of the shard).
// Written by streaming into a temp file and renaming, manifest last, so a crash never
// leaves a folder that looks complete. Read in batches with positioned reads, so
// memory does not grow with the dataset.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { sha256File } from '../util/hash';
import { readJsonFile, repoRoot, writeFileAtomic } from '../util/paths';
import { Batch, ImageDataset, checkBatchRange, checkIndex } from './dataset';
import { SYNTHETIC_CLASSES, SYNTHETIC_VERSION, SyntheticRenderer, checkSeed, checkSyntheticSize } from './synthetic';

export const MANIFEST = 'manifest.json';
export const SHARD = 'shard-00000.bin';
export const SHARD_FORMAT = 'dit-kit-shard/1';

export interface ShardManifest {
  format: typeof SHARD_FORMAT;
  count: number;
  imageSize: number;
  channels: number;
  numClasses: number;
  classNames: string[];
  shard: {
    file: string;
    bytes: number;
    /** Images start at byte 0; labels follow at labelsOffset. */
    labelsOffset: number;
    labelDtype: 'uint8' | 'uint16';
    sha256: string;
  };
  /** Where the images came from: the synthetic generator's parameters, or a packed source. */
  source: SyntheticSource | PackedSource;
  created: string;
}

export interface SyntheticSource {
  kind: 'synthetic';
  generator: 'dit-kit-synthetic';
  version: number;
  seed: number;
}

export interface PackedSource {
  kind: 'packed';
  /** What was packed (a folder, CIFAR or npz path) and how. */
  from: string;
  format: string;
  skipped: number;
}

export type ProgressFn = (done: number, total: number) => void;

function labelDtypeFor(numClasses: number): 'uint8' | 'uint16' {
  if (numClasses <= 256) return 'uint8';
  if (numClasses <= 65536) return 'uint16';
  throw new Error(`shards hold at most 65536 classes, got ${numClasses}`);
}

/**
 * Streams images into a shard. append() as often as needed, then finish() writes the
 * labels, renames the shard into place and writes the manifest.
 */
export class ShardWriter {
  private fd: number;
  private readonly tmp: string;
  private readonly hash = crypto.createHash('sha256');
  private labels: number[] = [];
  private bytes = 0;
  private done = false;
  readonly imageBytes: number;

  constructor(
    readonly dir: string,
    readonly meta: { imageSize: number; channels: number; classNames: string[] },
  ) {
    if (!meta.classNames.length) throw new Error('ShardWriter: a dataset needs at least one class');
    labelDtypeFor(meta.classNames.length);
    fs.mkdirSync(dir, { recursive: true });
    // The old manifest goes first, so the folder never pairs it with the new shard.
    fs.rmSync(path.join(dir, MANIFEST), { force: true });
    this.imageBytes = meta.imageSize * meta.imageSize * meta.channels;
    this.tmp = path.join(dir, `${SHARD}.tmp-${process.pid}-${Date.now()}`);
    this.fd = fs.openSync(this.tmp, 'w');
  }

  get count(): number {
    return this.labels.length;
  }

  append(images: Uint8Array, labels: ArrayLike<number>): void {
    if (this.done) throw new Error(`${this.dir}: shard already finished`);
    if (images.length !== labels.length * this.imageBytes) {
      throw new Error(`${this.dir}: ${images.length} bytes are not ${labels.length} images of ${this.imageBytes} bytes`);
    }
    const k = this.meta.classNames.length;
    for (let i = 0; i < labels.length; i++) {
      if (!Number.isInteger(labels[i]) || labels[i] < 0 || labels[i] >= k) {
        throw new Error(`${this.dir}: label ${labels[i]} is outside [0, ${k})`);
      }
      this.labels.push(labels[i]);
    }
    this.write(images);
  }

  private write(b: Uint8Array): void {
    let off = 0;
    while (off < b.length) off += fs.writeSync(this.fd, b, off, b.length - off);
    this.hash.update(b);
    this.bytes += b.length;
  }

  finish(source: SyntheticSource | PackedSource): ShardManifest {
    const dtype = labelDtypeFor(this.meta.classNames.length);
    const labelsOffset = this.bytes;
    const lab = dtype === 'uint8' ? Uint8Array.from(this.labels) : new Uint8Array(Uint16Array.from(this.labels).buffer);
    this.write(lab);
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.done = true;
    const final = path.join(this.dir, SHARD);
    fs.renameSync(this.tmp, final);
    const manifest: ShardManifest = {
      format: SHARD_FORMAT,
      count: this.labels.length,
      imageSize: this.meta.imageSize,
      channels: this.meta.channels,
      numClasses: this.meta.classNames.length,
      classNames: [...this.meta.classNames],
      shard: { file: SHARD, bytes: this.bytes, labelsOffset, labelDtype: dtype, sha256: this.hash.digest('hex') },
      source,
      created: new Date().toISOString(),
    };
    writeFileAtomic(path.join(this.dir, MANIFEST), JSON.stringify(manifest, null, 1) + '\n');
    return manifest;
  }

  /** Drops the partial shard (on error). */
  abort(): void {
    if (this.done) return;
    this.done = true;
    try {
      fs.closeSync(this.fd);
    } finally {
      fs.rmSync(this.tmp, { force: true });
    }
  }
}

/** Reads and checks manifest.json of a shard folder. */
export function readManifest(dir: string): ShardManifest {
  const file = path.join(dir, MANIFEST);
  const m = readJsonFile(file) as ShardManifest;
  const bad = (what: string): never => {
    throw new Error(`${file}: not a valid ${SHARD_FORMAT} manifest (${what})`);
  };
  if (m?.format !== SHARD_FORMAT) bad(`format is ${JSON.stringify(m?.format)}`);
  for (const k of ['count', 'imageSize', 'channels', 'numClasses'] as const) {
    if (!Number.isSafeInteger(m[k]) || m[k] < 0) bad(`${k} = ${JSON.stringify(m[k])}`);
  }
  if (!Array.isArray(m.classNames) || m.classNames.length !== m.numClasses) bad('classNames does not match numClasses');
  const s = m.shard;
  if (!s || typeof s.file !== 'string' || path.basename(s.file) !== s.file) bad('shard.file');
  if (s.labelDtype !== 'uint8' && s.labelDtype !== 'uint16') bad(`shard.labelDtype = ${JSON.stringify(s.labelDtype)}`);
  const lb = s.labelDtype === 'uint8' ? 1 : 2;
  if (s.labelsOffset !== m.count * m.imageSize * m.imageSize * m.channels || s.bytes !== s.labelsOffset + m.count * lb) bad('shard sizes do not match count and image shape');
  if (typeof s.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(s.sha256)) bad('shard.sha256');
  return m;
}

/** Why a shard folder is not intact (missing, wrong size, hash mismatch), or null. */
export function shardProblem(dir: string, m: ShardManifest, opts: { hash?: boolean } = {}): string | null {
  const file = path.join(dir, m.shard.file);
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return `${file} is missing`;
  }
  if (st.size !== m.shard.bytes) return `${file} has ${st.size} bytes, the manifest says ${m.shard.bytes}`;
  if (opts.hash !== false) {
    const h = sha256File(file);
    if (h !== m.shard.sha256) return `${file} has sha256 ${h.slice(0, 12)}..., the manifest says ${m.shard.sha256.slice(0, 12)}...`;
  }
  return null;
}

/** A shard folder as an ImageDataset: labels in memory, images read on demand. */
export class ShardDataset implements ImageDataset {
  readonly size: number;
  readonly numClasses: number;
  readonly classNames: string[];
  readonly imageSize: number;
  readonly channels: number;
  readonly file: string;
  private readonly labels: Int32Array;
  private readonly stride: number;

  constructor(readonly dir: string, readonly manifest: ShardManifest) {
    this.size = manifest.count;
    this.numClasses = manifest.numClasses;
    this.classNames = [...manifest.classNames];
    this.imageSize = manifest.imageSize;
    this.channels = manifest.channels;
    this.stride = this.imageSize * this.imageSize * this.channels;
    this.file = path.join(dir, manifest.shard.file);
    const lb = manifest.shard.labelDtype === 'uint8' ? 1 : 2;
    const raw = this.read(manifest.shard.labelsOffset, this.size * lb);
    this.labels = new Int32Array(this.size);
    for (let i = 0; i < this.size; i++) {
      const v = lb === 1 ? raw[i] : raw[2 * i] | (raw[2 * i + 1] << 8);
      if (v >= this.numClasses) throw new Error(`${this.file}: label ${v} of image ${i} is outside [0, ${this.numClasses}); the shard is corrupt`);
      this.labels[i] = v;
    }
  }

  /** Identifies the stored bytes (for provenance and resume checks). */
  get id(): string {
    return `shard:${this.manifest.shard.sha256.slice(0, 16)}`;
  }

  allLabels(): Int32Array {
    return this.labels.slice();
  }

  private read(offset: number, length: number, into?: Uint8Array, at = 0): Uint8Array {
    const out = into ?? new Uint8Array(length);
    const fd = fs.openSync(this.file, 'r');
    try {
      let done = 0;
      while (done < length) {
        const n = fs.readSync(fd, out, at + done, length - done, offset + done);
        if (n <= 0) throw new Error(`${this.file}: truncated shard (wanted bytes ${offset}..${offset + length})`);
        done += n;
      }
    } finally {
      fs.closeSync(fd);
    }
    return out;
  }

  readBatch(start: number, count: number): Batch {
    checkBatchRange(this.size, start, count, this.dir);
    return { images: this.read(start * this.stride, count * this.stride), labels: this.labels.slice(start, start + count) };
  }

  readIndices(indices: ArrayLike<number>): Batch {
    const images = new Uint8Array(indices.length * this.stride);
    const labels = new Int32Array(indices.length);
    const fd = fs.openSync(this.file, 'r');
    try {
      for (let k = 0; k < indices.length; k++) {
        const i = indices[k];
        checkIndex(this.size, i, this.dir);
        const n = fs.readSync(fd, images, k * this.stride, this.stride, i * this.stride);
        if (n !== this.stride) throw new Error(`${this.file}: truncated shard (image ${i})`);
        labels[k] = this.labels[i];
      }
    } finally {
      fs.closeSync(fd);
    }
    return { images, labels };
  }
}

/** Opens a shard folder; with verify (default) the shard's size and sha256 are checked. */
export function openShardDataset(dir: string, opts: { verify?: boolean } = {}): ShardDataset {
  const m = readManifest(dir);
  const problem = shardProblem(dir, m, { hash: opts.verify !== false });
  if (problem) throw new Error(`${dir}: dataset is damaged: ${problem}`);
  return new ShardDataset(dir, m);
}

export function isShardFolder(dir: string): boolean {
  return fs.existsSync(path.join(dir, MANIFEST));
}

// ---- the stored synthetic dataset -------------------------------------------------

export interface EnsureSyntheticOptions {
  /** Default: data/synthetic-<size> under the kit root. */
  dir?: string;
  /** Number of images (default 50000). */
  num?: number;
  seed?: number;
  /** 32 (default) or 64. */
  size?: number;
  /** Regenerate even if the stored copy is intact. */
  force?: boolean;
  onProgress?: ProgressFn;
}

export interface EnsureResult {
  dataset: ShardDataset;
  manifest: ShardManifest;
  regenerated: boolean;
  /** Why it was (re)generated, when it was. */
  reason?: string;
}

export function defaultSyntheticDir(size = 32): string {
  return path.join(repoRoot(), 'data', `synthetic-${size}`);
}

/** Why a stored synthetic dataset does not match the request, or null when it does. */
export function syntheticStaleness(dir: string, want: { num: number; seed: number; size: number }): string | null {
  if (!fs.existsSync(path.join(dir, MANIFEST))) return 'no manifest';
  let m: ShardManifest;
  try {
    m = readManifest(dir);
  } catch (err) {
    return (err as Error).message;
  }
  const src = m.source as SyntheticSource;
  if (src?.kind !== 'synthetic' || src.generator !== 'dit-kit-synthetic') return 'the folder holds another kind of dataset';
  if (src.version !== SYNTHETIC_VERSION) return `generator version ${src.version} != ${SYNTHETIC_VERSION}`;
  if (src.seed !== want.seed) return `seed ${src.seed} != ${want.seed}`;
  if (m.count !== want.num) return `count ${m.count} != ${want.num}`;
  if (m.imageSize !== want.size) return `image size ${m.imageSize} != ${want.size}`;
  if (m.channels !== 3 || JSON.stringify(m.classNames) !== JSON.stringify(SYNTHETIC_CLASSES)) return 'class list changed';
  return shardProblem(dir, m);
}

/** Renders num synthetic images of (seed, size) into a shard folder. */
export function writeSyntheticDataset(dir: string, spec: { num: number; seed: number; size: number }, onProgress?: ProgressFn): ShardManifest {
  const size = checkSyntheticSize(spec.size);
  const seed = checkSeed(spec.seed);
  if (!Number.isSafeInteger(spec.num) || spec.num <= 0) throw new Error(`the synthetic dataset needs a positive image count, got ${spec.num}`);
  const w = new ShardWriter(dir, { imageSize: size, channels: 3, classNames: [...SYNTHETIC_CLASSES] });
  try {
    const r = new SyntheticRenderer(size);
    const chunk = 1024;
    const stride = size * size * 3;
    const buf = new Uint8Array(chunk * stride);
    const labels = new Int32Array(chunk);
    for (let s = 0; s < spec.num; s += chunk) {
      const n = Math.min(chunk, spec.num - s);
      for (let i = 0; i < n; i++) labels[i] = r.render(seed, s + i, buf, i * stride);
      w.append(buf.subarray(0, n * stride), labels.subarray(0, n));
      onProgress?.(s + n, spec.num);
    }
    return w.finish({ kind: 'synthetic', generator: 'dit-kit-synthetic', version: SYNTHETIC_VERSION, seed });
  } catch (err) {
    w.abort();
    throw err;
  }
}

/**
 * The stored synthetic dataset, (re)generated when missing or stale: another
 * generator version, seed, count or size in the manifest, or a shard whose size or
 * sha256 does not match.
 */
export function ensureSyntheticDataset(opts: EnsureSyntheticOptions = {}): EnsureResult {
  const size = checkSyntheticSize(opts.size ?? 32);
  const want = { num: opts.num ?? 50000, seed: checkSeed(opts.seed ?? 0), size };
  const dir = opts.dir ?? defaultSyntheticDir(size);
  const reason = opts.force ? 'forced' : syntheticStaleness(dir, want);
  if (reason === null) {
    const manifest = readManifest(dir);
    return { dataset: new ShardDataset(dir, manifest), manifest, regenerated: false };
  }
  const manifest = writeSyntheticDataset(dir, want, opts.onProgress);
  return { dataset: new ShardDataset(dir, manifest), manifest, regenerated: true, reason };
}
