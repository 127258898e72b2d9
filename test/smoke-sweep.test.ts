// End to end, as a user runs it: `dit sweep smoke` (data, training, resume, sampling,
// evaluation, registry) and `dit figures` on its results.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { CALIBRATION_CELLS } from '../lib/experiments/calibration';
import { readNpz } from '../lib/io/npy';
import { readResults } from '../lib/results/registry';

const cli = path.join(__dirname, '..', 'lib', 'cli', 'index.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-smoke-'));
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, CI: '1' } });
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('dit sweep smoke runs end to end, resumes to a no-op, and dit figures draws its results', () => {
  const results = path.join(dir, 'results', 'smoke.csv');
  const runs = path.join(dir, 'runs');
  // Two jobs on disjoint cells (the registry's lock serialises their appends).
  const a = run('sweep', 'smoke', '--results', results, '--runs', runs, '--jobs', '2');
  assert.equal(a.status, 0, a.stderr.slice(-3000));
  assert.match(a.stdout, /\[job 0\] .*\n\[job 1\] /);
  assert.match(a.stdout, /smoke: 2 jobs finished in \d+ s wall time/);
  const rows = readResults(results);
  // 6 cells: scaling (3 models x 2 steps), conditioning (4 variants x 2 steps),
  // sampling-compute (2 models x (2 steps + final 5-step)); shared cells evaluate once per study;
  // plus one calibration row per rung of the ladder (real images, autoencoded images,
  // degraded images, decoded noise: lib/experiments/calibration.ts).
  assert.equal(rows.length, 3 * 2 + 4 * 2 + 2 * 3 + CALIBRATION_CELLS.length);
  assert.deepEqual([...new Set(rows.map((r) => r.study))].sort(), ['calibration', 'conditioning', 'sampling-compute', 'scaling']);
  for (const r of rows) assert.ok(typeof r.fid === 'number' && Number.isFinite(r.fid), `FID of ${r.cell} at ${r.train_step}`);
  const cal = Object.fromEntries(rows.filter((r) => r.study === 'calibration').map((r) => [r.cell, r.fid as number]));
  // Pixel space: the identity autoencoder gives back the real images exactly, and noise is far worse.
  assert.equal(cal.autoencoder, cal['real-images']);
  assert.ok(cal['gaussian-latents'] > 2 * cal['real-images'], JSON.stringify(cal));
  // Fig. 7's grid and its companion: every scaling model's samples against the data's scale.
  assert.ok(fs.existsSync(path.join(dir, 'results', 'figures', 'smoke-fig7-samples.png')));
  const side = JSON.parse(fs.readFileSync(path.join(dir, 'results', 'figures', 'smoke-fig7-samples.json'), 'utf8'));
  assert.deepEqual(Object.keys(side.sampleStdOverData), ['mini-S_4-adaln-zero', 'mini-S_2-adaln-zero', 'mini-B_4-adaln-zero']);
  for (const v of Object.values(side.sampleStdOverData)) assert.ok((v as number) > 0 && Number.isFinite(v as number));
  assert.match(a.stderr, /samples' std over the data's: mini-S_4-adaln-zero [\d.]+/);
  const b = run('sweep', 'smoke', '--results', results, '--runs', runs);
  assert.equal(b.status, 0, b.stderr.slice(-2000));
  assert.match(b.stdout, /smoke: 0 new evaluation/);
  // A fresh clone: the committed results are complete but no checkpoints exist. Nothing to
  // train or evaluate, and no grid to redraw: not an error.
  const c = run('sweep', 'smoke', '--results', results, '--runs', path.join(dir, 'fresh-clone-runs'));
  assert.equal(c.status, 0, c.stderr.slice(-2000));
  assert.match(c.stdout, /smoke: 0 new evaluation/);
  assert.match(c.stderr, /Fig\. 7: no checkpoints in .*fresh-clone-runs .*the sample grid is not redrawn/);
  assert.equal(readResults(results).length, rows.length);
  const f = run('figures', '--results', path.dirname(results), '--out', path.join(dir, 'figures'), '--no-png', '--runs', runs);
  assert.equal(f.status, 0, f.stderr);
  // Fig. 7 is redrawn from the checkpoints, with its companion.
  assert.match(f.stdout, /wrote .*smoke-fig7-samples\.png \(3 models\) and its \.json companion/);
  assert.ok(fs.existsSync(path.join(dir, 'figures', 'smoke-fig7-samples.json')));
  const none = run('figures', '--results', path.dirname(results), '--out', path.join(dir, 'figures-none'), '--no-png', '--runs', path.join(dir, 'no-runs'));
  assert.match(none.stdout, /Fig\. 7 \(smoke\): no checkpoints in .*the committed grid is kept/);
  for (const fig of ['fig5-conditioning', 'fig6-scaling', 'fig9-training-compute', 'fig10-sampling-compute']) {
    assert.ok(fs.existsSync(path.join(dir, 'figures', `${fig}.html`)), fig);
  }
  // 20-step smoke models are far off the data's scale: Fig. 8 fits no power law through them, and says why.
  assert.ok(!fs.existsSync(path.join(dir, 'figures', 'fig8-gflops-vs-fid.html')));
  assert.match(f.stdout, /skipped fig8-gflops-vs-fid: .*at least 3 on-scale models .*\(have 0; 3 off-scale left out\)/);
});

