import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend';
import { Autoencoder, createKL, datasetHash, identityAutoencoder, imagesToTensor, klAutoencoder, klConfig } from '../lib/autoencoder';
import { MemoryDataset, flipImage, toModelInput } from '../lib/data/dataset';
import {
  LatentBuildOptions, ensureLatentCache, latentCacheStaleness, latentCacheKey, latentNoise, latentTrainingSource, openLatentCache,
} from '../lib/latents/cache';
import { ditConfig } from '../lib/model/config';
import { DEFAULT_TRAIN, train, closeRun } from '../lib/train/trainer';
import { flipW } from '../lib/train/source';
import { Rng } from '../lib/util/rng';
import { sampleCommand } from '../lib/cli/sample';
import { decodePng } from '../lib/data/png';

const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), p));

function randomImages(n: number, seed: number, size = 8): MemoryDataset {
  const rng = new Rng(seed);
  const images = new Uint8Array(n * size * size * 3);
  for (let i = 0; i < images.length; i++) images[i] = rng.int(256);
  return new MemoryDataset(images, Int32Array.from({ length: n }, (_, i) => i % 3), size, 3, ['a', 'b', 'c']);
}

function tinyKL(seed = 0, sha = 'cd'.repeat(32)): Autoencoder {
  return klAutoencoder(createKL(klConfig(2, { resolution: 8, ch: 8, normGroups: 4 }), seed), 0.7, sha);
}

function build(dir: string, ds: MemoryDataset, ae: Autoencoder, over: Partial<LatentBuildOptions> = {}) {
  return ensureLatentCache({ dir, dataset: ds, datasetSha256: datasetHash(ds), datasetPath: 'memory', ae, shardSize: 4, batchSize: 3, ...over });
}

/** Encodes image i of ds, flipped or not, on its own. */
function encodeOne(ae: Autoencoder, ds: MemoryDataset, i: number, flip: boolean, noise?: Float32Array): Float32Array {
  const b = ds.readBatch(i, 1);
  if (flip) flipImage(b.images, 0, ds.imageSize, 3);
  return tf.tidy(() => {
    const x = imagesToTensor(b.images, 1, ds.imageSize, 3);
    const z = ae.encode(x, noise ? { noise: tf.tensor4d(noise, [1, ...ae.latentShape]) } : {});
    return z;
  }).dataSync() as Float32Array;
}

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol * (1 + Math.abs(b[i])), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

test.before(async () => {
  await initBackend({ quiet: true });
});

test('identity cache: pixels in [-1, 1], flipped records are the mirrored images, labels kept', () => {
  const dir = tmp('lat-id-');
  const ds = randomImages(10, 1);
  const r = build(dir, ds, identityAutoencoder(8));
  assert.equal(r.rebuilt, true);
  assert.equal(r.manifest.shards.length, 3);
  assert.deepEqual(r.manifest.shape, [3, 8, 8]);
  const src = latentTrainingSource(dir);
  assert.deepEqual(src.shape, [3, 8, 8]);
  assert.equal(src.size, 10);
  assert.equal(src.numClasses, 3);
  const idx = [9, 0, 5, 4, 5];
  const flips = Uint8Array.from([1, 0, 1, 0, 0]);
  const got = src.read(idx, flips);
  const per = 3 * 64;
  idx.forEach((i, k) => {
    const want = toModelInput(ds.readBatch(i, 1).images, 1, 8, 3);
    if (flips[k]) flipW(want, 0, [3, 8, 8]);
    assert.deepEqual(Array.from(got.x.subarray(k * per, (k + 1) * per)), Array.from(want), `image ${i}`);
    assert.equal(got.y[k], i % 3);
  });
  assert.deepEqual(Array.from(src.read([2]).x), Array.from(src.read([2], Uint8Array.from([0])).x));
});

