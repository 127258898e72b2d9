// The FID Inception-v3 port against an independent PyTorch statement of pytorch-fid's
// network (scripts/fixtures/make_inception_fixtures.py: every weight and BatchNorm
// statistic random, width 1/16), and the im2col convolution against tf.conv2d.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend';
import { toFloat32 } from '../lib/io/array';
import { readNpz } from '../lib/io/npy';
import { readTensorFile } from '../lib/io/tensor_file';
import { col2imHost, conv2d, convGeometry, im2colHost, setConvImpl, Padding } from '../lib/ops/conv';
import { foldInceptionStateDict, loadInception, InceptionV3 } from '../lib/features/inception';
import { Rng } from '../lib/util/rng';
import { repoRoot } from '../lib/util/paths';
import { relErr } from './helpers';

const FIX = path.join(repoRoot(), 'test', 'fixtures', 'features');


test.before(async () => {
  await initBackend({ quiet: true });
});

function checkAgainstFixture(base: string, opts: { both?: boolean } = {}): void {
  const io = readNpz(`${base}.io.npz`);
  const net = loadInception(`${base}.pt`);
  const biased = new InceptionV3(foldInceptionStateDict(readTensorFile(`${base}.pt`).tensors), { logitsBias: true });
  try {
    for (const tag of opts.both === false ? ['a'] : ['a', 'b']) {
      const img = io[`images_${tag}`];
      const [n, h, w] = img.shape;
      const out = net.forward(img.data as Uint8Array, n, h, w);
      const outB = biased.forward(img.data as Uint8Array, n, h, w);
      const got = { pool: out.pool.dataSync(), logits: out.logits.dataSync(), spatial: out.spatial.dataSync(), logits_biased: outB.logits.dataSync() };
      for (const t of [out.pool, out.logits, out.spatial, outB.pool, outB.logits, outB.spatial]) t.dispose();
      for (const k of ['pool', 'logits', 'logits_biased', 'spatial'] as const) {
        const want = toFloat32(io[`${k}_${tag}`]);
        const err = relErr(got[k], want);
        assert.ok(err < 1e-4, `${path.basename(base)} batch ${tag} ${k}: relative error ${err}`);
      }
    }
  } finally {
    net.dispose();
    biased.dispose();
  }
}

test('Inception-v3 (pytorch-fid FID variant, width 1/16, random weights) matches PyTorch within 1e-4', () => {
  checkAgainstFixture(path.join(FIX, 'inception-w16'));
});

test('Inception output sizes: 2048/d pool, 1008 logits, 7x17x17 spatial', () => {
  const net = loadInception(path.join(FIX, 'inception-w16.pt'));
  try {
    assert.equal(net.widthDiv, 16);
    assert.equal(net.poolDim, 128);
    assert.equal(net.numClasses, 1008);
    assert.equal(net.spatialDim, 2023);
    assert.match(net.id, /^inception-w16-[0-9a-f]{12}$/);
  } finally {
    net.dispose();
  }
});

// By hand: make_inception_fixtures.py --width-div 1 --out DIR, then DIT_INCEPTION_FIXTURE=DIR/inception-w1.
test('full-width Inception fixture (by hand, DIT_INCEPTION_FIXTURE)', { skip: !process.env.DIT_INCEPTION_FIXTURE && 'DIT_INCEPTION_FIXTURE not set' }, () => {
  checkAgainstFixture(process.env.DIT_INCEPTION_FIXTURE!, { both: false });
});

test('a state_dict with a wrong shape or a stray key is refused with the key named', () => {
  const sd = readTensorFile(path.join(FIX, 'inception-w16.pt')).tensors;
  const bad = { ...sd, 'Mixed_6d.branch1x1.bn.running_var': { dtype: 'float32' as const, shape: [5], data: new Float32Array(5) } };
  assert.throws(() => foldInceptionStateDict(bad), /Mixed_6d\.branch1x1\.bn\.running_var should have shape \[12\]/);
  const stray = { ...sd, 'Mixed_9z.conv.weight': sd['fc.bias'] };
  assert.throws(() => foldInceptionStateDict(stray), /unexpected keys.*Mixed_9z/);
  const missing = { ...sd };
  delete missing['fc.weight'];
  assert.throws(() => foldInceptionStateDict(missing), /fc\.weight/);
  assert.throws(() => foldInceptionStateDict({ foo: sd['fc.bias'] }), /not an FID Inception-v3 state_dict/);
});

