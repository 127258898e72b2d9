// Real data from disk, behind the same ImageDataset interface as the synthetic set:
//   - an ImageNet-style folder (one subfolder per class; label ids follow the sorted
//     class names, as torchvision's ImageFolder, which DiT trains from),
//   - CIFAR-10 binary batches (data_batch_*.bin / test_batch.bin),
//   - ADM-style .npz batches (arr_0 uint8 NHWC, optional arr_1 labels),
//   - a shard folder written by this kit (lib/data/store.ts).
// Images that are not already imageSize x imageSize go through ADM's center_crop_arr.
// Unreadable images are reported by path and skipped, or refused with onError 'throw';
// a label is never attached to another file's pixels.
import * as fs from 'fs';
import * as path from 'path';
import { readNpz } from '../io/npy';
import { toInt32 } from '../io/array';
import { Batch, ImageDataset, MemoryDataset, checkBatchRange, checkIndex, range } from './dataset';
import { IMAGE_EXTENSIONS, readImage } from './image';
import type { RawImage } from './png';
import { centerCropArr } from './resize';
import { isShardFolder, openShardDataset } from './store';

export type OnError = 'skip' | 'throw';

export interface LoaderOptions {
  /** Output side; images of another size are center_crop_arr'ed to it. */
  imageSize?: number;
  /** 'skip' (default): report and leave out unreadable images; 'throw': refuse them. */
  onError?: OnError;
  /** Where skip reports go (default: stderr). */
  log?: (msg: string) => void;
}

export interface SkippedImage {
  path: string;
  reason: string;
}

const defaultLog = (msg: string) => process.stderr.write(msg + '\n');

/** A decoded image as imageSize x imageSize RGB (center_crop_arr when the size differs). */
function fit(img: RawImage, size: number): Uint8Array {
  if (img.width === size && img.height === size) return img.data;
  return centerCropArr(img, size).data;
}

// ---- ImageNet-style folders -----------------------------------------------------------

export interface FolderScan {
  root: string;
  classNames: string[];
  files: string[];
  labels: Int32Array;
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory(); // follows links, as os.walk(followlinks=True)
  } catch {
    return false;
  }
}

function hasImageExtension(name: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());
}

/** Code-point order, as Python's sorted() on str. */
function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Lists an image folder the way torchvision's ImageFolder does: classes are the sorted
 * subfolder names (hidden ones skipped), files are found recursively in sorted walk
 * order, and kept when their extension is an image extension.
 */
export function scanImageFolder(root: string): FolderScan {
  if (!isDir(root)) throw new Error(`${root}: not a folder`);
  const classNames = fs
    .readdirSync(root)
    .filter((n) => !n.startsWith('.') && isDir(path.join(root, n)))
    .sort(byCodePoint);
  if (!classNames.length) throw new Error(`${root}: no class subfolders (expected ROOT/<class>/<image>)`);
  const files: string[] = [];
  const labels: number[] = [];
  classNames.forEach((cls, label) => {
    // sorted(os.walk(dir)): folders in path order, files sorted within each.
    const dirs: [string, string[]][] = [];
    const walk = (d: string) => {
      const names = fs.readdirSync(d);
      dirs.push([d, names.filter((n) => hasImageExtension(n) && !isDir(path.join(d, n))).sort(byCodePoint)]);
      for (const n of names) if (!n.startsWith('.') && isDir(path.join(d, n))) walk(path.join(d, n));
    };
    walk(path.join(root, cls));
    dirs.sort((a, b) => byCodePoint(a[0], b[0]));
    const before = files.length;
    for (const [d, names] of dirs) for (const n of names) {
      files.push(path.join(d, n));
      labels.push(label);
    }
    if (files.length === before) throw new Error(`${path.join(root, cls)}: class folder holds no images (${IMAGE_EXTENSIONS.join(' ')})`);
  });
  return { root, classNames, files, labels: Int32Array.from(labels) };
}

/**
 * An image folder decoded on demand. With onError 'skip', a file that fails to decode
 * is reported once by path, remembered in `skipped`, and its slot in a batch is filled
 * by the next readable file together with that file's own label.
 */
export class ImageFolderDataset implements ImageDataset {
  readonly size: number;
  readonly numClasses: number;
  readonly classNames: string[];
  readonly imageSize: number;
  readonly channels = 3;
  readonly files: string[];
  readonly labels: Int32Array;
  readonly skipped: SkippedImage[] = [];
  private readonly bad = new Set<number>();
  private readonly onError: OnError;
  private readonly log: (msg: string) => void;

