import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoRoot } from '../lib/util/paths';
import {
  HostArray,
  bf16ToF32,
  checkedNumel,
  isMaterialized,
  lazyHostArray,
  nameTable,
  ownEntry,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  fromBytes,
  hostArray,
  numel,
  toBytes,
  toFloat32,
  toInt32,
} from '../lib/io/array';
import { crc32, openZip, readZip, writeZip } from '../lib/io/zip';
import { decodeNpy, encodeNpy, readNpy, readNpz, writeNpz } from '../lib/io/npy';
import { PyDict, PyTuple, unpickle } from '../lib/io/pickle';
import { readTorchCheckpoint, readTorchStateDict } from '../lib/io/torch';
import { encodeSafetensors, readSafetensors, writeSafetensors } from '../lib/io/safetensors';
import { readTensorFile } from '../lib/io/tensor_file';

const FIX = path.join(repoRoot(), 'test', 'fixtures', 'io');
const fixture = (name: string) => path.join(FIX, name);
const fixtureBytes = (name: string) => fs.readFileSync(fixture(name));

interface Expected {
  dtype: string;
  shape: number[];
  values: Array<number | string>;
}
const EXPECTED: Record<string, Record<string, unknown>> = JSON.parse(fs.readFileSync(fixture('expected.json'), 'utf8'));
const expectedOf = (file: string) => EXPECTED[file] as Record<string, Expected>;

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'dit-io-'));
}

function decodeExpected(v: number | string): number {
  if (v === 'nan') return NaN;
  if (v === 'inf') return Infinity;
  if (v === '-inf') return -Infinity;
  return v as number;
}

/** Exact comparison against a fixture entry: dtype, shape, container type and every value (incl. -0 and NaN). */
function assertMatches(a: HostArray, exp: Expected, what: string): void {
  assert.equal(a.dtype, exp.dtype, `${what}: dtype`);
  assert.deepEqual(a.shape, exp.shape, `${what}: shape`);
  assert.equal(a.data.length, exp.values.length, `${what}: length`);
  const holder = {
    float32: Float32Array,
    float16: Float32Array,
    bfloat16: Float32Array,
    float64: Float64Array,
    int64: BigInt64Array,
    int32: Int32Array,
    int16: Int16Array,
    int8: Int8Array,
    uint8: Uint8Array,
    bool: Uint8Array,
  }[exp.dtype]!;
  assert.ok(a.data instanceof holder, `${what}: data is ${a.data.constructor.name}, expected ${holder.name}`);
  for (let i = 0; i < exp.values.length; i++) {
    const got: number | bigint = a.data[i];
    if (exp.dtype === 'int64') {
      assert.equal(got, BigInt(exp.values[i] as string), `${what}[${i}]`);
      continue;
    }
    const e = decodeExpected(exp.values[i]);
    if (Number.isNaN(e)) {
      assert.ok(Number.isNaN(got as number), `${what}[${i}]: expected NaN, got ${got}`);
      continue;
    }
    const want = ['float32', 'float16', 'bfloat16'].includes(exp.dtype) ? Math.fround(e) : e;
    assert.ok(Object.is(got, want), `${what}[${i}]: got ${String(got)}, expected ${want}`);
  }
}

function assertSameArray(a: HostArray, b: HostArray, what: string): void {
  assert.equal(a.dtype, b.dtype, `${what}: dtype`);
  assert.deepEqual(a.shape, b.shape, `${what}: shape`);
  assert.equal(a.data.length, b.data.length, `${what}: length`);
  for (let i = 0; i < a.data.length; i++) {
    const x = a.data[i];
    const y = b.data[i];
    if (typeof x === 'number' && Number.isNaN(x)) assert.ok(Number.isNaN(y as number), `${what}[${i}]`);
    else assert.ok(Object.is(x, y), `${what}[${i}]: ${String(x)} vs ${String(y)}`);
  }
}

/** One array of every dtype, with edge values, for round trips. */
function everyDtype(): Record<string, HostArray> {
  return {
    f32: hostArray('float32', [2, 3], new Float32Array([-1.5, 0, -0, 1e-45, 3.4e38, NaN])),
    f64: hostArray('float64', [3], new Float64Array([Math.PI, -1e-300, Infinity])),
    f16: hostArray('float16', [5], new Float32Array([1, -2.5, 65504, 2 ** -24, -Infinity])),
    bf16: hostArray('bfloat16', [1, 3], new Float32Array([3.140625, -7, 2 ** -126])),
    i64: hostArray('int64', [3], new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 5n])),
    i32: hostArray('int32', [2], new Int32Array([-(2 ** 31), 2 ** 31 - 1])),
    i16: hostArray('int16', [2], new Int16Array([-32768, 32767])),
    i8: hostArray('int8', [2], new Int8Array([-128, 127])),
    u8: hostArray('uint8', [2, 1], new Uint8Array([0, 255])),
    b: hostArray('bool', [3], new Uint8Array([1, 0, 1])),
    scalar: hostArray('float32', [], new Float32Array([2.5])),
    empty: hostArray('int32', [0, 4], new Int32Array(0)),
  };
}

// ---- array.ts ---------------------------------------------------------------

