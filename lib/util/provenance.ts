// Provenance carried by every result: git commit, config hash, backend.
import { execFileSync } from 'child_process';
import { createHash } from 'crypto';
import * as os from 'os';
import { backendInfo } from '../backend';
import { repoRoot } from './paths';

/**
 * What decides the exact bits of a trained network besides its seed: the tfjs backend and
 * its kernels (for 'native': the OpenBLAS build and the core type it runs, which set the
 * order of floating-point sums) and the CPU. Training is bit-reproducible from the seed on
 * the same environment, not across them.
 */
export function computeEnvironment(): { backend: string; details: string[]; cpu: string } {
  const b = backendInfo();
  return { backend: b?.name ?? 'unknown', details: b?.details ?? [], cpu: os.cpus()[0]?.model ?? 'unknown' };
}

let commit: string | null = null;

/** Short git commit of the kit (with '+dirty' when the tree has uncommitted changes), or 'unknown'. */
export function gitCommit(): string {
  if (commit !== null) return commit;
  try {
    const opts = { cwd: repoRoot(), encoding: 'utf8' as const, stdio: ['ignore', 'pipe', 'ignore'] as ['ignore', 'pipe', 'ignore'] };
    const head = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], opts).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], opts).trim() !== '';
    commit = dirty ? `${head}+dirty` : head;
  } catch {
    commit = 'unknown';
  }
  return commit;
}

/** JSON with sorted keys, so equal objects always serialise the same way. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** First 12 hex digits of the sha256 of the canonical JSON. */
export function configHash(v: unknown): string {
  return createHash('sha256').update(canonicalJson(v)).digest('hex').slice(0, 12);
}
