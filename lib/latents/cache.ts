// A dataset encoded once into the autoencoder's latent space, as fast-DiT's
// extract_features.py does, so DiT training never runs the encoder:
//   manifest.json      key (dataset sha256, autoencoder id, scale, posterior, seed, dtype),
//                      shapes, shard list with sha256, provenance; written last
//   labels.bin         int32 little-endian, one per image
//   shard-NNNNN.bin    records of `shardSize` images; record i = latent of image i, then
//                      the latent of its horizontal flip (float32 or float16, C-ordered CHW)
// Storing the flipped image's latent keeps flip augmentation exact: the encoder does not
// commute with flips, so flipping a latent is not the latent of the flipped image.
// Posterior samples use per-image noise streams (seed, image index, flip), so a cache
// does not depend on the batch size it was built with. Reads are positioned reads of the
// records a batch needs: memory does not grow with the dataset (labels aside, 4 bytes each).
// A build is resumable: finished shards are listed in build-state.json until the manifest
// is written.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { Autoencoder } from '../autoencoder';
import { imagesToTensor } from '../autoencoder/data';
import { ImageDataset } from '../data/dataset';
import { streamRng } from '../data/synthetic';
import { decodeElements, f32ToF16 } from '../io/array';
import { TrainingSource } from '../train/source';
import { readJsonFile, writeFileAtomic } from '../util/paths';
import { canonicalJson, configHash, gitCommit } from '../util/provenance';
import { sha256Bytes, sha256File } from '../util/hash';

export const LATENT_FORMAT = 'dit-kit-latents/1';
export const LATENT_MANIFEST = 'manifest.json';
const LABELS = 'labels.bin';
const BUILD_STATE = 'build-state.json';

export type LatentDType = 'float32' | 'float16';
export type PosteriorMode = 'sample' | 'mode';

/** Everything the latents depend on: a cache is rebuilt when any of it changes. */
export interface LatentCacheKey {
  format: typeof LATENT_FORMAT;
  /** sha256 of the dataset content (lib/autoencoder/data.ts datasetHash). */
  dataset: string;
  /** Autoencoder id ('identity' or 'kl-<weights sha256>') and its latent scale. */
  autoencoder: string;
  scale: number;
  /** 'sample' (DiT's train.py: latent_dist.sample()) or 'mode' (the posterior mean). */
  posterior: PosteriorMode;
  seed: number;
  dtype: LatentDType;
  count: number;
}

export interface ShardInfo {
  file: string;
  /** First image index and number of images. */
  start: number;
  count: number;
  bytes: number;
  sha256: string;
}

export interface LatentManifest {
  format: typeof LATENT_FORMAT;
  key: LatentCacheKey;
  keyHash: string;
  count: number;
  numClasses: number;
  classNames: string[];
  /** [C, H, W] of one latent. */
  shape: [number, number, number];
  dtype: LatentDType;
  /** Every record holds the latent of the image and of its horizontal flip. */
  flips: 'both';
  /** Bytes of one latent; a record is twice this. */
  latentBytes: number;
  shardSize: number;
  shards: ShardInfo[];
  labels: { file: string; sha256: string };
  dataset: { path: string; imageSize: number; channels: number };
  autoencoder: { id: string; kind: string; scale: number; path: string | null };
  build: { seconds: number; backend: string; gitCommit: string; created: string };
}

export function cacheKeyHash(key: LatentCacheKey): string {
  return configHash(key);
}

function itemBytes(dtype: LatentDType): number {
  return dtype === 'float32' ? 4 : 2;
}

function shardName(i: number): string {
  return `shard-${String(i).padStart(5, '0')}.bin`;
}