test('array: numel, validation and conversions', () => {
  assert.equal(numel([]), 1);
  assert.equal(numel([2, 0, 3]), 0);
  assert.equal(numel([2, 3, 4]), 24);
  assert.throws(() => hostArray('float32', [2, 2], new Float32Array(3)), /4 elements but data has 3/);
  assert.throws(() => hostArray('int64', [1], new Int32Array(1) as never), /needs BigInt64Array/);
  const i64 = hostArray('int64', [3], new BigInt64Array([-5n, 0n, 2147483647n]));
  assert.deepEqual(Array.from(toInt32(i64)), [-5, 0, 2147483647]);
  assert.deepEqual(Array.from(toFloat32(i64)), [-5, 0, 2147483648]);
  assert.throws(() => toInt32(hostArray('int64', [1], new BigInt64Array([2n ** 31n]))), /2147483648 at flat index 0 does not fit in int32/);
  assert.throws(() => toInt32(hostArray('float32', [1], new Float32Array(1))), /integer or bool/);
  assert.deepEqual(Array.from(toInt32(hostArray('uint8', [2], new Uint8Array([255, 1])))), [255, 1]);
});

test('array: checkedNumel, nameTable and lazyHostArray', () => {
  assert.equal(checkedNumel([2 ** 40, 0], 'z'), 0, 'a zero dimension makes any shape empty');
  assert.equal(checkedNumel([1024, 1024, 4], 'ok'), 4 << 20);
  assert.throws(() => checkedNumel([2 ** 20, 2 ** 20], 'big'), /big \[1048576, 1048576\] has 1099511627776 elements, more than the \d+ one array can hold/);
  assert.throws(() => checkedNumel(new Array(65).fill(1), 'deep'), /deep has 65 dimensions, more than the 64 supported/);
  assert.throws(() => checkedNumel([2.5], 'frac'), /invalid dimension 2\.5/);
  const t = nameTable<number>();
  t['__proto__'] = 1;
  t['constructor'] = 2;
  assert.deepEqual(Object.keys(t), ['__proto__', 'constructor']);
  assert.equal(ownEntry(t, 'toString'), undefined);
  assert.equal(ownEntry({} as Record<string, number>, 'constructor'), undefined, 'never an inherited member');
  let calls = 0;
  const lazy = lazyHostArray('float32', [2], () => {
    calls++;
    return new Float32Array([1, 2]);
  });
  assert.equal(isMaterialized(lazy), false);
  assert.deepEqual(Object.keys(lazy), ['dtype', 'shape', 'data']);
  assert.equal(lazy.data, lazy.data);
  assert.equal(calls, 1, 'computed once');
  assert.equal(isMaterialized(lazy), true);
  const replaced = lazyHostArray('float32', [1], () => assert.fail('not computed when assigned first'));
  replaced.data = new Float32Array([5]);
  assert.deepEqual(Array.from(replaced.data as Float32Array), [5]);
});

test('array: float16 encode/decode is exact on every half and rounds to nearest even', () => {
  for (let h = 0; h < 65536; h++) {
    const x = f16ToF32(h);
    if (Number.isNaN(x)) {
      assert.ok((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0);
      assert.ok(Number.isNaN(f16ToF32(f32ToF16(x))));
      continue;
    }
    assert.equal(f32ToF16(x), h, `half 0x${h.toString(16)}`);
  }
  assert.equal(f16ToF32(0x3c00), 1);
  assert.equal(f16ToF32(0x0001), 2 ** -24);
  assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00); // tie -> even
  assert.equal(f32ToF16(1 + 3 * 2 ** -11), 0x3c02); // tie -> even (up)
  assert.equal(f32ToF16(65519), 0x7bff);
  assert.equal(f32ToF16(65520), 0x7c00); // rounds to infinity
  assert.equal(f32ToF16(2 ** -25), 0); // half of the smallest subnormal -> even (0)
  assert.equal(f32ToF16(Math.fround(2 ** -25 * 1.5)), 1);
  assert.equal(f32ToF16(-0), 0x8000);
});

test('array: bfloat16 encode/decode is exact and rounds to nearest even', () => {
  for (let h = 0; h < 65536; h++) {
    const x = bf16ToF32(h);
    if (Number.isNaN(x)) continue;
    assert.equal(f32ToBf16(x), h, `bf16 0x${h.toString(16)}`);
  }
  assert.equal(f32ToBf16(1 + 2 ** -8), 0x3f80); // tie -> even
  assert.equal(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82);
  assert.ok(Number.isNaN(bf16ToF32(f32ToBf16(NaN))));
});

test('array: fromBytes/toBytes round-trip every dtype and check lengths', () => {
  for (const [k, a] of Object.entries(everyDtype())) {
    assertSameArray(fromBytes(a.dtype, a.shape, toBytes(a), k), a, k);
  }
  assert.throws(() => fromBytes('float32', [3], new Uint8Array(11), 'w'), /w: float32 \[3\] needs 12 bytes of data, found 11/);
});

// ---- zip.ts -------------------------------------------------------------------

