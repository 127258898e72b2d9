// The data order of every trainer: which samples make up each batch and which of them are
// mirrored. One Fisher-Yates shuffle, one way of drawing flips; the DiT and autoencoder
// trainers shuffle epoch by epoch from the seed alone (resumable at any sample), the
// feature network keeps the order its cached networks were trained with (StreamOrder).
import { derivedSeed, Rng } from '../util/rng';

/** Shuffles p in place (Fisher-Yates, from the last element down), drawing from rng. */
export function shuffleInPlace(p: Int32Array, rng: Rng): Int32Array {
  for (let i = p.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/** The permutation of epoch `epoch` of n samples: a function of (n, seed, epoch) alone. */
export function epochPermutation(n: number, seed: number, epoch: number): Int32Array {
  return shuffleInPlace(Int32Array.from({ length: n }, (_, i) => i), new Rng(derivedSeed(seed * 1000003 + epoch + 1)));
}

/**
 * Epoch-wise shuffling from the seed alone: sample k of the run (k = step x batch + i) is
 * index(k), epoch floor(k / n) a fresh permutation. Batches run across epoch boundaries and
 * nothing depends on the run's stream, so a resumed run sees the same order from any k.
 */
export class EpochOrder {
  private epoch = -1;
  private perm = new Int32Array(0);
  constructor(private readonly n: number, private readonly seed: number) {
    if (!(Number.isSafeInteger(n) && n > 0)) throw new Error(`EpochOrder: needs a positive number of samples, got ${n}`);
  }

  index(k: number): number {
    const e = Math.floor(k / this.n);
    if (e !== this.epoch) {
      this.perm = epochPermutation(this.n, this.seed, e);
      this.epoch = e;
    }
    return this.perm[k % this.n];
  }

  /** The samples of batch `step` (0-based) of size b. */
  batch(step: number, b: number): Int32Array {
    return Int32Array.from({ length: b }, (_, i) => this.index(step * b + i));
  }
}

/**
 * Horizontal-flip decisions for n samples from the run's stream: one uniform per sample,
 * flipped below 1/2; undefined (and nothing drawn) when flips are off.
 */
export function drawFlips(rng: Rng, n: number, on: boolean): Uint8Array | undefined {
  return on ? Uint8Array.from({ length: n }, () => (rng.uniform() < 0.5 ? 1 : 0)) : undefined;
}

/**
 * The feature network's order: whole batches from a permutation that is reshuffled in place
 * from the run's own stream whenever the next batch would not fit (the remainder of each
 * epoch is dropped), so its draws interleave with the flips'. Not resumable at an index,
 * but its networks (cached by their weights' hash) depend on it, so it stays.
 */
export class StreamOrder {
  private readonly perm: Int32Array;
  private pos: number;
  constructor(n: number, private readonly rng: Rng) {
    if (!(Number.isSafeInteger(n) && n > 0)) throw new Error(`StreamOrder: needs a positive number of samples, got ${n}`);
    this.perm = Int32Array.from({ length: n }, (_, i) => i);
    this.pos = n; // shuffles before the first batch
  }

  /** The next b samples. */
  next(b: number): Int32Array {
    if (!(b >= 1 && b <= this.perm.length)) throw new Error(`StreamOrder: batch of ${b} from ${this.perm.length} samples`);
    if (this.pos + b > this.perm.length) {
      shuffleInPlace(this.perm, this.rng);
      this.pos = 0;
    }
    const out = this.perm.slice(this.pos, this.pos + b);
    this.pos += b;
    return out;
  }
}
