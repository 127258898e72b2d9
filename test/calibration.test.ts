// The calibration ladder of FID: the image degradations (lib/data/degrade.ts), the
// synthetic rungs (background-only, class-filtered images), ladderChecks, and
// runCalibration end to end with a fake pipeline.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { addNoise, gaussianBlur, gaussianKernel, greyscale, permuteChannels, scaleContrast } from '../lib/data/degrade';
import { generateSynthetic, renderBackgrounds, SyntheticDataset, SyntheticRenderer, syntheticLabel } from '../lib/data/synthetic';
import {
  CALIBRATION_CELLS, CALIBRATION_LADDER, CALIBRATION_REFERENCE_LINES, calibrationSyntheticSeed, ladderChecks, runCalibration, syntheticClassImages,
} from '../lib/experiments/calibration';
import { ExperimentConfig, validateExperiment } from '../lib/experiments/config';
import { readResults } from '../lib/results/registry';
import { TrainingSource } from '../lib/train/source';
import { tempDirs } from './helpers';

const tmp = tempDirs('dit-calibration-');

// ---- degradations -------------------------------------------------------------------

test('contrast: v -> (v - 127.5) k + 127.5, rounded and clipped', () => {
  const x = Uint8Array.from([0, 127, 128, 255]);
  assert.deepEqual([...scaleContrast(x, 1)], [0, 127, 128, 255]);
  assert.deepEqual([...scaleContrast(x, 0.5)], [64, 127, 128, 191]);
  assert.deepEqual([...scaleContrast(x, 3)], [0, 126, 129, 255]);
  assert.deepEqual([...scaleContrast(x, 10)], [0, 123, 133, 255]);
  assert.deepEqual([...x], [0, 127, 128, 255], 'the input is not modified');
});

test('greyscale: Rec. 601 luma into all three channels', () => {
  const x = Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 10, 20, 30]);
  // 0.299*255 = 76.2, 0.587*255 = 149.7, 0.114*255 = 29.1, 0.299*10 + 0.587*20 + 0.114*30 = 18.15
  assert.deepEqual([...greyscale(x)], [76, 76, 76, 150, 150, 150, 29, 29, 29, 255, 255, 255, 18, 18, 18]);
  assert.throws(() => greyscale(new Uint8Array(4)), /not RGB/);
});

test('channel permutation: RGB -> BRG per pixel', () => {
  const x = Uint8Array.from([10, 20, 30, 1, 2, 3]);
  assert.deepEqual([...permuteChannels(x)], [30, 10, 20, 3, 1, 2]);
  assert.deepEqual([...permuteChannels(x, [0, 1, 2])], [...x]);
  assert.throws(() => permuteChannels(x, [0, 0, 1]), /not a permutation/);
});

