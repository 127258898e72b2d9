// Known degradations of real images, for the calibration ladder of FID
// (lib/experiments/calibration.ts): each one harms images in a way whose direction is
// known (more noise, more blur, more contrast is worse), so a feature space whose FID does
// not rise along them cannot be trusted to rank models. All functions are pure: they take
// uint8 NHWC images and return new ones, rounded to the nearest integer and clipped to
// [0, 255] as any stored image is.
import { Rng } from '../util/rng';

/** Rounds and clips to a uint8 value. */
function u8(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}

/**
 * Adds N(0, sigma^2) to every value (sigma in 0-255 units). The draw depends only on the
 * seed and the array's length, so two sigmas with one seed add the same noise pattern at
 * different scales: their FIDs differ by the scale alone, not by the draw.
 */
export function addNoise(images: Uint8Array, sigma: number, seed: number): Uint8Array {
  if (!(sigma >= 0)) throw new Error(`addNoise: sigma must be >= 0, got ${sigma}`);
  const rng = new Rng(seed);
  const out = new Uint8Array(images.length);
  for (let i = 0; i < images.length; i++) out[i] = u8(images[i] + sigma * rng.normal());
  return out;
}

/** The normalised 1-D Gaussian kernel of radius ceil(3 sigma): 99.7% of the mass. */
export function gaussianKernel(sigma: number): Float64Array {
  if (!(sigma > 0)) throw new Error(`gaussianKernel: sigma must be > 0, got ${sigma}`);
  const r = Math.ceil(3 * sigma);
  const k = new Float64Array(2 * r + 1);
  let s = 0;
  for (let i = -r; i <= r; i++) s += k[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= s;
  return k;
}

/**
 * Separable Gaussian blur of `sigma` pixels, per channel, of n images h x w x c. Edge
 * pixels are replicated (not zero-padded): a dark frame would add a second degradation.
 * Both passes stay in floating point; only the result is rounded.
 */
export function gaussianBlur(images: Uint8Array, n: number, h: number, w: number, c: number, sigma: number): Uint8Array {
  if (images.length !== n * h * w * c) throw new Error(`gaussianBlur: ${images.length} values are not ${n} images of ${h}x${w}x${c}`);
  const k = gaussianKernel(sigma);
  const r = (k.length - 1) / 2;
  const clamp = (v: number, hi: number) => (v < 0 ? 0 : v > hi ? hi : v);
  const tmp = new Float64Array(h * w * c);
  const out = new Uint8Array(images.length);
  for (let b = 0; b < n; b++) {
    const o = b * h * w * c;
    // Horizontal pass into tmp.
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let ch = 0; ch < c; ch++) {
          let s = 0;
          for (let j = -r; j <= r; j++) s += k[j + r] * images[o + (y * w + clamp(x + j, w - 1)) * c + ch];
          tmp[(y * w + x) * c + ch] = s;
        }
      }
    }
    // Vertical pass into out.
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let ch = 0; ch < c; ch++) {
          let s = 0;
          for (let j = -r; j <= r; j++) s += k[j + r] * tmp[(clamp(y + j, h - 1) * w + x) * c + ch];
          out[o + (y * w + x) * c + ch] = u8(s);
        }
      }
    }
  }
  return out;
}

/**
 * v -> (v - 127.5) k + 127.5: k < 1 washes images out towards mid-grey, k > 1 saturates
 * them (k = 10 leaves little but the sign of each value about mid-grey).
 */
export function scaleContrast(images: Uint8Array, k: number): Uint8Array {
  const out = new Uint8Array(images.length);
  for (let i = 0; i < images.length; i++) out[i] = u8((images[i] - 127.5) * k + 127.5);
  return out;
}

/**
 * Rec. 601 luma (0.299 R + 0.587 G + 0.114 B) into all three channels of RGB images: keeps
 * shape and brightness, removes colour, so it tells how much a feature space weighs colour.
 */
export function greyscale(images: Uint8Array): Uint8Array {
  if (images.length % 3) throw new Error(`greyscale: ${images.length} values are not RGB pixels`);
  const out = new Uint8Array(images.length);
  for (let i = 0; i < images.length; i += 3) {
    const l = u8(0.299 * images[i] + 0.587 * images[i + 1] + 0.114 * images[i + 2]);
    out[i] = out[i + 1] = out[i + 2] = l;
  }
  return out;
}

/**
 * Reorders the channels of every pixel: output channel j is input channel order[j]. The
 * default [2, 0, 1] turns RGB into BRG: same shapes and luma structure, wrong colours.
 */
export function permuteChannels(images: Uint8Array, order: readonly number[] = [2, 0, 1]): Uint8Array {
  const c = order.length;
  if (images.length % c) throw new Error(`permuteChannels: ${images.length} values are not pixels of ${c} channels`);
  if ([...order].sort().some((v, i) => v !== i)) throw new Error(`permuteChannels: ${order.join(',')} is not a permutation of 0..${c - 1}`);
  const out = new Uint8Array(images.length);
  for (let i = 0; i < images.length; i += c) for (let j = 0; j < c; j++) out[i + j] = images[i + order[j]];
  return out;
}
