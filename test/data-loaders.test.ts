// Real-data loaders (image folder, CIFAR-10, npz), corrupt-file handling and `dit data`
// (lib/data/loaders.ts, lib/cli/data.ts), on small data made here in a temp folder.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { dataCommand } from '../lib/cli/data';
import { hostArray } from '../lib/io/array';
import { writeNpz } from '../lib/io/npy';
import { encodeJpeg, readImage } from '../lib/data/image';
import { CifarDataset, detectDatasetKind, ImageFolderDataset, openDataset, openNpzDataset, scanImageFolder } from '../lib/data/loaders';
import { decodePng, encodePng, RawImage } from '../lib/data/png';
import { centerCropArr } from '../lib/data/resize';
import { openShardDataset, readManifest } from '../lib/data/store';
import { generateSynthetic } from '../lib/data/synthetic';

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'dit-loaders-'));
}

/** A w x h RGB image whose pixels encode a tag, so a test can tell files apart. */
function tagged(w: number, h: number, tag: number): RawImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const o = (y * w + x) * 3;
    data[o] = tag;
    data[o + 1] = (x * 255) / Math.max(1, w - 1);
    data[o + 2] = (y * 255) / Math.max(1, h - 1);
  }
  return { width: w, height: h, channels: 3, data };
}

/** root/{cat,ant,bee}: PNGs and JPEGs of assorted sizes, a nested folder, a non-image, a hidden folder. */
function makeImageFolder(): string {
  const root = tmpDir();
  const put = (rel: string, bytes: Uint8Array) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), bytes);
  };
  put('cat/b.png', encodePng(tagged(40, 30, 200)));
  put('cat/a.JPEG', encodeJpeg(tagged(33, 47, 180), 95));
  put('ant/x.png', encodePng(tagged(16, 16, 20)));
  put('ant/sub/y.png', encodePng(tagged(70, 20, 40)));
  put('ant/notes.txt', Buffer.from('not an image'));
  put('bee/z.jpg', encodeJpeg(tagged(64, 64, 100), 95));
  put('.cache/junk.png', encodePng(tagged(8, 8, 1)));
  return root;
}

const quiet = () => {
  const lines: string[] = [];
  return { lines, log: (m: string) => lines.push(m) };
};

test('image folder: sorted class names give the labels, files in walk order, images cropped to size', () => {
  const root = makeImageFolder();
  const scan = scanImageFolder(root);
  assert.deepEqual(scan.classNames, ['ant', 'bee', 'cat']);
  assert.deepEqual(scan.files.map((f) => path.relative(root, f)), ['ant/x.png', 'ant/sub/y.png', 'bee/z.jpg', 'cat/a.JPEG', 'cat/b.png']);
  assert.deepEqual([...scan.labels], [0, 0, 1, 2, 2]);
  const ds = new ImageFolderDataset(root, { imageSize: 16, log: quiet().log });
  assert.equal(ds.size, 5);
  assert.equal(ds.numClasses, 3);
  const b = ds.readBatch(0, 5);
  assert.equal(b.images.length, 5 * 16 * 16 * 3);
  assert.deepEqual([...b.labels], [0, 0, 1, 2, 2]);
  // Pixels come with their own label: the red channel carries the file's tag.
  const tags = [20, 40, 100, 180, 200];
  for (let i = 0; i < 5; i++) assert.ok(Math.abs(b.images[i * 768 + 8 * 48 + 24] - tags[i]) <= 3, `image ${i}`);
  // Cropping is center_crop_arr of the decoded file.
  const want = centerCropArr(readImage(path.join(root, 'ant/sub/y.png')), 16);
  assert.deepEqual(b.images.subarray(768, 1536), want.data);
  assert.deepEqual([...ds.readIndices([4, 1]).labels], [2, 0]);
  fs.rmSync(root, { recursive: true });
});

test('image folder: a corrupt image is reported by path and skipped, or refused with onError throw', () => {
  const root = makeImageFolder();
  const bad = path.join(root, 'bee', 'broken.jpg');
  fs.writeFileSync(bad, Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 5]));
  const q = quiet();
  const ds = new ImageFolderDataset(root, { imageSize: 8, log: q.log });
  const files = ds.files.map((f) => path.relative(root, f));
  const ib = files.indexOf('bee/broken.jpg');
  assert.ok(ib >= 0);
  const b = ds.readBatch(0, ds.size);
  assert.equal(ds.skipped.length, 1);
  assert.equal(ds.skipped[0].path, bad);
  assert.ok(q.lines.some((l) => l.includes(bad)), q.lines.join('\n'));
  assert.match(ds.summary(), /1 unreadable \(skipped\)/);
  // Its slot holds the next readable image with that image's label, never the broken file's.
  assert.equal(b.labels[ib], ds.labels[ib + 1]);
  assert.deepEqual(b.images.subarray(ib * 192, (ib + 1) * 192), b.images.subarray((ib + 1) * 192, (ib + 2) * 192));
  const strict = new ImageFolderDataset(root, { imageSize: 8, onError: 'throw' });
  assert.throws(() => strict.readBatch(0, strict.size), (e: Error) => e.message.includes(bad));
  fs.rmSync(root, { recursive: true });
});

