// Slurm job arrays for sweeps: the plan and the rendered scripts (no Slurm needed; the
// scripts' signal handling runs for real in bash with stand-ins for node and scontrol).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDirs, tinyExperimentJson } from './helpers';
import { experimentCells, validateExperiment } from '../lib/experiments/config';
import { cellCost, partitionCells, SWEEP_INTERRUPTED_EXIT } from '../lib/experiments/sweep';
import {
  cellJob, parseJobId, planSlurm, renderArrayScript, renderSharedScript, sbatchArgs, shq, SIGNAL_LEAD_S, submission,
} from '../lib/experiments/slurm';
import { takeRepeated } from '../lib/cli/sweep_slurm';

const tmp = tempDirs('dit-slurm-');

/** Three cells: the tiny experiment plus a third model in its scaling study. */
function experiment() {
  const j = tinyExperimentJson();
  j.studies[0].models.push('mini-B/4');
  return validateExperiment(j);
}

const base = { config: 'tiny', resultsFile: '/shared/r/tiny.csv', runsDir: '/shared/runs/tiny', cwd: '/shared/dit-kit', node: '/usr/bin/node', entry: '/shared/dit-kit/dist/lib/cli/index.js' };

test('the plan: one task per cell by default, or the --jobs groups balanced by estimated compute', () => {
  const e = experiment();
  const one = planSlurm(e, base);
  assert.deepEqual(one.tasks.map((t) => t.cells.length), [1, 1, 1]);
  assert.deepEqual(one.tasks.map((t) => t.cells[0]).sort(), experimentCells(e).map((c) => c.id).sort());
  assert.deepEqual(one.tasks.map((t) => t.index), [0, 1, 2]);
  const two = planSlurm(e, { ...base, tasks: 2 });
  assert.deepEqual(two.tasks.map((t) => t.cells), partitionCells(e, 2).map((g) => g.map((c) => c.id)));
  for (const t of two.tasks) {
    const cost = t.cells.reduce((a, id) => a + cellCost(e, experimentCells(e).find((c) => c.id === id)!), 0);
    assert.equal(t.gflops, cost);
  }
  // More tasks than cells: no empty task.
  assert.equal(planSlurm(e, { ...base, tasks: 9 }).tasks.length, 3);
  assert.equal(one.dir, '/shared/runs/tiny/slurm');
});

test('resources sbatch would misread, or that would break out of an #SBATCH line, are refused', () => {
  const e = experiment();
  assert.throws(() => planSlurm(e, { ...base, resources: { time: '2 hours' } }), /--time '2 hours': not a Slurm time limit/);
  assert.throws(() => planSlurm(e, { ...base, resources: { partition: 'gpu\nrm -rf /' } }), /--partition '[^]*': one word expected/);
  assert.throws(() => planSlurm(e, { ...base, resources: { sbatchArgs: ['--account=a\necho hi'] } }), /one sbatch option expected/);
  assert.throws(() => planSlurm(e, { ...base, resources: { sbatchArgs: ['account=a'] } }), /one sbatch option expected/);
  assert.throws(() => planSlurm(e, { ...base, resources: { arrayParallel: 0 } }), /--array-parallel must be a positive integer/);
  for (const time of ['12:00:00', '1-00:00:00', '90', '30:00']) assert.doesNotThrow(() => planSlurm(e, { ...base, resources: { time } }));
});