test('im2col convolution equals tf.conv2d (strides, asymmetric kernels, explicit and same padding), gradients too', () => {
  const rng = new Rng(3);
  const cases: Array<{ x: number[]; k: number[]; stride: number | [number, number]; pad: Padding }> = [
    { x: [2, 9, 8, 3], k: [3, 3, 3, 4], stride: 1, pad: 'same' },
    { x: [2, 9, 8, 3], k: [3, 3, 3, 4], stride: 2, pad: 'valid' },
    { x: [1, 10, 11, 2], k: [1, 7, 2, 3], stride: 1, pad: [0, 0, 3, 3] },
    { x: [1, 10, 11, 2], k: [7, 1, 2, 3], stride: 1, pad: [3, 3, 0, 0] },
    { x: [2, 8, 8, 5], k: [4, 4, 5, 2], stride: 2, pad: 'same' },
    { x: [3, 4, 4, 6], k: [1, 1, 6, 5], stride: 1, pad: 'valid' },
  ];
  try {
    for (const c of cases) {
      const x = tf.tensor4d(rng.fillNormal(new Float32Array(c.x.reduce((a, b) => a * b))), c.x as [number, number, number, number]);
      const k = tf.tensor4d(rng.fillNormal(new Float32Array(c.k.reduce((a, b) => a * b))), c.k as [number, number, number, number]);
      const run = (impl: 'tf' | 'im2col') => {
        setConvImpl(impl);
        const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(conv2d(a as tf.Tensor4D, b as tf.Tensor4D, { stride: c.stride, pad: c.pad })));
        const y = conv2d(x, k, { stride: c.stride, pad: c.pad });
        const [gx, gk] = tf.grads(f)([x, k]);
        const r = { y: y.dataSync().slice(), shape: y.shape, gx: gx.dataSync().slice(), gk: gk.dataSync().slice() };
        tf.dispose([y, gx, gk]);
        return r;
      };
      const a = run('tf'), b = run('im2col');
      const what = JSON.stringify(c);
      assert.deepEqual(b.shape, a.shape, what);
      assert.ok(relErr(b.y, a.y) < 1e-5, `forward ${what}`);
      assert.ok(relErr(b.gx, a.gx) < 1e-5, `input gradient ${what}`);
      assert.ok(relErr(b.gk, a.gk) < 1e-5, `filter gradient ${what}`);
      tf.dispose([x, k]);
    }
  } finally {
    setConvImpl('auto');
  }
});

test('col2im is the adjoint of im2col: <im2col(x), c> = <x, col2im(c)>', () => {
  const rng = new Rng(5);
  const g = convGeometry([2, 7, 6, 3], 3, 2, { stride: [2, 1], pad: [1, 0, 1, 1] });
  const x = rng.fillNormal(new Float32Array(2 * 7 * 6 * 3));
  const cols = im2colHost(x, g);
  const c = rng.fillNormal(new Float32Array(cols.length));
  const back = col2imHost(c, g);
  let lhs = 0, rhs = 0;
  for (let i = 0; i < cols.length; i++) lhs += cols[i] * c[i];
  for (let i = 0; i < x.length; i++) rhs += x[i] * back[i];
  assert.ok(Math.abs(lhs - rhs) < 1e-3 * Math.abs(lhs), `${lhs} vs ${rhs}`);
});

test('fixtures stay small (< 2 MB committed)', () => {
  const total = fs.readdirSync(FIX).reduce((s, f) => s + fs.statSync(path.join(FIX, f)).size, 0);
  assert.ok(total < 2 * 1024 * 1024, `${total} bytes`);
});
