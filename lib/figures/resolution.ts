// When a comparison of two FIDs decides anything: each FID's bootstrap standard error
// (fid_se), the spread between training seeds (from a study's seed replicates), and the
// gate on the samples' scale. A comparison counts only when it is resolved:
//   |delta| > 1.96 * sqrt(se1^2 + se2^2 + 2 * se_seed^2),
// and a model whose samples are off the data's scale is flagged and left out of fits.
import type { ResultRow } from '../results/registry';
import { SAMPLE_STD_BAND } from '../sample/health';
import { pearson } from './stats';
import { Rng } from '../util/rng';

/** Samples' std over the data's outside this band: the model has not learned the data's scale (sample/health). */
export const STD_RATIO_GATE: readonly [number, number] = SAMPLE_STD_BAND;
export const Z95 = 1.96;

const num = (r: ResultRow, c: keyof ResultRow): number | null => {
  const v = r[c];
  if (v === null || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
};

/** The row's samples' std over the data's (its own column, else the Fig. 7 companion's value for its cell). */
export function stdRatio(r: ResultRow, sampleScale: Record<string, number> = {}): number | null {
  return num(r, 'sample_std_ratio') ?? sampleScale[String(r.cell ?? '')] ?? null;
}

/** true: inside the gate; false: off-scale; null: not measured. */
export function onScale(ratio: number | null): boolean | null {
  return ratio === null ? null : ratio >= STD_RATIO_GATE[0] && ratio <= STD_RATIO_GATE[1];
}

export interface SeedSpread {
  /** Between-seed standard deviation of one run's FID (sampling noise removed); 0 without replicates. */
  se: number;
  /** Replicate pairs it was estimated from. */
  pairs: number;
  /** One line per pair: model, step, the two FIDs. */
  lines: string[];
}

/**
 * The between-seed spread of FID from an experiment's seed replicates: every row whose
 * seed differs from the experiment's main seed is paired with the main-seed row of the
 * same model, variant, step and sampling setting. Per pair, var(F1 - F2) = 2 s_seed^2 +
 * se1^2 + se2^2, so s_seed^2 = mean over pairs of (delta^2 - se1^2 - se2^2) / 2 (floored at 0).
 */
export function seedSpread(rows: readonly ResultRow[], experiment: string, featureNet: string | null): SeedSpread {
  const sel = rows.filter((r) => String(r.experiment) === experiment && (String(r.feature_net ?? '') || null) === featureNet && num(r, 'fid') !== null && r.study !== 'calibration');
  if (!sel.length) return { se: 0, pairs: 0, lines: [] };
  const count = new Map<number, number>();
  for (const r of sel) count.set(num(r, 'seed') ?? 0, (count.get(num(r, 'seed') ?? 0) ?? 0) + 1);
  const main = [...count.entries()].sort((a, b) => b[1] - a[1])[0][0];
  const key = (r: ResultRow) => `${r.model}|${r.variant}|${r.train_step}|${r.sampler}|${r.sampling_steps}|${r.cfg_scale}|${r.num_samples}`;
  const base = new Map<string, ResultRow>();
  for (const r of sel) if ((num(r, 'seed') ?? 0) === main) base.set(key(r), r);
  const seen = new Set<string>();
  let acc = 0;
  const lines: string[] = [];
  for (const r of sel) {
    const s = num(r, 'seed') ?? 0;
    const b = base.get(key(r));
    if (s === main || !b || seen.has(`${key(r)}|${s}`)) continue;
    seen.add(`${key(r)}|${s}`);
    const d = num(r, 'fid')! - num(b, 'fid')!;
    const se1 = num(r, 'fid_se') ?? 0, se2 = num(b, 'fid_se') ?? 0;
    acc += (d * d - se1 * se1 - se2 * se2) / 2;
    lines.push(`${r.model} step ${r.train_step}: seed ${main} FID ${num(b, 'fid')!.toFixed(2)}, seed ${s} FID ${num(r, 'fid')!.toFixed(2)} (delta ${d.toFixed(2)})`);
  }
  const pairs = lines.length;
  return { se: pairs ? Math.sqrt(Math.max(0, acc / pairs)) : 0, pairs, lines };
}

export type Resolution = 'agree' | 'against' | 'unresolved';

export interface Comparison {
  status: Resolution;
  /** other - expectedLower (positive: as expected). */
  delta: number;
  /** 1.96 * sqrt(se1^2 + se2^2 + 2 se_seed^2). */
  threshold: number;
}

/** Is `expectedLower` lower than `other`, beyond the noise? Missing se counts as 0. */
export function compareFid(expectedLower: { fid: number; se: number | null }, other: { fid: number; se: number | null }, seSeed = 0): Comparison {
  const delta = other.fid - expectedLower.fid;
  const threshold = Z95 * Math.sqrt((expectedLower.se ?? 0) ** 2 + (other.se ?? 0) ** 2 + 2 * seSeed * seSeed);
  return { status: delta > threshold ? 'agree' : -delta > threshold ? 'against' : 'unresolved', delta, threshold };
}

/** Counts of a list of comparisons. */
export function tally(cs: readonly Comparison[]): Record<Resolution, number> {
  const t = { agree: 0, against: 0, unresolved: 0 };
  for (const c of cs) t[c.status]++;
  return t;
}

/**
 * Bootstrap interval of Pearson r between log x and log y: models resampled with
 * replacement, each y perturbed by its noise (sqrt(se^2 + se_seed^2)) first. Percentile interval.
 */
export function bootstrapLogPearson(
  x: readonly number[], y: readonly number[], yse: readonly (number | null)[], seSeed = 0, o: { rounds?: number; seed?: number; level?: number } = {},
): [number, number] {
  const n = x.length;
  if (n < 3) throw new Error(`bootstrapLogPearson: needs at least 3 points, got ${n}`);
  const rounds = o.rounds ?? 2000;
  const rng = new Rng(o.seed ?? 0);
  const rs: number[] = [];
  for (let k = 0; k < rounds; k++) {
    const lx: number[] = [], ly: number[] = [];
    for (let i = 0; i < n; i++) {
      const j = rng.int(n);
      const sd = Math.sqrt((yse[j] ?? 0) ** 2 + seSeed * seSeed);
      lx.push(Math.log10(x[j]));
      ly.push(Math.log10(Math.max(1e-9, y[j] + sd * rng.normal())));
    }
    // A resample of one repeated model has no correlation: skip it.
    if (new Set(lx).size < 2) continue;
    rs.push(pearson(lx, ly).r);
  }
  rs.sort((a, b) => a - b);
  const a = (1 - (o.level ?? 0.95)) / 2;
  const q = (p: number) => rs[Math.min(rs.length - 1, Math.max(0, Math.floor(p * rs.length)))];
  return [q(a), q(1 - a)];
}
