// A restricted Python unpickler (protocols 2-4, the opcodes torch.save emits and a
// few neighbours). It never runs code: every GLOBAL goes through the caller's
// `findGlobal`, which must return a plain value or throw, and REDUCE/NEWOBJ call the
// caller's `reduce`. With the default hooks no global at all is allowed, so the
// result can only be made of None, bools, ints, floats, strings, bytes, lists,
// tuples, dicts and sets.

/** A dict (or OrderedDict); keys keep insertion order. `attrs` holds BUILD state. */
export class PyDict {
  readonly map = new Map<unknown, unknown>();
  attrs: Map<unknown, unknown> | null = null;
  constructor(readonly className = 'dict') {}
  get(key: unknown): unknown {
    return this.map.get(key);
  }
}

/** A Python tuple (kept apart from lists so callers can check argument shapes). */
export class PyTuple {
  constructor(readonly items: unknown[]) {}
}

export interface UnpickleHooks {
  /** Resolves module.name; throw to refuse it. */
  findGlobal(module: string, name: string): unknown;
  /** Applies a resolved global to its arguments (REDUCE, NEWOBJ). */
  reduce(callable: unknown, args: unknown[]): unknown;
  /** Resolves a persistent id (BINPERSID); absent means persistent ids are refused. */
  persistentLoad?(pid: unknown): unknown;
  /** Applies BUILD state to an object; default: PyDict keeps it as attrs, anything else is refused. */
  build?(obj: unknown, state: unknown): unknown;
}

export const NO_GLOBALS: UnpickleHooks = {
  findGlobal(module, name) {
    throw new Error(`pickle refers to ${module}.${name}; no globals are allowed here`);
  },
  reduce() {
    throw new Error('pickle calls a function; not allowed here');
  },
};

export class UnpickleError extends Error {}

/**
 * Deepest nesting of MARKs and containers accepted. CPython cannot pickle anything
 * deeper than its recursion limit (1000), so a deeper pickle was crafted; refusing
 * it keeps later consumers (which may recurse) away from stack overflows.
 */
export const MAX_PICKLE_DEPTH = 1000;

/** Unpickles `data`; `name` (a file or archive member) prefixes every error. */
export function unpickle(data: Uint8Array, hooks: UnpickleHooks = NO_GLOBALS, name = '<pickle>'): unknown {
  return unpickleAt(data, 0, hooks, name).value;
}

/**
 * Unpickles the pickle that starts at byte `start` of `data` and says where it ended:
 * legacy torch.save files are several pickles in a row, then raw storages.
 */
