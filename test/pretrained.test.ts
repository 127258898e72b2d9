// The published models' file formats, on random-weight stand-ins written by PyTorch
// (scripts/fixtures/make_pretrained_fixtures.py; every weight random and non-zero):
// legacy and zip torch.save, DiT's train.py checkpoints, the diffusers DiT folder, and
// the SD autoencoder in the LDM and diffusers layouts (old and new attention names).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend';
import { klMoments, klDecode, posterior, disposeKL, loadAutoencoder, readSDVae, sdVaeConfig, klParamCount, ldmName } from '../lib/autoencoder';
import { HostArray, toFloat32, toInt32 } from '../lib/io/array';
import { WeightsKey, configFromTrainArgs } from '../lib/model/checkpoint';
import { ditConfig, validateConfig } from '../lib/model/config';
import { configFromDiffusersDiT, readDiffusersDiT } from '../lib/model/diffusers';
import { DiT, disposeDiT, ditForward } from '../lib/model/dit';
import { loadModelFile } from '../lib/sample/load';
import { readNpz, writeNpz } from '../lib/io/npy';
import { readTorchCheckpoint } from '../lib/io/torch';
import { repoRoot } from '../lib/util/paths';
import { Rng } from '../lib/util/rng';
import { sha256File, sha256FileCached } from '../lib/util/hash';
import { recordingOpens, relErr } from './helpers';

const FIX = path.join(repoRoot(), 'test', 'fixtures', 'pretrained');
const fix = (name: string) => path.join(FIX, name);


const nchwToNhwc = (a: { shape: number[] }, d: Float32Array) => tf.transpose(tf.tensor4d(d, a.shape as [number, number, number, number]), [0, 2, 3, 1]) as tf.Tensor4D;
const nhwcToNchwData = (t: tf.Tensor4D) => tf.transpose(t, [0, 3, 1, 2]).dataSync() as Float32Array;

test('the published SD autoencoder config has the published parameter count (83.65M)', () => {
  // diffusers AutoencoderKL(sd-vae-ft-ema): 83,653,863 parameters.
  assert.equal(klParamCount(sdVaeConfig(256)), 83653863);
});

test('diffusers AutoencoderKL names map onto LDM names, the decoder levels reversed', () => {
  assert.equal(ldmName('decoder.up_blocks.0.resnets.2.conv_shortcut.weight', 4), 'decoder.up.3.block.2.nin_shortcut.weight');
  assert.equal(ldmName('encoder.down_blocks.1.downsamplers.0.conv.bias', 4), 'encoder.down.1.downsample.conv.bias');
  assert.equal(ldmName('decoder.up_blocks.2.upsamplers.0.conv.weight', 4), 'decoder.up.1.upsample.conv.weight');
  assert.equal(ldmName('encoder.mid_block.attentions.0.to_out.0.weight', 4), 'encoder.mid.attn_1.proj_out.weight');
  assert.equal(ldmName('decoder.mid_block.attentions.0.proj_attn.bias', 4), 'decoder.mid.attn_1.proj_out.bias');
  assert.equal(ldmName('encoder.mid_block.resnets.1.norm2.weight', 4), 'encoder.mid.block_2.norm2.weight');
  assert.equal(ldmName('decoder.conv_norm_out.bias', 4), 'decoder.norm_out.bias');
  assert.equal(ldmName('encoder.something_else.weight', 4), null);
});

