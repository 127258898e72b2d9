// `dit latents build`: encode a dataset once into a latent cache that DiT training reads.
import * as path from 'path';
import { initBackend } from '../backend';
import { loadAutoencoder, openImageData } from '../autoencoder';
import { ensureLatentCache, LatentDType, PosteriorMode } from '../latents/cache';
import { parseArgs, UsageError } from '../util/args';
import { progress } from '../util/progress';
import { repoRoot } from '../util/paths';
import type { Command } from './command';

const USAGE = `usage: dit-kit latents build [--data DIR] [--vae DIR|identity] [--out DIR] [--posterior sample|mode]
                             [--seed S] [--dtype float32|float16] [--batch-size N] [--image-size N] [--verify] [--force]

Encodes every image and its horizontal flip (so flip augmentation stays exact in latent
space) into sharded files with a manifest. An up-to-date cache (same dataset content,
autoencoder weights, scale, posterior, seed and dtype) is reused; anything else rebuilds it.
An interrupted build resumes from its finished shards.
  --data DIR       default: the synthetic set in data/synthetic-32
  --vae DIR        default data/autoencoder/kl-f2; 'identity' caches pixels (pixel-space DiT)
  --out DIR        default data/latents/<data folder>-<autoencoder id>
  --posterior      sample (default, as DiT's train.py) or mode (the posterior mean)
  --verify         check the sha256 of every file of an existing cache before reusing it`;

const FLAGS = {
  data: 'string', vae: 'string', out: 'string', posterior: 'string', seed: 'seed', dtype: 'string', 'batch-size': 'count',
  'image-size': 'int', verify: 'boolean', force: 'boolean',
} as const;

export const latentsCommand: Command = {
  name: 'latents',
  summary: 'encode a dataset (and its flips) once into a latent cache for DiT training',
  usage: USAGE,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub !== 'build') throw new UsageError(sub ? `unknown subcommand '${sub}'` : 'a subcommand is required (build)');
    const { flags: f, positional } = parseArgs(rest, FLAGS);
    if (positional.length) throw new UsageError(`unexpected argument '${positional[0]}'`);
    const posterior = (f.posterior ?? 'sample') as PosteriorMode;
    if (posterior !== 'sample' && posterior !== 'mode') throw new UsageError(`--posterior must be sample or mode, got '${posterior}'`);
    const dtype = (f.dtype ?? 'float32') as LatentDType;
    if (dtype !== 'float32' && dtype !== 'float16') throw new UsageError(`--dtype must be float32 or float16, got '${dtype}'`);
    const seed = (f.seed as number | undefined) ?? 0;
    const batchSize = f['batch-size'] as number | undefined;
    if (batchSize !== undefined && batchSize <= 0) throw new UsageError(`--batch-size must be positive, got ${batchSize}`);
    await initBackend();
    const data = openImageData(f.data as string | undefined, { imageSize: f['image-size'] as number | undefined, log: (m) => process.stderr.write(m + '\n') });
    const ds = data.dataset;
    const vaeSpec = (f.vae as string | undefined) ?? path.join(repoRoot(), 'data', 'autoencoder', 'kl-f2');
    const ae = loadAutoencoder(vaeSpec, { imageSize: ds.imageSize, channels: ds.channels });
    try {
      const dir = (f.out as string | undefined) ?? path.join(repoRoot(), 'data', 'latents', `${path.basename(data.path).replace(/\.[^.]+$/, '')}-${ae.id}`);
      const bar = progress(`encode ${ae.id}`, ds.size, { unit: 'images' });
      const r = ensureLatentCache({
        dir, dataset: ds, datasetSha256: data.hash, datasetPath: data.path, ae, aePath: ae.kind === 'identity' ? null : path.resolve(vaeSpec),
        posterior, seed, dtype, batchSize, force: Boolean(f.force), verify: Boolean(f.verify),
        onProgress: (done) => bar.update(done),
      });
      const m = r.manifest;
      if (r.rebuilt) bar.done();
      console.log(`${r.rebuilt ? `built (${r.reason})` : 'up to date'}: ${dir}: ${m.count} images x 2 (flips) of [${m.shape.join(', ')}] ${m.dtype} latents, ` +
        `scale ${m.autoencoder.scale.toPrecision(5)}, ${m.shards.length} shard(s)${r.rebuilt ? `, ${m.build.seconds.toFixed(0)}s` : ''}`);
      return 0;
    } finally {
      ae.dispose();
    }
  },
};