export function unpickleAt(data: Uint8Array, start: number, hooks: UnpickleHooks = NO_GLOBALS, name = '<pickle>'): { value: unknown; end: number } {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const latin1 = new TextDecoder('latin1');
  let pos = start;
  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  const memo = new Map<number, unknown>();
  // Nesting depth of each container built so far (absent: a leaf, depth 0).
  const depths = new WeakMap<object, number>();

  const fail = (msg: string): never => {
    throw new UnpickleError(`${name}: ${msg} (at byte ${pos} of ${data.length})`);
  };
  const need = (n: number) => {
    if (pos + n > data.length) fail('truncated pickle');
  };
  const u8 = () => {
    need(1);
    return data[pos++];
  };
  const u16 = () => {
    need(2);
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = () => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const i32 = () => {
    need(4);
    const v = view.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(data.length - pos)) fail(`truncated pickle (needs ${v} more bytes)`);
    return Number(v);
  };
  const bytes = (n: number) => {
    need(n);
    const b = data.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  const line = () => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) fail('truncated pickle (unterminated line)');
    const s = latin1.decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const str = (n: number) => {
    try {
      return utf8.decode(bytes(n));
    } catch {
      return fail('invalid UTF-8 in a string');
    }
  };
  const pop = (): unknown => {
    if (stack.length === 0) fail('corrupt pickle: stack underflow');
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail('corrupt pickle: stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = marks.pop();
    if (!prev) fail('corrupt pickle: no MARK');
    stack = prev as unknown[];
    return items;
  };
  const asDict = (d: unknown): PyDict => {
    if (!(d instanceof PyDict)) fail(`corrupt pickle: SETITEM on ${typeName(d)}`);
    return d as PyDict;
  };
  const asList = (l: unknown): unknown[] => {
    if (!Array.isArray(l)) fail(`corrupt pickle: APPEND on ${typeName(l)}`);
    return l as unknown[];
  };
  const depthOf = (v: unknown): number => (typeof v === 'object' && v !== null ? depths.get(v) ?? 0 : 0);
  /** Records that container c holds v (c's depth is at least one more than v's). */
  const holds = <T extends object>(c: T, v: unknown): T => {
    const d = depthOf(v) + 1;
    if (d > MAX_PICKLE_DEPTH) fail(`pickle nests containers more than ${MAX_PICKLE_DEPTH} deep; not a state_dict`);
    if (d > (depths.get(c) ?? 1)) depths.set(c, d);
    else if (!depths.has(c)) depths.set(c, 1);
    return c;
  };
  const holdsAll = <T extends object>(c: T, items: unknown[]): T => {
    let deepest: unknown = undefined;
    for (const it of items) if (depthOf(it) > depthOf(deepest)) deepest = it;
    return holds(c, deepest);
  };
  const key = (k: unknown): unknown => {
    try {
      return hashable(k);
    } catch (err) {
      return fail((err as Error).message);
    }
  };
  const setItem = (d: PyDict, k: unknown, v: unknown) => {
    d.map.set(key(k), v);
    holds(d, k);
    holds(d, v);
  };
  const memoGet = (i: number) => {
    if (!memo.has(i)) fail(`corrupt pickle: memo ${i} is not set`);
    return memo.get(i);
  };
  const long = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    // Via hex, linear in the length (a shift-and-or loop is quadratic on a crafted LONG4).
    let v = BigInt('0x' + Buffer.from(b).reverse().toString('hex'));
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return Number.isSafeInteger(Number(v)) && BigInt(Number(v)) === v ? Number(v) : v;
  };
  const call = (what: () => unknown): unknown => {
    try {
      return what();
    } catch (err) {
      if (err instanceof UnpickleError) throw err;
      const msg = (err as Error).message;
      throw new UnpickleError(msg.startsWith(name) ? msg : `${name}: ${msg}`);
    }
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('pickle protocol newer than 5');
        break;
      case 0x95: // FRAME: only a read-ahead hint
        u64();
        break;
      case 0x2e: // STOP
        if (marks.length) fail('corrupt pickle: MARK left open at STOP');
        return { value: pop(), end: pos };
      case 0x28: // MARK
        if (marks.length >= MAX_PICKLE_DEPTH) fail(`pickle nests MARKs more than ${MAX_PICKLE_DEPTH} deep; not a state_dict`);
        marks.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        if (stack.length) stack.pop();
        else popMark();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(long(bytes(u8())));
        break;
      case 0x8b: {
        // LONG4
        const n = i32();
        if (n < 0) fail('negative LONG4 length');
        stack.push(long(bytes(n)));
        break;
      }
      case 0x47: {
        // BINFLOAT: big-endian double
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      }
      case 0x58: // BINUNICODE
        stack.push(str(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(str(u8()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(str(u64()));
        break;
      case 0x54: // BINSTRING (Python 2 str)
        stack.push(latin1.decode(bytes(u32())));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1.decode(bytes(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(Uint8Array.from(bytes(u32())));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(Uint8Array.from(bytes(u8())));
        break;
      case 0x8e: // BINBYTES8
        stack.push(Uint8Array.from(bytes(u64())));
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new PyTuple([]));
        break;
      case 0x85: {
        // TUPLE1
        const a = pop();
        stack.push(holds(new PyTuple([a]), a));
        break;
      }
      case 0x86: {
        // TUPLE2
        const b = pop();
        const a = pop();
        stack.push(holdsAll(new PyTuple([a, b]), [a, b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(holdsAll(new PyTuple([a, b, c]), [a, b, c]));
        break;
      }
      case 0x74: {
        // TUPLE (popMark swaps `stack`, so take the items before pushing)
        const items = popMark();
        stack.push(holdsAll(new PyTuple(items), items));
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: {
        // LIST
        const items = popMark();
        stack.push(holdsAll(items, items));
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        holds(asList(top()), v).push(v);
        break;
      }
      case 0x65: {
        // APPENDS (a loop: spreading a huge MARK group into push() overflows the call stack)
        const items = popMark();
        const l = holdsAll(asList(top()), items);
        for (const it of items) l.push(it);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new PyDict());
        break;
      case 0x64: {
        // DICT
        const items = popMark();
        const d = new PyDict();
        for (let i = 0; i + 1 < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        stack.push(d);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItem(asDict(top()), k, v);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        if (items.length % 2) fail('corrupt pickle: odd SETITEMS');
        const d = asDict(top());
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        break;
      }
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) fail(`corrupt pickle: ADDITEMS on ${typeName(s)}`);
        for (const it of items) (s as Set<unknown>).add(key(it));
        break;
      }
      case 0x91: {
        // FROZENSET
        const items = popMark();
        stack.push(new Set(items.map(key)));
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
        stack.push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memoGet(u32()));
        break;
      case 0x63: {
        // GLOBAL
        const module = line();
        const gname = line();
        stack.push(call(() => hooks.findGlobal(module, gname)));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const gname = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof gname !== 'string') fail('corrupt pickle: STACK_GLOBAL needs two strings');
        stack.push(call(() => hooks.findGlobal(module as string, gname as string)));
        break;
      }
      case 0x52: // REDUCE
      case 0x81: {
        // NEWOBJ
        const args = pop();
        const fn = pop();
        if (!(args instanceof PyTuple)) fail(`corrupt pickle: ${op === 0x52 ? 'REDUCE' : 'NEWOBJ'} arguments are not a tuple`);
        stack.push(call(() => hooks.reduce(fn, (args as PyTuple).items)));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const obj = top();
        if (hooks.build) {
          stack[stack.length - 1] = call(() => hooks.build!(obj, state));
        } else if (obj instanceof PyDict && state instanceof PyDict) {
          obj.attrs = state.map;
        } else {
          fail(`pickle sets state on ${typeName(obj)}, which a plain state_dict never does`);
        }
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!hooks.persistentLoad) fail('pickle uses persistent ids, which are not allowed here');
        stack.push(call(() => hooks.persistentLoad!(pid)));
        break;
      }
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} ('${String.fromCharCode(op)}')`);
    }
  }
}

/**
 * Map/Set keys: tuples of plain values become a string so equal tuples collide as in
 * Python. Lists, dicts and sets are unhashable in Python, so no real pickle uses them
 * as keys; refusing them (and bounding tuple depth) keeps this from recursing far.
 */
function hashable(k: unknown, depth = 0): unknown {
  if (Array.isArray(k) || k instanceof PyDict || k instanceof Set) {
    throw new Error(`corrupt pickle: unhashable ${typeName(k)} used as a dict key or set member`);
  }
  if (k instanceof PyTuple) {
    if (depth >= 100) throw new Error('corrupt pickle: a dict key nests tuples more than 100 deep');
    return `(${k.items.map((x) => String(hashable(x, depth + 1))).join(', ')})`;
  }
  return k;
}

export function typeName(v: unknown): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'list';
  if (v instanceof PyTuple) return 'tuple';
  if (v instanceof PyDict) return v.className;
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof Set) return 'set';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'string') return 'str';
  if (typeof v === 'boolean') return 'bool';
  return typeof v;
}
