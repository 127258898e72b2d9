// Golden test of the DiT port against an independent PyTorch statement of the
// published model (scripts/fixtures/make_dit_fixtures.py; every weight random and non-zero).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend';
import { toFloat32, toInt32 } from '../lib/io/array';
import { readTensorFile } from '../lib/io/tensor_file';
import { readNpz, writeNpz } from '../lib/io/npy';
import { loadDiT, inferConfig, readDiTTensors, saveDiT, loadStateDict, stateDict } from '../lib/model/checkpoint';
import { validateConfig, DiTConfig } from '../lib/model/config';
import { createDiT, disposeDiT, ditForward } from '../lib/model/dit';
import { sincos2dPosEmbed } from '../lib/model/embed';
import { repoRoot } from '../lib/util/paths';
import { recordingOpens, relErr } from './helpers';

const FIX = path.join(repoRoot(), 'test', 'fixtures', 'dit');
const NAMES = ['tiny-p2', 'tiny-p4-c3'];
const config = (name: string): DiTConfig => validateConfig(JSON.parse(fs.readFileSync(path.join(FIX, `${name}.json`), 'utf8')));


function forwardOn(model: ReturnType<typeof createDiT>, io: ReturnType<typeof readNpz>): Float32Array {
  return tf.tidy(() => {
    const out = ditForward(model, tf.tensor(toFloat32(io.x), io.x.shape), tf.tensor1d(toInt32(io.t), 'int32'), tf.tensor1d(toInt32(io.y), 'int32'));
    return out.dataSync() as Float32Array;
  });
}

test.before(async () => {
  await initBackend({ quiet: true });
});

for (const name of NAMES) {
  test(`${name}: torch.save checkpoint loads and matches PyTorch within 1e-4 relative`, () => {
    const io = readNpz(path.join(FIX, `${name}.io.npz`));
    const model = loadDiT(path.join(FIX, `${name}.pt`), config(name));
    const got = forwardOn(model, io);
    assert.equal(got.length, io.out.data.length);
    const err = relErr(got, toFloat32(io.out));
    assert.ok(err < 1e-4, `relative error ${err}`);
    disposeDiT(model);
  });
}

test('the kit computes the same fixed sin-cos positions as the published code', () => {
  for (const name of NAMES) {
    const c = config(name);
    const ref = toFloat32(readTensorFile(path.join(FIX, `${name}.pt`)).tensors.pos_embed);
    const ours = sincos2dPosEmbed(c.hiddenSize, c.inputSize / c.patchSize);
    assert.ok(relErr(ours, ref) < 1e-6, name);
  }
});

test('the architecture is inferred from the state_dict', () => {
  const { config: c } = inferConfig(readTensorFile(path.join(FIX, 'tiny-p4-c3.pt')).tensors);
  const want = config('tiny-p4-c3');
  for (const k of ['inputSize', 'inChannels', 'patchSize', 'hiddenSize', 'depth', 'numClasses', 'learnSigma', 'variant'] as const) {
    assert.equal(c[k], want[k], k);
  }
});

test('safetensors save/load round-trips the weights and the config', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-st-'));
  const io = readNpz(path.join(FIX, 'tiny-p2.io.npz'));
  const a = loadDiT(path.join(FIX, 'tiny-p2.pt'), config('tiny-p2'));
  const file = path.join(dir, 'm.safetensors');
  saveDiT(a, file);
  const b = loadDiT(file); // config from the metadata
  assert.deepEqual(b.config, a.config);
  assert.deepEqual(forwardOn(b, io), forwardOn(a, io));
  const sd = stateDict(a);
  assert.deepEqual(sd['x_embedder.proj.weight'].shape, [16, 4, 2, 2]);
  assert.deepEqual(sd['blocks.0.attn.qkv.weight'].shape, [48, 16]); // PyTorch [out, in]
  disposeDiT(a);
  disposeDiT(b);
  fs.rmSync(dir, { recursive: true });
});

