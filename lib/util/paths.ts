import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { sha256Bytes } from './hash';
import { hostTag, writerGone } from './lock';

let root: string | null = null;

/** The kit's root folder (the one holding its package.json), from source or from dist/. */
export function repoRoot(): string {
  if (root) return root;
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'dit-kit') return (root = dir);
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the dit-kit root above ${__dirname}`);
    dir = up;
  }
}

/** The temporary file of an atomic write: `<file>.tmp-<pid>-<host>-<random>`, so the next start can tell whose it is. */
function tempName(file: string): string {
  return `${file}.tmp-${process.pid}-${hostTag()}-${crypto.randomBytes(4).toString('hex')}`;
}

/** A temporary file of another host that is older than this was left by a killed writer (no write takes this long). */
const FOREIGN_TEMP_STALE_MS = 6 * 3600 * 1000;

/**
 * Removes the temporary files that atomic writes of `file` left behind when their process
 * was killed (kill -9, power loss): those of this host whose process is gone, and those of
 * other hosts older than six hours. Returns the removed paths.
 */
export function cleanStaleTemps(file: string): string[] {
  const dir = path.dirname(file);
  const base = path.basename(file);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(`${base}.tmp-`)) continue;
    const rest = name.slice(base.length + 5);
    // <pid>-<host>-<hex>, or the older <pid>-<milliseconds> (written on this machine).
    const m = /^(\d+)-(.+)-([0-9a-f]{8})$/.exec(rest) ?? /^(\d+)-(\d+)$/.exec(rest);
    if (!m) continue;
    const full = path.join(dir, name);
    // The older names were written on this machine only.
    const gone = writerGone(full, m.length === 3 ? hostTag() : m[2], Number(m[1]), FOREIGN_TEMP_STALE_MS);
    if (!gone) continue;
    fs.rmSync(full, { force: true });
    removed.push(full);
  }
  return removed;
}

const cleaned = new Set<string>();

/** fsync of a directory, so a rename in it survives a power loss; filesystems that cannot (EINVAL, EISDIR, EPERM) are let be. */
function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EBADF') throw err;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes a file atomically and durably: a temporary file beside it is written in full and
 * fsynced, renamed over the target, and the directory fsynced, so a crash or power loss
 * leaves the old file or the new one, never a mix; a failed write (ENOSPC) removes its
 * temporary file and leaves the old file as it was. Temporary files of killed writers are
 * removed on the first write to the same target (cleanStaleTemps).
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  const key = path.resolve(file);
  if (!cleaned.has(key)) {
    cleaned.add(key);
    cleanStaleTemps(file);
  }
  const tmp = tempName(file);
  try {
    const fd = fs.openSync(tmp, 'wx');
    try {
      const buf = typeof data === 'string' ? Buffer.from(data) : data;
      for (let off = 0; off < buf.length; ) off += fs.writeSync(fd, buf, off, buf.length - off);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dir);
}

/**
 * Writes a folder of one data file (weights) and the JSON manifest that describes it:
 * the old manifest goes first and the new one last, each write atomic, so a crash never
 * pairs a manifest with data it does not describe. `manifest` builds it from the data's
 * file name, sha256 and size.
 */
export function writeManifestFolder<M>(
  dir: string, names: { data: string; manifest: string }, data: Uint8Array,
  manifest: (written: { file: string; sha256: string; bytes: number }) => M,
): M {
  fs.mkdirSync(dir, { recursive: true });
  fs.rmSync(path.join(dir, names.manifest), { force: true });
  writeFileAtomic(path.join(dir, names.data), data);
  const m = manifest({ file: names.data, sha256: sha256Bytes(data), bytes: data.length });
  writeFileAtomic(path.join(dir, names.manifest), JSON.stringify(m, null, 1) + '\n');
  return m;
}

/** Parses a JSON file; an unreadable or malformed file is an error that names it. */
export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${file}: cannot read (${(err as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message})`);
  }
}

/**
 * Parses a JSON value stored as text in a file's metadata (a checkpoint's `options`,
 * `rng`, ...); a missing or malformed value is an error naming the file and the field.
 */
export function parseJsonField(file: string, field: string, text: string | undefined): unknown {
  if (text === undefined) throw new Error(`${file}: metadata '${field}' is missing`);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: metadata '${field}' is not valid JSON (${(err as Error).message})`);
  }
}

/** What a non-regular file is, for error messages. */
function fileKind(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'a special file';
}

/**
 * Checks that `file` (symlinks followed) is a regular file and returns its stats.
 * Pipes and devices are refused: opening a FIFO blocks until a writer comes, and
 * /dev/zero or /dev/urandom never end. `what` names the expected content in the
 * error ("tensor file", "checkpoint").
 */
export function assertRegularFile(file: string, what = 'file'): fs.Stats {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new Error(`${file}: no such file`);
    throw new Error(`${file}: cannot read (${(err as Error).message})`);
  }
  checkRegular(file, st, what);
  return st;
}

/** The check of assertRegularFile on stats already taken (e.g. fstat of an open descriptor). */
export function checkRegular(file: string, st: fs.Stats, what = 'file'): void {
  if (st.isFile()) return;
  const kind = fileKind(st);
  const tail = st.isDirectory() ? '' : '; only regular files are read';
  throw new Error(`${file}: is ${kind}, not a ${what}${tail}`);
}