test('image folder: no classes or an empty class folder is an error', () => {
  const root = tmpDir();
  assert.throws(() => scanImageFolder(root), /no class subfolders/);
  fs.mkdirSync(path.join(root, 'a'));
  fs.writeFileSync(path.join(root, 'a', 'readme.txt'), 'x');
  assert.throws(() => scanImageFolder(root), /holds no images/);
  fs.rmSync(root, { recursive: true });
});

/** CIFAR-10 binary records: label byte, then R, G, B planes of 32x32. */
function cifarRecords(labels: number[], seed: number): Buffer {
  const out = Buffer.alloc(labels.length * 3073);
  labels.forEach((l, r) => {
    out[r * 3073] = l;
    for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) out[r * 3073 + 1 + c * 1024 + p] = (seed * 31 + r * 7 + c * 50 + p) % 256;
  });
  return out;
}

test('CIFAR-10: labels, CHW -> HWC, train/test split, corrupt files and records', () => {
  const dir = path.join(tmpDir(), 'cifar-10-batches-bin');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'data_batch_1.bin'), cifarRecords([3, 9, 0], 1));
  fs.writeFileSync(path.join(dir, 'data_batch_2.bin'), cifarRecords([5, 5], 2));
  fs.writeFileSync(path.join(dir, 'test_batch.bin'), cifarRecords([7], 3));
  fs.writeFileSync(path.join(dir, 'batches.meta.txt'), 'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n');
  const parent = path.dirname(dir);
  assert.equal(detectDatasetKind(parent), 'cifar10');
  const ds = new CifarDataset(parent);
  assert.equal(ds.size, 5);
  assert.equal(ds.classNames[3], 'cat');
  assert.deepEqual([...ds.allLabels()], [3, 9, 0, 5, 5]);
  const b = ds.readBatch(0, 5);
  assert.deepEqual([...b.labels], [3, 9, 0, 5, 5]);
  // Image 1 (record 1 of batch 1), pixel p = 33, channel c: (31 + 7 + 50c + 33) % 256.
  for (let c = 0; c < 3; c++) assert.equal(b.images[1 * 3072 + 33 * 3 + c], (31 + 7 + 50 * c + 33) % 256);
  assert.deepEqual([...new CifarDataset(dir, { split: 'test' }).allLabels()], [7]);
  assert.equal(new CifarDataset(dir, { imageSize: 16 }).readBatch(0, 1).images.length, 16 * 16 * 3);

  // A record with label 12 and a truncated batch file.
  const recs = cifarRecords([1, 12, 2], 4);
  fs.writeFileSync(path.join(dir, 'data_batch_3.bin'), recs);
  fs.writeFileSync(path.join(dir, 'data_batch_4.bin'), recs.subarray(0, 5000));
  const q = quiet();
  const skipping = new CifarDataset(dir, { log: q.log });
  assert.deepEqual([...skipping.allLabels()], [3, 9, 0, 5, 5, 1, 2]);
  assert.equal(skipping.skipped.length, 2);
  assert.ok(skipping.skipped.some((s) => s.path === `${path.join(dir, 'data_batch_3.bin')}#1`));
  assert.ok(skipping.skipped.some((s) => s.path === path.join(dir, 'data_batch_4.bin')));
  assert.throws(() => new CifarDataset(dir, { onError: 'throw' }), /data_batch_3\.bin: record 1 has label 12/);
  fs.rmSync(parent, { recursive: true });
});

