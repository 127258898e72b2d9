import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { appendResults, appendResultsOrKeep, filterResults, readResults, readResultsAndPending, REGISTRY_LOCK, RESULT_COLUMNS } from '../lib/results/registry';
import { repoRoot } from '../lib/util/paths';
import { deadPid, tempDirs } from './helpers';

const tmp = tempDirs('dit-results-');

/** Runs `dit ARGS` in this process: its exit code, what it logged (lines) and what it wrote to stderr. */
async function dit(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const { main } = await import('../lib/cli');
  const lines: string[] = [];
  let err = '';
  const log = console.log;
  const write = process.stderr.write;
  console.log = (s: string) => lines.push(s);
  process.stderr.write = ((s: string) => ((err += String(s)), true)) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, out: lines.join('\n'), err };
  } finally {
    console.log = log;
    process.stderr.write = write;
  }
}

test('rows round-trip through csv-parse with numbers, empties and quoted text', () => {
  const f = path.join(tmp(), 'e.csv');
  appendResults(f, [
    { experiment: 'e', model: 'mini-B/4', variant: 'adaln-zero', fid: 12.5, precision: 0.75, train_step: 1000, git_commit: 'abc,"def"' },
    { experiment: 'e', model: 'mini-S/8', fid: null, sfid: Number.NaN },
  ]);
  const rows = readResults(f);
  assert.equal(rows.length, 2);
  assert.equal(rows[0].fid, 12.5);
  assert.equal(rows[0].train_step, 1000);
  assert.equal(rows[0].git_commit, 'abc,"def"');
  assert.equal(rows[1].fid, null);
  assert.equal(rows[1].sfid, null);
  assert.deepEqual(filterResults(rows, { model: 'mini-B/4' }).length, 1);
  assert.equal(fs.readFileSync(f, 'utf8').split('\n')[0], RESULT_COLUMNS.join(','));
});

test('unknown columns and foreign files are refused', () => {
  const f = path.join(tmp(), 'e.csv');
  assert.throws(() => appendResults(f, [{ experiment: 'e', fidd: 3 } as never]), /unknown column 'fidd'/);
  fs.writeFileSync(f, 'a,b\n1,2\n');
  assert.throws(() => appendResults(f, [{ experiment: 'e' }]), /header does not match/);
  assert.throws(() => readResults(path.join(tmp(), 'missing.csv')), /not found/);
});

test('two processes appending at once never corrupt the file', async () => {
  const f = path.join(tmp(), 'race.csv');
  const child = path.join(repoRoot(), 'test/fixtures/results-writer.js');
  const dist = path.join(__dirname, '..');
  const startAt = String(Date.now() + 1500);
  const run = (tag: string) => new Promise<number>((resolve) => spawn(process.execPath, [child, dist, f, tag, '150', startAt], { stdio: 'inherit' }).on('exit', (c) => resolve(c ?? 1)));
  assert.deepEqual(await Promise.all([run('a'), run('b')]), [0, 0]);
  const text = fs.readFileSync(f, 'utf8');
  assert.equal(text.split('\n').filter((l) => l.startsWith('experiment,')).length, 1, 'header written once');
  const rows = readResults(f);
  assert.equal(rows.length, 300);
  assert.equal(new Set(rows.map((r) => r.cell)).size, 300);
  assert.ok(rows.every((r) => r.git_commit === 'x, "quoted"'));
  assert.ok(!fs.existsSync(`${f}.lock`));
});

test('an append waits while another process holds the lock', async () => {
  const f = path.join(tmp(), 'held.csv');
  fs.writeFileSync(`${f}.lock`, 'someone else');
  const child = spawn(process.execPath, [path.join(repoRoot(), 'test/fixtures/results-writer.js'), path.join(__dirname, '..'), f, 'w', '1', '0'], { stdio: 'inherit' });
  const exited = new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
  await new Promise((r) => setTimeout(r, 700));
  assert.ok(!fs.existsSync(f), 'wrote while the lock was held');
  fs.rmSync(`${f}.lock`);
  assert.equal(await exited, 0);
  assert.equal(readResults(f).length, 1);
});

