// Notebook 08: the published DiT-XL/2 and the Stable Diffusion autoencoder from the user's
// files, sampled like DiT's sample.py (a class grid at several guidance scales, every scale
// from the same noise), with its Gflops and the measured time per image on the active
// backend. The kit cannot download the released weights: where the files are absent (and
// always in smoke mode) the notebook says which files to get and where to put them, and
// runs the same cells on the random-weight stand-ins of test/fixtures/pretrained/.
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend';
import { Autoencoder } from '../autoencoder';
import { decodeLatents, loadDecoderFor } from '../autoencoder/decode';
import { imageGrid } from '../data/grid';
import { classLabel } from '../data/imagenet_classes';
import { DiffusionSettings, describeDiffusion, GuidanceChannels, SamplerName } from '../diffusion';
import { WeightsKey } from '../model/checkpoint';
import { diffusersDiTFolder } from '../model/diffusers';
import { DiT, disposeDiT, ditForward, forwardWithCfg } from '../model/dit';
import { gflops, modelStats, samplingGflops } from '../model/gflops';
import { loadModelFile } from '../sample/load';
import { sampleDiT } from '../sample/sample';
import { repoRoot, writeFileAtomic } from '../util/paths';
import { NotebookMode, rel } from './results';

/** The published files the notebook samples, where to get them, and what they are. */
export const PUBLISHED_FILES = Object.freeze({
  checkpoint: [
    'DiT-XL-2-256x256.pt (about 2.7 GB: the EMA weights that sample.py downloads) from https://dl.fbaipublicfiles.com/DiT/models/DiT-XL-2-256x256.pt',
    '(DiT-XL-2-512x512.pt from the same folder for 512x512 images), or the diffusers folder facebook/DiT-XL-2-256 from',
    'https://huggingface.co/facebook/DiT-XL-2-256 (model_index.json, transformer/, vae/; its vae/ is the SD autoencoder, so DIT_VAE is then not needed)',
  ],
  vae: [
    'the folder stabilityai/sd-vae-ft-ema from https://huggingface.co/stabilityai/sd-vae-ft-ema (config.json + diffusion_pytorch_model.safetensors, about 335 MB),',
    "as sample.py's default --vae ema; sd-vae-ft-mse or the LDM file vae-ft-mse-840000-ema-pruned.safetensors work as well",
  ],
});

/** The random-weight stand-ins (a diffusers DiTPipeline folder with vae/: 5 classes, 8x8x4 latents, 16x16 images). */
export function pretrainedFixture(): string {
  return path.join(repoRoot(), 'test', 'fixtures', 'pretrained', 'dit_diffusers');
}

export interface PretrainedFiles {
  /** The DiT weights: a file the kit reads (loadModelFile) or a diffusers DiT folder. */
  checkpoint: string;
  /** The autoencoder: an SD VAE folder or file (a diffusers DiT folder holds one in vae/). */
  vae: string;
  /** true: the user's files; false: the random-weight fixtures (their samples are noise). */
  published: boolean;
  /** What was chosen and why; for absent files, which ones to get and where to put them. */
  notes: string[];
}

/**
 * The files the notebook samples: the user's (`want`, relative paths from the notebook's
 * folder), or the random-weight fixtures where those are absent and in smoke mode (CI:
 * seconds, never the real model even when it is on disk).
 */
