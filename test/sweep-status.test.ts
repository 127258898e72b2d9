// `dit sweep --status`: done / running / failed / pending per cell, from the registry and the runs folder.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDirs, tinyExperimentJson } from './helpers';
import { experimentCells, validateExperiment } from '../lib/experiments/config';
import { CELL_LOCK, cellFailedFile, cellLockFile, evalPoints } from '../lib/experiments/sweep';
import { jobsFile, planSlurm, submission } from '../lib/experiments/slurm';
import { formatStatus, sweepStatus } from '../lib/experiments/status';
import { appendResults } from '../lib/results/registry';
import { tryLock } from '../lib/util/lock';

const tmp = tempDirs('dit-status-');

test('each cell done, running (with its holder and Slurm job), failed (with its error) or pending', () => {
  const j = tinyExperimentJson();
  j.studies[0].models.push('mini-B/4', 'mini-B/2');
  const e = validateExperiment(j);
  const [done, running, failed, pending] = experimentCells(e);
  const dir = tmp();
  const o = { resultsFile: path.join(dir, 'tiny.csv'), runsDir: path.join(dir, 'runs') };
  const rows = (cell: typeof done, hash: string, at: string, n = Infinity) => evalPoints(e, cell).slice(0, n).map((p) => ({
    experiment: e.name, study: p.study, cell: cell.id, config_hash: hash, train_step: p.step, sampling_steps: p.samplingSteps, cfg_scale: p.cfgScale, fid: 1, timestamp: at,
  }));
  // done: every evaluation, under the newest settings (older, partial rows of other settings beside them).
  appendResults(o.resultsFile, [...rows(done, 'old', '2026-01-01T00:00:00Z', 1), ...rows(done, 'new', '2026-01-02T00:00:00Z')]);
  // failed: complete under old settings, but its newest settings have one row only.
  appendResults(o.resultsFile, [...rows(failed, 'old', '2026-01-01T00:00:00Z'), ...rows(failed, 'new', '2026-01-02T00:00:00Z', 1)]);
  fs.mkdirSync(path.join(o.runsDir, failed.id), { recursive: true });
  fs.writeFileSync(cellFailedFile(o.runsDir, failed), JSON.stringify({ error: 'training mini-B/4 diverged\nstack', slurmJob: '9_2' }));
  appendResults(o.resultsFile, rows(running, 'new', '2026-01-02T00:00:00Z', 2));
  fs.mkdirSync(path.join(o.runsDir, running.id), { recursive: true });
  const held = tryLock(cellLockFile(o.runsDir, running), { ...CELL_LOCK, purpose: 'test' });
  assert.ok(held);
  fs.mkdirSync(path.join(o.runsDir, pending.id), { recursive: true });
  fs.writeFileSync(path.join(o.runsDir, pending.id, 'checkpoint.safetensors'), '');
  const plan = planSlurm(e, { config: 'tiny', ...o, cwd: dir, node: 'node', entry: 'index.js' });
  fs.mkdirSync(path.dirname(jobsFile(o.runsDir)), { recursive: true });
  fs.writeFileSync(jobsFile(o.runsDir), JSON.stringify(submission(plan, '8', '9')));
  try {
    const s = sweepStatus(e, o);
    const by = Object.fromEntries(s.cells.map((c) => [c.cell, c]));
    const total = (c: typeof done) => evalPoints(e, c).length;
    assert.deepEqual({ state: by[done.id].state, ev: by[done.id].evaluations }, { state: 'done', ev: { done: total(done), total: total(done) } });
    assert.equal(by[running.id].state, 'running');
    assert.equal(by[running.id].holder?.pid, process.pid);
    assert.equal(by[running.id].evaluations.done, 2);
    const task = plan.tasks.find((t) => t.cells.includes(running.id))!;
    assert.equal(by[running.id].slurmJob, `9_${task.index}`);
    assert.deepEqual({ state: by[failed.id].state, error: by[failed.id].error, job: by[failed.id].slurmJob, done: by[failed.id].evaluations.done },
      { state: 'failed', error: 'training mini-B/4 diverged\nstack', job: '9_2', done: 1 });
    assert.deepEqual({ state: by[pending.id].state, checkpoint: by[pending.id].checkpoint }, { state: 'pending', checkpoint: true });
    const text = formatStatus(s, 'tiny.csv').join('\n');
    assert.match(text, /^tiny: 1 done, 1 running, 1 failed, 1 pending \(tiny.csv; Slurm: shared job 8, array 9, submitted /);
    assert.match(text, new RegExp(`${running.id} +running +2/\\d+ evaluations; process ${process.pid} on .*; Slurm 9_${task.index}`));
    assert.match(text, new RegExp(`${failed.id} +failed +1/\\d+ evaluations; Slurm 9_2; error: training mini-B/4 diverged\n`));
    assert.match(text, new RegExp(`${pending.id} +pending +0/\\d+ evaluations; Slurm 9_\\d; checkpoint there: resumes`));
  } finally {
    held.release();
  }
  // Its holder let go: no longer running.
  assert.equal(sweepStatus(e, o).cells.find((c) => c.cell === running.id)!.state, 'pending');
  // A malformed submission record is a warning, not an error.
  fs.writeFileSync(jobsFile(o.runsDir), '{');
  const s = sweepStatus(e, o);
  assert.match(s.warnings[0], /jobs.json: not valid JSON.*Slurm job ids are not shown/);
  assert.equal(s.cells[1].slurmJob, null);
});
