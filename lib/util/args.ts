// Small, strict flag parser for the CLI: unknown flags and missing values are errors.

export class UsageError extends Error {}

export type FlagKind = 'string' | 'number' | 'boolean' | 'int';
export type FlagSpec = Record<string, FlagKind>;
export type ParsedFlags = Record<string, string | number | boolean | undefined>;

export interface ParsedArgs {
  flags: ParsedFlags;
  positional: string[];
}

/** Parses `--name value`, `--name=value` and boolean `--name`; flag names in kebab-case. */
export function parseArgs(argv: string[], spec: FlagSpec): ParsedArgs {
  const flags: ParsedFlags = {};
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
    const kind = spec[name];
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
    if (kind === 'number' || kind === 'int') {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n) || (kind === 'int' && !Number.isInteger(n))) {
        throw new UsageError(`flag --${name} needs ${kind === 'int' ? 'an integer' : 'a number'}, got '${value}'`);
      }
      flags[name] = n;
    } else {
      flags[name] = value;
    }
  }
  return { flags, positional };
}