test('readDiTTensors opens and sniffs a file once, the key applying inside torch files only', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-once-'));
  const st = path.join(dir, 'm.safetensors');
  const m = loadDiT(path.join(FIX, 'tiny-p2.pt'), config('tiny-p2'));
  saveDiT(m, st);
  disposeDiT(m);
  const trainPy = path.join(repoRoot(), 'test', 'fixtures', 'pretrained', 'dit_trainpy.pt');
  const { opened } = recordingOpens(() => {
    assert.equal(readDiTTensors(trainPy).chosen, 'ema');
    assert.equal(readDiTTensors(trainPy, 'model').chosen, 'model');
    assert.equal(readDiTTensors(st, 'ema').format, 'safetensors');
  });
  fs.rmSync(dir, { recursive: true });
  assert.deepEqual(opened, [trainPy, trainPy, st]);
});

test('a checkpoint that does not fit lists missing, unexpected and mismatched keys', () => {
  const tensors = { ...readTensorFile(path.join(FIX, 'tiny-p2.pt')).tensors };
  delete tensors['blocks.1.mlp.fc2.bias'];
  tensors['extra.weight'] = { dtype: 'float32', shape: [1], data: new Float32Array(1) };
  const m = createDiT({ ...config('tiny-p2'), numClasses: 6 }, 0);
  assert.throws(() => loadStateDict(m, tensors, 'ck.pt'), (e: Error) =>
    /missing keys \(1\): blocks\.1\.mlp\.fc2\.bias/.test(e.message) &&
    /unexpected keys \(1\): extra\.weight/.test(e.message) &&
    /y_embedder\.embedding_table\.weight: checkpoint \[6, 16\] vs model \[7, 16\]/.test(e.message));
  disposeDiT(m);
});

test('`dit inspect` lists tensors and runs a forward pass that matches PyTorch', () => {
  const cli = path.join(__dirname, '..', 'lib', 'cli', 'index.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-inspect-'));
  const env = { ...process.env, DIT_QUIET: '1' };
  const list = spawnSync(process.execPath, [cli, 'inspect', '--checkpoint', path.join(FIX, 'tiny-p2.pt'), '--json'], { encoding: 'utf8', env });
  assert.equal(list.status, 0, list.stderr);
  const info = JSON.parse(list.stdout);
  assert.equal(info.format, 'torch');
  assert.equal(info.params, 15792);
  assert.equal(info.architecture.depth, 2);
  // The fixture's config is not a named one: feed it through a named model with overrides.
  const out = path.join(dir, 'out.npz');
  const fwd = spawnSync(process.execPath, [cli, 'inspect', '--checkpoint', path.join(FIX, 'tiny-p4-c3.pt'), '--model', 'mini-S/4',
    '--input-size', '12', '--in-channels', '3', '--num-classes', '2', '--forward', path.join(FIX, 'tiny-p4-c3.io.npz'), '--out', out], { encoding: 'utf8', env });
  // mini-S/4 is wider than the fixture: the error must name the mismatch, not crash.
  assert.notEqual(fwd.status, 0);
  assert.match(fwd.stderr, /shape mismatches/);
  // With the fixture's own config file it runs end to end and matches PyTorch.
  const io = readNpz(path.join(FIX, 'tiny-p2.io.npz'));
  writeNpz(path.join(dir, 'in.npz'), { x: io.x, t: io.t, y: io.y });
  const ok = spawnSync(process.execPath, [cli, 'inspect', '--checkpoint', path.join(FIX, 'tiny-p2.pt'), '--model', path.join(FIX, 'tiny-p2.json'),
    '--forward', path.join(dir, 'in.npz'), '--out', out], { encoding: 'utf8', env });
  assert.equal(ok.status, 0, ok.stderr);
  const got = readNpz(out).out;
  assert.deepEqual(got.shape, [3, 8, 8, 8]);
  assert.ok(relErr(toFloat32(got), toFloat32(io.out)) < 1e-4);
  const bad = spawnSync(process.execPath, [cli, 'inspect', '--checkpoint', path.join(dir, 'missing.pt'), '--json'], { encoding: 'utf8', env });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /missing\.pt/);
  fs.rmSync(dir, { recursive: true });
});
