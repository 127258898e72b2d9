// Declarative checks for JSON configs. A schema gives each key its type, whether it may
// be left out, its default, what is allowed and a one-line meaning; parsing, error
// messages and the TypeScript type (Infer) all derive from it, so a key is declared once.
import { isSeed, SEED_ALLOWED } from './rng';

/** A bad value: where it is (a key path such as 'train.lr') and what is wrong with it. */
export class SchemaError extends Error {
  constructor(readonly path: string, readonly problem: string) {
    super(path ? `${path}: ${problem}` : problem);
  }
}

/** Throws a SchemaError (for cross-key checks that sit outside a schema). */
export function invalid(path: string, problem: string): never {
  throw new SchemaError(path, problem);
}

/**
 * One key's rule. `Absent` is true when the parsed value may lack the key (optional
 * without a default); a key with a default is always present after parsing.
 */
export interface Field<T, Absent extends boolean = false> {
  /** What is allowed, in words ('an integer in [1, 1000]'); error messages quote it. */
  readonly allowed: string;
  /** What the key means, one line. */
  readonly doc: string;
  readonly absent: Absent;
  /** Whether the key may be left out of the input. */
  readonly optional: boolean;
  /** Filled in (a copy) when the key is left out. */
  readonly default?: T;
  /** The value, typed; throws a SchemaError naming `path` otherwise. */
  parse(v: unknown, path: string): T;
}

export type Shape = Record<string, Field<unknown, boolean>>;
/** The parsed type of one field. */
export type Value<F> = F extends Field<infer T, boolean> ? T : never;
type AbsentKeys<S extends Shape> = { [K in keyof S]: S[K] extends Field<unknown, true> ? K : never }[keyof S];
type Flat<T> = { [K in keyof T]: T[K] } & {};

/** The parsed type of an object schema: keys that may be absent are optional properties. */
export type Infer<S extends Shape> = Flat<
  { -readonly [K in Exclude<keyof S, AbsentKeys<S>>]: Value<S[K]> } & { -readonly [K in AbsentKeys<S>]?: Value<S[K]> }
>;

/** A value as messages quote it (strings in single quotes, escaped, shortened). */
export function show(v: unknown): string {
  if (typeof v === 'string') return `'${JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}...` : v).slice(1, -1)}'`;
  if (v === undefined) return 'undefined';
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

const join = (path: string, key: string | number) => (typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key);

function field<T>(allowed: string, doc: string, parse: (v: unknown, path: string) => T): Field<T> {
  return { allowed, doc, absent: false, optional: false, parse };
}

/** A rule that is a predicate: the value itself when it passes. */
function check<T>(allowed: string, doc: string, ok: (v: unknown) => boolean): Field<T> {
  return field(allowed, doc, (v, path) => (ok(v) ? (v as T) : invalid(path, `must be ${allowed}, got ${show(v)}`)));
}

// ---- modifiers --------------------------------------------------------------------------

/** The key may be left out; `absent` says what that means (kept out of the parsed value). */
export function optional<T>(f: Field<T>, absent: string): Field<T, true> {
  return { ...f, doc: `${f.doc} (absent: ${absent})`, absent: true, optional: true };
}

/** Every field of a shape optional, absence meaning `absent`. */
export function allOptional<S extends Record<string, Field<unknown>>>(shape: S, absent: string): { [K in keyof S]: Field<Value<S[K]>, true> } {
  const out: Record<string, Field<unknown, true>> = {};
  for (const k of Object.keys(shape)) out[k] = optional(shape[k], absent);
  return out as { [K in keyof S]: Field<Value<S[K]>, true> };
}

/** The key may be left out and then takes `value`. */
export function withDefault<T>(f: Field<T>, value: T): Field<T> {
  return { ...f, optional: true, default: value };
}

/** `f` under a wider description: its failures at `path` itself quote `allowed`. */
function widened<T>(f: Field<T>, allowed: string, parse: (v: unknown, path: string) => T): Field<T> {
  return {
    ...f,
    allowed,
    parse: (v, path) => {
      try {
        return parse(v, path);
      } catch (err) {
        throw err instanceof SchemaError && err.path === path ? new SchemaError(path, `must be ${allowed}, got ${show(v)}`) : err;
      }
    },
  };
}

/** Also accept null (with its meaning). */
export function orNull<T>(f: Field<T>, meaning: string): Field<T | null> {
  return widened<T | null>(f, `null (${meaning}) or ${f.allowed}`, (v, path) => (v === null ? null : f.parse(v, path)));
}

/** Narrows a rule with an extra condition; `allowed` replaces its description. */
export function refine<T>(f: Field<T>, allowed: string, ok: (v: T) => boolean): Field<T> {
  return widened(f, allowed, (v, path) => {
    const x = f.parse(v, path);
    return ok(x) ? x : invalid(path, 'fails');
  });
}

// ---- scalars ----------------------------------------------------------------------------

interface Range {
  min?: number;
  max?: number;
  /** Exclusive bounds. */
  above?: number;
  below?: number;
}

function rangeText(r: Range): string {
  const lo = r.min !== undefined ? `[${r.min}` : r.above !== undefined ? `(${r.above}` : null;
  const hi = r.max !== undefined ? `${r.max}]` : r.below !== undefined ? `${r.below})` : null;
  if (lo && hi) return ` in ${lo}, ${hi}`;
  if (r.min !== undefined) return ` >= ${r.min}`;
  if (r.above !== undefined) return ` > ${r.above}`;
  if (r.max !== undefined) return ` <= ${r.max}`;
  if (r.below !== undefined) return ` < ${r.below}`;
  return '';
}