export function pretrainedFiles(mode: NotebookMode, want: { checkpoint: string; vae: string }): PretrainedFiles {
  const fixture = pretrainedFixture();
  const fallback = (notes: string[]): PretrainedFiles => {
    if (!fs.existsSync(fixture)) throw new Error(`${notes.join('\n')}\nand the random-weight fixtures are missing too (${fixture}): run from a checkout of the kit`);
    return {
      checkpoint: fixture, vae: fixture, published: false,
      notes: [...notes, `Running the same cells on the random-weight fixtures instead (${rel(fixture)}: a tiny DiT with 5 classes and its VAE; the samples are noise).`],
    };
  };
  if (mode === 'smoke') {
    return fallback([`smoke mode: the random-weight fixtures, so that CI runs every cell in seconds (DIT_NOTEBOOK_MODE=committed samples your files: ${want.checkpoint}).`]);
  }
  const checkpoint = path.resolve(want.checkpoint);
  const vae = path.resolve(want.vae);
  const notes: string[] = [];
  const haveCheckpoint = fs.existsSync(checkpoint);
  if (!haveCheckpoint) {
    notes.push(`The DiT weights are not here: ${checkpoint} does not exist. The kit cannot download them; get`,
      ...PUBLISHED_FILES.checkpoint.map((l) => `  ${l}`),
      `and put it at ${want.checkpoint} (relative to notebooks/), or set DIT_CHECKPOINT to where it is.`);
  }
  // A diffusers DiT folder carries its own autoencoder in vae/.
  const folderVae = haveCheckpoint && diffusersDiTFolder(checkpoint) !== null && fs.existsSync(path.join(checkpoint, 'vae', 'config.json'));
  let useVae = vae;
  if (!fs.existsSync(vae)) {
    if (folderVae) {
      useVae = checkpoint;
      notes.push(`${vae} does not exist: using the autoencoder in ${path.join(checkpoint, 'vae')} (the diffusers folder's own).`);
    } else {
      notes.push(`The SD autoencoder is not here: ${vae} does not exist. Get`,
        ...PUBLISHED_FILES.vae.map((l) => `  ${l}`),
        `and put it at ${want.vae} (relative to notebooks/), or set DIT_VAE to where it is.`);
      return fallback(notes);
    }
  }
  if (!haveCheckpoint) return fallback(notes);
  return { checkpoint, vae: useVae, published: true, notes: [...notes, `Sampling your files: ${checkpoint} with the autoencoder ${useVae}.`] };
}

export interface LoadedPretrained {
  model: DiT;
  ae: Autoencoder;
  files: PretrainedFiles;
  /** loadModelFile's description of the weights ('model weights (torch)', 'diffusers DiT folder', ...). */
  source: string;
  diffusion: DiffusionSettings;
  backend: string;
}

/** Loads the DiT (EMA weights of a train.py checkpoint unless weights says 'model') and the autoencoder sized for its latents. */
export async function loadPretrained(files: PretrainedFiles, o: { weights?: WeightsKey } = {}): Promise<LoadedPretrained> {
  const info = await initBackend({ quiet: true });
  const { model, source, diffusion } = loadModelFile(files.checkpoint, { weights: o.weights });
  try {
    const c = model.config;
    const ae = loadDecoderFor(files.vae, [c.inChannels, c.inputSize, c.inputSize]);
    return { model, ae, files, source, diffusion, backend: info.name };
  } catch (err) {
    disposeDiT(model);
    throw err;
  }
}

export function disposePretrained(p: LoadedPretrained): void {
  disposeDiT(p.model);
  p.ae.dispose();
}

/** The loaded model and autoencoder as (what, value) rows. */
export function pretrainedTable(p: LoadedPretrained): Array<Record<string, string>> {
  const c = p.model.config;
  const s = modelStats(c);
  const [ic, is] = p.ae.imageShape;
  const rows: Array<[string, string]> = [
    ['weights', `${p.files.published ? 'published' : 'random-weight fixture'}: ${rel(p.files.checkpoint)}`],
    ['read as', p.source],
    ['model', `${c.name} (${c.variant}), ${s.params.toLocaleString('en-US')} parameters`],
    ['blocks', `depth ${c.depth}, hidden ${c.hiddenSize}, ${c.numHeads} heads, patch ${c.patchSize}`],
    ['latents', `${c.inChannels}x${c.inputSize}x${c.inputSize}, ${s.tokens} tokens`],
    ['classes', `${c.numClasses}${c.numClasses === 1000 ? ' (ImageNet)' : ''} + the null class of guidance`],
    ['diffusion', describeDiffusion(p.diffusion)],
    ['autoencoder', `${rel(p.files.vae)}: ${p.ae.id}, latent scale ${p.ae.scale}, ${ic}x${is}x${is} images`],
    ['forward Gflops', s.gflops.toPrecision(4)],
    ['backend', p.backend],
  ];
  return rows.map(([what, value]) => ({ what, value }));
}

