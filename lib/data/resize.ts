// Resampling exactly as Pillow does it (libImaging/Resample.c), so that images
// prepared here match ADM/DiT's preprocessing: separable convolution, horizontal
// pass first, coefficients normalised per output pixel then turned into 22-bit
// fixed point, uint8 rounding and clipping after each pass. Box and bicubic
// (a = -0.5) are the two filters center_crop_arr uses; bilinear comes for free.
import type { RawImage } from './png';

export type ResampleFilter = 'box' | 'bilinear' | 'bicubic';

interface Filter {
  support: number;
  fn: (x: number) => number;
}

const FILTERS: Record<ResampleFilter, Filter> = {
  box: { support: 0.5, fn: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: {
    support: 1,
    fn: (x) => {
      x = Math.abs(x);
      return x < 1 ? 1 - x : 0;
    },
  },
  bicubic: {
    support: 2,
    fn: (x) => {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
};

const PRECISION_BITS = 32 - 8 - 2;

interface Coeffs {
  ksize: number;
  /** Per output pixel: first input index and tap count. */
  bounds: Int32Array;
  /** Fixed-point taps, ksize per output pixel. */
  kk: Int32Array;
}

/**
 * Pillow's precompute_coeffs for the box [in0, in1) of an axis of inSize pixels
 * resampled to outSize: when downsampling the filter is stretched by the scale
 * (antialiasing), then normalize_coeffs_8bpc rounds taps to fixed point.
 */
function precomputeCoeffs(inSize: number, in0: number, in1: number, outSize: number, filter: Filter): Coeffs {
  const scale = (in1 - in0) / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero.
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < ksize; x++) {
      const w = x < xmax ? (ww !== 0 ? k[x] / ww : k[x]) : 0;
      kk[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * (1 << PRECISION_BITS)) : Math.trunc(0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

function clip8(v: number): number {
  if (v >= 1 << (PRECISION_BITS + 8)) return 255;
  if (v <= 0) return 0;
  return v >> PRECISION_BITS;
}

function resampleHorizontal(src: RawImage, outW: number, c: Coeffs): RawImage {
  const { height, width, channels: ch, data } = src;
  const out = new Uint8Array(outW * height * ch);
  for (let y = 0; y < height; y++) {
    const row = y * width * ch;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = c.bounds[2 * xx], xmax = c.bounds[2 * xx + 1], kb = xx * c.ksize;
      for (let cc = 0; cc < ch; cc++) {
        let ss = 1 << (PRECISION_BITS - 1);
        for (let x = 0; x < xmax; x++) ss += data[row + (x + xmin) * ch + cc] * c.kk[kb + x];
        out[(y * outW + xx) * ch + cc] = clip8(ss);
      }
    }
  }
  return { width: outW, height, channels: ch, data: out };
}

function resampleVertical(src: RawImage, outH: number, c: Coeffs): RawImage {
  const { width, channels: ch, data } = src;
  const stride = width * ch;
  const out = new Uint8Array(outH * stride);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = c.bounds[2 * yy], ymax = c.bounds[2 * yy + 1], kb = yy * c.ksize;
    for (let i = 0; i < stride; i++) {
      let ss = 1 << (PRECISION_BITS - 1);
      for (let y = 0; y < ymax; y++) ss += data[(y + ymin) * stride + i] * c.kk[kb + y];
      out[yy * stride + i] = clip8(ss);
    }
  }
  return { width, height: outH, channels: ch, data: out };
}

/** PIL's Image.resize((outW, outH), filter) of an 8-bit image (any channel count). */
export function resample(img: RawImage, outW: number, outH: number, filter: ResampleFilter): RawImage {
  if (!Number.isSafeInteger(outW) || !Number.isSafeInteger(outH) || outW <= 0 || outH <= 0) {
    throw new Error(`resample: bad output size ${outW}x${outH}`);
  }
  // Image.resize returns a copy when the size does not change.
  if (outW === img.width && outH === img.height) return { ...img, data: img.data.slice() };
  const f = FILTERS[filter];
  let out = img;
  if (outW !== img.width) out = resampleHorizontal(out, outW, precomputeCoeffs(img.width, 0, img.width, outW, f));
  if (outH !== img.height) out = resampleVertical(out, outH, precomputeCoeffs(img.height, 0, img.height, outH, f));
  return out;
}

/** Python's round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Crops a w x h window at (x0, y0). */
export function crop(img: RawImage, x0: number, y0: number, w: number, h: number): RawImage {
  const ch = img.channels;
  const out = new Uint8Array(w * h * ch);
  for (let y = 0; y < h; y++) {
    const s = ((y0 + y) * img.width + x0) * ch;
    out.set(img.data.subarray(s, s + w * ch), y * w * ch);
  }
  return { width: w, height: h, channels: ch, data: out };
}

/**
 * ADM's center_crop_arr (also DiT's train.py): halve with a BOX filter while the
 * short side is at least 2*size, BICUBIC-resize so the short side is `size`, then
 * take the centre size x size crop.
 */
export function centerCropArr(img: RawImage, size: number): RawImage {
  if (!Number.isSafeInteger(size) || size <= 0) throw new Error(`centerCropArr: bad size ${size}`);
  let im = img;
  while (Math.min(im.width, im.height) >= 2 * size) {
    im = resample(im, Math.floor(im.width / 2), Math.floor(im.height / 2), 'box');
  }
  const scale = size / Math.min(im.width, im.height);
  im = resample(im, roundHalfEven(im.width * scale), roundHalfEven(im.height * scale), 'bicubic');
  const cy = (im.height - size) >> 1;
  const cx = (im.width - size) >> 1;
  return crop(im, cx, cy, size, size);
}
