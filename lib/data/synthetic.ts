// The kit's embedded default dataset: a procedural, class-conditional image
// generator standing in for ImageNet (nothing can be downloaded here). Each class
// is an object category drawn with anti-aliased signed-distance rendering over a
// textured background, with enough within-class variation (pose, colour, count,
// occlusion, texture) that model capacity matters for generation, while the class
// stays unambiguous for a classifier. Every image is a pure function of
// (seed, index, size), so any slice can be regenerated without the others.
import { Rng, RngState } from '../util/rng';
import { Batch, ImageDataset, checkBatchRange, checkIndex, range } from './dataset';

/** Bump whenever rendering changes: stored datasets with another version are regenerated. */
export const SYNTHETIC_VERSION = 2;

export const SYNTHETIC_CLASSES = [
  'disc',
  'ring',
  'square',
  'triangle',
  'cross',
  'star',
  'crescent',
  'bar',
  'heart',
  'arrow',
] as const;

export const SYNTHETIC_SIZES = [32, 64] as const;

export type SyntheticSize = (typeof SYNTHETIC_SIZES)[number];

export function checkSyntheticSize(size: number): SyntheticSize {
  if (!(SYNTHETIC_SIZES as readonly number[]).includes(size)) {
    throw new Error(`synthetic images are ${SYNTHETIC_SIZES.join(' or ')} pixels square, not ${size}`);
  }
  return size as SyntheticSize;
}

/**
 * Seeds of the synthetic generator. Unlike Rng's (32 bits), they go through streamRng, which
 * mixes both 32-bit halves, so every non-negative safe integer is its own dataset (2^32 is
 * not seed 0). Seeds from configs and flags pass util/rng's checkSeed before they get here;
 * derived ones (the calibration images' seed + 1000) may lie beyond its 32 bits.
 */
export function checkSeed(seed: number): number {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`synthetic seed must be an integer in [0, 2^53 - 1], got ${seed}`);
  return seed;
}

// ---- per-image random streams ---------------------------------------------------

/** murmur3 finaliser: a good 32-bit mix. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** An Rng that depends only on (seed, index, stream): images need no shared state. */
export function streamRng(seed: number, index: number, stream: number): Rng {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  const i = index >>> 0;
  const ih = Math.floor(index / 4294967296) >>> 0;
  let h = fmix32(lo ^ 0x9e3779b9);
  h = fmix32(h ^ hi ^ 0x7f4a7c15);
  h = fmix32(h ^ i);
  h = fmix32(h ^ ih ^ Math.imul(stream + 1, 0x27d4eb2f));
  const s: RngState = [fmix32(h ^ 0x243f6a88), fmix32(h ^ 0x85a308d3), fmix32(h ^ 0x13198a2e), fmix32(h ^ 0x03707344)];
  if (s.every((v) => v === 0)) s[0] = 1;
  return new Rng(s);
}

const K = SYNTHETIC_CLASSES.length;

/**
 * Label of image `index`: each block of K consecutive images holds every class once,
 * in a seeded order, so any prefix is balanced to within one image per class.
 */
