// SIGTERM (Slurm's --signal before a time limit, preemption): training stops after the
// step under way with a checkpoint, the sweep exits 75, and the rerun finishes the same run.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend';
import { cellFailedFile, SWEEP_INTERRUPTED_EXIT } from '../lib/experiments/sweep';
import { experimentCells, validateExperiment } from '../lib/experiments/config';
import { readResults, RESULT_COLUMNS } from '../lib/results/registry';
import { readTrainingCheckpoint } from '../lib/train/checkpoint';
import { closeRun, train } from '../lib/train/trainer';
import { repoRoot } from '../lib/util/paths';
import { tempDirs, tinyRun, tinySigtermExperimentJson } from './helpers';

const tmp = tempDirs('dit-term-');
test.before(async () => {
  await initBackend({ quiet: true });
});

const weights = (vars: Record<string, tf.Variable>) => Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, Array.from(v.dataSync())]));

test('an aborted run checkpoints the step it stopped at (between checkpoints) and resumes to the uninterrupted weights', async () => {
  const { options, source } = tinyRun({ ckptEvery: 5 });
  const full = await train(tmp(), options, source, { quiet: true });
  const want = { model: weights(full.model.params), ema: weights(full.ema) };
  closeRun(full);
  const dir = tmp();
  const ac = new AbortController();
  const stopped = await train(dir, options, source, { quiet: true, signal: ac.signal, onStep: (l) => void (l.step === 3 && ac.abort()) });
  assert.equal(stopped.step, 3);
  closeRun(stopped);
  assert.equal(readTrainingCheckpoint(path.join(dir, 'checkpoint.safetensors')).meta.step, 3, 'step 3 is not a ckptEvery step: saved because stopped');
  const resumed = await train(dir, options, source, { quiet: true });
  assert.equal(resumed.step, 8);
  assert.deepEqual(weights(resumed.model.params), want.model);
  assert.deepEqual(weights(resumed.ema), want.ema);
  closeRun(resumed);
});

/** Runs the tiny one-cell sweep in a child process; `term` sends it SIGTERM once its loss.csv shows that many steps. */
function sweepChild(dir: string, term?: number): Promise<{ code: number | null; err: string }> {
  const child = spawn(process.execPath, [path.join(repoRoot(), 'test/fixtures/sweep-term-child.js'), path.join(__dirname, '..'), dir, term ? '150' : '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (b) => (err += b));
  const cell = experimentCells(validateExperiment(tinySigtermExperimentJson()))[0];
  const loss = path.join(dir, 'runs', cell.id, 'loss.csv');
  const poll = term ? setInterval(() => {
    const lines = fs.existsSync(loss) ? fs.readFileSync(loss, 'utf8').trim().split('\n').length - 1 : 0;
    if (lines >= term) {
      clearInterval(poll);
      child.kill('SIGTERM');
    }
  }, 10) : undefined;
  return new Promise((resolve) => child.on('close', (code) => {
    clearInterval(poll);
    resolve({ code, err });
  }));
}

/** A row without the columns that differ between two runs of the same thing. */
const comparable = (r: Record<string, unknown>) => Object.fromEntries(RESULT_COLUMNS.filter((c) => !['wall_time_s', 'timestamp'].includes(c)).map((c) => [c, r[c]]));

test('a sweep process sent SIGTERM mid-training checkpoints, lets go of its cell and exits 75; rerun, it writes the rows of an uninterrupted sweep', async () => {
  const e = validateExperiment(tinySigtermExperimentJson());
  const cell = experimentCells(e)[0];
  const whole = tmp();
  const once = await sweepChild(whole);
  assert.equal(once.code, 0, once.err.slice(-3000));

  const dir = tmp();
  const first = await sweepChild(dir, 5);
  assert.equal(first.code, SWEEP_INTERRUPTED_EXIT, first.err.slice(-3000));
  assert.match(first.err, /SIGTERM: stopping after the step under way/);
  assert.match(first.err, /stopped by SIGTERM in cell .* at step \d; rerun \(or requeue\) to resume/);
  const ck = readTrainingCheckpoint(path.join(dir, 'runs', cell.id, 'checkpoint.safetensors')).meta.step;
  const trained = fs.readFileSync(path.join(dir, 'runs', cell.id, 'loss.csv'), 'utf8').trim().split('\n').length - 1;
  assert.ok(ck >= 5 && ck < 8, `stopped at step ${ck}`);
  assert.equal(ck, trained, 'the checkpoint holds every step trained');
  assert.ok(!fs.existsSync(path.join(dir, 'runs', cell.id, 'sweep.lock')), 'the cell lock is released');
  assert.ok(!fs.existsSync(cellFailedFile(path.join(dir, 'runs'), cell)), 'stopped is not failed');

  const second = await sweepChild(dir);
  assert.equal(second.code, 0, second.err.slice(-3000));
  const rows = readResults(path.join(dir, 'tiny.csv')).map(comparable);
  const want = readResults(path.join(whole, 'tiny.csv')).map(comparable);
  const key = (r: Record<string, unknown>) => `${r.study}|${r.cell}|${r.train_step}|${r.sampling_steps}|${r.cfg_scale}|${r.train_gflops}|${r.fid}`;
  assert.deepEqual(rows.map(key).sort(), want.map(key).sort());
  assert.deepEqual(rows.filter((r) => r.study !== 'calibration').sort((a, b) => Number(a.train_step) - Number(b.train_step)),
    want.filter((r) => r.study !== 'calibration').sort((a, b) => Number(a.train_step) - Number(b.train_step)));
});
