// Image grids for dataset previews and sample sheets, laid out like torchvision's
// make_grid (row-major, `pad` pixels between and around cells).
import { encodePng, RawImage } from './png';

export interface GridOptions {
  /** Pixels between cells and around the border (default 2, as make_grid). */
  pad?: number;
  /** Grey level of the padding (default 255: white). */
  padValue?: number;
  /** Channels per pixel of `images` (default 3). */
  channels?: number;
  /** Integer nearest-neighbour magnification of each cell (default 1), for viewing small images. */
  zoom?: number;
}

/** The grid as raw pixels: n images (uint8 NHWC, size x size) in `cols` columns. */
export function gridPixels(images: Uint8Array, n: number, size: number, cols: number, opts: GridOptions = {}): RawImage {
  const pad = opts.pad ?? 2;
  const ch = opts.channels ?? 3;
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`imageGrid: needs at least one image, got ${n}`);
  if (!Number.isSafeInteger(cols) || cols <= 0) throw new Error(`imageGrid: cols must be a positive integer, got ${cols}`);
  if (!Number.isSafeInteger(pad) || pad < 0) throw new Error(`imageGrid: pad must be a non-negative integer, got ${pad}`);
  const z = opts.zoom ?? 1;
  if (!Number.isSafeInteger(z) || z < 1) throw new Error(`imageGrid: zoom must be a positive integer, got ${z}`);
  const cell = size * z;
  if (images.length < n * size * size * ch) throw new Error(`imageGrid: ${images.length} bytes hold fewer than ${n} images of ${size}x${size}x${ch}`);
  const c = Math.min(cols, n);
  const rows = Math.ceil(n / c);
  const width = c * cell + (c + 1) * pad;
  const height = rows * cell + (rows + 1) * pad;
  const data = new Uint8Array(width * height * ch).fill(opts.padValue ?? 255);
  for (let i = 0; i < n; i++) {
    const x0 = pad + (i % c) * (cell + pad);
    const y0 = pad + Math.floor(i / c) * (cell + pad);
    for (let y = 0; y < cell; y++) {
      const src = (i * size + Math.floor(y / z)) * size * ch;
      const dst = ((y0 + y) * width + x0) * ch;
      if (z === 1) {
        data.set(images.subarray(src, src + size * ch), dst);
        continue;
      }
      for (let x = 0; x < cell; x++) {
        for (let k = 0; k < ch; k++) data[dst + x * ch + k] = images[src + Math.floor(x / z) * ch + k];
      }
    }
  }
  return { width, height, channels: ch, data };
}

/** PNG bytes of a grid of n images (uint8 NHWC) in `cols` columns. */
export function imageGrid(images: Uint8Array, n: number, size: number, cols: number, opts: GridOptions = {}): Buffer {
  return encodePng(gridPixels(images, n, size, cols, opts));
}
