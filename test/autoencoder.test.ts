import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend';
import {
  KLConfig, createKL, disposeKL, groupNorm, identityAutoencoder, klAutoencoder, klConfig, klLatentShape, klLoss,
  klParamSpecs, loadAutoencoder, readKLWeights, upsampleNearest2x, encodeKLWeights, datasetHash, psnr,
} from '../lib/autoencoder';
import { DEFAULT_VAE_TRAIN, VAETrainOptions, latentStats, lrAt, trainAutoencoder } from '../lib/autoencoder/train';
import { MemoryDataset } from '../lib/data/dataset';
import { encodeSafetensors, readSafetensors } from '../lib/io/safetensors';
import { setConvImpl } from '../lib/ops/conv';
import { TrainingDiverged } from '../lib/train/step';
import { sha256Bytes } from '../lib/util/hash';
import { Rng } from '../lib/util/rng';
import { reshapeCheckpointTensor, stopAfter } from './helpers';

const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), p));

/** A tiny config on 8x8 images: seconds, not minutes. */
function tiny(factor: 2 | 4 = 2, over: Partial<KLConfig> = {}): KLConfig {
  return klConfig(factor, { resolution: 8, ch: 8, normGroups: 4, ...over });
}

/** n 8x8 images: a bright square on a dark background, label = corner. */
function squares(n: number, seed = 1, size = 8): MemoryDataset {
  const rng = new Rng(seed);
  const images = new Uint8Array(n * size * size * 3);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = rng.int(4);
    labels[i] = k;
    const bg = [rng.int(60), rng.int(60), rng.int(60)];
    const fg = [150 + rng.int(100), 150 + rng.int(100), 150 + rng.int(100)];
    const x0 = (k & 1) * (size / 2), y0 = (k >> 1) * (size / 2);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const inside = x >= x0 && x < x0 + size / 2 && y >= y0 && y < y0 + size / 2;
        for (let c = 0; c < 3; c++) images[((i * size + y) * size + x) * 3 + c] = inside ? fg[c] : bg[c];
      }
    }
  }
  return new MemoryDataset(images, labels, size, 3, ['tl', 'tr', 'bl', 'br']);
}

function trainOpts(over: Partial<VAETrainOptions> = {}): VAETrainOptions {
  return {
    ...DEFAULT_VAE_TRAIN, config: tiny(), steps: 6, batchSize: 4, lr: 3e-3, warmupSteps: 2,
    holdout: 4, scaleImages: 16, ckptEvery: 2, ...over,
  };
}

test.before(async () => {
  await initBackend({ quiet: true });
});

test('KL autoencoder: latent shapes for factor 2 and 4, SD parameter names', () => {
  for (const [factor, side] of [[2, 4], [4, 2]] as const) {
    const c = tiny(factor);
    assert.deepEqual(klLatentShape(c), [4, side, side]);
    const ae = klAutoencoder(createKL(c, 0), 0.5, 'ab'.repeat(32));
    const x = tf.randomUniform([2, 3, 8, 8], -1, 1) as tf.Tensor4D;
    const z = ae.encode(x);
    assert.deepEqual(z.shape, [2, 4, side, side]);
    const y = ae.decode(z);
    assert.deepEqual(y.shape, [2, 3, 8, 8]);
    assert.equal(ae.id, `kl-${'ab'.repeat(8)}`);
    assert.throws(() => ae.encode(tf.zeros([2, 8, 8, 3]) as tf.Tensor4D), /NCHW/);
    tf.dispose([x, z, y]);
    ae.dispose();
  }
  const names = klParamSpecs(tiny(4)).map((s) => s.name);
  for (const k of ['encoder.conv_in.weight', 'encoder.down.0.block.0.norm1.weight', 'encoder.down.1.block.0.nin_shortcut.weight',
    'encoder.down.1.downsample.conv.weight', 'encoder.mid.attn_1.proj_out.weight', 'encoder.conv_out.bias', 'decoder.up.2.upsample.conv.weight',
    'decoder.up.0.block.1.conv2.weight', 'decoder.norm_out.bias', 'quant_conv.weight', 'post_quant_conv.bias']) {
    assert.ok(names.includes(k), k);
  }
  assert.ok(!names.includes('encoder.down.2.downsample.conv.weight') && !names.includes('decoder.up.0.upsample.conv.weight'));
  const conv = klParamSpecs(tiny()).find((s) => s.name === 'encoder.conv_out.weight')!;
  assert.deepEqual(conv.torchShape, [8, 16, 3, 3]);
  assert.deepEqual(conv.shape, [3, 3, 16, 8]);
});

