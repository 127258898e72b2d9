// PNG and JPEG codecs, PIL-exact resampling (against scripts/fixtures/make_data_fixtures.py)
// and image grids (lib/data).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readNpz } from '../lib/io/npy';
import { gridPixels, imageGrid } from '../lib/data/grid';
import { decodeImage, decodeJpeg, encodeJpeg, readImage, toRGB } from '../lib/data/image';
import { decodePng, encodePng, RawImage } from '../lib/data/png';
import { centerCropArr, resample, ResampleFilter, roundHalfEven } from '../lib/data/resize';
import { repoRoot } from '../lib/util/paths';
import { Rng } from '../lib/util/rng';

const FIX = path.join(repoRoot(), 'test', 'fixtures', 'data');

/** A smooth image with noise and hard edges, so every PNG filter type wins some row. */
function testImage(w: number, h: number, ch: number, seed: number): RawImage {
  const rng = new Rng(seed);
  const data = new Uint8Array(w * h * ch);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < ch; c++) {
    const smooth = 128 + 100 * Math.sin(0.3 * x + 0.2 * y + c);
    data[(y * w + x) * ch + c] = y % 5 === 0 ? rng.int(256) : Math.max(0, Math.min(255, Math.round(smooth + 4 * rng.normal())));
  }
  return { width: w, height: h, channels: ch, data };
}

test('PNG: encode/decode round-trips grey, grey+alpha, RGB and RGBA exactly', () => {
  for (const ch of [1, 2, 3, 4]) {
    const img = testImage(23, 17, ch, ch);
    const png = encodePng(img);
    const back = decodePng(png, 'round-trip.png');
    assert.deepEqual({ ...back, data: null }, { ...img, data: null });
    assert.deepEqual(back.data, img.data);
  }
  // Each filter type forced on every row (PIL's files above never use type 3).
  for (const ch of [1, 3, 4]) {
    const img = testImage(19, 13, ch, 10 + ch);
    for (let ft = 0; ft <= 4; ft++) assert.deepEqual(decodePng(encodePng(img, { filter: ft })).data, img.data, `filter ${ft}, ${ch} channels`);
  }
  // 1x1 and a long single row.
  for (const [w, h] of [[1, 1], [300, 1], [1, 40]]) {
    const img = testImage(w, h, 3, 9);
    assert.deepEqual(decodePng(encodePng(img)).data, img.data);
  }
});

test('PNG: decodes files written by PIL (all modes) to the pixels PIL reads', () => {
  const expected = readNpz(path.join(FIX, 'png.npz'));
  for (const [name, want] of Object.entries(expected)) {
    const img = decodePng(fs.readFileSync(path.join(FIX, 'png', `${name}.png`)), name);
    const ch = want.shape.length === 3 ? want.shape[2] : 1;
    assert.deepEqual([img.height, img.width, img.channels], [want.shape[0], want.shape[1], ch], name);
    assert.deepEqual(img.data, want.data, name);
  }
  // Through decodeImage everything is RGB, as PIL's convert('RGB').
  const rgb = readImage(path.join(FIX, 'png', 'gray_alpha.png'));
  assert.equal(rgb.channels, 3);
  const la = expected.gray_alpha.data as Uint8Array;
  assert.deepEqual([rgb.data[0], rgb.data[1], rgb.data[2]], [la[0], la[0], la[0]]);
});

