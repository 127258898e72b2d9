// Experiment configs, seeds and flags: hostile input is refused before any work starts,
// with errors that name the file, the key path and what is allowed.
import { test } from 'node:test';
import { tinyExperimentJson } from './helpers';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { experimentCells, experimentsDir, loadExperiment, validateExperiment } from '../lib/experiments/config';
import { generateSynthetic } from '../lib/data/synthetic';
import { parseArgs, UsageError } from '../lib/util/args';
import { checkSeed, derivedSeed, Rng, SEED_MAX } from '../lib/util/rng';

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('Rng takes exactly the 32-bit seeds it tells apart', () => {
  for (const bad of [2 ** 32, 1e300, 0.5, -1, NaN, Infinity]) {
    assert.throws(() => new Rng(bad), /Rng: seed must be an integer in \[0, 4294967295\]/, String(bad));
  }
  const first = (s: number) => new Rng(s).nextU32();
  assert.notEqual(first(SEED_MAX), first(0));
  assert.notEqual(first(SEED_MAX), first(SEED_MAX - 1));
  assert.equal(checkSeed(SEED_MAX), SEED_MAX);
  assert.throws(() => checkSeed(2 ** 32, '--seed'), /^Error: --seed must be an integer in \[0, 4294967295\]/);
  // fork() XORs a signed value: every fork must still be a valid, reproducible seed.
  const a = new Rng(7), b = new Rng(7);
  for (let i = 0; i < 200; i++) assert.equal(a.fork().nextU32(), b.fork().nextU32());
});

test('derived seeds keep the streams the generator always gave them', () => {
  // Rng used to read any number modulo 2^32: a derived seed past 2^32 must give that same stream.
  const x = 4295 * 1000003 + 7; // EpochOrder's seed * 1000003 + epoch + 1 for train seed 4295
  assert.ok(x > SEED_MAX);
  assert.equal(derivedSeed(x), x % 2 ** 32);
  assert.equal(derivedSeed(SEED_MAX + 1), 0);
  assert.equal(new Rng(derivedSeed(x)).nextU32(), new Rng(x % 2 ** 32).nextU32());
  assert.throws(() => derivedSeed(0.5), /safe integer/);
});

test('synthetic seeds are honoured beyond 32 bits (their own generator mixes both halves)', () => {
  const img = (seed: number) => Buffer.from(generateSynthetic({ seed, count: 1 }).images).toString('hex');
  assert.notEqual(img(2 ** 32), img(0));
  assert.throws(() => generateSynthetic({ seed: 0.5, count: 1 }), /synthetic seed/);
  assert.throws(() => generateSynthetic({ seed: 2 ** 53, count: 1 }), /synthetic seed/);
});

test('flags named like object properties are unknown flags', () => {
  const spec = { steps: 'count', seed: 'seed', name: 'string' } as const;
  for (const k of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
    assert.throws(() => parseArgs([`--${k}`, 'x'], spec), (e: Error) => e instanceof UsageError && e.message === `unknown flag --${k}`);
    assert.throws(() => parseArgs([`--${k}=1`], spec), UsageError);
  }
  const { flags } = parseArgs(['--name', 'n'], spec);
  assert.equal(Object.getPrototypeOf(flags), null);
  assert.equal((flags as Record<string, unknown>).toString, undefined);
  assert.deepEqual({ ...flags }, { name: 'n' });
});

test('count and seed flags take exactly their ranges', () => {
  const spec = { steps: 'count', seed: 'seed' } as const;
  for (const v of ['0', '-3', '1.5', 'x', '']) {
    assert.throws(() => parseArgs([`--steps=${v}`], spec), (e: Error) => e instanceof UsageError && e.message === `flag --steps needs a positive integer, got '${v}'`);
  }
  assert.equal(parseArgs(['--steps', '12'], spec).flags.steps, 12);
  for (const v of ['4294967296', '-1', '0.5', '1e300']) {
    assert.throws(() => parseArgs(['--seed', v], spec), /flag --seed needs an integer in \[0, 4294967295\]/);
  }
  assert.equal(parseArgs(['--seed', '4294967295'], spec).flags.seed, SEED_MAX);
});

