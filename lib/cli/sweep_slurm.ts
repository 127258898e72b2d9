// `dit sweep CONFIG --slurm`: writes the two sbatch scripts (lib/experiments/slurm.ts)
// and submits them, the array after the shared work; `--dry-run` only prints them.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ExperimentConfig } from '../experiments/config';
import {
  arrayScriptFile, jobsFile, logDir, parseJobId, planSlurm, renderArrayScript, renderSharedScript, sbatchArgs,
  sharedScriptFile, SlurmResources, submission,
} from '../experiments/slurm';
import { asUsage, UsageError } from '../util/args';
import { repoRoot, writeFileAtomic } from '../util/paths';

/** Every `--NAME VALUE` / `--NAME=VALUE` taken out of argv (a flag that may repeat, with values that start with --). */
export function takeRepeated(argv: string[], name: string): { values: string[]; rest: string[] } {
  const values: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === `--${name}`) {
      if (i + 1 >= argv.length) throw new UsageError(`flag --${name} needs a value`);
      values.push(argv[++i]);
    } else if (a.startsWith(`--${name}=`)) values.push(a.slice(name.length + 3));
    else rest.push(a);
  }
  return { values, rest };
}

export interface SlurmRequest {
  config: string;
  resultsFile: string;
  runsDir: string;
  tasks?: number;
  resources: SlurmResources;
  dryRun: boolean;
}

/** Runs sbatch; its stdout, or an error that says what went wrong. */
function sbatch(args: string[]): string {
  const r = spawnSync('sbatch', args, { encoding: 'utf8' });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`sbatch ${args.join(' ')} exited with ${r.status}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

export function sbatchAvailable(): boolean {
  return !spawnSync('sbatch', ['--version'], { encoding: 'utf8' }).error;
}

export function runSlurm(e: ExperimentConfig, q: SlurmRequest): number {
  // A preset name stays a name; a JSON file is passed on as an absolute path (jobs start in the repo).
  const config = fs.existsSync(q.config) ? path.resolve(q.config) : q.config;
  const plan = asUsage(() => planSlurm(e, {
    config, resultsFile: q.resultsFile, runsDir: q.runsDir, cwd: repoRoot(), node: process.execPath,
    entry: path.join(__dirname, 'index.js'), tasks: q.tasks, resources: q.resources,
  }));
  const shared = renderSharedScript(plan);
  const array = renderArrayScript(plan);
  if (q.dryRun) {
    console.log(`# ${sharedScriptFile(plan)}\n${shared}\n# ${arrayScriptFile(plan)}\n${array}`);
    console.log(`# submitted as: sbatch ${sbatchArgs(sharedScriptFile(plan)).join(' ')}, then sbatch ${sbatchArgs(arrayScriptFile(plan), '<shared job id>').join(' ')}`);
    return 0;
  }
  if (!sbatchAvailable()) {
    console.error('dit sweep --slurm: sbatch is not on PATH, so Slurm is not installed or not loaded here (on a cluster: a login node, ' +
      'perhaps after `module load slurm`). `--dry-run` prints the scripts without it; `dit sweep` without --slurm runs on this machine.');
    return 1;
  }
  fs.mkdirSync(logDir(plan), { recursive: true });
  writeFileAtomic(sharedScriptFile(plan), shared);
  writeFileAtomic(arrayScriptFile(plan), array);
  const sharedJob = parseJobId(sbatch(sbatchArgs(sharedScriptFile(plan))));
  let arrayJob;
  try {
    arrayJob = parseJobId(sbatch(sbatchArgs(arrayScriptFile(plan), sharedJob)));
  } catch (err) {
    console.error(`the shared job ${sharedJob} was submitted, the array was not: \`scancel ${sharedJob}\`, or submit ${arrayScriptFile(plan)} by hand`);
    throw err;
  }
  writeFileAtomic(jobsFile(plan.runsDir), JSON.stringify(submission(plan, sharedJob, arrayJob), null, 2) + '\n');
  console.log(`${e.name}: shared work job ${sharedJob}; array job ${arrayJob} (${plan.tasks.length} task(s), after ${sharedJob} succeeds)`);
  console.log(`logs: ${logDir(plan)}/dit-${e.name}-shared-${sharedJob}.out, ${logDir(plan)}/dit-${e.name}-${arrayJob}_<task>.out`);
  console.log(`results: ${plan.resultsFile}; progress: dit sweep ${q.config} --status; afterwards: dit figures`);
  return 0;
}