test('zip: CRC-32 check value and chunked continuation', () => {
  const data = Buffer.from('123456789');
  assert.equal(crc32(data), 0xcbf43926);
  assert.equal(crc32(data.subarray(4), crc32(data.subarray(0, 4))), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
});

test('zip: write/read round-trip, with and without zip64 records', () => {
  const files = {
    'a.txt': Buffer.from('hello'),
    'dir/ü.bin': new Uint8Array([0, 1, 2, 255]),
    empty: new Uint8Array(0),
    big: new Uint8Array(100_003).map((_, i) => (i * 7) & 0xff),
  };
  for (const forceZip64 of [false, true]) {
    const buf = writeZip(files, { forceZip64 });
    const back = readZip(buf);
    assert.deepEqual([...back.keys()], Object.keys(files));
    for (const [k, v] of Object.entries(files)) assert.deepEqual(Buffer.from(back.get(k)!), Buffer.from(v), k);
    const z = openZip(buf);
    assert.equal(z.entry('big').size, 100_003);
  }
  assert.throws(() => writeZip([{ name: 'x', data: new Uint8Array(1) }, { name: 'x', data: new Uint8Array(1) }]), /duplicate entry 'x'/);
});

test('zip: reads a zip64 archive written by Info-ZIP (zip -fz)', () => {
  const buf = fixtureBytes('zip64.zip');
  assert.ok(buf.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06])), 'fixture has a zip64 end record');
  const back = readZip(buf);
  const exp = EXPECTED['zip64.zip'] as Record<string, string>;
  assert.deepEqual([...back.keys()], Object.keys(exp));
  for (const [k, v] of Object.entries(exp)) assert.equal(Buffer.from(back.get(k)!).toString('utf8'), v);
});

test('zip: non-zip, truncated and corrupt archives give clear errors', () => {
  assert.throws(() => openZip(Buffer.from('just some text, not an archive'), 'notes.txt'), /notes\.txt: not a zip archive/);
  const buf = writeZip({ 'a.bin': new Uint8Array(200).fill(9) });
  assert.throws(() => openZip(buf.subarray(0, buf.length - 30), 'cut.zip'), /cut\.zip: .*truncated/);
  const bad = Buffer.from(buf);
  bad[40] ^= 0xff; // inside a.bin's data
  assert.throws(() => openZip(bad, 'flip.zip').read('a.bin'), /flip\.zip: zip entry 'a\.bin': CRC-32 mismatch/);
  assert.equal(openZip(bad).read('a.bin', { verify: false })[40 - 30 - 5], 9 ^ 0xff);
  assert.throws(() => openZip(buf).read('nope'), /no entry 'nope'/);
});

test('zip: reads deflate entries (np.savez_compressed) and detects corrupt deflate data', () => {
  const buf = fixtureBytes('arrays_compressed.npz');
  const z = openZip(buf);
  assert.ok(z.entries.every((e) => e.method === 8), 'fixture entries are deflated');
  const bad = Buffer.from(buf);
  const e = z.entry('f32.npy');
  const at = z.dataOffset(e) + Math.floor(e.compressedSize / 2);
  bad[at] ^= 0x55;
  assert.throws(() => openZip(bad, 'bad.npz').read('f32.npy'), /bad\.npz: zip entry 'f32\.npy'.*(corrupt|CRC)/);
});

// ---- pickle.ts -------------------------------------------------------------------

test('pickle: protocol 2 opcodes decode to plain values', () => {
  // pickle.dumps({'a': [1, -2**70, 1.5, 'é', (1, 2, 3), None, True, False, 300, 70000, -5, ()],
  //               'b': {'c': 2**63}, 'l': [[], {}]}, protocol=2)
  const hex =
    '80027d71002858010000006171015d7102284b018a090000000000000000c0473ff80000000000005802000000c3a971034b014b024b038771044e88894d2c014a701101004afbffffff296558010000006271057d710658010000006371078a090000000000000080007358010000006c71085d7109285d710a7d710b65752e';
  const v = unpickle(Buffer.from(hex, 'hex')) as PyDict;
  assert.ok(v instanceof PyDict);
  assert.deepEqual([...v.map.keys()], ['a', 'b', 'l']);
  const a = v.get('a') as unknown[];
  assert.equal(a[0], 1);
  assert.equal(a[1], -(2n ** 70n));
  assert.equal(a[2], 1.5);
  assert.equal(a[3], 'é');
  assert.ok(a[4] instanceof PyTuple);
  assert.deepEqual((a[4] as PyTuple).items, [1, 2, 3]);
  assert.deepEqual(a.slice(5, 11), [null, true, false, 300, 70000, -5]);
  assert.deepEqual((a[11] as PyTuple).items, []);
  assert.equal((v.get('b') as PyDict).get('c'), 2n ** 63n);
  const l = v.get('l') as unknown[];
  assert.deepEqual(l[0], []);
  assert.ok(l[1] instanceof PyDict);
});

