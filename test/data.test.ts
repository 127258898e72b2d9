// The synthetic dataset, shard storage and the dataset helpers (lib/data).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  classCounts,
  firstPerClass,
  flipImage,
  fromModelOutput,
  pixelSource,
  toModelInput,
} from '../lib/data/dataset';
import {
  ensureSyntheticDataset,
  openShardDataset,
  readManifest,
  ShardWriter,
  syntheticStaleness,
  MANIFEST,
  SHARD,
} from '../lib/data/store';
import { generateSynthetic, SyntheticDataset, SYNTHETIC_CLASSES, SYNTHETIC_VERSION, syntheticLabel } from '../lib/data/synthetic';
import { drawFlips } from '../lib/train/order';
import { Rng } from '../lib/util/rng';

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'dit-data-'));
}

const equalBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

test('synthetic: same seed gives identical bytes, another seed differs, slices agree', () => {
  const a = generateSynthetic({ seed: 7, count: 30 });
  const b = generateSynthetic({ seed: 7, count: 30 });
  const c = generateSynthetic({ seed: 8, count: 30 });
  assert.equal(a.images.length, 30 * 32 * 32 * 3);
  assert.ok(equalBytes(a.images, b.images));
  assert.deepEqual(a.labels, b.labels);
  assert.ok(!equalBytes(a.images, c.images));
  // Image i depends only on (seed, i): a slice equals the same images of the whole.
  const s = generateSynthetic({ seed: 7, start: 11, count: 5 });
  assert.ok(equalBytes(s.images, a.images.subarray(11 * 3072, 16 * 3072)));
  assert.deepEqual(s.labels, a.labels.subarray(11, 16));
  // Every image differs from every other one.
  const seen = new Set<string>();
  for (let i = 0; i < 30; i++) seen.add(Buffer.from(a.images.subarray(i * 3072, (i + 1) * 3072)).toString('base64'));
  assert.equal(seen.size, 30);
});

test('synthetic: classes are balanced in every block of 10 and in any prefix to within one', () => {
  const k = SYNTHETIC_CLASSES.length;
  assert.ok(k >= 10);
  const labels = Int32Array.from({ length: 203 }, (_, i) => syntheticLabel(3, i));
  for (let b = 0; b + k <= labels.length; b += k) {
    assert.deepEqual([...labels.subarray(b, b + k)].sort((x, y) => x - y), [...Array(k).keys()]);
  }
  const counts = classCounts(labels, k);
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, String(counts));
  // Labels are shuffled within blocks, not a fixed cycle.
  assert.notDeepEqual([...labels.subarray(0, k)], [...labels.subarray(k, 2 * k)]);
});

test('synthetic: 64x64 option, and images are not trivial', () => {
  const b = generateSynthetic({ seed: 1, count: 10, size: 64 });
  assert.equal(b.images.length, 10 * 64 * 64 * 3);
  for (let i = 0; i < 10; i++) {
    const img = b.images.subarray(i * 64 * 64 * 3, (i + 1) * 64 * 64 * 3);
    let mean = 0;
    for (const v of img) mean += v;
    mean /= img.length;
    let varc = 0;
    for (const v of img) varc += (v - mean) ** 2;
    assert.ok(Math.sqrt(varc / img.length) > 10, `image ${i} is nearly flat`);
  }
  assert.throws(() => generateSynthetic({ seed: 1, count: 1, size: 48 }), /32 or 64/);
  assert.throws(() => generateSynthetic({ seed: -1, count: 1 }), /seed/);
});

test('synthetic dataset on demand: readBatch, readIndices and allLabels agree with generateSynthetic', () => {
  const ds = new SyntheticDataset({ num: 25, seed: 5 });
  const g = generateSynthetic({ seed: 5, count: 25 });
  const b = ds.readBatch(3, 4);
  assert.ok(equalBytes(b.images, g.images.subarray(3 * 3072, 7 * 3072)));
  const r = ds.readIndices([20, 2]);
  assert.ok(equalBytes(r.images.subarray(0, 3072), g.images.subarray(20 * 3072, 21 * 3072)));
  assert.deepEqual([...r.labels], [g.labels[20], g.labels[2]]);
  assert.deepEqual(ds.allLabels(), g.labels);
  assert.throws(() => ds.readBatch(24, 2), /outside/);
});

