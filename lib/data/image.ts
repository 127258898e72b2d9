// Reading image files: PNG with the kit's own decoder, JPEG with the pure-JS jpeg-js.
// The format is sniffed from the bytes, not the extension (ImageNet has a PNG named
// .JPEG), and the result is converted to RGB the way PIL's convert('RGB') does.
import * as fs from 'fs';
import * as jpeg from 'jpeg-js';
import { decodePng, isPng, RawImage } from './png';

/** Extensions read as images (case-insensitive), as in torchvision's IMG_EXTENSIONS. */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp'];

export function isJpeg(head: Uint8Array): boolean {
  return head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff;
}

/** Decodes a JPEG strictly: truncated or damaged data is an error, not a grey tail. */
export function decodeJpeg(bytes: Uint8Array, name = '<buffer>'): RawImage {
  try {
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false, maxMemoryUsageInMB: 2048 });
    if (!img.width || !img.height) throw new Error('no image data');
    return { width: img.width, height: img.height, channels: 3, data: img.data };
  } catch (err) {
    throw new Error(`${name}: corrupt or unsupported JPEG (${(err as Error).message})`);
  }
}

/** PIL's convert('RGB'): grey is replicated, alpha is dropped (not composited). */
export function toRGB(img: RawImage): RawImage {
  const { width, height, channels: ch, data } = img;
  if (ch === 3) return img;
  const n = width * height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    if (ch <= 2) {
      const g = data[i * ch];
      out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = g;
    } else {
      out[3 * i] = data[i * ch];
      out[3 * i + 1] = data[i * ch + 1];
      out[3 * i + 2] = data[i * ch + 2];
    }
  }
  return { width, height, channels: 3, data: out };
}

/** Decodes PNG or JPEG bytes to RGB. `name` (a path) is named in every error. */
export function decodeImage(bytes: Uint8Array, name = '<buffer>'): RawImage {
  if (bytes.length === 0) throw new Error(`${name}: empty file`);
  if (isPng(bytes)) return toRGB(decodePng(bytes, name));
  if (isJpeg(bytes)) return decodeJpeg(bytes, name);
  throw new Error(`${name}: unsupported image format (only PNG and JPEG are decoded)`);
}

/** Reads and decodes an image file to RGB. */
export function readImage(file: string): RawImage {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new Error(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return decodeImage(bytes, file);
}

/** JPEG bytes of an RGB image (jpeg-js; used by tests and tools). */
export function encodeJpeg(img: RawImage, quality = 90): Buffer {
  const rgb = toRGB(img);
  const rgba = new Uint8Array(rgb.width * rgb.height * 4);
  for (let i = 0; i < rgb.width * rgb.height; i++) {
    rgba[4 * i] = rgb.data[3 * i];
    rgba[4 * i + 1] = rgb.data[3 * i + 1];
    rgba[4 * i + 2] = rgb.data[3 * i + 2];
    rgba[4 * i + 3] = 255;
  }
  return jpeg.encode({ width: rgb.width, height: rgb.height, data: rgba }, quality).data;
}