  constructor(readonly root: string, opts: LoaderOptions & { imageSize: number }) {
    if (!Number.isSafeInteger(opts.imageSize) || opts.imageSize <= 0) throw new Error(`${root}: imageSize must be a positive integer, got ${opts.imageSize}`);
    const scan = scanImageFolder(root);
    this.files = scan.files;
    this.labels = scan.labels;
    this.classNames = scan.classNames;
    this.numClasses = scan.classNames.length;
    this.size = scan.files.length;
    this.imageSize = opts.imageSize;
    this.onError = opts.onError ?? 'skip';
    this.log = opts.log ?? defaultLog;
  }

  allLabels(): Int32Array {
    return this.labels.slice();
  }

  /** Image i decoded and cropped, or null when it cannot be read (skip mode). */
  tryRead(i: number): Uint8Array | null {
    checkIndex(this.size, i, this.root);
    if (this.bad.has(i)) return null;
    try {
      return fit(readImage(this.files[i]), this.imageSize);
    } catch (err) {
      const reason = (err as Error).message;
      if (this.onError === 'throw') throw err;
      this.bad.add(i);
      this.skipped.push({ path: this.files[i], reason });
      this.log(`skipping unreadable image: ${reason}`);
      return null;
    }
  }

  readBatch(start: number, count: number): Batch {
    checkBatchRange(this.size, start, count, this.root);
    return this.readIndices(range(start, count));
  }

  readIndices(indices: ArrayLike<number>): Batch {
    const stride = this.imageSize * this.imageSize * 3;
    const images = new Uint8Array(indices.length * stride);
    const labels = new Int32Array(indices.length);
    for (let k = 0; k < indices.length; k++) {
      let i = indices[k];
      let img = this.tryRead(i);
      for (let tries = 1; img === null && tries < this.size; tries++) {
        i = (i + 1) % this.size;
        img = this.tryRead(i);
      }
      if (img === null) throw new Error(`${this.root}: no image in the folder could be read`);
      images.set(img, k * stride);
      labels[k] = this.labels[i];
    }
    return { images, labels };
  }

  summary(): string {
    return `${this.size} images in ${this.numClasses} classes` + (this.skipped.length ? `, ${this.skipped.length} unreadable (skipped)` : '');
  }
}

// ---- CIFAR-10 binary batches ------------------------------------------------------------

export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
const CIFAR_RECORD = 1 + 3072;

/** The batch files of a CIFAR-10 folder (or the cifar-10-batches-bin inside it) for a split. */
export function cifarFiles(p: string, split: 'train' | 'test' = 'train'): string[] {
  if (!isDir(p)) return [p];
  const dir = isDir(path.join(p, 'cifar-10-batches-bin')) ? path.join(p, 'cifar-10-batches-bin') : p;
  const names = fs.readdirSync(dir);
  const pick = split === 'train' ? names.filter((n) => /^data_batch_\d+\.bin$/.test(n)) : names.filter((n) => n === 'test_batch.bin');
  pick.sort((a, b) => Number(a.match(/\d+/)?.[0] ?? 0) - Number(b.match(/\d+/)?.[0] ?? 0));
  if (!pick.length) throw new Error(`${dir}: no CIFAR-10 ${split} batches (${split === 'train' ? 'data_batch_*.bin' : 'test_batch.bin'})`);
  return pick.map((n) => path.join(dir, n));
}

export function isCifarFolder(p: string): boolean {
  if (!isDir(p)) return /\.bin$/.test(p) && fs.existsSync(p);
  const dir = isDir(path.join(p, 'cifar-10-batches-bin')) ? path.join(p, 'cifar-10-batches-bin') : p;
  return fs.readdirSync(dir).some((n) => /^(data_batch_\d+|test_batch)\.bin$/.test(n));
}

/**
 * CIFAR-10 in its binary form: records of 1 label byte + 3072 bytes (1024 R, 1024 G,
 * 1024 B, row-major). Labels are read at open (a record with a label outside 0..9 is
 * corrupt: skipped or refused); pixels are read per batch.
 */
export class CifarDataset implements ImageDataset {
  readonly size: number;
  readonly numClasses = 10;
  readonly classNames: string[];
  readonly imageSize: number;
  readonly channels = 3;
  readonly files: string[];
  readonly skipped: SkippedImage[] = [];
  /** Per kept record: file index and record index. */
  private readonly where: Int32Array;
  private readonly labels: Int32Array;