export function syntheticLabel(seed: number, index: number): number {
  const block = Math.floor(index / K);
  const rng = streamRng(seed, block, 1);
  const perm = Array.from({ length: K }, (_, i) => i);
  for (let i = K - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  return perm[index % K];
}

// ---- colour -------------------------------------------------------------------

type RGB = [number, number, number];

/** HSV (h in degrees) to RGB in [0, 1]. */
function hsv(h: number, s: number, v: number): RGB {
  h = ((h % 360) + 360) % 360 / 60;
  const i = Math.floor(h);
  const f = h - i;
  const p = v * (1 - s);
  const q = v * (1 - s * f);
  const t = v * (1 - s * (1 - f));
  switch (i) {
    case 0: return [v, t, p];
    case 1: return [q, v, p];
    case 2: return [p, v, t];
    case 3: return [p, q, v];
    case 4: return [t, p, v];
    default: return [v, p, q];
  }
}

/** Rec. 601 luma, the contrast measure a grey-scale eye (or classifier) sees. */
function luma(c: RGB | Float32Array, o = 0): number {
  return 0.299 * c[o] + 0.587 * c[o + 1] + 0.114 * c[o + 2];
}

/** Moves c towards white or black until its luma differs from `bg` by at least `gap`. */
function withContrast(c: RGB, bg: number, gap: number): RGB {
  const l = luma(c);
  if (Math.abs(l - bg) >= gap) return c;
  const up = bg + gap <= 1 && (bg < 0.5 || bg - gap < 0);
  if (up) {
    const t = (bg + gap - l) / (1 - l);
    return [c[0] + t * (1 - c[0]), c[1] + t * (1 - c[1]), c[2] + t * (1 - c[2])];
  }
  const f = Math.max(0, bg - gap) / Math.max(l, 1e-6);
  return [c[0] * f, c[1] * f, c[2] * f];
}

// ---- signed distances (unit scale: each shape fits in a circle of radius ~1) -----
// Exact 2-D distance functions after Inigo Quilez, "2D distance functions".

type Sdf = (x: number, y: number) => number;

function sdTriangle(ax: number, ay: number, bx: number, by: number, cx: number, cy: number): Sdf {
  const e0x = bx - ax, e0y = by - ay, e1x = cx - bx, e1y = cy - by, e2x = ax - cx, e2y = ay - cy;
  const l0 = e0x * e0x + e0y * e0y, l1 = e1x * e1x + e1y * e1y, l2 = e2x * e2x + e2y * e2y;
  const s = Math.sign(e0x * e2y - e0y * e2x);
  return (px, py) => {
    const v0x = px - ax, v0y = py - ay, v1x = px - bx, v1y = py - by, v2x = px - cx, v2y = py - cy;
    const t0 = Math.min(Math.max((v0x * e0x + v0y * e0y) / l0, 0), 1);
    const t1 = Math.min(Math.max((v1x * e1x + v1y * e1y) / l1, 0), 1);
    const t2 = Math.min(Math.max((v2x * e2x + v2y * e2y) / l2, 0), 1);
    const q0x = v0x - e0x * t0, q0y = v0y - e0y * t0;
    const q1x = v1x - e1x * t1, q1y = v1y - e1y * t1;
    const q2x = v2x - e2x * t2, q2y = v2y - e2y * t2;
    const d = Math.min(q0x * q0x + q0y * q0y, q1x * q1x + q1y * q1y, q2x * q2x + q2y * q2y);
    const sg = Math.min(s * (v0x * e0y - v0y * e0x), s * (v1x * e1y - v1y * e1x), s * (v2x * e2y - v2y * e2x));
    return -Math.sqrt(d) * Math.sign(sg);
  };
}

function sdRoundBox(bx: number, by: number, r: number): Sdf {
  return (px, py) => {
    const qx = Math.abs(px) - bx + r;
    const qy = Math.abs(py) - by + r;
    const ox = Math.max(qx, 0), oy = Math.max(qy, 0);
    return Math.min(Math.max(qx, qy), 0) + Math.sqrt(ox * ox + oy * oy) - r;
  };
}

/** Painted cross stripes (shape units): stripe centres every `period` along x, |x| < `extent`. */
interface Stripes {
  period: number;
  width: number;
  extent: number;
}

interface Shape {
  sdf: Sdf;
  stripes?: Stripes;
}

/** A shape of class k with its per-instance parameters drawn from rng. */
function classShape(k: number, rng: Rng): Shape {
  const sdf = classSdf(k, rng);
  if (SYNTHETIC_CLASSES[k] !== 'bar') return { sdf };
  const period = 0.42 + 0.16 * rng.uniform();
  return { sdf, stripes: { period, width: period * (0.35 + 0.1 * rng.uniform()), extent: 0.8 } };
}

function classSdf(k: number, rng: Rng): Sdf {
  const u = (lo: number, hi: number) => lo + (hi - lo) * rng.uniform();
  switch (SYNTHETIC_CLASSES[k]) {
    case 'disc': {
      const r = u(0.85, 1);
      return (x, y) => Math.sqrt(x * x + y * y) - r;
    }
    case 'ring': {
      // The hole stays wide enough to survive 32-pixel rendering of the smallest rings.
      const inner = u(0.45, 0.62);
      const mid = (1 + inner) / 2, half = (1 - inner) / 2;
      return (x, y) => Math.abs(Math.sqrt(x * x + y * y) - mid) - half;
    }
    case 'square': {
      const b = u(0.68, 0.76);
      const a = u(0.92, 1.08);
      return sdRoundBox(b * a, b / a, u(0, 0.12));
    }
    case 'triangle': {
      // Roughly equilateral: apex height jitters so not every triangle is the same.
      const h = u(0.95, 1.1);
      const w = u(0.92, 1.05);
      return sdTriangle(0, -h, -w, 0.6, w, 0.6);
    }
    case 'cross': {
      const bx = u(0.9, 1), by = u(0.26, 0.36);
      return (px, py) => {
        let x = Math.abs(px), y = Math.abs(py);
        if (y > x) { const t = x; x = y; y = t; }
        const qx = x - bx, qy = y - by;
        const kk = Math.max(qy, qx);
        let wx: number, wy: number;
        if (kk > 0) { wx = qx; wy = qy; } else { wx = by - x; wy = -kk; }
        wx = Math.max(wx, 0);
        wy = Math.max(wy, 0);
        return Math.sign(kk) * Math.sqrt(wx * wx + wy * wy);
      };
    }
    case 'star': {
      const r = u(0.98, 1.05), rf = u(0.42, 0.5);
      const k1x = 0.809016994375, k1y = -0.587785252292, k2x = -k1x, k2y = k1y;
      const bax = rf * -k1y, bay = rf * k1x - 1;
      const bb = bax * bax + bay * bay;
      return (px, py) => {
        px = Math.abs(px);
        let d = 2 * Math.max(k1x * px + k1y * py, 0);
        px -= d * k1x;
        py -= d * k1y;
        d = 2 * Math.max(k2x * px + k2y * py, 0);
        px -= d * k2x;
        py -= d * k2y;
        px = Math.abs(px);
        py -= r;
        const h = Math.min(Math.max((px * bax + py * bay) / bb, 0), r);
        const dx = px - bax * h, dy = py - bay * h;
        return Math.sqrt(dx * dx + dy * dy) * Math.sign(py * bax - px * bay);
      };
    }
    case 'crescent': {
      const ra = 1, rb = u(0.8, 0.92), dd = u(0.45, 0.58);
      const a = (ra * ra - rb * rb + dd * dd) / (2 * dd);
      const b = Math.sqrt(Math.max(ra * ra - a * a, 0));
      const shift = 0.25; // centre the visible mass, which sits on the -x side
      return (px, py) => {
        px -= shift;
        py = Math.abs(py);
        if (dd * (px * b - py * a) > dd * dd * Math.max(b - py, 0)) {
          const x = px - a, y = py - b;
          return Math.sqrt(x * x + y * y);
        }
        const x = px - dd;
        return Math.max(Math.sqrt(px * px + py * py) - ra, -(Math.sqrt(x * x + py * py) - rb));
      };
    }
    case 'bar': {
      // An elongated bar (aspect 3-4.5); classShape paints cross stripes on it.
      const hy = u(0.22, 0.32), hx = u(0.95, 1.02);
      return sdRoundBox(hx, hy, u(0, 0.1));
    }
    case 'heart': {
      // The heart spans x in [-0.6, 0.6], y in [0, 1.1]; centre it and fit radius 1.
      const s = u(0.56, 0.62);
      const sq = Math.SQRT2 / 4;
      return (px, py) => {
        const x = Math.abs(px * s);
        const y = -py * s + 0.52;
        let d: number;
        if (y + x > 1) {
          const dx = x - 0.25, dy = y - 0.75;
          d = Math.sqrt(dx * dx + dy * dy) - sq;
        } else {
          const t = 0.5 * Math.max(x + y, 0);
          const ax = x, ay = y - 1, bx = x - t, by = y - t;
          d = Math.sqrt(Math.min(ax * ax + ay * ay, bx * bx + by * by)) * Math.sign(x - y);
        }
        return d / s;
      };
    }
    case 'arrow': {
      const hw = u(0.45, 0.58), base = u(0.05, 0.25), sh = u(0.13, 0.2);
      const head = sdTriangle(1, 0, base, -hw, base, hw);
      const shaft = sdRoundBox((base + 0.02 + 0.95) / 2, sh, 0);
      const mid = (base + 0.02 - 0.95) / 2;
      return (px, py) => Math.min(head(px, py), shaft(px - mid, py));
    }
  }
  throw new Error(`no shape for class ${k}`);
}

/** An irregular occluding blob (not a clean disc, so it is never mistaken for one). */
function blobShape(rng: Rng): Sdf {
  const a2 = 0.12 + 0.12 * rng.uniform(), a3 = 0.08 + 0.1 * rng.uniform();
  const p2 = 2 * Math.PI * rng.uniform(), p3 = 2 * Math.PI * rng.uniform();
  const c2 = Math.cos(p2), s2 = Math.sin(p2), c3 = Math.cos(p3), s3 = Math.sin(p3);
  const ex = 0.75 + 0.5 * rng.uniform();
  return (px, py) => {
    const x = px / ex, y = py * ex;
    const l = Math.sqrt(x * x + y * y);
    if (l < 1e-9) return -0.6;
    // r(th) = 1 + a2 sin(2th + p2) + a3 sin(3th + p3), with the angle sums expanded
    // so no atan2 is needed per sample.
    const c = x / l, s = y / l;
    const sin2 = 2 * s * c, cos2 = c * c - s * s;
    const sin3 = s * (3 - 4 * s * s), cos3 = c * (4 * c * c - 3);
    const r = 1 + a2 * (sin2 * c2 + cos2 * s2) + a3 * (sin3 * c3 + cos3 * s3);
    // Not an exact distance: scaled down so the edge test stays conservative.
    return 0.6 * (l - r);
  };
}

// ---- scene ------------------------------------------------------------------------

interface Placed {
  sdf: Sdf;
  stripes?: Stripes;
  /** Centre and radius in unit image coordinates (the image is [0, 1]^2). */
  cx: number;
  cy: number;
  r: number;
  cos: number;
  sin: number;
}

interface ObjectStyle {
  fill: RGB;
  /** Linear shading: colour *= 1 + shade * (x·dir) in shape units. */
  shade: number;
  sdx: number;
  sdy: number;
  outline: RGB | null;
  /** Outline width in unit image coordinates. */
  outlineW: number;
  /** Luma of the background behind the object (stripes move away from it). */
  bg: number;
}

/** Object count and radius range (fraction of the image side) for 1, 2 or 3 objects. */
const LAYOUTS = [
  { p: 0.5, lo: 0.22, hi: 0.36 },
  { p: 0.3, lo: 0.16, hi: 0.24 },
  { p: 0.2, lo: 0.145, hi: 0.19 },
];

/** Object hue: the class palette hue (36 degrees apart) +- HUE_JITTER/2, or with
 * probability RANDOM_HUE any hue. Neighbouring palettes overlap on purpose. */
const HUE_JITTER = 140;
const RANDOM_HUE = 0.25;

/** Occlusion never hides more than this fraction of an object's area. */
export const MAX_OCCLUSION = 0.3;

/** A reusable renderer: scratch buffers are kept between images for speed. */
export class SyntheticRenderer {
  readonly size: number;
  private readonly canvas: Float32Array;
  private readonly masks: Float32Array[];
  private readonly blob: Float32Array;
  /** Pixel box [x0, x1] x [y0, y1] touched by the last coverage() call. */
  private bx0 = 0;
  private bx1 = -1;
  private by0 = 0;
  private by1 = -1;

  constructor(size: number) {
    this.size = checkSyntheticSize(size);
    this.canvas = new Float32Array(size * size * 3);
    this.masks = [0, 1, 2].map(() => new Float32Array(size * size));
    this.blob = new Float32Array(size * size);
  }

  /**
   * Renders image `index` of the dataset `seed` into out[offset..] (uint8 HWC); returns its label.
   * `objects: false` draws the same background and pixel noise without the class's objects
   * (the calibration ladder's 'background-only' rung: images with nothing to recognise).
   */
  render(seed: number, index: number, out: Uint8Array, offset = 0, opts: { objects?: boolean } = {}): number {
    const label = syntheticLabel(seed, index);
    const rng = streamRng(seed, index, 2);
    const noiseRng = rng.fork(); // pixel noise is drawn last and depends on size
    this.background(rng);

    // Layout: 1-3 objects of the class, kept inside the frame and apart from each other.
    const ux = rng.uniform();
    // No objects: zero placed, so the colour and occluder loops draw nothing. The pixel
    // noise comes from noiseRng, forked above, so it is the same as with the objects.
    let count = opts.objects === false ? 0 : ux < LAYOUTS[0].p ? 1 : ux < LAYOUTS[0].p + LAYOUTS[1].p ? 2 : 3;
    const lay = LAYOUTS[count - 1];
    const placed: Placed[] = [];
    for (let tries = 0; placed.length < count && tries < 40; tries++) {
      const r = lay.lo + (lay.hi - lay.lo) * rng.uniform();
      const m = r * 1.15 + 0.02; // triangle vertices reach 1.21 r: at most a sliver leaves the frame
      const cx = m + (1 - 2 * m) * rng.uniform();
      const cy = m + (1 - 2 * m) * rng.uniform();
      if (placed.some((p) => Math.hypot(p.cx - cx, p.cy - cy) < (p.r + r) * 0.95)) continue;
      const th = 2 * Math.PI * rng.uniform();
      placed.push({ ...classShape(label, rng), cx, cy, r, cos: Math.cos(th), sin: Math.sin(th) });
    }
    count = placed.length;

    // Colour: hue jitters around a class palette (and is sometimes random), so colour is
    // a weak hint, never the answer.
    const classHue = () => label * 36 + 18 + (rng.uniform() - 0.5) * HUE_JITTER;
    const groupHue = classHue();
    const sameHue = rng.uniform() < 0.5;
    const areas = [0, 0, 0];
    for (let o = 0; o < count; o++) {
      const p = placed[o];
      const hue = rng.uniform() < RANDOM_HUE ? 360 * rng.uniform() : sameHue ? groupHue + (rng.uniform() - 0.5) * 30 : classHue();
      const bg = this.localLuma(p.cx, p.cy, p.r);
      const fill = withContrast(hsv(hue, 0.35 + 0.65 * rng.uniform(), 0.45 + 0.55 * rng.uniform()), bg, 0.28);
      const shaded = rng.uniform() < 0.35;
      const sa = 2 * Math.PI * rng.uniform();
      const outlined = rng.uniform() < 0.25;
      const ol = luma(fill) > 0.5 ? 0.05 + 0.2 * rng.uniform() : 0.8 + 0.2 * rng.uniform();
      const style: ObjectStyle = {
        fill,
        shade: shaded ? 0.15 + 0.25 * rng.uniform() : 0,
        sdx: Math.cos(sa),
        sdy: Math.sin(sa),
        outline: outlined ? [ol, ol, ol] : null,
        outlineW: (0.8 + 0.7 * rng.uniform()) / 32,
        bg,
      };
      this.masks[o].fill(0);
      this.drawShape(p, style, this.masks[o]);
      let a = 0;
      for (let i = 0; i < this.masks[o].length; i++) a += this.masks[o][i];
      areas[o] = a;
    }

    // Occluders: irregular blobs that overlap an object's edge by at most MAX_OCCLUSION.
    for (let o = 0; o < count; o++) {
      if (rng.uniform() >= 0.4) continue;
      const p = placed[o];
      const br = p.r * (0.35 + 0.25 * rng.uniform());
      const ang = 2 * Math.PI * rng.uniform();
      const bth = 2 * Math.PI * rng.uniform();
      const blob: Placed = { sdf: blobShape(rng), cx: 0, cy: 0, r: br, cos: Math.cos(bth), sin: Math.sin(bth) };
      const col = hsv(360 * rng.uniform(), 0.6 * rng.uniform(), 0.15 + 0.75 * rng.uniform());
      let dist = p.r * (0.7 + 0.3 * rng.uniform());
      let ok = false;
      for (let step = 0; step < 10; step++) {
        blob.cx = p.cx + Math.cos(ang) * dist;
        blob.cy = p.cy + Math.sin(ang) * dist;
        this.coverage(blob, this.blob, null);
        if (placed.every((_, j) => this.hidden(this.masks[j], areas[j]) <= MAX_OCCLUSION - 0.02)) {
          ok = true;
          break;
        }
        dist += p.r * 0.15;
      }
      if (ok) this.drawShape(blob, { fill: col, shade: 0, sdx: 1, sdy: 0, outline: null, outlineW: 0, bg: 0 }, null);
    }

    // Sensor-like pixel noise and quantisation. The noise is triangular (the sum of two
    // uniforms, std sigma) from an inline mulberry32 stream: this loop touches every
    // byte, and a method call per sample would dominate the render time.
    const amp = 0.03 * noiseRng.uniform() * Math.sqrt(6);
    let st = noiseRng.nextU32();
    const c = this.canvas;
    for (let i = 0; i < c.length; i++) {
      st = (st + 0x6d2b79f5) | 0;
      let z = Math.imul(st ^ (st >>> 15), st | 1);
      z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
      z = (z ^ (z >>> 14)) >>> 0;
      // Two 16-bit uniforms from one 32-bit draw.
      const v = c[i] + amp * (((z >>> 16) + (z & 0xffff)) / 65536 - 1);
      out[offset + i] = v <= 0 ? 0 : v >= 1 ? 255 : Math.round(v * 255);
    }
    return label;
  }

  /** Fraction of an object's area (its coverage mask) that the last blob covers. */
  private hidden(mask: Float32Array, area: number): number {
    if (area <= 0) return 0;
    const n = this.size, blob = this.blob;
    let h = 0;
    for (let y = this.by0; y <= this.by1; y++) {
      for (let i = y * n + this.bx0, e = y * n + this.bx1; i <= e; i++) h += mask[i] * blob[i];
    }
    return h / area;
  }

  /** Mean luma of the background around an object, for the contrast rule. */
  private localLuma(cx: number, cy: number, r: number): number {
    const n = this.size;
    let s = 0;
    const pts = [[0, 0], [r, 0], [-r, 0], [0, r], [0, -r]];
    for (const [dx, dy] of pts) {
      const x = Math.min(n - 1, Math.max(0, Math.floor((cx + dx * 0.7) * n)));
      const y = Math.min(n - 1, Math.max(0, Math.floor((cy + dy * 0.7) * n)));
      s += luma(this.canvas, 3 * (y * n + x));
    }
    return s / pts.length;
  }

  private background(rng: Rng): void {
    const n = this.size;
    const c = this.canvas;
    const base = hsv(360 * rng.uniform(), 0.7 * rng.uniform(), 0.1 + 0.85 * rng.uniform());
    const kind = rng.int(3); // 0 flat, 1 linear gradient, 2 radial gradient
    const jit = (v: number, a: number) => Math.min(1, Math.max(0, v + (rng.uniform() - 0.5) * 2 * a));
    const dv = (rng.uniform() - 0.5) * 0.4;
    const other: RGB = [jit(base[0] + dv, 0.12), jit(base[1] + dv, 0.12), jit(base[2] + dv, 0.12)];
    const ga = 2 * Math.PI * rng.uniform();
    const gx = Math.cos(ga), gy = Math.sin(ga);
    const rcx = rng.uniform(), rcy = rng.uniform();
    const overlay = rng.int(3); // 0 none, 1 value noise, 2 stripes
    // Value noise: a 5x5 lattice of offsets, bilinearly interpolated.
    const G = 5;
    const lattice = new Float32Array(G * G * 3);
    const namp = 0.05 + 0.08 * rng.uniform();
    for (let i = 0; i < lattice.length; i++) lattice[i] = (rng.uniform() - 0.5) * 2 * namp;
    const sa = 2 * Math.PI * rng.uniform();
    const freq = 3 + 5 * rng.uniform(); // cycles per image
    const sph = 2 * Math.PI * rng.uniform();
    const samp = 0.04 + 0.08 * rng.uniform();
    const scx = Math.cos(sa) * freq * 2 * Math.PI, scy = Math.sin(sa) * freq * 2 * Math.PI;
    for (let y = 0; y < n; y++) {
      const fy = (y + 0.5) / n;
      for (let x = 0; x < n; x++) {
        const fx = (x + 0.5) / n;
        let t = 0;
        if (kind === 1) t = Math.min(1, Math.max(0, 0.5 + (fx - 0.5) * gx + (fy - 0.5) * gy));
        else if (kind === 2) t = Math.min(1, Math.hypot(fx - rcx, fy - rcy) / 0.9);
        const o = 3 * (y * n + x);
        for (let ch = 0; ch < 3; ch++) c[o + ch] = base[ch] + (other[ch] - base[ch]) * t;
        if (overlay === 1) {
          const lx = fx * (G - 1), ly = fy * (G - 1);
          const ix = Math.min(G - 2, Math.floor(lx)), iy = Math.min(G - 2, Math.floor(ly));
          const ax = lx - ix, ay = ly - iy;
          for (let ch = 0; ch < 3; ch++) {
            const l00 = lattice[3 * (iy * G + ix) + ch], l01 = lattice[3 * (iy * G + ix + 1) + ch];
            const l10 = lattice[3 * ((iy + 1) * G + ix) + ch], l11 = lattice[3 * ((iy + 1) * G + ix + 1) + ch];
            c[o + ch] += (l00 * (1 - ax) + l01 * ax) * (1 - ay) + (l10 * (1 - ax) + l11 * ax) * ay;
          }
        } else if (overlay === 2) {
          const s = samp * Math.sin(fx * scx + fy * scy + sph);
          for (let ch = 0; ch < 3; ch++) c[o + ch] += s;
        }
      }
    }
  }

  /**
   * Anti-aliased coverage of a placed shape: the distance at the pixel centre decides
   * pixels well inside or outside; pixels near the edge are supersampled 4x4.
   * Writes coverage into `mask` (if given; zeros too, over the whole pixel box) and
   * calls `paint` per covered pixel.
   */
  private coverage(p: Placed, mask: Float32Array | null, paint: ((i: number, x: number, y: number, cov: number, inner: number) => void) | null, innerW = 0): void {
    const n = this.size;
    const R = p.r * n; // radius in pixels
    const x0 = Math.max(0, Math.floor((p.cx - p.r * 1.3) * n) - 1), x1 = Math.min(n - 1, Math.ceil((p.cx + p.r * 1.3) * n) + 1);
    const y0 = Math.max(0, Math.floor((p.cy - p.r * 1.3) * n) - 1), y1 = Math.min(n - 1, Math.ceil((p.cy + p.r * 1.3) * n) + 1);
    this.bx0 = x0;
    this.bx1 = x1;
    this.by0 = y0;
    this.by1 = y1;
    const cx = p.cx * n, cy = p.cy * n, cs = p.cos / R, sn = p.sin / R;
    const sdf = p.sdf;
    const w = innerW * n; // outline width in pixels
    const edge = 0.75 + w;
    for (let py = y0; py <= y1; py++) {
      for (let px = x0; px <= x1; px++) {
        const dx = px + 0.5 - cx, dy = py + 0.5 - cy;
        const d = sdf(dx * cs + dy * sn, -dx * sn + dy * cs) * R;
        let cov: number, inner: number;
        if (d >= 0.75) {
          if (mask) mask[py * n + px] = 0;
          continue;
        }
        if (d <= -edge) {
          cov = 1;
          inner = 1;
        } else {
          let a = 0, b = 0;
          for (let sy = 0; sy < 4; sy++) {
            const ey = dy + (sy - 1.5) / 4;
            for (let sx = 0; sx < 4; sx++) {
              const ex = dx + (sx - 1.5) / 4;
              const ds = sdf(ex * cs + ey * sn, -ex * sn + ey * cs) * R;
              if (ds < 0) a++;
              if (ds < -w) b++;
            }
          }
          if (a === 0) {
            if (mask) mask[py * n + px] = 0;
            continue;
          }
          cov = a / 16;
          inner = b / 16;
        }
        const i = py * n + px;
        if (mask) mask[i] = cov;
        if (paint) paint(i, (dx * cs + dy * sn), (-dx * sn + dy * cs), cov, inner);
      }
    }
  }

  private drawShape(p: Placed, s: ObjectStyle, mask: Float32Array | null): void {
    const c = this.canvas;
    const f = s.fill;
    const ol = s.outline;
    const st = p.stripes;
    const R = p.r * this.size;
    // Stripes move away from the background (lighter when the fill is lighter than it,
    // darker otherwise): stripes close to the background would cut the bar into a row
    // of squares.
    const lighten = luma(f) > s.bg;
    const sc: RGB = lighten ? [f[0] + 0.6 * (1 - f[0]), f[1] + 0.6 * (1 - f[1]), f[2] + 0.6 * (1 - f[2])] : [f[0] * 0.45, f[1] * 0.45, f[2] * 0.45];
    this.coverage(p, mask, (i, x, y, cov, inner) => {
      const g = s.shade ? 1 + s.shade * (x * s.sdx + y * s.sdy) : 1;
      let t = 0; // stripe weight, anti-aliased over one pixel
      if (st && Math.abs(x) < st.extent) {
        const m = (((x + st.period / 2) % st.period) + st.period) % st.period;
        t = Math.min(1, Math.max(0, 0.5 - (Math.abs(m - st.period / 2) - st.width / 2) * R));
      }
      const o = 3 * i;
      for (let ch = 0; ch < 3; ch++) {
        let v = Math.min(1, Math.max(0, (f[ch] + (sc[ch] - f[ch]) * t) * g));
        if (ol) v = ol[ch] + (v - ol[ch]) * (cov > 0 ? inner / cov : 0);
        c[o + ch] += (v - c[o + ch]) * cov;
      }
    }, ol ? s.outlineW : 0);
  }

}

// ---- batches and the procedural dataset -----------------------------------------------

export interface SyntheticSpec {
  seed: number;
  /** Image side: 32 (default) or 64. */
  size?: number;
}

/** Images start..start+count-1 of a synthetic dataset, uint8 NHWC, with labels. */
export function generateSynthetic(spec: SyntheticSpec & { start?: number; count: number }): Batch {
  const size = checkSyntheticSize(spec.size ?? 32);
  const seed = checkSeed(spec.seed);
  const start = spec.start ?? 0;
  if (!Number.isSafeInteger(start) || start < 0 || !Number.isSafeInteger(spec.count) || spec.count < 0) {
    throw new Error(`generateSynthetic: bad range start=${start} count=${spec.count}`);
  }
  const r = new SyntheticRenderer(size);
  const stride = size * size * 3;
  const images = new Uint8Array(spec.count * stride);
  const labels = new Int32Array(spec.count);
  for (let i = 0; i < spec.count; i++) labels[i] = r.render(seed, start + i, images, i * stride);
  return { images, labels };
}

/**
 * Images start..start+count-1 of the synthetic dataset `seed` with their backgrounds and
 * pixel noise but no objects; labels are those the full images would have.
 */
export function renderBackgrounds(seed: number, start: number, count: number, size = 32): Batch {
  const r = new SyntheticRenderer(checkSyntheticSize(size));
  checkSeed(seed);
  if (!Number.isSafeInteger(start) || start < 0 || !Number.isSafeInteger(count) || count < 0) {
    throw new Error(`renderBackgrounds: bad range start=${start} count=${count}`);
  }
  const stride = size * size * 3;
  const images = new Uint8Array(count * stride);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) labels[i] = r.render(seed, start + i, images, i * stride, { objects: false });
  return { images, labels };
}

