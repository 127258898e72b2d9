// The smoke sweep as a real Slurm job array (scripts/slurm-local.sh start: a one-node
// cluster on this machine) writes exactly the rows a local `dit sweep smoke` writes.
// Skipped, saying why, when no Slurm cluster answers here; with DIT_REQUIRE_SLURM=1 (.ci/run,
// which starts the cluster) a missing cluster fails instead.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readResults, RESULT_COLUMNS, ResultRow } from '../lib/results/registry';
import { readTrainingCheckpoint } from '../lib/train/checkpoint';
import { repoRoot } from '../lib/util/paths';

function slurmMissing(): string | false {
  const r = spawnSync('sinfo', ['-h', '-o', '%T'], { encoding: 'utf8' });
  if (r.error) return 'Slurm is not installed (no sinfo on PATH); scripts/slurm-local.sh start sets up a one-node cluster';
  if (r.status !== 0 || !/idle|mixed|allocated/.test(r.stdout)) return `no Slurm node is up (sinfo: ${(r.stderr || r.stdout).trim()}); scripts/slurm-local.sh start, then export SLURM_CONF as it says`;
  return false;
}

const dit = (args: string[]) => spawnSync(process.execPath, [path.join(repoRoot(), 'dist/lib/cli/index.js'), ...args], { encoding: 'utf8', cwd: repoRoot() });

/** A row without what differs between two runs of the same evaluation (the commit: a checkout may be rebuilt in between). */
const comparable = (r: ResultRow) => JSON.stringify(RESULT_COLUMNS.filter((c) => !['wall_time_s', 'timestamp', 'git_commit'].includes(c)).map((c) => r[c]));

