// Sample health: the scale of generated latents against the training data's.
// An undertrained epsilon-model can drift far from the data during sampling (its
// x_0 estimate at large t is eps error x 1/sqrt(abar_t), about 150x at t = 999), and
// the decoded images saturate. FID of such samples ranks noise, not models, so the
// sweep reports this ratio beside every FID and warns when it is off.
import type { TrainingSource } from '../train/source';

/**
 * Outside this band of (samples' std / data's std) the sweep warns, and the findings flag
 * the model and leave it out of comparisons and fits (figures/resolution STD_RATIO_GATE).
 */
export const SAMPLE_STD_BAND: readonly [number, number] = [0.8, 1.25];

/** Standard deviation over every value (float64 accumulation). */
export function stdOf(x: ArrayLike<number>): number {
  const n = x.length;
  if (!n) throw new Error('stdOf: no values');
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[i];
  mean /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (x[i] - mean) ** 2;
  return Math.sqrt(ss / n);
}

const measured = new WeakMap<TrainingSource, number>();

/** Std of the first 4096 training samples (model space: scaled latents or pixels), measured once per source. */
export function dataStd(source: TrainingSource): number {
  let v = measured.get(source);
  if (v === undefined) {
    const n = Math.min(4096, source.size);
    v = stdOf(source.read(Int32Array.from({ length: n }, (_, i) => i)).x);
    measured.set(source, v);
  }
  return v;
}

export interface SampleScale {
  /** samples' std / data's std (1 for a model that matches the data's scale). */
  ratio: number;
  /** Set when the ratio is outside SAMPLE_STD_BAND. */
  warning: string | null;
}

export function sampleScale(latents: ArrayLike<number>, dataStdValue: number): SampleScale {
  if (!(dataStdValue > 0)) throw new Error(`sampleScale: the data's std must be positive, got ${dataStdValue}`);
  const ratio = stdOf(latents) / dataStdValue;
  const [lo, hi] = SAMPLE_STD_BAND;
  const warning =
    ratio >= lo && ratio <= hi
      ? null
      : `samples have ${ratio.toFixed(2)}x the data's standard deviation (expected ${lo}-${hi}x): ` +
        'the model has not learned the data (undertrained, or narrower than its tokens) and its FID is no measure of sample quality';
  return { ratio, warning };
}
