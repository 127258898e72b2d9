// Hostile and corrupt files (test/fixtures/hostile, written by
// scripts/fixtures/make_hostile_files.js): every reader must refuse them with an error
// that names the file and the problem, within bounded time and memory, or, where the
// file is legal but merely unusual, read it correctly without blowing up.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { assertRegularFile, repoRoot } from '../lib/util/paths';
import { HostArray, isMaterialized } from '../lib/io/array';
import { openZip } from '../lib/io/zip';
import { readNpy, readNpz } from '../lib/io/npy';
import { unpickle } from '../lib/io/pickle';
import { readTorchCheckpoint } from '../lib/io/torch';
import { readSafetensors } from '../lib/io/safetensors';
import { readTensorFile } from '../lib/io/tensor_file';

const ROOT = repoRoot();
const HOSTILE = path.join(ROOT, 'test', 'fixtures', 'hostile');
const file = (name: string) => path.join(HOSTILE, name);
const CLI = path.join(__dirname, '..', 'lib', 'cli', 'index.js');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const gen = require(path.join(ROOT, 'scripts', 'fixtures', 'make_hostile_files.js'));

/** Generous for a loaded 2-core machine; a blow-up takes far longer (or never ends). */
const MAX_MS = 5000;
const MAX_GROWTH_MB = 200;

interface Cost {
  ms: number;
  /** Growth of the process's peak RSS (catches a transient gigabyte that was freed again). */
  peakMB: number;
}

function measure<T>(fn: () => T): { value?: T; error?: unknown; cost: Cost } {
  const peak0 = process.resourceUsage().maxRSS;
  const t0 = performance.now();
  let value: T | undefined;
  let error: unknown;
  try {
    value = fn();
  } catch (err) {
    error = err;
  }
  const cost = { ms: performance.now() - t0, peakMB: (process.resourceUsage().maxRSS - peak0) / 1024 };
  return { value, error, cost };
}

function checkCost(what: string, cost: Cost): void {
  assert.ok(cost.ms < MAX_MS, `${what}: took ${cost.ms.toFixed(0)} ms`);
  assert.ok(cost.peakMB < MAX_GROWTH_MB, `${what}: peak RSS grew by ${cost.peakMB.toFixed(0)} MB`);
}

/** fn must throw an Error matching re (not a RangeError: no stack overflow or invalid length), cheaply. */
function refuses(what: string, fn: () => unknown, re: RegExp): void {
  const { error, cost } = measure(fn);
  assert.ok(error instanceof Error, `${what}: expected an error, got none`);
  assert.ok(!(error instanceof RangeError), `${what}: a RangeError leaked out: ${error.message}`);
  assert.match(error.message, re, `${what}: unclear error`);
  checkCost(what, cost);
}

