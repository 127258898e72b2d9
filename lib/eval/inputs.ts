// What an evaluation reads from one side (reference or samples): any of
//   images        arr_0, uint8 (N, H, W, 3) as ADM's sample and reference batches, or a dataset
//   features      pool (N x D), spatial (N x S), logits (N x K) computed elsewhere
//   statistics    mu, sigma (FID) and mu_s, sigma_s (sFID), as ADM's reference batches
//   labels        arr_1, integer (N,): the class each sample was generated for (dit sample
//                 writes it), for the class accuracy
// plus, when this kit wrote the file, feature_net (UTF-8 bytes): the id of the network the
// features and statistics came from. Members of an npz are decoded only when used, so
// reading the statistics of a reference batch does not decode its images.
import * as fs from 'fs';
import * as path from 'path';
import { createHash } from 'crypto';
import { ImageDataset } from '../data/dataset';
import { openDataset } from '../data/loaders';
import { ShardDataset } from '../data/store';
import { HostArray, isFloatDType, toFloat32, toFloat64 } from '../io/array';
import { decodeNpy } from '../io/npy';
import { fileSource } from '../io/source';
import { openZip } from '../io/zip';
import { FidStatistics } from '../metrics/fid';
import { sha256File } from '../util/hash';

/** A row-major n x d float32 matrix. */
export interface Matrix {
  data: Float32Array;
  n: number;
  d: number;
}

/** Images read in batches: uint8 NHWC RGB, all h x w. */
export interface ImageSource {
  n: number;
  h: number;
  w: number;
  read(start: number, count: number): Uint8Array;
}

export interface EvalInput {
  /** A file name or a description, for messages. */
  name: string;
  /** The images, loaded on first use. */
  images?: () => ImageSource;
  pool?: Matrix;
  spatial?: Matrix;
  logits?: Matrix;
  poolStats?: FidStatistics;
  spatialStats?: FidStatistics;
  /** The network the file's features and statistics came from, when recorded. */
  featureNet?: string;
  /** The class each sample was generated for (arr_1). */
  labels?: Int32Array;
  /** Content hash (sha256 hex) identifying the images, for caching their statistics. */
  hash?: () => string;
}

/** Array names this module understands in an evaluation npz. */
export const EVAL_ARRAYS = ['arr_0', 'arr_1', 'pool', 'spatial', 'logits', 'mu', 'sigma', 'mu_s', 'sigma_s', 'feature_net'];

export function textArray(s: string): HostArray {
  const data = new Uint8Array(Buffer.from(s, 'utf8'));
  return { dtype: 'uint8', shape: [data.length], data };
}

function matrix(a: HostArray, key: string, file: string): Matrix {
  if (!isFloatDType(a.dtype) || a.shape.length !== 2) throw new Error(`${file}: ${key} must be a 2-d float array (N x D), got ${a.dtype}[${a.shape.join(', ')}]`);
  return { data: toFloat32(a), n: a.shape[0], d: a.shape[1] };
}

function stats(arrays: Record<string, HostArray>, muKey: string, sigmaKey: string, file: string): FidStatistics | undefined {
  const mu = arrays[muKey], sigma = arrays[sigmaKey];
  if (!mu && !sigma) return undefined;
  if (!mu || !sigma) throw new Error(`${file}: has ${mu ? muKey : sigmaKey} without ${mu ? sigmaKey : muKey}`);
  if (mu.shape.length !== 1) throw new Error(`${file}: ${muKey} must be 1-d, has shape [${mu.shape.join(', ')}]`);
  const d = mu.shape[0];
  if (sigma.shape.length !== 2 || sigma.shape[0] !== d || sigma.shape[1] !== d) {
    throw new Error(`${file}: ${sigmaKey} must be ${d} x ${d} to match ${muKey}, has shape [${sigma.shape.join(', ')}]`);
  }
  return { mu: toFloat64(mu), sigma: toFloat64(sigma) };
}

/** Checks arr_0 and returns it as RGB (grey images get three equal channels). */
export function imagesFromArray(a: HostArray, file: string): ImageSource {
  if (a.dtype !== 'uint8' || a.shape.length !== 4 || (a.shape[3] !== 3 && a.shape[3] !== 1)) {
    throw new Error(`${file}: arr_0 is ${a.dtype}[${a.shape.join(', ')}]; expected uint8 (N, H, W, 3) images as ADM's batches`);
  }
  const [n, h, w, c] = a.shape;
  if (n === 0) throw new Error(`${file}: arr_0 holds no images (shape [${a.shape.join(', ')}]): an empty batch has nothing to evaluate`);
  let rgb = a.data as Uint8Array;
  if (c === 1) {
    rgb = new Uint8Array(n * h * w * 3);
    for (let p = 0; p < n * h * w; p++) rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = (a.data as Uint8Array)[p];
  }
  return imageSource(rgb, n, h, w);
}

export function imageSource(images: Uint8Array, n: number, h: number, w: number): ImageSource {
  const b = h * w * 3;
  if (images.length !== n * b) throw new Error(`${images.length} bytes are not ${n} RGB images of ${h}x${w}`);
  return { n, h, w, read: (start, count) => images.subarray(start * b, (start + count) * b) };
}