test('PNG: interlaced, 16-bit, corrupt and truncated files are refused with the file named', () => {
  const interlaced = path.join(FIX, 'png', 'interlaced.png');
  assert.throws(() => readImage(interlaced), (e: Error) => e.message.includes(interlaced) && /interlaced/.test(e.message));
  assert.throws(() => readImage(path.join(FIX, 'png', 'gray16.png')), /16-bit/);
  const good = encodePng(testImage(8, 8, 3, 1));
  const crc = Buffer.from(good);
  crc[40] ^= 1; // inside IDAT
  assert.throws(() => decodePng(crc, 'x/bad-crc.png'), /x\/bad-crc\.png: corrupt PNG \(CRC mismatch/);
  assert.throws(() => decodePng(good.subarray(0, good.length - 20), 'cut.png'), /cut\.png: truncated PNG/);
  assert.throws(() => decodePng(Buffer.from('not a png at all'), 'n.png'), /n\.png: not a PNG/);
});

test('JPEG: jpeg-js round trip is close; garbage and truncated data are errors naming the file', () => {
  const img = testImage(40, 24, 3, 5);
  for (let i = 0; i < img.data.length; i++) img.data[i] = 64 + (img.data[i] >> 1); // tame the noise rows
  const smooth: RawImage = { ...img, data: img.data.map((v, i) => (Math.floor(i / 120) % 5 === 0 ? 128 : v)) };
  const jpg = encodeJpeg(smooth, 95);
  const back = decodeImage(jpg, 'a.jpg');
  assert.deepEqual([back.width, back.height, back.channels], [40, 24, 3]);
  let err = 0;
  for (let i = 0; i < back.data.length; i++) err += Math.abs(back.data[i] - smooth.data[i]);
  assert.ok(err / back.data.length < 6, `mean abs error ${err / back.data.length}`);
  assert.throws(() => decodeJpeg(jpg.subarray(0, jpg.length >> 1), 'half.jpg'), /half\.jpg: corrupt or unsupported JPEG/);
  assert.throws(() => decodeImage(Buffer.from([0xff, 0xd8, 0xff, 0, 1, 2, 3]), 'junk.jpg'), /junk\.jpg/);
  assert.throws(() => decodeImage(Buffer.from('GIF89a....'), 'g.gif'), /g\.gif: unsupported image format/);
  assert.throws(() => decodeImage(new Uint8Array(0), 'e.png'), /e\.png: empty file/);
});

test('resize: center_crop_arr and PIL resizes match Pillow exactly', () => {
  const arrays = readNpz(path.join(FIX, 'resize.npz'));
  const meta = JSON.parse(fs.readFileSync(path.join(FIX, 'resize.json'), 'utf8'));
  const cases = Object.entries(meta.cases as Record<string, { op: string; size?: number; width?: number; height?: number; filter?: ResampleFilter }>);
  assert.ok(cases.length >= 10);
  for (const [name, c] of cases) {
    const a = arrays[`${name}_in`], want = arrays[`${name}_out`];
    const img: RawImage = { width: a.shape[1], height: a.shape[0], channels: a.shape[2], data: a.data as Uint8Array };
    const got = c.op === 'center_crop_arr' ? centerCropArr(img, c.size as number) : resample(img, c.width as number, c.height as number, c.filter as ResampleFilter);
    assert.deepEqual([got.height, got.width, got.channels], want.shape, name);
    let maxDiff = 0;
    for (let i = 0; i < got.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got.data[i] - (want.data[i] as number)));
    assert.equal(maxDiff, 0, `${name}: max difference ${maxDiff} from PIL ${meta.pil}`);
  }
});

test('resize helpers: Python rounding, identity resize is a copy, toRGB', () => {
  assert.deepEqual([0.5, 1.5, 2.5, 3.5, 2.4, 2.6].map(roundHalfEven), [0, 2, 2, 4, 2, 3]);
  const img = testImage(5, 4, 3, 2);
  const same = resample(img, 5, 4, 'bicubic');
  assert.deepEqual(same.data, img.data);
  assert.notEqual(same.data, img.data);
  const g = toRGB({ width: 2, height: 1, channels: 1, data: Uint8Array.from([7, 9]) });
  assert.deepEqual([...g.data], [7, 7, 7, 9, 9, 9]);
});

test('grid: layout, padding and zoom; PNG decodes to the same pixels', () => {
  const s = 4, n = 5;
  const images = Uint8Array.from({ length: n * s * s * 3 }, (_, i) => Math.floor(i / (s * s * 3)) * 40 + 10);
  const g = gridPixels(images, n, s, 3, { pad: 1, padValue: 255 });
  assert.equal(g.width, 3 * s + 4);
  assert.equal(g.height, 2 * s + 3);
  const at = (x: number, y: number) => g.data[(y * g.width + x) * 3];
  assert.equal(at(0, 0), 255);
  assert.equal(at(1, 1), 10); // image 0
  assert.equal(at(1 + s + 1, 1), 50); // image 1
  assert.equal(at(1, 1 + s + 1), 130); // image 3, second row
  assert.equal(at(g.width - 2, g.height - 2), 255); // empty sixth cell
  const png = imageGrid(images, n, s, 3, { pad: 1 });
  assert.deepEqual(decodePng(png).data, g.data);
  const z = gridPixels(images, n, s, 5, { pad: 0, zoom: 2 });
  assert.deepEqual([z.width, z.height], [5 * 2 * s, 2 * s]);
  assert.equal(z.data[(1 * z.width + 2 * s) * 3], 50);
  assert.throws(() => gridPixels(images, 6, s, 3), /fewer than 6 images/);
});
