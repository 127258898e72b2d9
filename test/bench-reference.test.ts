// The benchmark's references do the kit's work: bench/torch_dit.py's training loss (the
// learned-sigma hybrid loss with the stop-gradient on the mean for the vb term) equals the
// kit's trainingLosses, values and gradients, on the same model output; and the bench's
// measurement helpers. Needs a python3 with torch (Debian: python3-torch) for the first.
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend';
import { createDiffusion } from '../lib/diffusion';
import { repoRoot } from '../lib/util/paths';
import { Rng } from '../lib/util/rng';
import { ratio, spread } from '../bench/measure';
import { benchDiTConfig, REFERENCE, trainStepFlops } from '../bench/dit_step';
import { gflops } from '../lib/model/gflops';
import { referenceEnv, torchPython } from '../bench/kernels';
import { relErr } from './helpers';

const py = torchPython();

before(async () => {
  await initBackend({ quiet: true });
});

// Runs torch_dit.Diffusion.training_losses on a model that returns `out`, with out's gradient.
const TORCH_LOSS = `
import json, sys, torch
sys.path.insert(0, sys.argv[1])
import torch_dit
a = json.loads(sys.stdin.read())
B, C, H = a["B"], a["C"], a["H"]
x0 = torch.tensor(a["x0"]).reshape(B, C, H, H)
noise = torch.tensor(a["noise"]).reshape(B, C, H, H)
out = torch.tensor(a["out"]).reshape(B, 2 * C, H, H).requires_grad_(True)
t = torch.tensor(a["t"])
loss, mse, vb = torch_dit.Diffusion(1000).training_losses(lambda xt, tt, y: out, x0, t, None, noise)
loss.backward()
print(json.dumps({"loss": loss.item(), "mse": mse.item(), "vb": vb.item(), "grad": out.grad.flatten().tolist()}))
`;

test('bench/torch_dit.py: the hybrid loss and its gradient equal the kit\'s trainingLosses', { skip: py ? false : 'no python3 with torch' }, () => {
  const B = 6, C = 4, H = 4, n = B * C * H * H;
  const rng = new Rng(7);
  const x0 = Array.from(rng.fillNormal(new Float32Array(n)), (v) => Math.max(-1, Math.min(1, v * 0.6)));
  // Some values beyond +-0.999: the decoder NLL's edge bins at t = 0.
  x0[0] = 1; x0[1] = -1;
  const noise = Array.from(rng.fillNormal(new Float32Array(n)));
  const out = Array.from(rng.fillNormal(new Float32Array(2 * n), 0, 0.5));
  const t = [0, 1, 17, 500, 998, 999];
  const r = spawnSync(py!, ['-c', TORCH_LOSS, path.join(repoRoot(), 'bench')], {
    input: JSON.stringify({ B, C, H, x0, noise, out, t }), encoding: 'utf8', env: referenceEnv(),
  });
  assert.equal(r.status, 0, r.stderr);
  const ref = JSON.parse(r.stdout) as { loss: number; mse: number; vb: number; grad: number[] };

  const diffusion = createDiffusion({ diffusionSteps: 1000, learnSigma: true });
  const x = tf.tensor4d(x0, [B, C, H, H]), eps = tf.tensor4d(noise, [B, C, H, H]), o = tf.tensor4d(out, [B, 2 * C, H, H]);
  const terms = (output: tf.Tensor) => diffusion.trainingLosses(() => output, x, t, { noise: eps });
  const l = terms(o);
  const [loss, mse, vb] = [l.loss, l.mse!, l.vb!].map((v) => tf.mean(v).dataSync()[0]);
  const grad = tf.grad((output: tf.Tensor) => tf.mean(terms(output).loss))(o).dataSync();
  for (const [what, kit, torch] of [['loss', loss, ref.loss], ['mse', mse, ref.mse], ['vb', vb, ref.vb]] as const) {
    assert.ok(Math.abs(kit - torch) <= 1e-5 * Math.abs(torch), `${what}: kit ${kit}, torch ${torch}`);
  }
  assert.ok(relErr(grad, ref.grad) < 1e-5, `gradient: ${relErr(grad, ref.grad)}`);
  // The mean half's gradient is the MSE's alone (the vb term sees it detached).
  const perMean = 2 / (B * C * H * H);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < C * H * H; i++) {
      const k = b * 2 * C * H * H + i;
      assert.ok(Math.abs(grad[k] - perMean * (out[k] - noise[b * C * H * H + i])) < 1e-6, `mean-part gradient [${b}, ${i}]`);
    }
  }
  tf.dispose([x, eps, o, l.loss, l.mse!, l.vb!]);
});

test('bench measurement: spreads, ratios of side-by-side repeats, step FLOPs', () => {
  assert.deepEqual(spread([3, 1, 2]), { median: 2, min: 1, max: 3, n: 3 });
  const kit = [{ wall_s: 2, cpu_s: 1 }, { wall_s: 4, cpu_s: 3 }, { wall_s: 3, cpu_s: 2 }];
  const ref = [{ wall_s: 4, cpu_s: 2 }, { wall_s: 4, cpu_s: 4 }, { wall_s: 6, cpu_s: 2 }];
  const r = ratio(kit, ref);
  assert.equal(r.cpu, 2 / 2);
  assert.equal(r.wall, 3 / 4);
  assert.deepEqual(r.paired_cpu, { median: 0.75, min: 0.5, max: 1, n: 3 });
  assert.deepEqual(r.paired_wall, { median: 0.5, min: 0.5, max: 1, n: 3 });
  assert.throws(() => ratio(kit, ref.slice(1)), /as many kit repeats/);
  // 2 flops per multiply-add, x3 for forward + backward, per sample of the batch.
  assert.equal(trainStepFlops(REFERENCE), gflops(benchDiTConfig(REFERENCE)) * 1e9 * 6 * REFERENCE.batch);
});
