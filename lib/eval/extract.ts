// Feature extraction in batches, and reference statistics cached in ADM's npz layout
// (mu, sigma, mu_s, sigma_s) under data/features/stats/, keyed by the images' sha256 and
// the feature network's id, so a reference set is pushed through a network only once.
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { HostArray, toFloat32 } from '../io/array';
import { readNpz, writeNpz } from '../io/npy';
import { featureStats, FidStatistics } from '../metrics/fid';
import { referenceStatsToArrays } from '../metrics/reference_stats';
import { FeatureArrays, FeatureNet } from '../features/network';
import { repoRoot } from '../util/paths';
import { EvalInput, ImageSource, Matrix, textArray } from './inputs';

export interface ExtractOptions {
  /** Images per forward pass (default: 256 for the default CNN, 8 for Inception). */
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

export function defaultBatchSize(net: FeatureNet): number {
  return net.kind === 'inception' ? 8 : 256;
}

/** pool, logits and spatial features of every image of a source. */
export function extractFeatures(net: FeatureNet, src: ImageSource, opts: ExtractOptions = {}): FeatureArrays {
  const bs = opts.batchSize ?? defaultBatchSize(net);
  if (!Number.isSafeInteger(bs) || bs < 1) throw new Error(`batch size must be a positive integer, got ${bs}`);
  const out: FeatureArrays = {
    n: src.n,
    pool: new Float32Array(src.n * net.poolDim),
    logits: new Float32Array(src.n * net.numClasses),
    spatial: new Float32Array(src.n * net.spatialDim),
  };
  for (let start = 0; start < src.n; start += bs) {
    const count = Math.min(bs, src.n - start);
    const t = net.forward(src.read(start, count), count, src.h, src.w);
    try {
      out.pool.set(t.pool.dataSync(), start * net.poolDim);
      out.logits.set(t.logits.dataSync(), start * net.numClasses);
      out.spatial.set(t.spatial.dataSync(), start * net.spatialDim);
    } finally {
      tf.dispose([t.pool, t.logits, t.spatial]);
    }
    opts.onProgress?.(start + count, src.n);
  }
  return out;
}

/** Statistics and pool features of a reference set, as cached. */
export interface ReferenceFeatures {
  n: number;
  poolStats: FidStatistics;
  spatialStats: FidStatistics;
  /** pool features (precision/recall need them, statistics do not suffice). */
  pool: Matrix;
  featureNet: string;
  /** sha256 of the images. */
  imagesHash: string;
}

export function defaultStatsCacheDir(): string {
  return path.join(repoRoot(), 'data', 'features', 'stats');
}

export function referenceCachePath(dir: string, imagesHash: string, netId: string): string {
  return path.join(dir, `${imagesHash.slice(0, 16)}-${netId}.npz`);
}

/** The npz arrays of reference features: ADM's four statistics plus pool, feature_net, images_sha256. */
export function referenceArrays(r: ReferenceFeatures): Record<string, HostArray> {
  return {
    ...referenceStatsToArrays({ pool: r.poolStats, spatial: r.spatialStats }),
    pool: { dtype: 'float32', shape: [r.pool.n, r.pool.d], data: r.pool.data },
    feature_net: textArray(r.featureNet),
    images_sha256: textArray(r.imagesHash),
  };
}

function readCached(file: string, netId: string): ReferenceFeatures | null {
  try {
    const a = readNpz(file);
    const text = (k: string) => Buffer.from(a[k].data as Uint8Array).toString('utf8');
    if (text('feature_net') !== netId) return null;
    const stats = (mu: string, sigma: string): FidStatistics => ({ mu: a[mu].data as Float64Array, sigma: a[sigma].data as Float64Array });
    const [n, d] = a.pool.shape;
    return {
      n, poolStats: stats('mu', 'sigma'), spatialStats: stats('mu_s', 'sigma_s'),
      pool: { data: toFloat32(a.pool), n, d }, featureNet: netId, imagesHash: text('images_sha256'),
    };
  } catch {
    return null; // unreadable or from an older layout: recompute
  }
}

export interface ReferenceOptions extends ExtractOptions {
  /** Cache folder (default data/features/stats); null: no cache. */
  cacheDir?: string | null;
  log?: (msg: string) => void;
}

/** Features and statistics of an input's images, from the cache when present. */
export function referenceFeatures(input: EvalInput, net: FeatureNet, opts: ReferenceOptions = {}): ReferenceFeatures & { cached: boolean } {
  if (!input.images) throw new Error(`${input.name}: holds no images to compute reference statistics from`);
  const cacheDir = opts.cacheDir === undefined ? defaultStatsCacheDir() : opts.cacheDir;
  const imagesHash = input.hash ? input.hash() : '';
  const file = cacheDir && imagesHash ? referenceCachePath(cacheDir, imagesHash, net.id) : null;
  if (file && fs.existsSync(file)) {
    const hit = readCached(file, net.id);
    if (hit && hit.imagesHash === imagesHash) return { ...hit, cached: true };
  }
  const src = input.images();
  opts.log?.(`${input.name}: extracting ${net.id} features of ${src.n} images`);
  const f = extractFeatures(net, src, opts);
  const r: ReferenceFeatures = {
    n: f.n,
    poolStats: featureStats(f.pool, f.n, net.poolDim),
    spatialStats: featureStats(f.spatial, f.n, net.spatialDim),
    pool: { data: f.pool, n: f.n, d: net.poolDim },
    featureNet: net.id,
    imagesHash,
  };
  if (file) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeNpz(file, referenceArrays(r));
  }
  return { ...r, cached: false };
}