/** Reads and checks a cache manifest (throws with the reason). */
export function readLatentManifest(dir: string): LatentManifest {
  const file = path.join(dir, LATENT_MANIFEST);
  if (!fs.existsSync(file)) throw new Error(`${dir} holds no latent cache (${LATENT_MANIFEST} missing); build it with: dit latents build --out ${dir}`);
  const m = readJsonFile(file) as LatentManifest;
  const bad = (what: string): never => {
    throw new Error(`${file}: not a valid ${LATENT_FORMAT} manifest (${what})`);
  };
  if (m?.format !== LATENT_FORMAT) bad(`format ${JSON.stringify(m?.format)}`);
  if (!m.key || cacheKeyHash(m.key) !== m.keyHash) bad('key and keyHash disagree');
  if (!Array.isArray(m.shape) || m.shape.length !== 3 || !m.shape.every((d) => Number.isSafeInteger(d) && d > 0)) bad('shape');
  if (m.dtype !== 'float32' && m.dtype !== 'float16') bad(`dtype ${JSON.stringify(m.dtype)}`);
  if (m.latentBytes !== m.shape[0] * m.shape[1] * m.shape[2] * itemBytes(m.dtype)) bad('latentBytes does not match shape and dtype');
  let at = 0;
  for (const s of m.shards ?? []) {
    if (s.start !== at || s.bytes !== s.count * 2 * m.latentBytes || path.basename(s.file) !== s.file) bad(`shard ${s.file}`);
    at += s.count;
  }
  if (at !== m.count) bad(`shards hold ${at} images, count is ${m.count}`);
  return m;
}

/** Why the cache in dir cannot be used for `key` (missing, other key, damaged files), or null. */
export function latentCacheStaleness(dir: string, key: LatentCacheKey, opts: { verify?: boolean } = {}): string | null {
  if (!fs.existsSync(path.join(dir, LATENT_MANIFEST))) return 'no cache yet';
  let m: LatentManifest;
  try {
    m = readLatentManifest(dir);
  } catch (err) {
    return (err as Error).message;
  }
  if (m.keyHash !== cacheKeyHash(key)) {
    const changed = (Object.keys(key) as Array<keyof LatentCacheKey>).filter((k) => canonicalJson(key[k]) !== canonicalJson(m.key[k]));
    return `${changed.join(', ') || 'key'} changed (${changed.map((k) => `${k}: ${short(m.key[k])} -> ${short(key[k])}`).join('; ')})`;
  }
  return filesProblem(dir, m, opts.verify ?? false);
}

function short(v: unknown): string {
  const s = String(v);
  return /^[0-9a-f]{64}$/.test(s) ? `${s.slice(0, 12)}...` : s;
}

function filesProblem(dir: string, m: LatentManifest, verify: boolean): string | null {
  const files = [...m.shards.map((s) => ({ file: s.file, bytes: s.bytes, sha256: s.sha256 })), { file: m.labels.file, bytes: m.count * 4, sha256: m.labels.sha256 }];
  for (const f of files) {
    const p = path.join(dir, f.file);
    let size: number;
    try {
      size = fs.statSync(p).size;
    } catch {
      return `${p} is missing`;
    }
    if (size !== f.bytes) return `${p} has ${size} bytes, the manifest says ${f.bytes}`;
    if (verify) {
      const h = sha256File(p);
      if (h !== f.sha256) return `${p} has sha256 ${h.slice(0, 12)}..., the manifest says ${f.sha256.slice(0, 12)}...`;
    }
  }
  return null;
}


// ---- building -----------------------------------------------------------------------------

export interface LatentBuildOptions {
  dir: string;
  dataset: ImageDataset;
  /** sha256 of the dataset's content and where it lives (provenance). */
  datasetSha256: string;
  datasetPath: string;
  ae: Autoencoder;
  /** Where the autoencoder was loaded from (provenance; null for identity). */
  aePath?: string | null;
  posterior?: PosteriorMode;
  seed?: number;
  dtype?: LatentDType;
  /** Images per shard file (default 8192). */
  shardSize?: number;
  /** Images encoded per batch (each with its flip, so 2x through the encoder). */
  batchSize?: number;
  /** Rebuild even when the cache is up to date. */
  force?: boolean;
  /** Check the sha256 of every file of an existing cache before reusing it. */
  verify?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export interface LatentBuildResult {
  manifest: LatentManifest;
  rebuilt: boolean;
  /** Why it was (re)built. */
  reason?: string;
}

export function latentCacheKey(o: Pick<LatentBuildOptions, 'dataset' | 'datasetSha256' | 'ae' | 'posterior' | 'seed' | 'dtype'>): LatentCacheKey {
  const posterior = o.posterior ?? 'sample';
  if (posterior !== 'sample' && posterior !== 'mode') throw new Error(`posterior must be sample or mode, got '${posterior}'`);
  const dtype = o.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'float16') throw new Error(`latent dtype must be float32 or float16, got '${dtype}'`);
  const seed = o.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`seed must be a non-negative integer, got ${seed}`);
  return {
    format: LATENT_FORMAT, dataset: o.datasetSha256, autoencoder: o.ae.id, scale: o.ae.scale,
    // The identity has no posterior: its key does not depend on sampling.
    posterior: o.ae.kind === 'identity' ? 'mode' : posterior, seed: o.ae.kind === 'identity' ? 0 : seed,
    dtype, count: o.dataset.size,
  };
}