/**
 * The synthetic dataset rendered on demand (no disk): `num` images of (seed, size).
 * A stored copy (lib/data/store.ts) holds exactly the same bytes.
 */
export class SyntheticDataset implements ImageDataset {
  readonly numClasses = K;
  readonly classNames: string[] = [...SYNTHETIC_CLASSES];
  readonly channels = 3;
  readonly imageSize: number;
  readonly seed: number;
  private readonly renderer: SyntheticRenderer;

  /** Number of images. */
  readonly size: number;

  constructor(spec: SyntheticSpec & { num: number }) {
    if (!Number.isSafeInteger(spec.num) || spec.num < 0) throw new Error(`SyntheticDataset: bad image count ${spec.num}`);
    this.size = spec.num;
    this.imageSize = checkSyntheticSize(spec.size ?? 32);
    this.seed = checkSeed(spec.seed);
    this.renderer = new SyntheticRenderer(this.imageSize);
  }

  allLabels(): Int32Array {
    const out = new Int32Array(this.size);
    for (let i = 0; i < this.size; i++) out[i] = syntheticLabel(this.seed, i);
    return out;
  }

  readBatch(start: number, count: number): Batch {
    checkBatchRange(this.size, start, count, 'synthetic dataset');
    return this.readIndices(range(start, count));
  }

  readIndices(indices: ArrayLike<number>): Batch {
    const stride = this.imageSize * this.imageSize * 3;
    const images = new Uint8Array(indices.length * stride);
    const labels = new Int32Array(indices.length);
    for (let i = 0; i < indices.length; i++) {
      checkIndex(this.size, indices[i], 'synthetic dataset');
      labels[i] = this.renderer.render(this.seed, indices[i], images, i * stride);
    }
    return { images, labels };
  }
}