test('the SD autoencoder matches PyTorch in every layout (LDM ckpt/safetensors, full SD ckpt, diffusers old/new names)', async () => {
  await initBackend();
  const io = readNpz(fix('vae.io.npz'));
  const layouts: Array<[string, string]> = [
    ['vae_ldm.ckpt', 'ldm'], ['vae_ldm.safetensors', 'ldm'], ['sd_full.ckpt', 'ldm (first_stage_model)'],
    ['vae_diffusers_old', 'diffusers'], ['vae_diffusers_new', 'diffusers'], ['dit_diffusers', 'diffusers'],
  ];
  for (const [name, layout] of layouts) {
    // The LDM files do not record GroupNorm groups; the fixture uses 4 (SD: 32).
    const vae = readSDVae(fix(name), { resolution: 16, normGroups: 4 });
    assert.equal(vae.layout, layout, name);
    assert.equal(vae.scale, 0.18215, name);
    const [mean, logvar, dec] = tf.tidy(() => {
      const p = posterior(klMoments(vae.model, nchwToNhwc(io.images, toFloat32(io.images))));
      return [nhwcToNchwData(p.mean), nhwcToNchwData(p.logvar), nhwcToNchwData(klDecode(vae.model, nchwToNhwc(io.mean, toFloat32(io.mean))))];
    });
    assert.ok(relErr(mean, toFloat32(io.mean)) < 1e-4, `${name}: mean rel err ${relErr(mean, toFloat32(io.mean))}`);
    assert.ok(relErr(logvar, toFloat32(io.logvar)) < 1e-4, `${name}: logvar rel err ${relErr(logvar, toFloat32(io.logvar))}`);
    assert.ok(relErr(dec, toFloat32(io.decoded)) < 1e-4, `${name}: decode rel err ${relErr(dec, toFloat32(io.decoded))}`);
    disposeKL(vae.model);
  }
});

test('loadAutoencoder takes the SD autoencoder: latents are 0.18215 * the posterior mean', async () => {
  await initBackend();
  const io = readNpz(fix('vae.io.npz'));
  const ae = loadAutoencoder(fix('vae_diffusers_new'), { imageSize: 16 });
  assert.deepEqual(ae.latentShape, [4, 8, 8]);
  const z = tf.tidy(() => ae.encode(tf.tensor4d(toFloat32(io.images), io.images.shape as [number, number, number, number])).dataSync() as Float32Array);
  const want = toFloat32(io.mean).map((v) => v * 0.18215);
  assert.ok(relErr(z, want) < 1e-4);
  ae.dispose();
});

