// `dit data`: make the synthetic dataset, look at any dataset, pack real data into a shard.
import * as path from 'path';
import { firstPerClass } from '../data/dataset';
import { imageGrid } from '../data/grid';
import { ImageFolderDataset, detectDatasetKind, openDataset } from '../data/loaders';
import { PackedSource, ShardWriter, defaultSyntheticDir, ensureSyntheticDataset } from '../data/store';
import { parseArgs, UsageError } from '../util/args';
import { writeFileAtomic } from '../util/paths';
import type { Command } from './command';

const USAGE = `usage: dit-kit data synth [--out DIR] [--num N] [--seed S] [--size 32|64] [--force]
       dit-kit data show SRC --out GRID.png [--num N] [--cols C] [--per-class K] [--start I] [--size N] [--zoom Z] [--split train|test]
       dit-kit data pack SRC --out DIR --size N [--on-error skip|throw] [--split train|test]

synth  Render the procedural dataset (10 object classes) into a shard folder, or
       leave it as it is when the stored copy matches (version, seed, count, size,
       sha256).
         --out DIR      default data/synthetic-<size>
         --num N        images (default 50000)
         --seed S       default 0
         --size 32|64   image side (default 32)
         --force        regenerate even when the stored copy is intact
show   Write a PNG grid of a dataset: a synthetic/shard folder, an image folder
       (one subfolder per class), a CIFAR-10 folder or .bin, or an ADM .npz.
         --num N        images from --start (default 40), in --cols columns (default 10)
         --per-class K  instead: one row per class, its first K images
         --size N       crop side for image folders (default 64); others keep their size
         --zoom Z       magnify each image Z times (nearest neighbour) for viewing
show and pack report unreadable images by path and skip them; pack
--on-error throw refuses them instead.
pack   Decode a real dataset once (center_crop_arr to --size) into a shard folder
       that training reads quickly.`;

const FLAGS = {
  out: 'string',
  num: 'int',
  seed: 'seed',
  size: 'int',
  force: 'boolean',
  cols: 'int',
  'per-class': 'int',
  start: 'int',
  split: 'string',
  'on-error': 'string',
  zoom: 'int',
} as const;

/** Progress on stderr at most once a second, with the rate. */
function progress(what: string): { tick: (done: number, total: number) => void; end: (done: number) => string } {
  const t0 = Date.now();
  let last = t0;
  const rate = (n: number) => n / Math.max((Date.now() - t0) / 1000, 1e-3);
  return {
    tick(done, total) {
      const now = Date.now();
      if (now - last < 1000 && done < total) return;
      last = now;
      process.stderr.write(`${what}: ${done}/${total} images (${rate(done).toFixed(0)} images/s)\n`);
    },
    end(done) {
      return `${done} images in ${((Date.now() - t0) / 1000).toFixed(1)}s (${rate(done).toFixed(0)} images/s)`;
    },
  };
}

function positive(flags: Record<string, unknown>, name: string, dflt?: number): number | undefined {
  const v = flags[name] as number | undefined;
  if (v === undefined) return dflt;
  if (v <= 0) throw new UsageError(`--${name} must be positive, got ${v}`);
  return v;
}

function split(flags: Record<string, unknown>): 'train' | 'test' | undefined {
  const s = flags.split as string | undefined;
  if (s !== undefined && s !== 'train' && s !== 'test') throw new UsageError(`--split is train or test, got '${s}'`);
  return s;
}

function onlyFlags(flags: Record<string, unknown>, allowed: string[], sub: string): void {
  for (const k of Object.keys(flags)) if (!allowed.includes(k)) throw new UsageError(`dit data ${sub} takes no --${k}`);
}

async function synth(flags: Record<string, unknown>, rest: string[]): Promise<number> {
  onlyFlags(flags, ['out', 'num', 'seed', 'size', 'force'], 'synth');
  if (rest.length) throw new UsageError(`unexpected argument '${rest[0]}'`);
  const size = (flags.size as number | undefined) ?? 32;
  if (size !== 32 && size !== 64) throw new UsageError(`--size is 32 or 64, got ${size}`);
  const seed = (flags.seed as number | undefined) ?? 0;
  const dir = (flags.out as string | undefined) ?? defaultSyntheticDir(size);
  const p = progress('synth');
  const r = ensureSyntheticDataset({ dir, num: positive(flags, 'num', 50000), seed, size, force: flags.force as boolean | undefined, onProgress: p.tick });
  const m = r.manifest;
  if (r.regenerated) console.log(`generated ${p.end(m.count)} -> ${dir} (${r.reason})`);
  else console.log(`${dir} is up to date`);
  console.log(`${m.count} images ${m.imageSize}x${m.imageSize}, ${m.numClasses} classes, seed ${seed}, sha256 ${m.shard.sha256.slice(0, 16)}...`);
  return 0;
}

