// Shared test helpers (no tests here).
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after } from 'node:test';
import { SyntheticDataset } from '../lib/data/synthetic';
import { BuiltPipeline } from '../lib/experiments/pipeline';
import { encodeSafetensors, readSafetensors } from '../lib/io/safetensors';
import { featureStats, frechetDistance } from '../lib/metrics/fid';
import { FeatureMatrix, featureMatrix } from '../lib/metrics/precision_recall';
import { ditConfig } from '../lib/model/config';
import { DIT_ADAMW } from '../lib/train/adamw';
import { arraySource, TrainingSource } from '../lib/train/source';
import { DEFAULT_TRAIN, TrainOptions } from '../lib/train/trainer';
import { repoRoot } from '../lib/util/paths';
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


/** A tiny experiment as parsed JSON (a fresh copy each call): two cells, two studies, evaluation at two steps and extra final sampling steps. */
export function tinyExperimentJson(): Record<string, any> {
  return {
    name: 'tiny',
    data: { kind: 'synthetic', size: 32, num: 24, seed: 0 },
    autoencoder: { kind: 'identity' },
    modelOverrides: { inputSize: 8, hiddenSize: 16, numHeads: 2, depth: 1, numClasses: 3 },
    train: { steps: 4, batchSize: 4, lr: 1e-3, emaDecay: 0.9, emaWarmup: true, seed: 1, ckptEvery: 2, flip: true, gradClip: null },
    eval: { atSteps: [2, 4], numSamples: 6, sampler: 'ddpm', samplingSteps: 3, cfgScale: 1, guidanceChannels: 'first3', features: 'default', refImages: 24, seed: 0 },
    studies: [
      { name: 'scaling', models: ['mini-S/4', 'mini-S/2'], variants: ['adaln-zero'] },
      { name: 'sampling-compute', models: ['mini-S/2'], variants: ['adaln-zero'], finalSamplingSteps: [2, 5] },
    ],
  };
}

/** One cell of the tiny experiment, 8 steps, checkpoints every 4: for stopping it mid-training (test/fixtures/sweep-term-child.js). */
export function tinySigtermExperimentJson(): Record<string, any> {
  const j = tinyExperimentJson();
  j.train = { ...j.train, steps: 8, ckptEvery: 4 };
  j.eval = { ...j.eval, atSteps: [4, 8] };
  j.studies = [{ name: 'scaling', models: ['mini-S/4'], variants: ['adaln-zero'] }];
  return j;
}

/**
 * Rewrites the first tensor under `prefix` ('ema/', 'adam_m/') of a safetensors checkpoint
 * whose shape reads differently backwards with its shape reversed: the same element count
 * in another shape. Writes `out` (may be `file`) and returns the tensor's name.
 */
export function reshapeCheckpointTensor(file: string, out: string, prefix: string): string {
  const st = readSafetensors(file);
  const reversed = (s: number[]) => s.slice().reverse();
  const name = Object.keys(st.tensors).find((k) => k.startsWith(prefix) && reversed(st.tensors[k].shape).join(',') !== st.tensors[k].shape.join(','));
  if (!name) throw new Error(`${file}: no tensor under ${prefix} whose shape reversed differs`);
  const t = st.tensors[name];
  const tensors = { ...st.tensors, [name]: { ...t, shape: reversed(t.shape) } };
  fs.writeFileSync(out, encodeSafetensors(tensors, st.metadata));
  return name;
}

/** The metrics fixtures: scripts/fixtures/make_metrics_fixtures.py (ADM's evaluator re-stated with numpy/scipy). */
export const METRICS_FIXTURES = path.join(repoRoot(), 'test', 'fixtures', 'metrics');
export const METRICS_EXPECTED: Record<string, any> = JSON.parse(fs.readFileSync(path.join(METRICS_FIXTURES, 'expected.json'), 'utf8'));

/** A float32 array of the metrics fixtures. */
export interface BinRef {
  file: string;
  shape: number[];
}