/** Per-image posterior noise: stream (seed, image index, flip), independent of batching. */
export function latentNoise(seed: number, index: number, flip: 0 | 1, n: number, out = new Float32Array(n), at = 0): Float32Array {
  const rng = streamRng(seed, index, 1000 + flip);
  for (let i = 0; i < n; i++) out[at + i] = rng.normal();
  return out;
}

/**
 * Encodes images [start, start+count) and their flips: returns [count, 2, C, H, W]
 * float32 (record order of the shards).
 */
export function encodeRecords(ae: Autoencoder, ds: ImageDataset, start: number, count: number, key: LatentCacheKey): Float32Array {
  const b = ds.readBatch(start, count);
  const [c, h, w] = ae.latentShape;
  const per = c * h * w;
  const flips = new Uint8Array(2 * count);
  const images = new Uint8Array(2 * b.images.length);
  images.set(b.images, 0);
  images.set(b.images, b.images.length);
  flips.fill(1, count);
  const sample = key.posterior === 'sample' && ae.kind !== 'identity';
  const z = tf.tidy(() => {
    const x = imagesToTensor(images, 2 * count, ds.imageSize, ds.channels, flips);
    if (!sample) return ae.encode(x);
    const noise = new Float32Array(2 * count * per);
    for (let i = 0; i < 2 * count; i++) latentNoise(key.seed, start + (i % count), i < count ? 0 : 1, per, noise, i * per);
    return ae.encode(x, { noise: tf.tensor4d(noise, [2 * count, c, h, w]) });
  });
  const flat = z.dataSync() as Float32Array;
  z.dispose();
  // [2, count, ...] -> [count, 2, ...]
  const out = new Float32Array(flat.length);
  for (let i = 0; i < count; i++) {
    out.set(flat.subarray(i * per, (i + 1) * per), 2 * i * per);
    out.set(flat.subarray((count + i) * per, (count + i + 1) * per), (2 * i + 1) * per);
  }
  return out;
}

function encodeDType(v: Float32Array, dtype: LatentDType): Uint8Array {
  if (dtype === 'float32') return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  const out = new Uint8Array(2 * v.length);
  for (let i = 0; i < v.length; i++) {
    const h = f32ToF16(v[i]);
    out[2 * i] = h & 0xff;
    out[2 * i + 1] = h >>> 8;
  }
  return out;
}

interface BuildState {
  keyHash: string;
  shardSize: number;
  done: ShardInfo[];
}

/**
 * The latent cache for (dataset, autoencoder, posterior, seed, dtype) in o.dir: reused
 * when its manifest matches and its files are intact, (re)built otherwise.
 */