test('the shared job and the array: sbatch options, requeue, the early SIGTERM, each task its cells', () => {
  const e = experiment();
  const p = planSlurm(e, {
    ...base, tasks: 2,
    resources: { partition: 'gpu', time: '04:00:00', cpusPerTask: 8, gres: 'gpu:1', arrayParallel: 1, sbatchArgs: ['--account=proj', '--qos=low'] },
  });
  const shared = renderSharedScript(p);
  const array = renderArrayScript(p);
  for (const s of [shared, array]) {
    for (const l of ['#SBATCH --partition=gpu', '#SBATCH --time=04:00:00', '#SBATCH --cpus-per-task=8', '#SBATCH --gres=gpu:1', '#SBATCH --requeue',
      `#SBATCH --signal=B:TERM@${SIGNAL_LEAD_S}`, '#SBATCH --open-mode=append', '#SBATCH --account=proj', '#SBATCH --qos=low', 'cd /shared/dit-kit']) {
      assert.ok(s.split('\n').includes(l), `missing '${l}' in\n${s}`);
    }
    assert.ok(s.startsWith('#!/bin/bash\n'));
    // sbatch reads #SBATCH lines only before the first command.
    const lines = s.split('\n');
    const firstCommand = lines.findIndex((l) => l && !l.startsWith('#'));
    assert.ok(lines.slice(firstCommand).every((l) => !l.startsWith('#SBATCH')), 'an #SBATCH line after a command is ignored by sbatch');
    assert.equal(spawnSync('bash', ['-n'], { input: s }).status, 0, 'not valid bash');
    assert.match(s, new RegExp(`--results /shared/r/tiny.csv --runs /shared/runs/tiny &\\n`));
  }
  assert.match(shared, /#SBATCH --job-name=dit-tiny-shared\n/);
  assert.match(shared, /#SBATCH --output=\/shared\/runs\/tiny\/slurm\/logs\/%x-%j.out\n/);
  assert.match(shared, /\/usr\/bin\/node \/shared\/dit-kit\/dist\/lib\/cli\/index.js sweep tiny --shared --results/);
  assert.doesNotMatch(shared, /--array/);
  assert.match(array, /#SBATCH --array=0-1%1\n#SBATCH --kill-on-invalid-dep=yes\n/);
  assert.match(array, /#SBATCH --output=\/shared\/runs\/tiny\/slurm\/logs\/%x-%A_%a.out\n/);
  assert.match(array, /sweep tiny --cells "\$\{CELLS\[\$SLURM_ARRAY_TASK_ID\]\}" --no-grid --results/);
  assert.match(array, /scontrol requeue "\$\{SLURM_ARRAY_JOB_ID\}_\$\{SLURM_ARRAY_TASK_ID\}"/);
  for (const t of p.tasks) assert.ok(array.includes(`  ${t.cells.join(',')}  # task ${t.index}: ~`), `task ${t.index}'s cells`);
  // Without a limit on parallel tasks, no %K.
  assert.match(renderArrayScript(planSlurm(e, base)), /#SBATCH --array=0-2\n/);
  // The dependency goes on sbatch's command line, once the shared job's id is known.
  assert.deepEqual(sbatchArgs('/x/a.sbatch', '123'), ['--parsable', '--dependency=afterok:123', '/x/a.sbatch']);
  assert.deepEqual(sbatchArgs('/x/s.sbatch'), ['--parsable', '/x/s.sbatch']);
});

test('paths with spaces and quotes are quoted for bash; sbatch --parsable output is read', () => {
  assert.equal(shq('/a/b-c_d.json'), '/a/b-c_d.json');
  assert.equal(shq("/my runs/it's"), `'/my runs/it'\\''s'`);
  assert.equal(spawnSync('bash', ['-c', `printf %s ${shq("a b'c$d")}`], { encoding: 'utf8' }).stdout, "a b'c$d");
  assert.equal(parseJobId('4242\n'), '4242');
  assert.equal(parseJobId('4242;cluster1\n'), '4242');
  assert.throws(() => parseJobId('sbatch: error: Batch job submission failed'), /not a job id/);
});

test('the submission record names the Slurm job of each cell', () => {
  const p = planSlurm(experiment(), { ...base, tasks: 2 });
  const s = submission(p, '100', '101', new Date('2026-01-01T00:00:00Z'));
  assert.equal(s.submittedAt, '2026-01-01T00:00:00.000Z');
  const cell = p.tasks[1].cells[0];
  assert.equal(cellJob(s, cell), '101_1');
  assert.equal(cellJob(s, 'no-such-cell'), null);
  assert.equal(cellJob(null, cell), null);
});

test('--sbatch-arg repeats and takes values that start with --', () => {
  assert.deepEqual(takeRepeated(['smoke', '--sbatch-arg', '--account=a', '--slurm', '--sbatch-arg=--qos=low'], 'sbatch-arg'),
    { values: ['--account=a', '--qos=low'], rest: ['smoke', '--slurm'] });
});

test('an array task stopped by SIGTERM passes it to the sweep and requeues itself when the sweep saved its checkpoints', async () => {
  const dir = tmp();
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  // Stand-ins: a "node" that records its arguments and exits as a stopped sweep does; an scontrol that records its call.
  const fakeNode = path.join(bin, 'fake-node');
  fs.writeFileSync(fakeNode, `#!/bin/bash\ntrap 'echo term >> ${dir}/got; kill $s; exit ${SWEEP_INTERRUPTED_EXIT}' TERM\nsleep 30 & s=$!\nprintf '%s\\n' "$@" > ${dir}/args.tmp && mv ${dir}/args.tmp ${dir}/args\nwait\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(bin, 'scontrol'), `#!/bin/bash\necho "$@" > ${dir}/scontrol\n`, { mode: 0o755 });
  const p = planSlurm(experiment(), { ...base, cwd: dir, node: fakeNode, runsDir: path.join(dir, "my runs"), tasks: 2 });
  const script = path.join(dir, 'array.sbatch');
  fs.writeFileSync(script, renderArrayScript(p));
  const child = spawn('bash', [script], {
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, SLURM_ARRAY_JOB_ID: '77', SLURM_ARRAY_TASK_ID: '1', SLURM_JOB_ID: '78' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b) => (out += b));
  child.stderr.on('data', (b) => (out += b));
  const code = await new Promise<number | null>((resolve) => {
    const poll = setInterval(() => {
      if (fs.existsSync(path.join(dir, 'args'))) {
        clearInterval(poll);
        child.kill('SIGTERM'); // as Slurm's --signal=B:TERM does: to the batch shell only
      }
    }, 50);
    child.on('exit', (c) => {
      clearInterval(poll);
      resolve(c);
    });
  });
  assert.equal(code, SWEEP_INTERRUPTED_EXIT, out);
  assert.equal(fs.readFileSync(path.join(dir, 'got'), 'utf8'), 'term\n', 'the sweep got SIGTERM once');
  assert.equal(fs.readFileSync(path.join(dir, 'scontrol'), 'utf8'), 'requeue 77_1\n');
  const args = fs.readFileSync(path.join(dir, 'args'), 'utf8').trim().split('\n');
  assert.deepEqual(args, [p.entry, 'sweep', 'tiny', '--cells', p.tasks[1].cells.join(','), '--no-grid', '--results', p.resultsFile, '--runs', p.runsDir]);
  assert.match(out, /requeueing 77_1/);
});

test('a task that fails (any other exit code) is not requeued', async () => {
  const dir = tmp();
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  const fakeNode = path.join(bin, 'fake-node');
  fs.writeFileSync(fakeNode, '#!/bin/bash\nexit 3\n', { mode: 0o755 });
  fs.writeFileSync(path.join(bin, 'scontrol'), `#!/bin/bash\necho "$@" > ${dir}/scontrol\n`, { mode: 0o755 });
  const p = planSlurm(experiment(), { ...base, cwd: dir, node: fakeNode });
  const r = spawnSync('bash', ['-c', renderSharedScript(p)], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, SLURM_JOB_ID: '5' } });
  assert.equal(r.status, 3);
  assert.ok(!fs.existsSync(path.join(dir, 'scontrol')));
});

/** Runs `dit sweep ARGS` in this process; its exit code and what it printed. */
async function sweepCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  const { sweepCommand } = await import('../lib/cli/sweep');
  const saved = { log: console.log, error: console.error, env: { ...process.env } };
  let out = '', err = '';
  console.log = (...a: unknown[]) => (out += a.join(' ') + '\n');
  console.error = (...a: unknown[]) => (err += a.join(' ') + '\n');
  Object.assign(process.env, env);
  try {
    return { code: await sweepCommand.run(args), out, err };
  } finally {
    console.log = saved.log;
    console.error = saved.error;
    process.env = saved.env;
  }
}

test('dit sweep smoke --slurm --dry-run prints both scripts and submits nothing; without sbatch --slurm says so', async () => {
  const runs = path.join(tmp(), 'runs');
  const r = await sweepCli(['smoke', '--slurm', '--dry-run', '--jobs', '3', '--time', '01:00:00', '--sbatch-arg', '--account=x', '--runs', runs]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /#SBATCH --job-name=dit-smoke-shared\n/);
  assert.match(r.out, /#SBATCH --array=0-2\n/);
  assert.match(r.out, /#SBATCH --account=x\n/);
  assert.match(r.out, /sbatch --parsable --dependency=afterok:<shared job id> .*smoke-array.sbatch/);
  assert.ok(!fs.existsSync(runs), 'a dry run writes nothing');
  const none = await sweepCli(['smoke', '--slurm', '--runs', runs], { PATH: path.join(tmp(), 'empty') });
  assert.equal(none.code, 1);
  assert.match(none.err, /sbatch is not on PATH, so Slurm is not installed or not loaded here/);
  const { UsageError } = await import('../lib/util/args');
  await assert.rejects(sweepCli(['smoke', '--time', '01:00:00']), (e: Error) => e instanceof UsageError && /only with --slurm: --time/.test(e.message));
  await assert.rejects(sweepCli(['smoke', '--slurm', '--cells', 'x']), UsageError);
});