test('dit results prints a filtered table and JSON rows', async () => {
  const dir = tmp();
  appendResults(path.join(dir, 'a.csv'), [
    { experiment: 'a', model: 'mini-S/8', variant: 'adaln-zero', fid: 50 },
    { experiment: 'a', model: 'mini-XL/2', variant: 'adaln', fid: 20 },
  ]);
  const json = await dit('results', '--dir', dir, '--where', 'variant=adaln', '--json');
  assert.equal(json.code, 0);
  const table = await dit('results', '--dir', dir, '--columns', 'model,fid');
  assert.equal(table.code, 0);
  assert.equal((await dit('results', '--dir', dir, '--where', 'nope=1')).code, 2);
  assert.equal(JSON.parse(json.out).model, 'mini-XL/2');
  assert.match(table.out.split('\n')[0], /^model\s+fid/);
  assert.match(table.out, /mini-S\/8\s+50/);
  assert.match(table.out, /2 row\(s\) from 1 file/);
});

// ---- the registry under faults ---------------------------------------------------------

const HEADER = RESULT_COLUMNS.join(',');
/** A complete CSV row with these values (the rest empty). */
const csvRow = (v: Partial<Record<(typeof RESULT_COLUMNS)[number], string | number>>) => RESULT_COLUMNS.map((c) => (v[c] === undefined ? '' : String(v[c]))).join(',');

