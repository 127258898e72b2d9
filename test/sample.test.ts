import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend';
import { createDiffusion, DIT_DIFFUSION, NoiseSchedule } from '../lib/diffusion';
import { readNpz } from '../lib/io/npy';
import { main } from '../lib/cli';
import { ditForward, disposeDiT } from '../lib/model/dit';
import { loadModelFile } from '../lib/sample/load';
import { batchSeed } from '../lib/sample/sample';
import { closeRun, train } from '../lib/train/trainer';
import { repoRoot } from '../lib/util/paths';
import { reshapeCheckpointTensor, tinyRun } from './helpers';

const FIX = path.join(repoRoot(), 'test', 'fixtures', 'dit');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-sample-'));
const CLI = path.join(repoRoot(), 'dist', 'lib', 'cli', 'index.js');
let kitCkpt = '';
let cosineCkpt = '';

test.before(async () => {
  process.env.DIT_QUIET = '1';
  await initBackend({ quiet: true });
  const trainTiny = async (name: string, noiseSchedule: NoiseSchedule) => {
    const { options, source } = tinyRun({ steps: 2, noiseSchedule });
    const dir = path.join(tmp, name);
    closeRun(await train(dir, options, source, { quiet: true }));
    return path.join(dir, 'checkpoint.safetensors');
  };
  kitCkpt = await trainTiny('run', 'linear');
  cosineCkpt = await trainTiny('cosine', 'cosine');
});

/** The installed command in its own process: exit code and stderr. */
function cli(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'sample', ...args], { encoding: 'utf8', env: { ...process.env, DIT_QUIET: '1' } });
  return { status: r.status, stderr: r.stderr };
}

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
  assert.equal(prov.steps, 8);
  assert.deepEqual(prov.diffusion, DIT_DIFFUSION);
});

test('a run trained with the cosine schedule is sampled with it', async () => {
  const out = path.join(tmp, 'cosine.npz');
  assert.equal(await main(['sample', '--checkpoint', cosineCkpt, '--num', '3', '--steps', '4', '--seed', '5', '--out', out]), 0);
  const got = Array.from(readNpz(out).latents.data as Float32Array);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(tmp, 'cosine.json'), 'utf8')).diffusion, { ...DIT_DIFFUSION, noiseSchedule: 'cosine' });
  // The same EMA weights through an explicitly built process: identical under cosine, not under linear.
  const { model, diffusion } = loadModelFile(cosineCkpt);
  assert.equal(diffusion.noiseSchedule, 'cosine');
  const explicit = (noiseSchedule: NoiseSchedule) => {
    const d = createDiffusion({ noiseSchedule, timestepRespacing: '4' });
    const y = tf.tensor1d([0, 1, 2], 'int32');
    const x = d.pSampleLoop((xx, t) => ditForward(model, xx, t, y), [3, 4, 8, 8], { seed: batchSeed(5, 0), clipDenoised: false });
    const v = Array.from(x.dataSync());
    tf.dispose([x, y]);
    return v;
  };
  try {
    assert.deepEqual(got, explicit('cosine'));
    assert.notDeepEqual(got, explicit('linear'));
  } finally {
    disposeDiT(model);
  }
});

test('a training checkpoint whose EMA tensor has the right size but the wrong shape is refused, not reshaped', () => {
  for (const which of ['ema', 'model'] as const) {
    const bad = path.join(tmp, `reshaped-${which}.safetensors`);
    const name = reshapeCheckpointTensor(kitCkpt, bad, `${which}/`);
    assert.throws(() => loadModelFile(bad, { weights: which }), (e: Error) =>
      e.message.startsWith(`checkpoint ${bad} does not fit`) && new RegExp(`${name.replace(/[.]/g, '[.]')} has shape \\[[\\d,]+\\], expected`).test(e.message));
  }
});

