// The latent space DiT trains in (paper Sec. 3: the Stable Diffusion KL autoencoder,
// latents scaled by 0.18215). One interface for every choice:
//   - 'kl': the kit's own KL autoencoder (lib/autoencoder/kl.ts), trained on the
//     default data by lib/autoencoder/train.ts; latents scaled to unit std;
//   - 'identity': pixel space; latents are the images in [-1, 1], scale 1.
// Images and latents are NCHW at this boundary, like the DiT.
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../util/rng';
import { KLModel, disposeKL, klDecode, klLatentShape, klMoments, posterior, posteriorSample } from './kl';
import { fileSource } from '../io/source';
import { looksLikeSafetensors, readSafetensorsHeader } from '../io/safetensors';
import { readSDVae } from './sd';
import { VAE_FORMAT, VAE_MANIFEST, VAE_WEIGHTS, readKLWeights, readVAEManifest } from './weights';

export interface EncodeOptions {
  /** Draw the posterior sample with this noise (NCHW, the latents' shape) ... */
  noise?: tf.Tensor4D;
  /** ... or with noise drawn from rng (NCHW order). Neither: the posterior mode (mean). */
  rng?: Rng;
}

export interface Autoencoder {
  readonly kind: 'kl' | 'identity';
  /** Identifies the autoencoder in cache keys and provenance: 'identity' or 'kl-<sha256 of the weights, 16 hex>'. */
  readonly id: string;
  /** Latents = scale * z (z the encoder's latent). */
  readonly scale: number;
  /** [C, H, W] of one image and of one latent. */
  readonly imageShape: [number, number, number];
  readonly latentShape: [number, number, number];
  /** Images NCHW in [-1, 1] -> scaled latents NCHW. */
  encode(images: tf.Tensor4D, opts?: EncodeOptions): tf.Tensor4D;
  /** Scaled latents NCHW -> images NCHW (about [-1, 1]; not clamped). */
  decode(latents: tf.Tensor4D): tf.Tensor4D;
  dispose(): void;
}

function checkShape(x: tf.Tensor, want: [number, number, number], what: string): void {
  if (x.rank !== 4 || x.shape.slice(1).some((d, i) => d !== want[i])) {
    throw new Error(`autoencoder: ${what} must be [N, ${want.join(', ')}] (NCHW), got [${x.shape.join(', ')}]`);
  }
}

/** Pixel space: encode and decode are the identity (copies), scale 1. */
export function identityAutoencoder(imageSize = 32, channels = 3): Autoencoder {
  const shape: [number, number, number] = [channels, imageSize, imageSize];
  return {
    kind: 'identity',
    id: 'identity',
    scale: 1,
    imageShape: shape,
    latentShape: shape,
    encode(images) {
      checkShape(images, shape, 'images');
      return tf.clone(images);
    },
    decode(latents) {
      checkShape(latents, shape, 'latents');
      return tf.clone(latents);
    },
    dispose() {},
  };
}

const toNHWC = (x: tf.Tensor4D) => tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
const toNCHW = (x: tf.Tensor4D) => tf.transpose(x, [0, 3, 1, 2]) as tf.Tensor4D;