test('identity autoencoder: latents are the pixels, scale 1, exact round trip', () => {
  const ae = identityAutoencoder(8, 3);
  assert.equal(ae.id, 'identity');
  assert.equal(ae.scale, 1);
  assert.deepEqual(ae.latentShape, [3, 8, 8]);
  const x = tf.randomUniform([3, 3, 8, 8], -1, 1) as tf.Tensor4D;
  const z = ae.encode(x);
  const y = ae.decode(z);
  assert.deepEqual(Array.from(z.dataSync()), Array.from(x.dataSync()));
  assert.deepEqual(Array.from(y.dataSync()), Array.from(x.dataSync()));
  assert.throws(() => ae.decode(tf.zeros([1, 4, 8, 8]) as tf.Tensor4D), /\[N, 3, 8, 8\]/);
  tf.dispose([x, z, y]);
  assert.equal(loadAutoencoder('identity', { imageSize: 16 }).latentShape[1], 16);
});

test('groupNorm and nearest upsampling match direct computations', () => {
  const rng = new Rng(3);
  const [n, h, w, c, g] = [2, 3, 2, 6, 3];
  const xv = rng.fillNormal(new Float32Array(n * h * w * c), 2, 3);
  const gamma = rng.fillNormal(new Float32Array(c)), beta = rng.fillNormal(new Float32Array(c));
  const y = groupNorm(tf.tensor4d(xv, [n, h, w, c]), g, tf.tensor1d(gamma), tf.tensor1d(beta)).dataSync();
  const cg = c / g;
  for (let b = 0; b < n; b++) {
    for (let k = 0; k < g; k++) {
      const vals: number[] = [];
      for (let p = 0; p < h * w; p++) for (let j = 0; j < cg; j++) vals.push(xv[(b * h * w + p) * c + k * cg + j]);
      const mean = vals.reduce((a, v) => a + v, 0) / vals.length;
      const variance = vals.reduce((a, v) => a + (v - mean) ** 2, 0) / vals.length;
      for (let p = 0; p < h * w; p++) {
        for (let j = 0; j < cg; j++) {
          const i = (b * h * w + p) * c + k * cg + j;
          const want = ((xv[i] - mean) / Math.sqrt(variance + 1e-6)) * gamma[k * cg + j] + beta[k * cg + j];
          assert.ok(Math.abs(y[i] - want) < 1e-4, `${y[i]} vs ${want}`);
        }
      }
    }
  }
  const u = upsampleNearest2x(tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2])).arraySync();
  assert.deepEqual(u[0][0], [[1, 2], [1, 2], [3, 4], [3, 4]]);
  assert.deepEqual(u[0][3], [[5, 6], [5, 6], [7, 8], [7, 8]]);
});

test('KL loss gradients agree between the im2col and the tf conv paths', (t) => {
  if (!tf.getKernel('Conv2DBackpropFilter', tf.getBackend())) {
    t.skip(`tf.conv2d has no gradient on '${tf.getBackend()}' (im2col is the only path there)`);
    return;
  }
  const m = createKL(tiny(), 5);
  const rng = new Rng(9);
  const x = tf.tensor4d(rng.fillUniform(new Float32Array(2 * 8 * 8 * 3), -1, 1), [2, 8, 8, 3]);
  const noise = tf.tensor4d(rng.fillNormal(new Float32Array(2 * 4 * 4 * 4)), [2, 4, 4, 4]);
  const vars = Object.values(m.params);
  const grads = (impl: 'tf' | 'im2col') => {
    setConvImpl(impl);
    try {
      const { value, grads: g } = tf.variableGrads(() => klLoss(m, x, noise, { klWeight: 1e-6, recLoss: 'l1' }).loss, vars);
      const out = { loss: value.dataSync()[0], g: vars.map((v) => Array.from(g[v.name].dataSync())) };
      tf.dispose([value, ...Object.values(g)]);
      return out;
    } finally {
      setConvImpl('auto');
    }
  };
  const a = grads('tf'), b = grads('im2col');
  assert.ok(Math.abs(a.loss - b.loss) < 1e-4 * Math.abs(a.loss));
  a.g.forEach((ga, i) => {
    const scale = Math.max(1e-3, ...ga.map(Math.abs));
    ga.forEach((v, j) => assert.ok(Math.abs(v - b.g[i][j]) < 1e-3 * scale, `${vars[i].name}[${j}]: ${v} vs ${b.g[i][j]}`));
  });
  disposeKL(m);
  tf.dispose([x, noise]);
});

