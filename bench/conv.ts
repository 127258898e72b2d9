// Conv cost of the default autoencoder's shapes on the running backend, both conv
// implementations of lib/ops/conv.ts (the backend's tf.conv2d kernels and im2col +
// matMul), forward and backward, in CPU seconds of this process (wall time is
// meaningless on shared cores). Usage:
//   DIT_BACKEND=native node dist/bench/conv.js [batch] [reps]
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend';
import { conv2d, setConvImpl } from '../lib/ops/conv';

/** [H, in, out, stride] of every 3x3 conv of klConfig(2) on 32x32 images. */
const DEFAULT_AE_CONVS: Array<[number, number, number, number]> = [
  [32, 3, 16, 1], [32, 16, 16, 1], [32, 16, 16, 2], [16, 16, 32, 1], [16, 32, 32, 1], [16, 32, 8, 1],
  [16, 4, 32, 1], [32, 32, 32, 1], [32, 32, 16, 1], [32, 16, 3, 1],
];

function cpuSeconds(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
}

async function main(): Promise<void> {
  const batch = Number(process.argv[2] ?? 16);
  const reps = Number(process.argv[3] ?? 3);
  const info = await initBackend({ quiet: true });
  console.log(`| backend | conv | x (NHWC) | conv | GMAC | forward ms | backward ms | GMAC/s (fwd+bwd) |`);
  console.log(`|---|---|---|---|---|---|---|---|`);
  for (const impl of ['tf', 'im2col'] as const) {
    setConvImpl(impl);
    for (const [h, ci, co, s] of DEFAULT_AE_CONVS) {
      const x = tf.randomNormal([batch, h, h, ci]) as tf.Tensor4D;
      const w = tf.randomNormal([3, 3, ci, co]) as tf.Tensor4D;
      const pad: [number, number, number, number] = s === 1 ? [1, 1, 1, 1] : [0, 1, 0, 1];
      const macs = batch * (h / s) ** 2 * ci * co * 9;
      const time = (f: () => void) => {
        f();
        const t0 = cpuSeconds();
        for (let i = 0; i < reps; i++) f();
        return (cpuSeconds() - t0) / reps;
      };
      const fwd = time(() => tf.tidy(() => void conv2d(x, w, { stride: s, pad }).dataSync()));
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(conv2d(a as tf.Tensor4D, b as tf.Tensor4D, { stride: s, pad })));
      const all = time(() => tf.tidy(() => {
        const [dx, dw] = g([x, w]);
        dx.dataSync();
        dw.dataSync();
      }));
      console.log(`| ${info.name} | ${impl} | [${batch}, ${h}, ${h}, ${ci}] | 3x3/${s} -> ${co} | ${(macs / 1e9).toFixed(3)} | ${(fwd * 1e3).toFixed(1)} | ${((all - fwd) * 1e3).toFixed(1)} | ${((3 * macs) / all / 1e9).toFixed(2)} |`);
      tf.dispose([x, w]);
    }
  }
  setConvImpl('auto');
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
