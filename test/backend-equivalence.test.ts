// The fast CPU path must not change results: the same seed gives the same loss curve
// on the native backend, on wasm and on the plain tfjs cpu backend (float32 tolerance).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend';
import { closeRun, train } from '../lib/train/trainer';
import { tinyRun } from './helpers';

async function lossCurve(backend: string): Promise<number[] | null> {
  try {
    await initBackend({ name: backend, quiet: true });
  } catch {
    return null; // e.g. the native addon is not built here
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `dit-eq-${backend}-`));
  const losses: number[] = [];
  const { options, source } = tinyRun({ steps: 6, ckptEvery: 100 });
  const st = await train(dir, options, source, { quiet: true, onStep: (l) => { losses.push(l.loss); } });
  closeRun(st);
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(tf.getBackend(), backend);
  return losses;
}

test('the same seed gives the same loss curve on native, wasm and the plain cpu backend', async () => {
  const cpu = (await lossCurve('cpu'))!;
  assert.equal(cpu.length, 6);
  let compared = 0;
  for (const b of ['native', 'wasm']) {
    const other = await lossCurve(b);
    if (!other) continue;
    compared++;
    other.forEach((l, i) => assert.ok(Math.abs(l - cpu[i]) <= 1e-4 * Math.abs(cpu[i]), `${b} step ${i + 1}: ${l} vs cpu ${cpu[i]}`));
  }
  assert.ok(compared >= 1, 'no fast backend to compare with');
});
