// `dit vae`: train the kit's KL autoencoder, look at its reconstructions.
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { backendInfo, initBackend } from '../backend';
import { loadAutoencoder, openImageData, psnr, imagesToTensor, tensorToImages, readVAEManifest, klConfig, VAE_MANIFEST } from '../autoencoder';
import { DEFAULT_VAE_TRAIN, VAE_CKPT, trainAutoencoder } from '../autoencoder/train';
import { imageGrid } from '../data/grid';
import { parseArgs, UsageError } from '../util/args';
import { repoRoot, writeFileAtomic } from '../util/paths';
import type { Command } from './command';
import { HostArray, ownEntry, toFloat32 } from '../io/array';
import { readNpz, writeNpz } from '../io/npy';
import { Rng } from '../util/rng';

const USAGE = `usage: dit-kit vae train [--data DIR] [--out DIR] [--steps N] [--seed S] [--factor 2|4]
                         [--batch-size N] [--lr X] [--ch N] [--holdout N] [--image-size N] [--force]
       dit-kit vae recon --vae DIR|identity [--data DIR] --out GRID.png [--num N] [--cols C] [--start I] [--zoom Z]

train  Train the KL autoencoder (SD-style encoder/decoder, no LPIPS/GAN) on a dataset
       (default: the synthetic set in data/synthetic-32, generated if missing), then
       measure the latent scale (1 / std of the training latents) and the held-out PSNR.
       Resumes from DIR/${VAE_CKPT}; a folder that already holds this exact run
       (same config, data, seed and steps) is left as it is.
         --out DIR      default data/autoencoder/kl-f<factor>
         --factor 2|4   spatial downsampling: 32x32x3 -> 16x16x4 (default) or 8x8x4
         --steps N      default ${DEFAULT_VAE_TRAIN.steps}, batch ${DEFAULT_VAE_TRAIN.batchSize}, lr ${DEFAULT_VAE_TRAIN.lr} (warm-up, cosine decay)
         --holdout N    last N images never trained on, for the PSNR (default ${DEFAULT_VAE_TRAIN.holdout})
         --force        start over (deletes the checkpoint and the trained weights in DIR)
       dit-kit vae encode --vae PATH --in IMAGES.npz --out LATENTS.npz [--scale] [--sample --seed S] [--batch-size N]
       dit-kit vae decode --vae PATH --in LATENTS.npz --out IMAGES.npz [--scale] [--batch-size N]

recon  Originals above their reconstructions (posterior mode) in a PNG grid, with the
       PSNR. Default images: the held-out ones at the end of the data.
encode Images to latents, to check a port against PyTorch: IMAGES.npz holds uint8 NHWC
       (ADM's arr_0) or float32 NCHW in [-1, 1] (its first array, or 'images'); LATENTS.npz
       gets 'latents' (N, 4, H/8, W/8 for SD) as the encoder's posterior mode, unscaled;
       --scale multiplies by the latent scale (SD: 0.18215), --sample draws the posterior
       sample with --seed instead of the mode.
decode Latents ('latents', or the first array; scaled ones with --scale) to images:
       'images' float32 NCHW (not clamped) and ADM's arr_0 (uint8 NHWC, clamped).
--vae is any autoencoder the kit reads: a 'dit-kit vae train' folder, or the Stable
Diffusion autoencoder as a diffusers folder (config.json + diffusion_pytorch_model.*) or
an LDM .ckpt/.safetensors (vae-ft-mse-840000-ema-pruned.ckpt, a full SD checkpoint).`;

const FLAGS = {
  data: 'string', out: 'string', steps: 'int', seed: 'seed', factor: 'int', 'batch-size': 'count', lr: 'number', ch: 'int',
  holdout: 'int', 'image-size': 'int', force: 'boolean', vae: 'string', num: 'int', cols: 'int', start: 'int', zoom: 'int',
  in: 'string', scale: 'boolean', sample: 'boolean',
} as const;

function only(flags: Record<string, unknown>, allowed: string[], sub: string): void {
  for (const k of Object.keys(flags)) if (!allowed.includes(k)) throw new UsageError(`dit vae ${sub} takes no --${k}`);
}

function positive(flags: Record<string, unknown>, name: string): number | undefined {
  const v = flags[name] as number | undefined;
  if (v !== undefined && !(v > 0)) throw new UsageError(`--${name} must be positive, got ${v}`);
  return v;
}