test('dit train --steps 0 or negative is an error before any config is read', async () => {
  const { trainCommand } = await import('../lib/cli/train');
  for (const argv of [['no-such-config', '--steps', '0'], ['no-such-config', '--steps', '-5'], ['no-such-config', '--steps=-1']]) {
    await assert.rejects(trainCommand.run(argv), (e: Error) => e instanceof UsageError && /--steps needs a positive integer/.test(e.message));
  }
});

/** A small valid experiment, as parsed JSON (a fresh copy each call). */
function good(): Record<string, any> {
  return tinyExperimentJson();
}


/** The config with one change must fail naming the source, the key path and what is allowed. */
function refused(change: (c: Record<string, any>) => void, keyPath: string, allowed: RegExp): void {
  const c = good();
  change(c);
  assert.throws(() => validateExperiment(c, 'hostile.json'), (err: Error) => {
    assert.match(err.message, new RegExp(`^experiment config hostile\\.json: ${keyPath ? `${esc(keyPath)}: ` : ''}`), err.message);
    assert.match(err.message, allowed, err.message);
    return true;
  });
}

test('the small config is valid (the cases below fail for the change they make)', () => {
  const e = validateExperiment(good());
  assert.deepEqual(experimentCells(e).map((c) => c.id), ['mini-S_4-adaln-zero', 'mini-S_2-adaln-zero']);
});

