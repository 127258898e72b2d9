// Lock files (lib/util/lock.ts): the holder's record, the stale rules (a holder on this
// host that is provably gone; another host's lock only after its stale threshold), waits
// longer than that threshold, and mutual exclusion among real processes breaking a stale lock.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { LockTimeout, lockState, lockSync, parseHolder, tryLock, withLockSync } from '../lib/util/lock';
import { repoRoot } from '../lib/util/paths';
import { deadPid, tempDirs } from './helpers';

const tmp = tempDirs('dit-lock-');

const record = (o: Record<string, unknown>) => JSON.stringify({ pid: 1, host: os.hostname(), startedAt: '2026-01-01T00:00:00.000Z', token: 'feedface', ...o }) + '\n';

/** Sets a file's mtime `ms` into the past. */
function age(file: string, ms: number): void {
  const t = new Date(Date.now() - ms);
  fs.utimesSync(file, t, t);
}

test('a lock records its holder (pid, host, start time, token) and is removed on release', () => {
  const f = path.join(tmp(), 'a.lock');
  const l = tryLock(f, { staleMs: 1000, purpose: 'test' });
  assert.ok(l);
  const h = parseHolder(fs.readFileSync(f, 'utf8'));
  assert.ok(h);
  assert.equal(h.pid, process.pid);
  assert.equal(h.host, os.hostname());
  assert.ok(Math.abs(Date.parse(h.startedAt) - Date.now()) < 60000);
  assert.equal(h.token, l.holder.token);
  assert.equal(h.purpose, 'test');
  assert.equal(tryLock(f, { staleMs: 1000 }), null, 'held by a live holder');
  assert.ok(l.release());
  assert.ok(!fs.existsSync(f));
  assert.deepEqual(fs.readdirSync(path.dirname(f)), [], 'no side files left');
});

test('a lock whose holder on this host is gone is broken at once, with a message', () => {
  const dir = tmp();
  const logs: string[] = [];
  const cases: Array<[string, string, RegExp]> = [
    ['dead', record({ pid: deadPid() }), /process \d+ is not running/],
    // A live pid that is not the holder: another process start time, or a reboot since.
    ['reused', record({ pid: process.pid, procStart: '1' }), /now belongs to another process/],
    ['reboot', record({ pid: process.pid, bootId: 'another-boot' }), /rebooted/],
  ];
  for (const [name, text, why] of cases) {
    if (name !== 'dead' && !fs.existsSync('/proc/self/stat')) continue;
    const f = path.join(dir, `${name}.lock`);
    fs.writeFileSync(f, text);
    const l = tryLock(f, { staleMs: 3600_000, log: (m) => logs.push(m) });
    assert.ok(l, `${name}: not broken`);
    assert.match(logs.pop() ?? '', new RegExp(`broke the lock .*${name}\\.lock: its holder, process \\d+ on ${os.hostname()} since .*, is gone: .*${why.source}`));
    l.release();
  }
});

test('another host\'s lock is broken only when older than its stale threshold; the wait outlasts it', () => {
  const dir = tmp();
  const f = path.join(dir, 'remote.lock');
  fs.writeFileSync(f, record({ host: 'node-17.cluster', pid: 4242 }));
  // Fresh: held, whatever its pid means on this machine.
  assert.equal(tryLock(f, { staleMs: 60000 }), null);
  assert.equal(lockState(f, 60000)?.stale, null);
  let err: unknown;
  try {
    lockSync(f, { staleMs: 60000, timeoutMs: 200 });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof LockTimeout);
  assert.match((err as Error).message, /could not lock .*remote\.lock within .* s: held by process 4242 on node-17\.cluster since 2026-01-01T00:00:00\.000Z; if that process is gone .* remove /);
  // Untouched for longer than the threshold: stale.
  age(f, 120000);
  assert.match(lockState(f, 60000)?.stale ?? '', /has not refreshed it for 1\d\d s \(stale after 60 s\)/);
  const logs: string[] = [];
  const l = tryLock(f, { staleMs: 60000, log: (m) => logs.push(m) });
  assert.ok(l);
  assert.match(logs[0], /node-17\.cluster/);
  l.release();
  // The default wait is longer than the stale threshold: a lock that turns stale while we
  // wait is broken, not given up on.
  fs.writeFileSync(f, record({ host: 'node-17.cluster', pid: 4242 }));
  age(f, 200);
  const t0 = Date.now();
  const w = lockSync(f, { staleMs: 600, log: () => {} });
  assert.ok(Date.now() - t0 >= 300, 'broken before it was stale');
  w.release();
});

