// Notebook 08's helpers (lib/notebook/pretrained.ts) on the random-weight fixtures: which
// files it samples and what it says when the published ones are absent, the class grid
// at several guidance scales from the same noise, its Gflops and timings.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodePng } from '../lib/data/png';
import {
  disposePretrained, estimateSampling, formatSeconds, gridClasses, gridTimingTable, loadPretrained, pretrainedFiles, pretrainedFixture, pretrainedTable,
  sampleClassGrid, samplingCostTable,
} from '../lib/notebook/pretrained';
import { SAMPLE_PY_CLASSES } from '../lib/sample/sample';
import { repoRoot } from '../lib/util/paths';

const FIX = path.join(repoRoot(), 'test', 'fixtures', 'pretrained');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-nb08-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('absent files: the notebook names the files to get and where to put them, then uses the fixtures', () => {
  const want = { checkpoint: path.join(tmp, 'none', 'DiT-XL-2-256x256.pt'), vae: path.join(tmp, 'none', 'sd-vae-ft-ema') };
  const f = pretrainedFiles('committed', want);
  assert.equal(f.published, false);
  assert.equal(f.checkpoint, pretrainedFixture());
  const text = f.notes.join('\n');
  for (const s of ['https://dl.fbaipublicfiles.com/DiT/models/DiT-XL-2-256x256.pt', 'facebook/DiT-XL-2-256', 'stabilityai/sd-vae-ft-ema', 'DIT_CHECKPOINT', 'DIT_VAE',
    `${want.checkpoint} does not exist`, `${want.vae} does not exist`, 'random-weight fixtures']) {
    assert.ok(text.includes(s), `notes lack '${s}':\n${text}`);
  }
  // Smoke mode (CI) never samples the real model, even where it is on disk.
  const smoke = pretrainedFiles('smoke', { checkpoint: path.join(FIX, 'dit_legacy.pt'), vae: path.join(FIX, 'vae_diffusers_new') });
  assert.equal(smoke.published, false);
  assert.match(smoke.notes.join('\n'), /smoke mode: the random-weight fixtures/);
});

test("present files are used; a diffusers DiT folder's vae/ stands in for an absent DIT_VAE", () => {
  const both = pretrainedFiles('committed', { checkpoint: path.join(FIX, 'dit_legacy.pt'), vae: path.join(FIX, 'vae_diffusers_new') });
  assert.deepEqual([both.published, both.checkpoint, both.vae], [true, path.join(FIX, 'dit_legacy.pt'), path.join(FIX, 'vae_diffusers_new')]);
  const folder = pretrainedFiles('mini', { checkpoint: path.join(FIX, 'dit_diffusers'), vae: path.join(tmp, 'no-vae') });
  assert.deepEqual([folder.published, folder.vae], [true, path.join(FIX, 'dit_diffusers')]);
  assert.match(folder.notes.join('\n'), /using the autoencoder in .*dit_diffusers\/vae/);
  // The weights without an autoencoder: say what to get, sample the fixtures.
  const noVae = pretrainedFiles('committed', { checkpoint: path.join(FIX, 'dit_legacy.pt'), vae: path.join(tmp, 'no-vae') });
  assert.equal(noVae.published, false);
  assert.match(noVae.notes.join('\n'), /The SD autoencoder is not here/);
  assert.doesNotMatch(noVae.notes.join('\n'), /The DiT weights are not here/);
});

test("the grid's classes: sample.py's on an ImageNet model, else the model's first ones, said", () => {
  assert.deepEqual(gridClasses(SAMPLE_PY_CLASSES, 1000), { classes: [...SAMPLE_PY_CLASSES], note: null });
  const g = gridClasses(SAMPLE_PY_CLASSES, 5);
  assert.deepEqual(g.classes, [0, 1, 2, 3, 4]);
  assert.match(g.note!, /The model has 5 classes, so golden retriever \(207\), otter \(360\).* are out of its range/);
  assert.equal(formatSeconds(0.5), '0.50 s');
  assert.equal(formatSeconds(90), '90.0 s');
  assert.equal(formatSeconds(3000), '50.0 min');
  assert.equal(formatSeconds(9000), '2.50 h');
});

test('a class grid at two guidance scales from the same noise, with its Gflops and timings', async () => {
  const p = await loadPretrained(pretrainedFiles('smoke', { checkpoint: '', vae: '' }));
  try {
    const c = p.model.config;
    assert.deepEqual([c.numClasses, c.inputSize, p.ae.imageShape], [5, 8, [3, 16, 16]]);
    assert.match(pretrainedTable(p).map((r) => `${r.what}: ${r.value}`).join('\n'), /weights: random-weight fixture[\s\S]*read as: diffusers DiT folder[\s\S]*latent scale 0\.18215/);
    const cost = samplingCostTable(p, 5, [1, 4]);
    assert.deepEqual(cost.map((r) => r.forward_passes_per_image), [5, 10]);
    assert.ok(Math.abs(cost[1].gflops_per_image / cost[0].gflops_per_image - 2) < 1e-3);
    const est = estimateSampling(p, { classes: [0, 1, 2], steps: 4, cfgScales: [1, 4] });
    assert.ok(est.forward_ms > 0 && est.guided_forward_ms > 0 && est.expected_s > 0);
    assert.ok(Math.abs(est.expected_s_per_image - est.expected_s / 6) < 1e-12);

    const classes = [0, 1, 2, 3, 4];
    const file = path.join(tmp, 'grid.png');
    const g = sampleClassGrid(p, { classes, cfgScales: [1, 4], steps: 3, seed: 0, file });
    assert.deepEqual(g.rows, ['cfg 1.0', 'cfg 4.0']);
    assert.deepEqual(g.columns, ['class 0', 'class 1', 'class 2', 'class 3', 'class 4']);
    assert.match(g.caption, /rows \(top to bottom\): cfg 1\.0, cfg 4\.0, from the same noise; columns: class 0, .*random-weight fixture/);
    // 16x16 images magnified 4x, 5 columns x 2 rows with make_grid's 2-pixel padding.
    const png = decodePng(fs.readFileSync(file));
    assert.deepEqual([png.width, png.height], [5 * 64 + 6 * 2, 2 * 64 + 3 * 2]);
    assert.equal(g.width, png.width);
    assert.deepEqual(g.timings.map((t) => [t.cfg_scale, t.images, t.steps]), [[1, 5, 3], [4, 5, 3]]);
    assert.ok(g.timings.every((t) => t.sample_s > 0 && t.decode_s > 0 && t.s_per_image > 0 && t.gmacs_per_s > 0));
    assert.equal(gridTimingTable(g).length, 2);
    const half = g.images.length / 2;
    const maxDiff = (a: Uint8Array) => a.subarray(0, half).reduce((m, v, i) => Math.max(m, Math.abs(v - a[half + i])), 0);
    assert.ok(maxDiff(g.images) > 10, 'guidance 4 changes the samples');
    // Same noise in every row: a scale barely above 1 reproduces the unguided row.
    const same = sampleClassGrid(p, { classes, cfgScales: [1, 1.0001], steps: 3, seed: 0, file });
    assert.ok(maxDiff(same.images) <= 1, `rows differ by ${maxDiff(same.images)}`);
    assert.deepEqual(same.images.subarray(0, half), g.images.subarray(0, half));
  } finally {
    disposePretrained(p);
  }
});
