// Sampled latents -> pixels: what `dit sample --vae` does after sampling.
import * as tf from '@tensorflow/tfjs-core';
import { imageGrid } from '../data/grid';
import { writeFileAtomic } from '../util/paths';
import { Autoencoder, loadAutoencoder } from './index';
import { tensorToImages } from './data';

/**
 * The autoencoder that decodes latents of shape [C, H, W]: a trained folder or weights
 * file (its latent shape must match), the SD autoencoder (sized for the latents), or
 * 'identity' (pixel space, sized from the latents).
 */
export function loadDecoderFor(spec: string, latentShape: readonly number[]): Autoencoder {
  const [c, h] = latentShape;
  // The SD autoencoder is sized by the latents (DiT-XL/2 256 and 512 share it); a kit folder has one size.
  const ae = loadAutoencoder(spec, spec === 'identity' ? { imageSize: h, channels: c } : { latentSize: h });
  if (ae.latentShape.some((d, i) => d !== latentShape[i])) {
    ae.dispose();
    throw new Error(`${spec} decodes [${ae.latentShape.join(', ')}] latents but the model makes [${latentShape.join(', ')}]`);
  }
  return ae;
}

/** Decodes NCHW latents in batches to uint8 NHWC images (clamped as DiT's sampler does). */
export function decodeLatents(ae: Autoencoder, latents: Float32Array, n: number, batchSize = 64): Uint8Array {
  const [c, h, w] = ae.latentShape;
  const per = c * h * w;
  if (latents.length !== n * per) throw new Error(`decodeLatents: ${latents.length} values are not ${n} latents of [${c}, ${h}, ${w}]`);
  const [ic, is] = ae.imageShape;
  const out = new Uint8Array(n * is * is * ic);
  for (let s = 0; s < n; s += batchSize) {
    const m = Math.min(batchSize, n - s);
    const x = tf.tidy(() => ae.decode(tf.tensor4d(latents.subarray(s * per, (s + m) * per), [m, c, h, w])));
    out.set(tensorToImages(x), s * is * is * ic);
    x.dispose();
  }
  return out;
}

/** Decodes and writes a PNG grid (about square); returns the images (uint8 NHWC). */
export function writeSampleGrid(ae: Autoencoder, latents: Float32Array, n: number, file: string, opts: { cols?: number; zoom?: number } = {}): Uint8Array {
  const images = decodeLatents(ae, latents, n);
  const cols = opts.cols ?? Math.ceil(Math.sqrt(n));
  writeFileAtomic(file, imageGrid(images, n, ae.imageShape[1], cols, { channels: ae.imageShape[0], zoom: opts.zoom ?? 1 }));
  return images;
}
