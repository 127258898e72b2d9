// What the DiT paper reports (Peebles & Xie 2023; /work/shared/REFERENCE.md), as data,
// so the notebooks can put the paper's numbers beside the runs' and compute the same
// statistics on both. Facts of the paper only: nothing here is a result of this kit.
import { GflopsFidStats } from '../figures/specs';
import { parseModelName } from '../model/config';
import { pearson, powerLawFit, spearman, studentTPpf } from '../figures/stats';

/** Table 4: forward Gflops and FID-50K after 400K steps (no guidance), by config name (S/8 ... XL/2). */
export const TABLE4: Readonly<Record<string, { gflops: number; fid: number }>> = {
  'S/8': { gflops: 0.36, fid: 153.6 },
  'S/4': { gflops: 1.41, fid: 100.41 },
  'S/2': { gflops: 6.06, fid: 68.4 },
  'B/8': { gflops: 1.42, fid: 122.74 },
  'B/4': { gflops: 5.56, fid: 68.38 },
  'B/2': { gflops: 23.01, fid: 43.47 },
  'L/8': { gflops: 5.03, fid: 118.87 },
  'L/4': { gflops: 19.7, fid: 45.64 },
  'L/2': { gflops: 80.71, fid: 23.33 },
  'XL/8': { gflops: 7.39, fid: 106.41 },
  'XL/4': { gflops: 29.05, fid: 43.01 },
  'XL/2': { gflops: 118.64, fid: 19.47 },
};

/** Forward Gflops of the four conditioning designs on DiT-XL/2 (Sec. 3.2). */
export const VARIANT_GFLOPS: Readonly<Record<string, number>> = {
  'in-context': 119.4,
  'cross-attention': 137.6,
  adaln: 118.6,
  'adaln-zero': 118.6,
};

/** The paper's training length for Figs. 5, 6, 8 and Table 4. */
export const PAPER_STEPS = 400_000;

/** Fig. 5: adaLN-Zero's FID at 400K steps is about half of in-context's. */
export const FIG5_ADALN_ZERO_OVER_IN_CONTEXT = 0.5;

/** Fig. 10: sampling step counts of the paper (FID-10K after 400K steps). */
export const FIG10_SAMPLING_STEPS = [16, 32, 64, 128, 256, 1000] as const;

/** 'mini-XL/2' or 'DiT-XL/2' -> 'XL/2' (the Table 4 key of the same grid cell), else null. */
export function table4Key(model: string): string | null {
  const m = parseModelName(model);
  return m && TABLE4[`${m.size}/${m.patch}`] ? `${m.size}/${m.patch}` : null;
}

/** Two-sided confidence interval of a power-law exponent b (t quantile with n - 2 degrees of freedom). */
export function exponentInterval(b: number, stderr: number, n: number, level = 0.95): [number, number] {
  const t = studentTPpf(1 - (1 - level) / 2, n - 2);
  return [b - t * stderr, b + t * stderr];
}

/**
 * Fig. 8's statistics computed on Table 4 itself (the paper's 12 models): the same
 * correlations and power-law fit that fig8GflopsVsFid computes on the runs, so the two
 * can be read side by side.
 */
export function paperFig8Stats(): Pick<GflopsFidStats, 'log' | 'plain'> & { powerLaw: { a: number; b: number; bStderr: number; r2: number; ci: [number, number] }; n: number } {
  const g = Object.values(TABLE4).map((r) => r.gflops);
  const f = Object.values(TABLE4).map((r) => r.fid);
  const lg = g.map(Math.log10);
  const lf = f.map(Math.log10);
  const pl = powerLawFit(g, f);
  return {
    n: g.length,
    log: { pearson: pearson(lg, lf), spearman: spearman(lg, lf) },
    plain: { pearson: pearson(g, f), spearman: spearman(g, f) },
    powerLaw: { a: pl.a, b: pl.b, bStderr: pl.bStderr, r2: pl.logFit.r ** 2, ci: exponentInterval(pl.b, pl.bStderr, g.length) },
  };
}
