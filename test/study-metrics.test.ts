// The mini study's measurement pieces: the z-scored [CNN || pixel means] space, the
// bootstrap standard error of FID, class accuracy, the validation loss and lr warm-up.
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend';
import { createDiffusion } from '../lib/diffusion';
import { bootstrapFidSe, pixelMeans, pixelStats, pixelStds, STUDY_SPACES, studyMetrics, studyReference, studySpace } from '../lib/eval/space';
import { FeatureNet } from '../lib/features/network';
import { featureStats } from '../lib/metrics/fid';
import { ditConfig } from '../lib/model/config';
import { createDiT } from '../lib/model/dit';
import { lrAt } from '../lib/train/trainer';
import { validationLoss, validationSet } from '../lib/train/validation';
import { Rng } from '../lib/util/rng';

before(async () => {
  await initBackend({ quiet: true });
});

/**
 * A feature network blind to scale: pool features are each image's pixels after per-image
 * standardisation, averaged over 4 quadrants (so x3 contrast leaves them unchanged);
 * logits say which colour channel is brightest.
 */
function scaleBlindNet(): FeatureNet {
  return {
    kind: 'default', id: 'blind', poolDim: 12, numClasses: 3, spatialDim: 3, inputSize: 8,
    forward(images, n, h, w) {
      const pool = new Float32Array(n * 12), logits = new Float32Array(n * 3), spatial = new Float32Array(n * 3);
      for (let i = 0; i < n; i++) {
        const px = Array.from(images.subarray(i * h * w * 3, (i + 1) * h * w * 3), (v) => v - 127.5);
        const sd = Math.sqrt(px.reduce((a, v) => a + v * v, 0) / px.length) || 1;
        for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) {
          const q = (y < h / 2 ? 0 : 2) + (x < w / 2 ? 0 : 1);
          const v = px[(y * w + x) * 3 + c] / sd / ((h * w) / 4);
          pool[i * 12 + q * 3 + c] += v;
          logits[i * 3 + c] += v;
          spatial[i * 3 + c] += v / 4;
        }
      }
      return { pool: tf.tensor2d(pool, [n, 12]), logits: tf.tensor2d(logits, [n, 3]), spatial: tf.tensor2d(spatial, [n, 3]) };
    },
    logitsFromPool: () => new Float32Array(0),
    dispose: () => {},
  };
}

/** n 8x8 images: a class colour (0: red, 1: green, 2: blue) on a noisy grey background. */
function images(n: number, seed: number, contrast = 1): { images: Uint8Array; labels: Int32Array } {
  const rng = new Rng(seed);
  const out = new Uint8Array(n * 8 * 8 * 3);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 3;
    const x0 = rng.int(5), y0 = rng.int(5);
    for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) for (let c = 0; c < 3; c++) {
      const inside = x >= x0 && x < x0 + 3 && y >= y0 && y < y0 + 3;
      const v = (inside ? (c === labels[i] ? 200 : 90) : 110) + 12 * rng.normal();
      out[((i * 8 + y) * 8 + x) * 3 + c] = Math.max(0, Math.min(255, Math.round((v - 127.5) * contrast + 127.5)));
    }
  }
  return { images: out, labels };
}

test('pixelMeans averages each grid cell per channel, in [0, 1]', () => {
  // One 4x4 image, 2x2 grid: cell (0,0) holds values 0, 4, 16, 20 in the red channel, ...
  const img = Uint8Array.from({ length: 4 * 4 * 3 }, (_, i) => i);
  const m = pixelMeans(img, 1, 4, 4, 2);
  assert.equal(m.length, 12);
  // red of the top-left cell: pixels (0,0), (0,1), (1,0), (1,1) -> indices 0, 3, 12, 15 -> values 0, 3, 12, 15
  assert.ok(Math.abs(m[0] - (0 + 3 + 12 + 15) / 4 / 255) < 1e-7);
  assert.ok(Math.abs(m[3 * 3 + 2] - (32 + 35 + 44 + 47) / 4 / 255) < 1e-7);
  assert.throws(() => pixelMeans(img, 1, 4, 4, 3), /do not split/);
  assert.throws(() => pixelMeans(img, 2, 4, 4, 2), /not 2 RGB images/);
});

