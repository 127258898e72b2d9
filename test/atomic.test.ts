// Atomic writes (writeFileAtomic, used for checkpoints, manifests and the results
// registry): the data and the rename are made durable (fsync of the file before the
// rename, of the directory after it), a failed write (ENOSPC) leaves the old file, and
// temporary files of killed writers are removed on the next start.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../lib/backend';
import { cleanStaleTemps, writeFileAtomic } from '../lib/util/paths';
import { closeRun, train } from '../lib/train/trainer';
import { deadPid, tempDirs, tinyRun } from './helpers';

// The fs module the kit's code calls (its bindings read these properties at call time).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const realFs = require('fs') as typeof fs & Record<string, unknown>;

const tmp = tempDirs('dit-atomic-');
/** Replaces fs[name] while fn runs. */
function patched<K extends keyof typeof fs>(name: K, impl: (real: (typeof fs)[K]) => (typeof fs)[K], fn: () => void): void {
  const real = fs[name];
  realFs[name as string] = impl(real);
  try {
    fn();
  } finally {
    realFs[name as string] = real;
  }
}


test('an atomic write fsyncs the file before the rename and the directory after it', () => {
  const dir = tmp();
  const file = path.join(dir, 'a.bin');
  const events: string[] = [];
  const fds = new Map<number, string>();
  const realOpen = fs.openSync, realFsync = fs.fsyncSync, realRename = fs.renameSync;
  realFs.openSync = ((p: fs.PathLike, ...rest: unknown[]) => {
    const fd = (realOpen as (...a: unknown[]) => number)(p, ...rest);
    fds.set(fd, String(p));
    return fd;
  }) as typeof fs.openSync;
  realFs.fsyncSync = ((fd: number) => {
    events.push(`fsync ${fds.get(fd) === dir ? 'dir' : path.basename(fds.get(fd) ?? '?').replace(/\.tmp-.*/, '.tmp')}`);
    realFsync(fd);
  }) as typeof fs.fsyncSync;
  realFs.renameSync = ((a: fs.PathLike, b: fs.PathLike) => {
    events.push(`rename ${path.basename(String(a)).replace(/\.tmp-.*/, '.tmp')} -> ${path.basename(String(b))}`);
    realRename(a, b);
  }) as typeof fs.renameSync;
  try {
    writeFileAtomic(file, 'hello');
  } finally {
    Object.assign(realFs, { openSync: realOpen, fsyncSync: realFsync, renameSync: realRename });
  }
  assert.deepEqual(events, ['fsync a.bin.tmp', 'rename a.bin.tmp -> a.bin', 'fsync dir']);
  assert.equal(fs.readFileSync(file, 'utf8'), 'hello');
});

test('a write that fails half way (ENOSPC) leaves the old file and no temporary file', () => {
  const dir = tmp();
  const file = path.join(dir, 'ckpt.safetensors');
  writeFileAtomic(file, Buffer.alloc(4096, 1));
  patched('writeSync', (real) => ((fd: number, buf: Uint8Array, off?: number, len?: number) => {
    // Half the bytes reach the disk, then it is full.
    (real as (...a: unknown[]) => number)(fd, buf, off ?? 0, Math.floor((len ?? buf.length) / 2));
    throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  }) as unknown as typeof fs.writeSync, () => {
    assert.throws(() => writeFileAtomic(file, Buffer.alloc(8192, 2)), /ENOSPC/);
  });
  assert.deepEqual(fs.readFileSync(file), Buffer.alloc(4096, 1));
  assert.deepEqual(fs.readdirSync(dir), ['ckpt.safetensors']);
});

test('temporary files of killed writers are removed; live writers\' and other hosts\' recent ones are kept', () => {
  const dir = tmp();
  const file = path.join(dir, 'state.json');
  const dead = deadPid();
  const names = {
    dead: `state.json.tmp-${dead}-${os.hostname()}-0badf00d`,
    legacy: `state.json.tmp-${dead}-1700000000000`,
    live: `state.json.tmp-${process.pid}-${os.hostname()}-0000beef`,
    remote: `state.json.tmp-${dead}-node-17.cluster-12345678`,
    remoteOld: `state.json.tmp-${dead}-node-18.cluster-87654321`,
    other: 'other.json.tmp-1-x-00000000',
  };
  for (const n of Object.values(names)) fs.writeFileSync(path.join(dir, n), 'partial');
  const old = new Date(Date.now() - 7 * 3600_000);
  fs.utimesSync(path.join(dir, names.remoteOld), old, old);
  const removed = cleanStaleTemps(file).map((p) => path.basename(p)).sort();
  assert.deepEqual(removed, [names.dead, names.legacy, names.remoteOld].sort());
  assert.deepEqual(fs.readdirSync(dir).sort(), [names.live, names.remote, names.other].sort());
});

test('a checkpoint write killed half way leaves a temporary file that the next start removes', async () => {
  await initBackend({ quiet: true });
  const dir = tmp();
  const { options, source } = tinyRun({ steps: 2 });
  closeRun(await train(dir, options, source, { quiet: true }));
  const left = path.join(dir, `checkpoint.safetensors.tmp-${deadPid()}-${os.hostname()}-c0ffee00`);
  fs.writeFileSync(left, Buffer.alloc(100));
  closeRun(await train(dir, { ...options, steps: 4 }, source, { quiet: true }));
  assert.ok(!fs.existsSync(left), 'the killed write\'s temporary file is still there');
  assert.deepEqual(fs.readdirSync(dir).sort(), ['checkpoint.safetensors', 'loss.csv']);
});
