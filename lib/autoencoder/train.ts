// Training the KL autoencoder on the kit's data (SD's recipe without LPIPS and the
// discriminator): AdamW on per-image L1 (or L2) + 1e-6 KL, random horizontal flips,
// linear warm-up then cosine decay. Deterministic from the seed (batch order, flips,
// posterior noise all come from seeded streams whose state is checkpointed) and
// resumable from an atomic checkpoint. At the end it measures the latent scale
// (1 / std of the training latents, SD's 0.18215) and the held-out PSNR, and writes
// vae.safetensors + vae.json (lib/autoencoder/weights.ts).
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { ImageDataset } from '../data/dataset';
import { AdamWConfig, AdamWState, createAdamW, disposeAdamW } from '../train/adamw';
import { CheckpointKind, VariableGroups, metadataJson, readStateCheckpoint, restoreGroups, writeStateCheckpoint } from '../train/checkpoint';
import { EpochOrder, drawFlips } from '../train/order';
import { optimizerStep } from '../train/step';
import { sha256Bytes } from '../util/hash';
import { progress } from '../util/progress';
import { computeEnvironment, configHash, gitCommit } from '../util/provenance';
import { derivedSeed, Rng, RngState } from '../util/rng';
import { truncateStepCsv } from '../util/step_csv';
import { imagesToTensor, psnr, tensorToImages } from './data';
import { klAutoencoder } from './index';
import { KLConfig, KLModel, RecLoss, createKL, disposeKL, klLatentShape, klLoss, klMoments, klParamCount, posterior, posteriorSample, validateKLConfig } from './kl';
import { VAEManifest, VAE_MANIFEST, encodeKLWeights, readVAEManifest, writeVAEFolder } from './weights';

export interface VAETrainOptions {
  config: KLConfig;
  steps: number;
  batchSize: number;
  seed: number;
  /** Peak learning rate, reached after warmupSteps, then cosine decay to lr * minLrRatio. */
  lr: number;
  warmupSteps: number;
  minLrRatio: number;
  /** Weight of the per-image KL against the per-image summed reconstruction error (SD: 1e-6). */
  klWeight: number;
  recLoss: RecLoss;
  /** Random horizontal flips. */
  flip: boolean;
  /** The last `holdout` images are never trained on; the PSNR is measured on them. */
  holdout: number;
  /** Training images encoded to measure the latent std for the scale. */
  scaleImages: number;
  /** Checkpoint every this many steps (and at the end). */
  ckptEvery: number;
}

/** About 20 minutes on the 2 shared CPU cores, 'native' backend (lib/autoencoder/README.md). */
export const DEFAULT_VAE_TRAIN: Omit<VAETrainOptions, 'config'> = {
  steps: 2500,
  batchSize: 16,
  seed: 0,
  lr: 1e-3,
  warmupSteps: 100,
  minLrRatio: 0.05,
  klWeight: 1e-6,
  recLoss: 'l1',
  flip: true,
  holdout: 500,
  scaleImages: 4096,
  ckptEvery: 100,
};

export const VAE_CKPT = 'vae-checkpoint.safetensors';
export const VAE_CKPT_KIND = 'dit-kit/vae-train-checkpoint/v1';
const LOSS_CSV = 'loss.csv';

export function validateVAETrainOptions(o: VAETrainOptions): VAETrainOptions {
  validateKLConfig(o.config);
  for (const k of ['steps', 'batchSize', 'warmupSteps', 'holdout', 'scaleImages', 'ckptEvery'] as const) {
    const v = o[k];
    if (!Number.isSafeInteger(v) || v < 0 || ((k === 'steps' || k === 'batchSize' || k === 'ckptEvery') && v === 0)) {
      throw new Error(`autoencoder training: ${k} must be a ${k === 'steps' || k === 'batchSize' || k === 'ckptEvery' ? 'positive' : 'non-negative'} integer, got ${v}`);
    }
  }
  if (!Number.isSafeInteger(o.seed) || o.seed < 0) throw new Error(`autoencoder training: seed must be a non-negative integer, got ${o.seed}`);
  if (!(o.lr > 0)) throw new Error(`autoencoder training: lr must be positive, got ${o.lr}`);
  if (!(o.minLrRatio >= 0 && o.minLrRatio <= 1)) throw new Error(`autoencoder training: minLrRatio must be in [0, 1], got ${o.minLrRatio}`);
  if (!(o.klWeight >= 0)) throw new Error(`autoencoder training: klWeight must be >= 0, got ${o.klWeight}`);
  if (o.recLoss !== 'l1' && o.recLoss !== 'l2') throw new Error(`autoencoder training: recLoss must be l1 or l2, got ${o.recLoss}`);
  return o;
}

