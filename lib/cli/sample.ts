import * as path from 'path';
import { backendInfo, initBackend } from '../backend';
import { HostArray } from '../io/array';
import { writeNpz } from '../io/npy';
import { loadDecoderFor, writeSampleGrid } from '../autoencoder/decode';
import { disposeDiT } from '../model/dit';
import { checkLabels } from '../model/labels';
import {
  checkDiffusionSettings, checkSampler, checkSamplingRequest, describeDiffusion, DiffusionSettings, NOISE_SCHEDULES, NoiseSchedule,
  SAMPLER_NAMES, SAMPLERS, SamplingRequest, samplingTimesteps,
} from '../diffusion';
import type { DiTConfig } from '../model/config';
import { samplingGflops } from '../model/gflops';
import { balancedLabels, SAMPLE_PY_CLASSES, sampleDiT } from '../sample/sample';
import { loadModelFile } from '../sample/load';
import { LabelMode, joinShards, sampleShards } from '../sample/shards';
import type { WeightsKey } from '../model/checkpoint';
import type { DiT } from '../model/dit';
import type { Autoencoder } from '../autoencoder';
import type { SamplerName } from '../diffusion';
import { asUsage, parseArgs, UsageError } from '../util/args';
import { writeFileAtomic } from '../util/paths';
import { Progress, progress } from '../util/progress';
import { gitCommit } from '../util/provenance';
import type { Command } from './command';
import { configFromFlags } from './gflops';

const USAGE = `usage: dit-kit sample --checkpoint FILE|DIR [--model NAME|CONFIG.json] [--image-size 256|512] [--classes 0,1,2] [--num 8]
                      [--sampler ${SAMPLER_NAMES.join('|')}] [--steps 250 | --respacing SPEC] [--eta 0]
                      [--cfg-scale 1.5] [--guidance-channels first3|all] [--seed 0]
                      [--diffusion-steps 1000] [--noise-schedule ${NOISE_SCHEDULES.join('|')}] [--predict-xstart]
                      [--key ema|model] [--batch-size N] [--vae DIR|FILE|identity] --out FILE.npz|FILE.png
       dit-kit sample ... --vae VAE --num-samples 50000 [--shard-size 1000] [--labels random|balanced] --out ADM.npz

Samples a DiT with respaced DDPM (default, 250 steps as the paper) or DDIM.
The published command line works as in DiT's sample.py:
  dit-kit sample --model DiT-XL/2 --image-size 256 --checkpoint DiT-XL-2-256x256.pt --vae sd-vae-ft-ema/ \\
                 --class-labels 207,360,387,974,88,979,417,279 --cfg-scale 4 --num-sampling-steps 250 --seed 0 --out grid.png
  (with --image-size, the defaults are sample.py's: those eight classes and --cfg-scale 4;
   with --num-samples too, sample_ddp.py's --cfg-scale 1.5)
  --checkpoint   a kit training checkpoint (its config is inside), DiT's train.py checkpoint,
                 model weights (.pt/.pth/.safetensors, zip or legacy torch.save; then --model
                 names the config, with --variant/--input-size/--in-channels/--num-classes),
                 or a diffusers DiT folder (its config is inside)
  --key          which weights of a checkpoint holding both (default ema, as sample.py)
  --image-size   image side; the latents are 1/8 of it (the SD autoencoder), as sample.py
  --classes      labels to cycle through (default: every class, balanced); --num samples in all
                 (--class-labels is the same; --num-sampling-steps is --steps)
  --num-samples  FID sampling as sample_ddp.py: N images in resumable shards (FILE.shards/,
                 --shard-size each, labels random as sample_ddp.py or balanced), joined into
                 ADM's npz (arr_0 uint8 NHWC, arr_1 labels); a killed run resumes where it stopped
  --sampler      ${SAMPLER_NAMES.map((n) => `${n}: ${SAMPLERS[n].about}`).join('\n                 ')}
  --steps        sampling steps, spread evenly over the diffusion process (DiT's rule); or
  --respacing    explicit ADM section counts instead ("10,15,20"; "ddimN", the DDIM paper's
                 integer stride, with --sampler ddim only); never both
  --eta          DDIM's eta (ddim only)
  --cfg-scale    classifier-free guidance scale s (1 = none); --guidance-channels first3 is the
                 published sampler, all the standard form
  --diffusion-steps, --noise-schedule, --predict-xstart
                 the diffusion the model was trained with. A kit checkpoint records it (these
                 flags may repeat it, never contradict it); bare weights get DiT's published
                 one (1000 linear steps, eps prediction) unless these flags say otherwise
Writes latents (N,C,H,W float32) and labels to the npz, and provenance to FILE.json;
with --vae also the decoded images as ADM's arr_0 (uint8 NHWC) / arr_1 (labels).
  --vae          decode the latents with this autoencoder ('dit-kit vae train' folder, the SD
                 autoencoder as a diffusers folder or LDM .ckpt/.safetensors, or identity for
                 pixel-space models) into a PNG grid next to the npz (FILE.png)
On one CPU core, DiT-XL/2 at 256 takes about 22 minutes per image at 250 guided steps and 2.4 at 25
(measured: README, "The published models"); the progress line shows the ETA.`;