/** Forward passes and Gflops per image at `steps` sampling steps, per guidance scale (guidance runs two passes per step). */
export function samplingCostTable(p: LoadedPretrained, steps: number, cfgScales: readonly number[]): Array<Record<string, number>> {
  const c = p.model.config;
  return cfgScales.map((s) => ({
    cfg_scale: s,
    steps,
    forward_gflops: Number(gflops(c).toPrecision(4)),
    forward_passes_per_image: steps * (s === 1 ? 1 : 2),
    gflops_per_image: Number(samplingGflops(c, steps, s !== 1).toPrecision(4)),
  }));
}

/** The labels of a grid's columns as captions say them: 'golden retriever (207)' (ImageNet) or 'class 3'. */
export function classCaptions(classes: readonly number[], numClasses: number): string[] {
  return classes.map((l) => classLabel(l, numClasses));
}

/**
 * The classes of the grid: `want` (sample.py's ImageNet classes) when the model has them,
 * else its first classes (the fixture has 5), with a note saying so.
 */
export function gridClasses(want: readonly number[], numClasses: number): { classes: number[]; note: string | null } {
  if (want.length && want.every((l) => Number.isInteger(l) && l >= 0 && l < numClasses)) return { classes: [...want], note: null };
  const classes = Array.from({ length: Math.min(Math.max(want.length, 1), numClasses) }, (_, i) => i);
  const named = want.map((l) => (Number.isInteger(l) && l >= 0 && l < 1000 ? classLabel(l) : String(l))).join(', ');
  return { classes, note: `The model has ${numClasses} classes, so ${named} are out of its range: the grid samples classes ${classes.join(', ')} instead.` };
}

export interface SamplingEstimate {
  /** One timed model evaluation (ms) of a grid row: one pass, and the two-pass guided one. */
  forward_ms: number;
  guided_forward_ms: number;
  /** Expected seconds for the whole grid (every scale) and per image, from those timings x steps (decoding not included). */
  expected_s: number;
  expected_s_per_image: number;
}

/**
 * Times one model evaluation of a row of the grid (one pass, and the two-pass guided one)
 * on the active backend and extrapolates to `steps` steps per scale: what the sampling
 * cell will take, before it starts (a warm-up pass of one sample first).
 */
export function estimateSampling(
  p: LoadedPretrained, o: { classes: readonly number[]; steps: number; cfgScales: readonly number[]; guidanceChannels?: GuidanceChannels },
): SamplingEstimate {
  const c = p.model.config;
  const n = o.classes.length;
  const time = (m: number, guided: boolean): number => tf.tidy(() => {
    const x = tf.randomNormal([m, c.inChannels, c.inputSize, c.inputSize], 0, 1, 'float32', 0);
    const t = tf.fill([m], Math.floor(p.diffusion.diffusionSteps / 2), 'int32');
    const y = tf.tensor1d(Int32Array.from({ length: m }, (_, i) => o.classes[i % n]), 'int32');
    const t0 = process.hrtime.bigint();
    const out = guided ? forwardWithCfg(p.model, x, t, y, 4, o.guidanceChannels ?? 'first3') : ditForward(p.model, x, t, y);
    out.dataSync();
    return Number(process.hrtime.bigint() - t0) / 1e6;
  });
  time(1, false);
  const forward = time(n, false);
  const guided = o.cfgScales.some((s) => s !== 1) ? time(n, true) : 2 * forward;
  const total = (o.cfgScales.reduce((a, s) => a + (s === 1 ? forward : guided), 0) * o.steps) / 1000;
  return { forward_ms: forward, guided_forward_ms: guided, expected_s: total, expected_s_per_image: total / (n * o.cfgScales.length) };
}

export interface ClassGridOptions {
  classes: readonly number[];
  /** One grid row per scale (1 = no guidance); every row starts from the same noise. */
  cfgScales: readonly number[];
  steps: number;
  seed: number;
  /** The PNG to write. */
  file: string;
  sampler?: SamplerName;
  guidanceChannels?: GuidanceChannels;
  /** Integer magnification of each image in the PNG (default: 1, or enough to show small images at about 64 pixels). */
  zoom?: number;
}