export function ensureLatentCache(o: LatentBuildOptions): LatentBuildResult {
  const key = latentCacheKey(o);
  const ds = o.dataset;
  const [ic, is] = [o.ae.imageShape[0], o.ae.imageShape[1]];
  if (ds.channels !== ic || ds.imageSize !== is) {
    throw new Error(`the autoencoder takes ${ic}x${is}x${is} images; the data has ${ds.channels}x${ds.imageSize}x${ds.imageSize}`);
  }
  const reason = o.force ? 'forced' : latentCacheStaleness(o.dir, key, { verify: o.verify });
  if (reason === null) return { manifest: readLatentManifest(o.dir), rebuilt: false };
  const shardSize = o.shardSize ?? 8192;
  const batch = o.batchSize ?? 64;
  if (!Number.isSafeInteger(shardSize) || shardSize <= 0) throw new Error(`shardSize must be a positive integer, got ${shardSize}`);
  if (!Number.isSafeInteger(batch) || batch <= 0) throw new Error(`batchSize must be a positive integer, got ${batch}`);
  const keyHash = cacheKeyHash(key);
  fs.mkdirSync(o.dir, { recursive: true });
  // The old manifest goes first, so the folder never pairs it with new shards.
  fs.rmSync(path.join(o.dir, LATENT_MANIFEST), { force: true });
  const statePath = path.join(o.dir, BUILD_STATE);
  const state: BuildState = { keyHash, shardSize, done: [] };
  if (!o.force && fs.existsSync(statePath)) {
    try {
      const s = JSON.parse(fs.readFileSync(statePath, 'utf8')) as BuildState;
      if (s.keyHash === keyHash && s.shardSize === shardSize) {
        // Keep the finished shards that are still intact, in order.
        for (const sh of s.done) {
          const p = path.join(o.dir, sh.file);
          if (sh.start !== state.done.length * shardSize || !fs.existsSync(p) || fs.statSync(p).size !== sh.bytes) break;
          state.done.push(sh);
        }
      }
    } catch {
      // An unreadable state file only means starting over.
    }
  }
  const [c, h, w] = o.ae.latentShape;
  const latentBytes = c * h * w * itemBytes(key.dtype);
  const t0 = Date.now();
  const numShards = Math.ceil(ds.size / shardSize);
  o.onProgress?.(Math.min(ds.size, state.done.length * shardSize), ds.size);
  for (let si = state.done.length; si < numShards; si++) {
    const start = si * shardSize;
    const count = Math.min(shardSize, ds.size - start);
    const file = shardName(si);
    const tmp = path.join(o.dir, `${file}.tmp-${process.pid}`);
    const fd = fs.openSync(tmp, 'w');
    const hash = crypto.createHash('sha256');
    let bytes = 0;
    try {
      for (let s = start; s < start + count; s += batch) {
        const m = Math.min(batch, start + count - s);
        const rec = encodeDType(encodeRecords(o.ae, ds, s, m, key), key.dtype);
        let off = 0;
        while (off < rec.length) off += fs.writeSync(fd, rec, off, rec.length - off);
        hash.update(rec);
        bytes += rec.length;
        o.onProgress?.(s + m, ds.size);
      }
      fs.fsyncSync(fd);
    } catch (err) {
      fs.closeSync(fd);
      fs.rmSync(tmp, { force: true });
      throw err;
    }
    fs.closeSync(fd);
    fs.renameSync(tmp, path.join(o.dir, file));
    state.done.push({ file, start, count, bytes, sha256: hash.digest('hex') });
    writeFileAtomic(statePath, JSON.stringify(state, null, 1) + '\n');
  }
  const labels = ds.allLabels();
  const labelBytes = new Uint8Array(labels.buffer, labels.byteOffset, labels.byteLength);
  writeFileAtomic(path.join(o.dir, LABELS), labelBytes);
  // Shards of an earlier, larger cache are removed so the folder holds only this one.
  for (const f of fs.readdirSync(o.dir)) {
    if (/^shard-\d{5}\.bin$/.test(f) && !state.done.some((s) => s.file === f)) fs.rmSync(path.join(o.dir, f));
  }
  const manifest: LatentManifest = {
    format: LATENT_FORMAT,
    key,
    keyHash,
    count: ds.size,
    numClasses: ds.numClasses,
    classNames: [...ds.classNames],
    shape: [c, h, w],
    dtype: key.dtype,
    flips: 'both',
    latentBytes,
    shardSize,
    shards: state.done,
    labels: { file: LABELS, sha256: sha256Bytes(labelBytes) },
    dataset: { path: o.datasetPath, imageSize: ds.imageSize, channels: ds.channels },
    autoencoder: { id: o.ae.id, kind: o.ae.kind, scale: o.ae.scale, path: o.aePath ?? null },
    build: { seconds: (Date.now() - t0) / 1000, backend: tf.getBackend(), gitCommit: gitCommit(), created: new Date().toISOString() },
  };
  writeFileAtomic(path.join(o.dir, LATENT_MANIFEST), JSON.stringify(manifest, null, 1) + '\n');
  fs.rmSync(statePath, { force: true });
  return { manifest, rebuilt: true, reason };
}