/** Learning rate at (0-based) step: linear warm-up, then cosine to lr * minLrRatio. */
export function lrAt(o: Pick<VAETrainOptions, 'lr' | 'warmupSteps' | 'minLrRatio' | 'steps'>, step: number): number {
  if (step < o.warmupSteps) return (o.lr * (step + 1)) / o.warmupSteps;
  const span = Math.max(1, o.steps - o.warmupSteps);
  const t = Math.min(1, (step - o.warmupSteps) / span);
  return o.lr * (o.minLrRatio + (1 - o.minLrRatio) * 0.5 * (1 + Math.cos(Math.PI * t)));
}

/** Everything that must match for a resume or for reusing a finished run. */
export function vaeRunHash(o: VAETrainOptions, datasetSha256: string): string {
  const { ckptEvery: _c, ...rest } = o;
  return configHash({ ...rest, data: datasetSha256 });
}

export interface VAETrainState {
  options: VAETrainOptions;
  model: KLModel;
  opt: AdamWState;
  rng: Rng;
  step: number;
  /** Wall and CPU seconds spent in training steps, over all sessions. */
  seconds: number;
  cpuSeconds: number;
}

export interface VAEStepLog {
  step: number;
  loss: number;
  /** Mean per-pixel reconstruction error. */
  rec: number;
  kl: number;
  lr: number;
}

export interface VAETrainHooks {
  onStep?: (log: VAEStepLog, state: VAETrainState) => void;
  /** Once aborted, the run stops after the step under way, as an interrupted run (resumable from its last checkpoint). */
  signal?: AbortSignal;
  quiet?: boolean;
  log?: (msg: string) => void;
}

export interface VAETrainResult {
  /** The manifest when training finished (null when stopped early by the signal). */
  manifest: VAEManifest | null;
  /** 'trained', 'resumed' (from a checkpoint) or 'cached' (the folder already held this run). */
  status: 'trained' | 'resumed' | 'cached';
  step: number;
}

