// Random-access byte sources. Readers work on these instead of a whole Buffer so a
// checkpoint larger than what fs.readFileSync allows (2 GiB) can still be read piece
// by piece (DiT-XL/2 in float32 is 2.7 GB).
import * as fs from 'fs';
import { assertRegularFile, checkRegular } from '../util/paths';

// Re-exported so the package API offers it as io.assertRegularFile.
export { assertRegularFile };

export interface ByteSource {
  /** Names the source in error messages (a path, or '<buffer>'). */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes from `offset`; throws if the range runs past the end. */
  read(offset: number, length: number): Uint8Array;
  close(): void;
}

function checkRange(src: ByteSource, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new Error(`${src.name}: invalid read of ${length} bytes at ${offset}`);
  }
  if (offset + length > src.size) {
    throw new Error(
      `${src.name}: truncated file: needs bytes ${offset}..${offset + length} but the file has ${src.size}`,
    );
  }
}

/** A source over bytes in memory; reads are zero-copy views. */
export function bufferSource(buf: Uint8Array, name = '<buffer>'): ByteSource {
  const src: ByteSource = {
    name,
    size: buf.length,
    read(offset, length) {
      checkRange(src, offset, length);
      return buf.subarray(offset, offset + length);
    },
    close() {},
  };
  return src;
}

/** Largest single read; Node refuses buffers over 2 GiB from one readSync call. */
const CHUNK = 1 << 30;

/**
 * A source over an open file; each read copies from disk. Call close() when done.
 * Only regular files are opened (see assertRegularFile): `what` names the expected
 * content in that error.
 */
export function fileSource(path: string, what = 'file'): ByteSource {
  assertRegularFile(path, what);
  // O_NONBLOCK so that a path swapped for a FIFO after the check cannot block the
  // open; fstat then checks what was actually opened. No effect on regular files.
  const opened = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  let size: number;
  try {
    const st = fs.fstatSync(opened);
    checkRegular(path, st, what);
    size = st.size;
  } catch (err) {
    fs.closeSync(opened);
    throw err;
  }
  let fd: number | null = opened;
  const src: ByteSource = {
    name: path,
    size,
    read(offset, length) {
      checkRange(src, offset, length);
      if (fd === null) throw new Error(`${path}: read after close`);
      // Own ArrayBuffer at offset 0: Buffer.allocUnsafe would hand out a slice of Node's
      // shared pool, and readers that view `.buffer` would see unrelated bytes.
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const n = fs.readSync(fd, out, done, Math.min(CHUNK, length - done), offset + done);
        if (n <= 0) throw new Error(`${path}: file shrank while reading (at byte ${offset + done})`);
        done += n;
      }
      return out;
    },
    close() {
      if (fd !== null) fs.closeSync(fd);
      fd = null;
    },
  };
  return src;
}

/**
 * Runs fn on a source for a path or bytes, closing a file source afterwards. A path
 * must be a regular file; `what` names the expected content in that error.
 */
export function withSource<T>(input: string | Uint8Array | ByteSource, fn: (src: ByteSource) => T, what = 'file'): T {
  if (typeof input !== 'string' && !(input instanceof Uint8Array)) return fn(input);
  const src = typeof input === 'string' ? fileSource(input, what) : bufferSource(input);
  try {
    return fn(src);
  } finally {
    src.close();
  }
}
