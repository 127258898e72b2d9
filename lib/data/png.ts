// PNG encode/decode with Node's zlib (no dependencies). Decoding covers what image
// datasets hold in practice: 8-bit grey, grey+alpha, RGB, RGBA and palette images,
// non-interlaced, every filter type. Anything else is refused with a clear error
// rather than decoded wrongly.
import * as zlib from 'zlib';

export interface RawImage {
  width: number;
  height: number;
  /** 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA. */
  channels: number;
  /** uint8, row-major HWC. */
  data: Uint8Array;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function isPng(head: Uint8Array): boolean {
  return head.length >= 8 && SIGNATURE.every((b, i) => head[i] === b);
}

// ---- CRC-32 (PNG chunk checksums) --------------------------------------------

let crcTable: Uint32Array | null = null;

function crc32(bytes: Uint8Array, start: number, end: number): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---- filters ------------------------------------------------------------------

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

/** Undoes the per-row filters in place; `raw` is the inflated IDAT stream. */
function unfilter(raw: Uint8Array, height: number, stride: number, bpp: number, name: string): Uint8Array {
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const ft = raw[y * (stride + 1)];
    const src = y * (stride + 1) + 1;
    const dst = y * stride;
    const prev = dst - stride; // only read when y > 0
    switch (ft) {
      case 0:
        out.set(raw.subarray(src, src + stride), dst);
        break;
      case 1:
        for (let x = 0; x < stride; x++) out[dst + x] = raw[src + x] + (x >= bpp ? out[dst + x - bpp] : 0);
        break;
      case 2:
        for (let x = 0; x < stride; x++) out[dst + x] = raw[src + x] + (y > 0 ? out[prev + x] : 0);
        break;
      case 3:
        for (let x = 0; x < stride; x++) {
          const a = x >= bpp ? out[dst + x - bpp] : 0;
          const b = y > 0 ? out[prev + x] : 0;
          out[dst + x] = raw[src + x] + ((a + b) >> 1);
        }
        break;
      case 4:
        for (let x = 0; x < stride; x++) {
          const a = x >= bpp ? out[dst + x - bpp] : 0;
          const b = y > 0 ? out[prev + x] : 0;
          const c = x >= bpp && y > 0 ? out[prev + x - bpp] : 0;
          out[dst + x] = raw[src + x] + paeth(a, b, c);
        }
        break;
      default:
        throw new Error(`${name}: corrupt PNG: unknown filter type ${ft} on row ${y}`);
    }
  }
  return out;
}

/** Filters one row with type ft into out (the filter byte first). */
function filterRow(ft: number, cur: Uint8Array, prev: Uint8Array | null, bpp: number, out: Uint8Array): void {
  out[0] = ft;
  const n = cur.length;
  for (let x = 0; x < n; x++) {
    const a = x >= bpp ? cur[x - bpp] : 0;
    const b = prev ? prev[x] : 0;
    const c = prev && x >= bpp ? prev[x - bpp] : 0;
    let p = 0;
    if (ft === 1) p = a;
    else if (ft === 2) p = b;
    else if (ft === 3) p = (a + b) >> 1;
    else if (ft === 4) p = paeth(a, b, c);
    out[x + 1] = (cur[x] - p) & 0xff;
  }
}

// ---- encode -------------------------------------------------------------------

const COLOR_TYPE: Record<number, number> = { 1: 0, 2: 4, 3: 2, 4: 6 };

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out, 4, 8 + data.length), 8 + data.length);
  return out;
}

/**
 * PNG bytes for an 8-bit image. Each row gets the filter with the smallest sum of
 * absolute residuals (the usual libpng heuristic), then zlib.
 */