test('SD autoencoder errors name the problem', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sdvae-'));
  try {
    assert.throws(() => readSDVae(path.join(tmp, 'nope')), /SD autoencoder not found/);
    assert.throws(() => readSDVae(tmp), /not a diffusers autoencoder folder \(no config\.json/);
    // Diffusers weights without their config.
    assert.throws(() => readSDVae(fix('vae_diffusers_new/diffusion_pytorch_model.safetensors')), /without their config\.json/);
    // A DiT checkpoint is not an autoencoder.
    assert.throws(() => readSDVae(fix('dit_legacy.pt')), /not an SD autoencoder \(no 'encoder\.conv_in\.weight'\)/);
    // A config that disagrees with the weights.
    const d = path.join(tmp, 'vae');
    fs.cpSync(fix('vae_diffusers_new'), d, { recursive: true });
    const cfg = JSON.parse(fs.readFileSync(path.join(d, 'config.json'), 'utf8'));
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ ...cfg, layers_per_block: 2 }));
    assert.throws(() => readSDVae(d), /do not match their config: missing encoder\.down\.0\.block\.1/);
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ ...cfg, _class_name: 'UNet2DModel' }));
    assert.throws(() => readSDVae(d), /_class_name is "UNet2DModel", not AutoencoderKL/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('the SD autoencoder id (its weights sha256) is hashed once per version of the file in a process', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sdvae-id-'));
  try {
    const file = path.join(tmp, 'vae.safetensors');
    fs.copyFileSync(fix('vae_ldm.safetensors'), file);
    const load = () => recordingOpens(() => {
      const v = readSDVae(file, { resolution: 16, normGroups: 4 });
      disposeKL(v.model);
      return v.sha256;
    });
    const first = load();
    assert.equal(first.value, sha256File(file));
    assert.deepEqual(first.opened, [file, file], 'read, then hashed');
    const again = load();
    assert.equal(again.value, first.value, 'a stable id');
    assert.deepEqual(again.opened, [file], 'read, not hashed again');
    fs.utimesSync(file, new Date(), new Date(Date.now() + 5000));
    const touched = load();
    assert.equal(touched.value, first.value);
    assert.deepEqual(touched.opened, [file, file], 'a new mtime is hashed afresh');
    // The key is (path, size, mtime): the same size and mtime are taken on trust; either changed is hashed again.
    const f = path.join(tmp, 'w.bin');
    const at = (t: number) => fs.utimesSync(f, t, t);
    fs.writeFileSync(f, 'aaaa');
    at(1e9);
    const a = sha256FileCached(f);
    fs.writeFileSync(f, 'bbbb');
    at(1e9);
    assert.equal(sha256FileCached(f), a, 'same path, size and mtime: remembered');
    at(1e9 + 1);
    assert.equal(sha256FileCached(f), sha256File(f), 'another mtime');
    fs.writeFileSync(f, 'ccccc');
    at(1e9 + 1);
    assert.equal(sha256FileCached(f), sha256File(f), 'another size');
    assert.notEqual(sha256File(f), a);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('legacy torch.save files read like zip ones, and train.py checkpoints default to the EMA weights', () => {
  const legacy = readTorchCheckpoint(fix('dit_legacy.pt'));
  const zip = readTorchCheckpoint(fix('dit_trainpy.pt'));
  assert.equal(zip.chosen, 'ema');
  assert.deepEqual(Object.keys(legacy.tensors).sort(), Object.keys(zip.tensors).sort());
  for (const k of Object.keys(zip.tensors)) {
    assert.deepEqual(legacy.tensors[k].shape, zip.tensors[k].shape, k);
    assert.deepEqual(toFloat32(legacy.tensors[k]), toFloat32(zip.tensors[k]), k);
  }
  const model = readTorchCheckpoint(fix('dit_trainpy_legacy.pt'), { key: 'model' });
  assert.equal(model.chosen, 'model');
  assert.notDeepEqual(toFloat32(model.tensors['blocks.0.attn.qkv.weight']), toFloat32(zip.tensors['blocks.0.attn.qkv.weight']));
  // args: the argparse.Namespace as inert fields.
  for (const ck of [zip, model]) {
    assert.equal(ck.args?.model, 'DiT-tiny/2');
    assert.equal(ck.args?.image_size, 64);
    assert.equal(ck.args?.num_classes, 5);
    assert.equal(ck.args?.vae, 'ema');
  }
});

test('truncated or damaged legacy torch.save files say what is wrong', () => {
  const bytes = fs.readFileSync(fix('dit_legacy.pt'));
  assert.throws(() => readTorchCheckpoint(bytes.subarray(0, 200)), /legacy torch\.save file .*truncated/);
  assert.throws(() => readTorchCheckpoint(bytes.subarray(0, bytes.length - 10)), /legacy torch\.save file .*truncated: storage '\d+' needs bytes/);
  // The element count in a storage header that contradicts the pickle.
  const bad = Buffer.from(bytes);
  const keysEnd = findStorageHeader(bad);
  bad.writeBigInt64LE(bad.readBigInt64LE(keysEnd) + 1n, keysEnd);
  assert.throws(() => readTorchCheckpoint(bad), (err: Error) => {
    const m = /storage '\d+' holds (\d+) elements, its tensors declare (\d+)/.exec(err.message);
    return m !== null && Number(m[1]) === Number(m[2]) + 1;
  });
});

/** Byte offset of the first storage header: after the fifth pickle (the storage keys, which hold no '.' byte). */
function findStorageHeader(b: Buffer): number {
  let count = 0;
  for (let i = 0; i < b.length - 1; i++) {
    if (b[i] === 0x80 && b[i + 1] === 0x02) {
      count++;
      if (count === 5) {
        const stop = b.indexOf(0x2e, i);
        return stop + 1;
      }
    }
  }
  throw new Error('no storage keys pickle');
}

// ---- DiT in every published format ----------------------------------------------------

const TINY = validateConfig({
  name: 'tiny', variant: 'adaln-zero', inputSize: 8, inChannels: 4, patchSize: 2, hiddenSize: 16, depth: 2, numHeads: 2,
  mlpRatio: 4, numClasses: 5, classDropoutProb: 0.1, learnSigma: true,
});

function ditOut(model: DiT, io: Record<string, HostArray>): Float32Array {
  return tf.tidy(() => ditForward(model, tf.tensor(toFloat32(io.x), io.x.shape), tf.tensor1d(toInt32(io.t), 'int32'), tf.tensor1d(toInt32(io.y), 'int32')).dataSync() as Float32Array);
}

test('DiT weights in every published format match the PyTorch forward (legacy, train.py ema/model, diffusers folder)', async () => {
  await initBackend();
  const io = readNpz(fix('dit.io.npz'));
  const cases: Array<[string, WeightsKey | undefined, string, RegExp]> = [
    ['dit_legacy.pt', undefined, 'out_ema', /^model weights \(torch\)$/],
    ['dit_trainpy.pt', undefined, 'out_ema', /^train\.py checkpoint \(ema weights, torch\)$/],
    ['dit_trainpy.pt', 'model', 'out_model', /^train\.py checkpoint \(model weights, torch\)$/],
    ['dit_trainpy_legacy.pt', 'ema', 'out_ema', /ema weights/],
    ['dit_trainpy_legacy.pt', 'model', 'out_model', /model weights/],
    ['dit_diffusers', undefined, 'out_ema', /^diffusers DiT folder$/],
    ['dit_diffusers/transformer', undefined, 'out_ema', /^diffusers DiT folder$/],
  ];
  for (const [name, weights, want, source] of cases) {
    // Heads are not in the weights of a bare state_dict: the config says them (the diffusers config does itself).
    const config = name.startsWith('dit_diffusers') ? undefined : TINY;
    const loaded = loadModelFile(fix(name), { config, weights });
    assert.match(loaded.source, source, name);
    const err = relErr(ditOut(loaded.model, io), toFloat32(io[want]));
    assert.ok(err < 1e-4, `${name} (${weights ?? 'default'}): rel err ${err}`);
    assert.equal(loaded.diffusion.learnSigma, true);
    disposeDiT(loaded.model);
  }
});

test('the diffusers DiT config gives the architecture; the published names come back', () => {
  const d = readDiffusersDiT(fix('dit_diffusers'));
  assert.deepEqual({ ...d.config, name: 'tiny' }, TINY);
  const legacy = readTorchCheckpoint(fix('dit_legacy.pt')).tensors;
  assert.deepEqual(Object.keys(d.tensors).sort(), Object.keys(legacy).sort());
  for (const k of Object.keys(legacy)) {
    const a = toFloat32(d.tensors[k]);
    const b = toFloat32(legacy[k]);
    assert.ok(relErr(a, b) < 1e-6, k);
  }
  // A published-size config is named as in the paper.
  const xl = configFromDiffusersDiT({ num_attention_heads: 16, attention_head_dim: 72, in_channels: 4, out_channels: 8, patch_size: 2, num_layers: 28, sample_size: 32, num_embeds_ada_norm: 1000, norm_type: 'ada_norm_zero' }, 'config.json', 4608);
  assert.deepEqual(xl, ditConfig('DiT-XL/2'));
  assert.throws(() => configFromDiffusersDiT({ ...xl, num_attention_heads: 16, attention_head_dim: 72, in_channels: 4, patch_size: 2, num_layers: 28, sample_size: 32, num_embeds_ada_norm: 1000, norm_type: 'ada_norm_single' }, 'c.json', 4608), /norm_type "ada_norm_single": only DiT's ada_norm_zero/);
});

test("train.py args name the published architecture: DiT-XL/2 at image_size 512 is a 64x64 latent DiT", () => {
  assert.deepEqual(configFromTrainArgs({ model: 'DiT-XL/2', image_size: 512, num_classes: 1000 }, 'f'), ditConfig('DiT-XL/2', { inputSize: 64 }));
  assert.deepEqual(configFromTrainArgs({ model: 'DiT-B/4', image_size: 256, num_classes: 10 }, 'f'), ditConfig('DiT-B/4', { numClasses: 10 }));
  assert.equal(configFromTrainArgs({ model: 'DiT-tiny/2' }, 'f'), null);
  assert.throws(() => configFromTrainArgs({ model: 'DiT-XL/2', image_size: 250 }, 'f.pt'), /f\.pt: args\.image_size 250 is not a multiple of 8/);
  assert.throws(() => configFromTrainArgs({ model: 'DiT-XL/3', image_size: 256 }, 'f.pt'), /f\.pt: args describe no valid DiT.*patch size 3/);
});

test('published-format errors name the problem: missing EMA, shape mismatch, damaged diffusers folders', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pretrained-'));
  try {
    // A diffusers folder whose config disagrees with its weights.
    const d = path.join(tmp, 'dit');
    fs.cpSync(fix('dit_diffusers'), d, { recursive: true });
    const cfgFile = path.join(d, 'transformer', 'config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, num_layers: 3 }));
    assert.throws(() => loadModelFile(d), /not a diffusers DiT \(no 'transformer_blocks\.2\./);
    fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, num_layers: 1 }));
    assert.throws(() => loadModelFile(d), /unexpected tensors for a 1-block DiT: transformer_blocks\.1\./);
    fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, attention_head_dim: 4 }));
    assert.throws(() => loadModelFile(d), /x_embedder\.proj\.weight/);
    fs.rmSync(path.join(d, 'transformer', 'diffusion_pytorch_model.safetensors'));
    fs.writeFileSync(cfgFile, JSON.stringify(cfg));
    assert.throws(() => loadModelFile(d), /a diffusers DiT folder without weights/);
    // No EMA weights: an error unless the raw weights are asked for.
    assert.throws(() => loadModelFile(fix('dit_trainpy_noema.pt'), { config: TINY }), /a train\.py checkpoint without EMA weights \(has model\); pass --key model/);
    assert.throws(() => loadModelFile(fix('dit_trainpy_noema.pt'), { config: TINY, weights: 'ema' }), /no entry 'ema' \(top-level keys: model, args\)/);
    disposeDiT(loadModelFile(fix('dit_trainpy_noema.pt'), { config: TINY, weights: 'model' }).model);
    // The wrong architecture for a train.py checkpoint.
    assert.throws(() => loadModelFile(fix('dit_trainpy.pt'), { config: { ...TINY, depth: 3 } }), /blocks\.2\./);
    // An unknown folder.
    assert.throws(() => loadModelFile(tmp), new RegExp(`${tmp.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

// ---- sample.py and sample_ddp.py, end to end on the fixture weights ---------------------

const CLI = path.join(repoRoot(), 'dist', 'lib', 'cli', 'index.js');

function dit(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, DIT_QUIET: '1' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tinyConfigFile(dir: string): string {
  const f = path.join(dir, 'tiny.json');
  fs.writeFileSync(f, JSON.stringify(TINY));
  return f;
}

test("dit sample runs sample.py's command line on a train.py checkpoint and the SD autoencoder", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'samplepy-'));
  try {
    const out = path.join(tmp, 'grid.png');
    const r = dit(['sample', '--model', tinyConfigFile(tmp), '--image-size', '64', '--checkpoint', fix('dit_trainpy.pt'), '--key', 'ema',
      '--vae', fix('dit_diffusers/vae'), '--class-labels', '0,1,2,4', '--cfg-scale', '4', '--num-sampling-steps', '5', '--seed', '0', '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(fs.statSync(out).size > 100);
    const npz = readNpz(out.replace(/\.png$/, '.npz'));
    assert.deepEqual(npz.arr_0.shape, [4, 16, 16, 3]);
    assert.deepEqual(Array.from(toInt32(npz.arr_1)), [0, 1, 2, 4]);
    const prov = JSON.parse(fs.readFileSync(out.replace(/\.png$/, '.json'), 'utf8'));
    assert.equal(prov.cfgScale, 4);
    assert.equal(prov.steps, 5);
    assert.match(prov.weights, /train\.py checkpoint \(ema weights/);
    // sample.py's default classes need 1000 of them: a clear error on a 5-class model.
    const bad = dit(['sample', '--model', tinyConfigFile(tmp), '--image-size', '64', '--checkpoint', fix('dit_trainpy.pt'), '--vae', fix('dit_diffusers/vae'), '--num-sampling-steps', '2', '--out', out]);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /label 207 \(index 0\) is outside the allowed range \[0, 5\)/);
    assert.match(dit(['sample', '--checkpoint', fix('dit_diffusers'), '--image-size', '60', '--out', out]).stderr, /--image-size must be a positive multiple of 8/);
    // sample_ddp.py's defaults with --num-samples: its own labels, guidance 1.5.
    const fid = path.join(tmp, 'fid.npz');
    const ddp = dit(['sample', '--checkpoint', fix('dit_diffusers'), '--image-size', '64', '--vae', fix('dit_diffusers/vae'), '--num-samples', '3',
      '--num-sampling-steps', '2', '--out', fid]);
    assert.equal(ddp.status, 0, ddp.stderr);
    const fidProv = JSON.parse(fs.readFileSync(fid.replace(/\.npz$/, '.json'), 'utf8'));
    assert.equal(fidProv.cfgScale, 1.5);
    // One provenance for both modes: every field of the plain run's, with the steps taken, plus the shards'.
    assert.deepEqual(Object.keys(prov).filter((k) => !(k in fidProv)), []);
    const { steps, respacing, num, shardSize, labels, resumedShards } = fidProv;
    assert.deepEqual({ steps, respacing, num, shardSize, labels, resumedShards }, { steps: 2, respacing: null, num: 3, shardSize: 1000, labels: 'random', resumedShards: 0 });
    assert.ok(fidProv.gflopsPerImage > 0 && typeof fidProv.vae === 'string', JSON.stringify(fidProv));
    assert.match(dit(['sample', '--checkpoint', fix('dit_diffusers'), '--steps', '3', '--num-sampling-steps', '3', '--out', path.join(tmp, 'a.npz')]).stderr, /--num-sampling-steps and --steps are the same flag/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('--num-samples writes resumable shards: a kill -9 mid-run resumes to the same ADM npz as an uninterrupted run', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fid-shards-'));
  try {
    const args = (out: string, seed = '3') => ['sample', '--checkpoint', fix('dit_diffusers'), '--vae', fix('dit_diffusers/vae'), '--num-samples', '7', '--shard-size', '2',
      '--labels', 'balanced', '--num-sampling-steps', '40', '--cfg-scale', '1.5', '--seed', seed, '--out', out];
    const whole = path.join(tmp, 'whole.npz');
    const r = dit(args(whole));
    assert.equal(r.status, 0, r.stderr);
    const a = readNpz(whole);
    assert.deepEqual(a.arr_0.shape, [7, 16, 16, 3]);
    assert.deepEqual(Array.from(toInt32(a.arr_1)), [0, 1, 2, 3, 4, 0, 1]);

    // Killed once the first shard is on disk.
    const killed = path.join(tmp, 'killed.npz');
    const shard0 = path.join(tmp, 'killed.shards', 'shard-00000.npz');
    const child = spawn(process.execPath, [CLI, ...args(killed)], { stdio: 'ignore', env: { ...process.env, DIT_QUIET: '1' } });
    const deadline = Date.now() + 120_000;
    while (!fs.existsSync(shard0) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    child.kill('SIGKILL');
    await new Promise((res) => child.once('exit', res));
    assert.ok(fs.existsSync(shard0), 'the first shard was written before the kill');
    assert.ok(!fs.existsSync(killed), 'the run was killed before it finished');
    const again = dit(args(killed));
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /shard 1\/4 already there/);
    assert.deepEqual(fs.readFileSync(killed), fs.readFileSync(whole));
    // Other settings in the same folder are refused rather than mixed in.
    const other = dit(args(killed, '4'));
    assert.notEqual(other.status, 0);
    assert.match(other.stderr, /holds shards sampled with other settings/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('dit vae encode|decode match PyTorch on the SD autoencoder (unscaled by default, --scale applies 0.18215)', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vae-cli-'));
  try {
    const io = readNpz(fix('vae.io.npz'));
    const vae = fix('vae_diffusers_old');
    const enc = path.join(tmp, 'z.npz');
    const two = path.join(tmp, 'two.npz');
    writeNpz(two, { mean: io.mean, logvar: io.logvar });
    let r = dit(['vae', 'encode', '--vae', vae, '--in', two, '--out', enc]);
    assert.match(r.stderr, /holds mean, logvar; expected arr_0 or images/);
    const imgs = path.join(tmp, 'images.npz');
    writeNpz(imgs, { images: io.images });
    r = dit(['vae', 'encode', '--vae', vae, '--in', imgs, '--out', enc, '--batch-size', '1']);
    assert.equal(r.status, 0, r.stderr);
    const z = readNpz(enc).latents;
    assert.deepEqual(z.shape, [2, 4, 8, 8]);
    assert.ok(relErr(toFloat32(z), toFloat32(io.mean)) < 1e-4);
    r = dit(['vae', 'encode', '--vae', vae, '--in', imgs, '--out', enc, '--scale']);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(relErr(toFloat32(readNpz(enc).latents), toFloat32(io.mean).map((v) => v * 0.18215)) < 1e-4);
    // The posterior sample differs from the mode and is reproducible from its seed.
    const s1 = path.join(tmp, 's1.npz');
    const s2 = path.join(tmp, 's2.npz');
    for (const f of [s1, s2]) assert.equal(dit(['vae', 'encode', '--vae', vae, '--in', imgs, '--out', f, '--sample', '--seed', '5']).status, 0);
    assert.deepEqual(fs.readFileSync(s1), fs.readFileSync(s2));
    assert.ok(relErr(toFloat32(readNpz(s1).latents), toFloat32(io.mean)) > 1e-3);

    const lat = path.join(tmp, 'lat.npz');
    writeNpz(lat, { latents: io.mean });
    const dec = path.join(tmp, 'x.npz');
    r = dit(['vae', 'decode', '--vae', fix('vae_ldm.safetensors'), '--in', lat, '--out', dec]);
    // The LDM file does not say its GroupNorm groups: SD's 32 do not divide the fixture's 8 channels.
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /not divisible by normGroups 32/);
    r = dit(['vae', 'decode', '--vae', vae, '--in', lat, '--out', dec]);
    assert.equal(r.status, 0, r.stderr);
    const x = readNpz(dec);
    assert.ok(relErr(toFloat32(x.images), toFloat32(io.decoded)) < 1e-4);
    assert.deepEqual(x.arr_0.shape, [2, 16, 16, 3]);
    assert.equal(x.arr_0.dtype, 'uint8');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('dit evaluate on pool-only npz files trains nothing, writes nothing and names the absent metrics; ADM batches use their statistics', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'eval-pool-'));
  try {
    const rng = new Rng(9);
    const pool = () => ({ dtype: 'float32' as const, shape: [100, 8], data: rng.fillNormal(new Float32Array(800)) });
    const ref = path.join(tmp, 'ref.npz');
    const sample = path.join(tmp, 'sample.npz');
    writeNpz(ref, { pool: pool() });
    writeNpz(sample, { pool: pool() });
    const before = spawnSync('git', ['status', '--porcelain', '--ignored'], { cwd: repoRoot(), encoding: 'utf8' }).stdout;
    const cnn = path.join(tmp, 'no-cnn-here');
    const r = dit(['evaluate', ref, sample, '--default-cnn', cnn, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const e = JSON.parse(r.stdout);
    assert.ok(e.fid > 0 && e.precision !== null && e.recall !== null);
    assert.equal(e.inception_score, null);
    assert.match(e.absent.inception_score, /no logits for the Inception Score: the samples hold no images/);
    assert.match(e.absent.sfid, /no matching spatial statistics/);
    assert.equal(e.feature_net, null);
    assert.ok(!fs.existsSync(cnn), 'no feature network was trained');
    assert.equal(spawnSync('git', ['status', '--porcelain', '--ignored'], { cwd: repoRoot(), encoding: 'utf8' }).stdout, before, 'nothing written into the checkout');

    // ADM's reference batch layout: images plus precomputed mu/sigma, which are used as they are.
    const mu = new Float64Array(8).fill(0.5);
    const sigma = new Float64Array(64);
    for (let i = 0; i < 8; i++) sigma[i * 9] = 2;
    const adm = path.join(tmp, 'VIRTUAL_tiny.npz');
    writeNpz(adm, {
      arr_0: { dtype: 'uint8', shape: [2, 4, 4, 3], data: new Uint8Array(96) },
      mu: { dtype: 'float64', shape: [8], data: mu }, sigma: { dtype: 'float64', shape: [8, 8], data: sigma },
    });
    // Samples given as statistics only: FID needs no network, and none is trained for the metrics that cannot be had.
    const stats = path.join(tmp, 'sample-stats.npz');
    writeNpz(stats, { mu: { dtype: 'float64', shape: [8], data: new Float64Array(8) }, sigma: { dtype: 'float64', shape: [8, 8], data: sigma } });
    const a = dit(['evaluate', adm, stats, '--default-cnn', cnn, '--json']);
    assert.equal(a.status, 0, a.stderr);
    const ea = JSON.parse(a.stdout);
    assert.match(ea.sources.fid, /reference: mu\/sigma in the file; samples: mu\/sigma in the file/);
    assert.ok(Math.abs(ea.fid - 8 * 0.25) < 1e-9, `FID of equal covariances is |mu1 - mu2|^2 = 2, got ${ea.fid}`);
    for (const m of ['inception_score', 'sfid', 'precision', 'recall']) assert.equal(ea[m], null, m);
    assert.ok(!fs.existsSync(cnn), 'the statistics sufficed: no network');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('dit inspect reads every published format; --key picks the weights of a train.py checkpoint', () => {
  const list = (args: string[]) => {
    const r = dit(['inspect', ...args, '--json']);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  assert.match(list(['--checkpoint', fix('dit_trainpy.pt')]).format, /^torch, ema weights$/);
  assert.match(list(['--checkpoint', fix('dit_trainpy_legacy.pt'), '--key', 'model']).format, /^torch, model weights$/);
  const d = list(['--checkpoint', fix('dit_diffusers')]);
  assert.equal(d.format, 'diffusers DiT folder');
  assert.equal(d.architecture.numHeads, 2);
  assert.equal(d.architecture.headsGuessed, false);
  assert.match(dit(['inspect', '--checkpoint', fix('dit_trainpy_noema.pt')]).stderr, /without EMA weights \(has model\); pass --key model/);
  assert.match(dit(['inspect', '--checkpoint', fix('dit_legacy.pt'), '--key', 'both']).stderr, /--key must be ema or model/);
  // A forward pass with the raw weights of the train.py checkpoint matches PyTorch's.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'inspect-key-'));
  try {
    const out = path.join(tmp, 'out.npz');
    const r = dit(['inspect', '--checkpoint', fix('dit_trainpy.pt'), '--key', 'model', '--model', tinyConfigFile(tmp), '--forward', fix('dit.io.npz'), '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(relErr(toFloat32(readNpz(out).out), toFloat32(readNpz(fix('dit.io.npz')).out_model)) < 1e-4);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