const FLAGS = {
  checkpoint: 'string', model: 'string', variant: 'string', 'input-size': 'int', 'in-channels': 'int', 'num-classes': 'int',
  classes: 'string', num: 'int', sampler: 'string', steps: 'int', respacing: 'string', eta: 'number', 'cfg-scale': 'number',
  'guidance-channels': 'string', seed: 'seed', key: 'string', 'batch-size': 'count', out: 'string', vae: 'string',
  'diffusion-steps': 'int', 'noise-schedule': 'string', 'predict-xstart': 'boolean', 'image-size': 'int', 'class-labels': 'string',
  'num-sampling-steps': 'int', 'num-samples': 'int', 'shard-size': 'int', labels: 'string',
} as const;

/** sample.py's spellings of the kit's flags. */
const ALIASES: Array<[string, string]> = [['class-labels', 'classes'], ['num-sampling-steps', 'steps']];

export const sampleCommand: Command = {
  name: 'sample',
  summary: 'sample a DiT checkpoint (DDPM/DDIM, classifier-free guidance) to an npz of latents',
  usage: USAGE,
  async run(argv) {
    const { flags: f, positional } = parseArgs(argv, FLAGS);
    if (positional.length) throw new UsageError(`unexpected argument '${positional[0]}'`);
    for (const [alias, name] of ALIASES) {
      if (f[alias] === undefined) continue;
      if (f[name] !== undefined) throw new UsageError(`--${alias} and --${name} are the same flag; give one`);
      f[name] = f[alias];
    }
    const imageSize = f['image-size'] as number | undefined;
    if (imageSize !== undefined) {
      if (!(imageSize > 0 && imageSize % 8 === 0)) throw new UsageError(`--image-size must be a positive multiple of 8 (the autoencoder's factor), got ${imageSize}`);
      if (f['input-size'] !== undefined) throw new UsageError('--image-size sets the latent size (image / 8); do not also give --input-size');
      f['input-size'] = imageSize / 8;
      // sample.py's defaults, or sample_ddp.py's for --num-samples.
      if (f['num-samples'] === undefined) {
        f.classes ??= SAMPLE_PY_CLASSES.join(',');
        f['cfg-scale'] ??= 4;
      } else {
        f['cfg-scale'] ??= 1.5;
      }
    }
    if (!f.checkpoint) throw new UsageError('--checkpoint FILE is required');
    if (!f.out) throw new UsageError('--out FILE.npz is required');
    if (!/\.(npz|png)$/.test(String(f.out)) || (!f.vae && !String(f.out).endsWith('.npz'))) throw new UsageError('--out must end in .npz (or .png with --vae)');
    const sampler = asUsage(() => checkSampler(f.sampler ?? 'ddpm', '--sampler'));
    const respacing = f.respacing as string | undefined;
    const request = { steps: (f.steps as number | undefined) ?? (respacing === undefined ? 250 : undefined), respacing, eta: f.eta as number | undefined };
    asUsage(() => checkSamplingRequest(sampler, request));
    const requested: Partial<DiffusionSettings> = {
      diffusionSteps: f['diffusion-steps'] as number | undefined,
      noiseSchedule: f['noise-schedule'] as NoiseSchedule | undefined,
      predictXstart: f['predict-xstart'] as boolean | undefined,
    };
    asUsage(() => checkDiffusionSettings(requested, 'flags'));
    const channels = (f['guidance-channels'] ?? 'first3') as 'first3' | 'all';
    if (channels !== 'first3' && channels !== 'all') throw new UsageError(`--guidance-channels must be first3 or all`);
    const weights = f.key as WeightsKey | undefined;
    if (weights !== undefined && weights !== 'ema' && weights !== 'model') throw new UsageError(`--key must be ema or model`);
    const numSamples = f['num-samples'] as number | undefined;
    const labelMode = (f.labels ?? 'random') as LabelMode;
    if (labelMode !== 'random' && labelMode !== 'balanced') throw new UsageError('--labels must be random or balanced');
    if (numSamples !== undefined) {
      if (!(numSamples > 0)) throw new UsageError('--num-samples must be positive');
      if (!f.vae) throw new UsageError('--num-samples writes images: give --vae');
      if (f.num !== undefined || f.classes !== undefined) throw new UsageError('--num-samples draws its own labels (--labels random|balanced); do not give --num or --classes');
      if (!String(f.out).endsWith('.npz')) throw new UsageError('--num-samples writes an ADM npz: --out must end in .npz');
    } else if (f['shard-size'] !== undefined || f.labels !== undefined) {
      throw new UsageError('--shard-size and --labels go with --num-samples');
    }
    await initBackend();
    const config = f.model ? configFromFlags(f.model as string, f) : undefined;
    const { model, source, diffusion } = loadModelFile(f.checkpoint as string, { config, weights, diffusion: requested });
    const ae = f.vae ? loadDecoderFor(f.vae as string, [model.config.inChannels, model.config.inputSize, model.config.inputSize]) : null;
    try {
      const c = model.config;
      const run: SampleRun = {
        checkpoint: f.checkpoint as string, source, model: c, diffusion, sampler, request, channels, ae, t0: Date.now(),
        cfgScale: (f['cfg-scale'] as number | undefined) ?? 1, seed: (f.seed as number | undefined) ?? 0,
      };
      if (numSamples !== undefined) return sampleFid(model, ae!, run, f, { numSamples, labelMode });
      let classes: number[] | null = null;
      if (f.classes !== undefined) {
        classes = String(f.classes).split(',').map((s) => {
          const v = Number(s.trim());
          if (!Number.isInteger(v)) throw new UsageError(`--classes must be comma-separated integers, got '${f.classes}'`);
          return v;
        });
      }
      if (classes) checkLabels(classes, c.numClasses, { what: '--classes' });
      const num = (f.num as number | undefined) ?? (classes ? classes.length : c.numClasses);
      if (num <= 0) throw new UsageError('--num must be positive');
      const labels = classes ? Int32Array.from({ length: num }, (_, i) => classes![i % classes!.length]) : balancedLabels(num, c.numClasses);
      const batches = Math.ceil(num / ((f['batch-size'] as number) ?? num));
      let bar: Progress | undefined;
      let done = 0;
      const r = sampleDiT(model, {
        labels, sampler, ...request, diffusion, cfgScale: run.cfgScale, guidanceChannels: channels, seed: run.seed,
        batchSize: f['batch-size'] as number | undefined,
        // The loop knows the respaced step count; the bar starts with its first step.
        progress: (_, total) => (bar ??= progress(`sample ${c.name}`, total * batches)).update(++done),
      });
      bar?.done();
      const out = (f.out as string).replace(/\.png$/, '.npz');
      const arrays: Record<string, HostArray> = {
        latents: { dtype: 'float32', shape: r.shape, data: r.latents },
        labels: { dtype: 'int32', shape: [r.labels.length], data: r.labels },
      };
      if (ae) {
        // ADM's sample batch layout as well: arr_0 uint8 NHWC images, arr_1 labels (what dit evaluate reads).
        const images = writeSampleGrid(ae, r.latents, num, out.replace(/\.npz$/, '.png'));
        const [ic, is] = ae.imageShape;
        arrays.arr_0 = { dtype: 'uint8', shape: [num, is, is, ic], data: images };
        arrays.arr_1 = { dtype: 'int32', shape: [num], data: r.labels };
      }
      writeNpz(out, arrays);
      const prov = writeProvenance(out, run, { num });
      console.log(`wrote ${num} samples [${r.shape.join(', ')}] from ${source} to ${out} (provenance: ${prov})`);
      console.log(`${r.steps} ${sampler} steps over the diffusion ${describeDiffusion(diffusion)}`);
      if (ae) console.log(`decoded with ${ae.id}: images as arr_0/arr_1 in the npz (ADM layout) and a grid in ${out.replace(/\.npz$/, '.png')}`);
      return 0;
    } finally {
      disposeDiT(model);
      ae?.dispose();
    }
  },
};