  constructor(p: string, opts: LoaderOptions & { split?: 'train' | 'test' } = {}) {
    this.files = cifarFiles(p, opts.split ?? 'train');
    this.imageSize = opts.imageSize ?? 32;
    const onError = opts.onError ?? 'skip';
    const log = opts.log ?? defaultLog;
    const meta = path.join(path.dirname(this.files[0]), 'batches.meta.txt');
    const names = fs.existsSync(meta) ? fs.readFileSync(meta, 'utf8').split('\n').map((s) => s.trim()).filter(Boolean) : [];
    this.classNames = names.length === 10 ? names : [...CIFAR10_CLASSES];
    const where: number[] = [];
    const labels: number[] = [];
    this.files.forEach((file, fi) => {
      let bytes: Buffer;
      try {
        bytes = fs.readFileSync(file);
      } catch (err) {
        throw new Error(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
      if (bytes.length === 0 || bytes.length % CIFAR_RECORD !== 0) {
        const reason = `${file}: not a CIFAR-10 batch (${bytes.length} bytes is not a multiple of ${CIFAR_RECORD}-byte records; truncated or another format)`;
        if (onError === 'throw') throw new Error(reason);
        this.skipped.push({ path: file, reason });
        log(`skipping unreadable file: ${reason}`);
        return;
      }
      for (let r = 0; r < bytes.length / CIFAR_RECORD; r++) {
        const lab = bytes[r * CIFAR_RECORD];
        if (lab >= 10) {
          const reason = `${file}: record ${r} has label ${lab}, outside 0..9 (corrupt record)`;
          if (onError === 'throw') throw new Error(reason);
          this.skipped.push({ path: `${file}#${r}`, reason });
          log(`skipping unreadable image: ${reason}`);
          continue;
        }
        where.push(fi, r);
        labels.push(lab);
      }
    });
    this.where = Int32Array.from(where);
    this.labels = Int32Array.from(labels);
    this.size = labels.length;
  }

  allLabels(): Int32Array {
    return this.labels.slice();
  }

  readBatch(start: number, count: number): Batch {
    checkBatchRange(this.size, start, count, this.files[0]);
    return this.readIndices(range(start, count));
  }

  readIndices(indices: ArrayLike<number>): Batch {
    const s = this.imageSize;
    const stride = s * s * 3;
    const images = new Uint8Array(indices.length * stride);
    const labels = new Int32Array(indices.length);
    const rec = Buffer.allocUnsafe(3072);
    const fds = new Map<number, number>();
    try {
      for (let k = 0; k < indices.length; k++) {
        const i = indices[k];
        checkIndex(this.size, i, this.files[0]);
        const fi = this.where[2 * i], r = this.where[2 * i + 1];
        let fd = fds.get(fi);
        if (fd === undefined) fds.set(fi, (fd = fs.openSync(this.files[fi], 'r')));
        if (fs.readSync(fd, rec, 0, 3072, r * CIFAR_RECORD + 1) !== 3072) throw new Error(`${this.files[fi]}: truncated at record ${r}`);
        // CHW -> HWC.
        const hwc = new Uint8Array(3072);
        for (let p = 0; p < 1024; p++) {
          hwc[3 * p] = rec[p];
          hwc[3 * p + 1] = rec[1024 + p];
          hwc[3 * p + 2] = rec[2048 + p];
        }
        images.set(fit({ width: 32, height: 32, channels: 3, data: hwc }, s), k * stride);
        labels[k] = this.labels[i];
      }
    } finally {
      for (const fd of fds.values()) fs.closeSync(fd);
    }
    return { images, labels };
  }
}

// ---- ADM-style npz batches ------------------------------------------------------------------

/**
 * An .npz as written by ADM's sampling scripts and reference batches: arr_0 uint8
 * (N, H, W, C), optional arr_1 integer labels. Without labels the set is one class
 * ('unlabelled'). The whole file is read into memory (readNpz).
 */
export function openNpzDataset(file: string, opts: LoaderOptions & { classNames?: string[] } = {}): MemoryDataset {
  const arrays = readNpz(file);
  const x = arrays.arr_0;
  if (!x) throw new Error(`${file}: no arr_0 (expected ADM's layout: arr_0 uint8 NHWC images, optional arr_1 labels)`);
  if (x.dtype !== 'uint8' || x.shape.length !== 4 || ![1, 3].includes(x.shape[3])) {
    throw new Error(`${file}: arr_0 is ${x.dtype}[${x.shape.join(', ')}], expected uint8 (N, H, W, 3) images`);
  }
  const [n, h, w, c] = x.shape;
  let labels = new Int32Array(n);
  let classNames = ['unlabelled'];
  if (arrays.arr_1) {
    const y = arrays.arr_1;
    if (y.shape.length !== 1 || y.shape[0] !== n) throw new Error(`${file}: arr_1 has shape [${y.shape.join(', ')}], expected (${n},) labels`);
    labels = toInt32(y, `${file}: arr_1`);
    let max = -1;
    for (let i = 0; i < n; i++) {
      if (labels[i] < 0) throw new Error(`${file}: arr_1[${i}] = ${labels[i]} is not a class id`);
      max = Math.max(max, labels[i]);
    }
    classNames = opts.classNames ?? Array.from({ length: max + 1 }, (_, k) => `class_${k}`);
    if (classNames.length <= max) throw new Error(`${file}: labels go up to ${max} but ${classNames.length} class names were given`);
  }
  const size = opts.imageSize ?? (h === w ? h : Math.min(h, w));
  const src = x.data as Uint8Array;
  let images: Uint8Array;
  if (h === size && w === size && c === 3) {
    images = src;
  } else {
    images = new Uint8Array(n * size * size * 3);
    for (let i = 0; i < n; i++) {
      let img: RawImage = { width: w, height: h, channels: c, data: src.subarray(i * h * w * c, (i + 1) * h * w * c) };
      if (c === 1) {
        const rgb = new Uint8Array(h * w * 3);
        for (let p = 0; p < h * w; p++) rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = img.data[p];
        img = { width: w, height: h, channels: 3, data: rgb };
      }
      images.set(fit(img, size), i * size * size * 3);
    }
  }
  return new MemoryDataset(images, labels, size, 3, classNames);
}

// ---- any of the above -----------------------------------------------------------------------

export type DatasetKind = 'shard' | 'image-folder' | 'cifar10' | 'npz';

export interface OpenedDataset {
  dataset: ImageDataset;
  kind: DatasetKind;
  /** Unreadable images found so far (filled in as an image folder is read). */
  skipped: () => SkippedImage[];
}

/** Recognises a dataset path: a shard folder, a CIFAR-10 folder or .bin, an .npz, or an image folder. */
export function detectDatasetKind(p: string): DatasetKind {
  if (!fs.existsSync(p)) throw new Error(`${p}: no such file or folder`);
  if (!isDir(p)) {
    if (/\.npz$/i.test(p)) return 'npz';
    if (/\.bin$/i.test(p)) return 'cifar10';
    throw new Error(`${p}: not a dataset (expected a folder, an .npz or a CIFAR-10 .bin)`);
  }
  if (isShardFolder(p)) return 'shard';
  if (isCifarFolder(p)) return 'cifar10';
  return 'image-folder';
}

/**
 * Opens any supported dataset. imageSize is required for image folders (their images
 * come in any size); elsewhere it defaults to the stored size.
 */
export function openDataset(p: string, opts: LoaderOptions & { split?: 'train' | 'test' } = {}): OpenedDataset {
  const kind = detectDatasetKind(p);
  switch (kind) {
    case 'shard': {
      const ds = openShardDataset(p);
      if (opts.imageSize !== undefined && opts.imageSize !== ds.imageSize) {
        throw new Error(`${p}: the stored images are ${ds.imageSize}x${ds.imageSize}, not ${opts.imageSize}; pack the source again at that size`);
      }
      return { dataset: ds, kind, skipped: () => [] };
    }
    case 'cifar10': {
      const ds = new CifarDataset(p, opts);
      return { dataset: ds, kind, skipped: () => ds.skipped };
    }
    case 'npz':
      return { dataset: openNpzDataset(p, opts), kind, skipped: () => [] };
    case 'image-folder': {
      if (opts.imageSize === undefined) throw new Error(`${p}: an image folder needs an imageSize to crop its images to`);
      const ds = new ImageFolderDataset(p, { ...opts, imageSize: opts.imageSize });
      return { dataset: ds, kind, skipped: () => ds.skipped };
    }
  }
}