test('the scale factor makes encoded latents unit-std', () => {
  const ds = squares(32);
  const m = createKL(tiny(), 2);
  const stats = latentStats(m, ds, 32, 7);
  assert.ok(stats.std > 0);
  const ae = klAutoencoder(m, 1 / stats.std, '0'.repeat(64));
  const b = ds.readBatch(0, 32);
  const x = tf.tensor4d(Float32Array.from(b.images, (v) => v / 127.5 - 1), [32, 8, 8, 3]).transpose([0, 3, 1, 2]) as tf.Tensor4D;
  // The same posterior noise latentStats drew (it draws NHWC, one batch here).
  const noise = tf.tensor4d(new Rng(7).fillNormal(new Float32Array(32 * 4 * 4 * 4)), [32, 4, 4, 4]).transpose([0, 3, 1, 2]) as tf.Tensor4D;
  const z = ae.encode(x, { noise });
  const v = Array.from(z.dataSync());
  const mean = v.reduce((a, t) => a + t, 0) / v.length;
  const std = Math.sqrt(v.reduce((a, t) => a + (t - mean) ** 2, 0) / (v.length - 1));
  assert.ok(Math.abs(std - 1) < 1e-4, `std of scaled latents ${std}`);
  tf.dispose([x, z, noise]);
  ae.dispose();
});

test('lr schedule: warm-up then cosine to the floor', () => {
  const o = { lr: 1, warmupSteps: 10, minLrRatio: 0.1, steps: 110 };
  assert.equal(lrAt(o, 0), 0.1);
  assert.equal(lrAt(o, 9), 1);
  assert.ok(Math.abs(lrAt(o, 10) - 1) < 1e-12);
  assert.ok(Math.abs(lrAt(o, 60) - 0.55) < 1e-12);
  assert.ok(Math.abs(lrAt(o, 110) - 0.1) < 1e-12);
});

test('training a tiny autoencoder lowers the reconstruction loss and writes weights + manifest', async () => {
  const dir = tmp('vae-train-');
  const ds = squares(40);
  const recs: number[] = [];
  const r = await trainAutoencoder(dir, ds, { sha256: datasetHash(ds), path: 'memory' }, trainOpts({ steps: 40, ckptEvery: 20 }), {
    quiet: true, onStep: (l) => recs.push(l.rec),
  });
  const first = recs.slice(0, 5).reduce((a, b) => a + b) / 5;
  const last = recs.slice(-5).reduce((a, b) => a + b) / 5;
  assert.ok(last < 0.7 * first, `reconstruction L1 went from ${first} to ${last}`);
  const m = r.manifest!;
  assert.equal(r.status, 'trained');
  assert.equal(m.training.steps, 40);
  assert.equal(m.dataset.trainImages, 36);
  assert.ok(m.scale > 0 && Number.isFinite(m.psnr.heldOut));
  assert.equal(sha256Bytes(fs.readFileSync(path.join(dir, 'vae.safetensors'))), m.weights.sha256);
  const ae = loadAutoencoder(dir);
  assert.equal(ae.id, `kl-${m.weights.sha256.slice(0, 16)}`);
  assert.equal(ae.scale, m.scale);
  ae.dispose();
  // The same run again is recognised and left alone.
  const again = await trainAutoencoder(dir, ds, { sha256: datasetHash(ds), path: 'memory' }, trainOpts({ steps: 40, ckptEvery: 20 }), { quiet: true });
  assert.equal(again.status, 'cached');
});