test('flags may repeat a checkpoint\'s diffusion, never contradict it', async () => {
  const out = path.join(tmp, 'mismatch.npz');
  const r = cli(['--checkpoint', cosineCkpt, '--noise-schedule', 'linear', '--steps', '2', '--out', out]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /cosine[/]checkpoint\.safetensors was trained with noise schedule 'cosine', but 'linear' was requested/);
  await assert.rejects(main(['sample', '--checkpoint', cosineCkpt, '--diffusion-steps', '500', '--steps', '2', '--out', out]),
    /was trained with diffusion steps 1000, but 500 was requested/);
  await assert.rejects(main(['sample', '--checkpoint', kitCkpt, '--predict-xstart', '--steps', '2', '--out', out]), /prediction epsilon, but x_0 was requested/);
  assert.ok(!fs.existsSync(out));
  assert.equal(await main(['sample', '--checkpoint', cosineCkpt, '--noise-schedule', 'cosine', '--diffusion-steps', '1000', '--respacing', '1,2',
    '--num', '1', '--out', out]), 0);
  const prov = JSON.parse(fs.readFileSync(path.join(tmp, 'mismatch.json'), 'utf8'));
  assert.equal(prov.steps, 3);
  assert.equal(prov.respacing, '1,2');
});

test('dit sample on a torch.save checkpoint with DDIM and guidance', async () => {
  const out = path.join(tmp, 'torch.npz');
  const code = await main(['sample', '--checkpoint', path.join(FIX, 'tiny-p2.pt'), '--model', path.join(FIX, 'tiny-p2.json'),
    '--classes', '1,4', '--num', '3', '--sampler', 'ddim', '--steps', '10', '--cfg-scale', '2.5', '--guidance-channels', 'all', '--out', out]);
  assert.equal(code, 0);
  const r = readNpz(out);
  assert.deepEqual(r.latents.shape, [3, 4, 8, 8]);
  assert.deepEqual(Array.from(r.labels.data as Int32Array), [1, 4, 1]);
  const prov = JSON.parse(fs.readFileSync(path.join(tmp, 'torch.json'), 'utf8'));
  assert.deepEqual(prov.diffusion, DIT_DIFFUSION, 'bare weights: the published diffusion');
  assert.equal(prov.eta, 0);
  // Bare weights take what the flags say.
  const cos = path.join(tmp, 'torch-cosine.npz');
  assert.equal(await main(['sample', '--checkpoint', path.join(FIX, 'tiny-p2.pt'), '--model', path.join(FIX, 'tiny-p2.json'), '--num', '1',
    '--steps', '3', '--noise-schedule', 'cosine', '--diffusion-steps', '500', '--out', cos]), 0);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(tmp, 'torch-cosine.json'), 'utf8')).diffusion,
    { ...DIT_DIFFUSION, noiseSchedule: 'cosine', diffusionSteps: 500 });
});

test('dit sample refuses bad requests with clear errors', async () => {
  const out = path.join(tmp, 'bad.npz');
  await assert.rejects(main(['sample', '--checkpoint', kitCkpt, '--classes', '7', '--steps', '2', '--out', out]), /--classes: label 7 is outside the allowed range \[0, 3\): the model has 3 classes/);
  assert.equal(await main(['sample', '--checkpoint', kitCkpt, '--sampler', 'euler', '--out', out]), 2);
  await assert.rejects(main(['sample', '--checkpoint', kitCkpt, '--sampler', 'ddim', '--respacing', 'ddim37', '--out', out]), /cannot create exactly 37 steps/);
  // Saying the number of steps twice, or in a form another sampler owns, is a usage error before any loading.
  const twice = cli(['--checkpoint', kitCkpt, '--sampler', 'ddim', '--respacing', 'ddim37', '--steps', '37', '--out', out]);
  assert.equal(twice.status, 2);
  assert.match(twice.stderr, /steps 37 and respacing 'ddim37' both say how many sampling steps: give one/);
  const owned = cli(['--checkpoint', kitCkpt, '--respacing', 'ddim50', '--out', out]);
  assert.equal(owned.status, 2);
  assert.match(owned.stderr, /respacing 'ddim50' is the ddim sampler's own form; it contradicts sampler 'ddpm'/);
  assert.equal(await main(['sample', '--checkpoint', kitCkpt, '--eta', '0.5', '--out', out]), 2);
  assert.equal(await main(['sample', '--checkpoint', kitCkpt, '--noise-schedule', 'quadratic', '--out', out]), 2);
  assert.ok(!fs.existsSync(out));
  await assert.rejects(main(['sample', '--checkpoint', path.join(tmp, 'nope.pt'), '--out', out]), /nope\.pt/);
});