test('dit train trains one cell of an experiment to a checkpoint that dit sample reads', () => {
  const runs = path.join(dir, 'train-runs');
  const t = run('train', 'smoke', '--model', 'mini-S/4', '--variant', 'adaln', '--steps', '4', '--runs', runs);
  assert.equal(t.status, 0, t.stderr.slice(-2000));
  const ckpt = path.join(runs, 'mini-S_4-adaln', 'checkpoint.safetensors');
  assert.ok(fs.existsSync(ckpt));
  assert.equal(fs.readFileSync(path.join(runs, 'mini-S_4-adaln', 'loss.csv'), 'utf8').trim().split('\n').length, 5);
  const out = path.join(dir, 's.npz');
  const s = run('sample', '--checkpoint', ckpt, '--num', '2', '--steps', '3', '--vae', 'identity', '--out', out);
  assert.equal(s.status, 0, s.stderr.slice(-2000));
  // Decoded samples in ADM's layout (what dit evaluate reads), plus a PNG grid.
  const npz = readNpz(out);
  assert.deepEqual(npz.arr_0.shape, [2, 32, 32, 3]);
  assert.equal(npz.arr_0.dtype, 'uint8');
  assert.deepEqual(Array.from(npz.arr_1.data as Int32Array), [0, 1]);
  assert.ok(fs.existsSync(path.join(dir, 's.png')));
  const bad = run('train', 'smoke', '--model', 'mini-XL/2');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /no cell of smoke matches/);
  // The batch shared by two threads: the same run (loss history) up to float rounding, and the process ends.
  const runs2 = path.join(dir, 'train-runs-dp');
  const t2 = run('train', 'smoke', '--model', 'mini-S/4', '--variant', 'adaln', '--steps', '4', '--runs', runs2, '--data-parallel', '2');
  assert.equal(t2.status, 0, t2.stderr.slice(-2000));
  assert.match(t2.stderr, /batch shared by 2 threads/);
  const losses = (r: string) => fs.readFileSync(path.join(r, 'mini-S_4-adaln', 'loss.csv'), 'utf8').trim().split('\n').slice(1).map((l) => Number(l.split(',')[1]));
  const one = losses(runs), two = losses(runs2);
  assert.equal(two.length, 4);
  two.forEach((l, i) => assert.ok(Math.abs(l - one[i]) < 1e-5 * Math.abs(one[i]), `step ${i + 1}: ${l} vs ${one[i]}`));
  assert.equal(run('train', 'smoke', '--model', 'mini-S/4', '--data-parallel', '0').status, 2);
});

/** Every file and folder under `root` with its bytes and mtime (what "unchanged" means here). */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel of (fs.readdirSync(root, { recursive: true }) as string[]).sort()) {
    const p = path.join(root, rel);
    const st = fs.statSync(p);
    out[rel] = st.isDirectory() ? 'dir' : `${st.mtimeMs} ${fs.readFileSync(p, 'base64')}`;
  }
  return out;
}

test('dit train refuses a cell whose lock another live process holds, names the lock and its holder, and changes nothing', async () => {
  const runs = path.join(dir, 'locked-runs');
  const cellDir = path.join(runs, 'mini-S_4-adaln');
  fs.mkdirSync(cellDir, { recursive: true });
  fs.writeFileSync(path.join(cellDir, 'checkpoint.safetensors'), 'the holder is training this');
  fs.writeFileSync(path.join(cellDir, 'loss.csv'), 'step,loss\n1,0.5\n');
  const lockFile = path.join(cellDir, 'sweep.lock');
  // A real second process takes the cell's lock (as a sweep or another dit train does) and keeps it.
  const holder = spawn(process.execPath, ['-e', `
    const { lockSync } = require(${JSON.stringify(path.join(__dirname, '..', 'lib', 'util', 'lock'))});
    lockSync(${JSON.stringify(lockFile)}, { staleMs: 3600000, purpose: 'held by the test' });
    process.stdout.write('held\\n');
    setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise((resolve, reject) => {
      holder.stdout.once('data', resolve);
      holder.once('exit', (code) => reject(new Error(`the lock holder exited (${code})`)));
    });
    const before = snapshot(runs);
    assert.ok('mini-S_4-adaln/sweep.lock' in before, 'the holder took the lock');
    const t = run('train', 'smoke', '--model', 'mini-S/4', '--variant', 'adaln', '--steps', '4', '--runs', runs);
    assert.equal(t.status, 1, t.stderr.slice(-2000));
    const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    assert.match(t.stderr, new RegExp(`mini-S_4-adaln is being trained by process ${holder.pid} on ${esc(os.hostname())} since \\S+ \\(held by the test\\) \\(lock ${esc(lockFile)}\\); wait for it or stop it`));
    assert.deepEqual(snapshot(runs), before, 'the run folder (checkpoint, loss history, the lock) is as it was');
  } finally {
    holder.kill();
  }
});