test('an interrupted run resumes from its checkpoint to the same weights', async () => {
  const ds = squares(24);
  const data = { sha256: datasetHash(ds), path: 'memory' };
  const a = tmp('vae-a-'), b = tmp('vae-b-');
  const full = await trainAutoencoder(a, ds, data, trainOpts(), { quiet: true });
  const stopped = await trainAutoencoder(b, ds, data, trainOpts(), { quiet: true, ...stopAfter(3) });
  assert.equal(stopped.manifest, null);
  assert.equal(stopped.step, 3);
  const resumed = await trainAutoencoder(b, ds, data, trainOpts(), { quiet: true });
  assert.equal(resumed.status, 'resumed');
  assert.equal(resumed.manifest!.weights.sha256, full.manifest!.weights.sha256);
  assert.equal(resumed.manifest!.scale, full.manifest!.scale);
  assert.equal(fs.readFileSync(path.join(b, 'loss.csv'), 'utf8'), fs.readFileSync(path.join(a, 'loss.csv'), 'utf8'));
  // Another run's checkpoint is refused.
  const c = tmp('vae-c-');
  await trainAutoencoder(c, ds, data, trainOpts(), { quiet: true, ...stopAfter(2) });
  await assert.rejects(trainAutoencoder(c, ds, data, trainOpts({ seed: 1 }), { quiet: true }), /different run/);
  // An optimiser tensor with the right element count in the wrong shape is refused, not reshaped.
  const ck = path.join(c, 'vae-checkpoint.safetensors');
  const name = reshapeCheckpointTensor(ck, ck, 'adam_v/');
  await assert.rejects(trainAutoencoder(c, ds, data, trainOpts(), { quiet: true }),
    (e: Error) => e.message.startsWith(`checkpoint ${ck} does not fit this model: ${name} has shape [`));
});

test('a diverging run stops at the shared optimiser step with its error, writing no weights', async () => {
  const ds = squares(24);
  const dir = tmp('vae-nan-');
  // An infinite learning rate: step 1 ruins the weights, step 2's loss is not finite.
  await assert.rejects(trainAutoencoder(dir, ds, { sha256: datasetHash(ds), path: 'memory' }, trainOpts({ lr: Infinity }), { quiet: true }),
    (e: Error) => e instanceof TrainingDiverged &&
      /^autoencoder training diverged: loss is (NaN|-?Infinity) at step 2; stopping \(the last checkpoint is kept\); try a lower --lr$/.test(e.message));
  assert.ok(!fs.existsSync(path.join(dir, 'vae.safetensors')) && !fs.existsSync(path.join(dir, 'vae.json')));
});

test('weights: round trip in PyTorch layout, clear errors for damaged or mismatched files', () => {
  const dir = tmp('vae-w-');
  const m = createKL(tiny(), 4);
  const bytes = encodeKLWeights(m, 0.25);
  const file = path.join(dir, 'vae.safetensors');
  fs.writeFileSync(file, bytes);
  const r = readKLWeights(file);
  assert.equal(r.scale, 0.25);
  for (const [k, v] of Object.entries(m.params)) assert.deepEqual(Array.from(r.model.params[k].dataSync()), Array.from(v.dataSync()), k);
  disposeKL(r.model);
  fs.writeFileSync(file, bytes.subarray(0, bytes.length - 10));
  assert.throws(() => readKLWeights(file), /corrupt autoencoder weights/);
  const other = createKL(tiny(2, { ch: 16, normGroups: 4 }), 0);
  const wrong = encodeKLWeights(other, 1);
  // Swap the config in the metadata: shapes no longer match.
  const parsed = readSafetensors(wrong);
  fs.writeFileSync(file, encodeSafetensors(parsed.tensors, { ...parsed.metadata, config: JSON.stringify(m.config) }));
  assert.throws(() => readKLWeights(file), /do not match their config/);
  assert.throws(() => loadAutoencoder(path.join(dir, 'nope')), /not found/);
  assert.throws(() => loadAutoencoder(dir), /vae\.json missing/);
  disposeKL(m);
  disposeKL(other);
});

test('datasetHash and psnr', () => {
  const a = squares(8, 1), b = squares(8, 2);
  assert.equal(datasetHash(a), datasetHash(squares(8, 1)));
  assert.notEqual(datasetHash(a), datasetHash(b));
  const x = Uint8Array.from([0, 10, 20, 30]);
  assert.equal(psnr(x, x, 0, 4), 100);
  assert.ok(Math.abs(psnr(x, Uint8Array.from([1, 11, 21, 31]), 0, 4) - 10 * Math.log10(255 * 255)) < 1e-9);
});