// ---- reading --------------------------------------------------------------------------------

/** A built cache: labels in memory, latents read on demand. */
export class LatentCache {
  readonly size: number;
  readonly shape: [number, number, number];
  readonly labels: Int32Array;
  private readonly per: number;

  constructor(readonly dir: string, readonly manifest: LatentManifest) {
    this.size = manifest.count;
    this.shape = manifest.shape;
    this.per = manifest.shape[0] * manifest.shape[1] * manifest.shape[2];
    const raw = fs.readFileSync(path.join(dir, manifest.labels.file));
    if (raw.length !== 4 * this.size) throw new Error(`${dir}/${manifest.labels.file}: ${raw.length} bytes, expected ${4 * this.size}`);
    this.labels = new Int32Array(this.size);
    new Uint8Array(this.labels.buffer).set(raw);
    for (let i = 0; i < this.size; i++) {
      if (this.labels[i] < 0 || this.labels[i] >= manifest.numClasses) throw new Error(`${dir}: label ${this.labels[i]} of image ${i} is outside [0, ${manifest.numClasses}); the cache is corrupt`);
    }
  }

  /** Latents of `indices` as [n, C, H, W] float32; where flips[k] = 1, the latent of the flipped image. */
  read(indices: ArrayLike<number>, flips?: ArrayLike<number>): { x: Float32Array; y: Int32Array } {
    const m = this.manifest;
    const n = indices.length;
    const x = new Float32Array(n * this.per);
    const y = new Int32Array(n);
    const lb = m.latentBytes;
    const scratch = m.dtype === 'float16' ? new Uint8Array(lb) : null;
    const fds = new Map<number, number>();
    try {
      for (let k = 0; k < n; k++) {
        const i = indices[k];
        if (!Number.isSafeInteger(i) || i < 0 || i >= this.size) throw new Error(`${this.dir}: index ${i} is outside [0, ${this.size})`);
        const si = Math.floor(i / m.shardSize);
        let fd = fds.get(si);
        if (fd === undefined) {
          fd = fs.openSync(path.join(this.dir, m.shards[si].file), 'r');
          fds.set(si, fd);
        }
        const pos = (i - m.shards[si].start) * 2 * lb + (flips?.[k] ? lb : 0);
        const into = scratch ?? new Uint8Array(x.buffer, k * this.per * 4, lb);
        const got = fs.readSync(fd, into, 0, lb, pos);
        if (got !== lb) throw new Error(`${this.dir}/${m.shards[si].file}: truncated (latent of image ${i})`);
        if (scratch) x.set(decodeElements('float16', scratch, this.per) as Float32Array, k * this.per);
        y[k] = this.labels[i];
      }
    } finally {
      for (const fd of fds.values()) fs.closeSync(fd);
    }
    return { x, y };
  }
}

/** Opens a built cache; with verify the sha256 of every file is checked. */
export function openLatentCache(dir: string, opts: { verify?: boolean } = {}): LatentCache {
  const m = readLatentManifest(dir);
  const problem = filesProblem(dir, m, opts.verify ?? false);
  if (problem) throw new Error(`${dir}: latent cache is damaged: ${problem}; rebuild it with: dit latents build --out ${dir}`);
  return new LatentCache(dir, m);
}

/**
 * The cache as the DiT trainer's data source: samples are scaled latents [C, H, W];
 * a flip reads the stored latent of the flipped image.
 */
export function latentTrainingSource(dir: string, opts: { verify?: boolean } = {}): TrainingSource {
  const cache = openLatentCache(dir, opts);
  const k = cache.manifest.key;
  return {
    size: cache.size,
    numClasses: cache.manifest.numClasses,
    shape: [...cache.shape] as [number, number, number],
    id: `latents:${k.dataset.slice(0, 16)}:${k.autoencoder}:${k.posterior}:${k.seed}:${k.dtype}`,
    read: (indices, flips) => cache.read(indices, flips),
  };
}