/** Checks that an input's matrices hold n x d values each and that its features and logits are of the same samples. */
export function checkEvalInput(input: EvalInput): EvalInput {
  const mats = (['pool', 'spatial', 'logits'] as const).filter((k) => input[k]);
  for (const k of mats) {
    const m = input[k]!;
    if (m.data.length !== m.n * m.d) throw new Error(`${input.name}: ${k} of ${m.n} samples needs ${m.n} x ${m.d} values, got ${m.data.length}`);
  }
  const counts = mats.map((k) => input[k]!.n);
  if (counts.some((c) => c !== counts[0])) {
    throw new Error(`${input.name}: ${mats.join(', ')} hold different numbers of rows (${counts.join(', ')})`);
  }
  if (input.labels && counts.length && input.labels.length !== counts[0]) {
    throw new Error(`${input.name}: ${input.labels.length} labels (arr_1) for ${counts[0]} rows of ${mats.join(', ')}`);
  }
  return input;
}

/** Reads an evaluation npz (see the header); unknown members are ignored. */
export function readEvalNpz(file: string): EvalInput {
  if (!fs.existsSync(file)) throw new Error(`${file}: no such file`);
  const src = fileSource(file);
  const arrays: Record<string, HostArray> = {};
  let arr0Shape: number[] | null = null;
  try {
    const zip = openZip(src);
    for (const e of zip.entries) {
      const key = e.name.replace(/\.npy$/, '');
      if (!EVAL_ARRAYS.includes(key) || key === 'arr_0') {
        if (key === 'arr_0') arr0Shape = [];
        continue;
      }
      arrays[key] = decodeNpy(zip.read(e), `${file}:${e.name}`);
    }
  } finally {
    src.close();
  }
  const input: EvalInput = { name: file };
  if (arrays.pool) input.pool = matrix(arrays.pool, 'pool', file);
  if (arrays.spatial) input.spatial = matrix(arrays.spatial, 'spatial', file);
  if (arrays.logits) input.logits = matrix(arrays.logits, 'logits', file);
  input.poolStats = stats(arrays, 'mu', 'sigma', file);
  input.spatialStats = stats(arrays, 'mu_s', 'sigma_s', file);
  if (arrays.feature_net) input.featureNet = Buffer.from(arrays.feature_net.data as Uint8Array).toString('utf8');
  if (arrays.arr_1) {
    const a = arrays.arr_1;
    if (isFloatDType(a.dtype) || a.dtype === 'bool' || a.shape.length !== 1) throw new Error(`${file}: arr_1 (labels) must be a 1-d integer array, got ${a.dtype}[${a.shape.join(', ')}]`);
    input.labels = Int32Array.from(a.data as ArrayLike<number>, Number);
  }
  checkEvalInput(input);
  if (arr0Shape) {
    let cached: ImageSource | null = null;
    input.images = () => {
      if (!cached) {
        const s = fileSource(file);
        try {
          const zip = openZip(s);
          const e = zip.entries.find((x) => x.name === 'arr_0.npy');
          cached = imagesFromArray(decodeNpy(zip.read(e!), `${file}:arr_0.npy`), file);
        } finally {
          s.close();
        }
      }
      return cached;
    };
    input.hash = () => sha256File(file);
  }
  if (!input.images && !input.pool && !input.spatial && !input.logits && !input.poolStats && !input.spatialStats) {
    throw new Error(`${file}: holds none of arr_0 (images), pool, spatial, logits, mu/sigma, mu_s/sigma_s`);
  }
  return input;
}

/** A dataset (shard folder, image folder, CIFAR-10, npz) as an evaluation input of its images. */
export function datasetInput(ds: ImageDataset, name: string): EvalInput {
  if (ds.channels !== 3) throw new Error(`${name}: needs RGB images, has ${ds.channels} channels`);
  const s = ds.imageSize;
  return {
    name,
    images: () => ({ n: ds.size, h: s, w: s, read: (start, count) => ds.readBatch(start, count).images }),
    // A shard's manifest already holds the sha256 of its bytes; other datasets are hashed by pixels.
    hash: () => (ds instanceof ShardDataset ? ds.manifest.shard.sha256 : pixelHash(ds)),
  };
}

function pixelHash(ds: ImageDataset): string {
  const h = createHash('sha256');
  h.update(`${ds.size}x${ds.imageSize}x${ds.imageSize}x${ds.channels};`);
  for (let s = 0; s < ds.size; s += 1024) h.update(ds.readBatch(s, Math.min(1024, ds.size - s)).images);
  return h.digest('hex');
}

/** Images in memory as an evaluation input. */
export function imagesInput(images: Uint8Array, n: number, h: number, w: number, name = 'images'): EvalInput {
  const src = imageSource(images, n, h, w);
  return { name, images: () => src, hash: () => createHash('sha256').update(`${n}x${h}x${w}x3;`).update(images).digest('hex') };
}

/** An .npz (read as above) or any dataset path openDataset understands. */
export function openEvalInput(p: string, opts: { imageSize?: number } = {}): EvalInput {
  if (/\.npz$/i.test(p) && fs.existsSync(p) && !fs.statSync(p).isDirectory()) {
    return readEvalNpz(p);
  }
  const { dataset } = openDataset(p, { imageSize: opts.imageSize });
  return datasetInput(dataset, path.resolve(p));
}