const inRange = (x: number, r: Range) =>
  (r.min === undefined || x >= r.min) && (r.max === undefined || x <= r.max) &&
  (r.above === undefined || x > r.above) && (r.below === undefined || x < r.below);

/** A (safe) integer, optionally bounded; 'a positive integer' when the bound is min 1 alone. */
export function int(doc: string, r: Range = {}): Field<number> {
  const allowed = r.min === 1 && r.max === undefined ? 'a positive integer' : `an integer${rangeText(r)}`;
  return check(allowed, doc, (v) => Number.isSafeInteger(v) && inRange(v as number, r));
}

/** A finite number, optionally bounded. */
export function num(doc: string, r: Range = {}): Field<number> {
  return check(`a number${rangeText(r)}`, doc, (v) => typeof v === 'number' && Number.isFinite(v) && inRange(v, r));
}

export function bool(doc: string): Field<boolean> {
  return check('true or false', doc, (v) => typeof v === 'boolean');
}

/** One of a fixed list of values; `noun` names them in messages ('unknown variant ...'). */
export function oneOf<const V extends string | number>(values: readonly V[], doc: string, noun = 'value'): Field<V> {
  const allowed = values.map((x) => show(x)).join(', ');
  return field(`one of ${allowed}`, doc, (v, path) =>
    (values as readonly unknown[]).includes(v) ? (v as V) : invalid(path, `unknown ${noun} ${show(v)} (allowed: ${allowed})`));
}

export function text(doc: string): Field<string> {
  return check('a string', doc, (v) => typeof v === 'string');
}

// Characters no file name may hold: path separators and control characters (NUL included).
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const NOT_IN_NAME = /[/\\\u0000-\u001f\u007f]/;
// eslint-disable-next-line no-control-regex -- as above
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * A value that becomes one path component (results/<name>.csv, data/runs/<name>/):
 * refusing separators and '..' keeps every output inside the folder the user chose.
 */
export function fileName(doc: string): Field<string> {
  return check("a non-empty name without '/', '\\', '..', control characters or surrounding spaces", doc,
    (v) => typeof v === 'string' && v.length > 0 && v.trim() === v && !NOT_IN_NAME.test(v) && !v.includes('..'));
}

/** A path the user points to (read, not written under a derived name). */
export function filePath(doc: string): Field<string> {
  return check('a non-empty path without control characters', doc, (v) => typeof v === 'string' && v.length > 0 && !CONTROL.test(v));
}

/** A generator seed: exactly the integers lib/util/rng.ts tells apart. */
export function rngSeed(doc: string): Field<number> {
  return check(SEED_ALLOWED, doc, isSeed);
}

// ---- structures -------------------------------------------------------------------------

/** A list of items, at least `minLength` long. */
export function list<T>(item: Field<T>, doc: string, minLength = 1): Field<T[]> {
  const allowed = `${minLength > 0 ? 'a non-empty list' : 'a list'}, each item ${item.allowed}`;
  return field(allowed, doc, (v, path) => {
    if (!Array.isArray(v) || v.length < minLength) invalid(path, `must be ${allowed}, got ${show(v)}`);
    return v.map((x, i) => item.parse(x, join(path, i)));
  });
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** An own key with a value: undefined (possible from code, not from JSON) counts as absent. */
const present = (o: Record<string, unknown>, k: string) => Object.hasOwn(o, k) && o[k] !== undefined;

/**
 * Parses an object against a shape. Keys keep the input's order (defaults follow, in the
 * shape's order), so a parsed config serialises like its file; an unknown key, including
 * inherited names such as '__proto__' or 'constructor', is an error.
 */
export function parseObject<S extends Shape>(shape: S, v: unknown, path: string): Infer<S> {
  if (!isRecord(v)) invalid(path, `must be an object, got ${show(v)}`);
  const keys = Object.keys(shape);
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) {
    if (!Object.hasOwn(shape, k)) invalid(path, `unknown key ${show(k)} (valid: ${keys.join(', ')})`);
    if (present(v, k)) out[k] = shape[k].parse(v[k], join(path, k));
  }
  for (const k of keys) {
    if (present(v, k)) continue;
    const f = shape[k];
    if (!f.optional) invalid(path, `missing key '${k}' (${f.doc}: ${f.allowed})`);
    if (f.default !== undefined) out[k] = structuredClone(f.default);
  }
  return out as Infer<S>;
}

/** A nested object. */
export function object<S extends Shape>(shape: S, doc: string): Field<Infer<S>> {
  return field(`an object with keys ${Object.keys(shape).join(', ')}`, doc, (v, path) => parseObject(shape, v, path));
}

type Tagged<K extends string, M extends Record<string, Shape>> = { [T in keyof M]: Flat<{ [P in K]: T } & Infer<M[T]>> }[keyof M];

/** An object whose `key` (e.g. 'kind') selects its shape. */
export function tagged<K extends string, M extends Record<string, Shape>>(key: K, shapes: M, doc: string): Field<Tagged<K, M>> {
  const tags = Object.keys(shapes);
  const tag = oneOf(tags, `which kind of ${key}`, key);
  return field(`an object whose '${key}' is ${tag.allowed}`, doc, (v, path) => {
    if (!isRecord(v)) invalid(path, `must be an object, got ${show(v)}`);
    if (!present(v, key)) invalid(path, `missing key '${key}' (${tag.allowed})`);
    const t = tag.parse(v[key], join(path, key));
    return parseObject({ [key]: tag, ...shapes[t] } as Shape, v, path) as Tagged<K, M>;
  });
}