test('npz: ADM layout with and without labels; wrong layouts are refused', () => {
  const dir = tmpDir();
  const g = generateSynthetic({ seed: 1, count: 6 });
  const withLabels = path.join(dir, 'batch.npz');
  writeNpz(withLabels, {
    arr_0: hostArray('uint8', [6, 32, 32, 3], g.images),
    arr_1: hostArray('int64', [6], BigInt64Array.from(g.labels, (v) => BigInt(v))),
  });
  const ds = openNpzDataset(withLabels);
  assert.equal(ds.size, 6);
  assert.equal(ds.imageSize, 32);
  assert.deepEqual(ds.readBatch(0, 6).labels, g.labels);
  assert.deepEqual(ds.readBatch(0, 6).images, g.images);
  assert.equal(openNpzDataset(withLabels, { imageSize: 16 }).readBatch(0, 1).images.length, 768);
  const noLabels = path.join(dir, 'ref.npz');
  writeNpz(noLabels, { arr_0: hostArray('uint8', [6, 32, 32, 3], g.images) });
  const u = openDataset(noLabels).dataset;
  assert.deepEqual(u.classNames, ['unlabelled']);
  assert.deepEqual([...u.allLabels()], [0, 0, 0, 0, 0, 0]);
  const wrong = path.join(dir, 'wrong.npz');
  writeNpz(wrong, { arr_0: hostArray('float32', [1, 2, 2, 3], new Float32Array(12)) });
  assert.throws(() => openNpzDataset(wrong), /wrong\.npz: arr_0 is float32\[1, 2, 2, 3\]/);
  fs.writeFileSync(path.join(dir, 'corrupt.npz'), Buffer.from('PK\x03\x04 this is not really a zip'));
  assert.throws(() => openNpzDataset(path.join(dir, 'corrupt.npz')), /corrupt\.npz/);
  fs.rmSync(dir, { recursive: true });
});

/** Runs `dit data ...` with console.log captured. */
async function dit(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const orig = console.log;
  const origErr = process.stderr.write.bind(process.stderr);
  console.log = (...a: unknown[]) => void lines.push(a.join(' '));
  process.stderr.write = ((s: string | Uint8Array) => (lines.push(String(s)), true)) as typeof process.stderr.write;
  try {
    return { code: await dataCommand.run(args), out: lines.join('\n') };
  } finally {
    console.log = orig;
    process.stderr.write = origErr;
  }
}

test('dit data synth | show | pack on synthetic, image-folder, CIFAR and npz sources', async () => {
  const dir = tmpDir();
  const syn = path.join(dir, 'syn');
  let r = await dit(['synth', '--out', syn, '--num', '30', '--seed', '3']);
  assert.equal(r.code, 0);
  assert.match(r.out, /generated 30 images/);
  assert.match(r.out, /images\/s/);
  assert.match((await dit(['synth', '--out', syn, '--num', '30', '--seed', '3'])).out, /up to date/);
  assert.equal(readManifest(syn).count, 30);

  const grid = path.join(dir, 'grid.png');
  r = await dit(['show', syn, '--out', grid, '--per-class', '2']);
  assert.equal(r.code, 0);
  let png = decodePng(fs.readFileSync(grid));
  assert.deepEqual([png.width, png.height], [2 * 32 + 3 * 2, 10 * 32 + 11 * 2]);

  const folder = makeImageFolder();
  fs.writeFileSync(path.join(folder, 'cat', 'zz-broken.png'), Buffer.from('\x89PNG\r\n\x1a\nnope'));
  r = await dit(['show', folder, '--out', grid, '--num', '4', '--cols', '2', '--size', '24']);
  assert.equal(r.code, 0);
  png = decodePng(fs.readFileSync(grid));
  assert.deepEqual([png.width, png.height], [2 * 24 + 6, 2 * 24 + 6]);

  const packed = path.join(dir, 'packed');
  r = await dit(['pack', folder, '--out', packed, '--size', '16']);
  assert.equal(r.code, 0);
  assert.match(r.out, /zz-broken\.png/);
  assert.match(r.out, /1 unreadable, skipped/);
  const p = openShardDataset(packed);
  assert.equal(p.size, 5);
  assert.deepEqual([...p.allLabels()], [0, 0, 1, 2, 2]);
  assert.deepEqual(p.classNames, ['ant', 'bee', 'cat']);
  await assert.rejects(dit(['pack', folder, '--out', path.join(dir, 'p2'), '--size', '16', '--on-error', 'throw']), /zz-broken\.png/);

  const npz = path.join(dir, 'b.npz');
  const g = generateSynthetic({ seed: 0, count: 3 });
  writeNpz(npz, { arr_0: hostArray('uint8', [3, 32, 32, 3], g.images) });
  assert.equal((await dit(['show', npz, '--out', grid])).code, 0);
  assert.deepEqual(decodePng(fs.readFileSync(grid)).width, 3 * 32 + 4 * 2);

  const cifar = path.join(dir, 'cifar');
  fs.mkdirSync(cifar);
  fs.writeFileSync(path.join(cifar, 'data_batch_1.bin'), cifarRecords([1, 2], 0));
  r = await dit(['show', cifar, '--out', grid]);
  assert.match(r.out, /cifar10: 2 images 32x32, 10 classes/);

  await assert.rejects(dit(['show', syn]), /--out/);
  await assert.rejects(dit(['synth', '--size', '48']), /32 or 64/);
  await assert.rejects(dit(['frobnicate']), /unknown subcommand/);
  fs.rmSync(dir, { recursive: true });
  fs.rmSync(folder, { recursive: true });
});
