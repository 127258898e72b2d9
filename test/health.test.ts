import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { dataStd, sampleScale, stdOf } from '../lib/sample/health';
import { arraySource } from '../lib/train/source';
import { Rng } from '../lib/util/rng';

test('stdOf is the population standard deviation', () => {
  assert.equal(stdOf([2, 4, 4, 4, 5, 5, 7, 9]), 2);
  assert.throws(() => stdOf([]), /no values/);
});

test('sampleScale warns when samples drift off the data scale, and only then', () => {
  const rng = new Rng(3);
  const data = rng.fillNormal(new Float32Array(4096), 0.4, 1);
  const src = arraySource(data, new Int32Array(64), [4, 4, 4], 1);
  const ref = dataStd(src);
  assert.ok(Math.abs(ref - 1) < 0.05, `data std ${ref}`);
  const healthy = sampleScale(rng.fillNormal(new Float32Array(4096), 0, 1.2), ref);
  assert.ok(Math.abs(healthy.ratio - 1.2) < 0.06);
  assert.equal(healthy.warning, null);
  // The diverged lr-1e-4 mini samples had about 6x the data's std.
  const diverged = sampleScale(rng.fillNormal(new Float32Array(4096), 0, 6), ref);
  assert.ok(Math.abs(diverged.ratio - 6) < 0.3);
  assert.match(diverged.warning ?? '', /6\.\d\dx the data's standard deviation/);
  // Collapsed samples (all the same value) are just as suspicious.
  assert.match(sampleScale(new Float32Array(100).fill(0.3), ref).warning ?? '', /0\.00x/);
  assert.throws(() => sampleScale([1, 2], 0), /must be positive/);
});