test('a torn last row is skipped with a warning naming the file and line, and never glued to the next append', () => {
  const f = path.join(tmp(), 'torn.csv');
  const good = csvRow({ experiment: 'e', cell: 'a', fid: 1.5 });
  // What a kill or ENOSPC in the middle of a plain append leaves: half a row, no line end.
  fs.writeFileSync(f, `${HEADER}\n${good}\n${csvRow({ experiment: 'e', cell: 'b', fid: 2.5 }).slice(0, 40)}`);
  const warnings: string[] = [];
  const rows = readResults(f, { warn: (m) => warnings.push(m) });
  assert.deepEqual(rows.map((r) => r.cell), ['a']);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: torn last row \\(40 bytes without a line end.*skipped.*npx dit-kit results --repair `));
  // Appending moves the torn fragment aside first: the new row is whole.
  const moved: string[] = [];
  appendResults(f, [{ experiment: 'e', cell: 'c', fid: 3.5 }], { warn: (m) => moved.push(m) });
  assert.match(moved[0], /:3: torn last row .* moved to .*torn\.csv\.rejected-.*\.txt before appending/);
  const after = readResults(f, { warn: (m) => assert.fail(m) });
  assert.deepEqual(after.map((r) => [r.cell, r.fid]), [['a', 1.5], ['c', 3.5]]);
  const aside = fs.readdirSync(path.dirname(f)).filter((n) => n.includes('.rejected-'));
  assert.equal(aside.length, 1);
  assert.match(fs.readFileSync(path.join(path.dirname(f), aside[0]), 'utf8'), /# line 3: torn last row/);
});

test('dit results and dit results --repair on a torn registry', async () => {
  const dir = tmp();
  const f = path.join(dir, 'e.csv');
  const bad = csvRow({ experiment: 'e', cell: 'x', fid: 'twelve' });
  fs.writeFileSync(f, `${HEADER}\n${csvRow({ experiment: 'e', model: 'mini-S/8', cell: 'a', fid: 50 })}\n${bad}\n${csvRow({ experiment: 'e', cell: 'b' }).slice(0, 30)}`);
  // Every later command still works: the table has the good row, stderr names the bad ones.
  const table = await dit('results', '--dir', dir, '--columns', 'model,fid');
  assert.equal(table.code, 0);
  assert.match(table.out, /mini-S\/8\s+50/);
  assert.match(table.err, /e\.csv:3: column 'fid' is not a number: 'twelve'/);
  assert.match(table.err, /e\.csv:4: torn last row/);
  const repair = await dit('results', '--repair', f);
  assert.equal(repair.code, 0);
  assert.match(repair.out, /e\.csv:3: column 'fid' is not a number/);
  assert.match(repair.out, /moved 2 row\(s\) to .*e\.csv\.rejected-.*\.txt; 1 row\(s\) kept/);
  const again = await dit('results', '--repair', f);
  assert.equal(again.code, 0);
  assert.match(again.out.split('\n')[0], /nothing to repair \(1 row\(s\)/);
  assert.equal((await dit('results', '--repair', f, '--json')).code, 2);
  assert.equal(fs.readFileSync(f, 'utf8'), `${HEADER}\n${csvRow({ experiment: 'e', model: 'mini-S/8', cell: 'a', fid: 50 })}\n`);
  assert.deepEqual(readResults(f, { warn: (m) => assert.fail(m) }).map((r) => r.cell), ['a']);
});

test('an append that fails half way (ENOSPC) leaves the registry as it was', () => {
  const f = path.join(tmp(), 'full.csv');
  appendResults(f, [{ experiment: 'e', cell: 'a', fid: 1 }]);
  const before = fs.readFileSync(f);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const realFs = require('fs');
  const w = realFs.writeSync, ws = realFs.writeFileSync, af = realFs.appendFileSync, op = realFs.openSync;
  const full = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  const isLock = (p: unknown) => /\.lock($|\.)/.test(String(p));
  // Whichever call writes the registry, half of it lands, then the disk is full (the lock itself is let be).
  const lockFds = new Set<number>();
  realFs.openSync = (p: string, ...rest: unknown[]) => {
    const fd = op(p, ...rest);
    if (isLock(p)) lockFds.add(fd);
    else lockFds.delete(fd);
    return fd;
  };
  realFs.writeSync = (fd: number, buf: Uint8Array | string, off?: number, len?: number, ...rest: unknown[]) => {
    if (lockFds.has(fd)) return w(fd, buf, off, len, ...rest);
    const b = typeof buf === 'string' ? Buffer.from(buf) : buf;
    w(fd, b, typeof off === 'number' ? off : 0, Math.floor((typeof len === 'number' ? len : b.length) / 2));
    throw full();
  };
  const half = (real: (p: unknown, d: string | Uint8Array, o?: unknown) => void) => (p: unknown, d: string | Uint8Array, o?: unknown) => {
    if (isLock(p)) return real(p, d, o);
    real(p, typeof d === 'string' ? d.slice(0, d.length >> 1) : d.subarray(0, d.length >> 1), o);
    throw full();
  };
  realFs.writeFileSync = half(ws);
  realFs.appendFileSync = half(af);
  try {
    assert.throws(() => appendResults(f, [{ experiment: 'e', cell: 'b', fid: 2 }]), /ENOSPC/);
  } finally {
    Object.assign(realFs, { writeSync: w, writeFileSync: ws, appendFileSync: af, openSync: op });
  }
  assert.deepEqual(fs.readFileSync(f), before);
  assert.deepEqual(fs.readdirSync(path.dirname(f)), ['full.csv'], 'no temporary file or lock left');
  assert.deepEqual(readResults(f, { warn: (m) => assert.fail(m) }).map((r) => r.cell), ['a']);
});

test('a lock left by a killed writer on this machine is broken at once', () => {
  const f = path.join(tmp(), 'dead.csv');
  const dead = deadPid();
  fs.writeFileSync(`${f}.lock`, JSON.stringify({ pid: dead, host: os.hostname(), startedAt: new Date().toISOString(), token: 'gone' }));
  const t0 = Date.now();
  const stderr = process.stderr.write;
  const said: string[] = [];
  process.stderr.write = ((s: string) => (said.push(String(s)), true)) as typeof process.stderr.write;
  try {
    appendResults(f, [{ experiment: 'e', cell: 'a' }], { lock: { timeoutMs: 5000 } });
  } finally {
    process.stderr.write = stderr;
  }
  assert.ok(Date.now() - t0 < 2000, `waited ${Date.now() - t0} ms for a dead holder`);
  assert.match(said.join(''), new RegExp(`broke the lock .*dead\\.csv\\.lock: its holder, process ${dead} on .*, is gone: process ${dead} is not running`));
  assert.equal(readResults(f).length, 1);
  assert.ok(REGISTRY_LOCK.timeoutMs > REGISTRY_LOCK.staleMs, 'a writer must outwait the stale threshold');
});

test('rows of one evaluation are written once; rows that could not be locked are kept and added later', () => {
  const f = path.join(tmp(), 'once.csv');
  const row = { experiment: 'e', study: 's', cell: 'c', config_hash: 'h', train_step: 10, sampling_steps: 50, cfg_scale: 1, fid: 3 };
  assert.equal(appendResults(f, [row], { unique: true }).length, 1);
  assert.equal(appendResults(f, [{ ...row, fid: 4 }], { unique: true }).length, 0, 'the same evaluation again');
  assert.equal(appendResults(f, [{ ...row, train_step: 20 }], { unique: true }).length, 1);
  // A live holder on another machine keeps the lock past our wait: the row is kept, not lost.
  fs.writeFileSync(`${f}.lock`, JSON.stringify({ pid: 1, host: 'node-17.cluster', startedAt: new Date().toISOString(), token: 't' }));
  const warned: string[] = [];
  const late = { ...row, train_step: 30 };
  assert.equal(appendResultsOrKeep(f, [late], { unique: true, lock: { timeoutMs: 200 }, warn: (m) => warned.push(m) }).length, 1);
  assert.match(warned[0], /could not lock .*held by process 1 on node-17\.cluster.*kept in .*once\.csv\.pending-.*\.json/);
  assert.equal(readResults(f).length, 2);
  assert.deepEqual(readResultsAndPending(f).map((r) => r.train_step), [10, 20, 30], 'a later run counts the kept row as done');
  fs.rmSync(`${f}.lock`);
  // The next append adds the kept row (once) and removes the pending file.
  appendResults(f, [late, { ...row, train_step: 40 }], { unique: true });
  assert.deepEqual(readResults(f).map((r) => r.train_step), [10, 20, 30, 40]);
  assert.deepEqual(fs.readdirSync(path.dirname(f)), ['once.csv']);
  // Rows without unique (hand-made tables) are appended as given.
  appendResults(f, [{ experiment: 'e' }, { experiment: 'e' }]);
  assert.equal(readResults(f).length, 6);
});

test('dit results counts the rows kept pending beside a registry, and --repair adds them', async () => {
  const dir = tmp();
  const f = path.join(dir, 'p.csv');
  const row = { experiment: 'e', study: 's', cell: 'c', config_hash: 'h', sampling_steps: 50, cfg_scale: 1, fid: 3 };
  appendResults(f, [{ ...row, train_step: 10 }], { unique: true });
  // A live holder on another machine: two rows wait beside the registry.
  fs.writeFileSync(`${f}.lock`, JSON.stringify({ pid: 1, host: 'node-17.cluster', startedAt: new Date().toISOString(), token: 't' }));
  appendResultsOrKeep(f, [{ ...row, train_step: 20 }, { ...row, train_step: 30 }], { unique: true, lock: { timeoutMs: 100 }, warn: () => {} });
  fs.rmSync(`${f}.lock`);
  const cli = async (...args: string[]) => {
    const r = await dit(...args);
    assert.equal(r.code, 0, r.err);
    return r;
  };
  const note = /p\.csv: 2 pending row\(s\) not in the table, in 1 file\(s\) beside it \(a run could not lock it\); the next run adds them, or now: dit results --repair .*p\.csv/;
  const table = (await cli('results', '--dir', dir, '--columns', 'train_step,fid')).out;
  assert.match(table, /^10\s+3\s*$/m);
  assert.match(table, /1 row\(s\) from 1 file\(s\)/);
  assert.match(table, note);
  // --json: stdout stays one row per line; the count goes to stderr.
  const json = await cli('results', '--dir', dir, '--json');
  assert.deepEqual(json.out.split('\n').map((l) => JSON.parse(l).train_step), [10]);
  assert.match(json.err, note);
  assert.match((await cli('results', '--dir', dir, '--where', 'train_step=99')).out, new RegExp(`^no rows match\n.*${note.source}`));
  assert.match((await cli('results', '--repair', f)).out, /p\.csv: added 2 pending row\(s\)/);
  assert.deepEqual(readResults(f).map((r) => r.train_step), [10, 20, 30]);
  assert.deepEqual(fs.readdirSync(dir), ['p.csv']);
  assert.doesNotMatch((await cli('results', '--dir', dir)).out, /pending/);
  // A pending file whose rows the registry already holds (its writer died before removing it) goes too.
  fs.writeFileSync(`${f}.pending-x-1-1.json`, JSON.stringify([{ ...row, train_step: 30 }]));
  assert.match((await cli('results', '--dir', dir)).out, /p\.csv: 1 pending row/);
  assert.match((await cli('results', '--repair', f)).out, /nothing to repair \(3 row\(s\), none torn or malformed, none pending\)/);
  assert.deepEqual(fs.readdirSync(dir), ['p.csv']);
  assert.equal(readResults(f).length, 3);
});

test('writers killed at random moments never leave a torn row', async () => {
  const f = path.join(tmp(), 'kill.csv');
  const child = path.join(repoRoot(), 'test/fixtures/results-writer.js');
  for (let round = 0; round < 6; round++) {
    const c = spawn(process.execPath, [child, path.join(__dirname, '..'), f, `k${round}`, '100000', '0'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 250 + 60 * round));
    c.kill('SIGKILL');
    await new Promise((r) => c.on('exit', r));
  }
  const rows = readResults(f, { warn: (m) => assert.fail(m) });
  assert.ok(rows.length > 0);
  assert.ok(rows.every((r) => r.git_commit === 'x, "quoted"'));
  // The next writer cleans what the killed ones left (a lock, a temporary file).
  appendResults(f, [{ experiment: 'e', cell: 'last' }]);
  assert.deepEqual(fs.readdirSync(path.dirname(f)), ['kill.csv']);
});