test('store: ensureSyntheticDataset writes, reuses, and regenerates when stale or damaged', () => {
  const dir = path.join(tmpDir(), 'synthetic-32');
  const r1 = ensureSyntheticDataset({ dir, num: 40, seed: 2 });
  assert.equal(r1.regenerated, true);
  assert.equal(r1.reason, 'no manifest');
  const m = readManifest(dir);
  assert.equal(m.count, 40);
  assert.equal(m.imageSize, 32);
  assert.deepEqual(m.classNames, [...SYNTHETIC_CLASSES]);
  assert.equal(m.shard.sha256.length, 64);
  assert.deepEqual(m.source, { kind: 'synthetic', generator: 'dit-kit-synthetic', version: SYNTHETIC_VERSION, seed: 2 });
  assert.equal(fs.statSync(path.join(dir, SHARD)).size, 40 * 3072 + 40);
  assert.deepEqual(fs.readdirSync(dir).sort(), [MANIFEST, SHARD].sort(), 'no temp files left behind');

  // Stored bytes are the generator's bytes.
  const g = generateSynthetic({ seed: 2, count: 40 });
  const b = r1.dataset.readBatch(0, 40);
  assert.ok(equalBytes(b.images, g.images));
  assert.deepEqual(b.labels, g.labels);

  const r2 = ensureSyntheticDataset({ dir, num: 40, seed: 2 });
  assert.equal(r2.regenerated, false);

  // Another seed, count, or generator version: regenerated.
  assert.match(syntheticStaleness(dir, { num: 40, seed: 3, size: 32 }) ?? '', /seed/);
  assert.match(syntheticStaleness(dir, { num: 41, seed: 2, size: 32 }) ?? '', /count/);
  const mf = path.join(dir, MANIFEST);
  const j = JSON.parse(fs.readFileSync(mf, 'utf8'));
  j.source.version = 0;
  fs.writeFileSync(mf, JSON.stringify(j));
  const r3 = ensureSyntheticDataset({ dir, num: 40, seed: 2 });
  assert.equal(r3.regenerated, true);
  assert.match(r3.reason ?? '', /version/);

  // One flipped byte in the shard: hash mismatch, regenerated to the right bytes.
  const shard = path.join(dir, SHARD);
  const bytes = fs.readFileSync(shard);
  bytes[100] ^= 0xff;
  fs.writeFileSync(shard, bytes);
  assert.throws(() => openShardDataset(dir), /damaged.*sha256/);
  const r4 = ensureSyntheticDataset({ dir, num: 40, seed: 2 });
  assert.equal(r4.regenerated, true);
  assert.match(r4.reason ?? '', /sha256/);
  assert.ok(equalBytes(r4.dataset.readBatch(0, 40).images, g.images));

  // A truncated shard, and a missing one.
  fs.truncateSync(shard, 1000);
  assert.match(ensureSyntheticDataset({ dir, num: 40, seed: 2 }).reason ?? '', /bytes/);
  fs.rmSync(shard);
  assert.match(ensureSyntheticDataset({ dir, num: 40, seed: 2 }).reason ?? '', /missing/);
  fs.rmSync(path.dirname(dir), { recursive: true });
});

