// What the autoencoder and the latent cache need from a dataset: a content hash (cache
// keys, provenance), the default data, and uint8 NHWC <-> model-ready tensors.
import * as crypto from 'crypto';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { ImageDataset, flipImage, fromModelOutput, toModelInput } from '../data/dataset';
import { openDataset } from '../data/loaders';
import { ShardDataset, ensureSyntheticDataset } from '../data/store';

/**
 * sha256 of a dataset's content. A kit shard folder already carries the sha256 of its
 * shard (images and labels), checked when it was opened; any other dataset is hashed
 * from its images and labels, streamed `chunk` images at a time.
 */
export function datasetHash(ds: ImageDataset, chunk = 1024): string {
  if (ds instanceof ShardDataset) return ds.manifest.shard.sha256;
  const h = crypto.createHash('sha256');
  h.update(JSON.stringify({ size: ds.size, imageSize: ds.imageSize, channels: ds.channels, classNames: ds.classNames }));
  for (let s = 0; s < ds.size; s += chunk) {
    const b = ds.readBatch(s, Math.min(chunk, ds.size - s));
    h.update(b.images);
    h.update(new Uint8Array(b.labels.buffer, b.labels.byteOffset, b.labels.byteLength));
  }
  return h.digest('hex');
}

export interface OpenedData {
  dataset: ImageDataset;
  /** Absolute path of the data (folder or file). */
  path: string;
  hash: string;
}

/**
 * A dataset by path, or the kit's default synthetic set (data/synthetic-32, generated
 * on first use) when `dir` is undefined.
 */
export function openImageData(dir?: string, opts: { imageSize?: number; log?: (msg: string) => void } = {}): OpenedData {
  if (dir === undefined) {
    const r = ensureSyntheticDataset({
      onProgress: opts.log ? (d, t) => d === t && opts.log!(`[dit] generated ${t} synthetic images`) : undefined,
    });
    return { dataset: r.dataset, path: r.dataset.dir, hash: r.manifest.shard.sha256 };
  }
  const { dataset } = openDataset(dir, { imageSize: opts.imageSize });
  return { dataset, path: path.resolve(dir), hash: datasetHash(dataset) };
}

/** uint8 NHWC images -> float32 NCHW tensor in [-1, 1], mirrored left-right where flips[i]. */
export function imagesToTensor(images: Uint8Array, n: number, size: number, channels: number, flips?: ArrayLike<number>): tf.Tensor4D {
  let src = images;
  if (flips && Array.prototype.some.call(flips, (f: number) => f)) {
    src = images.slice(0, n * size * size * channels);
    for (let i = 0; i < n; i++) if (flips[i]) flipImage(src, i, size, channels);
  }
  return tf.tensor4d(toModelInput(src, n, size, channels), [n, channels, size, size]);
}

/** float32 NCHW tensor in [-1, 1] -> uint8 NHWC (clamped and truncated as DiT's sampler). */
export function tensorToImages(x: tf.Tensor4D): Uint8Array {
  const [n, c, h, w] = x.shape;
  if (h !== w) throw new Error(`tensorToImages: images must be square, got ${h}x${w}`);
  return fromModelOutput(x.dataSync() as Float32Array, n, h, c);
}

/** PSNR in dB of two uint8 images of `bytes` values each (capped at 100 for identical images). */
export function psnr(a: Uint8Array, b: Uint8Array, offset: number, bytes: number): number {
  let se = 0;
  for (let i = offset; i < offset + bytes; i++) {
    const d = a[i] - b[i];
    se += d * d;
  }
  const mse = se / bytes;
  return mse === 0 ? 100 : 10 * Math.log10((255 * 255) / mse);
}
