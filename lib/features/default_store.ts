// The default feature network on disk: data/features/default-cnn/ holds weights.safetensors
// and manifest.json (architecture, dataset, seed, training recipe and time, held-out
// accuracy, sha256 of the weights). ensureDefaultFeatureNet() loads it, or trains it from
// the seed when it is missing or stale (another version, architecture or dataset, or
// weights that do not match their sha256). Written weights first, manifest last, each
// atomically, so an interrupted run never leaves a folder that looks complete.
import * as fs from 'fs';
import * as path from 'path';
import { backendInfo } from '../backend';
import { SYNTHETIC_VERSION, SyntheticDataset } from '../data/synthetic';
import { ensureSyntheticDataset } from '../data/store';
import { readTensorFile } from '../io/tensor_file';
import { encodeSafetensors } from '../io/safetensors';
import { sha256File } from '../util/hash';
import { canonicalJson, computeEnvironment, gitCommit } from '../util/provenance';
import { readJsonFile, repoRoot, writeManifestFolder } from '../util/paths';
import { convImplInUse } from '../ops/conv';
import { DEFAULT_CNN_CONFIG, DEFAULT_CNN_VERSION, DefaultCnn, DefaultCnnConfig } from './default_cnn';
import { DefaultCnnTrainOptions, classifierAccuracy, trainDefaultCnn } from './default_train';

export const DEFAULT_CNN_FORMAT = 'dit-kit-default-cnn/1';
export const WEIGHTS_FILE = 'weights.safetensors';
export const MANIFEST_FILE = 'manifest.json';

/** The dataset the default network is trained on: the kit's default synthetic set. */
export const DEFAULT_CNN_DATASET = { generator: 'dit-kit-synthetic', version: SYNTHETIC_VERSION, seed: 0, num: 50000, size: 32 };
/** Held-out images: the same generator with another seed, never seen in training. */
export const HELD_OUT = { seed: 1, num: 10000 };
/** The accuracy the default network is meant to reach on HELD_OUT. */
export const TARGET_ACCURACY = 0.95;

export interface DefaultCnnManifest {
  format: typeof DEFAULT_CNN_FORMAT;
  version: number;
  config: DefaultCnnConfig;
  dataset: typeof DEFAULT_CNN_DATASET & { sha256: string };
  heldOut: { seed: number; num: number; accuracy: number };
  train: Record<string, unknown> & { seed: number; steps: number; wallSeconds: number; cpuSeconds: number };
  weights: { file: string; sha256: string };
  gitCommit: string;
  created: string;
}

export function defaultCnnDir(): string {
  return path.join(repoRoot(), 'data', 'features', 'default-cnn');
}

const ID_PREFIX = 'default-cnn-';

/** The network id used to key cached statistics: version and weights hash. */
export function defaultCnnId(m: Pick<DefaultCnnManifest, 'version' | 'weights'>): string {
  return `${ID_PREFIX}v${m.version}-${m.weights.sha256.slice(0, 12)}`;
}

/** Whether a feature-network id names a default CNN (of any version and weights). */
export function isDefaultCnnId(id: string | undefined): boolean {
  return !!id?.startsWith(ID_PREFIX);
}

/** Why the folder does not hold a usable default network, or null when it does. */
export function defaultCnnProblem(dir: string): string | null {
  const file = path.join(dir, MANIFEST_FILE);
  if (!fs.existsSync(file)) return `no ${MANIFEST_FILE} in ${dir}`;
  let m: DefaultCnnManifest;
  try {
    m = readJsonFile(file) as DefaultCnnManifest;
  } catch (err) {
    return (err as Error).message;
  }
  if (m.format !== DEFAULT_CNN_FORMAT) return `${file}: format ${m.format}, expected ${DEFAULT_CNN_FORMAT}`;
  if (m.version !== DEFAULT_CNN_VERSION) return `network version ${m.version} != ${DEFAULT_CNN_VERSION}`;
  if (canonicalJson(m.config) !== canonicalJson(DEFAULT_CNN_CONFIG)) return 'the architecture changed';
  const { sha256: _ignored, ...spec } = m.dataset ?? {};
  if (canonicalJson(spec) !== canonicalJson(DEFAULT_CNN_DATASET)) return 'trained on another dataset than the current default synthetic set';
  const weights = path.join(dir, m.weights?.file ?? WEIGHTS_FILE);
  if (!fs.existsSync(weights)) return `${weights} is missing`;
  if (sha256File(weights) !== m.weights.sha256) return `${weights} does not match the sha256 in the manifest`;
  return null;
}

export function readDefaultCnnManifest(dir: string): DefaultCnnManifest {
  return readJsonFile(path.join(dir, MANIFEST_FILE)) as DefaultCnnManifest;
}

/** Loads the network from a folder; throws with the reason when it is missing or stale. */
export function loadDefaultFeatureNet(dir = defaultCnnDir()): { net: DefaultCnn; manifest: DefaultCnnManifest } {
  const problem = defaultCnnProblem(dir);
  if (problem) throw new Error(`no usable default feature network in ${dir}: ${problem}; train it with \`npx dit-kit features train\``);
  const manifest = readDefaultCnnManifest(dir);
  const weights = readTensorFile(path.join(dir, manifest.weights.file)).tensors;
  return { net: new DefaultCnn(weights, manifest.config, defaultCnnId(manifest)), manifest };
}

