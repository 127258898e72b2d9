// Seeded, serialisable random numbers (xoshiro128**), so that initialisation,
// label dropout, timesteps and noise are reproducible and a checkpoint can store
// the generator state for bit-exact resume.

export type RngState = [number, number, number, number];

/**
 * splitmix32 reads a seed as a 32-bit unsigned integer, so these are the seeds the generator
 * tells apart: 2^32 would repeat seed 0's stream, -1 seed 2^32 - 1's, 0.5 seed 0's.
 */
export const SEED_MAX = 0xffffffff;
export const SEED_ALLOWED = `an integer in [0, ${SEED_MAX}]`;

export function isSeed(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) >= 0 && (v as number) <= SEED_MAX;
}

/** The one check of every seed that enters the kit (configs, flags, the Rng constructor). */
export function checkSeed(seed: unknown, what = 'seed'): number {
  if (!isSeed(seed)) throw new Error(`${what} must be ${SEED_ALLOWED} (the generator's 32-bit seeds), got ${String(seed)}`);
  return seed;
}

/**
 * The seed of a stream computed from a checked seed (seed + 1, seed * K + epoch): reduced
 * to 32 bits exactly as the generator always read such values, so derived streams are unchanged.
 */
export function derivedSeed(x: number): number {
  if (!Number.isSafeInteger(x)) throw new Error(`derived seed must be a safe integer, got ${x}`);
  return x >>> 0;
}

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Rng {
  private s: Uint32Array;
  /** A cached second normal from Box-Muller. */
  private spare: number | null = null;

  constructor(seed: number | RngState) {
    this.s = new Uint32Array(4);
    if (typeof seed === 'number') {
      const sm = splitmix32(checkSeed(seed, 'Rng: seed'));
      for (let i = 0; i < 4; i++) this.s[i] = sm();
    } else {
      this.s.set(seed);
      if (this.s.every((v) => v === 0)) throw new Error('Rng: all-zero state is invalid');
    }
  }

  /** Next raw 32-bit unsigned integer. */
  nextU32(): number {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return r;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  uniform(): number {
    return this.nextU32() / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  fillUniform(out: Float32Array, lo = 0, hi = 1): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = lo + (hi - lo) * this.uniform();
    return out;
  }

  fillNormal(out: Float32Array, mean = 0, std = 1): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = mean + std * this.normal();
    return out;
  }

  /** A generator derived from this one (advances this one by one step). */
  fork(): Rng {
    // XOR yields a signed 32-bit value; >>> 0 is the same seed as an unsigned one.
    return new Rng((this.nextU32() ^ 0x5bd1e995) >>> 0);
  }

  getState(): { s: RngState; spare: number | null } {
    return { s: Array.from(this.s) as RngState, spare: this.spare };
  }

  static fromState(state: { s: RngState; spare: number | null }): Rng {
    const r = new Rng(state.s);
    r.spare = state.spare;
    return r;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
