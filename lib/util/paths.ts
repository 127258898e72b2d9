import * as fs from 'fs';
import * as path from 'path';

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

/** Write a file atomically: write a temp file beside it, then rename over the target. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
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