test('KL cache: flipped latents match encoding the flipped image (mode and sampled posterior)', () => {
  const ds = randomImages(6, 2);
  const ae = tinyKL();
  const per = 4 * 4 * 4;
  const mode = tmp('lat-mode-');
  build(mode, ds, ae, { posterior: 'mode' });
  const cache = openLatentCache(mode, { verify: true });
  for (const i of [0, 3, 5]) {
    close(cache.read([i]).x, encodeOne(ae, ds, i, false), 1e-5, `mode latent ${i}`);
    close(cache.read([i], [1]).x, encodeOne(ae, ds, i, true), 1e-5, `mode flipped latent ${i}`);
  }
  const sample = tmp('lat-sample-');
  build(sample, ds, ae, { posterior: 'sample', seed: 3 });
  const s = openLatentCache(sample);
  for (const i of [1, 4]) {
    close(s.read([i]).x, encodeOne(ae, ds, i, false, latentNoise(3, i, 0, per)), 1e-5, `sampled latent ${i}`);
    close(s.read([i], [1]).x, encodeOne(ae, ds, i, true, latentNoise(3, i, 1, per)), 1e-5, `sampled flipped latent ${i}`);
  }
  // A flipped latent is not the flip of the latent: that is why both are stored.
  const z = cache.read([0]).x;
  flipW(z, 0, [4, 4, 4]);
  assert.ok(z.some((v, j) => Math.abs(v - cache.read([0], [1]).x[j]) > 1e-3));
  ae.dispose();
});

test('cache reused when nothing changed, rebuilt when the dataset or the autoencoder changes', () => {
  const dir = tmp('lat-key-');
  const ds = randomImages(5, 3);
  const ae = tinyKL(0);
  assert.equal(build(dir, ds, ae).rebuilt, true);
  const again = build(dir, ds, ae);
  assert.equal(again.rebuilt, false);
  const other = randomImages(5, 4);
  const r1 = build(dir, other, ae);
  assert.equal(r1.rebuilt, true);
  assert.match(r1.reason!, /^dataset changed/);
  const ae2 = tinyKL(1, 'ef'.repeat(32));
  const r2 = build(dir, other, ae2);
  assert.equal(r2.rebuilt, true);
  assert.match(r2.reason!, /^autoencoder changed/);
  assert.equal(build(dir, other, ae2).rebuilt, false);
  const r3 = build(dir, other, ae2, { dtype: 'float16' });
  assert.match(r3.reason!, /dtype changed/);
  // A damaged shard is noticed and rebuilt; opening it says so.
  const shard = path.join(dir, r3.manifest.shards[1].file);
  fs.truncateSync(shard, 10);
  assert.match(latentCacheStaleness(dir, latentCacheKey({ dataset: other, datasetSha256: datasetHash(other), ae: ae2, dtype: 'float16' }))!, /has 10 bytes/);
  assert.throws(() => openLatentCache(dir), /damaged/);
  assert.equal(build(dir, other, ae2, { dtype: 'float16' }).rebuilt, true);
  ae.dispose();
  ae2.dispose();
});

test('latents do not depend on the build batch size; float16 stays within half precision', () => {
  const ds = randomImages(7, 5);
  const ae = tinyKL(2);
  const a = tmp('lat-b1-'), b = tmp('lat-b2-'), h = tmp('lat-h-');
  build(a, ds, ae, { batchSize: 1, shardSize: 7 });
  build(b, ds, ae, { batchSize: 7, shardSize: 3 });
  build(h, ds, ae, { batchSize: 7, shardSize: 7, dtype: 'float16' });
  const all = [0, 1, 2, 3, 4, 5, 6];
  const flips = Uint8Array.from([0, 1, 0, 1, 0, 1, 0]);
  const xa = latentTrainingSource(a).read(all, flips).x;
  close(latentTrainingSource(b).read(all, flips).x, xa, 1e-5, 'batch 7 vs 1');
  close(latentTrainingSource(h).read(all, flips).x, xa, 2e-3, 'float16 vs float32');
  assert.equal(fs.statSync(path.join(h, 'shard-00000.bin')).size * 2, fs.statSync(path.join(a, 'shard-00000.bin')).size);
  ae.dispose();
});

