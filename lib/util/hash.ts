import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

/** sha256 (hex) of bytes in memory. */
export function sha256Bytes(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** sha256 (hex) of a file, streamed in 4 MiB pieces (datasets and weights can be GBs). */
export function sha256File(file: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 22);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

// Hashes of this process's sha256FileCached, by absolute path: the size and mtime they were taken at.
const fileHashes = new Map<string, { size: number; mtimeMs: number; sha256: string }>();

/**
 * sha256File, remembered in this process by (absolute path, size, mtime): a weights file
 * loaded again (the SD autoencoder of every evaluation) is not read again just to name
 * it, and a file rewritten since (a new size or mtime) is hashed afresh.
 */
export function sha256FileCached(file: string): string {
  const abs = path.resolve(file);
  const { size, mtimeMs } = fs.statSync(abs);
  const known = fileHashes.get(abs);
  if (known && known.size === size && known.mtimeMs === mtimeMs) return known.sha256;
  const sha256 = sha256File(abs);
  fileHashes.set(abs, { size, mtimeMs, sha256 });
  return sha256;
}
