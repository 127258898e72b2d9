// The smoke sweep as a real Slurm job array (scripts/slurm-local.sh start: a one-node
// cluster on this machine) writes exactly the rows a local `dit sweep smoke` writes.
// Skipped, saying why, when no Slurm cluster answers here.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readResults, RESULT_COLUMNS, ResultRow } from '../lib/results/registry';
import { repoRoot } from '../lib/util/paths';

function slurmMissing(): string | false {
  const r = spawnSync('sinfo', ['-h', '-o', '%T'], { encoding: 'utf8' });
  if (r.error) return 'Slurm is not installed (no sinfo on PATH); scripts/slurm-local.sh start sets up a one-node cluster';
  if (r.status !== 0 || !/idle|mixed|allocated/.test(r.stdout)) return `no Slurm node is up (sinfo: ${(r.stderr || r.stdout).trim()}); scripts/slurm-local.sh start, then export SLURM_CONF as it says`;
  return false;
}

const dit = (args: string[]) => spawnSync(process.execPath, [path.join(repoRoot(), 'dist/lib/cli/index.js'), ...args], { encoding: 'utf8', cwd: repoRoot() });

/** A row without what differs between two runs of the same evaluation (the commit: a checkout may be rebuilt in between). */
const comparable = (r: ResultRow) => JSON.stringify(RESULT_COLUMNS.filter((c) => !['wall_time_s', 'timestamp', 'git_commit'].includes(c)).map((c) => r[c]));

const missing = slurmMissing();
test('the smoke sweep as a Slurm job array writes the rows of a local sweep: same config hashes, same metrics for the same seeds', { skip: missing, timeout: 3 * 3600_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-slurm-smoke-'));
  try {
    const local = dit(['sweep', 'smoke', '--no-grid', '--results', path.join(dir, 'local.csv'), '--runs', path.join(dir, 'local-runs')]);
    assert.equal(local.status, 0, local.stderr.slice(-3000));
    const runs = path.join(dir, 'slurm-runs');
    const sub = dit(['sweep', 'smoke', '--slurm', '--jobs', '2', '--results', path.join(dir, 'slurm.csv'), '--runs', runs]);
    assert.equal(sub.status, 0, sub.stderr.slice(-3000));
    const jobs = JSON.parse(fs.readFileSync(path.join(runs, 'slurm', 'jobs.json'), 'utf8'));
    // Wait for both jobs to leave the queue.
    for (;;) {
      const q = spawnSync('squeue', ['-h', '-j', `${jobs.sharedJob},${jobs.arrayJob}`, '-o', '%i %T'], { encoding: 'utf8' });
      if (q.status === 0 && !q.stdout.trim()) break;
      await new Promise((r) => setTimeout(r, 2000));
    }
    const logs = fs.readdirSync(path.join(runs, 'slurm', 'logs')).map((f) => `--- ${f}\n${fs.readFileSync(path.join(runs, 'slurm', 'logs', f), 'utf8').slice(-2000)}`).join('\n');
    const status = dit(['sweep', 'smoke', '--status', '--results', path.join(dir, 'slurm.csv'), '--runs', runs]);
    assert.match(status.stdout, /^smoke: 6 done, 0 running, 0 failed, 0 pending/, `${status.stdout}\n${logs}`);
    const want = readResults(path.join(dir, 'local.csv')).map(comparable).sort();
    const got = readResults(path.join(dir, 'slurm.csv')).map(comparable).sort();
    assert.ok(want.length > 0);
    assert.deepEqual(got, want, logs);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
