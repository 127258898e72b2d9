// Builds what a sweep needs from an experiment config: the dataset (generated when
// missing), the autoencoder and the training source in its space, the feature network
// and the reference statistics, and the decode/evaluate functions.
import * as path from 'path';
import { ensureSyntheticDataset, isShardFolder, openShardDataset, readManifest } from '../data/store';
import { ImageDataset, pixelSource, toModelInput } from '../data/dataset';
import * as tf from '@tensorflow/tfjs-core';
import { isStudySpace, studyMetrics, studyReference } from '../eval/space';
import { validationLoss, validationSet } from '../train/validation';
import { Autoencoder, identityAutoencoder, klConfig, loadAutoencoder } from '../autoencoder';
import { decodeLatents } from '../autoencoder/decode';
import { DEFAULT_VAE_TRAIN, trainAutoencoder, vaeRunHash, VAETrainOptions } from '../autoencoder/train';
import { ensureLatentCache, latentTrainingSource } from '../latents/cache';
import { TrainingSource } from '../train/source';
import { ensureDefaultFeatureNet } from '../features/default_store';
import { loadFeatureNet } from '../features';
import { FeatureNet } from '../features/network';
import { evaluateSamples } from '../eval/evaluate';
import { datasetInput, EvalInput, imagesInput } from '../eval/inputs';
import { referenceFeatures } from '../eval/extract';
import { repoRoot } from '../util/paths';
import { progress } from '../util/progress';
import { ExperimentConfig } from './config';
import { Pipeline } from './sweep';

export interface BuiltPipeline extends Pipeline {
  dataset: ImageDataset;
  /** n images that nothing trained on and that are not in the reference set (calibration, validation). */
  heldOut(n: number): { images: Uint8Array; labels: Int32Array };
  /** uint8 NHWC images -> latents [n, C, H, W] in model space (the autoencoder's posterior mode, scaled). */
  encode(images: Uint8Array, n: number): Float32Array;
  /** Where each piece came from (generated, cached, trained), for the run log. */
  notes: string[];
  dispose(): void;
}

/** The first `n` images of a dataset, as a dataset (reference statistics use a fixed prefix). */
function prefix(ds: ImageDataset, n: number): ImageDataset {
  const size = Math.min(n, ds.size);
  return {
    size,
    numClasses: ds.numClasses,
    classNames: ds.classNames,
    imageSize: ds.imageSize,
    channels: ds.channels,
    readBatch: (start, count) => ds.readBatch(start, count),
    readIndices: (idx) => ds.readIndices(idx),
    allLabels: () => ds.allLabels().subarray(0, size),
  };
}

export interface TrainingData {
  dataset: ImageDataset;
  dataDir: string;
  /** Identifies the data (and its hash) in provenance and cache keys. */
  dataId: string;
  ae: Autoencoder;
  /** What DiT trains on: pixels in [-1, 1] or scaled latents. */
  source: TrainingSource;
  /** Latents [N, C, H, W] -> uint8 NHWC images. */
  decode(latents: Float32Array, shape: [number, number, number, number]): Uint8Array;
  notes: string[];
}

const defaultLog = (m: string) => process.stderr.write(`[pipeline] ${m}\n`);