test('pickle: protocol 4 (FRAME, MEMOIZE, bytes, sets) decodes; globals are refused by default', () => {
  // pickle.dumps({'a': [1, -2**70, 1.5, 'é', b'xy', (1, 2, 3), None, True, False, 300, 70000, -5],
  //               'b': {'c': 2**63}, 's': {1, 2}}, protocol=4)
  const hex =
    '80049567000000000000007d94288c0161945d94284b018a090000000000000000c0473ff80000000000008c02c3a99443027879944b014b024b0387944e88894d2c014a701101004afbffffff658c0162947d948c0163948a09000000000000008000738c0173948f94284b014b0290752e';
  const v = unpickle(Buffer.from(hex, 'hex')) as PyDict;
  const a = v.get('a') as unknown[];
  assert.equal(a[1], -(2n ** 70n));
  assert.deepEqual(Array.from(a[4] as Uint8Array), [0x78, 0x79]);
  assert.deepEqual([...(v.get('s') as Set<unknown>)], [1, 2]);
  // pickle.dumps(os.getcwd, protocol=4): STACK_GLOBAL
  const fn = Buffer.from('80049514000000000000008c05706f736978948c066765746377649493942e', 'hex');
  assert.throws(() => unpickle(fn, undefined, 'f.pkl'), /f\.pkl: .*posix\.getcwd/);
  assert.throws(() => unpickle(Buffer.from(hex, 'hex').subarray(0, 60), undefined, 'cut.pkl'), /cut\.pkl: truncated pickle/);
  assert.throws(() => unpickle(Buffer.from([0x80, 0x02, 0xff]), undefined, 'x'), /unsupported pickle opcode 0xff/);
  assert.throws(() => unpickle(Buffer.from([0x80, 0x02, 0x2e]), undefined, 'x'), /stack underflow/);
});

// ---- torch.ts: real torch.save fixtures ---------------------------------------------

test('torch: state_dict values, dtypes, upcasting, strides and shared storage match torch exactly', () => {
  const exp = expectedOf('state_dict.pt');
  const ck = readTorchCheckpoint(fixture('state_dict.pt'));
  assert.deepEqual(Object.keys(ck.tensors), Object.keys(exp), 'keys in state_dict order');
  assert.deepEqual(ck.skipped, []);
  for (const [k, e] of Object.entries(exp)) assertMatches(ck.tensors[k], e, `state_dict.pt:${k}`);
  // Views with strides and offsets, written out explicitly so a regression is obvious.
  const t = ck.tensors;
  assert.deepEqual(Array.from(t.transposed.data as Float32Array), [10, 13, 11, 14, 12, 15]);
  assert.deepEqual(Array.from(t.shared_a.data as Float32Array), [-1.5, -1.25, -1, -0.75]);
  assert.deepEqual(Array.from(t.shared_b.data as Float32Array), [-0.5, -0.25, 0, 0.75, 1, 1.25]);
  assert.deepEqual(Array.from(t.shared_c.data as Float32Array), [-1, 0.25, 1.5, 2.75]);
  assert.deepEqual(Array.from(t.half_step.data as Float32Array), [0.25, 0.75, 1.25, 1.75]);
  assert.deepEqual(t.scalar.shape, []);
  assert.deepEqual(t.empty.shape, [0, 3]);
  // Tensors sharing a storage come back as independent copies.
  (t.shared_a.data as Float32Array)[0] = 99;
  assert.equal((t.shared_b.data as Float32Array)[0], -0.5);
  assert.ok(Object.is((t.f16.data as Float32Array)[5], -0));
});

test('torch: decoded tensors do not alias the input buffer', () => {
  const buf = fixtureBytes('linear.pt');
  const sd = readTorchStateDict(buf);
  const before = Array.from(sd.weight.data as Float32Array);
  buf.fill(0);
  assert.deepEqual(Array.from(sd.weight.data as Float32Array), before);
});

test('torch: a module state_dict (with _metadata set by BUILD) reads', () => {
  const sd = readTorchStateDict(fixture('linear.pt'));
  for (const [k, e] of Object.entries(expectedOf('linear.pt'))) assertMatches(sd[k], e, `linear.pt:${k}`);
});

test('torch: wrapped checkpoints need a key when ambiguous; non-tensor leaves are skipped and reported', () => {
  const exp = EXPECTED['wrapped.pt'] as Record<string, Record<string, Expected>>;
  for (const key of ['model', 'ema']) {
    const sd = readTorchStateDict(fixture('wrapped.pt'), { key });
    assert.deepEqual(Object.keys(sd), ['w', 'b']);
    for (const [k, e] of Object.entries(exp[key])) assertMatches(sd[k], e, `wrapped.pt:${key}/${k}`);
  }
  // {model, ema, ...} is how DiT's train.py saves: EMA by default, as its sample.py reads.
  const dflt = readTorchCheckpoint(fixture('wrapped.pt'));
  assert.equal(dflt.chosen, 'ema');
  assert.deepEqual(dflt.tensors, readTorchStateDict(fixture('wrapped.pt'), { key: 'ema' }));
  assert.throws(() => readTorchStateDict(fixture('wrapped.pt'), { key: 'opt' }), /no entry 'opt' \(top-level keys: model, ema, step, lr, name\)/);
  assert.throws(() => readTorchStateDict(fixture('wrapped.pt'), { key: 'step' }), /entry 'step' is a int, not a state_dict/);
  const mixed = readTorchCheckpoint(fixture('mixed.pt'));
  assert.deepEqual(Object.keys(mixed.tensors), ['w']);
  assertMatches(mixed.tensors.w, expectedOf('mixed.pt').w, 'mixed.pt:w');
  assert.deepEqual(mixed.skipped, ['epoch (int)', 'tag (str)']);
});