export function readMetricsF32(ref: BinRef): Float32Array {
  const buf = fs.readFileSync(path.join(METRICS_FIXTURES, ref.file));
  const out = new Float32Array(buf.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(4 * i);
  assert.equal(out.length, ref.shape.reduce((a, b) => a * b, 1), `${ref.file}: size`);
  return out;
}

export const metricsMatrix = (ref: BinRef): FeatureMatrix => featureMatrix(readMetricsF32(ref), ref.shape[0], ref.shape[1], ref.file);

/** Training hooks that stop a run after `step`, as if it were interrupted there. */
export function stopAfter(step: number): { signal: AbortSignal; onStep: (log: { step: number }) => void } {
  const c = new AbortController();
  return { signal: c.signal, onStep: (log) => { if (log.step >= step) c.abort(); } };
}

/** Values in [-1, 1] as bytes (clipped), the way the test pipelines decode latents. */
export const latentBytes = (v: Float32Array) => Uint8Array.from(v, (a) => Math.max(0, Math.min(255, Math.round((a + 1) * 127.5))));

/** The test pipelines' training data: 24 random latents [4, 8, 8] (std 0.5, seed 5) in 3 classes, as source `id`. */
export function tinyLatents(id: string): { x: Float32Array; n: number; source: TrainingSource } {
  const rng = new Rng(5);
  const n = 24;
  const x = rng.fillNormal(new Float32Array(n * 4 * 8 * 8), 0, 0.5);
  const y = Int32Array.from({ length: n }, (_, i) => i % 3);
  return { x, n, source: arraySource(x, y, [4, 8, 8], 3, id) };
}

/**
 * A pipeline for the tiny experiment without networks or files (two sweeps at once in
 * test/sweep.test.ts): random latents [4, 8, 8] with 3 classes are the training data,
 * a latent decodes to its 256 values as bytes, held-out "images" are 32x32 synthetic
 * ones, and FID is computed on 8 block means of each sample's bytes.
 */
export function tinyPipeline(): BuiltPipeline {
  const { x, n, source } = tinyLatents('tiny-latents');
  const d = 8;
  const features = (images: Uint8Array, m: number) => {
    const per = images.length / m;
    const f = new Float32Array(m * d);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < per; j++) f[i * d + Math.floor((j * d) / per)] += images[i * per + j] / (per / d);
    }
    return featureStats(f, m, d);
  };
  const ref = features(latentBytes(x), n);
  const dataset = new SyntheticDataset({ seed: 0, num: 24 });
  const held = new SyntheticDataset({ seed: 2, num: 64 });
  return {
    source,
    featureNet: 'block-means',
    dataset,
    notes: [],
    dispose: () => {},
    heldOut: (m) => {
      const b = held.readBatch(0, m);
      return { images: b.images, labels: b.labels };
    },
    encode: (images, m) => Float32Array.from({ length: m * 256 }, (_, i) => images[Math.floor(i / 256) * (images.length / m) + (i % 256)] / 127.5 - 1),
    decode: latentBytes,
    evaluate: async (images, m) => {
      const s = features(images, m);
      return { fid: frechetDistance(s.mu, s.sigma, ref.mu, ref.sigma), sfid: null, inception_score: null, precision: null, recall: null };
    },
  };
}

/** A maker of fresh temporary folders (named prefix + name + random), all removed after the file's tests. */
export function tempDirs(prefix: string): (name?: string) => string {
  const made: string[] = [];
  after(() => {
    for (const d of made) fs.rmSync(d, { recursive: true, force: true });
  });
  return (name = '') => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix + name));
    made.push(d);
    return d;
  };
}

/** fn's result and the paths fs.openSync opened while it ran (the kit's fs bindings read the module's properties at call time). */
export function recordingOpens<T>(fn: () => T): { value: T; opened: string[] } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const realFs = require('fs') as typeof fs;
  const realOpen = realFs.openSync;
  const opened: string[] = [];
  realFs.openSync = ((p: fs.PathLike, ...rest: unknown[]) => {
    opened.push(String(p));
    return (realOpen as (...a: unknown[]) => number)(p, ...rest);
  }) as typeof fs.openSync;
  try {
    return { value: fn(), opened };
  } finally {
    realFs.openSync = realOpen;
  }
}

/** The pid of a process that has exited (a lock or temporary file's holder that is gone). */
export function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
}

/** max |a - b| / max |b|: relative error at the scale of the reference output (the golden tests' measure). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}
