// `dit features`: train the default feature network; reference statistics of a dataset.
import * as path from 'path';
import { createHash } from 'crypto';
import { initBackend } from '../backend';
import { writeNpz } from '../io/npy';
import { EvalInput, openEvalInput } from '../eval/inputs';
import { referenceArrays, referenceFeatures } from '../eval/extract';
import {
  DEFAULT_TRAIN_OPTIONS, FeatureKind, defaultCnnDir, defaultCnnProblem, loadFeatureNet, readDefaultCnnManifest,
  trainAndSaveDefaultFeatureNet,
} from '../features';
import { parseArgs, UsageError } from '../util/args';
import { progress } from '../util/progress';
import type { Command } from './command';

const USAGE = `usage: dit-kit features train [--out DIR] [--force] [--steps N] [--seed S] [--batch-size N]
       dit-kit features stats DATA --out REF.npz [--features default|inception] [--inception-weights FILE]
                              [--default-cnn DIR] [--num N] [--image-size N] [--batch-size N] [--no-cache]

train  Train the kit's default feature network (a small CNN classifier) on the default
       synthetic dataset (generated first when missing) and store it with a manifest
       (dataset hash, seed, recipe, time, held-out accuracy on ${'10,000'} images of
       another seed, sha256) in --out (default data/features/default-cnn). Reproducible
       from --seed (default ${DEFAULT_TRAIN_OPTIONS.seed}); ${DEFAULT_TRAIN_OPTIONS.steps} steps of batch ${DEFAULT_TRAIN_OPTIONS.batchSize} by default.
       An intact stored network is kept unless --force.
stats  Features of a dataset (shard folder, CIFAR-10, image folder with --image-size, or an
       npz with arr_0) written as an ADM-style reference npz: mu, sigma, mu_s, sigma_s,
       the pool features (for precision/recall), feature_net and images_sha256.
       Cached in data/features/stats by images hash + network (--no-cache: not).
         --num N   only the first N images`;

const FLAGS = {
  out: 'string', force: 'boolean', steps: 'int', seed: 'seed', 'batch-size': 'count',
  features: 'string', 'inception-weights': 'string', 'default-cnn': 'string', num: 'int', 'image-size': 'int', 'no-cache': 'boolean',
} as const;

/** The first n images of an input, with a hash of its own. */
function firstImages(input: EvalInput, n: number): EvalInput {
  const images = input.images!;
  return {
    name: `${input.name} (first ${n})`,
    images: () => {
      const src = images();
      if (n > src.n) throw new UsageError(`--num ${n} is more than the ${src.n} images of ${input.name}`);
      return { ...src, n };
    },
    hash: input.hash ? () => createHash('sha256').update(`${input.hash!()}:first:${n}`).digest('hex') : undefined,
  };
}

async function train(f: Record<string, unknown>): Promise<number> {
  const dir = path.resolve((f.out as string | undefined) ?? defaultCnnDir());
  const problem = defaultCnnProblem(dir);
  if (!problem && !f.force) {
    const m = readDefaultCnnManifest(dir);
    console.log(`${dir} already holds the default feature network (held-out accuracy ${(100 * m.heldOut.accuracy).toFixed(2)}%, ` +
      `trained in ${m.train.wallSeconds.toFixed(0)} s); --force retrains it`);
    return 0;
  }
  await initBackend();
  const steps = (f.steps as number | undefined) ?? DEFAULT_TRAIN_OPTIONS.steps;
  const bar = progress('train default feature net', steps);
  const { net, manifest } = trainAndSaveDefaultFeatureNet({
    dir, steps, seed: f.seed as number | undefined, batchSize: f['batch-size'] as number | undefined,
    onStep: (s, _n, loss) => bar.update(s, `loss ${loss.toFixed(4)}`),
    log: (m) => process.stderr.write(m + '\n'),
  });
  net.dispose();
  console.log(`default feature network: held-out accuracy ${(100 * manifest.heldOut.accuracy).toFixed(2)}% ` +
    `(${manifest.heldOut.num} images, seed ${manifest.heldOut.seed}), trained in ${manifest.train.wallSeconds.toFixed(0)} s ` +
    `(${manifest.train.cpuSeconds.toFixed(0)} s CPU); ${dir}`);
  return 0;
}

async function stats(positional: string[], f: Record<string, unknown>): Promise<number> {
  if (positional.length !== 1) throw new UsageError('features stats needs one DATA argument');
  if (!f.out) throw new UsageError('--out REF.npz is required');
  const features = (f.features ?? 'default') as FeatureKind;
  if (features !== 'default' && features !== 'inception') throw new UsageError(`--features must be default or inception, got '${features}'`);
  let input = openEvalInput(positional[0], { imageSize: f['image-size'] as number | undefined });
  if (!input.images) throw new UsageError(`${positional[0]}: holds no images (arr_0)`);
  if (f.num !== undefined) input = firstImages(input, f.num as number);
  await initBackend();
  const net = loadFeatureNet({
    features, inceptionWeights: f['inception-weights'] as string | undefined, defaultCnnDir: f['default-cnn'] as string | undefined,
    log: (m) => process.stderr.write(m + '\n'),
  });
  try {
    const bars: Array<ReturnType<typeof progress>> = [];
    const r = referenceFeatures(input, net, {
      batchSize: f['batch-size'] as number | undefined, cacheDir: f['no-cache'] ? null : undefined,
      onProgress: (done, total) => {
        if (!bars.length) bars.push(progress(`features (${net.id})`, total, { unit: 'images' }));
        bars[0].update(done);
      },
    });
    bars[0]?.done();
    writeNpz(f.out as string, referenceArrays(r));
    console.log(`wrote ${f.out}: statistics of ${r.n} images (${net.poolDim}-d pool, ${net.spatialDim}-d spatial) from ${net.id}` +
      (r.cached ? ' (from the cache)' : ''));
    return 0;
  } finally {
    net.dispose();
  }
}

export const featuresCommand: Command = {
  name: 'features',
  summary: 'train the default feature network; reference statistics (mu, sigma, mu_s, sigma_s) of a dataset',
  usage: USAGE,
  async run(argv) {
    const [sub, ...rest] = argv;
    const { flags, positional } = parseArgs(rest, FLAGS);
    if (sub === 'train') {
      if (positional.length) throw new UsageError(`unexpected argument '${positional[0]}'`);
      return train(flags);
    }
    if (sub === 'stats') return stats(positional, flags);
    throw new UsageError(sub ? `unknown subcommand '${sub}' (train or stats)` : 'expected a subcommand: train or stats');
  },
};