async function train(f: Record<string, unknown>): Promise<number> {
  only(f, ['data', 'out', 'steps', 'seed', 'factor', 'batch-size', 'lr', 'ch', 'holdout', 'image-size', 'force'], 'train');
  const factor = (f.factor as number | undefined) ?? 2;
  if (factor !== 2 && factor !== 4) throw new UsageError(`--factor must be 2 or 4, got ${factor}`);
  const ch = positive(f, 'ch');
  const config = klConfig(factor, ch ? { ch } : {});
  const seed = (f.seed as number | undefined) ?? DEFAULT_VAE_TRAIN.seed;
  const holdout = (f.holdout as number | undefined) ?? DEFAULT_VAE_TRAIN.holdout;
  if (holdout < 0) throw new UsageError(`--holdout must be >= 0, got ${holdout}`);
  const options = {
    ...DEFAULT_VAE_TRAIN, config, seed, holdout,
    steps: positive(f, 'steps') ?? DEFAULT_VAE_TRAIN.steps,
    batchSize: positive(f, 'batch-size') ?? DEFAULT_VAE_TRAIN.batchSize,
    lr: positive(f, 'lr') ?? DEFAULT_VAE_TRAIN.lr,
  };
  options.warmupSteps = Math.min(options.warmupSteps, Math.floor(options.steps / 10));
  const out = (f.out as string | undefined) ?? path.join(repoRoot(), 'data', 'autoencoder', `kl-f${factor}`);
  await initBackend();
  const data = openImageData(f.data as string | undefined, { imageSize: f['image-size'] as number | undefined, log: (m) => process.stderr.write(m + '\n') });
  if (f.force) {
    for (const file of [VAE_CKPT, VAE_MANIFEST]) fs.rmSync(path.join(out, file), { force: true });
  }
  process.stderr.write(`[dit] training the autoencoder on ${data.dataset.size} images of ${data.path} (sha256 ${data.hash.slice(0, 12)}...) into ${out}\n`);
  const r = await trainAutoencoder(out, data.dataset, { sha256: data.hash, path: data.path }, options);
  const m = r.manifest!;
  if (r.status === 'cached') console.log(`${out} already holds this run (delete it or pass --force to train again)`);
  console.log(`autoencoder ${out}: ${m.config.chMult.length > 2 ? '8x8' : '16x16'}x${m.config.zChannels} latents, ` +
    `held-out PSNR ${m.psnr.heldOut.toFixed(2)} dB on ${m.psnr.images} images, scale ${m.scale.toPrecision(5)}, ` +
    `${m.training.steps} steps in ${(m.training.seconds / 60).toFixed(1)} min (${m.training.stepsPerSec.toFixed(2)} steps/s on ${m.backend}), weights sha256 ${m.weights.sha256.slice(0, 12)}...`);
  return 0;
}

/** Rows of `cols` originals, each followed by the row of their reconstructions. */
function interleaveRows(a: Uint8Array, b: Uint8Array, n: number, per: number, cols: number): Uint8Array {
  const out = new Uint8Array(2 * n * per);
  let at = 0;
  for (let r = 0; r < n; r += cols) {
    const k = Math.min(cols, n - r);
    out.set(a.subarray(r * per, (r + k) * per), at);
    at += cols * per;
    out.set(b.subarray(r * per, (r + k) * per), at);
    at += cols * per;
  }
  return out;
}

async function recon(f: Record<string, unknown>): Promise<number> {
  only(f, ['vae', 'data', 'out', 'num', 'cols', 'start', 'zoom', 'image-size'], 'recon');
  if (!f.vae) throw new UsageError('--vae DIR|identity is required');
  if (!f.out || !String(f.out).endsWith('.png')) throw new UsageError('--out GRID.png is required');
  const num = positive(f, 'num') ?? 16;
  const cols = Math.min(positive(f, 'cols') ?? 8, num);
  await initBackend();
  const data = openImageData(f.data as string | undefined, { imageSize: f['image-size'] as number | undefined });
  const ds = data.dataset;
  const ae = loadAutoencoder(f.vae as string, { imageSize: ds.imageSize, channels: ds.channels });
  try {
    let start = f.start as number | undefined;
    if (start === undefined) {
      // The held-out images when this data is what the autoencoder was trained on.
      const heldOut = ae.kind === 'kl' && fs.statSync(f.vae as string).isDirectory() ? readVAEManifest(f.vae as string).dataset : null;
      start = heldOut && heldOut.sha256 === data.hash ? ds.size - heldOut.heldOut : 0;
    }
    if (start < 0 || start + num > ds.size) throw new UsageError(`images ${start}..${start + num - 1} are outside the ${ds.size} images`);
    const b = ds.readBatch(start, num);
    const rec = tf.tidy(() => ae.decode(ae.encode(imagesToTensor(b.images, num, ds.imageSize, ds.channels))));
    const out = tensorToImages(rec);
    rec.dispose();
    const per = ds.imageSize * ds.imageSize * ds.channels;
    let sum = 0;
    for (let i = 0; i < num; i++) sum += psnr(b.images, out, i * per, per);
    const rows = Math.ceil(num / cols);
    const grid = interleaveRows(b.images, out, num, per, cols);
    writeFileAtomic(f.out as string, imageGrid(grid, 2 * rows * cols, ds.imageSize, cols, { channels: ds.channels, zoom: positive(f, 'zoom') ?? 1 }));
    console.log(`${ae.id} on images ${start}..${start + num - 1} of ${data.path}: PSNR ${(sum / num).toFixed(2)} dB (${backendInfo()?.name}); grid (originals above reconstructions) in ${f.out}`);
    return 0;
  } finally {
    ae.dispose();
  }
}