/** Writes weights and manifest (manifest last); returns the manifest. */
export function saveDefaultFeatureNet(dir: string, weights: Parameters<typeof encodeSafetensors>[0], info: Omit<DefaultCnnManifest, 'format' | 'version' | 'weights' | 'gitCommit' | 'created'>): DefaultCnnManifest {
  const bytes = encodeSafetensors(weights, { format: DEFAULT_CNN_FORMAT });
  return writeManifestFolder(dir, { data: WEIGHTS_FILE, manifest: MANIFEST_FILE }, bytes, (w): DefaultCnnManifest => ({
    format: DEFAULT_CNN_FORMAT,
    version: DEFAULT_CNN_VERSION,
    ...info,
    weights: { file: w.file, sha256: w.sha256 },
    gitCommit: gitCommit(),
    created: new Date().toISOString(),
  }));
}

export interface EnsureDefaultOptions extends DefaultCnnTrainOptions {
  dir?: string;
  /** Retrain even when an intact network is cached. */
  force?: boolean;
  /** Progress and notices (default: stderr). */
  log?: (msg: string) => void;
}

export interface EnsuredFeatureNet {
  net: DefaultCnn;
  manifest: DefaultCnnManifest;
  trained: boolean;
  /** Why it was trained, when it was. */
  reason?: string;
}

/**
 * Trains the default network on the default synthetic dataset (generated first if
 * needed), measures its held-out accuracy and stores it.
 */
export function trainAndSaveDefaultFeatureNet(opts: EnsureDefaultOptions = {}): { net: DefaultCnn; manifest: DefaultCnnManifest } {
  const dir = opts.dir ?? defaultCnnDir();
  const log = opts.log ?? ((m: string) => process.stderr.write(m + '\n'));
  const data = ensureSyntheticDataset({ num: DEFAULT_CNN_DATASET.num, seed: DEFAULT_CNN_DATASET.seed, size: DEFAULT_CNN_DATASET.size });
  if (data.regenerated) log(`generated the default synthetic dataset (${data.reason})`);
  const t0 = Date.now();
  const cpu0 = process.cpuUsage();
  let lastLog = 0;
  const result = trainDefaultCnn(data.dataset, {
    ...opts,
    onStep: (step, steps, loss) => {
      if (opts.onStep) return opts.onStep(step, steps, loss);
      if (Date.now() - lastLog > 10000 || step === steps) {
        lastLog = Date.now();
        log(`default feature net: step ${step}/${steps}, loss ${loss.toFixed(4)}, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      }
    },
  });
  const cpu = process.cpuUsage(cpu0);
  const wallSeconds = (Date.now() - t0) / 1000;
  const id = 'default-cnn-unsaved';
  const trainedNet = new DefaultCnn(result.weights, result.config, id);
  let accuracy: number;
  try {
    accuracy = classifierAccuracy(trainedNet, new SyntheticDataset({ num: HELD_OUT.num, seed: HELD_OUT.seed, size: DEFAULT_CNN_DATASET.size }));
  } finally {
    trainedNet.dispose();
  }
  saveDefaultFeatureNet(dir, result.weights, {
    config: result.config,
    dataset: { ...DEFAULT_CNN_DATASET, sha256: data.manifest.shard.sha256 },
    heldOut: { ...HELD_OUT, accuracy },
    train: {
      ...result.recipe, finalLoss: result.finalLoss, wallSeconds, cpuSeconds: (cpu.user + cpu.system) / 1e6,
      backend: backendInfo()?.name ?? 'unknown', conv: convImplInUse(), environment: computeEnvironment(),
    },
  });
  log(`default feature net: held-out accuracy ${(100 * accuracy).toFixed(2)}% on ${HELD_OUT.num} images (seed ${HELD_OUT.seed}), ` +
    `trained in ${wallSeconds.toFixed(0)} s; saved to ${dir}`);
  if (accuracy < TARGET_ACCURACY) log(`warning: held-out accuracy is below the ${100 * TARGET_ACCURACY}% the default network is meant to reach`);
  return loadDefaultFeatureNet(dir);
}

/** The cached default network, trained first when it is missing or stale. */
export function ensureDefaultFeatureNet(opts: EnsureDefaultOptions = {}): EnsuredFeatureNet {
  const dir = opts.dir ?? defaultCnnDir();
  const reason = opts.force ? 'forced' : defaultCnnProblem(dir);
  if (reason === null) return { ...loadDefaultFeatureNet(dir), trained: false };
  const log = opts.log ?? ((m: string) => process.stderr.write(m + '\n'));
  log(`training the default feature network (${reason}); it is cached in ${dir} afterwards`);
  return { ...trainAndSaveDefaultFeatureNet({ ...opts, dir, log }), trained: true, reason };
}
