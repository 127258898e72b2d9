import { test } from 'node:test';
import { latentBytes, stopAfter, tempDirs, tinyExperimentJson, tinyLatents } from './helpers';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../lib/backend';
import { ExperimentConfig, experimentCells, validateExperiment } from '../lib/experiments/config';
import { cellCost, evalPoints, partitionCells, Pipeline, runSweep, trainOptions } from '../lib/experiments/sweep';
import { featureStats, frechetDistance } from '../lib/metrics/fid';
import { featureMatrix, precisionRecall } from '../lib/metrics/precision_recall';
import { readResults } from '../lib/results/registry';
import { closeRun, train } from '../lib/train/trainer';

/** A tiny experiment: two cells, two studies, evaluation at two steps and extra final sampling steps. */
function tinyExperiment(): ExperimentConfig {
  return validateExperiment(tinyExperimentJson());
}

/** Real pieces, small scale: pixels in [-1, 1] are both the latents and the features. */
function pixelPipeline(): Pipeline {
  const { x, n, source } = tinyLatents('pixels');
  const ref = latentBytes(x);
  const d = 4 * 8 * 8;
  const refStats = featureStats(Float32Array.from(ref), n, d);
  return {
    source,
    featureNet: 'pixels',
    decode: latentBytes,
    evaluate: async (images, m) => {
      const s = featureStats(Float32Array.from(images), m, d);
      const pr = await precisionRecall(featureMatrix(Float32Array.from(ref), n, d), featureMatrix(Float32Array.from(images), m, d));
      return { fid: frechetDistance(s.mu, s.sigma, refStats.mu, refStats.sigma), sfid: null, inception_score: null, precision: pr.precision, recall: pr.recall };
    },
  };
}

const tmp = tempDirs('dit-sweep-');

test.before(async () => {
  await initBackend({ quiet: true });
});

test('cells are shared between studies and evaluation points are enumerated once', () => {
  const e = tinyExperiment();
  const cells = experimentCells(e);
  assert.deepEqual(cells.map((c) => c.id), ['mini-S_4-adaln-zero', 'mini-S_2-adaln-zero']);
  assert.deepEqual(cells[1].studies, ['scaling', 'sampling-compute']);
  const pts = evalPoints(e, cells[1]).map((p) => `${p.study}@${p.step}/${p.samplingSteps}`);
  assert.deepEqual(pts, ['scaling@2/3', 'scaling@4/3', 'sampling-compute@2/3', 'sampling-compute@4/3', 'sampling-compute@4/2', 'sampling-compute@4/5']);
});