/** The array of an npz that a subcommand reads: one of `names`, else its only array. */
function pickArray(arrays: Record<string, HostArray>, names: string[], file: string): [string, HostArray] {
  for (const n of names) if (ownEntry(arrays, n)) return [n, arrays[n]];
  const keys = Object.keys(arrays);
  if (keys.length === 1) return [keys[0], arrays[keys[0]]];
  throw new UsageError(`${file}: holds ${keys.join(', ') || 'no arrays'}; expected ${names.join(' or ')}`);
}

/** `dit vae encode|decode`: npz in, npz out, in batches. */
async function convert(sub: 'encode' | 'decode', f: Record<string, unknown>): Promise<number> {
  only(f, ['vae', 'in', 'out', 'scale', 'sample', 'seed', 'batch-size'], sub);
  for (const k of ['vae', 'in', 'out']) if (!f[k]) throw new UsageError(`--${k} is required`);
  if (!String(f.out).endsWith('.npz')) throw new UsageError('--out must end in .npz');
  if (sub === 'decode' && (f.sample || f.seed !== undefined)) throw new UsageError('--sample and --seed go with encode');
  if (f.seed !== undefined && !f.sample) throw new UsageError('--seed goes with --sample');
  const bs = positive(f, 'batch-size') ?? 8;
  const arrays = readNpz(f.in as string);
  const [name, a] = pickArray(arrays, sub === 'encode' ? ['arr_0', 'images'] : ['latents', 'arr_0'], f.in as string);
  const nhwc = a.dtype === 'uint8';
  if (a.shape.length !== 4) throw new UsageError(`${f.in}: '${name}' has shape [${a.shape}], expected 4 dimensions (N, C, H, W${sub === 'encode' ? ' or uint8 N, H, W, C' : ''})`);
  if (sub === 'decode' && nhwc) throw new UsageError(`${f.in}: '${name}' is uint8; decode takes float latents`);
  const [n] = a.shape;
  const [h, w] = nhwc ? [a.shape[1], a.shape[2]] : [a.shape[2], a.shape[3]];
  if (h !== w) throw new UsageError(`${f.in}: '${name}' is ${h}x${w}; the autoencoder takes square inputs`);
  await initBackend();
  const ae = loadAutoencoder(f.vae as string, sub === 'encode' ? { imageSize: h } : { latentSize: h });
  try {
    const scale = f.scale ? 1 : 1 / ae.scale;
    const rng = f.sample ? new Rng((f.seed as number | undefined) ?? 0) : undefined;
    const inShape = sub === 'encode' ? ae.imageShape : ae.latentShape;
    const outShape = sub === 'encode' ? ae.latentShape : ae.imageShape;
    const per = outShape[0] * outShape[1] * outShape[2];
    const out = new Float32Array(n * per);
    const src = toFloat32(a);
    const inPer = src.length / n;
    for (let s = 0; s < n; s += bs) {
      const m = Math.min(bs, n - s);
      const chunk = src.subarray(s * inPer, (s + m) * inPer);
      const y = tf.tidy(() => {
        if (sub === 'encode') {
          const x = nhwc ? imagesToTensor(a.data.subarray(s * inPer, (s + m) * inPer) as Uint8Array, m, h, inShape[0]) : tf.tensor4d(chunk, [m, ...inShape]);
          return tf.mul(ae.encode(x, rng ? { rng } : {}), scale);
        }
        return ae.decode(tf.div(tf.tensor4d(chunk, [m, ...inShape]), scale) as tf.Tensor4D);
      });
      out.set(y.dataSync() as Float32Array, s * per);
      y.dispose();
    }
    const result: Record<string, HostArray> = {};
    if (sub === 'encode') {
      result.latents = { dtype: 'float32', shape: [n, ...outShape], data: out };
    } else {
      result.images = { dtype: 'float32', shape: [n, ...outShape], data: out };
      const t = tf.tensor4d(out, [n, ...outShape]);
      result.arr_0 = { dtype: 'uint8', shape: [n, outShape[1], outShape[2], outShape[0]], data: tensorToImages(t) };
      t.dispose();
    }
    writeNpz(f.out as string, result);
    console.log(`${sub}d ${n} ${sub === 'encode' ? 'images' : 'latents'} with ${ae.id} (scale ${ae.scale}${f.scale ? ', applied' : ', not applied'}) into ${f.out}`);
    return 0;
  } finally {
    ae.dispose();
  }
}

export const vaeCommand: Command = {
  name: 'vae',
  summary: 'train the KL autoencoder (latent space of DiT), reconstruction grids and PSNR',
  usage: USAGE,
  async run(argv) {
    const [sub, ...rest] = argv;
    const { flags, positional } = parseArgs(rest, FLAGS);
    if (positional.length) throw new UsageError(`unexpected argument '${positional[0]}'`);
    if (sub === 'train') return train(flags);
    if (sub === 'recon') return recon(flags);
    if (sub === 'encode' || sub === 'decode') return convert(sub, flags);
    throw new UsageError(sub ? `unknown subcommand '${sub}'` : 'a subcommand is required (train, recon, encode or decode)');
  },
};
