// What the trainer reads: model-ready NCHW float32 inputs (pixels in [-1, 1], or
// scaled latents) with labels, by sample index.
import { checkLabels } from '../model/labels';

export interface TrainingSource {
  /** Number of samples. */
  size: number;
  numClasses: number;
  /** [C, H, W] of one sample. */
  shape: [number, number, number];
  /** Samples at `indices` as NCHW float32, horizontally flipped where flips[i] = 1. */
  read(indices: ArrayLike<number>, flips?: Uint8Array): { x: Float32Array; y: Int32Array };
  /** Identifies the data for provenance and resume checks (e.g. a dataset + autoencoder hash). */
  id: string;
}

/** Flips one CHW sample along W in place. */
export function flipW(x: Float32Array, offset: number, [c, h, w]: [number, number, number]): void {
  for (let ch = 0; ch < c; ch++) {
    for (let r = 0; r < h; r++) {
      const row = offset + (ch * h + r) * w;
      for (let i = 0, j = w - 1; i < j; i++, j--) {
        const tmp = x[row + i];
        x[row + i] = x[row + j];
        x[row + j] = tmp;
      }
    }
  }
}

/** A source over arrays in memory (tests, small data). */
export function arraySource(x: Float32Array, y: Int32Array, shape: [number, number, number], numClasses: number, id = 'arrays'): TrainingSource {
  const per = shape[0] * shape[1] * shape[2];
  if (x.length !== y.length * per) throw new Error(`arraySource: ${x.length} values do not hold ${y.length} samples of [${shape}]`);
  checkLabels(y, numClasses, { what: `arraySource ${id}` });
  return {
    size: y.length,
    numClasses,
    shape,
    id,
    read(indices, flips) {
      const n = indices.length;
      const out = new Float32Array(n * per);
      const labels = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const j = indices[i];
        if (!(j >= 0 && j < y.length)) throw new Error(`arraySource: index ${j} out of range [0, ${y.length})`);
        out.set(x.subarray(j * per, (j + 1) * per), i * per);
        labels[i] = y[j];
        if (flips?.[i]) flipW(out, i * per, shape);
      }
      return { x: out, y: labels };
    },
  };
}
