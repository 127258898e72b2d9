// The published DiT-XL/2 at 256x256 on this CPU: time per sampling step and per image, and
// the SD autoencoder's decode, measured with random full-size weights (the speed of a
// dense network does not depend on its values). What `dit sample` does per image:
// 250 DDPM steps, each one guided forward pass of the image and its null-class copy
// (batch 2 per image), then one decode of its 32x32x4 latent.
//
//   node dist/bench/pretrained.js [--backend native] [--images 1,4] [--steps 2] [--reps 3] [--json]
import * as os from 'os';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend';
import { sdVaeConfig } from '../lib/autoencoder/sd';
import { createKL, disposeKL, klDecode } from '../lib/autoencoder/kl';
import { ditConfig } from '../lib/model/config';
import { createDiT, disposeDiT, modelParamCount } from '../lib/model/dit';
import { gflops as ditGflops } from '../lib/model/gflops';
import { sampleDiT } from '../lib/sample/sample';
import { sides, timeCalls } from './measure';

interface Options { backend: string; images: number[]; steps: number; reps: number; json: boolean }

function parse(argv: string[]): Options {
  const o: Options = { backend: 'native', images: [1, 4], steps: 2, reps: 3, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--backend') o.backend = argv[++i];
    else if (a === '--images') o.images = (argv[++i] ?? '').split(',').map(Number);
    else if (a === '--steps') o.steps = Number(argv[++i]);
    else if (a === '--reps') o.reps = Number(argv[++i]);
    else if (a === '--json') o.json = true;
    else throw new Error(`bench/pretrained: unknown option '${a}' (--backend B, --images 1,4, --steps N, --reps N, --json)`);
  }
  if (!o.images.every((n) => Number.isInteger(n) && n > 0)) throw new Error('bench/pretrained: --images wants positive integers, e.g. 1,4');
  if (!(Number.isInteger(o.steps) && o.steps > 0) || !(Number.isInteger(o.reps) && o.reps > 0)) throw new Error('bench/pretrained: --steps and --reps want positive integers');
  return o;
}

/** Wall and process-CPU seconds of f (bench/measure.ts), each the median of reps runs after one warm-up run. */
function timed(f: () => void, reps: number): { wall: number; cpu: number; wallRange: [number, number] } {
  f();
  const s = sides(Array.from({ length: reps }, () => timeCalls(f)));
  return { wall: s.wall_s.median, cpu: s.cpu_s.median, wallRange: [s.wall_s.min, s.wall_s.max] };
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  await initBackend({ name: o.backend, quiet: true });
  const say = (obj: Record<string, unknown>, text: string) => console.log(o.json ? JSON.stringify(obj) : text);
  const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
  say({ what: 'machine', backend: tf.getBackend(), cpus: os.cpus().length, loadavg: os.loadavg() },
    `DiT-XL/2 256x256 on ${tf.getBackend()} (${os.cpus().length} CPUs, load average ${load()}); random full-size weights`);

  const c = ditConfig('DiT-XL/2');
  const model = createDiT(c, 0);
  const gflops = ditGflops(c);
  say({ what: 'model', params: modelParamCount(model), gflops_per_forward: gflops },
    `  ${modelParamCount(model).toLocaleString('en')} parameters, ${gflops.toFixed(1)} Gflops per forward pass of one image`);
  const SAMPLING_STEPS = 250;
  for (const n of o.images) {
    const labels = Int32Array.from({ length: n }, (_, i) => (207 + i) % c.numClasses);
    // One call samples o.steps DDPM steps (respaced); each step is one forward pass of 2n.
    const t = timed(() => { sampleDiT(model, { labels, sampler: 'ddpm', steps: o.steps, cfgScale: 4, guidanceChannels: 'first3', seed: 0 }); }, o.reps);
    const perStep = { wall: t.wall / o.steps, cpu: t.cpu / o.steps };
    const perImage = { wall: (perStep.wall * SAMPLING_STEPS) / n, cpu: (perStep.cpu * SAMPLING_STEPS) / n };
    // The paper's Gflops (and the kit's) count multiply-adds: 2 FLOPs each.
    const gfs = (2 * 2 * n * gflops) / perStep.wall;
    say({ what: 'dit-xl2-guided-step', images: n, forward_batch: 2 * n, steps_timed: o.steps, reps: o.reps, step_wall_s: perStep.wall, step_cpu_s: perStep.cpu,
      wall_range_s: t.wallRange.map((x) => x / o.steps), image_250_steps_wall_s: perImage.wall, image_250_steps_cpu_s: perImage.cpu, flop_per_s_wall: gfs * 1e9 },
    `  ${n} image(s) at once (forward batch ${2 * n}): ${perStep.wall.toFixed(2)} s wall, ${perStep.cpu.toFixed(2)} s CPU per guided step ` +
      `(${gfs.toFixed(1)} GFLOP/s by wall time, 2 FLOPs per multiply-add); 250 steps: ${(perImage.wall / 60).toFixed(1)} min wall, ${(perImage.cpu / 60).toFixed(1)} min CPU per image`);
  }
  disposeDiT(model);

  const vae = createKL(sdVaeConfig(256), 0);
  // NHWC, as klDecode takes it.
  const z = tf.randomNormal([1, 32, 32, 4]) as tf.Tensor4D;
  const d = timed(() => tf.tidy(() => { klDecode(vae, z).dataSync(); }), Math.min(o.reps, 2));
  say({ what: 'sd-vae-decode', images: 1, wall_s: d.wall, cpu_s: d.cpu }, `  SD autoencoder decode of one 32x32x4 latent: ${d.wall.toFixed(1)} s wall, ${d.cpu.toFixed(1)} s CPU`);
  z.dispose();
  disposeKL(vae);
  say({ what: 'end', loadavg: os.loadavg() }, `  load average at the end ${load()}`);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
