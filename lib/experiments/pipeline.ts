// Builds what a sweep needs from an experiment config: the dataset (generated when
// missing), the autoencoder and the training source in its space, the feature network
// and the reference statistics, and the decode/evaluate functions.
import * as path from 'path';
import { ensureSyntheticDataset } from '../data/store';
import { ImageDataset, pixelSource } from '../data/dataset';
import { Autoencoder, identityAutoencoder, klConfig, loadAutoencoder } from '../autoencoder';
import { decodeLatents } from '../autoencoder/decode';
import { DEFAULT_VAE_TRAIN, trainAutoencoder, VAETrainOptions } from '../autoencoder/train';
import { ensureLatentCache, latentTrainingSource } from '../latents/cache';
import { TrainingSource } from '../train/source';
import { ensureDefaultFeatureNet } from '../features/default_store';
import { FeatureNet } from '../features/network';
import { evaluateSamples } from '../eval/evaluate';
import { datasetInput, EvalInput, imagesInput } from '../eval/inputs';
import { referenceFeatures } from '../eval/extract';
import { repoRoot } from '../util/paths';
import { ExperimentConfig } from './config';
import { Metrics, Pipeline } from './sweep';

export interface BuiltPipeline extends Pipeline {
  dataset: ImageDataset;
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

export async function buildPipeline(e: ExperimentConfig, log: (m: string) => void = (m) => process.stderr.write(`[pipeline] ${m}\n`)): Promise<BuiltPipeline> {
  const notes: string[] = [];
  // Data: one folder per (size, count, seed), so presets never overwrite each other's data.
  const dataDir = path.join(repoRoot(), 'data', `synthetic-${e.data.size}-n${e.data.num}-s${e.data.seed}`);
  const data = ensureSyntheticDataset({ dir: dataDir, num: e.data.num, seed: e.data.seed, size: e.data.size });
  notes.push(`data: ${data.regenerated ? `generated (${data.reason})` : 'cached'} ${dataDir} (${data.dataset.size} images)`);
  const dataset = data.dataset;
  const dataId = `synthetic-${e.data.size}-n${e.data.num}-s${e.data.seed}-${data.manifest.shard.sha256.slice(0, 12)}`;

  // Autoencoder: pixel space (identity), or the kit's KL autoencoder trained on this data
  // (cached per data, factor, steps and seed) with a latent cache of image + flip.
  let ae: Autoencoder;
  let source: TrainingSource;
  if (e.autoencoder.kind === 'identity') {
    ae = identityAutoencoder(dataset.imageSize, dataset.channels);
    source = pixelSource(dataset, `${dataId}-identity`);
    notes.push('autoencoder: identity (pixel space, values in [-1, 1])');
  } else {
    const factor = e.autoencoder.factor ?? 2;
    const vaeOpts: VAETrainOptions = {
      ...DEFAULT_VAE_TRAIN, config: klConfig(factor), steps: e.autoencoder.steps ?? DEFAULT_VAE_TRAIN.steps, seed: e.autoencoder.seed ?? 0,
    };
    const vaeDir = path.join(repoRoot(), 'data', 'autoencoder', `kl-f${factor}-${dataId}-steps${vaeOpts.steps}-s${vaeOpts.seed}`);
    const r = await trainAutoencoder(vaeDir, dataset, { sha256: data.manifest.shard.sha256, path: dataDir }, vaeOpts, { log });
    ae = loadAutoencoder(vaeDir);
    const m = r.manifest;
    notes.push(`autoencoder: KL factor ${factor}, ${r.status} ${vaeDir}${m ? ` (held-out PSNR ${m.psnr.heldOut.toFixed(2)} dB, latent scale ${ae.scale.toFixed(4)})` : ''}`);
    const latDir = path.join(repoRoot(), 'data', 'latents', `${dataId}-${ae.id}`);
    const lat = ensureLatentCache({ dir: latDir, dataset, datasetSha256: data.manifest.shard.sha256, datasetPath: dataDir, ae, aePath: vaeDir });
    notes.push(`latents: ${lat.rebuilt ? 'built' : 'cached'} ${latDir}`);
    source = latentTrainingSource(latDir);
  }
  const s = dataset.imageSize;
  const decode = (latents: Float32Array, shape: [number, number, number, number]) => decodeLatents(ae, latents, shape[0]);

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
    throw new Error(`${e.name}: eval.features 'inception' needs the published weights; run dit evaluate --features inception --inception-weights FILE on sample npz files instead`);
  }
  const refIn = datasetInput(prefix(dataset, e.eval.refImages), `${dataId} (first ${e.eval.refImages})`);
  const ref = referenceFeatures(refIn, net, { log });
  const refEval: EvalInput = { name: refIn.name, pool: ref.pool, poolStats: ref.poolStats, spatialStats: ref.spatialStats, featureNet: net.id };
  notes.push(`reference statistics: ${ref.n} images, ${ref.cached ? 'cached' : 'computed'}`);

  const evaluate = async (images: Uint8Array, n: number): Promise<Metrics> => {
    const r = await evaluateSamples(refEval, imagesInput(images, n, s, s, 'samples'), { net, cacheDir: null });
    return { fid: r.fid, sfid: r.sfid, inception_score: r.inception_score, precision: r.precision, recall: r.recall };
  };
  return { source, decode, evaluate, featureNet: net.id, dataset, notes, dispose: () => { net.dispose(); ae.dispose(); } };
}