test('an interrupted build resumes from its finished shards', () => {
  const dir = tmp('lat-resume-');
  const ds = randomImages(10, 6);
  const ae = identityAutoencoder(8);
  assert.throws(() => build(dir, ds, ae, { onProgress: (done) => { if (done > 5) throw new Error('killed'); } }), /killed/);
  assert.equal(fs.existsSync(path.join(dir, 'manifest.json')), false);
  const first = fs.statSync(path.join(dir, 'shard-00000.bin')).mtimeMs;
  const starts: number[] = [];
  const r = build(dir, ds, ae, { onProgress: (done) => starts.push(done) });
  assert.equal(starts[0], 4, 'the first shard was kept');
  assert.equal(fs.statSync(path.join(dir, 'shard-00000.bin')).mtimeMs, first);
  assert.equal(r.manifest.count, 10);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['labels.bin', 'manifest.json', 'shard-00000.bin', 'shard-00001.bin', 'shard-00002.bin']);
  assert.throws(() => latentTrainingSource(dir).read([10]), /outside \[0, 10\)/);
});

test('reads are streaming: one positioned read of one latent per sample, whatever the cache size', () => {
  const dir = tmp('lat-stream-');
  const ds = randomImages(40, 8);
  const r = build(dir, ds, identityAutoencoder(8), { shardSize: 16 });
  const src = latentTrainingSource(dir);
  const lengths: number[] = [];
  // The module object itself (the `import * as` namespace is read-only; its getters read this).
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the module object, to patch readSync
  const nodeFs = require('fs') as { readSync: (...a: unknown[]) => number };
  const realRead = nodeFs.readSync;
  nodeFs.readSync = (...args: unknown[]) => {
    lengths.push(args[3] as number);
    return realRead(...args);
  };
  try {
    src.read([39, 2, 17], Uint8Array.from([1, 0, 1]));
  } finally {
    nodeFs.readSync = realRead;
  }
  assert.deepEqual(lengths, [r.manifest.latentBytes, r.manifest.latentBytes, r.manifest.latentBytes]);
});

test('the DiT trainer trains on a latent cache directly', async () => {
  const dir = tmp('lat-dit-');
  const ds = randomImages(12, 7);
  build(dir, ds, identityAutoencoder(8));
  const source = latentTrainingSource(dir);
  const model = ditConfig('mini-S/4', { inputSize: 8, inChannels: 3, hiddenSize: 16, numHeads: 2, depth: 1, numClasses: 3 });
  const run = tmp('lat-dit-run-');
  const state = await train(run, { ...DEFAULT_TRAIN, model, steps: 2, batchSize: 4, ckptEvery: 2 }, source, { quiet: true });
  assert.equal(state.step, 2);
  closeRun(state);
  // ... and `dit sample --vae identity` decodes its samples into a PNG grid next to the npz.
  const out = path.join(run, 'samples.png');
  const log = console.log;
  console.log = () => {};
  try {
    assert.equal(await sampleCommand.run(['--checkpoint', path.join(run, 'checkpoint.safetensors'), '--steps', '3', '--num', '4', '--vae', 'identity', '--out', out]), 0);
  } finally {
    console.log = log;
  }
  const png = decodePng(fs.readFileSync(out));
  assert.deepEqual([png.width, png.height], [2 * 8 + 3 * 2, 2 * 8 + 3 * 2]);
  assert.ok(fs.existsSync(path.join(run, 'samples.npz')) && fs.existsSync(path.join(run, 'samples.json')));
  await assert.rejects(sampleCommand.run(['--checkpoint', path.join(run, 'checkpoint.safetensors'), '--vae', 'identity', '--out', out.replace('.png', '.jpg')]), /must end in \.npz/);
});
