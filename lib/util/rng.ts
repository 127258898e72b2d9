// Seeded, serialisable random numbers (xoshiro128**), so that initialisation,
// label dropout, timesteps and noise are reproducible and a checkpoint can store
// the generator state for bit-exact resume.

export type RngState = [number, number, number, number];

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
      if (!Number.isFinite(seed)) throw new Error(`Rng: seed must be a finite number, got ${seed}`);
      const sm = splitmix32(Math.floor(seed));
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
    return new Rng(this.nextU32() ^ 0x5bd1e995);
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
