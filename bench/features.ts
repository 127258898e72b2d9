// Feature-extraction throughput of the default feature network (images/s, 32x32 synthetic
// images, pool + logits + spatial), for each conv implementation (lib/ops/conv.ts:
// the backend's conv kernels and the kit's im2col + matMul), plus one training step.
// Weights are the cached trained network when there is one, random otherwise (the speed
// does not depend on them). Wall and process CPU seconds are both reported: the machine
// may be shared. Run: node dist/bench/features.js [images] [batch]
import { backendInfo, initBackend } from '../lib/backend';
import { generateSynthetic, SYNTHETIC_CLASSES } from '../lib/data/synthetic';
import { MemoryDataset } from '../lib/data/dataset';
import { ConvImpl, convImplInUse, setConvImpl } from '../lib/ops/conv';
import { DEFAULT_CNN_CONFIG, DefaultCnn, initDefaultCnnWeights } from '../lib/features/default_cnn';
import { defaultCnnDir, defaultCnnProblem, loadDefaultFeatureNet } from '../lib/features/default_store';
import { trainDefaultCnn } from '../lib/features/default_train';
import { extractFeatures } from '../lib/eval/extract';
import { imageSource } from '../lib/eval/inputs';

export interface FeaturesBenchOptions {
  /** Images to push through the network (default 2048). */
  images?: number;
  batchSize?: number;
  /** Conv implementations to time (default: the backend's and im2col). */
  impls?: Array<Exclude<ConvImpl, 'auto'>>;
  /** Also time training steps (batch 64), default true. */
  train?: boolean;
  log?: (line: string) => void;
}

export interface FeaturesBenchRow {
  conv: string;
  images: number;
  batchSize: number;
  wall_s: number;
  cpu_s: number;
  images_per_s: number;
  images_per_cpu_s: number;
  /** Seconds per training step of batch 64 (wall and CPU), when timed. */
  train_step_wall_s?: number;
  train_step_cpu_s?: number;
}

function timed<T>(f: () => T): { value: T; wall: number; cpu: number } {
  const c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
  const value = f();
  const c = process.cpuUsage(c0);
  return { value, wall: Number(process.hrtime.bigint() - t0) / 1e9, cpu: (c.user + c.system) / 1e6 };
}

export async function benchFeatures(opts: FeaturesBenchOptions = {}): Promise<{ backend: string; net: string; rows: FeaturesBenchRow[] }> {
  await initBackend({ quiet: true });
  const log = opts.log ?? ((l: string) => console.log(l));
  const n = opts.images ?? 2048, bs = opts.batchSize ?? 256;
  const cached = defaultCnnProblem(defaultCnnDir()) === null;
  const net: DefaultCnn = cached ? loadDefaultFeatureNet().net : new DefaultCnn(initDefaultCnnWeights(DEFAULT_CNN_CONFIG, 0, 'he'), DEFAULT_CNN_CONFIG, 'random');
  const batch = generateSynthetic({ seed: 7, count: n });
  const src = imageSource(batch.images, n, 32, 32);
  const impls = opts.impls ?? ['tf', 'im2col'];
  const rows: FeaturesBenchRow[] = [];
  try {
    for (const impl of impls) {
      setConvImpl(impl);
      extractFeatures(net, { ...src, n: Math.min(n, bs) }, { batchSize: bs }); // warm-up
      const t = timed(() => extractFeatures(net, src, { batchSize: bs }));
      const row: FeaturesBenchRow = {
        conv: impl === 'tf' ? `tf (${backendInfo()?.name} kernels)` : 'im2col', images: n, batchSize: bs,
        wall_s: t.wall, cpu_s: t.cpu, images_per_s: n / t.wall, images_per_cpu_s: n / t.cpu,
      };
      if (opts.train ?? true) {
        const ds = new MemoryDataset(batch.images.subarray(0, 512 * 3072), batch.labels.subarray(0, 512), 32, 3, [...SYNTHETIC_CLASSES]);
        trainDefaultCnn(ds, { steps: 1, batchSize: 64 });
        const steps = 5;
        const s = timed(() => trainDefaultCnn(ds, { steps, batchSize: 64 }));
        row.train_step_wall_s = s.wall / steps;
        row.train_step_cpu_s = s.cpu / steps;
      }
      rows.push(row);
      log(`default CNN features, conv ${row.conv}: ${row.images_per_s.toFixed(0)} images/s wall ` +
        `(${row.images_per_cpu_s.toFixed(0)} per CPU second), batch ${bs}` +
        (row.train_step_wall_s !== undefined ? `; training step (batch 64) ${(1000 * row.train_step_wall_s).toFixed(0)} ms wall, ${(1000 * row.train_step_cpu_s!).toFixed(0)} ms CPU` : ''));
    }
  } finally {
    setConvImpl('auto');
    net.dispose();
  }
  return { backend: backendInfo()?.name ?? 'unknown', net: net.id, rows };
}

if (require.main === module) {
  const [images, batch] = process.argv.slice(2).map(Number);
  benchFeatures({ images: images || undefined, batchSize: batch || undefined }).then(
    (r) => console.log(JSON.stringify({ ...r, defaultConv: convImplInUse() })),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