test('a lock without a readable record (an old pid-only lock) follows the time rule', () => {
  const f = path.join(tmp(), 'legacy.lock');
  fs.writeFileSync(f, String(deadPid()));
  assert.equal(tryLock(f, { staleMs: 60000 }), null, 'no host is known: its pid proves nothing');
  age(f, 61000);
  const l = tryLock(f, { staleMs: 60000, log: () => {} });
  assert.ok(l);
  l.release();
});

test('refresh keeps a long lock alive for other hosts; release never removes a lock that is no longer ours', () => {
  const f = path.join(tmp(), 'long.lock');
  const l = tryLock(f, { staleMs: 800 });
  assert.ok(l);
  age(f, 5000);
  const before = fs.statSync(f).mtimeMs;
  l.refresh(); // too soon after the lock was taken: nothing
  assert.equal(fs.statSync(f).mtimeMs, before);
  const t = Date.now() + 150;
  while (Date.now() < t);
  l.refresh();
  assert.ok(fs.statSync(f).mtimeMs > before + 4000, 'refresh did not touch the lock');
  // Someone broke it (e.g. after a long stall) and holds it now: our release leaves theirs.
  fs.writeFileSync(f, record({ pid: process.pid, token: 'theirs' }));
  assert.equal(l.held(), false);
  assert.equal(l.release(), false);
  assert.ok(fs.existsSync(f));
  const warned: string[] = [];
  fs.rmSync(f);
  withLockSync(f, () => fs.writeFileSync(f, record({ pid: process.pid, token: 'other' })), { staleMs: 1000, log: (m) => warned.push(m) });
  assert.match(warned[0], /was broken by another process while this one held it/);
});

test('processes breaking the same stale lock at once never hold it together', async () => {
  const dir = tmp();
  const f = path.join(dir, 'x.lock');
  fs.writeFileSync(f, record({ pid: deadPid() }));
  const child = path.join(repoRoot(), 'test/fixtures/lock-child.js');
  const startAt = String(Date.now() + 1200);
  const run = () => new Promise<number>((resolve) => spawn(process.execPath, [child, path.join(__dirname, '..'), f, path.join(dir, 'inside'), '60', startAt], { stdio: 'inherit' }).on('exit', (c) => resolve(c ?? 1)));
  assert.deepEqual(await Promise.all([run(), run(), run()]), [0, 0, 0]);
  assert.deepEqual(fs.readdirSync(dir), [], 'lock, markers and side files all gone');
});

test('private files of a process killed while taking or breaking a lock are removed by the next taker', () => {
  const dir = tmp();
  const f = path.join(dir, 'k.lock');
  const dead = deadPid();
  const host = os.hostname().replace(/[^A-Za-z0-9._-]/g, '_');
  const left = [`k.lock.${host}.${dead}.0123456789abcdef.new`, `k.lock.${host}.${dead}.89abcdef.stale`];
  const kept = [`k.lock.${host}.${process.pid}.fedcba9876543210.new`, 'k.lock.node-17.cluster.12.0123abcd.new'];
  for (const n of [...left, ...kept]) fs.writeFileSync(path.join(dir, n), '');
  const l = tryLock(f, { staleMs: 1000 });
  assert.ok(l);
  l.release();
  assert.deepEqual(fs.readdirSync(dir).sort(), kept.sort());
});