function adamConfig(o: VAETrainOptions): AdamWConfig {
  return { lr: o.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
}

const VAE_CHECKPOINT: CheckpointKind = {
  kind: VAE_CKPT_KIND,
  what: 'autoencoder checkpoint',
  description: 'an autoencoder training checkpoint',
  corruptHint: '; delete it to start over',
};

function vaeGroups(s: VAETrainState): VariableGroups {
  return { model: s.model.params, adam_m: s.opt.m, adam_v: s.opt.v };
}

function saveCheckpoint(dir: string, s: VAETrainState, runHash: string): void {
  writeStateCheckpoint(path.join(dir, VAE_CKPT), vaeGroups(s), {
    kind: VAE_CKPT_KIND, step: s.step, runHash, rng: s.rng.getState(), optimizerStep: s.opt.step,
    seconds: s.seconds, cpuSeconds: s.cpuSeconds, options: s.options, gitCommit: gitCommit(),
  });
}

/** Restores `s` from the checkpoint in dir; false when there is none. */
function loadCheckpoint(dir: string, s: VAETrainState, runHash: string): boolean {
  const file = path.join(dir, VAE_CKPT);
  if (!fs.existsSync(file)) return false;
  const ck = readStateCheckpoint(file, VAE_CHECKPOINT);
  const md = ck.metadata;
  if (md.runHash !== runHash) {
    throw new Error(`checkpoint ${file} belongs to a different run (hash ${md.runHash}, this run ${runHash}): config, ` +
      `optimiser, steps, seed or data differ. Use another --out folder or delete the checkpoint.`);
  }
  restoreGroups(ck, vaeGroups(s), 'this model');
  s.rng = Rng.fromState(metadataJson<{ s: RngState; spare: number | null }>(ck, 'rng'));
  s.step = Number(md.step);
  s.opt.step = Number(md.optimizerStep);
  s.seconds = Number(md.seconds) || 0;
  s.cpuSeconds = Number(md.cpuSeconds) || 0;
  if (!Number.isSafeInteger(s.step) || s.step < 0 || s.step > s.options.steps) throw new Error(`corrupt autoencoder checkpoint ${file}: step '${md.step}'`);
  return true;
}

/** A fresh run: the model from the seed, AdamW, the step stream. */
export function createVAETrainState(options: VAETrainOptions): VAETrainState {
  const o = validateVAETrainOptions(options);
  const model = createKL(o.config, o.seed);
  return { options: o, model, opt: createAdamW(model.params, adamConfig(o)), rng: new Rng(derivedSeed(o.seed + 1)), step: 0, seconds: 0, cpuSeconds: 0 };
}

export function disposeVAETrainState(s: VAETrainState): void {
  disposeKL(s.model);
  disposeAdamW(s.opt);
}

/** One AdamW step on the batch the run's streams select (training images are 0..trainCount-1). */
export function vaeTrainStep(s: VAETrainState, ds: ImageDataset, order: EpochOrder): VAEStepLog {
  const o = s.options;
  const B = o.batchSize;
  const idx = order.batch(s.step, B);
  const flips = drawFlips(s.rng, B, o.flip);
  const [zc, zh, zw] = klLatentShape(o.config);
  const noise = s.rng.fillNormal(new Float32Array(B * zh * zw * zc));
  const batch = ds.readIndices(idx);
  const lr = lrAt(o, s.step);
  const r = optimizerStep(() => {
    const x = tf.transpose(imagesToTensor(batch.images, B, ds.imageSize, ds.channels, flips), [0, 2, 3, 1]) as tf.Tensor4D;
    const l = klLoss(s.model, x, tf.tensor4d(noise, [B, zh, zw, zc]), { klWeight: o.klWeight, recLoss: o.recLoss });
    return { loss: l.loss, terms: { rec: l.rec, kl: l.kl } };
  }, { params: s.model.params, opt: s.opt, step: s.step + 1, lr, label: 'autoencoder training', kept: 'the last checkpoint is kept', hint: 'try a lower --lr' });
  s.step += 1;
  return { step: s.step, loss: r.loss, rec: r.terms.rec, kl: r.terms.kl, lr };
}

/**
 * Mean and std of the unscaled posterior samples of the first `count` training images
 * (noise from `seed`), over all latent values: scale = 1 / std, as SD's 0.18215.
 */
export function latentStats(model: KLModel, ds: ImageDataset, count: number, seed: number, batch = 64): { mean: number; std: number; images: number } {
  const n = Math.min(count, ds.size);
  if (n <= 0) throw new Error('latentStats: no images to measure the latent scale on');
  const rng = new Rng(seed);
  let sum = 0;
  let sumSq = 0;
  let k = 0;
  for (let s = 0; s < n; s += batch) {
    const m = Math.min(batch, n - s);
    const b = ds.readBatch(s, m);
    const z = tf.tidy(() => {
      const p = posterior(klMoments(model, tf.transpose(imagesToTensor(b.images, m, ds.imageSize, ds.channels), [0, 2, 3, 1]) as tf.Tensor4D));
      const noise = tf.tensor(rng.fillNormal(new Float32Array(p.mean.size)), p.mean.shape);
      return posteriorSample(p, noise);
    });
    const v = z.dataSync();
    z.dispose();
    for (let i = 0; i < v.length; i++) {
      sum += v[i];
      sumSq += v[i] * v[i];
    }
    k += v.length;
  }
  const mean = sum / k;
  const std = Math.sqrt(Math.max(0, sumSq / k - mean * mean) * (k / Math.max(1, k - 1)));
  if (!(std > 0)) throw new Error('latentStats: the latents have zero spread; the autoencoder did not train');
  return { mean, std, images: n };
}

/** Mean per-image PSNR (uint8, posterior mode) of images [start, start+count). */
export function reconstructionPSNR(model: KLModel, ds: ImageDataset, start: number, count: number, batch = 64): number {
  if (count <= 0) return NaN;
  const ae = klAutoencoder(model, 1, '0'.repeat(64));
  let total = 0;
  for (let s = start; s < start + count; s += batch) {
    const m = Math.min(batch, start + count - s);
    const b = ds.readBatch(s, m);
    const rec = tf.tidy(() => ae.decode(ae.encode(imagesToTensor(b.images, m, ds.imageSize, ds.channels))));
    const out = tensorToImages(rec);
    rec.dispose();
    const per = ds.imageSize * ds.imageSize * ds.channels;
    for (let i = 0; i < m; i++) total += psnr(b.images, out, i * per, per);
  }
  return total / count;
}

/** Training images of a dataset: all but the last `holdout`. */
export function trainCount(ds: ImageDataset, holdout: number): number {
  const n = ds.size - holdout;
  if (n < 1) throw new Error(`the dataset has ${ds.size} images: nothing left to train on after holding out ${holdout}`);
  return n;
}

/**
 * Trains (or resumes, or reuses) the autoencoder in `dir` on `ds`, whose content hash is
 * `datasetSha256`. Writes dir/vae-checkpoint.safetensors every ckptEvery steps, dir/loss.csv,
 * and at the end dir/vae.safetensors + dir/vae.json.
 */
export async function trainAutoencoder(
  dir: string, ds: ImageDataset, data: { sha256: string; path: string }, options: VAETrainOptions, hooks: VAETrainHooks = {},
): Promise<VAETrainResult> {
  const o = validateVAETrainOptions(options);
  const log = hooks.log ?? ((m: string) => process.stderr.write(m + '\n'));
  const c = o.config;
  if (ds.imageSize !== c.resolution || ds.channels !== c.inChannels) {
    throw new Error(`the autoencoder takes ${c.inChannels}x${c.resolution}x${c.resolution} images; the data has ${ds.channels}x${ds.imageSize}x${ds.imageSize}`);
  }
  const nTrain = trainCount(ds, o.holdout);
  const runHash = vaeRunHash(o, data.sha256);
  fs.mkdirSync(dir, { recursive: true });
  if (fs.existsSync(path.join(dir, VAE_MANIFEST))) {
    const m = readVAEManifest(dir);
    if (m.training.runHash === runHash) return { manifest: m, status: 'cached', step: o.steps };
  }
  const s = createVAETrainState(o);
  try {
    const resumed = loadCheckpoint(dir, s, runHash);
    if (resumed && !hooks.quiet) log(`[dit] resuming ${dir} at step ${s.step}`);
    const csv = path.join(dir, LOSS_CSV);
    truncateStepCsv(csv, 'step,loss,rec,kl,lr\n', s.step);
    const order = new EpochOrder(nTrain, o.seed);
    const bar = hooks.quiet ? null : progress(`train vae (${klParamCount(c).toLocaleString('en-US')} params)`, o.steps, { start: s.step });
    while (s.step < o.steps && !hooks.signal?.aborted) {
      const t0 = Date.now();
      const c0 = process.cpuUsage();
      const r = vaeTrainStep(s, ds, order);
      const cu = process.cpuUsage(c0);
      s.seconds += (Date.now() - t0) / 1000;
      s.cpuSeconds += (cu.user + cu.system) / 1e6;
      fs.appendFileSync(csv, `${r.step},${r.loss},${r.rec},${r.kl},${r.lr}\n`);
      bar?.update(s.step, `${o.recLoss} ${r.rec.toFixed(4)}, kl ${r.kl.toFixed(1)}`);
      if (s.step % o.ckptEvery === 0 || s.step === o.steps) saveCheckpoint(dir, s, runHash);
      hooks.onStep?.(r, s);
      await new Promise((res) => setImmediate(res)); // let signals and I/O through
    }
    if (s.step < o.steps) return { manifest: null, status: resumed ? 'resumed' : 'trained', step: s.step };
    bar?.done(`${(s.seconds / 60).toFixed(1)} min`);

    if (!hooks.quiet) log(`[dit] measuring the latent scale on ${Math.min(o.scaleImages, nTrain)} training images and the PSNR on ${o.holdout} held-out images`);
    const stats = latentStats(s.model, ds, Math.min(o.scaleImages, nTrain), derivedSeed(o.seed + 2));
    const scale = 1 / stats.std;
    const heldOut = reconstructionPSNR(s.model, ds, nTrain, o.holdout);
    const weights = encodeKLWeights(s.model, scale);
    const manifest = writeVAEFolder(dir, weights, {
      config: c,
      scale,
      latentStats: stats,
      weights: { params: klParamCount(c) },
      dataset: { path: data.path, sha256: data.sha256, images: ds.size, trainImages: nTrain, heldOut: o.holdout },
      training: {
        ...o, config: undefined, runHash, seconds: round(s.seconds), cpuSeconds: round(s.cpuSeconds),
        stepsPerSec: round(o.steps / Math.max(s.seconds, 1e-9)), finalRecLoss: lastRec(csv),
      } as VAEManifest['training'],
      psnr: { heldOut: round(heldOut), images: o.holdout },
      backend: tf.getBackend(),
      environment: computeEnvironment(),
      gitCommit: gitCommit(),
      created: new Date().toISOString(),
    });
    if (sha256Bytes(weights) !== manifest.weights.sha256) throw new Error('internal: weights hash mismatch');
    return { manifest, status: resumed ? 'resumed' : 'trained', step: s.step };
  } finally {
    disposeVAETrainState(s);
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Mean reconstruction loss over the last 50 logged steps. */
function lastRec(csv: string): number {
  const rows = fs.readFileSync(csv, 'utf8').trim().split('\n').slice(1).slice(-50);
  const v = rows.map((r) => Number(r.split(',')[2])).filter(Number.isFinite);
  return v.length ? round(v.reduce((a, b) => a + b, 0) / v.length) : NaN;
}