test('pixelStds is each grid cell\'s population std per channel; pixelStats joins means and stds', () => {
  const img = Uint8Array.from({ length: 4 * 4 * 3 }, (_, i) => i);
  const sd = pixelStds(img, 1, 4, 4, 2);
  assert.equal(sd.length, 12);
  // red of the top-left cell: values 0, 3, 12, 15 (mean 7.5): deviations 7.5, 4.5, 4.5, 7.5
  assert.ok(Math.abs(sd[0] - Math.sqrt((2 * 7.5 ** 2 + 2 * 4.5 ** 2) / 4) / 255) < 1e-7, `${sd[0] * 255}`);
  // A flat image has std 0 everywhere (not NaN from a rounding-negative variance).
  assert.deepEqual(Array.from(pixelStds(new Uint8Array(48).fill(77), 1, 4, 4, 2)), new Array(12).fill(0));
  assert.throws(() => pixelStds(img, 1, 4, 4, 3), /pixelStds: .*do not split/);
  const both = pixelStats(img, 1, 4, 4, { meanGrid: 4, stdGrid: 2 });
  assert.deepEqual(Array.from(both), [...Array.from(pixelMeans(img, 1, 4, 4, 4)), ...Array.from(sd)]);
  assert.deepEqual(Array.from(pixelStats(img, 1, 4, 4, { meanGrid: 2, stdGrid: null })), Array.from(pixelMeans(img, 1, 4, 4, 2)));
});

/** 16x16 images: each pixel of images() doubled; with texture, every 2x2 block gets a +-t checkerboard (its mean kept). */
function doubled(src: Uint8Array, n: number, texture = 0): Uint8Array {
  const out = new Uint8Array(n * 16 * 16 * 3);
  for (let i = 0; i < n; i++) for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) for (let c = 0; c < 3; c++) {
    const v = src[((i * 8 + (y >> 1)) * 8 + (x >> 1)) * 3 + c];
    const t = Math.min(texture, v, 255 - v) * ((x + y) % 2 ? 1 : -1);
    out[((i * 16 + y) * 16 + x) * 3 + c] = v + t;
  }
  return out;
}

test('study-contrast: the cell stds see a texture that leaves every 8x8-grid mean unchanged', async () => {
  const net = scaleBlindNet();
  const n = 300;
  const refSet = images(n, 1);
  const ref = doubled(refSet.images, n);
  const f = net.forward(ref, n, 16, 16);
  const [pool, spatial] = [f.pool.dataSync() as Float32Array, f.spatial.dataSync() as Float32Array];
  tf.dispose([f.pool, f.logits, f.spatial]);
  const cnn = { n, pool: { data: pool, n, d: 12 }, poolStats: featureStats(pool, n, 12), spatialStats: featureStats(spatial, n, 3), featureNet: 'blind', imagesHash: '' };
  const plain = studyReference(net, cnn, ref, 16, 16);
  const contrast = studyReference(net, cnn, ref, 16, 16, 'study-contrast');
  assert.match(contrast.space.id, /^blind\+pix8\+sd4-z[0-9a-f]{8}$/);
  assert.match(plain.space.id, /^blind\+pix8-z[0-9a-f]{8}$/);
  assert.equal(contrast.space.dim, 12 + 192 + 48);
  assert.deepEqual(contrast.space.pixels, STUDY_SPACES['study-contrast']);
  const src = images(n, 2).images;
  const good = doubled(src, n), bad = doubled(src, n, 30);
  assert.deepEqual(Array.from(pixelMeans(bad, n, 16, 16)), Array.from(pixelMeans(good, n, 16, 16)));
  const fid = async (r: typeof plain, x: Uint8Array) => (await studyMetrics(r, x, n, 16, 16)).fid;
  const [pg, pb, cg, cb] = [await fid(plain, good), await fid(plain, bad), await fid(contrast, good), await fid(contrast, bad)];
  // The texture moves only the blind CNN's standardisation in the plain space; the stds see it.
  assert.ok(cb - cg > 5 * Math.max(1, pb - pg), `plain ${pg.toFixed(2)} -> ${pb.toFixed(2)}, contrast ${cg.toFixed(2)} -> ${cb.toFixed(2)}`);
  // The z-scoring must match the space: stats of another layout are refused.
  assert.throws(() => studySpace(net, pool, pixelMeans(ref, n, 16, 16), n, STUDY_SPACES['study-contrast']), /192 pixel statistics per image, the space has 240/);
});

test('the study space z-scores every dimension by the reference set', () => {
  const net = scaleBlindNet();
  const ref = images(200, 1);
  const f = net.forward(ref.images, 200, 8, 8);
  const pool = f.pool.dataSync() as Float32Array;
  const pix = pixelMeans(ref.images, 200, 8, 8);
  tf.dispose([f.pool, f.logits, f.spatial]);
  const s = studySpace(net, pool, pix, 200);
  assert.equal(s.dim, 12 + 192);
  assert.match(s.id, /^blind\+pix8-z[0-9a-f]{8}$/);
  const r = studyReference(net, { n: 200, pool: { data: pool, n: 200, d: 12 }, poolStats: featureStats(pool, 200, 12), spatialStats: featureStats(new Float32Array(600).map((_, i) => i % 7), 200, 3), featureNet: 'blind', imagesHash: '' }, ref.images, 8, 8);
  for (const k of [0, 5, 12, 100, 203]) {
    assert.ok(Math.abs(r.zStats.mu[k]) < 1e-6, `mean of dim ${k}`);
    assert.ok(Math.abs(r.zStats.sigma[k * s.dim + k] - 1) < 1e-6, `variance of dim ${k}`);
  }
});

