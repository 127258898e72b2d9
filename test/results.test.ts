import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { appendResults, filterResults, readResults, RESULT_COLUMNS } from '../lib/results/registry';
import { repoRoot } from '../lib/util/paths';

const made: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-results-'));
  made.push(d);
  return d;
};
test.after(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

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
  const { main } = await import('../lib/cli');
  const dir = tmp();
  appendResults(path.join(dir, 'a.csv'), [
    { experiment: 'a', model: 'mini-S/8', variant: 'adaln-zero', fid: 50 },
    { experiment: 'a', model: 'mini-XL/2', variant: 'adaln', fid: 20 },
  ]);
  const lines: string[] = [];
  const log = console.log;
  console.log = (s: string) => lines.push(s);
  try {
    assert.equal(await main(['results', '--dir', dir, '--where', 'variant=adaln', '--json']), 0);
    assert.equal(await main(['results', '--dir', dir, '--columns', 'model,fid']), 0);
    assert.equal(await main(['results', '--dir', dir, '--where', 'nope=1']), 2);
  } finally {
    console.log = log;
  }
  assert.equal(JSON.parse(lines[0]).model, 'mini-XL/2');
  assert.match(lines[1], /^model\s+fid/);
  assert.match(lines.join('\n'), /mini-S\/8\s+50/);
  assert.match(lines.join('\n'), /2 row\(s\) from 1 file/);
});