/** The dataset (generated when missing), the autoencoder and the training source in its space. */
export async function prepareTrainingData(e: ExperimentConfig, log: (m: string) => void = defaultLog): Promise<TrainingData> {
  const notes: string[] = [];
  let dataset: ImageDataset;
  let dataDir: string;
  let sha: string;
  if (e.data.kind === 'synthetic') {
    // One folder per (size, count, seed), so presets never overwrite each other's data.
    dataDir = path.join(repoRoot(), 'data', `synthetic-${e.data.size}-n${e.data.num}-s${e.data.seed}`);
    const data = ensureSyntheticDataset({ dir: dataDir, num: e.data.num, seed: e.data.seed, size: e.data.size });
    notes.push(`data: ${data.regenerated ? `generated (${data.reason})` : 'cached'} ${dataDir} (${data.dataset.size} images)`);
    dataset = data.dataset;
    sha = data.manifest.shard.sha256;
  } else {
    // A shard folder made by `dit data pack` from an image folder, CIFAR-10 or ADM npz batches.
    dataDir = path.isAbsolute(e.data.path) ? e.data.path : path.join(repoRoot(), e.data.path);
    if (!isShardFolder(dataDir)) throw new Error(`${e.name}: ${dataDir} is not a dataset shard folder; make one with: npx dit-kit data pack SOURCE --out ${e.data.path} --size ${e.data.size}`);
    const ds = openShardDataset(dataDir);
    if (ds.imageSize !== e.data.size) throw new Error(`${dataDir} holds ${ds.imageSize}x${ds.imageSize} images; the experiment wants ${e.data.size}`);
    dataset = ds;
    sha = readManifest(dataDir).shard.sha256;
    notes.push(`data: ${dataDir} (${ds.size} images)`);
  }
  const dataId = `${path.basename(dataDir)}-${sha.slice(0, 12)}`;

  // Autoencoder: pixel space (identity), or the kit's KL autoencoder trained on this data
  // (cached per data, factor, steps and seed) with a latent cache of image + flip.
  let ae: Autoencoder;
  let source: TrainingSource;
  if (e.autoencoder.kind === 'identity') {
    ae = identityAutoencoder(dataset.imageSize, dataset.channels);
    source = pixelSource(dataset, `${dataId}-identity`);
    notes.push('autoencoder: identity (pixel space, values in [-1, 1])');
  } else {
    let aeDir: string;
    if (e.autoencoder.weights) {
      aeDir = path.isAbsolute(e.autoencoder.weights) ? e.autoencoder.weights : path.join(repoRoot(), e.autoencoder.weights);
      ae = loadAutoencoder(aeDir, { imageSize: dataset.imageSize, channels: dataset.channels });
      notes.push(`autoencoder: KL from ${aeDir} (latent scale ${ae.scale.toFixed(5)})`);
    } else {
      const factor = e.autoencoder.factor ?? 2;
      const vaeOpts: VAETrainOptions = {
        ...DEFAULT_VAE_TRAIN, config: klConfig(factor, { resolution: dataset.imageSize, inChannels: dataset.channels }),
        steps: e.autoencoder.steps ?? DEFAULT_VAE_TRAIN.steps, seed: e.autoencoder.seed ?? 0,
      };
      // Named by the run hash (data + every training option): a changed recipe gets its own folder.
      aeDir = path.join(repoRoot(), 'data', 'autoencoder', `kl-f${factor}-${dataId}-${vaeRunHash(vaeOpts, sha).slice(0, 12)}`);
      const r = await trainAutoencoder(aeDir, dataset, { sha256: sha, path: dataDir }, vaeOpts, { log });
      ae = loadAutoencoder(aeDir);
      const m = r.manifest;
      notes.push(`autoencoder: KL factor ${factor}, ${r.status} ${aeDir}${m ? ` (held-out PSNR ${m.psnr.heldOut.toFixed(2)} dB, latent scale ${ae.scale.toFixed(4)})` : ''}`);
    }
    const latDir = path.join(repoRoot(), 'data', 'latents', `${dataId}-${ae.id}`);
    const bar = progress('encode latents (image + flip)', dataset.size, { unit: 'images' });
    const lat = ensureLatentCache({
      dir: latDir, dataset, datasetSha256: sha, datasetPath: dataDir, ae, aePath: aeDir,
      onProgress: (done) => bar.update(done),
    });
    notes.push(`latents: ${lat.rebuilt ? 'built' : 'cached'} ${latDir}`);
    source = latentTrainingSource(latDir);
  }
  const decode = (latents: Float32Array, shape: [number, number, number, number]) => decodeLatents(ae, latents, shape[0]);
  return { dataset, dataDir, dataId, ae, source, decode, notes };
}