test('a sweep writes one row per evaluation with provenance, and a rerun skips finished cells', async () => {
  const e = tinyExperiment();
  const dir = tmp();
  const o = { runsDir: path.join(dir, 'runs'), resultsFile: path.join(dir, 'tiny.csv'), quiet: true, log: () => {} };
  const pipe = pixelPipeline();
  // Only the first cell, then everything: the first cell must not be redone.
  const first = await runSweep(e, pipe, { ...o, cells: ['mini-S_4-adaln-zero'] });
  assert.equal(first.length, 2);
  const logs: string[] = [];
  const rest = await runSweep(e, pipe, { ...o, log: (m) => logs.push(m) });
  assert.equal(rest.length, 6);
  assert.match(logs[0], /mini-S_4-adaln-zero: done/);
  // Every FID is logged with the samples' scale; 4-step models are nowhere near the data's.
  assert.ok(logs.filter((l) => /FID [\d.]+, sample std [\d.]+x data/.test(l)).length === 6, logs.join('\n'));
  assert.ok(logs.some((l) => /warning: mini-S_2-adaln-zero step 2: samples have [\d.]+x the data's standard deviation/.test(l)), logs.join('\n'));
  const rows = readResults(o.resultsFile);
  assert.equal(rows.length, 8);
  for (const r of rows) {
    for (const k of ['experiment', 'config_hash', 'git_commit', 'backend', 'seed', 'train_step', 'num_samples', 'sampler', 'sampling_steps', 'cfg_scale', 'feature_net', 'wall_time_s'] as const) {
      assert.ok(r[k] !== null && r[k] !== '', `${k} missing`);
    }
    assert.ok(Number.isFinite(r.fid as number) && (r.fid as number) > 0);
    assert.ok((r.train_gflops as number) > 0);
  }
  // A cell in two studies samples and scores a shared evaluation once (one row per study).
  const pair = rows.filter((r) => r.cell === 'mini-S_2-adaln-zero' && r.train_step === 2 && r.sampling_steps === 3);
  assert.deepEqual(pair.map((r) => r.study).sort(), ['sampling-compute', 'scaling']);
  assert.equal(pair[0].wall_time_s, pair[1].wall_time_s);
  assert.equal(pair[0].fid, pair[1].fid);
  const s4 = rows.filter((r) => r.study === 'sampling-compute' && r.train_step === 4).map((r) => r.sampling_steps);
  assert.deepEqual(s4.sort(), [2, 3, 5]);
  assert.equal((await runSweep(e, pipe, o)).length, 0, 'a finished sweep does nothing');
});

test('a cell killed between its checkpoint and its evaluation evaluates before training on', async () => {
  const e = tinyExperiment();
  const dir = tmp();
  const pipe = pixelPipeline();
  const cell = experimentCells(e)[0];
  // Train to the step-2 checkpoint only, as if killed right after it.
  closeRun(await train(path.join(dir, 'runs', cell.id), trainOptions(e, cell), pipe.source, { quiet: true, ...stopAfter(2) }));
  const rows = await runSweep(e, pipe, { runsDir: path.join(dir, 'runs'), resultsFile: path.join(dir, 'r.csv'), cells: [cell.id], quiet: true, log: () => {} });
  assert.deepEqual(rows.map((r) => r.train_step), [2, 4]);
});

test('cells split into jobs of similar estimated compute, each cell once', async () => {
  const { loadExperiment } = await import('../lib/experiments/config');
  const e = loadExperiment('mini');
  const cells = experimentCells(e);
  const costs = new Map(cells.map((c) => [c.id, cellCost(e, c)]));
  // mini-XL/2 adaLN-Zero serves two studies: training (Gflops x 32 x 2500 x 3), 3 evaluations of 500 samples at 50
  // steps, then 1000 samples at the final step with 50, 10, 25 and 100 steps.
  const xl2 = cells.find((c) => c.id === 'mini-XL_2-adaln-zero')!;
  const g = costs.get(xl2.id)!;
  const model = trainOptions(e, xl2).model;
  const { gflops } = await import('../lib/model/gflops');
  const f = gflops(model);
  assert.ok(Math.abs(g - (f * 32 * 2500 * 3 + 500 * f * 3 * 50 + 1000 * f * (50 + 10 + 25 + 100))) < 1e-6 * g, `cost ${g}`);
  for (const n of [1, 2, 3]) {
    const groups = partitionCells(e, n);
    assert.equal(groups.length, n);
    assert.deepEqual(groups.flat().map((c) => c.id).sort(), cells.map((c) => c.id).sort());
    const sums = groups.map((gr) => gr.reduce((a, c) => a + costs.get(c.id)!, 0));
    assert.ok(Math.max(...sums) - Math.min(...sums) <= Math.max(...costs.values()), `${n} jobs: ${sums}`);
  }
  assert.equal(partitionCells(e, 40).length, cells.length, 'never an empty job');
  assert.throws(() => partitionCells(e, 0), /positive integer/);
});

test('a malformed experiment or manifest file is an error naming the file', async () => {
  const { loadExperiment } = await import('../lib/experiments/config');
  const { readLatentManifest } = await import('../lib/latents/cache');
  const dir = tmp();
  const bad = path.join(dir, 'broken.json');
  fs.writeFileSync(bad, '{"name": ');
  assert.throws(() => loadExperiment(bad), new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid JSON`));
  fs.writeFileSync(path.join(dir, 'manifest.json'), '[1, 2');
  assert.throws(() => readLatentManifest(dir), /manifest\.json: not valid JSON/);
});

// ---- two sweeps on one runs folder and results file -------------------------------------

/** The key of one evaluation, for counting duplicates. */
const evalKey = (r: { study: unknown; cell: unknown; config_hash: unknown; train_step: unknown; sampling_steps: unknown; cfg_scale: unknown }) =>
  [r.study, r.cell, r.config_hash, r.train_step, r.sampling_steps, r.cfg_scale].join('|');

test('two sweep processes on the same runs folder and results file: each cell and calibration rung run once, no duplicate rows', async () => {
  const { spawn } = await import('node:child_process');
  const { CALIBRATION_CELLS } = await import('../lib/experiments/calibration');
  const { repoRoot } = await import('../lib/util/paths');
  const dir = tmp();
  const child = path.join(repoRoot(), 'test/fixtures/sweep-child.js');
  const startAt = String(Date.now() + 1500);
  const run = (tag: string) => new Promise<{ code: number; out: string; err: string }>((resolve) => {
    const c = spawn(process.execPath, [child, path.join(__dirname, '..'), dir, tag, startAt], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    c.stdout.on('data', (b) => (out += b));
    c.stderr.on('data', (b) => (err += b));
    c.on('exit', (code) => resolve({ code: code ?? 1, out, err }));
  });
  const [a, b] = await Promise.all([run('a'), run('b')]);
  assert.equal(a.code, 0, a.err.slice(-3000));
  assert.equal(b.code, 0, b.err.slice(-3000));
  const rows = readResults(path.join(dir, 'tiny.csv'), { warn: (m) => assert.fail(m) });
  const sweepRows = rows.filter((r) => r.study !== 'calibration');
  assert.equal(sweepRows.length, 8);
  assert.equal(rows.filter((r) => r.study === 'calibration').length, CALIBRATION_CELLS.length);
  assert.equal(new Set(rows.map(evalKey)).size, rows.length, 'a duplicate row');
  // Every row was computed by exactly one of them.
  const mine = [a, b].map((r) => JSON.parse(r.out).rows as string[]);
  assert.equal(mine[0].length + mine[1].length, rows.length);
  // Each cell trained in one process only: the other found it busy or done.
  for (const cell of ['mini-S_4-adaln-zero', 'mini-S_2-adaln-zero']) {
    const trainedBy = [a, b].filter((r) => new RegExp(`${cell}: \\d+ evaluation\\(s\\) to go`).test(r.err)).length;
    assert.equal(trainedBy, 1, `${cell} trained by ${trainedBy} processes`);
  }
  assert.deepEqual(fs.readdirSync(dir).sort(), ['runs', 'tiny.csv'], 'no lock, pending or temporary file left');
});

test('a sweep runs the other cells while one is busy, waits for it, then finds it done', async () => {
  const { tryLock } = await import('../lib/util/lock');
  const { appendResults } = await import('../lib/results/registry');
  const { cellLockFile, CELL_LOCK, sweepHash } = await import('../lib/experiments/sweep');
  const e = tinyExperiment();
  const dir = tmp();
  const pipe = pixelPipeline();
  const o = { runsDir: path.join(dir, 'runs'), resultsFile: path.join(dir, 'r.csv'), quiet: true };
  const [busy, free] = experimentCells(e);
  fs.mkdirSync(path.join(o.runsDir, busy.id), { recursive: true });
  const held = tryLock(cellLockFile(o.runsDir, busy), { ...CELL_LOCK, purpose: 'test' });
  assert.ok(held);
  const logs: string[] = [];
  const rows = await runSweep(e, pipe, {
    ...o,
    log: (m) => {
      logs.push(m);
      if (/waiting for process/.test(m)) {
        // The other process finishes the busy cell's evaluations, then lets go.
        const hash = sweepHash(e, busy, pipe.source, pipe.featureNet);
        appendResults(o.resultsFile, evalPoints(e, busy).map((p) => ({
          experiment: e.name, study: p.study, cell: busy.id, config_hash: hash, train_step: p.step, sampling_steps: p.samplingSteps, cfg_scale: p.cfgScale, fid: 1,
        })));
        setTimeout(() => held.release(), 300);
      }
    },
  });
  const text = logs.join('\n');
  assert.match(text, new RegExp(`cell 1/2 ${busy.id}: being run by process ${process.pid} on .* back to it after the other cells`));
  assert.match(text, new RegExp(`${free.id}: 6 evaluation\\(s\\) to go[\\s\\S]*cell 1/2 ${busy.id}: waiting for process ${process.pid}[\\s\\S]*cell 1/2 ${busy.id}: done`));
  assert.deepEqual([...new Set(rows.map((r) => r.cell))], [free.id]);
  assert.equal(readResults(o.resultsFile).length, 8);
  assert.ok(!fs.existsSync(cellLockFile(o.runsDir, free)), 'the cell lock is released');
});