test('store: shard reads in batches and by index; uint16 labels for many classes', () => {
  const dir = tmpDir();
  const names = Array.from({ length: 300 }, (_, i) => `c${i}`);
  const w = new ShardWriter(dir, { imageSize: 2, channels: 3, classNames: names });
  const imgs = Uint8Array.from({ length: 5 * 12 }, (_, i) => i);
  w.append(imgs.subarray(0, 24), [299, 1]);
  w.append(imgs.subarray(24), [256, 0, 42]);
  const m = w.finish({ kind: 'packed', from: 'test', format: 'test', skipped: 0 });
  assert.equal(m.shard.labelDtype, 'uint16');
  const ds = openShardDataset(dir);
  assert.equal(ds.size, 5);
  assert.deepEqual([...ds.allLabels()], [299, 1, 256, 0, 42]);
  const b = ds.readBatch(1, 3);
  assert.deepEqual([...b.images], [...imgs.subarray(12, 48)]);
  const r = ds.readIndices([4, 0, 4]);
  assert.deepEqual([...r.labels], [42, 299, 42]);
  assert.deepEqual([...r.images.subarray(0, 12)], [...imgs.subarray(48, 60)]);
  assert.throws(() => ds.readIndices([5]), /outside/);
  assert.throws(() => new ShardWriter(dir, { imageSize: 2, channels: 3, classNames: ['a'] }).append(new Uint8Array(12), [1]), /outside/);
  fs.rmSync(dir, { recursive: true });
});

test('model input: uint8 NHWC -> NCHW [-1, 1] -> uint8 round-trips exactly', () => {
  const n = 2, s = 3, c = 3;
  const imgs = Uint8Array.from({ length: n * s * s * c }, (_, i) => (i * 37) % 256);
  imgs[0] = 0;
  imgs[1] = 255;
  const x = toModelInput(imgs, n, s, c);
  assert.equal(x[0], -1);
  // NCHW: channel 1 of image 0, pixel 0 is NHWC byte 1.
  assert.equal(x[s * s], 1);
  assert.ok(Math.abs(x[(1 * c + 2) * s * s + 4] - (imgs[(s * s + 4) * c + 2] / 127.5 - 1)) < 1e-7);
  assert.deepEqual(fromModelOutput(x, n, s, c), imgs);
  // Out-of-range model outputs clamp.
  assert.deepEqual([...fromModelOutput(Float32Array.from([-3, 5, 0]), 1, 1, 3)], [0, 255, 128]);
});

test('flips: seeded, mirror each chosen image', () => {
  const s = 4, c = 3;
  const images = Uint8Array.from({ length: 8 * s * s * c }, (_, i) => i % 251);
  const f1 = drawFlips(new Rng(9), 8, true)!;
  const f2 = drawFlips(new Rng(9), 8, true)!;
  assert.deepEqual(f1, f2);
  assert.ok(f1.some((v) => v) && f1.some((v) => !v));
  const b1 = images.slice();
  for (let i = 0; i < 8; i++) if (f1[i]) flipImage(b1, i, s, c);
  for (let i = 0; i < 8; i++) {
    const px = (img: Uint8Array, x: number, y: number, ch: number) => img[((i * s + y) * s + x) * c + ch];
    for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) {
      assert.equal(px(b1, x, y, 1), px(images, f1[i] ? s - 1 - x : x, y, 1));
    }
  }
});

test('pixelSource: NCHW inputs by index with flips, and firstPerClass picks', () => {
  const ds = new SyntheticDataset({ num: 20, seed: 4 });
  const src = pixelSource(ds, 'synthetic:4');
  assert.deepEqual(src.shape, [3, 32, 32]);
  const { x, y } = src.read([3, 3], Uint8Array.from([0, 1]));
  assert.deepEqual([...y], [syntheticLabel(4, 3), syntheticLabel(4, 3)]);
  const hw = 32 * 32 * 3;
  for (let r = 0; r < 32; r += 7) assert.equal(x[hw + r * 32 + 31], x[r * 32], 'second copy is mirrored');
  const picks = firstPerClass(ds.allLabels(), 10, 2);
  assert.equal(picks.length, 10);
  for (const [c, idx] of picks.entries()) {
    assert.equal(idx.length, 2);
    for (const i of idx) assert.equal(syntheticLabel(4, i), c);
  }
});
