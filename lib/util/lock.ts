// Lock files that hold on a shared filesystem across machines.
//
// A lock is a file created atomically with its holder's record in it (pid, host, the
// process's start time, a random token): the record is written to a private file first
// and hard-linked to the lock's name (link(2) fails with EEXIST when the name exists, and
// the record is complete from the first instant anyone can see it); where hard links are
// not supported the lock is created with O_CREAT | O_EXCL instead.
//
// Assumption about the filesystem: link(2) (or O_EXCL create), rename(2) and unlink(2)
// are atomic and seen by every machine, as on a local disk, NFSv3/v4 (link) and v4
// (O_EXCL), Lustre, GPFS/Spectrum Scale, CephFS and BeeGFS. Machines that share the
// folder keep their clocks in step (NTP) to well within a lock's stale threshold, and
// processes that report the same hostname share one PID namespace.
//
// When a lock is stale, and only then, a waiter breaks it:
//   - same host: the holder's pid is not alive, or it is alive but is another process
//     (its start time, or the machine's boot, differs from the record): provably gone;
//   - another host (or a record that cannot be read, e.g. an old pid-only lock): the
//     lock file was not touched (created or refreshed) for longer than `staleMs`. Holders
//     of long locks call refresh() more often than that; a waiter's timeout is longer
//     than `staleMs`, so a dead remote holder is always outlived.
// Breaking renames the lock to a private name and checks that it moved the record it
// judged stale (else it puts the lock back), so two waiters never remove a fresh lock.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface LockHolder {
  pid: number;
  host: string;
  /** When the holder took the lock (ISO 8601). */
  startedAt: string;
  /** Random: tells this holding from any other. */
  token: string;
  /** Start time of the holder process (/proc/PID/stat, clock ticks since boot), when known. */
  procStart?: string;
  /** The holder machine's boot id, when known. */
  bootId?: string;
  /** What the lock protects (messages). */
  purpose?: string;
}

export interface LockOptions {
  /** A lock of another host (or with an unreadable record) untouched for longer than this is stale. */
  staleMs: number;
  /** Give up waiting after this long; longer than staleMs (default: 2 x staleMs + 10 s). */
  timeoutMs?: number;
  /** Polling interval bounds while waiting, ms (default [5, 50], doubling). */
  pollMs?: [number, number];
  /** What the lock protects, recorded and used in messages. */
  purpose?: string;
  /** Told when a stale lock is broken (default: a warning on stderr). */
  log?: (msg: string) => void;
  /** Called once when the first attempt finds the lock held. */
  onWait?: (holder: LockHolder | null, file: string) => void;
}

/** The error of a wait that timed out: the lock is held by a live (or not yet stale) holder. */
export class LockTimeout extends Error {
  constructor(readonly file: string, readonly holder: LockHolder | null, msg: string) {
    super(msg);
  }
}

const HOST = os.hostname();
let bootIdCache: string | undefined | null = null;

function bootId(): string | undefined {
  if (bootIdCache === null) {
    try {
      bootIdCache = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
    } catch {
      bootIdCache = undefined;
    }
  }
  return bootIdCache;
}

/** Field 22 of /proc/PID/stat (start time), or undefined where /proc is absent. */
function procStart(pid: number): string | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
    return s.slice(s.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Whether a process with this pid exists on this machine. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** This machine's name as lock records hold it. */
export function hostName(): string {
  return HOST;
}

const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, '_');

/** The machine's name as file names carry it (temporary and lock side files). */
export function hostTag(): string {
  return safe(HOST);
}

/** Why the holder of a record on this host is gone, or null when it may still be running. */
export function localHolderGone(h: Pick<LockHolder, 'pid' | 'procStart' | 'bootId'>): string | null {
  const boot = bootId();
  if (h.bootId && boot && h.bootId !== boot) return 'the machine has rebooted since';
  if (!pidAlive(h.pid)) return `process ${h.pid} is not running`;
  const start = h.procStart && procStart(h.pid);
  if (start && start !== h.procStart) return `pid ${h.pid} now belongs to another process`;
  return null;
}

function newHolder(purpose?: string): LockHolder {
  return {
    pid: process.pid, host: HOST, startedAt: new Date().toISOString(), token: crypto.randomBytes(8).toString('hex'),
    procStart: procStart(process.pid), bootId: bootId(), ...(purpose ? { purpose } : {}),
  };
}

/** A lock's record, or null when it has none that can be read (empty, foreign or an old pid-only file). */
export function parseHolder(text: string): LockHolder | null {
  try {
    const h = JSON.parse(text) as LockHolder;
    if (h && typeof h === 'object' && Number.isInteger(h.pid) && h.pid > 0 && typeof h.host === 'string' && typeof h.token === 'string') return h;
  } catch {
    /* not a record */
  }
  return null;
}

