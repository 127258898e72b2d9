// Shared test helpers (no tests here).
import { ditConfig } from '../lib/model/config';
import { DIT_ADAMW } from '../lib/train/adamw';
import { arraySource, TrainingSource } from '../lib/train/source';
import { DEFAULT_TRAIN, TrainOptions } from '../lib/train/trainer';
import { Rng } from '../lib/util/rng';

/** A tiny run shared with the kill -9 child process (test/fixtures/train/child.js). */
export function tinyRun(overrides: Partial<TrainOptions> = {}, poison = false): { options: TrainOptions; source: TrainingSource } {
  const model = ditConfig('mini-S/4', { inputSize: 8, hiddenSize: 16, numHeads: 2, depth: 1, numClasses: 3 });
  const rng = new Rng(123);
  const n = 24;
  const x = rng.fillNormal(new Float32Array(n * 4 * 8 * 8));
  if (poison) x.fill(NaN, 0, x.length);
  const y = Int32Array.from({ length: n }, (_, i) => i % 3);
  const options: TrainOptions = {
    ...DEFAULT_TRAIN, model, steps: 8, batchSize: 4, seed: 7, ckptEvery: 2,
    optimizer: { ...DIT_ADAMW, lr: 1e-3 }, ema: { decay: 0.99, warmup: true }, ...overrides,
  };
  // Same id when poisoned: the poisoned run resumes the good one's checkpoint.
  return { options, source: arraySource(x, y, [4, 8, 8], 3, 'tiny') };
}