/** Wraps a KL model with its latent scale; `id` comes from the weights' sha256. */
export function klAutoencoder(model: KLModel, scale: number, weightsSha256: string): Autoencoder {
  const c = model.config;
  const imageShape: [number, number, number] = [c.inChannels, c.resolution, c.resolution];
  const latentShape = klLatentShape(c);
  return {
    kind: 'kl',
    id: `kl-${weightsSha256.slice(0, 16)}`,
    scale,
    imageShape,
    latentShape,
    encode(images, opts = {}) {
      checkShape(images, imageShape, 'images');
      const n = images.shape[0];
      return tf.tidy(() => {
        const p = posterior(klMoments(model, toNHWC(images)));
        let z = p.mean;
        if (opts.noise || opts.rng) {
          let noise: tf.Tensor4D;
          if (opts.noise) {
            checkShape(opts.noise, latentShape, 'noise');
            if (opts.noise.shape[0] !== n) throw new Error(`autoencoder: noise has ${opts.noise.shape[0]} samples for ${n} images`);
            noise = opts.noise;
          } else {
            noise = tf.tensor4d(opts.rng!.fillNormal(new Float32Array(n * latentShape[0] * latentShape[1] * latentShape[2])), [n, ...latentShape]);
          }
          z = posteriorSample(p, toNHWC(noise));
        }
        return toNCHW(tf.mul(z, scale) as tf.Tensor4D);
      });
    },
    decode(latents) {
      checkShape(latents, latentShape, 'latents');
      return tf.tidy(() => toNCHW(klDecode(model, toNHWC(tf.div(latents, scale) as tf.Tensor4D))));
    },
    dispose() {
      disposeKL(model);
    },
  };
}

/** Is `file` a weights file written by the kit (encodeKLWeights), as opposed to a published one? */
function isKitWeights(file: string): boolean {
  const src = fileSource(file, 'autoencoder weights');
  try {
    const head = src.read(0, Math.min(src.size, 32));
    return looksLikeSafetensors(head, src.size) && readSafetensorsHeader(src).metadata?.format === VAE_FORMAT;
  } finally {
    src.close();
  }
}

/**
 * 'identity' (pixel space; imageSize/channels from opts, default 32x32 RGB), a folder
 * written by `dit vae train` (vae.safetensors checked against the sha256 in vae.json),
 * a weights file, or the Stable Diffusion autoencoder in the LDM or diffusers layout
 * (lib/autoencoder/sd.ts; used at imageSize, default its config's or 256).
 */
export function loadAutoencoder(spec: string, opts: { imageSize?: number; channels?: number; latentSize?: number } = {}): Autoencoder {
  if (spec === 'identity') return identityAutoencoder(opts.imageSize ?? 32, opts.channels ?? 3);
  if (!fs.existsSync(spec)) throw new Error(`autoencoder not found: ${spec} (give a folder from 'dit vae train', a ${VAE_WEIGHTS} file, the SD autoencoder, or 'identity')`);
  const isDir = fs.statSync(spec).isDirectory();
  const diffusers = isDir && ['config.json', 'vae/config.json'].some((f) => fs.existsSync(path.join(spec, f)));
  if (isDir ? diffusers && !fs.existsSync(path.join(spec, VAE_MANIFEST)) : !isKitWeights(spec)) {
    const sd = readSDVae(spec, { resolution: opts.imageSize, latentSize: opts.latentSize });
    return checkImages(klAutoencoder(sd.model, sd.scale, sd.sha256), spec, opts);
  }
  let file = spec;
  let want: string | null = null;
  if (fs.statSync(spec).isDirectory()) {
    const m = readVAEManifest(spec);
    file = path.join(spec, m.weights.file);
    want = m.weights.sha256;
  }
  const w = readKLWeights(file);
  if (want && w.sha256 !== want) {
    disposeKL(w.model);
    throw new Error(`${file} has sha256 ${w.sha256.slice(0, 12)}..., its manifest says ${want.slice(0, 12)}...: the weights were changed or damaged; train again`);
  }
  return checkImages(klAutoencoder(w.model, w.scale, w.sha256), spec, opts);
}

function checkImages(ae: Autoencoder, spec: string, opts: { imageSize?: number; channels?: number }): Autoencoder {
  const [c, s] = [ae.imageShape[0], ae.imageShape[1]];
  if ((opts.imageSize !== undefined && opts.imageSize !== s) || (opts.channels !== undefined && opts.channels !== c)) {
    ae.dispose();
    throw new Error(`${spec} encodes ${c}x${s}x${s} images, not ${opts.channels ?? c}x${opts.imageSize ?? s}x${opts.imageSize ?? s}`);
  }
  return ae;
}

export * from './kl';
export * from './weights';
export * from './sd';
export * from './data';
export * from './decode';