test('blur: constant images stay constant, mass is kept, edges are replicated, and it matches a direct 2-D convolution', () => {
  const k1 = gaussianKernel(1);
  assert.equal(k1.length, 7); // radius ceil(3 sigma)
  assert.equal(gaussianKernel(1.5).length, 2 * 5 + 1);
  assert.ok(Math.abs(k1.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  // exp(-i^2 / 2) for i = -3..3, normalised: 1 / 2.50595 at the centre.
  assert.deepEqual([...k1].map((v) => +v.toFixed(5)), [0.00443, 0.05401, 0.24204, 0.39905, 0.24204, 0.05401, 0.00443]);

  const flat = new Uint8Array(2 * 6 * 7 * 3).fill(173);
  for (const s of [1, 1.5, 2, 3]) assert.ok(gaussianBlur(flat, 2, 6, 7, 3, s).every((v) => v === 173), `sigma ${s}`);

  // One bright pixel in the middle of a 15x15 image: the total survives (up to rounding)
  // and spreads symmetrically.
  const n = 15, c = 3, mid = 7;
  const dot = new Uint8Array(n * n * c);
  dot[(mid * n + mid) * c + 1] = 255; // green only: the other channels stay black
  const b = gaussianBlur(dot, 1, n, n, c, 1);
  const at = (y: number, x: number, ch = 1) => b[(y * n + x) * c + ch];
  let total = 0;
  for (let i = 1; i < b.length; i += 3) total += b[i];
  assert.ok(Math.abs(total - 255) <= 10, `total ${total}`);
  assert.ok(b.every((v, i) => i % 3 === 1 || v === 0), 'channels are blurred separately');
  assert.equal(at(mid, mid), 41); // 255 * 0.39905^2 = 40.6
  assert.ok(at(mid, mid) < 255 && at(mid, mid + 1) > 0);
  assert.equal(at(mid, mid + 1), at(mid, mid - 1));
  assert.equal(at(mid, mid + 1), at(mid + 1, mid));
  assert.equal(at(mid + 3, mid), Math.round(255 * k1[3] * k1[6]));
  assert.equal(at(mid + 4, mid), 0); // beyond the kernel's radius

  // A bright left column: with replicated edges its pixels keep 255 * (k0 + left tail) of
  // it; zero padding would leave only 255 * (k0 + right tail) < 255 / 2.
  const w = 9;
  const col = new Uint8Array(4 * w * c);
  for (let y = 0; y < 4; y++) col[(y * w) * c] = 255;
  const bc = gaussianBlur(col, 1, 4, w, c, 1);
  const keep = Math.round(255 * (k1[0] + k1[1] + k1[2] + k1[3]));
  for (let y = 0; y < 4; y++) assert.equal(bc[(y * w) * c], keep, `row ${y}`);
  assert.ok(keep > 128);

  // Non-square images against the direct 2-D sum with clamped indices.
  const N = 2, H = 5, W = 8, s = 1.5;
  const img = Uint8Array.from({ length: N * H * W * c }, (_, i) => (i * 97 + ((i * i) % 31)) % 256);
  const k = gaussianKernel(s), r = (k.length - 1) / 2;
  const cl = (v: number, hi: number) => Math.min(hi, Math.max(0, v));
  const want = new Uint8Array(img.length);
  for (let m = 0; m < N; m++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let ch = 0; ch < c; ch++) {
    let acc = 0;
    for (let i = -r; i <= r; i++) for (let j = -r; j <= r; j++) acc += k[i + r] * k[j + r] * img[((m * H + cl(y + i, H - 1)) * W + cl(x + j, W - 1)) * c + ch];
    want[((m * H + y) * W + x) * c + ch] = Math.round(acc);
  }
  assert.deepEqual([...gaussianBlur(img, N, H, W, c, s)], [...want]);
  assert.throws(() => gaussianBlur(img, N, H, W + 1, c, s), /not 2 images/);
});

test('noise: N(0, sigma^2) per value, rounded and clipped, the same for the same seed', () => {
  const x = new Uint8Array(20000).fill(128);
  for (const sigma of [10, 20]) {
    const y = addNoise(x, sigma, 3);
    let m = 0;
    for (const v of y) m += v;
    m /= y.length;
    let v2 = 0;
    for (const v of y) v2 += (v - m) ** 2;
    const sd = Math.sqrt(v2 / y.length);
    assert.ok(Math.abs(m - 128) < 0.5, `mean ${m}`);
    assert.ok(Math.abs(sd - sigma) < 0.05 * sigma, `sd ${sd} for sigma ${sigma}`);
  }
  assert.deepEqual(addNoise(x, 10, 3), addNoise(x, 10, 3));
  assert.notDeepEqual(addNoise(x, 10, 3), addNoise(x, 10, 4));
  // Clipped at the ends of the range (about half the values), never wrapped: with sigma 10
  // no value moves 100 levels, a wrapped one would have moved about 200.
  const ends = addNoise(Uint8Array.from({ length: 2000 }, (_, i) => (i % 2 ? 255 : 0)), 10, 1);
  assert.ok(ends.filter((v, i) => i % 2 === 0 && v === 0).length > 400);
  assert.ok(ends.filter((v, i) => i % 2 === 1 && v === 255).length > 400);
  assert.ok(ends.filter((_, i) => i % 2 === 0).every((v) => v < 100), 'dark values do not wrap to bright');
  assert.ok(ends.filter((_, i) => i % 2 === 1).every((v) => v > 155), 'bright values do not wrap to dark');
  assert.deepEqual(addNoise(x, 0, 3), x);
});

// ---- synthetic rungs -----------------------------------------------------------------

test('default synthetic rendering is unchanged (bytes pinned) and background-only differs only where objects are', () => {
  const pin = crypto.createHash('sha256').update(generateSynthetic({ seed: 0, count: 20 }).images).digest('hex');
  assert.equal(pin, PINNED_SEED0_FIRST20);
  const ds = new SyntheticDataset({ seed: 5, num: 8 });
  const idx = [0, 1, 2, 3, 4, 5, 6, 7];
  const full = ds.readIndices(idx);
  const bg = renderBackgrounds(5, 0, 8, 32);
  assert.deepEqual([...bg.labels], [...full.labels]);
  const r = new SyntheticRenderer(32);
  const stride = 32 * 32 * 3;
  const explicit = new Uint8Array(8 * stride);
  for (let i = 0; i < 8; i++) r.render(5, i, explicit, i * stride, { objects: true });
  assert.deepEqual(explicit, full.images, "objects: true is the default rendering");
  for (let i = 0; i < 8; i++) {
    const a = full.images.subarray(i * stride, (i + 1) * stride), b = bg.images.subarray(i * stride, (i + 1) * stride);
    let same = 0;
    for (let j = 0; j < stride; j++) if (a[j] === b[j]) same++;
    // The objects change part of the image; the rest (background and its pixel noise) is the same.
    assert.ok(same < stride, `image ${i} has objects`);
    assert.ok(same > 0.3 * stride, `image ${i}: only ${same} of ${stride} values shared`);
  }
  // Background-only images starting elsewhere agree with the same indices in a batch from 0.
  assert.deepEqual(renderBackgrounds(5, 3, 2, 32).images, bg.images.subarray(3 * stride, 5 * stride));
});

test('class-filtered images hold only the wanted classes and are the generator images of those indices', () => {
  const one = syntheticClassImages(1002, [0], 12, 32);
  assert.equal(one.labels.length, 12);
  assert.ok(one.labels.every((l) => l === 0));
  const idx: number[] = [];
  for (let i = 0; idx.length < 12; i++) if (syntheticLabel(1002, i) === 0) idx.push(i);
  assert.deepEqual(one.images, new SyntheticDataset({ seed: 1002, num: idx[11] + 1 }).readIndices(idx).images);
  const five = syntheticClassImages(1002, [0, 1, 2, 3, 4], 20, 32);
  // Every block of 10 holds each class once: 20 images of 5 classes are 4 of each.
  assert.deepEqual([0, 1, 2, 3, 4].map((k) => five.labels.filter((l) => l === k).length), [4, 4, 4, 4, 4]);
  assert.throws(() => syntheticClassImages(1, [10], 1, 32), /subset/);
  assert.throws(() => syntheticClassImages(1, [], 1, 32), /subset/);
});

// ---- the ladder and its checks ---------------------------------------------------------

/** FIDs that order the ladder correctly: 10 + level, with the floor low and the ceilings high. */
function goodRows(): Array<{ cell: string; fid: number; fid_se?: number | null }> {
  const special: Record<string, number> = { 'real-images': 1, autoencoder: 5, 'gaussian-latents': 100, 'contrast-10': 200, 'gaussian-latents-x25': 300 };
  return CALIBRATION_LADDER.map((r) => ({ cell: r.rung, fid: special[r.rung] ?? 10 + r.level }));
}

test('the ladder: every rung once, grouped by kind, degradation increasing within a kind', () => {
  assert.equal(new Set(CALIBRATION_CELLS).size, CALIBRATION_CELLS.length);
  assert.equal(CALIBRATION_CELLS.length, 24);
  assert.deepEqual([...CALIBRATION_REFERENCE_LINES], ['real-images', 'autoencoder', 'gaussian-latents']);
  for (const c of CALIBRATION_REFERENCE_LINES) assert.ok(CALIBRATION_CELLS.includes(c));
  const kinds = CALIBRATION_LADDER.map((r) => r.kind);
  // Grouped: a kind's rungs are contiguous.
  assert.equal(kinds.filter((k, i) => i === 0 || kinds[i - 1] !== k).length, new Set(kinds).size);
  const of = (kind: string) => CALIBRATION_LADDER.filter((r) => r.kind === kind).map((r) => r.rung);
  assert.deepEqual(of('noise'), ['noise-10', 'noise-20', 'noise-40', 'noise-80']);
  assert.deepEqual(of('blur'), ['blur-1', 'blur-1.5', 'blur-2', 'blur-3']);
  assert.deepEqual(of('contrast-up'), ['contrast-1.5', 'contrast-3', 'contrast-10']);
  assert.deepEqual(of('classes'), ['five-classes', 'one-class']);
  assert.deepEqual(of('latent-scale'), ['latents-x3', 'latents-x10']);
  assert.deepEqual(of('gaussian'), ['gaussian-latents', 'gaussian-latents-x25']);
  for (const kind of new Set(kinds)) {
    const lv = CALIBRATION_LADDER.filter((r) => r.kind === kind).map((r) => r.level);
    assert.ok(lv.every((v, i) => i === 0 || v > lv[i - 1]), kind);
  }
});

test('ladderChecks: a correctly ordered ladder passes every check', () => {
  const checks = ladderChecks(goodRows());
  assert.ok(checks.length >= new Set(CALIBRATION_LADDER.map((r) => r.kind)).size + 3);
  assert.deepEqual(checks.filter((c) => !c.pass), []);
  assert.ok(checks.some((c) => /^noise:/.test(c.check) && /noise-10 20\.00 <= noise-20 30\.00/.test(c.detail)));
});

test('ladderChecks: swapped noise rungs fail the noise check only', () => {
  const rows = goodRows().map((r) => (r.cell === 'noise-20' ? { ...r, fid: 50 } : r.cell === 'noise-40' ? { ...r, fid: 30 } : r));
  const failed = ladderChecks(rows).filter((c) => !c.pass);
  assert.equal(failed.length, 1);
  assert.match(failed[0].check, /^noise\b/);
  assert.match(failed[0].detail, /noise-40 below noise-20/);
  // A later row of the same cell replaces the earlier one: the rerun fixes the order.
  assert.deepEqual(ladderChecks([...rows, { cell: 'noise-40', fid: 60 }]).filter((c) => !c.pass), []);
});

test('ladderChecks: a missing rung (or one without an FID) fails every check that needs it, naming it', () => {
  const rows = goodRows().filter((r) => r.cell !== 'blur-2');
  const failed = ladderChecks(rows).filter((c) => !c.pass);
  assert.equal(failed.length, 1);
  assert.match(failed[0].check, /^blur\b/);
  assert.match(failed[0].detail, /missing rung blur-2/);
  const noNoise = ladderChecks(goodRows().map((r) => (r.cell === 'gaussian-latents' ? { cell: r.cell, fid: null } : r))).filter((c) => !c.pass);
  assert.deepEqual(noNoise.map((c) => c.check).sort(), ['gaussian-latents-x25 worse than gaussian-latents', 'gaussian: FID rises with the level']);
  for (const c of noNoise) assert.match(c.detail, /missing rung.*gaussian-latents/);
  // The last row of a cell counts, also when it has no FID.
  const lastNull = ladderChecks([...goodRows(), { cell: 'noise-80', fid: null }]).filter((c) => !c.pass);
  assert.deepEqual(lastNull.map((c) => [c.check, c.detail]), [['noise: FID rises with the level', 'missing rung noise-80']]);
  const none = ladderChecks([]);
  assert.ok(none.length > 0 && none.every((c) => !c.pass));
});

test("ladderChecks: 'worse' needs more than 1.96 sqrt(se1² + se2²) when both rows have an se", () => {
  const withSe = (se: number | null, fid10 = 105) =>
    goodRows().map((r) => (r.cell === 'contrast-10' ? { ...r, fid: fid10, fid_se: se } : r.cell === 'autoencoder' ? { ...r, fid: 100, fid_se: se } : r));
  const verdict = (rows: ReturnType<typeof goodRows>) => ladderChecks(rows).find((c) => c.check === 'contrast-10 worse than autoencoder')!;
  // 5 apart, se 2 each: needs > 1.96 sqrt(8) = 5.54.
  const close = verdict(withSe(2));
  assert.equal(close.pass, false);
  assert.match(close.detail, /needs > 5\.54/);
  assert.equal(verdict(withSe(1)).pass, true); // needs > 2.77
  assert.equal(verdict(withSe(null)).pass, true); // no se: any margin
  assert.equal(verdict(withSe(null, 100)).pass, false); // a tie is not worse
  // One se only: the plain comparison.
  const oneSe = goodRows().map((r) => (r.cell === 'contrast-10' ? { ...r, fid: 101, fid_se: 50 } : r.cell === 'autoencoder' ? { ...r, fid: 100 } : r));
  assert.equal(verdict(oneSe).pass, true);
});

// ---- runCalibration end to end ------------------------------------------------------------

function experiment(over: Partial<ExperimentConfig['eval']> = {}): ExperimentConfig {
  return validateExperiment({
    name: 'cal',
    data: { kind: 'synthetic', size: 32, num: 24, seed: 0 },
    autoencoder: { kind: 'identity' },
    train: { steps: 4, batchSize: 4, lr: 1e-3, emaDecay: 0.9, emaWarmup: true, seed: 1, ckptEvery: 2, flip: true, gradClip: null },
    eval: { atSteps: [4], numSamples: 6, sampler: 'ddpm', samplingSteps: 3, cfgScale: 1, guidanceChannels: 'first3', features: 'default', refImages: 24, seed: 0, refSeed: 2, ...over },
    studies: [{ name: 'scaling', models: ['mini-S/4'], variants: ['adaln-zero'] }],
  });
}

/**
 * A pipeline without networks: held-out images from the generator (seed 2), latents are
 * pixels in [-1, 1] (identity autoencoder), and 'fid' is the mean absolute difference
 * from the held-out images.
 */
function fakePipe(n: number) {
  const held = new SyntheticDataset({ seed: 2, num: 100 }).readBatch(24, n);
  const calls: Array<{ images: Uint8Array; labels?: Int32Array }> = [];
  let encodes = 0;
  const source = { shape: [3, 32, 32], id: 'fake-pixels', size: 0, numClasses: 10, read: () => { throw new Error('unused'); } } as TrainingSource;
  return {
    calls,
    encodes: () => encodes,
    pipe: {
      source,
      featureNet: 'mad',
      dataset: new SyntheticDataset({ seed: 0, num: 24 }),
      heldOut: (m: number) => {
        assert.equal(m, n);
        return { images: held.images.slice(), labels: held.labels.slice() };
      },
      encode: (images: Uint8Array, m: number) => {
        encodes++;
        assert.equal(images.length, m * 32 * 32 * 3);
        return Float32Array.from(images, (v) => v / 127.5 - 1);
      },
      decode: (latents: Float32Array, shape: [number, number, number, number]) => {
        assert.deepEqual(shape, [n, 3, 32, 32]);
        return Uint8Array.from(latents, (v) => Math.max(0, Math.min(255, Math.round((v + 1) * 127.5))));
      },
      evaluate: async (images: Uint8Array, m: number, labels?: Int32Array) => {
        assert.equal(m, n);
        assert.equal(images.length, held.images.length);
        calls.push({ images, labels });
        let d = 0;
        for (let i = 0; i < images.length; i++) d += Math.abs(images[i] - held.images[i]);
        return { fid: d / images.length, sfid: null, inception_score: null, precision: null, recall: null, fid_se: 0.01 };
      },
    },
  };
}

test('runCalibration writes one row per rung, then nothing; a file holding some rungs gets only the rest', async () => {
  const e = experiment({ finalNumSamples: 8 });
  const n = 8;
  const file = path.join(tmp(), 'cal.csv');
  const f = fakePipe(n);
  const logs: string[] = [];
  const rows = await runCalibration(e, f.pipe, file, (m) => logs.push(m));
  assert.deepEqual(rows.map((r) => r.cell), [...CALIBRATION_CELLS]);
  assert.equal(f.encodes(), 1, 'the held-out images are encoded once for every latent rung');
  const saved = readResults(file);
  assert.deepEqual(saved.map((r) => r.cell), [...CALIBRATION_CELLS]);
  for (const r of saved) {
    assert.equal(r.model, r.cell);
    assert.equal(r.study, 'calibration');
    assert.equal(r.experiment, 'cal');
    assert.equal(r.num_samples, n);
    assert.equal(r.feature_net, 'mad');
    assert.equal(typeof r.fid, 'number');
  }
  const fid = Object.fromEntries(saved.map((r) => [String(r.cell), r.fid as number]));
  // Identity latents: real images and their reconstructions are the held-out images themselves.
  assert.equal(fid['real-images'], 0);
  assert.equal(fid.autoencoder, 0);
  for (const k of ['noise-10', 'blur-1', 'contrast-1.5', 'greyscale', 'channel-permutation', 'background-only', 'latents-x3', 'gaussian-latents']) assert.ok(fid[k] > 0, k);
  for (const [a, b] of [['noise-10', 'noise-20'], ['noise-40', 'noise-80'], ['blur-1', 'blur-3'], ['contrast-1.5', 'contrast-10'], ['latents-x3', 'latents-x10'], ['gaussian-latents', 'gaussian-latents-x25']]) {
    assert.ok(fid[a] < fid[b], `${a} ${fid[a]} < ${b} ${fid[b]}`);
  }
  // The rungs' inputs: labels of the class rungs are theirs, the others the held-out labels.
  const at = (cell: string) => f.calls[CALIBRATION_CELLS.indexOf(cell)];
  assert.ok(at('one-class').labels!.every((l) => l === 0));
  assert.ok(at('five-classes').labels!.every((l) => l < 5));
  const seed = calibrationSyntheticSeed(e);
  assert.equal(seed, 1002);
  assert.deepEqual(at('one-class').images, syntheticClassImages(1002, [0], n, 32).images);
  assert.deepEqual(at('background-only').images, renderBackgrounds(1002, 0, n, 32).images);
  assert.deepEqual(at('noise-20').images, addNoise(f.pipe.heldOut(n).images, 20, e.eval.seed));
  assert.deepEqual(at('greyscale').labels, f.pipe.heldOut(n).labels);
  assert.match(logs.join('\n'), /calibration ladder: /);

  // Again: everything is there, nothing is evaluated or written.
  const before = fs.readFileSync(file, 'utf8');
  assert.deepEqual(await runCalibration(e, f.pipe, file), []);
  assert.equal(f.calls.length, CALIBRATION_CELLS.length);
  assert.equal(fs.readFileSync(file, 'utf8'), before);

  // A results file from before the ladder (the three original rungs): only the rest run.
  const lines = before.trimEnd().split('\n');
  const cellCol = lines[0].split(',').indexOf('cell');
  const old = [lines[0], ...lines.slice(1).filter((l) => (CALIBRATION_REFERENCE_LINES as readonly string[]).includes(l.split(',')[cellCol]))];
  assert.equal(old.length, 4);
  const file2 = path.join(tmp(), 'old.csv');
  fs.writeFileSync(file2, old.join('\n') + '\n');
  const g = fakePipe(n);
  const added = await runCalibration(e, g.pipe, file2);
  assert.deepEqual(added.map((r) => r.cell), CALIBRATION_CELLS.filter((c) => !(CALIBRATION_REFERENCE_LINES as readonly string[]).includes(c)));
  assert.equal(readResults(file2).length, CALIBRATION_CELLS.length);

  // Other settings are another calibration: all rungs again.
  const h = fakePipe(n);
  assert.equal((await runCalibration(experiment({ finalNumSamples: 8, samplingSteps: 5 }), h.pipe, file)).length, CALIBRATION_CELLS.length);
});

test('runCalibration on shard data skips the rungs drawn from the synthetic generator', async () => {
  const base = experiment();
  const e: ExperimentConfig = { ...base, data: { kind: 'shard', path: '/nonexistent', size: 32 }, eval: { ...base.eval, refSeed: undefined } };
  assert.equal(calibrationSyntheticSeed(e), null);
  const f = fakePipe(6);
  const logs: string[] = [];
  const rows = await runCalibration(e, f.pipe, path.join(tmp(), 'shard.csv'), (m) => logs.push(m));
  const synthetic = ['five-classes', 'one-class', 'background-only'];
  assert.deepEqual(rows.map((r) => r.cell), CALIBRATION_CELLS.filter((c) => !synthetic.includes(c)));
  for (const c of synthetic) assert.match(logs.join('\n'), new RegExp(`calibration ${c} skipped`));
  assert.match(logs.join('\n'), /missing rungs? (five-classes|one-class)/);
});

/** sha256 of the first 20 images of synthetic seed 0 at 32 pixels (SYNTHETIC_VERSION 2). */
const PINNED_SEED0_FIRST20 = 'e4a850cb3717c47d27485653808bc1caa8d3054b88b4afaee2e2f40b421ccf87';