/** One sampling run as FILE.json records it, in both modes. */
interface SampleRun {
  checkpoint: string;
  /** What the weights were (loadModelFile's description). */
  source: string;
  model: DiTConfig;
  diffusion: DiffusionSettings;
  sampler: SamplerName;
  request: SamplingRequest;
  channels: 'first3' | 'all';
  cfgScale: number;
  seed: number;
  ae: Autoencoder | null;
  /** When sampling started (ms). */
  t0: number;
}

/** Writes the provenance of `out` (FILE.npz -> FILE.json): the run, what `extra` adds, the environment and the wall time; returns its path. */
function writeProvenance(out: string, run: SampleRun, extra: Record<string, unknown>): string {
  const steps = samplingTimesteps(run.sampler, run.diffusion.diffusionSteps, run.request).length;
  const prov = {
    checkpoint: path.resolve(run.checkpoint), weights: run.source, model: run.model, diffusion: run.diffusion, sampler: run.sampler, steps,
    respacing: run.request.respacing ?? null, eta: SAMPLERS[run.sampler].params.includes('eta') ? (run.request.eta ?? 0) : null,
    cfgScale: run.cfgScale, guidanceChannels: run.channels, seed: run.seed, ...extra, vae: run.ae ? run.ae.id : null,
    gflopsPerImage: samplingGflops(run.model, steps, run.cfgScale !== 1), backend: backendInfo()?.name, gitCommit: gitCommit(),
    wallSeconds: (Date.now() - run.t0) / 1000,
  };
  const file = out.replace(/\.npz$/, '.json');
  writeFileAtomic(file, JSON.stringify(prov, null, 2) + '\n');
  return file;
}