export interface GridTiming extends Record<string, number> {
  cfg_scale: number;
  images: number;
  steps: number;
  sample_s: number;
  decode_s: number;
  s_per_image: number;
  gflops_per_image: number;
  /** Model multiply-adds per second the sampling achieved (Gflops per image x images / sampling time). */
  gmacs_per_s: number;
}

export interface ClassGrid {
  file: string;
  /** The PNG's pixel width (to display it smaller: 8 columns at 256x256 are 2,066 pixels). */
  width: number;
  /** Row labels (one per scale) and column labels (one per class). */
  rows: string[];
  columns: string[];
  caption: string;
  timings: GridTiming[];
  /** The decoded images, row by row (uint8 NHWC). */
  images: Uint8Array;
}

/**
 * Samples every class at every guidance scale with DiT's sampler (the same seed, so the same
 * noise, for every scale), decodes, and writes one PNG: a row per scale, a column per class.
 */
export function sampleClassGrid(p: LoadedPretrained, o: ClassGridOptions): ClassGrid {
  const c = p.model.config;
  const n = o.classes.length;
  const [ic, is] = p.ae.imageShape;
  const per = is * is * ic;
  const images = new Uint8Array(o.cfgScales.length * n * per);
  const timings: GridTiming[] = [];
  for (const [row, cfgScale] of o.cfgScales.entries()) {
    const t0 = process.hrtime.bigint();
    const r = sampleDiT(p.model, {
      labels: o.classes, sampler: o.sampler ?? 'ddpm', steps: o.steps, cfgScale, guidanceChannels: o.guidanceChannels ?? 'first3', seed: o.seed, diffusion: p.diffusion,
    });
    const t1 = process.hrtime.bigint();
    images.set(decodeLatents(p.ae, r.latents, n), row * n * per);
    const t2 = process.hrtime.bigint();
    const sample = Number(t1 - t0) / 1e9;
    const decode = Number(t2 - t1) / 1e9;
    timings.push({
      cfg_scale: cfgScale, images: n, steps: r.steps, sample_s: sample, decode_s: decode, s_per_image: (sample + decode) / n,
      gflops_per_image: r.gflopsPerImage, gmacs_per_s: (r.gflopsPerImage * n) / sample,
    });
  }
  const zoom = o.zoom ?? Math.max(1, Math.round(64 / is));
  const png = imageGrid(images, o.cfgScales.length * n, is, n, { channels: ic, zoom });
  writeFileAtomic(o.file, png);
  const rows = o.cfgScales.map((s) => `cfg ${s.toFixed(1)}`);
  const columns = classCaptions(o.classes, c.numClasses);
  const caption = `${c.name}, ${o.steps} ${o.sampler ?? 'ddpm'} steps, seed ${o.seed}; rows (top to bottom): ${rows.join(', ')}, from the same noise; ` +
    `columns: ${columns.join(', ')}${p.files.published ? '' : ' (random-weight fixture: noise)'}`;
  return { file: o.file, width: png.readUInt32BE(16), rows, columns, caption, timings, images };
}

/** The grid's timings rounded for a table. */
export function gridTimingTable(g: ClassGrid): Array<Record<string, number>> {
  const r = (v: number) => Number(v.toPrecision(4));
  return g.timings.map((t) => ({
    cfg_scale: t.cfg_scale, images: t.images, steps: t.steps, sample_s: r(t.sample_s), decode_s: r(t.decode_s), s_per_image: r(t.s_per_image),
    gflops_per_image: r(t.gflops_per_image), gmacs_per_s: r(t.gmacs_per_s),
  }));
}

/** Seconds as '0.42 s', '3.1 min' or '1.6 h'. */
export function formatSeconds(s: number): string {
  if (s < 120) return `${s.toPrecision(s < 1 ? 2 : 3)} s`;
  if (s < 7200) return `${(s / 60).toPrecision(3)} min`;
  return `${(s / 3600).toPrecision(3)} h`;
}