const missing = slurmMissing();
if (missing && process.env.DIT_REQUIRE_SLURM === '1') {
  test('a Slurm cluster is up (DIT_REQUIRE_SLURM=1)', () => assert.fail(missing));
}
const dir = missing ? '' : fs.mkdtempSync(path.join(os.tmpdir(), 'dit-slurm-smoke-'));
test.after(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

/** The rows of a local `dit sweep smoke`, run once for both tests. */
let localRows: string[] | null = null;
let localWeights = new Map<string, { step: number; digest: string }>();
function local(): string[] {
  if (!localRows) {
    const r = dit(['sweep', 'smoke', '--no-grid', '--results', path.join(dir, 'local.csv'), '--runs', path.join(dir, 'local-runs')]);
    assert.equal(r.status, 0, r.stderr.slice(-3000));
    localRows = readResults(path.join(dir, 'local.csv')).map(comparable).sort();
    assert.ok(localRows.length > 0);
    localWeights = finalWeights(path.join(dir, 'local-runs'));
    assert.ok(localWeights.size > 0, 'the local sweep left no checkpoints');
  }
  return localRows;
}

/** Each cell's final weights (model and EMA) and its step, from the runs folder. */
function finalWeights(runs: string): Map<string, { step: number; digest: string }> {
  const out = new Map<string, { step: number; digest: string }>();
  for (const cell of fs.readdirSync(runs).filter((c) => c !== 'slurm' && c !== 'shared').sort()) {
    const f = path.join(runs, cell, 'checkpoint.safetensors');
    if (!fs.existsSync(f)) continue;
    const ck = readTrainingCheckpoint(f);
    const h = crypto.createHash('sha256');
    for (const name of Object.keys(ck.tensors).filter((k) => k.startsWith('model/') || k.startsWith('ema/')).sort()) {
      const t = ck.tensors[name];
      h.update(`${name} ${t.dtype} ${t.shape.join("x")}`).update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    }
    out.set(cell, { step: ck.meta.step, digest: h.digest('hex') });
  }
  return out;
}

/** Submits the smoke sweep as an array; returns its runs folder, results file and job ids. */
function submit(name: string, jobs: number): { runs: string; results: string; sharedJob: string; arrayJob: string } {
  const runs = path.join(dir, `${name}-runs`);
  const results = path.join(dir, `${name}.csv`);
  const sub = dit(['sweep', 'smoke', '--slurm', '--jobs', String(jobs), '--results', results, '--runs', runs]);
  assert.equal(sub.status, 0, sub.stderr.slice(-3000));
  return { runs, results, ...JSON.parse(fs.readFileSync(path.join(runs, 'slurm', 'jobs.json'), 'utf8')) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function untilDone(jobs: string[]): Promise<void> {
  for (;;) {
    const q = spawnSync('squeue', ['-h', '-j', jobs.join(','), '-o', '%i %T'], { encoding: 'utf8' });
    if (q.status === 0 && !q.stdout.trim()) return;
    await sleep(2000);
  }
}

/** Resolves once a cell of the runs folder has logged 3+ steps of loss (and, when asked, saved a checkpoint). */
async function untilTraining(runs: string, o: { checkpointed?: boolean } = {}): Promise<void> {
  const going = () => fs.existsSync(runs) && fs.readdirSync(runs).some((c) => {
    const f = path.join(runs, c, 'loss.csv');
    if (o.checkpointed && !fs.existsSync(path.join(runs, c, 'checkpoint.safetensors'))) return false;
    return fs.existsSync(f) && fs.readFileSync(f, 'utf8').trim().split('\n').length >= 4;
  });
  while (!going()) await sleep(100);
}

const logsOf = (runs: string) => fs.readdirSync(path.join(runs, 'slurm', 'logs')).map((f) => `--- ${f}\n${fs.readFileSync(path.join(runs, 'slurm', 'logs', f), 'utf8')}`).join('\n');

function checkRegistry(s: { runs: string; results: string }): void {
  const logs = logsOf(s.runs);
  const status = dit(['sweep', 'smoke', '--status', '--results', s.results, '--runs', s.runs]);
  assert.match(status.stdout, /^smoke: 6 done, 0 running, 0 failed, 0 pending/, `${status.stdout}\n${logs.slice(-6000)}`);
  assert.deepEqual(readResults(s.results).map(comparable).sort(), local(), logs.slice(-6000));
  // Same final weights, bit for bit, as the uninterrupted local sweep.
  assert.deepEqual([...finalWeights(s.runs)], [...localWeights]);
  // `dit figures` draws what the array wrote.
  const registry = fs.mkdtempSync(path.join(dir, 'registry-'));
  fs.copyFileSync(s.results, path.join(registry, 'smoke.csv'));
  const fig = dit(['figures', '--results', registry, '--no-png', '--no-samples']);
  assert.equal(fig.status, 0, fig.stderr.slice(-3000));
  const drawn = fs.readdirSync(path.join(registry, 'figures'));
  for (const f of ['fig5', 'fig6']) assert.ok(drawn.some((d) => d.startsWith(f) && d.endsWith('.html')), `${f} missing from ${drawn.join(', ')}: ${fig.stdout}`);
}

test('the smoke sweep as a Slurm job array writes the rows of a local sweep: same config hashes, same metrics for the same seeds', { skip: missing, timeout: 3 * 3600_000 }, async () => {
  local();
  const s = submit('slurm', 2);
  await untilDone([s.sharedJob, s.arrayJob]);
  checkRegistry(s);
});

test('a task requeued mid-training (scontrol requeue: SIGTERM, then back in the queue) resumes from its checkpoint and writes the same rows', { skip: missing, timeout: 3 * 3600_000 }, async () => {
  local();
  const s = submit('requeued', 1);
  const task = `${s.arrayJob}_0`;
  // Requeue it once training is under way in some cell.
  await untilTraining(s.runs);
  const rq = spawnSync('scontrol', ['requeue', task], { encoding: 'utf8' });
  assert.equal(rq.status, 0, rq.stderr);
  await untilDone([s.sharedJob, s.arrayJob]);
  const logs = logsOf(s.runs);
  assert.match(logs, /SIGTERM: stopping after the step under way/, logs.slice(-6000));
  assert.match(logs, /resuming .* at step \d+/, logs.slice(-6000));
  checkRegistry(s);
});

/** The pid of the node process running this runs folder's array task (its command line names --runs RUNS and --cells). */
function taskPid(runs: string): number | null {
  for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let cmd: string[];
    try { cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0'); } catch { continue; }
    const r = cmd.indexOf('--runs');
    if (r >= 0 && cmd[r + 1] === runs && cmd.includes('--cells') && path.basename(cmd[0]).startsWith('node')) return Number(p);
  }
  return null;
}

test('a task killed with kill -9 mid-training and requeued by hand resumes from its checkpoint to the same final weights and rows', { skip: missing, timeout: 3 * 3600_000 }, async () => {
  local();
  const s = submit('killed', 1);
  const task = `${s.arrayJob}_0`;
  // Kill it once a cell has saved a checkpoint and trains on past it.
  await untilTraining(s.runs, { checkpointed: true });
  const pid = taskPid(s.runs);
  assert.ok(pid, 'no process of the array task found');
  process.kill(pid, 'SIGKILL');
  // The task fails (no checkpoint, no clean exit); then it is requeued by hand.
  for (;;) {
    const q = spawnSync('squeue', ['-h', '-j', task, '-o', '%T'], { encoding: 'utf8' });
    if (q.status === 0 && !q.stdout.trim()) break;
    await sleep(500);
  }
  const rq = spawnSync('scontrol', ['requeue', task], { encoding: 'utf8' });
  assert.equal(rq.status, 0, rq.stderr);
  await untilDone([s.sharedJob, s.arrayJob]);
  const logs = logsOf(s.runs);
  assert.match(logs, /resuming .* at step \d+/, logs.slice(-6000));
  checkRegistry(s);
});