/** fn must succeed cheaply; returns its value. */
function bounded<T>(what: string, fn: () => T): T {
  const { value, error, cost } = measure(fn);
  if (error) throw error;
  checkCost(what, cost);
  return value as T;
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** The message must start with the file's path, then match re. */
const named = (name: string, re: RegExp) => new RegExp(`^${esc(file(name))}(:\\S*)?: .*${re.source}`, 's');

/** A raw deflate stream of `mib` MiB of zeros, ~1 KB per MiB, built without inflating anything. */
function zeroBomb(mib: number): Buffer {
  const chunk = zlib.deflateRawSync(Buffer.alloc(1 << 20), { level: 9, finishFlush: zlib.constants.Z_FULL_FLUSH });
  return Buffer.concat([...Array.from({ length: mib }, () => chunk), zlib.deflateRawSync(Buffer.alloc(0))]);
}

test('zip bombs stop at the declared size or the caller ceiling, without inflating in full', () => {
  // Honest sizes: 16 MiB from 16 KB reads (deflate does 1032:1), unless the caller caps it.
  const a = bounded('bomb.npz', () => readNpz(file('bomb.npz'))).a;
  assert.deepEqual(a.shape, [4 << 20]);
  const capped = /zip entry 'a\.npy': declares 16777344 bytes uncompressed, more than the 1048576 allowed here/;
  refuses('bomb.npz capped', () => readNpz(file('bomb.npz'), { maxBytes: 1 << 20 }), named('bomb.npz', capped));
  refuses('bomb.npz via readTensorFile', () => readTensorFile(file('bomb.npz'), { maxBytes: 1 << 20 }), named('bomb.npz', capped));
  refuses('bomb.npz via openZip', () => openZip(fs.readFileSync(file('bomb.npz')), 'b.npz').read('a.npy', { maxBytes: 1 << 20 }), capped);
  // A size lie: inflation stops just past the declared 1000 bytes.
  refuses('bomb_size_lie.npz', () => readNpz(file('bomb_size_lie.npz')), named('bomb_size_lie.npz', /inflates to more than its declared 1000 bytes/));
  refuses('bomb_ratio.npz', () => readNpz(file('bomb_ratio.npz')), named('bomb_ratio.npz', /declares 4294967294 bytes from \d+ compressed, more than deflate can produce/));
  refuses('bomb.pt', () => readTensorFile(file('bomb.pt')), named('bomb.pt', /'archive\/data\/0': inflates to more than its declared 16 bytes/));
});

test('a gigabyte deflate bomb built in memory is refused in bounded time and memory', () => {
  const raw = zeroBomb(1024);
  assert.ok(raw.length < 1.2e6, `bomb stream is ${raw.length} bytes`);
  const member = (size: number) => gen.zip([{ name: 'a.npy', data: Buffer.alloc(0), raw, size, crc: 0 }]);
  refuses('1 GiB declaring 1 MiB', () => readNpz(member(1 << 20)), /<buffer>: zip entry 'a\.npy': inflates to more than its declared 1048576 bytes/);
  refuses('1 GiB declared, capped', () => openZip(member(2 ** 30)).read('a.npy', { maxBytes: 64 << 20 }), /declares 1073741824 bytes uncompressed, more than the 67108864 allowed here/);
  // Small declared size: a 2 GiB-class lie in a torch storage, read through readTorchCheckpoint.
  const pickle = gen.statePickle([['w', gen.tensorOps(gen.storageOps('0', 4), 0, [4], [1])]]);
  const pt = gen.torchZip(pickle, { 0: { data: Buffer.alloc(16), raw, size: 16 } });
  refuses('1 GiB torch storage', () => readTorchCheckpoint(pt), /inflates to more than its declared 16 bytes/);
});

/** A deflated uint8 .npy of `mib` MiB of zeros, honest about its size (~1 KB per MiB). */
function honestZeroNpy(name: string, mib: number) {
  const header = gen.npy(`{'descr': '|u1', 'fortran_order': False, 'shape': (${mib << 20},), }`, Buffer.alloc(0));
  const raw = Buffer.concat([zlib.deflateRawSync(header, { finishFlush: zlib.constants.Z_FULL_FLUSH }), zeroBomb(mib)]);
  return { name, data: Buffer.alloc(0), raw, size: header.length + (mib << 20), crc: 0 };
}

test('honest zip bombs stop at a default ceiling relative to the file size; the caller or DIT_MAX_INFLATE can raise it', () => {
  // 1 GiB from ~1 MB, every size honest and within deflate's 1032:1: refused before inflating.
  const big = gen.zip([honestZeroNpy('a.npy', 1024)]);
  const ceiling = /zip entry 'a\.npy': inflating its 1073741952 bytes would take the archive's compressed members to 1073741952 bytes, more than the 134217728 \(128 MiB\) allowed for a \d+-byte file \(64x its size, at least 128 MiB, at most 16384 MiB\); a zip bomb\? For a file you trust, raise the limit \(DIT_MAX_INFLATE=BYTES, or the reader's maxInflated option\)/;
  refuses('1 GiB honest npz', () => readNpz(big), ceiling);
  const pickle = gen.statePickle([['w', gen.tensorOps(gen.storageOps('0', 4), 0, [4], [1])]]);
  const { raw, size } = honestZeroNpy('x', 1024);
  refuses('1 GiB honest torch storage', () => readTorchCheckpoint(gen.torchZip(pickle, { 0: { data: Buffer.alloc(0), raw, size, crc: 0 } })),
    /'archive\/data\/0': inflating its 1073741952 bytes .* more than the 134217728 \(128 MiB\) allowed/);
  // The ceiling counts every member of the archive: two of 45 MiB fit, a third does not.
  const three = gen.zip([honestZeroNpy('a.npy', 45), honestZeroNpy('b.npy', 45), honestZeroNpy('c.npy', 45)]);
  refuses('three 45 MiB members', () => readNpz(three), /zip entry 'c\.npy': inflating its 47186048 bytes would take the archive's compressed members to 141558144 bytes, more than the 134217728/);
  // bomb.npz (16 MiB from 16 KB) is within the default; a caller or the environment sets another.
  assert.deepEqual(bounded('bomb.npz', () => readNpz(file('bomb.npz'))).a.shape, [4 << 20]);
  refuses('bomb.npz, maxInflated 8 MiB', () => readNpz(file('bomb.npz'), { maxInflated: 8 << 20 }), named('bomb.npz', /more than the 8388608 \(8 MiB\) allowed here/));
  const env = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(__dirname, '..', 'lib', 'io', 'npy'))}).readNpz(${JSON.stringify(file('bomb.npz'))})`],
    { encoding: 'utf8', env: { ...process.env, DIT_MAX_INFLATE: String(4 << 20) } });
  assert.notEqual(env.status, 0);
  assert.match(env.stderr, /more than the 4194304 \(4 MiB\) allowed here/);
});

test('readTensorFile passes the inflation ceiling on to the zip reader, for torch checkpoints and npz files', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-bomb-'));
  try {
    // A torch.save zip whose one storage is `mib` MiB of float32 zeros from ~1 KB per MiB, every size honest.
    const torchBomb = (name: string, mib: number) => {
      const n = (mib << 20) / 4;
      const pickle = gen.statePickle([['w', gen.tensorOps(gen.storageOps('0', n), 0, [n], [1])]]);
      const p = path.join(dir, name);
      fs.writeFileSync(p, gen.torchZip(pickle, { 0: { data: Buffer.alloc(0), raw: zeroBomb(mib), size: mib << 20, crc: 0 } }));
      return p;
    };
    const pt = torchBomb('bomb16.pt', 16);
    assert.deepEqual(bounded('16 MiB torch storage', () => readTensorFile(pt)).tensors.w.shape, [4 << 20]);
    const lowered = /inflating its 16777216 bytes would take the archive's compressed members to 16777216 bytes, more than the 8388608 \(8 MiB\) allowed here/;
    refuses('16 MiB torch storage, maxInflated 8 MiB', () => readTensorFile(pt, { maxInflated: 8 << 20 }),
      new RegExp(`^${esc(pt)}: zip entry 'archive/data/0': ${lowered.source}`));
    refuses('bomb.npz, maxInflated 8 MiB', () => readTensorFile(file('bomb.npz'), { maxInflated: 8 << 20 }), named('bomb.npz', /more than the 8388608 \(8 MiB\) allowed here/));
    // Without the option, the default ceiling: 1 GiB from ~1 MB is refused before inflating.
    const big = torchBomb('bomb1g.pt', 1024);
    refuses('1 GiB torch storage', () => readTensorFile(big), /'archive\/data\/0': inflating its 1073741824 bytes .* more than the 134217728 \(128 MiB\) allowed for a \d+-byte file/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('truncated, CRC-damaged, lying, overlapping and duplicate zips are refused', () => {
  const cases: Array<[string, RegExp]> = [
    ['truncated.npz', /truncated or corrupt/],
    ['bad_crc.npz', /zip entry 'a\.npy': CRC-32 mismatch \(stored 0x12345678, computed 0x[0-9a-f]{8}\); the file is corrupt/],
    ['stored_size_lie.npz', /zip entry 'a\.npy': truncated: data runs past the end of the file/],
    ['overlap.npz', /zip entry 'a\.npy': data \(bytes \d+\.\.\d+\) overlaps member 'b\.npy'.*zip bomb/],
    ['duplicate.npz', /corrupt zip: two entries are named 'a\.npy'/],
    ['many_entries.npz', /corrupt zip: declares 65535 entries but its central directory \(\d+ bytes\) has room for at most 1/],
  ];
  for (const [name, re] of cases) {
    refuses(name, () => readNpz(file(name)), named(name, re));
    refuses(`${name} via readTensorFile`, () => readTensorFile(file(name)), named(name, re));
  }
});

test('deeply nested and forbidden pickles give clear errors, not stack overflows', () => {
  const pkl = (name: string) => fs.readFileSync(file(name));
  refuses('deep_tuple.pkl', () => unpickle(pkl('deep_tuple.pkl'), undefined, 'deep_tuple.pkl'), /^deep_tuple\.pkl: pickle nests containers more than 1000 deep/);
  refuses('deep_marks.pkl', () => unpickle(pkl('deep_marks.pkl'), undefined, 'deep_marks.pkl'), /^deep_marks\.pkl: pickle nests MARKs more than 1000 deep/);
  refuses('deep_list.pkl', () => unpickle(pkl('deep_list.pkl'), undefined, 'deep_list.pkl'), /^deep_list\.pkl: pickle nests containers more than 1000 deep/);
  refuses('forbidden_eval.pkl', () => unpickle(pkl('forbidden_eval.pkl'), undefined, 'e.pkl'), /^e\.pkl: pickle refers to builtins\.eval; no globals are allowed/);
  refuses('forbidden_stack_global.pkl', () => unpickle(pkl('forbidden_stack_global.pkl'), undefined, 's.pkl'), /^s\.pkl: pickle refers to os\.system/);
  refuses('deep.pt', () => readTensorFile(file('deep.pt')), named('deep.pt', /pickle nests containers more than 1000 deep/));
  refuses('forbidden_global.pt', () => readTensorFile(file('forbidden_global.pt')), named('forbidden_global.pt', /outside a plain state_dict: os\.system/));
  // Inherited names are not storage types: torch.constructor used to pass an `in` check.
  refuses('inherited_name.pt', () => readTensorFile(file('inherited_name.pt')), named('inherited_name.pt', /outside a plain state_dict: torch\.constructor/));

  // Depth built through the memo (each list appended to its parent after the parent was
  // placed) escapes the construction-time count; using it as a key must still be refused.
  const { P, cat } = gen;
  const n = 100000;
  const ops = [P.proto, P.emptyDict, P.emptyList, P.binput(0)];
  for (let i = 1; i < n; i++) ops.push(P.binget(i - 1), P.emptyList, P.binput(i), P.append, Buffer.from('0'));
  ops.push(P.tuple1, P.int(1), P.setitem, P.stop);
  refuses('memo-deep key', () => unpickle(cat(ops), undefined, 'memo.pkl'), /^memo\.pkl: corrupt pickle: unhashable list used as a dict key/);
});

test('damaged or text-protocol legacy (non-zip) torch files say what they are', () => {
  const why: Record<string, RegExp> = { 'legacy.pt': /truncated/, 'legacy_proto0.pt': /pickle protocol 0 or 1 \(text\)/ };
  for (const name of ['legacy.pt', 'legacy_proto0.pt']) {
    const re = named(name, new RegExp(`legacy torch\\.save file \\(torch < 1\\.6.*${why[name].source}`));
    refuses(name, () => readTensorFile(file(name)), re);
    refuses(`${name} via readTorchCheckpoint`, () => readTorchCheckpoint(file(name)), re);
  }
});

test('torch views are checked against their storage; huge shapes are refused before any allocation', () => {
  refuses('view_past_storage.pt', () => readTensorFile(file('view_past_storage.pt')),
    named('view_past_storage.pt', /tensor 'w': view \(offset 2, size \[4\], stride \[1\]\) reaches element 5 of a storage of 4/));
  refuses('stride0_huge.pt', () => readTensorFile(file('stride0_huge.pt')),
    named('stride0_huge.pt', /tensor 'w': size \[8589934592\] has 8589934592 elements, more than the \d+ one array can hold/));
  refuses('huge_shape.pt', () => readTensorFile(file('huge_shape.pt')), named('huge_shape.pt', /tensor 'w': size \[1048576, 1048576, 1048576\] has about 1\.15e\+18 elements/));
  refuses('huge_storage.pt', () => readTensorFile(file('huge_storage.pt')), named('huge_storage.pt', /storage '0' has 16 bytes, needs 4398046511104 for 1099511627776 float32/));
});

test('expanded and many-times-shared torch views are read lazily: listing a small file allocates little', () => {
  const { tensors } = bounded('stride0_big.pt', () => readTensorFile(file('stride0_big.pt')));
  assert.deepEqual(Object.keys(tensors), ['big', 'rows', 'plain']);
  assert.deepEqual(tensors.big.shape, [16384, 16384], 'a 1 GiB expanded view of one float is listed');
  assert.equal(isMaterialized(tensors.big), false);
  assert.equal(isMaterialized(tensors.plain), true, 'an ordinary view is decoded eagerly');
  assert.deepEqual(Array.from(tensors.plain.data as Float32Array), [1, 2, 3]);
  // On access, a lazy view decodes exactly like an eager one.
  assert.equal(isMaterialized(tensors.rows), false);
  assert.deepEqual(Array.from(tensors.rows.data as Float32Array), [1, 2, 3, 1, 2, 3]);
  assert.equal(isMaterialized(tensors.rows), true);
  assert.equal(tensors.rows.data, tensors.rows.data, 'decoded once, then kept');

  // 4096 full views of one 256 KiB storage would be 1 GiB decoded eagerly.
  const shared = bounded('shared_views.pt', () => readTensorFile(file('shared_views.pt')).tensors);
  const names = Object.keys(shared);
  assert.equal(names.length, 4096);
  const eager = names.filter((k) => isMaterialized(shared[k])).length;
  assert.ok(eager >= 1 && eager <= 4, `${eager} views decoded eagerly`);
  const last: HostArray = shared.t4095;
  assert.deepEqual(last.shape, [256, 256]);
  assert.equal(last.data.length, 65536);
  assert.ok((last.data as Float32Array).every((v) => v === 0));
});

test('safetensors with bad offsets, header lengths, shapes and dtypes are refused', () => {
  const cases: Array<[string, RegExp]> = [
    ['st_offsets_past_end.safetensors', /truncated safetensors file: tensors need 4096 data bytes, file has 16/],
    ['st_header_huge.safetensors', /safetensors header length 4611686018427387904 is implausible/],
    ['st_header_past_end.safetensors', /truncated safetensors file: header needs 50000000 bytes, file has 58/],
    ['st_huge_shape.safetensors', /tensor 'w': shape \[1048576, 1048576, 1048576\] has about 1\.15e\+18 elements, more than/],
    ['st_deep_shape.safetensors', /tensor 'w': bad shape \[1 items, some nested\]/],
    ['st_bad_dtype.safetensors', /tensor 'w': dtype "constructor" is not supported/],
  ];
  for (const [name, re] of cases) {
    refuses(name, () => readSafetensors(file(name)), named(name, re));
    refuses(`${name} via readTensorFile`, () => readTensorFile(file(name)), named(name, re));
  }
});

test('npy with huge shapes, short data, nested or huge headers is refused', () => {
  const cases: Array<[string, RegExp]> = [
    ['npy_huge_shape.npy', /\.npy shape \[1099511627776, 1099511627776\] has about 1\.21e\+24 elements, more than/],
    ['npy_shape_vs_data.npy', /truncated \.npy data: needs 4000000 bytes, has 16/],
    ['npy_nested.npy', /bad \.npy header \(nested more than 8 deep/],
    ['npy_header_huge.npy', /\.npy header length 4294967280 is implausible/],
    ['npy_proto_header.npy', /\.npy header has no 'descr'/],
  ];
  for (const [name, re] of cases) {
    refuses(name, () => readNpy(file(name)), named(name, re));
    const inZip = gen.zip([{ name: 'x.npy', data: fs.readFileSync(file(name)) }]);
    refuses(`${name} in an npz`, () => readNpz(inZip), new RegExp(`^<buffer>:x\\.npy: .*${re.source}`));
  }
});

test("tensor names such as '__proto__' and 'constructor' neither vanish nor pollute", () => {
  const values = (t: Record<string, HostArray>) => Object.keys(t).map((k) => [k, Array.from(t[k].data as Float32Array)]);
  const expect = [['__proto__', [1]], ['constructor', [2]], ['toString', [3]]];
  assert.deepEqual(values(readTensorFile(file('proto.pt')).tensors), expect);
  assert.deepEqual(values(readNpz(file('proto.npz'))), expect);
  assert.deepEqual(values(readTensorFile(file('proto.npz')).tensors), expect);
  const st = readSafetensors(file('st_proto.safetensors'));
  assert.deepEqual(values(st.tensors), expect.slice(0, 2));
  assert.equal(st.metadata?.['__proto__'], 'p');
  assert.equal(st.metadata?.['toString'], 's');
  // Nothing leaked into Object.prototype.
  const probe = {} as Record<string, unknown>;
  assert.equal(probe.dtype, undefined);
  assert.equal(probe.shape, undefined);
  assert.equal(Object.getPrototypeOf(probe), Object.prototype);
});

test('FIFOs, devices and directories are refused instead of read', (t) => {
  refuses('/dev/zero', () => readTensorFile('/dev/zero'), /^\/dev\/zero: is a character device, not a tensor file; only regular files are read/);
  refuses('/dev/zero npy', () => readNpy('/dev/zero'), /^\/dev\/zero: is a character device, not a \.npy file/);
  refuses('/dev/zero npz', () => readNpz('/dev/zero'), /^\/dev\/zero: is a character device/);
  refuses('/dev/null', () => readSafetensors('/dev/null'), /^\/dev\/null: is a character device/);
  refuses('a directory', () => readTensorFile(HOSTILE), /is a directory, not a tensor file$/);
  refuses('assertRegularFile', () => assertRegularFile('/dev/zero', 'checkpoint'), /^\/dev\/zero: is a character device, not a checkpoint/);
  refuses('missing', () => assertRegularFile(path.join(HOSTILE, 'nope.pt')), /nope\.pt: no such file$/);
  assert.equal(assertRegularFile(file('proto.pt')).isFile(), true);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-hostile-'));
  try {
    const fifo = path.join(dir, 'pipe.pt');
    const mk = spawnSync('mkfifo', [fifo]);
    if (mk.error || mk.status !== 0) {
      t.skip('mkfifo is not available');
      return;
    }
    // In a child: a regression would block in open() forever, which no in-process timeout can end.
    const script = `
      const io = require(${JSON.stringify(path.join(__dirname, '..', 'lib', 'io'))});
      for (const f of [io.readTensorFile, io.readNpy, io.readNpz, io.readSafetensors, io.readTorchCheckpoint]) {
        try { f(process.argv[1]); console.log('read'); } catch (e) { console.log(e.message); }
      }`;
    const r = spawnSync(process.execPath, ['-e', script, fifo], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.signal, null, 'reading a FIFO hung');
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 5, r.stdout + r.stderr);
    for (const l of lines) assert.match(l, new RegExp(`^${esc(fifo)}: is a FIFO \\(named pipe\\), not a .*; only regular files are read`));
    const cli = spawnSync(process.execPath, [CLI, 'inspect', '--checkpoint', fifo], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, DIT_QUIET: '1' } });
    assert.equal(cli.signal, null, 'dit inspect on a FIFO hung');
    assert.equal(cli.status, 1);
    assert.match(cli.stderr, /is a FIFO \(named pipe\), not a tensor file/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('`dit inspect --checkpoint` reports hostile files clearly and lists expanded views without allocating them', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-hostile-'));
  try {
    // Preloaded into the CLI process: its peak RSS, printed at exit.
    const preload = path.join(dir, 'maxrss.js');
    fs.writeFileSync(preload, "process.on('exit', () => process.stderr.write('\\nmaxrss_kb=' + process.resourceUsage().maxRSS + '\\n'));\n");
    const inspect = (name: string, ...flags: string[]) => {
      const r = spawnSync(process.execPath, ['-r', preload, CLI, 'inspect', '--checkpoint', file(name), ...flags], {
        encoding: 'utf8', timeout: 60_000, env: { ...process.env, DIT_QUIET: '1' },
      });
      assert.equal(r.signal, null, `${name}: dit inspect was killed`);
      const m = /maxrss_kb=(\d+)/.exec(r.stderr);
      return { ...r, peakMB: m ? Number(m[1]) / 1024 : NaN };
    };
    const failures: Array<[string, RegExp]> = [
      ['bomb.pt', /inflates to more than its declared 16 bytes/],
      ['stride0_huge.pt', /8589934592 elements, more than/],
      ['legacy.pt', /legacy torch\.save file .*truncated/],
      ['st_offsets_past_end.safetensors', /truncated safetensors file: tensors need 4096 data bytes/],
      ['deep.pt', /pickle nests containers more than 1000 deep/],
    ];
    for (const [name, re] of failures) {
      const r = inspect(name);
      assert.equal(r.status, 1, `${name}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^dit: ${esc(file(name))}\\S*: .*${re.source}`, 'm'));
    }
    const base = inspect('proto.pt', '--json');
    assert.equal(base.status, 0, base.stderr);
    const big = inspect('stride0_big.pt', '--json');
    assert.equal(big.status, 0, big.stderr);
    const info = JSON.parse(big.stdout.trim());
    assert.deepEqual(info.tensors[0], { name: 'big', dtype: 'float32', shape: [16384, 16384] });
    assert.equal(info.params, 16384 * 16384 + 6 + 3);
    assert.ok(big.peakMB - base.peakMB < MAX_GROWTH_MB, `listing a 1 GiB view took ${big.peakMB.toFixed(0)} MB (a 3-tensor file: ${base.peakMB.toFixed(0)} MB)`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the generator reproduces the committed hostile fixtures', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-hostile-'));
  try {
    const made: Array<{ name: string; deflated: boolean }> = gen.makeHostileFiles(dir);
    assert.deepEqual(made.map((f) => f.name).sort(), fs.readdirSync(HOSTILE).sort());
    for (const f of made) {
      const size = fs.statSync(file(f.name)).size;
      assert.ok(size <= 64 * 1024, `${f.name} is ${size} bytes; fixtures stay small`);
      // Deflated bytes depend on the zlib build; everything else must match exactly.
      if (!f.deflated) assert.ok(fs.readFileSync(path.join(dir, f.name)).equals(fs.readFileSync(file(f.name))), `${f.name} differs`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('malformed JSON in a checkpoint\'s metadata is an error naming the file and the field', async () => {
  const { initBackend } = await import('../lib/backend');
  const { closeRun, train } = await import('../lib/train/trainer');
  const { readTrainingCheckpoint } = await import('../lib/train/checkpoint');
  const { loadModelFile } = await import('../lib/sample/load');
  const { writeSafetensors } = await import('../lib/io/safetensors');
  const { tinyRun } = await import('./helpers');
  await initBackend({ quiet: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-hostile-meta-'));
  try {
    const { options, source } = tinyRun({ steps: 2 });
    closeRun(await train(dir, options, source, { quiet: true }));
    const good = readSafetensors(path.join(dir, 'checkpoint.safetensors'));
    const withMeta = (name: string, change: Record<string, string | undefined>) => {
      const md: Record<string, string> = { ...good.metadata };
      for (const [k, v] of Object.entries(change)) {
        if (v === undefined) delete md[k];
        else md[k] = v;
      }
      const f = path.join(dir, name);
      writeSafetensors(f, good.tensors, md);
      return f;
    };
    const badRng = withMeta('bad-rng.safetensors', { rng: '{"s": [1, 2' });
    refuses('bad rng', () => readTrainingCheckpoint(badRng), new RegExp(`^${esc(badRng)}: metadata 'rng' is not valid JSON \\(`));
    const badOptions = withMeta('bad-options.safetensors', { options: 'not json' });
    refuses('bad options', () => loadModelFile(badOptions), new RegExp(`^${esc(badOptions)}: metadata 'options' is not valid JSON \\(`));
    const noOptions = withMeta('no-options.safetensors', { options: undefined });
    refuses('no options', () => loadModelFile(noOptions), new RegExp(`^${esc(noOptions)}: metadata 'options' is missing`));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an empty sample batch says so', async () => {
  const { imagesFromArray } = await import('../lib/eval/inputs');
  refuses('empty arr_0', () => imagesFromArray({ dtype: 'uint8', shape: [0, 32, 32, 3], data: new Uint8Array(0) }, 'samples.npz'),
    /^samples\.npz: arr_0 holds no images \(shape \[0, 32, 32, 3\]\): an empty batch has nothing to evaluate/);
});