test('every key is typed and range-checked', () => {
  refused((c) => (c.train.lr = -1e-3), 'train.lr', /must be a number > 0, got -0\.001/);
  refused((c) => (c.train.lr = '1e-3'), 'train.lr', /must be a number > 0, got '1e-3'/);
  refused((c) => (c.train.flip = 'no'), 'train.flip', /must be true or false, got 'no'/);
  refused((c) => (c.train.batchSize = 0), 'train.batchSize', /must be a positive integer, got 0/);
  refused((c) => (c.train.emaDecay = 1), 'train.emaDecay', /must be a number in \[0, 1\), got 1/);
  refused((c) => (c.train.emaDecay = 'x'), 'train.emaDecay', /must be a number in \[0, 1\), got 'x'/);
  refused((c) => (c.train.gradClip = 0), 'train.gradClip', /null \(off, as the paper\) or a number > 0/);
  refused((c) => (c.train.lrWarmup = -1), 'train.lrWarmup', /an integer >= 0/);
  refused((c) => (c.eval.guidanceChannels = 'rgb'), 'eval.guidanceChannels', /unknown guidance channels 'rgb' \(allowed: 'first3', 'all'\)/);
  refused((c) => (c.eval.featureNetSteps = -5), 'eval.featureNetSteps', /must be a positive integer, got -5/);
  refused((c) => (c.eval.atSteps = 4), 'eval.atSteps', /must be a non-empty list, each item a positive integer, got 4/);
  refused((c) => (c.eval.refImages = 0), 'eval.refImages', /must be a positive integer, got 0/);
  refused((c) => (c.eval.cfgScale = -0.5), 'eval.cfgScale', /must be a number >= 0, got -0\.5/);
  refused((c) => (c.eval.cfgScale = '1.5'), 'eval.cfgScale', /must be a number >= 0, got '1\.5'/);
  refused((c) => (c.eval.samplingSteps = 1001), 'eval.samplingSteps', /must be an integer in \[1, 1000\], got 1001/);
  refused((c) => (c.eval.samplingSteps = 0), 'eval.samplingSteps', /must be an integer in \[1, 1000\], got 0/);
  refused((c) => (c.eval.bootstrap = 1), 'eval.bootstrap', /0 \(none\) or an integer >= 2/);
  refused((c) => (c.eval.sampler = 'euler'), 'eval.sampler', /unknown sampler 'euler' \(allowed: 'ddpm', 'ddim'\)/);
  refused((c) => (c.studies[0].models = 'mini-S/4'), 'studies[0].models', /must be a non-empty list, each item one of 'DiT-S\/8', .*'mini-XL\/1', got 'mini-S\/4'/);
  refused((c) => (c.studies[0].models = []), 'studies[0].models', /non-empty list/);
  refused((c) => (c.studies[0].models = ['mini-Q/2']), 'studies[0].models[0]', /unknown model 'mini-Q\/2' \(allowed: 'DiT-S\/8'/);
  refused((c) => (c.studies[1].finalSamplingSteps = [0]), 'studies[1].finalSamplingSteps[0]', /must be an integer in \[1, 1000\], got 0/);
  refused((c) => (c.studies[1].finalCfgScales = [-1]), 'studies[1].finalCfgScales[0]', /a number >= 0/);
  refused((c) => (c.studies[0].seeds = [1, 2.5]), 'studies[0].seeds[1]', /must be an integer in \[0, 4294967295\], got 2\.5/);
  refused((c) => (c.studies[0].variants = ['adaln', 'film']), 'studies[0].variants[1]', /unknown variant 'film' \(allowed: 'adaln-zero', 'adaln', 'cross-attention', 'in-context'\)/);
  refused((c) => (c.data.size = 48), 'data.size', /unknown synthetic image size 48 \(allowed: 32, 64\)/);
  refused((c) => (c.data.kind = 'folder'), 'data.kind', /unknown kind 'folder' \(allowed: 'synthetic', 'shard'\)/);
  refused((c) => (c.autoencoder = { kind: 'kl', factor: 8 }), 'autoencoder.factor', /unknown factor 8 \(allowed: 2, 4\)/);
  refused((c) => (c.modelOverrides.depth = 0), 'modelOverrides.depth', /must be a positive integer, got 0/);
  refused((c) => (c.modelOverrides.learnSigma = 'yes'), 'modelOverrides.learnSigma', /true or false/);
  refused((c) => (c.description = 42), 'description', /must be a string, got 42/);
});

test('seeds outside the range the generator honours are refused wherever they enter a config', () => {
  for (const bad of [2 ** 32, -1, 0.5, 1e300, '0']) {
    refused((c) => (c.train.seed = bad), 'train.seed', /must be an integer in \[0, 4294967295\]/);
  }
  refused((c) => (c.data.seed = 2 ** 32), 'data.seed', /\[0, 4294967295\]/);
  refused((c) => (c.eval.seed = -1), 'eval.seed', /\[0, 4294967295\]/);
  refused((c) => (c.eval.refSeed = 0.5), 'eval.refSeed', /\[0, 4294967295\]/);
  refused((c) => (c.autoencoder = { kind: 'kl', seed: 2 ** 32 }), 'autoencoder.seed', /\[0, 4294967295\]/);
  const top = good();
  top.train.seed = SEED_MAX;
  assert.equal(validateExperiment(top).train.seed, SEED_MAX);
});

test('names that become path components cannot leave the folder the user chose', () => {
  for (const bad of ['', '..', '../escape', 'a/b', 'a\\b', 'a\u0000b', 'x..y', ' padded', 'new\nline']) {
    refused((c) => (c.name = bad), 'name', /a non-empty name without '\/', '\\', '\.\.', control characters or surrounding spaces/);
    refused((c) => (c.studies[1].name = bad), 'studies[1].name', /a non-empty name without/);
  }
  refused((c) => (c.data = { kind: 'shard', path: 'data/x\u0000', size: 32 }), 'data.path', /a non-empty path without control characters/);
  refused((c) => (c.data = { kind: 'shard', path: '', size: 32 }), 'data.path', /a non-empty path/);
});

test('unknown keys are errors, inherited names included', () => {
  refused((c) => (c.trian = {}), '', /unknown key 'trian' \(valid: name, description, data, autoencoder, modelOverrides, train, eval, studies\)/);
  for (const k of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
    // JSON.parse makes '__proto__' an own key, as a hostile file would.
    const c = JSON.parse(`{"train": {"${k}": 1}}`);
    refused((x) => (x.train = { ...good().train, ...c.train }), 'train', new RegExp(`unknown key '${k}' \\(valid: steps, batchSize`));
  }
  refused((c) => (c.modelOverrides.variant = 'adaln'), 'modelOverrides', /unknown key 'variant' \(valid: inputSize, inChannels, patchSize/);
  refused((c) => (c.modelOverrides.name = 'x'), 'modelOverrides', /unknown key 'name'/);
  refused((c) => (c.studies[0].seed = 3), 'studies[0]', /unknown key 'seed' \(valid: name, models, variants, finalSamplingSteps, finalCfgScales, seeds\)/);
  refused((c) => delete c.train.lr, 'train', /missing key 'lr' \(AdamW learning rate: a number > 0\)/);
  refused((c) => delete c.data.kind, 'data', /missing key 'kind' \(one of 'synthetic', 'shard'\)/);
});

test('rules between keys are checked before any work', () => {
  refused((c) => (c.eval.atSteps = [3]), 'eval.atSteps[0]', /step 3 is not a checkpoint step \(ckptEvery 2\).*allowed: multiples of train\.ckptEvery, and train\.steps/);
  refused((c) => (c.eval.atSteps = [2, 6]), 'eval.atSteps[1]', /step 6 is after the last training step 4/);
  refused((c) => (c.autoencoder = { kind: 'identity', factor: 2 }), 'autoencoder.factor', /'identity' autoencoder takes no other keys/);
  refused((c) => (c.autoencoder = { kind: 'kl', weights: 'w', steps: 10 }), 'autoencoder.steps', /does not apply to given weights/);
  refused((c) => (c.eval.refSeed = 0), 'eval.refSeed', /0 is the training data's seed/);
  refused((c) => {
    c.data = { kind: 'shard', path: 'data/x', size: 32 };
    c.eval.refSeed = 2;
  }, 'eval.refSeed', /needs data\.kind 'synthetic'/);
  refused((c) => (c.eval.space = 'study'), 'eval.space', /'study' needs held-out reference images \(eval\.refSeed\)/);
  refused((c) => Object.assign(c.eval, { space: 'study', refSeed: 2, features: 'inception' }), 'eval.space', /needs eval\.features 'default'/);
  refused((c) => (c.eval.space = 'study-contrast'), 'eval.space', /'study-contrast' needs held-out reference images \(eval\.refSeed\)/);
  refused((c) => (c.eval.space = 'pixels'), 'eval.space', /unknown FID space 'pixels' \(allowed: 'study', 'study-contrast', 'features'\)/);
  refused((c) => (c.studies[1].name = 'scaling'), 'studies[1].name', /'scaling' is already a study's name/);
  refused((c) => (c.modelOverrides.inputSize = 6), 'studies[0].models[0]', /mini-S\/4 \(adaln-zero\) with modelOverrides: inputSize 6 is not divisible by patchSize 4/);
  const ok = good();
  Object.assign(ok.eval, { space: 'study', refSeed: 2, bootstrap: 0, valLatents: 0 });
  assert.equal(validateExperiment(ok).eval.space, 'study');
  ok.eval.space = 'study-contrast';
  assert.equal(validateExperiment(ok).eval.space, 'study-contrast');
});

test('validation copies: defaults are filled in, optional keys stay absent, the input is untouched', () => {
  const raw = good();
  delete raw.modelOverrides;
  const before = JSON.stringify(raw);
  const e = validateExperiment(raw);
  assert.equal(JSON.stringify(raw), before);
  assert.equal(e.description, '');
  assert.deepEqual(e.modelOverrides, {});
  assert.ok(!('lrWarmup' in e.train) && !('refSeed' in e.eval) && !('seeds' in e.studies[0]));
  // Defaults are copies: changing one experiment's cannot change another's.
  (e.modelOverrides as Record<string, number>).depth = 3;
  assert.deepEqual(validateExperiment(raw).modelOverrides, {});
  // undefined (from code) is absent, as in JSON.
  assert.deepEqual(validateExperiment({ ...good(), modelOverrides: undefined }).modelOverrides, {});
});

test('every preset validates to its file, key for key and in order (config hashes stay put)', () => {
  const presets = fs.readdirSync(experimentsDir()).filter((f) => f.endsWith('.json')).sort();
  assert.deepEqual(presets, ['mini.json', 'paper.json', 'quick.json', 'smoke.json']);
  for (const f of presets) {
    const file = JSON.parse(fs.readFileSync(path.join(experimentsDir(), f), 'utf8')) as Record<string, unknown>;
    const e = loadExperiment(f.slice(0, -5));
    assert.equal(JSON.stringify(e), JSON.stringify(file), f);
    assert.ok(experimentCells(e).length > 0, f);
  }
});

test('an error in a config file names the file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-config-'));
  try {
    const file = path.join(dir, 'mine.json');
    fs.writeFileSync(file, JSON.stringify({ ...good(), train: { ...good().train, lr: 'fast' } }));
    assert.throws(() => loadExperiment(file), new RegExp(`^Error: experiment config ${esc(file)}: train\\.lr: must be a number > 0, got 'fast'$`));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
