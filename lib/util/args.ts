// Small, strict flag parser for the CLI: unknown flags and missing values are errors.
import { isSeed, SEED_ALLOWED } from './rng';

export class UsageError extends Error {}

/** A library check on flags alone, reported as a usage error (exit 2). */
export function asUsage<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** 'count': a positive integer; 'seed': a generator seed (the range lib/util/rng.ts honours). */
export type FlagKind = 'string' | 'number' | 'boolean' | 'int' | 'count' | 'seed';
export type FlagSpec = Record<string, FlagKind>;
export type ParsedFlags = Record<string, string | number | boolean | undefined>;

export interface ParsedArgs {
  flags: ParsedFlags;
  positional: string[];
}

const NUMERIC: Record<Exclude<FlagKind, 'string' | 'boolean'>, { allowed: string; ok: (n: number) => boolean }> = {
  number: { allowed: 'a number', ok: () => true },
  int: { allowed: 'an integer', ok: Number.isInteger },
  count: { allowed: 'a positive integer', ok: (n) => Number.isInteger(n) && n > 0 },
  seed: { allowed: SEED_ALLOWED, ok: isSeed },
};

/** Parses `--name value`, `--name=value` and boolean `--name`; flag names in kebab-case. */
export function parseArgs(argv: string[], spec: FlagSpec): ParsedArgs {
  // No prototype: a flag value can never shadow or reach Object.prototype's members.
  const flags: ParsedFlags = Object.create(null);
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    let name = a.slice(2);
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    // Own keys only: '--constructor' or '--__proto__' must not find Object.prototype's members.
    const kind = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (!kind) throw new UsageError(`unknown flag --${name}`);
    if (kind === 'boolean') {
      if (value !== undefined && value !== 'true' && value !== 'false') {
        throw new UsageError(`flag --${name} takes no value (got '${value}')`);
      }
      flags[name] = value !== 'false';
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length || argv[i + 1].startsWith('--')) throw new UsageError(`flag --${name} needs a value`);
      value = argv[++i];
    }
    if (kind !== 'string') {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n) || !NUMERIC[kind].ok(n)) {
        throw new UsageError(`flag --${name} needs ${NUMERIC[kind].allowed}, got '${value}'`);
      }
      flags[name] = n;
    } else {
      flags[name] = value;
    }
  }
  return { flags, positional };
}
