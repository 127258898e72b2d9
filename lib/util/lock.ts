// Lock files: created exclusively and holding the owner's pid. Each user decides what a
// stale lock is (the registry: older than a minute; a notebook run: its process is gone).
import * as fs from 'fs';

/** Creates `lock` holding our pid; false when someone holds it already. */
export function tryCreateLock(lock: string): boolean {
  try {
    fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  }
}
