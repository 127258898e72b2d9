// The one interface every image source in the kit presents to training, sampling and
// metrics: uint8 NHWC images with int32 labels, read in batches so memory does not
// grow with the dataset. Conversions to and from the model's [-1, 1] NCHW floats
// follow ADM/DiT. Which images make up a batch and which are mirrored is the trainers'
// data order (lib/train/order.ts).

export interface Batch {
  /** uint8, NHWC, row-major: image i starts at i * imageSize * imageSize * channels. */
  images: Uint8Array;
  labels: Int32Array;
}

export interface ImageDataset {
  /** Number of images. */
  readonly size: number;
  readonly numClasses: number;
  readonly classNames: string[];
  /** Images are imageSize x imageSize. */
  readonly imageSize: number;
  readonly channels: number;
  /** Images start .. start+count-1. */
  readBatch(start: number, count: number): Batch;
  /** Images at arbitrary indices (for shuffled minibatches), in the order given. */
  readIndices(indices: ArrayLike<number>): Batch;
  /** The label of every image, without reading pixels (class balance, per-class picks). */
  allLabels(): Int32Array;
}

/** Bytes of one image of a dataset. */
export function imageBytes(ds: Pick<ImageDataset, 'imageSize' | 'channels'>): number {
  return ds.imageSize * ds.imageSize * ds.channels;
}

/** Throws unless [start, start+count) lies inside a dataset of `size` images. */
export function checkBatchRange(size: number, start: number, count: number, what = 'dataset'): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > size) {
    throw new Error(`${what}: readBatch(${start}, ${count}) is outside the ${size} images`);
  }
}

export function checkIndex(size: number, i: number, what = 'dataset'): void {
  if (!Number.isSafeInteger(i) || i < 0 || i >= size) throw new Error(`${what}: index ${i} is outside [0, ${size})`);
}

/** Consecutive indices start..start+count-1. */
export function range(start: number, count: number): Int32Array {
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) out[i] = start + i;
  return out;
}

/**
 * uint8 NHWC -> float32 NCHW in [-1, 1], as ADM's ImageDataset does
 * (arr.astype(float32) / 127.5 - 1, then HWC -> CHW).
 */
export function toModelInput(images: Uint8Array, n: number, size: number, channels = 3): Float32Array {
  const hw = size * size;
  if (images.length < n * hw * channels) throw new Error(`toModelInput: ${images.length} bytes is less than ${n} images of ${size}x${size}x${channels}`);
  const out = new Float32Array(n * hw * channels);
  for (let b = 0; b < n; b++) {
    const src = b * hw * channels;
    for (let c = 0; c < channels; c++) {
      const dst = (b * channels + c) * hw;
      for (let p = 0; p < hw; p++) out[dst + p] = images[src + p * channels + c] / 127.5 - 1;
    }
  }
  return out;
}

/**
 * float32 NCHW in [-1, 1] -> uint8 NHWC, as DiT's sample_ddp.py does before saving
 * samples for FID: clamp(127.5 * x + 128, 0, 255), truncated to uint8.
 */
export function fromModelOutput(x: Float32Array, n: number, size: number, channels = 3): Uint8Array {
  const hw = size * size;
  if (x.length < n * hw * channels) throw new Error(`fromModelOutput: ${x.length} values is less than ${n} images of ${channels}x${size}x${size}`);
  const out = new Uint8Array(n * hw * channels);
  for (let b = 0; b < n; b++) {
    const dst = b * hw * channels;
    for (let c = 0; c < channels; c++) {
      const src = (b * channels + c) * hw;
      for (let p = 0; p < hw; p++) {
        const v = 127.5 * x[src + p] + 128;
        out[dst + p * channels + c] = v >= 255 ? 255 : v > 0 ? v : 0; // Uint8Array stores truncate
      }
    }
  }
  return out;
}

/** Mirrors image i of an NHWC batch left-right, in place. */
export function flipImage(images: Uint8Array, i: number, size: number, channels: number): void {
  const base = i * size * size * channels;
  for (let y = 0; y < size; y++) {
    const row = base + y * size * channels;
    for (let x = 0; x < size >> 1; x++) {
      const a = row + x * channels, b = row + (size - 1 - x) * channels;
      for (let c = 0; c < channels; c++) {
        const t = images[a + c];
        images[a + c] = images[b + c];
        images[b + c] = t;
      }
    }
  }
}

/** A dataset held in memory (small sets, tests, decoded npz files). */
export class MemoryDataset implements ImageDataset {
  readonly size: number;
  readonly numClasses: number;
  readonly classNames: string[];

  constructor(
    readonly images: Uint8Array,
    readonly labels: Int32Array,
    readonly imageSize: number,
    readonly channels: number,
    classNames: string[],
  ) {
    this.size = labels.length;
    if (images.length !== this.size * imageSize * imageSize * channels) {
      throw new Error(`MemoryDataset: ${images.length} bytes do not hold ${this.size} images of ${imageSize}x${imageSize}x${channels}`);
    }
    this.classNames = [...classNames];
    this.numClasses = classNames.length;
    for (let i = 0; i < labels.length; i++) {
      if (labels[i] < 0 || labels[i] >= this.numClasses) throw new Error(`MemoryDataset: label ${labels[i]} of image ${i} is outside [0, ${this.numClasses})`);
    }
  }

  allLabels(): Int32Array {
    return this.labels.slice();
  }

  readBatch(start: number, count: number): Batch {
    checkBatchRange(this.size, start, count);
    const b = imageBytes(this);
    return { images: this.images.slice(start * b, (start + count) * b), labels: this.labels.slice(start, start + count) };
  }

  readIndices(indices: ArrayLike<number>): Batch {
    const b = imageBytes(this);
    const images = new Uint8Array(indices.length * b);
    const labels = new Int32Array(indices.length);
    for (let k = 0; k < indices.length; k++) {
      const i = indices[k];
      checkIndex(this.size, i);
      images.set(this.images.subarray(i * b, (i + 1) * b), k * b);
      labels[k] = this.labels[i];
    }
    return { images, labels };
  }
}

/** Images per class: a class-balance check. */
export function classCounts(labels: ArrayLike<number>, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]]++;
  return counts;
}

/** Indices of the first k images of each class (fewer where a class has fewer). */
export function firstPerClass(labels: ArrayLike<number>, numClasses: number, k: number): number[][] {
  const picks: number[][] = Array.from({ length: numClasses }, () => []);
  let full = 0;
  for (let i = 0; i < labels.length && full < numClasses; i++) {
    const p = picks[labels[i]];
    if (p && p.length < k) {
      p.push(i);
      if (p.length === k) full++;
    }
  }
  return picks;
}

/**
 * A dataset as model inputs by index: NCHW float32 in [-1, 1], flipped where
 * flips[i] = 1. Structurally the trainer's TrainingSource (lib/train/source.ts).
 */
export function pixelSource(ds: ImageDataset, id: string): {
  size: number;
  numClasses: number;
  shape: [number, number, number];
  id: string;
  read(indices: ArrayLike<number>, flips?: Uint8Array): { x: Float32Array; y: Int32Array };
} {
  const { imageSize: s, channels: c } = ds;
  return {
    size: ds.size,
    numClasses: ds.numClasses,
    shape: [c, s, s],
    id,
    read(indices, flips) {
      const b = ds.readIndices(indices);
      if (flips) for (let i = 0; i < indices.length; i++) if (flips[i]) flipImage(b.images, i, s, c);
      return { x: toModelInput(b.images, indices.length, s, c), y: b.labels };
    },
  };
}