export function encodePng(img: RawImage, opts: { level?: number; /** force one filter type (0-4) on every row */ filter?: number } = {}): Buffer {
  const { width, height, channels, data } = img;
  const ct = COLOR_TYPE[channels];
  if (ct === undefined) throw new Error(`encodePng: ${channels} channels; PNG takes 1, 2, 3 or 4`);
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width <= 0 || height <= 0) {
    throw new Error(`encodePng: bad size ${width}x${height}`);
  }
  const stride = width * channels;
  if (data.length !== height * stride) throw new Error(`encodePng: ${data.length} bytes do not hold ${width}x${height}x${channels}`);
  if (opts.filter !== undefined && !(Number.isInteger(opts.filter) && opts.filter >= 0 && opts.filter <= 4)) {
    throw new Error(`encodePng: filter type ${opts.filter} is not 0-4`);
  }
  const filtered = new Uint8Array(height * (stride + 1));
  const trial = new Uint8Array(stride + 1);
  for (let y = 0; y < height; y++) {
    const cur = data.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? data.subarray((y - 1) * stride, y * stride) : null;
    let best = Infinity;
    for (let ft = opts.filter ?? 0; ft <= (opts.filter ?? 4); ft++) {
      filterRow(ft, cur, prev, channels, trial);
      let s = 0;
      for (let x = 1; x <= stride; x++) s += trial[x] < 128 ? trial[x] : 256 - trial[x];
      if (s < best) {
        best = s;
        filtered.set(trial, y * (stride + 1));
      }
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = ct;
  ihdr[10] = 0; // deflate
  ihdr[11] = 0; // adaptive filtering
  ihdr[12] = 0; // no interlace
  return Buffer.concat([
    Buffer.from(SIGNATURE),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(filtered, { level: opts.level ?? 9 })),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

// ---- decode -------------------------------------------------------------------

const CHANNELS_OF: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/**
 * Decodes a PNG. Palette images come back as RGB, or RGBA when they carry a tRNS
 * chunk. `name` (a path) is used in every error message.
 */
export function decodePng(bytes: Uint8Array, name = '<buffer>'): RawImage {
  if (!isPng(bytes)) throw new Error(`${name}: not a PNG file (bad signature)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 8;
  let width = 0, height = 0, colorType = -1;
  let palette: Uint8Array | null = null;
  let trns: Uint8Array | null = null;
  const idat: Uint8Array[] = [];
  let ended = false;
  while (p < bytes.length) {
    if (p + 12 > bytes.length) throw new Error(`${name}: truncated PNG (chunk header at byte ${p})`);
    const len = view.getUint32(p);
    const type = String.fromCharCode(bytes[p + 4], bytes[p + 5], bytes[p + 6], bytes[p + 7]);
    if (p + 12 + len > bytes.length) throw new Error(`${name}: truncated PNG (chunk ${type} runs past the end of the file)`);
    const crc = view.getUint32(p + 8 + len);
    if (crc32(bytes, p + 4, p + 8 + len) !== crc) throw new Error(`${name}: corrupt PNG (CRC mismatch in chunk ${type})`);
    const body = bytes.subarray(p + 8, p + 8 + len);
    p += 12 + len;
    if (type === 'IHDR') {
      if (len !== 13) throw new Error(`${name}: corrupt PNG (IHDR of ${len} bytes)`);
      const hv = new DataView(body.buffer, body.byteOffset, 13);
      width = hv.getUint32(0);
      height = hv.getUint32(4);
      const depth = body[8];
      colorType = body[9];
      if (CHANNELS_OF[colorType] === undefined) throw new Error(`${name}: corrupt PNG (colour type ${colorType})`);
      if (depth !== 8) throw new Error(`${name}: unsupported PNG: ${depth}-bit samples (only 8-bit PNGs are decoded)`);
      if (body[10] !== 0 || body[11] !== 0) throw new Error(`${name}: corrupt PNG (compression ${body[10]}, filter method ${body[11]})`);
      if (body[12] !== 0) throw new Error(`${name}: unsupported PNG: interlaced (Adam7) images are not decoded`);
      if (width === 0 || height === 0) throw new Error(`${name}: corrupt PNG (size ${width}x${height})`);
    } else if (colorType < 0) {
      throw new Error(`${name}: corrupt PNG (first chunk is ${type}, not IHDR)`);
    } else if (type === 'PLTE') {
      if (len % 3 !== 0 || len === 0 || len > 768) throw new Error(`${name}: corrupt PNG (PLTE of ${len} bytes)`);
      palette = body;
    } else if (type === 'tRNS') {
      trns = body;
    } else if (type === 'IDAT') {
      idat.push(body);
    } else if (type === 'IEND') {
      ended = true;
      break;
    } else if (type.charCodeAt(0) & 0x20) {
      continue; // ancillary chunk (lower-case first letter): safe to ignore
    } else {
      throw new Error(`${name}: unsupported PNG: unknown critical chunk ${type}`);
    }
  }
  if (colorType < 0) throw new Error(`${name}: corrupt PNG (no IHDR)`);
  if (!ended) throw new Error(`${name}: truncated PNG (no IEND chunk)`);
  if (!idat.length) throw new Error(`${name}: corrupt PNG (no image data)`);
  if (colorType === 3 && !palette) throw new Error(`${name}: corrupt PNG (palette image without PLTE)`);
  const fileChannels = CHANNELS_OF[colorType];
  const stride = width * fileChannels;
  let raw: Uint8Array;
  try {
    raw = zlib.inflateSync(Buffer.concat(idat));
  } catch (err) {
    throw new Error(`${name}: corrupt PNG (image data does not inflate: ${(err as Error).message})`);
  }
  if (raw.length < height * (stride + 1)) {
    throw new Error(`${name}: truncated PNG (image data holds ${raw.length} bytes, ${width}x${height} needs ${height * (stride + 1)})`);
  }
  const px = unfilter(raw, height, stride, fileChannels, name);
  if (colorType !== 3) return { width, height, channels: fileChannels, data: px };
  // Palette -> RGB(A).
  const pal = palette as Uint8Array;
  const entries = pal.length / 3;
  const ch = trns ? 4 : 3;
  const data = new Uint8Array(width * height * ch);
  for (let i = 0; i < width * height; i++) {
    const k = px[i];
    if (k >= entries) throw new Error(`${name}: corrupt PNG (pixel ${i} uses palette entry ${k} of ${entries})`);
    data[i * ch] = pal[3 * k];
    data[i * ch + 1] = pal[3 * k + 1];
    data[i * ch + 2] = pal[3 * k + 2];
    if (trns) data[i * ch + 3] = k < trns.length ? trns[k] : 255;
  }
  return { width, height, channels: ch, data };
}