/** A lock's holder in messages: 'process PID on HOST since TIME (PURPOSE)'. */
export function describeHolder(h: LockHolder | null): string {
  return h ? `process ${h.pid} on ${h.host} since ${h.startedAt}${h.purpose ? ` (${h.purpose})` : ''}` : 'an unknown holder';
}

/** Creates `file` holding `h`; false when it exists. */
function create(file: string, h: LockHolder): boolean {
  const body = JSON.stringify(h) + '\n';
  const tmp = `${file}.${safe(h.host)}.${h.pid}.${h.token}.new`;
  try {
    // (Inside the try: a full disk must not leave the private file behind.)
    fs.writeFileSync(tmp, body, { flag: 'wx' });
    try {
      fs.linkSync(tmp, file);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // NFS may report a link that was made (a retransmitted request): the count tells.
      if (fs.statSync(tmp).nlink === 2) return true;
      if (code === 'EEXIST') return false;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS' && code !== 'EXDEV') throw err;
    }
    // No hard links here: an exclusive create, the record in one write.
    let fd: number;
    try {
      fd = fs.openSync(file, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
    try {
      fs.writeSync(fd, body);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    return true;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

export interface LockState {
  holder: LockHolder | null;
  /** Why the lock may be broken, or null while it holds. */
  stale: string | null;
  /** The record as read (to check that a break moves this very lock). */
  text: string;
}

/** The state of an existing lock file; null when there is none. */
export function lockState(file: string, staleMs: number): LockState | null {
  let text: string;
  let st: fs.Stats;
  try {
    text = fs.readFileSync(file, 'utf8');
    st = fs.statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const holder = parseHolder(text);
  if (holder && holder.host === HOST) {
    const gone = localHolderGone(holder);
    return { holder, text, stale: gone && `its holder, ${describeHolder(holder)}, is gone: ${gone}` };
  }
  const age = Date.now() - st.mtimeMs;
  const stale = age > staleMs
    ? `${holder ? `its holder, ${describeHolder(holder)},` : 'it has no readable holder record and'} has not refreshed it for ${(age / 1000).toFixed(0)} s (stale after ${(staleMs / 1000).toFixed(0)} s)`
    : null;
  return { holder, text, stale };
}

/** Removes the stale lock that `seen` describes; false when the lock changed meanwhile (then it is left in place). */
function breakLock(file: string, seen: LockState): boolean {
  const aside = `${file}.${safe(HOST)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.stale`;
  try {
    fs.renameSync(file, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  let moved = '';
  try {
    moved = fs.readFileSync(aside, 'utf8');
  } catch {
    /* unreadable: treat as another lock */
  }
  if (moved === seen.text) {
    fs.rmSync(aside, { force: true });
    return true;
  }
  // Someone else broke the stale lock and took a fresh one in between: put theirs back.
  try {
    fs.linkSync(aside, file);
  } catch {
    /* a third process took the name: theirs stands */
  }
  fs.rmSync(aside, { force: true });
  return false;
}

/** A held lock. */
export class Lock {
  private lastTouch = Date.now();
  private released = false;

  constructor(readonly file: string, readonly holder: LockHolder, private readonly staleMs: number) {
    HELD.add(this);
  }

  /** Whether the lock file still holds this holding's record (it was not broken as stale). */
  held(): boolean {
    try {
      return parseHolder(fs.readFileSync(this.file, 'utf8'))?.token === this.holder.token;
    } catch {
      return false;
    }
  }

  /** Touches the lock so other hosts see its holder alive; cheap to call often (acts at most every staleMs / 8). */
  refresh(): void {
    const now = Date.now();
    if (this.released || now - this.lastTouch < this.staleMs / 8) return;
    this.lastTouch = now;
    if (!this.held()) return;
    try {
      const t = new Date(now);
      fs.utimesSync(this.file, t, t);
    } catch {
      /* gone: release() says so */
    }
  }

  /** Removes the lock (only when it is still ours). Returns false when someone broke it meanwhile. */
  release(): boolean {
    if (this.released) return true;
    this.released = true;
    HELD.delete(this);
    if (!this.held()) return false;
    fs.rmSync(this.file, { force: true });
    return true;
  }
}

// Locks of this process are removed when it exits normally (a killed process leaves them; the pid rule breaks them).
const HELD = new Set<Lock>();
process.on('exit', () => {
  for (const l of [...HELD]) l.release();
});

/**
 * Removes the private files (`<lock>.<host>.<pid>.<hex>.new` / `.stale`) that a process
 * killed while taking or breaking the lock left: this host's whose process is gone, other
 * hosts' older than an hour (the files live for microseconds).
 */
function cleanLeftovers(file: string): void {
  const dir = path.dirname(file);
  const base = path.basename(file) + '.';
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.startsWith(base)) continue;
    const m = /^(.+)\.(\d+)\.[0-9a-f]+\.(new|stale)$/.exec(n.slice(base.length));
    if (!m) continue;
    const full = path.join(dir, n);
    if (writerGone(full, m[1], Number(m[2]), 3600_000)) fs.rmSync(full, { force: true });
  }
}

/**
 * Whether the writer of a file left behind (a temporary or private file named with its
 * host tag and pid) is gone: on this host its pid is not running; on another, the file is
 * older than `foreignMs`. A file removed meanwhile counts as not gone.
 */
export function writerGone(file: string, host: string, pid: number, foreignMs: number): boolean {
  if (host === hostTag()) return !pidAlive(pid);
  try {
    return Date.now() - fs.statSync(file).mtimeMs > foreignMs;
  } catch {
    return false;
  }
}

/**
 * Takes `file` now, breaking it first when it is stale; null when a live holder has it.
 * The directory must exist.
 */
export function tryLock(file: string, o: LockOptions): Lock | null {
  cleanLeftovers(file);
  for (let attempt = 0; attempt < 8; attempt++) {
    const h = newHolder(o.purpose);
    if (create(file, h)) return new Lock(file, h, o.staleMs);
    const s = lockState(file, o.staleMs);
    if (!s) continue; // released meanwhile
    if (!s.stale) return null;
    if (breakLock(file, s)) (o.log ?? warn)(`broke the lock ${file}: ${s.stale}`);
  }
  return null;
}

function warn(msg: string): void {
  process.stderr.write(`[lock] warning: ${msg}\n`);
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function timeoutOf(o: LockOptions): number {
  return o.timeoutMs ?? 2 * o.staleMs + 10000;
}

function timedOut(file: string, o: LockOptions, waited: number): LockTimeout {
  const s = lockState(file, o.staleMs);
  const holder = s?.holder ?? null;
  return new LockTimeout(file, holder,
    `could not lock ${file} within ${(waited / 1000).toFixed(1)} s: held by ${describeHolder(holder)}` +
    `; if that process is gone (another machine, which this one cannot check), remove ${file}`);
}

/**
 * The waiting loop of lockSync and lockAsync: yields the lock once taken, else how long
 * to sleep before the next try; throws LockTimeout after timeoutMs.
 */
function* attempts(file: string, o: LockOptions): Generator<Lock | number, never> {
  const t0 = Date.now();
  const [lo, hi] = o.pollMs ?? [5, 50];
  let wait = lo;
  for (let first = true; ; first = false) {
    const l = tryLock(file, o);
    if (l) yield l;
    if (first) o.onWait?.(lockState(file, o.staleMs)?.holder ?? null, file);
    if (Date.now() - t0 > timeoutOf(o)) throw timedOut(file, o, Date.now() - t0);
    yield wait * (0.5 + Math.random());
    wait = Math.min(hi, wait * 2);
  }
}

/** Waits for `file` (polling, blocking the thread), breaking it when stale; throws LockTimeout after timeoutMs. */
export function lockSync(file: string, o: LockOptions): Lock {
  for (const a of attempts(file, o)) {
    if (typeof a !== 'number') return a;
    sleepSync(a);
  }
  throw new Error('unreachable');
}

/** lockSync without blocking the event loop. */
export async function lockAsync(file: string, o: LockOptions): Promise<Lock> {
  for (const a of attempts(file, o)) {
    if (typeof a !== 'number') return a;
    await new Promise((r) => setTimeout(r, a));
  }
  throw new Error('unreachable');
}

/** Runs fn while holding `file` (sync). */
export function withLockSync<T>(file: string, fn: (lock: Lock) => T, o: LockOptions): T {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const lock = lockSync(file, o);
  try {
    return fn(lock);
  } finally {
    if (!lock.release()) (o.log ?? warn)(`the lock ${file} was broken by another process while this one held it`);
  }
}

/** Runs fn while holding `file` (async). */
export async function withLock<T>(file: string, fn: (lock: Lock) => Promise<T>, o: LockOptions): Promise<T> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const lock = await lockAsync(file, o);
  try {
    return await fn(lock);
  } finally {
    if (!lock.release()) (o.log ?? warn)(`the lock ${file} was broken by another process while this one held it`);
  }
}
