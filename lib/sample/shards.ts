// Sampling for FID-50K the way DiT's sample_ddp.py does, on one machine and resumable:
// the images are written in shards (DIR/shard-00000.npz, ADM's layout: arr_0 uint8
// NHWC, arr_1 labels), each sampled from its own seed, so a killed run restarts at the
// first missing shard and ends with the same images as an uninterrupted one. When all
// are there they are joined into one ADM sample batch (what `dit evaluate` reads).
import * as fs from 'fs';
import * as path from 'path';
import { Autoencoder } from '../autoencoder';
import { decodeLatents } from '../autoencoder/decode';
import { HostArray, toInt32 } from '../io/array';
import { readNpz, writeNpz } from '../io/npy';
import { DiT } from '../model/dit';
import { readJsonFile, writeFileAtomic } from '../util/paths';
import { Rng, derivedSeed } from '../util/rng';
import { SampleOptions, balancedLabels, sampleDiT } from './sample';

export type LabelMode = 'random' | 'balanced';

export interface ShardOptions extends Omit<SampleOptions, 'labels' | 'progress'> {
  /** Images in all (sample_ddp.py: --num-fid-samples 50000). */
  num: number;
  shardSize: number;
  /** Uniformly random labels (sample_ddp.py) or each class equally often. */
  labelMode: LabelMode;
  /** Folder of the shards and their manifest. */
  dir: string;
  /** Called after each shard: shards done (resumed ones included), shards in all. */
  onShard?: (done: number, total: number, resumed: boolean) => void;
  /** Called once per sampling step inside a shard (progress lines). */
  progress?: SampleOptions['progress'];
}

export const SHARD_MANIFEST = 'shards.json';

/** The labels of images [start, start + count): balanced cycles the classes; random draws from the shard's seed. */
export function shardLabels(mode: LabelMode, start: number, count: number, numClasses: number, seed: number): Int32Array {
  if (mode === 'balanced') return balancedLabels(start + count, numClasses).subarray(start);
  const rng = new Rng(derivedSeed(seed * 31 + 17));
  return Int32Array.from({ length: count }, () => rng.int(numClasses));
}

/** The seed of shard i: its images do not depend on the shards before it. */
export function shardSeed(seed: number, i: number): number {
  return derivedSeed(seed * 104729 + i);
}

function shardFile(dir: string, i: number): string {
  return path.join(dir, `shard-${String(i).padStart(5, '0')}.npz`);
}

/** The settings that fix the images; a folder made with others is refused. */
function manifestOf(model: DiT, ae: Autoencoder, o: ShardOptions): Record<string, unknown> {
  return {
    format: 'dit-kit/sample-shards/v1', model: model.config, autoencoder: ae.id, num: o.num, shardSize: o.shardSize, labelMode: o.labelMode,
    seed: o.seed, sampler: o.sampler, steps: o.steps ?? null, respacing: o.respacing ?? null, eta: o.eta ?? null, cfgScale: o.cfgScale,
    guidanceChannels: o.guidanceChannels, diffusion: o.diffusion ?? null,
  };
}

function readShard(file: string, want: number, shape: readonly number[]): { images: HostArray; labels: HostArray } | null {
  try {
    const a = readNpz(file);
    const ok = a.arr_0 && a.arr_1 && a.arr_0.dtype === 'uint8' && a.arr_0.shape.join(',') === [want, ...shape].join(',') && a.arr_1.shape[0] === want;
    return ok ? { images: a.arr_0, labels: a.arr_1 } : null;
  } catch {
    return null;
  }
}

/** Samples every missing shard; returns the shard files in order and how many were already there. */
export function sampleShards(model: DiT, ae: Autoencoder, o: ShardOptions): { files: string[]; resumed: number } {
  if (!(Number.isSafeInteger(o.num) && o.num > 0)) throw new Error(`the number of samples must be a positive integer, got ${o.num}`);
  if (!(Number.isSafeInteger(o.shardSize) && o.shardSize > 0)) throw new Error(`the shard size must be a positive integer, got ${o.shardSize}`);
  fs.mkdirSync(o.dir, { recursive: true });
  const mfile = path.join(o.dir, SHARD_MANIFEST);
  const manifest = manifestOf(model, ae, o);
  if (fs.existsSync(mfile)) {
    const old = JSON.stringify(readJsonFile(mfile));
    if (old !== JSON.stringify(manifest)) {
      throw new Error(`${o.dir} holds shards sampled with other settings (${mfile}); use another folder or delete it`);
    }
  } else {
    writeFileAtomic(mfile, JSON.stringify(manifest, null, 1) + '\n');
  }
  const [ic, is] = ae.imageShape;
  const total = Math.ceil(o.num / o.shardSize);
  const files: string[] = [];
  let resumed = 0;
  for (let i = 0; i < total; i++) {
    const start = i * o.shardSize;
    const count = Math.min(o.shardSize, o.num - start);
    const file = shardFile(o.dir, i);
    files.push(file);
    if (readShard(file, count, [is, is, ic])) {
      resumed++;
      o.onShard?.(i + 1, total, true);
      continue;
    }
    const seed = shardSeed(o.seed, i);
    const labels = shardLabels(o.labelMode, start, count, model.config.numClasses, seed);
    const { num: _n, shardSize: _s, labelMode: _l, dir: _d, onShard: _o, ...sampling } = o;
    const r = sampleDiT(model, { ...sampling, labels, seed });
    const images = decodeLatents(ae, r.latents, count);
    writeNpz(file, {
      arr_0: { dtype: 'uint8', shape: [count, is, is, ic], data: images },
      arr_1: { dtype: 'int32', shape: [count], data: r.labels },
    });
    o.onShard?.(i + 1, total, false);
  }
  return { files, resumed };
}

/** Joins the shards into one ADM sample batch npz (arr_0 uint8 NHWC, arr_1 labels). */
export function joinShards(files: string[], out: string): number {
  const parts = files.map((f) => {
    const a = readNpz(f);
    if (!a.arr_0 || !a.arr_1) throw new Error(`${f}: not a sample shard (no arr_0/arr_1)`);
    return a;
  });
  const n = parts.reduce((k, p) => k + p.arr_0.shape[0], 0);
  const per = parts[0].arr_0.data.length / parts[0].arr_0.shape[0];
  if (n * per > 2 ** 31 - 1) throw new Error(`${n} images of ${per} bytes exceed the 2 GiB one npz member can hold here; the shards themselves are ADM batches`);
  const images = new Uint8Array(n * per);
  const labels = new Int32Array(n);
  let at = 0;
  for (const p of parts) {
    const k = p.arr_0.shape[0];
    images.set(p.arr_0.data as Uint8Array, at * per);
    labels.set(toInt32(p.arr_1), at);
    at += k;
  }
  writeNpz(out, {
    arr_0: { dtype: 'uint8', shape: [n, ...parts[0].arr_0.shape.slice(1)], data: images },
    arr_1: { dtype: 'int32', shape: [n], data: labels },
  });
  return n;
}