test('torch: pickles with globals outside a plain state_dict are refused, naming the global', () => {
  const cases: Array<[string, string]> = [
    ['forbidden_counter.pt', 'collections.Counter'],
    ['forbidden_class.pt', '__main__.Config'],
    ['forbidden_call.pt', 'posix.getcwd'],
  ];
  for (const [file, global] of cases) {
    const re = new RegExp(`${file.replace('.', '\\.')}.*pickle content outside a plain state_dict: ${global.replace('.', '\\.')}`);
    assert.throws(() => readTorchStateDict(fixture(file)), re);
    assert.throws(() => readTensorFile(fixture(file)), re);
  }
});

test('torch: truncated and corrupt checkpoints give clear errors', () => {
  const buf = fixtureBytes('state_dict.pt');
  assert.throws(() => readTorchStateDict(buf.subarray(0, buf.length - 200)), /truncated/);
  assert.throws(() => readTorchStateDict(buf.subarray(0, 0)), /empty file/);
  assert.throws(() => readTorchStateDict(Buffer.from('not a checkpoint at all')), /not a torch checkpoint/);
  assert.throws(() => readTorchStateDict(Buffer.from([0x80, 0x02, 0x8a, 0x0a])), /legacy torch\.save file \(torch < 1\.6.*truncated/);

  // A flipped byte in a storage: caught by the CRC, readable when verification is off.
  const z = openZip(buf);
  const entry = z.entry('state_dict/data/0');
  const flipped = Buffer.from(buf);
  flipped[z.dataOffset(entry)] ^= 0x01;
  assert.throws(() => readTorchStateDict(flipped), /state_dict\/data\/0'?: CRC-32 mismatch/);
  assert.ok(readTorchStateDict(flipped, { verify: false }).f32);

  // Rebuilt archives: a truncated data.pkl, a missing storage, a short storage, no data.pkl.
  const files = readZip(buf);
  const rebuild = (edit: (m: Map<string, Uint8Array>) => void) => {
    const m = new Map(files);
    edit(m);
    return writeZip([...m].map(([name, data]) => ({ name, data })));
  };
  assert.throws(
    () => readTorchStateDict(rebuild((m) => m.set('state_dict/data.pkl', m.get('state_dict/data.pkl')!.subarray(0, 300)))),
    /state_dict\/data\.pkl: truncated pickle/,
  );
  assert.throws(() => readTorchStateDict(rebuild((m) => m.delete('state_dict/data/0'))), /storage '0' is missing from the archive/);
  assert.throws(
    () => readTorchStateDict(rebuild((m) => m.set('state_dict/data/0', new Uint8Array(8)))),
    /storage '0' has 8 bytes, needs 48 for 12 float32/,
  );
  assert.throws(() => readTorchStateDict(rebuild((m) => m.delete('state_dict/data.pkl'))), /not a torch\.save checkpoint \(no data\.pkl/);
});

// ---- torch.ts: hand-built archives for cases torch does not write small --------------

/** Builds a protocol-2 data.pkl holding {name: tensor view} like torch.save does. */
function tensorPickle(
  tensors: Array<{ name: string; storage: string; key: string; numel: number; offset: number; size: number[]; stride: number[] }>,
): Uint8Array {
  const out: number[] = [0x80, 0x02, 0x7d]; // PROTO 2, EMPTY_DICT
  const str = (s: string) => {
    const b = Buffer.from(s, 'utf8');
    out.push(0x58, b.length & 0xff, (b.length >> 8) & 0xff, 0, 0, ...b);
  };
  const int = (n: number) => {
    out.push(0x4a);
    const b = Buffer.alloc(4);
    b.writeInt32LE(n);
    out.push(...b);
  };
  const global = (m: string, n: string) => out.push(0x63, ...Buffer.from(`${m}\n${n}\n`, 'latin1'));
  const tuple = (xs: number[]) => {
    out.push(0x28);
    xs.forEach(int);
    out.push(0x74);
  };
  for (const t of tensors) {
    str(t.name);
    global('torch._utils', '_rebuild_tensor_v2');
    out.push(0x28, 0x28); // MARK (args), MARK (persistent id)
    str('storage');
    global('torch', t.storage);
    str(t.key);
    str('cpu');
    int(t.numel);
    out.push(0x74, 0x51); // TUPLE, BINPERSID
    int(t.offset);
    tuple(t.size);
    tuple(t.stride);
    out.push(0x89); // NEWFALSE
    global('collections', 'OrderedDict');
    out.push(0x29, 0x52, 0x74, 0x52, 0x73); // EMPTY_TUPLE REDUCE, TUPLE REDUCE, SETITEM
  }
  out.push(0x2e);
  return Uint8Array.from(out);
}

function torchZip(pkl: Uint8Array, storages: Record<string, Uint8Array>, opts: { byteorder?: string; zip64?: boolean } = {}): Buffer {
  const files = [{ name: 'archive/data.pkl', data: pkl }];
  for (const [k, v] of Object.entries(storages)) files.push({ name: `archive/data/${k}`, data: v });
  if (opts.byteorder) files.push({ name: 'archive/byteorder', data: Buffer.from(opts.byteorder) });
  return writeZip(files, { forceZip64: opts.zip64 });
}

test('torch: hand-built archive with zip64 records, a 3-d permuted view and a byteorder entry', () => {
  const storage = new Float32Array(24).map((_, i) => i);
  // x = arange(24).view(2,3,4).permute(2,0,1): size (4,2,3), stride (1,12,4)
  const pkl = tensorPickle([
    { name: 'x', storage: 'FloatStorage', key: '0', numel: 24, offset: 0, size: [4, 2, 3], stride: [1, 12, 4] },
    { name: 'y', storage: 'FloatStorage', key: '0', numel: 24, offset: 5, size: [2], stride: [7] },
  ]);
  const buf = torchZip(pkl, { '0': new Uint8Array(storage.buffer) }, { byteorder: 'little', zip64: true });
  const sd = readTorchStateDict(buf);
  const want: number[] = [];
  for (let a = 0; a < 4; a++) for (let b = 0; b < 2; b++) for (let c = 0; c < 3; c++) want.push(a + 12 * b + 4 * c);
  assert.deepEqual(sd.x.shape, [4, 2, 3]);
  assert.deepEqual(Array.from(sd.x.data as Float32Array), want);
  assert.deepEqual(Array.from(sd.y.data as Float32Array), [5, 12]);

  const big = torchZip(pkl, { '0': new Uint8Array(storage.buffer) }, { byteorder: 'big' });
  assert.throws(() => readTorchStateDict(big), /byte order is 'big'/);
});

test('torch: views that run past their storage, and one storage with two dtypes, are refused', () => {
  const bytes = new Uint8Array(16);
  const outOfRange = tensorPickle([{ name: 'w', storage: 'FloatStorage', key: '0', numel: 4, offset: 1, size: [2, 2], stride: [2, 1] }]);
  assert.throws(() => readTorchStateDict(torchZip(outOfRange, { '0': bytes })), /tensor 'w': view .* reaches element 4 of a storage of 4/);
  const twoTypes = tensorPickle([
    { name: 'a', storage: 'FloatStorage', key: '0', numel: 4, offset: 0, size: [4], stride: [1] },
    { name: 'b', storage: 'IntStorage', key: '0', numel: 4, offset: 0, size: [4], stride: [1] },
  ]);
  assert.throws(() => readTorchStateDict(torchZip(twoTypes, { '0': bytes })), /storage '0' is used as both float32 and int32/);
  const badType = tensorPickle([{ name: 'c', storage: 'ComplexFloatStorage', key: '0', numel: 2, offset: 0, size: [2], stride: [1] }]);
  assert.throws(() => readTorchStateDict(torchZip(badType, { '0': bytes })), /outside a plain state_dict: torch\.ComplexFloatStorage/);
});

// ---- npy.ts ---------------------------------------------------------------------

test('npz: np.savez and np.savez_compressed fixtures read exactly', () => {
  const exp = expectedOf('arrays.npz');
  for (const file of ['arrays.npz', 'arrays_compressed.npz']) {
    const arrays = readNpz(fixture(file));
    assert.deepEqual(Object.keys(arrays), Object.keys(exp), file);
    for (const [k, e] of Object.entries(exp)) assertMatches(arrays[k], e, `${file}:${k}`);
  }
  assertMatches(readNpy(fixture('plain.npy')), exp.f32, 'plain.npy');
});

test('npy: fortran order, big-endian and unsupported dtypes are refused clearly', () => {
  assert.throws(() => readNpy(fixture('fortran.npy')), /fortran\.npy: fortran_order arrays are not supported/);
  assert.throws(() => readNpy(fixture('bigendian.npy')), /bigendian\.npy: big-endian \.npy data \('>f4'\)/);
  const withHeader = (dict: string, data: Uint8Array, version = 1) => {
    const pre = version === 1 ? 10 : 12;
    let h = dict;
    while ((pre + h.length + 1) % 64) h += ' ';
    h += '\n';
    const head = Buffer.alloc(pre);
    head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
    if (version === 1) head.writeUInt16LE(h.length, 8);
    else head.writeUInt32LE(h.length, 8);
    return Buffer.concat([head, Buffer.from(h, version === 3 ? 'utf8' : 'latin1'), data]);
  };
  assert.throws(() => decodeNpy(withHeader("{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }", new Uint8Array(4)), 'u2.npy'), /u2\.npy: \.npy dtype '<u2' is not supported/);
  assert.throws(
    () => decodeNpy(withHeader("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", new Uint8Array(4))),
    /structured/,
  );
  assert.throws(() => decodeNpy(withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", new Uint8Array(8)), 't.npy'), /t\.npy: truncated \.npy data/);
  assert.throws(() => decodeNpy(withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(8))), /unexpected bytes/);
  assert.throws(() => decodeNpy(Buffer.from('PK\x03\x04 not npy')), /not a \.npy file/);
  // Versions 2.0 and 3.0 use a 4-byte header length.
  const data = new Uint8Array(new Float32Array([1.5, -2]).buffer);
  for (const v of [2, 3]) {
    const a = decodeNpy(withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }", data, v));
    assert.deepEqual(a.shape, [2, 1]);
    assert.deepEqual(Array.from(a.data as Float32Array), [1.5, -2]);
  }
});

test('npy/npz: round-trip every npy dtype; headers are 64-byte aligned; bfloat16 is refused', () => {
  const arrays = everyDtype();
  delete arrays.bf16;
  for (const [k, a] of Object.entries(arrays)) {
    const buf = encodeNpy(a);
    assert.equal((10 + buf.readUInt16LE(8)) % 64, 0, `${k}: header alignment`);
    assertSameArray(decodeNpy(buf), a, k);
  }
  assert.throws(() => encodeNpy(everyDtype().bf16, 'bf'), /bf: \.npy has no bfloat16 type/);
  const dir = tmpDir();
  const file = path.join(dir, 'out.npz');
  writeNpz(file, arrays);
  assert.deepEqual(fs.readdirSync(dir), ['out.npz'], 'atomic write leaves no temp file');
  const back = readNpz(file);
  assert.deepEqual(Object.keys(back), Object.keys(arrays));
  for (const [k, a] of Object.entries(arrays)) assertSameArray(back[k], a, `npz:${k}`);
  const viaSniff = readTensorFile(file);
  assert.equal(viaSniff.format, 'npz');
  fs.rmSync(dir, { recursive: true });
});

// ---- safetensors.ts ---------------------------------------------------------------

function safetensorsBytes(header: unknown, data: Uint8Array, rawHeader?: string): Buffer {
  const json = Buffer.from(rawHeader ?? JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

test('safetensors: a hand-built byte layout decodes exactly', () => {
  const data = Buffer.from([
    0x80, 0x3f, 0x00, 0xc0, // BF16 [1, -2]
    0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // I64 -2
    0x00, 0x3c, 0x00, 0x7c, 0x01, 0x00, // F16 [1, inf, 2^-24]
    0x01, 0x00, // BOOL [true, false]
  ]);
  const header = {
    __metadata__: { format: 'pt', note: 'hand-built' },
    b: { dtype: 'BF16', shape: [2], data_offsets: [0, 4] },
    a: { dtype: 'I64', shape: [1, 1], data_offsets: [4, 12] },
    h: { dtype: 'F16', shape: [3], data_offsets: [12, 18] },
    m: { dtype: 'BOOL', shape: [2], data_offsets: [18, 20] },
  };
  const st = readSafetensors(safetensorsBytes(header, data));
  assert.deepEqual({ ...st.metadata }, { format: 'pt', note: 'hand-built' });
  assert.equal(st.tensors.b.dtype, 'bfloat16');
  assert.deepEqual(Array.from(st.tensors.b.data as Float32Array), [1, -2]);
  assert.equal(st.tensors.a.dtype, 'int64');
  assert.deepEqual(st.tensors.a.shape, [1, 1]);
  assert.equal(st.tensors.a.data[0], -2n);
  assert.deepEqual(Array.from(st.tensors.h.data as Float32Array), [1, Infinity, 2 ** -24]);
  assert.deepEqual(Array.from(st.tensors.m.data as Uint8Array), [1, 0]);
  assert.deepEqual(Object.keys(readSafetensors(safetensorsBytes(header, data), { names: ['h'] }).tensors), ['h']);
  assert.throws(() => readSafetensors(safetensorsBytes(header, data), { names: ['zz'] }), /no tensor named 'zz'/);
});

test('safetensors: round-trip every dtype with metadata, on disk, atomically', () => {
  const arrays = everyDtype();
  const buf = encodeSafetensors(arrays, { step: '42' });
  assert.equal(Number(buf.readBigUInt64LE(0)) % 8, 0, 'header padded to 8 bytes');
  const back = readSafetensors(buf);
  assert.deepEqual({ ...back.metadata }, { step: '42' });
  for (const [k, a] of Object.entries(arrays)) assertSameArray(back.tensors[k], a, `st:${k}`);
  const dir = tmpDir();
  const file = path.join(dir, 'w.safetensors');
  writeSafetensors(file, arrays, { step: '42' });
  assert.deepEqual(fs.readdirSync(dir), ['w.safetensors']);
  const tf = readTensorFile(file);
  assert.equal(tf.format, 'safetensors');
  assert.deepEqual({ ...tf.metadata }, { step: '42' });
  for (const [k, a] of Object.entries(arrays)) assertSameArray(tf.tensors[k], a, `file:${k}`);
  fs.rmSync(dir, { recursive: true });
  assert.throws(() => encodeSafetensors(arrays, { step: 42 as unknown as string }), /metadata 'step' must be a string/);
});

test('safetensors: bad offsets, dtypes, metadata and truncation are refused', () => {
  const d8 = new Uint8Array(8);
  const f = (entries: Record<string, unknown>, data = d8) => () => readSafetensors(safetensorsBytes(entries, data));
  const t = (dtype: string, shape: number[], off: number[]) => ({ dtype, shape, data_offsets: off });
  assert.throws(f({ a: t('F32', [1], [0, 4]), b: t('F32', [1], [4, 8]) }, new Uint8Array(12)), /12|4 bytes not covered/);
  assert.throws(f({ a: t('F32', [1], [0, 4]), b: t('F32', [1], [6, 10]) }, new Uint8Array(10)), /tensor 'b' data_offsets \[6, 10\] leave a gap after byte 4/);
  assert.throws(f({ a: t('F32', [2], [0, 8]), b: t('F32', [1], [4, 8]) }), /overlap/);
  assert.throws(f({ a: t('F32', [3], [0, 8]) }), /tensor 'a': data_offsets span 8 bytes but float32 \[3\] needs 12/);
  assert.throws(f({ a: t('F32', [4], [0, 16]) }), /truncated safetensors file: tensors need 16 data bytes, file has 8/);
  assert.throws(f({ a: t('U16', [4], [0, 8]) }), /dtype "U16" is not supported/);
  assert.throws(f({ a: t('F32', [-2], [0, 8]) }), /bad shape/);
  assert.throws(f({ a: t('F32', [2], [8, 0]) }), /bad data_offsets/);
  assert.throws(f({ __metadata__: { n: 1 }, a: t('F32', [2], [0, 8]) }), /__metadata__ value for 'n' is not a string/);
  assert.throws(() => readSafetensors(safetensorsBytes(null, d8, '{"a": ')), /header is not valid JSON/);
  const ok = safetensorsBytes({ a: t('F32', [2], [0, 8]) }, d8);
  assert.throws(() => readSafetensors(ok.subarray(0, 6)), /truncated safetensors file \(6 bytes/);
  assert.throws(() => readSafetensors(ok.subarray(0, 20)), /truncated safetensors file: header needs/);
  assert.throws(() => readSafetensors(Buffer.from('ffffffffffffffff', 'hex')), /header length .* is implausible/);
});

// ---- checkpoint.ts ---------------------------------------------------------------

test('readTensorFile: sniffs torch, npz and safetensors by content, not extension', () => {
  const dir = tmpDir();
  const copy = (src: string, name: string) => {
    const p = path.join(dir, name);
    fs.copyFileSync(fixture(src), p);
    return p;
  };
  const torch = readTensorFile(copy('state_dict.pt', 'weights.bin'));
  assert.equal(torch.format, 'torch');
  assertMatches(torch.tensors.bf16, expectedOf('state_dict.pt').bf16, 'sniffed torch bf16');
  assert.equal(readTensorFile(copy('arrays_compressed.npz', 'weights.pt')).format, 'npz');
  const ema = readTensorFile(fixture('wrapped.pt'), { key: 'ema' });
  assertMatches(ema.tensors.w, (EXPECTED['wrapped.pt'] as Record<string, Record<string, Expected>>).ema.w, 'ema.w');
  assert.throws(() => readTensorFile(fixture('arrays.npz'), { key: 'ema' }), /the key option applies to torch checkpoints, not npz/);
  fs.rmSync(dir, { recursive: true });
});

test('readTensorFile: missing, empty, truncated and unknown files give errors naming the path', () => {
  const dir = tmpDir();
  const write = (name: string, data: Uint8Array | string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, data);
    return p;
  };
  const missing = path.join(dir, 'nope.pt');
  assert.throws(() => readTensorFile(missing), (e: Error) => e.message === `${missing}: no such file`);
  assert.throws(() => readTensorFile(dir), /is a directory/);
  const empty = write('empty.safetensors', '');
  assert.throws(() => readTensorFile(empty), new RegExp(`${empty}: empty file`));
  const tiny = write('tiny.bin', 'abc');
  assert.throws(() => readTensorFile(tiny), new RegExp(`${tiny}: truncated or unknown tensor file \\(3 bytes\\)`));
  const text = write('notes.txt', 'these are not the tensors you are looking for');
  assert.throws(() => readTensorFile(text), new RegExp(`${text}: unknown tensor file format`));
  const pt = fixtureBytes('state_dict.pt');
  const cut = write('cut.pt', pt.subarray(0, pt.length - 100));
  assert.throws(() => readTensorFile(cut), new RegExp(`${cut}: .*truncated`));
  const cutMid = write('cutmid.pt', pt.subarray(0, 1000));
  assert.throws(() => readTensorFile(cutMid), new RegExp(`${cutMid}: .*truncated`));
  const st = encodeSafetensors({ a: hostArray('float32', [4], new Float32Array(4)) });
  const stCut = write('cut.safetensors', st.subarray(0, st.length - 3));
  assert.throws(() => readTensorFile(stCut), new RegExp(`${stCut}: truncated safetensors file`));
  const otherZip = write('other.zip', writeZip({ 'readme.txt': Buffer.from('hi') }));
  assert.throws(() => readTensorFile(otherZip), /neither a torch checkpoint \(no data\.pkl\) nor an npz \(members: readme\.txt\)/);
  assert.throws(() => readTensorFile(fixture('plain.npy')), /a single \.npy array/);
  const legacy = write('legacy.pt', Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8]));
  assert.throws(() => readTensorFile(legacy), /legacy\.pt: legacy torch\.save file \(torch < 1\.6.*truncated/);
  fs.rmSync(dir, { recursive: true });
});