test('the study FID sees a contrast error the scale-blind CNN FID does not; class accuracy and se are reported', async () => {
  const net = scaleBlindNet();
  const n = 300;
  const ref = images(n, 1);
  const f = net.forward(ref.images, n, 8, 8);
  const [pool, spatial] = [f.pool.dataSync() as Float32Array, f.spatial.dataSync() as Float32Array];
  tf.dispose([f.pool, f.logits, f.spatial]);
  const cnn = { n, pool: { data: pool, n, d: 12 }, poolStats: featureStats(pool, n, 12), spatialStats: featureStats(spatial, n, 3), featureNet: 'blind', imagesHash: '' };
  const study = studyReference(net, cnn, ref.images, 8, 8);
  const good = images(n, 2);
  const bad = images(n, 2, 3);
  const mg = await studyMetrics(study, good.images, n, 8, 8, { labels: good.labels, bootstrap: 5 });
  const mb = await studyMetrics(study, bad.images, n, 8, 8, { labels: bad.labels, bootstrap: 5 });
  // The blind network barely registers x3 contrast (its features are scale-normalised per image) ...
  assert.ok(mb.fid_cnn < 2 * mg.fid_cnn + 1, `CNN FID ${mg.fid_cnn} -> ${mb.fid_cnn}`);
  // ... the pixel means do.
  assert.ok(mb.fid > 5 * mg.fid, `study FID ${mg.fid} -> ${mb.fid}`);
  assert.ok(mg.fid_se !== null && mg.fid_se > 0 && mg.fid_se < mg.fid, `se ${mg.fid_se}`);
  assert.equal(mg.class_accuracy, 1);
  const wrong = Int32Array.from(good.labels, (l) => (l + 1) % 3);
  assert.equal((await studyMetrics(study, good.images, n, 8, 8, { labels: wrong })).class_accuracy, 0);
  assert.equal((await studyMetrics(study, good.images, n, 8, 8)).fid_se, null);
});

test('bootstrap se of FID is deterministic per seed and shrinks with the sample count', () => {
  const d = 4;
  const rng = new Rng(3);
  const ref = featureStats(rng.fillNormal(new Float32Array(4000 * d)), 4000, d);
  const se = (n: number, seed: number) => bootstrapFidSe(new Rng(9).fillNormal(new Float32Array(n * d), 0.3), n, d, ref, 30, seed);
  assert.equal(se(100, 1), se(100, 1));
  assert.notEqual(se(100, 1), se(100, 2));
  assert.ok(se(1600, 1) < se(100, 1) / 2, `${se(1600, 1)} vs ${se(100, 1)}`);
  assert.throws(() => bootstrapFidSe(new Float32Array(8), 2, 4, ref, 1), /at least 2 rounds/);
});

test('validation loss: fixed timestep grid and noise, independent of the batch size', () => {
  const cfg = ditConfig('mini-S/4', { inputSize: 8, hiddenSize: 16, numHeads: 2, depth: 1, numClasses: 3, variant: 'adaln' });
  const model = createDiT(cfg, 3);
  const diffusion = createDiffusion({ diffusionSteps: 1000, learnSigma: true });
  const n = 10;
  const x = new Rng(4).fillNormal(new Float32Array(n * 4 * 64));
  const y = Int32Array.from({ length: n }, (_, i) => i % 3);
  const v = validationSet(x, y, [4, 8, 8], 1000, 0);
  assert.deepEqual(Array.from(v.t), [50, 150, 250, 350, 450, 550, 650, 750, 850, 950]);
  assert.deepEqual(v.noise, validationSet(x, y, [4, 8, 8], 1000, 0).noise);
  const a = validationLoss(model, diffusion, v, 128);
  const b = validationLoss(model, diffusion, v, 3);
  for (const k of ['loss', 'mse', 'vb'] as const) assert.ok(Math.abs(a[k] - b[k]) < 1e-5 * Math.abs(a[k]) + 1e-7, `${k}: ${a[k]} vs ${b[k]}`);
  assert.ok(Math.abs(a.loss - (a.mse + a.vb)) < 1e-6);
  assert.ok(a.vb > 0 && a.mse > 0.5, JSON.stringify(a));
  // Another model scores differently on the same terms.
  assert.notEqual(validationLoss(createDiT(cfg, 4), diffusion, v).loss, a.loss);
  assert.throws(() => validationSet(x.subarray(1), y, [4, 8, 8], 1000), /are not 10 latents/);
});

test('lr warm-up is linear over lrWarmup steps, then constant', () => {
  const o = { optimizer: { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 }, lrWarmup: 4 };
  assert.deepEqual([0, 1, 2, 3, 4, 100].map((s) => lrAt(o, s)), [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3]);
  assert.equal(lrAt({ optimizer: o.optimizer }, 0), 1e-3);
});
