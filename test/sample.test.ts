import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../lib/backend';
import { readNpz } from '../lib/io/npy';
import { main } from '../lib/cli';
import { closeRun, train } from '../lib/train/trainer';
import { repoRoot } from '../lib/util/paths';
import { tinyRun } from './helpers';

const FIX = path.join(repoRoot(), 'test', 'fixtures', 'dit');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-sample-'));
let kitCkpt = '';

test.before(async () => {
  process.env.DIT_QUIET = '1';
  await initBackend({ quiet: true });
  const { options, source } = tinyRun({ steps: 2 });
  const dir = path.join(tmp, 'run');
  closeRun(await train(dir, options, source, { quiet: true }));
  kitCkpt = path.join(dir, 'checkpoint.safetensors');
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('dit sample on a kit training checkpoint: balanced labels, deterministic by seed', async () => {
  const run = async (seed: number, out: string) =>
    main(['sample', '--checkpoint', kitCkpt, '--num', '6', '--steps', '8', '--seed', String(seed), '--out', out]);
  const a = path.join(tmp, 'a.npz');
  assert.equal(await run(3, a), 0);
  assert.equal(await run(3, path.join(tmp, 'b.npz')), 0);
  assert.equal(await run(4, path.join(tmp, 'c.npz')), 0);
  const A = readNpz(a);
  assert.deepEqual(A.latents.shape, [6, 4, 8, 8]);
  assert.deepEqual(Array.from(A.labels.data as Int32Array), [0, 1, 2, 0, 1, 2]);
  assert.ok((A.latents.data as Float32Array).every(Number.isFinite));
  assert.deepEqual(readNpz(path.join(tmp, 'b.npz')).latents.data, A.latents.data);
  assert.notDeepEqual(readNpz(path.join(tmp, 'c.npz')).latents.data, A.latents.data);
  const prov = JSON.parse(fs.readFileSync(path.join(tmp, 'a.json'), 'utf8'));
  for (const k of ['model', 'sampler', 'steps', 'cfgScale', 'seed', 'backend', 'gitCommit', 'weights']) assert.ok(k in prov, k);
  assert.match(prov.weights, /ema weights, step 2/);
});

test('dit sample on a torch.save checkpoint with DDIM and guidance', async () => {
  const out = path.join(tmp, 'torch.npz');
  const code = await main(['sample', '--checkpoint', path.join(FIX, 'tiny-p2.pt'), '--model', path.join(FIX, 'tiny-p2.json'),
    '--classes', '1,4', '--num', '3', '--sampler', 'ddim', '--steps', '10', '--cfg-scale', '2.5', '--guidance-channels', 'all', '--out', out]);
  assert.equal(code, 0);
  const r = readNpz(out);
  assert.deepEqual(r.latents.shape, [3, 4, 8, 8]);
  assert.deepEqual(Array.from(r.labels.data as Int32Array), [1, 4, 1]);
});

test('dit sample refuses bad requests with clear errors', async () => {
  const out = path.join(tmp, 'bad.npz');
  await assert.rejects(main(['sample', '--checkpoint', kitCkpt, '--classes', '7', '--steps', '2', '--out', out]), /class 7 is outside \[0, 3\)/);
  assert.equal(await main(['sample', '--checkpoint', kitCkpt, '--sampler', 'euler', '--out', out]), 2);
  await assert.rejects(main(['sample', '--checkpoint', kitCkpt, '--respacing', 'ddim37', '--steps', '37', '--out', out]), /cannot create exactly 37 steps/);
  await assert.rejects(main(['sample', '--checkpoint', path.join(tmp, 'nope.pt'), '--out', out]), /nope\.pt/);
});