async function show(flags: Record<string, unknown>, rest: string[]): Promise<number> {
  onlyFlags(flags, ['out', 'num', 'cols', 'per-class', 'start', 'size', 'split', 'zoom'], 'show');
  if (rest.length !== 1) throw new UsageError('dit data show takes one dataset path');
  const out = flags.out as string | undefined;
  if (!out) throw new UsageError('dit data show needs --out GRID.png');
  // Image folders need a crop size; stored formats keep theirs unless --size is given.
  const size = positive(flags, 'size') ?? (detectDatasetKind(rest[0]) === 'image-folder' ? 64 : undefined);
  const opened = openDataset(rest[0], { imageSize: size, split: split(flags) });
  const ds = opened.dataset;
  const s = ds.imageSize;
  const perClass = positive(flags, 'per-class');
  let images: Uint8Array, n: number, cols: number;
  if (perClass !== undefined) {
    const picks = firstPerClass(ds.allLabels(), ds.numClasses, perClass);
    const stride = s * s * ds.channels;
    images = new Uint8Array(ds.numClasses * perClass * stride).fill(255);
    picks.forEach((idx, c) => {
      if (idx.length) images.set(ds.readIndices(idx).images, c * perClass * stride);
      console.log(`row ${c}: ${ds.classNames[c]} (${idx.length} images)`);
    });
    n = ds.numClasses * perClass;
    cols = perClass;
  } else {
    const start = (flags.start as number | undefined) ?? 0;
    if (start < 0 || start >= ds.size) throw new UsageError(`--start ${start} is outside the ${ds.size} images`);
    n = Math.min(positive(flags, 'num', 40) as number, ds.size - start);
    const b = ds.readBatch(start, n);
    images = b.images;
    cols = positive(flags, 'cols', 10) as number;
    console.log(`labels: ${Array.from(b.labels, (l) => ds.classNames[l]).join(' ')}`);
  }
  writeFileAtomic(out, imageGrid(images, n, s, cols, { channels: ds.channels, zoom: positive(flags, 'zoom', 1) }));
  const skipped = opened.skipped();
  console.log(`${opened.kind}: ${ds.size} images ${s}x${s}, ${ds.numClasses} classes; wrote ${n} to ${out}` + (skipped.length ? `; ${skipped.length} unreadable, skipped` : ''));
  return 0;
}

async function pack(flags: Record<string, unknown>, rest: string[]): Promise<number> {
  onlyFlags(flags, ['out', 'size', 'split', 'on-error'], 'pack');
  if (rest.length !== 1) throw new UsageError('dit data pack takes one dataset path');
  const out = flags.out as string | undefined;
  if (!out) throw new UsageError('dit data pack needs --out DIR');
  const size = positive(flags, 'size');
  if (size === undefined) throw new UsageError('dit data pack needs --size N');
  const onError = (flags['on-error'] as string | undefined) ?? 'skip';
  if (onError !== 'skip' && onError !== 'throw') throw new UsageError(`--on-error is skip or throw, got '${onError}'`);
  const opened = openDataset(rest[0], { imageSize: size, onError, split: split(flags) });
  const ds = opened.dataset;
  const p = progress('pack');
  const w = new ShardWriter(out, { imageSize: size, channels: ds.channels, classNames: ds.classNames });
  try {
    if (ds instanceof ImageFolderDataset) {
      // Decoded one by one so an unreadable file is left out, not replaced.
      for (let i = 0; i < ds.size; i++) {
        const img = ds.tryRead(i);
        if (img) w.append(img, [ds.labels[i]]);
        p.tick(i + 1, ds.size);
      }
    } else {
      for (let i = 0; i < ds.size; i += 1024) {
        const b = ds.readBatch(i, Math.min(1024, ds.size - i));
        w.append(b.images, b.labels);
        p.tick(i + b.labels.length, ds.size);
      }
    }
    const skipped = opened.skipped().length;
    const src: PackedSource = { kind: 'packed', from: path.resolve(rest[0]), format: opened.kind, skipped };
    const m = w.finish(src);
    console.log(`packed ${p.end(m.count)} -> ${out}` + (skipped ? `; ${skipped} unreadable, skipped (listed above)` : ''));
    return 0;
  } catch (err) {
    w.abort();
    throw err;
  }
}

export const dataCommand: Command = {
  name: 'data',
  summary: 'synthetic dataset, dataset previews, packing real data (synth | show | pack)',
  usage: USAGE,
  async run(argv) {
    const [sub, ...args] = argv;
    const { flags, positional } = parseArgs(args, FLAGS);
    switch (sub) {
      case 'synth':
        return synth(flags, positional);
      case 'show':
        return show(flags, positional);
      case 'pack':
        return pack(flags, positional);
      default:
        throw new UsageError(sub ? `unknown subcommand '${sub}'` : 'missing subcommand (synth, show or pack)');
    }
  },
};