/** --num-samples: sample_ddp.py's job, resumable, then one ADM npz. */
function sampleFid(model: DiT, ae: Autoencoder, run: SampleRun, f: Record<string, unknown>, o: { numSamples: number; labelMode: LabelMode }): number {
  const out = f.out as string;
  const dir = out.replace(/\.npz$/, '.shards');
  const shardSize = (f['shard-size'] as number | undefined) ?? 1000;
  const total = Math.ceil(o.numSamples / shardSize);
  const perShard = Math.ceil(shardSize / ((f['batch-size'] as number | undefined) ?? shardSize));
  let bar: Progress | undefined;
  let steps = 0;
  let resumed = 0;
  const r = sampleShards(model, ae, {
    num: o.numSamples, shardSize, labelMode: o.labelMode, dir, sampler: run.sampler, ...run.request, diffusion: run.diffusion, cfgScale: run.cfgScale,
    guidanceChannels: run.channels, seed: run.seed,
    batchSize: f['batch-size'] as number | undefined,
    onShard: (done, all, wasThere) => {
      if (wasThere) resumed++;
      process.stderr.write(`[dit] shard ${done}/${all} ${wasThere ? 'already there' : 'written'} (${dir})\n`);
    },
    // Per sampling step, over the shards still to make (those found later finish the bar early).
    progress: (_, perBatch) => (bar ??= progress(`sample ${model.config.name}`, perBatch * perShard * (total - resumed))).update(++steps),
  });
  bar?.done();
  const n = joinShards(r.files, out);
  writeProvenance(out, run, { num: n, shardSize, labels: o.labelMode, resumedShards: r.resumed });
  console.log(`wrote ${n} images from ${run.source} to ${out} (ADM layout: arr_0 uint8 NHWC, arr_1 labels; ${r.files.length} shards in ${dir}, ${r.resumed} resumed)`);
  return 0;
}