export async function buildPipeline(e: ExperimentConfig, log: (m: string) => void = defaultLog): Promise<BuiltPipeline> {
  const { dataset, dataId, ae, source, decode, notes } = await prepareTrainingData(e, log);
  const s = dataset.imageSize;

  // Feature network and reference statistics of the first refImages training images.
  let net: FeatureNet;
  if (e.eval.features === 'default') {
    const steps = e.eval.featureNetSteps;
    const dir = steps ? path.join(repoRoot(), 'data', 'features', `default-cnn-steps${steps}`) : undefined;
    const ens = ensureDefaultFeatureNet({ dir, steps, log });
    net = ens.net;
    const acc = ens.manifest.heldOut.accuracy;
    notes.push(`features: default CNN${steps ? ` (short run of ${steps} steps)` : ''}, held-out accuracy ${(100 * acc).toFixed(1)}%${ens.trained ? ', trained now' : ', cached'}`);
  } else {
    // The FID Inception-v3 (pytorch-fid / ADM); its weights file is supplied by the user.
    net = loadFeatureNet({ features: 'inception', log });
    notes.push('features: FID Inception-v3 (pt_inception-2015-12-05)');
  }
  // (validateExperiment checks refSeed against the data and the space.)
  // Reference images: a held-out synthetic set (eval.refSeed) that neither the DiTs nor the
  // feature network trained on, else the first refImages training images.
  const held = heldOutCount(e);
  let refData: ImageDataset = dataset;
  let refName = `${dataId} (first ${e.eval.refImages})`;
  const heldStart = e.eval.refImages;
  if (e.eval.refSeed !== undefined) {
    const num = e.eval.refImages + held;
    const dir = path.join(repoRoot(), 'data', `synthetic-${e.data.size}-n${num}-s${e.eval.refSeed}`);
    const r = ensureSyntheticDataset({ dir, num, seed: e.eval.refSeed, size: e.data.size });
    refData = r.dataset;
    refName = `synthetic seed ${e.eval.refSeed} (first ${e.eval.refImages} of ${num}, held out)`;
    notes.push(`reference data: ${r.regenerated ? 'generated' : 'cached'} ${dir}`);
  }
  const heldOut = (n: number) => {
    if (heldStart + n > refData.size) throw new Error(`${e.name}: ${n} held-out images requested, ${refData.size - heldStart} available`);
    const b = refData.readIndices(Int32Array.from({ length: n }, (_, i) => heldStart + i));
    return { images: b.images, labels: b.labels };
  };
  const refIn = datasetInput(prefix(refData, e.eval.refImages), refName);
  const ref = referenceFeatures(refIn, net, { log });
  const refEval: EvalInput = { name: refIn.name, pool: ref.pool, poolStats: ref.poolStats, spatialStats: ref.spatialStats, featureNet: net.id };
  notes.push(`reference statistics: ${ref.n} images, ${ref.cached ? 'cached' : 'computed'}`);

  const encode = (images: Uint8Array, n: number): Float32Array => {
    const [c, h, w] = ae.latentShape;
    const out = new Float32Array(n * c * h * w);
    for (let i = 0; i < n; i += 128) {
      const b = Math.min(128, n - i);
      const z = tf.tidy(() => ae.encode(tf.tensor4d(toModelInput(images.subarray(i * s * s * 3, (i + b) * s * s * 3), b, s), [b, 3, s, s])).dataSync() as Float32Array);
      out.set(z, i * c * h * w);
    }
    return out;
  };

  let evaluate: Pipeline['evaluate'];
  let featureNet = net.id;
  if (isStudySpace(e.eval.space)) {
    const study = studyReference(net, ref, refData.readBatch(0, e.eval.refImages).images, s, s, e.eval.space);
    featureNet = study.space.id;
    const px = study.space.pixels;
    notes.push(`primary feature space: ${study.space.id} (z-scored CNN pool || ${px.meanGrid}x${px.meanGrid}x3 pixel means${px.stdGrid === null ? '' : ` || ${px.stdGrid}x${px.stdGrid}x3 pixel stds`}, ${study.space.dim}-d)`);
    evaluate = async (images, n, labels) => studyMetrics(study, images, n, s, s, { labels, bootstrap: e.eval.bootstrap ?? 0, seed: e.eval.seed });
  } else {
    evaluate = async (images, n) => {
      const r = await evaluateSamples(refEval, imagesInput(images, n, s, s, 'samples'), { net, cacheDir: null });
      return { fid: r.fid, sfid: r.sfid, inception_score: r.inception_score, precision: r.precision, recall: r.recall };
    };
  }

  let validate: Pipeline['validate'];
  if (e.eval.valLatents) {
    const v = heldOut(e.eval.valLatents);
    const set = validationSet(encode(v.images, e.eval.valLatents), v.labels, source.shape, 1000, e.eval.seed);
    notes.push(`validation loss: ${set.n} held-out latents, fixed timestep grid and noise`);
    validate = (model, diffusion) => validationLoss(model, diffusion, set);
  }
  return { source, decode, encode, evaluate, validate, featureNet, dataset, heldOut, notes, dispose: () => { net.dispose(); ae.dispose(); } };
}

/** Held-out images beyond the reference set: at least 1000 (notebooks compare samples with them), more when an evaluation needs more. */
export function heldOutCount(e: ExperimentConfig): number {
  return Math.max(1000, e.eval.numSamples, e.eval.finalNumSamples ?? 0, e.eval.valLatents ?? 0);
}
