// Experiment configs, seeds and flags: hostile input is refused before any work starts,
// with errors that name the file, the key path and what is allowed.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { generateSynthetic } from '../lib/data/synthetic';
import { parseArgs, UsageError } from '../lib/util/args';
import { checkSeed, derivedSeed, Rng, SEED_MAX } from '../lib/util/rng';

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
