// The scaling law of the held-out diffusion loss (notebook 07): Liang et al., "Scaling
// Laws For Diffusion Transformers" (ICLR 2026) find that the pretraining loss of DiTs
// follows a power law in training compute along the compute-efficient frontier, that
// isoFLOP profiles give the compute-optimal model size, and that the loss tracks FID.
// The same quantities here, from the results registry's val_loss column (the EMA
// model's loss on fixed held-out latents, timesteps and noise; lib/train/validation.ts):
//   lossCurves      per model of the 'scaling' study: (training compute, val_loss)
//   computeFrontier the lower envelope of those curves (no extrapolation)
//   fitPowerLaw     L = a C^-b by least squares in log-log, t and bootstrap intervals of b
//   isoFlop         every model's loss at fixed compute budgets; the best model at each
//   figScalingLaw   the two panels (loss vs compute with the fit; isoFLOP profiles)
// Pure functions on rows: nothing here knows what the runs will show.
import {
  FigureOptions, FigureSpec, MissingDataError, PATCH_ORDER, PlotlyTrace, SIZE_COLOR, SIZE_ORDER, axis, baseLayout, formatGflops, patchStyle, trainGflops,
} from '../figures/specs';
import { Band, logspace, powerLawBand, powerLawFit, PowerLawFit, spearman, Correlation } from '../figures/stats';
import type { ResultRow } from '../results/registry';
import { STD_RATIO_GATE } from '../figures/resolution';
import { Rng } from '../util/rng';
import { interpolateLog } from './findings';
import { exponentInterval } from './paper';
import { parseModelName } from '../model/config';

// ---- row access ------------------------------------------------------------------------------

const num = (r: ResultRow, c: keyof ResultRow): number | null => {
  const v = r[c];
  if (v === null || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
};
const str = (r: ResultRow, c: keyof ResultRow): string => (r[c] === null ? '' : String(r[c]));

// ---- 1. loss curves ---------------------------------------------------------------------------

export interface LossPoint {
  step: number;
  /** Training compute up to this step (Gflops: gflops x batch x steps x 3). */
  compute: number;
  /** Held-out diffusion loss of the EMA model (val_loss). */
  loss: number;
  /** The same row's FID (null when it has none). */
  fid: number | null;
  featureNet: string | null;
  sampleStdRatio: number | null;
}

export interface LossCurve {
  experiment: string;
  model: string;
  variant: string;
  size: string | null;
  patch: number | null;
  seed: number | null;
  /** Forward Gflops per sample and parameter count. */
  gflops: number | null;
  params: number | null;
  /** One point per evaluated training step (newest row per step), by increasing compute. */
  points: LossPoint[];
  /** The last point (highest step). */
  final: LossPoint;
  /** samples' std over the data's at the final step (sample/health), when recorded. */
  sampleStdRatio: number | null;
}

export interface LossCurveOptions {
  /** Experiment (default: the one with the newest 'scaling' row that has a val_loss). */
  experiment?: string;
  /** Conditioning variant (default 'adaln-zero', the paper's). */
  variant?: string;
  /** Seed (default: the most common seed among the selected rows; ties: the lowest). */
  seed?: number;
  /** Study (default 'scaling'). */
  study?: string;
}

function rank(list: readonly (string | number)[], v: string | number | null): number {
  return v === null || !list.includes(v) ? list.length : list.indexOf(v);
}

/** Seeds as they count for "most common": null counts as its own value. */
function mostCommonSeed(rows: readonly ResultRow[]): number | null {
  const count = new Map<number | null, number>();
  for (const r of rows) {
    const s = num(r, 'seed');
    count.set(s, (count.get(s) ?? 0) + 1);
  }
  const sorted = [...count.entries()].sort((a, b) => b[1] - a[1] || (a[0] ?? Infinity) - (b[0] ?? Infinity));
  return sorted.length ? sorted[0][0] : null;
}

/** The experiment whose newest row is newest (ties: alphabetical), as the figures choose. */
function latestExperiment(rows: readonly ResultRow[]): string | null {
  const latest = new Map<string, string>();
  for (const r of rows) {
    const e = str(r, 'experiment');
    const t = str(r, 'timestamp');
    if (!latest.has(e) || t > latest.get(e)!) latest.set(e, t);
  }
  const sorted = [...latest.entries()].sort((a, b) => (a[1] < b[1] ? 1 : a[1] > b[1] ? -1 : a[0].localeCompare(b[0])));
  return sorted.length ? sorted[0][0] : null;
}

/**
 * Each model's held-out loss against training compute: rows of the study ('scaling'),
 * one variant (adaLN-Zero), one experiment and one seed (the most common), with a
 * val_loss and a positive training compute; one point per training step (the newest row
 * when a step was evaluated more than once, e.g. by other sampling settings). Empty when
 * no row qualifies (results written before the val_loss column, or none yet).
 */
export function lossCurves(rows: readonly ResultRow[], opts: LossCurveOptions = {}): LossCurve[] {
  const study = opts.study ?? 'scaling';
  const variant = opts.variant ?? 'adaln-zero';
  let sel = rows.filter((r) => r.study === study && str(r, 'variant') === variant && num(r, 'val_loss') !== null &&
    num(r, 'train_step') !== null && (trainGflops(r) ?? 0) > 0);
  const experiment = opts.experiment ?? latestExperiment(sel);
  if (experiment === null) return [];
  sel = sel.filter((r) => str(r, 'experiment') === experiment);
  const seed = opts.seed !== undefined ? opts.seed : mostCommonSeed(sel);
  sel = sel.filter((r) => num(r, 'seed') === seed);
  const byModel = new Map<string, Map<number, ResultRow>>();
  for (const r of sel) {
    const m = str(r, 'model');
    const steps = byModel.get(m) ?? new Map<number, ResultRow>();
    byModel.set(m, steps);
    const s = num(r, 'train_step')!;
    const old = steps.get(s);
    if (!old || str(r, 'timestamp') >= str(old, 'timestamp')) steps.set(s, r);
  }
  const curves: LossCurve[] = [];
  for (const [model, steps] of byModel) {
    const rs = [...steps.values()];
    const points: LossPoint[] = rs
      .map((r) => ({
        step: num(r, 'train_step')!, compute: trainGflops(r)!, loss: num(r, 'val_loss')!, fid: num(r, 'fid'),
        featureNet: str(r, 'feature_net') || null, sampleStdRatio: num(r, 'sample_std_ratio'),
      }))
      .sort((a, b) => a.compute - b.compute || a.step - b.step);
    const final = points.reduce((a, b) => (b.step > a.step ? b : a));
    const p = parseModelName(model);
    const first = rs[0];
    curves.push({
      experiment, model, variant, size: p?.size ?? null, patch: num(first, 'patch_size') ?? p?.patch ?? null, seed,
      gflops: rs.map((r) => num(r, 'gflops')).find((v) => v !== null) ?? null,
      params: rs.map((r) => num(r, 'params')).find((v) => v !== null) ?? null,
      points, final, sampleStdRatio: final.sampleStdRatio,
    });
  }
  return curves.sort((a, b) => rank(SIZE_ORDER, a.size) - rank(SIZE_ORDER, b.size) || rank(PATCH_ORDER, a.patch) - rank(PATCH_ORDER, b.patch) ||
    (a.gflops ?? 0) - (b.gflops ?? 0) || a.model.localeCompare(b.model));
}

/** A curve's loss at compute c, linear in log compute between its points; null outside its range. */
export function lossAt(curve: LossCurve, c: number): number | null {
  return interpolateLog(curve.points.map((p) => [p.compute, p.loss]), c);
}

// ---- 2. the compute-efficient frontier ------------------------------------------------------------

export interface FrontierPoint {
  model: string;
  step: number;
  compute: number;
  loss: number;
  gflops: number | null;
  params: number | null;
}

/**
 * The lower envelope of the loss curves: a curve's point stays when no other model has a
 * strictly lower loss at the same compute. Other curves are interpolated linearly in log
 * compute and only inside their own range (no extrapolation), so a point where no other
 * model has data is on the frontier. By increasing compute.
 */
export function computeFrontier(curves: readonly LossCurve[]): FrontierPoint[] {
  const out: FrontierPoint[] = [];
  for (const c of curves) {
    for (const p of c.points) {
      const beaten = curves.some((o) => {
        if (o === c || o.model === c.model) return false;
        const l = lossAt(o, p.compute);
        return l !== null && l < p.loss;
      });
      if (!beaten) out.push({ model: c.model, step: p.step, compute: p.compute, loss: p.loss, gflops: c.gflops, params: c.params });
    }
  }
  return out.sort((a, b) => a.compute - b.compute || a.loss - b.loss);
}

/** The frontier's owners: each model with its number of frontier points and their compute range. */
export function frontierOwners(
  frontier: readonly FrontierPoint[],
): Array<{ model: string; gflops: number | null; params: number | null; points: number; compute_from: number; compute_to: number }> {
  const by = new Map<string, FrontierPoint[]>();
  for (const p of frontier) by.set(p.model, [...(by.get(p.model) ?? []), p]);
  return [...by.entries()]
    .map(([model, ps]) => ({
      model, gflops: ps[0].gflops, params: ps[0].params, points: ps.length,
      compute_from: Math.min(...ps.map((p) => p.compute)), compute_to: Math.max(...ps.map((p) => p.compute)),
    }))
    .sort((a, b) => a.compute_from - b.compute_from);
}

// ---- 3. the power law ------------------------------------------------------------------------------

export interface ScalingLawFit {
  /** L = a C^-b */
  a: number;
  b: number;
  r2: number;
  n: number;
  /** Standard error of b (OLS in log-log). */
  bStderr: number;
  level: number;
  /** b +- t_{(1+level)/2, n-2} se. */
  tInterval: [number, number];
  /** Percentile interval of b over bootstrap resamples of the points. */
  bootstrap: { interval: [number, number]; rounds: number; used: number; seed: number };
  /** The underlying log10 fit (stats.powerLawFit: slope = -b), for bands. */
  fit: PowerLawFit;
}

export interface FitOptions {
  level?: number;
  /** Bootstrap resamples (default 2000). */
  rounds?: number;
  /** Seed of the resampling (default 0). */
  seed?: number;
}

/** Quantile with linear interpolation between order statistics (numpy's default). */
function quantile(sorted: readonly number[], q: number): number {
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/**
 * L = a C^-b by ordinary least squares of log L on log C (stats.powerLawFit), with R^2,
 * the standard error of b, its Student-t interval (n - 2 degrees of freedom) and a
 * bootstrap percentile interval (points resampled with replacement, a seeded Rng;
 * resamples whose compute values are all equal have no slope and are skipped). Needs
 * at least 3 points with positive values and two distinct compute values.
 */
export function fitPowerLaw(points: ReadonlyArray<readonly [number, number]>, o: FitOptions = {}): ScalingLawFit {
  const level = o.level ?? 0.95;
  const rounds = o.rounds ?? 2000;
  const seed = o.seed ?? 0;
  const x = points.map((p) => p[0]);
  const y = points.map((p) => p[1]);
  const fit = powerLawFit(x, y);
  const b = -fit.b;
  const n = points.length;
  const [lo, hi] = exponentInterval(fit.b, fit.bStderr, n, level);
  const rng = new Rng(seed);
  const lx = x.map(Math.log10);
  const ly = y.map(Math.log10);
  const bs: number[] = [];
  for (let k = 0; k < rounds; k++) {
    let sx = 0, sy = 0;
    const idx = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      idx[i] = rng.int(n);
      sx += lx[idx[i]];
      sy += ly[idx[i]];
    }
    const mx = sx / n;
    const my = sy / n;
    let sxx = 0, sxy = 0;
    for (const i of idx) {
      sxx += (lx[i] - mx) ** 2;
      sxy += (lx[i] - mx) * (ly[i] - my);
    }
    if (sxx <= 1e-24 * n) continue;
    bs.push(-sxy / sxx);
  }
  bs.sort((p, q) => p - q);
  const tail = (1 - level) / 2;
  const interval: [number, number] = bs.length ? [quantile(bs, tail), quantile(bs, 1 - tail)] : [NaN, NaN];
  return {
    a: fit.a, b, r2: fit.logFit.r ** 2, n, bStderr: fit.bStderr, level,
    tInterval: [-hi, -lo], bootstrap: { interval, rounds, used: bs.length, seed }, fit,
  };
}

/** The fitted law and its confidence band of the mean (t, in log space) at compute values xs. */
export function scalingLawBand(f: ScalingLawFit, xs: readonly number[]): Band {
  return powerLawBand(f.fit, xs, f.level);
}

// ---- 4. isoFLOP profiles -----------------------------------------------------------------------------

export interface IsoFlopEntry {
  model: string;
  gflops: number | null;
  params: number | null;
  loss: number;
}

export interface IsoFlopBudget {
  /** Training compute (Gflops). */
  budget: number;
  /** Every model with data at this compute, by increasing Gflops. */
  models: IsoFlopEntry[];
  /** The lowest loss (null: no model has data here). */
  best: IsoFlopEntry | null;
}

export interface IsoFlopResult {
  budgets: IsoFlopBudget[];
  /** The compute range where at least minModels models have data (default budgets lie in it); null when there is none. */
  range: [number, number] | null;
  minModels: number;
}

export interface IsoFlopOptions {
  /** Default budgets lie where at least this many models have data (default 3). */
  minModels?: number;
  /** How many default budgets (default 5, log-spaced). */
  count?: number;
}

/** The smallest and largest compute at which at least k curves have data (closed ranges), or null. */
export function overlapRange(curves: readonly LossCurve[], k: number): [number, number] | null {
  const ranges = curves.filter((c) => c.points.length).map((c) => [c.points[0].compute, c.points[c.points.length - 1].compute] as const);
  const ends = [...new Set(ranges.flat())].sort((a, b) => a - b);
  const ok = ends.filter((x) => ranges.filter(([lo, hi]) => lo <= x && x <= hi).length >= k);
  return ok.length ? [ok[0], ok[ok.length - 1]] : null;
}

/**
 * IsoFLOP profiles: at each training-compute budget, every model's loss there (linear in
 * log compute, only inside a model's own range) and the best (lowest-loss) model with
 * its Gflops and parameters. Default budgets: `count` log-spaced values over the range
 * where at least `minModels` models have data (none when no such range exists).
 */
export function isoFlop(curves: readonly LossCurve[], budgets?: readonly number[], o: IsoFlopOptions = {}): IsoFlopResult {
  const minModels = o.minModels ?? 3;
  const range = overlapRange(curves, minModels);
  let bs: number[];
  if (budgets) bs = [...budgets];
  else if (!range) bs = [];
  else if (range[0] === range[1]) bs = [range[0]];
  else {
    // Clamped to the range: 10^log10(x) may differ from x in the last digit.
    bs = logspace(range[0], range[1], o.count ?? 5).map((v) => Math.min(range[1], Math.max(range[0], v)));
    bs[0] = range[0];
    bs[bs.length - 1] = range[1];
  }
  const out = bs.map((budget) => {
    const models: IsoFlopEntry[] = [];
    for (const c of curves) {
      const loss = lossAt(c, budget);
      if (loss !== null) models.push({ model: c.model, gflops: c.gflops, params: c.params, loss });
    }
    models.sort((a, b) => (a.gflops ?? 0) - (b.gflops ?? 0) || a.model.localeCompare(b.model));
    const best = models.length ? models.reduce((a, b) => (b.loss < a.loss ? b : a)) : null;
    return { budget, models, best };
  });
  return { budgets: out, range, minModels };
}

export type BestTrend = 'grows' | 'constant' | 'shrinks' | 'mixed' | 'not testable';

export interface BestModelTrend {
  trend: BestTrend;
  /** Budgets that have a best model, in increasing order. */
  sequence: Array<{ budget: number; model: string; gflops: number | null; params: number | null; models: number }>;
  increases: number;
  decreases: number;
  unchanged: number;
  /** Slope of log10 best-model params on log10 budget (N_opt ~ C^slope; crude on a discrete grid), null with fewer than 3 budgets. */
  paramsSlope: number | null;
  /** A sentence with the numbers. */
  text: string;
}

/**
 * Whether the best model at each isoFLOP budget grows with the budget, from the numbers:
 * 'grows' when its Gflops never fall from one budget to the next and rise at least once,
 * 'constant' when the same Gflops win everywhere, 'shrinks' when they never rise and fall
 * at least once, 'mixed' otherwise; 'not testable' with fewer than two budgets that have a
 * best model, or one that compares fewer than two models.
 */
export function bestModelTrend(iso: IsoFlopResult): BestModelTrend {
  const seq = iso.budgets.filter((b) => b.best).sort((a, b) => a.budget - b.budget)
    .map((b) => ({ budget: b.budget, model: b.best!.model, gflops: b.best!.gflops, params: b.best!.params, models: b.models.length }));
  let inc = 0, dec = 0, same = 0;
  for (let i = 1; i < seq.length; i++) {
    const d = (seq[i].gflops ?? 0) - (seq[i - 1].gflops ?? 0);
    if (d > 0) inc++;
    else if (d < 0) dec++;
    else same++;
  }
  let paramsSlope: number | null = null;
  const withParams = seq.filter((s) => (s.params ?? 0) > 0);
  if (withParams.length >= 3) {
    try {
      paramsSlope = powerLawFit(withParams.map((s) => s.budget), withParams.map((s) => s.params!)).b;
    } catch {
      paramsSlope = null;
    }
  }
  const path = seq.map((s) => `${s.model} at ${s.budget.toPrecision(3)}`).join(' -> ');
  let trend: BestTrend;
  let text: string;
  if (seq.length < 2 || seq.some((s) => s.models < 2)) {
    trend = 'not testable';
    text = seq.length < 2
      ? `fewer than two isoFLOP budgets have a best model (${seq.length}), so whether it grows with the budget cannot be said`
      : `at ${seq.filter((s) => s.models < 2).length} budget(s) only one model has data, so there is nothing to choose between`;
  } else if (dec === 0 && inc > 0) {
    trend = 'grows';
    text = `the best model grows with the budget: its Gflops rise at ${inc} of ${seq.length - 1} steps between budgets and never fall (${path})`;
  } else if (inc === 0 && dec === 0) {
    trend = 'constant';
    text = `the same model is best at every budget (${seq[0].model}), so within this range the compute-optimal size does not change`;
  } else if (inc === 0) {
    trend = 'shrinks';
    text = `the best model gets SMALLER as the budget grows: its Gflops fall at ${dec} of ${seq.length - 1} steps (${path})`;
  } else {
    trend = 'mixed';
    text = `the best model does not grow steadily: its Gflops rise at ${inc} and fall at ${dec} of ${seq.length - 1} steps between budgets (${path})`;
  }
  return { trend, sequence: seq, increases: inc, decreases: dec, unchanged: same, paramsSlope, text };
}

// ---- the loss and FID ------------------------------------------------------------------------------

export interface LossFidCorrelation {
  /** The models with a final val_loss and FID. */
  points: Array<{ model: string; loss: number; fid: number; step: number; sampleStdRatio: number | null; offScale: boolean }>;
  /** Spearman's rho of final val_loss vs final FID over models (null with fewer than 3 or constant values). */
  all: Correlation | null;
  /** The same without models whose samples are off the data's scale (figures/resolution STD_RATIO_GATE). */
  onScale: Correlation | null;
  featureNets: string[];
  text: string;
}

function safeSpearman(x: number[], y: number[]): Correlation | null {
  if (x.length < 3) return null;
  try {
    return spearman(x, y);
  } catch {
    return null;
  }
}

const fmtRho = (c: Correlation) => `rho = ${c.r.toFixed(3)} (p ${c.p < 1e-3 ? c.p.toExponential(1) : c.p.toFixed(3)}, n = ${c.n})`;

/**
 * Does the held-out loss rank models as FID does? Spearman's rho over models of the final
 * step's val_loss against its FID (stats.spearman), for all of them and for those whose
 * samples are on the data's scale. Positive rho: lower loss, lower FID (as Liang et al.).
 */
export function lossFidCorrelation(curves: readonly LossCurve[]): LossFidCorrelation {
  const [lo, hi] = STD_RATIO_GATE;
  const points = curves.filter((c) => c.final.fid !== null).map((c) => ({
    model: c.model, loss: c.final.loss, fid: c.final.fid!, step: c.final.step, sampleStdRatio: c.sampleStdRatio,
    offScale: c.sampleStdRatio !== null && (c.sampleStdRatio < lo || c.sampleStdRatio > hi),
  }));
  const all = safeSpearman(points.map((p) => p.loss), points.map((p) => p.fid));
  const on = points.filter((p) => !p.offScale);
  const onScale = on.length < points.length ? safeSpearman(on.map((p) => p.loss), on.map((p) => p.fid)) : all;
  const featureNets = [...new Set(curves.filter((c) => c.final.fid !== null).map((c) => c.final.featureNet ?? ''))];
  let text: string;
  if (!all) {
    text = `${points.length} model(s) have a final val_loss and FID: too few (or all equal) for a rank correlation (needs 3)`;
  } else {
    const verdict = all.r > 0 && all.p < 0.05 ? 'the loss tracks FID (significant positive rank correlation, as Liang et al.)'
      : all.r > 0 ? 'same direction as Liang et al. (lower loss, lower FID) but not significant at 0.05'
        : 'the loss does NOT track FID here (rho <= 0)';
    const off = points.filter((p) => p.offScale);
    text = `final val_loss vs final FID over models: ${fmtRho(all)}: ${verdict}` +
      (off.length ? `; without the ${off.length} model(s) whose samples are off the data's scale (${off.map((p) => p.model).join(', ')}): ${onScale ? fmtRho(onScale) : 'too few left'}` : '');
  }
  if (featureNets.length > 1) text += ` (caution: the FIDs mix feature networks ${featureNets.join(', ')})`;
  return { points, all, onScale, featureNets, text };
}

// ---- the whole analysis, as the notebook prints it ----------------------------------------------------

export interface ScalingLawAnalysis {
  experiment: string | null;
  curves: LossCurve[];
  frontier: FrontierPoint[];
  /** The power law fitted to the frontier (null: fewer than 3 frontier points or one compute value). */
  fit: ScalingLawFit | null;
  fitProblem: string | null;
  iso: IsoFlopResult;
  /** Set when the isoFLOP budgets had to fall back to fewer overlapping models. */
  isoNote: string | null;
  trend: BestModelTrend;
  lossFid: LossFidCorrelation;
  /** Why nothing could be analysed (no val_loss rows), or null. */
  problem: string | null;
}

/** Why the rows hold no loss curves, in words. */
function noCurvesReason(rows: readonly ResultRow[], o: LossCurveOptions): string {
  const study = o.study ?? 'scaling';
  const inStudy = rows.filter((r) => r.study === study && (o.experiment === undefined || str(r, 'experiment') === o.experiment));
  const where = `${o.experiment !== undefined ? `experiment '${o.experiment}', ` : ''}study '${study}'`;
  if (!inStudy.length) return `no results for ${where} yet: nothing to fit`;
  const withLoss = inStudy.filter((r) => num(r, 'val_loss') !== null);
  if (!withLoss.length) {
    return `the ${inStudy.length} result row(s) of ${where} have no val_loss (results written before the validation-loss column, or an experiment without eval.valLatents): rerun the sweep to get the held-out loss`;
  }
  return `the ${withLoss.length} row(s) of ${where} with a val_loss lack the variant '${o.variant ?? 'adaln-zero'}', a training step or a training compute`;
}

/** Every piece of notebook 07's analysis from result rows; `problem` says why when there is nothing to analyse. */
export function scalingLawAnalysis(rows: readonly ResultRow[], o: LossCurveOptions & FitOptions = {}): ScalingLawAnalysis {
  const curves = lossCurves(rows, o);
  const frontier = computeFrontier(curves);
  let fit: ScalingLawFit | null = null;
  let fitProblem: string | null = null;
  const distinct = new Set(frontier.map((p) => p.compute)).size;
  if (frontier.length < 3 || distinct < 2) {
    fitProblem = `the frontier has ${frontier.length} point(s) at ${distinct} compute value(s): a power law needs at least 3 points at 2 or more`;
  } else if (frontier.some((p) => !(p.loss > 0))) {
    fitProblem = 'a frontier loss is not positive, so no log-log fit';
  } else {
    fit = fitPowerLaw(frontier.map((p) => [p.compute, p.loss] as const), o);
  }
  let iso = isoFlop(curves);
  let isoNote: string | null = null;
  if (!iso.budgets.length && curves.length >= 2) {
    const two = isoFlop(curves, undefined, { minModels: 2 });
    if (two.budgets.length) {
      isoNote = `no training compute is reached by 3 or more models, so the budgets lie where 2 models overlap (${two.range![0].toPrecision(3)}-${two.range![1].toPrecision(3)} Gflops)`;
      iso = two;
    }
  }
  return {
    experiment: curves[0]?.experiment ?? null, curves, frontier, fit, fitProblem, iso, isoNote, trend: bestModelTrend(iso), lossFid: lossFidCorrelation(curves),
    problem: curves.length ? null : noCurvesReason(rows, o),
  };
}

/** FLOPs per "Gflop" of the kit's compute columns: they count multiply-adds (one MAC = one flop, the DiT paper's convention), a MAC is 2 FLOPs. */
export const FLOPS_PER_GFLOP = 2e9;

const sig = (v: number | null | undefined, d = 3) => (v === null || v === undefined || !Number.isFinite(v) ? '' : Number(v.toPrecision(d)));

/** One row per model: Gflops, params, compute range, first and final loss, final FID and sample scale. */
export function lossCurveTable(curves: readonly LossCurve[]): Array<Record<string, string | number>> {
  return curves.map((c) => ({
    model: c.model, gflops: sig(c.gflops, 4), params: c.params ?? '', evaluations: c.points.length,
    compute_from: sig(c.points[0].compute), compute_to: sig(c.points[c.points.length - 1].compute),
    first_loss: sig(c.points[0].loss, 4), final_step: c.final.step, final_loss: sig(c.final.loss, 4), final_fid: sig(c.final.fid, 4),
    sample_std_ratio: sig(c.sampleStdRatio),
  }));
}

/** The fitted law's numbers, one row. */
export function fitTable(f: ScalingLawFit): Array<Record<string, string | number>> {
  const lv = Math.round(f.level * 100);
  return [{
    law: 'val_loss = a * C^-b (C: training Gflops)', points: f.n, a: sig(f.a, 4), b: sig(f.b, 4), b_stderr: sig(f.bStderr),
    [`b_t${lv}_low`]: sig(f.tInterval[0]), [`b_t${lv}_high`]: sig(f.tInterval[1]),
    [`b_boot${lv}_low`]: sig(f.bootstrap.interval[0]), [`b_boot${lv}_high`]: sig(f.bootstrap.interval[1]), r2: sig(f.r2, 4),
  }];
}

/** One row per budget: the best model and every model's loss there. */
export function isoFlopTable(iso: IsoFlopResult): Array<Record<string, string | number>> {
  return iso.budgets.map((b) => ({
    budget_gflops: sig(b.budget), models: b.models.length, best_model: b.best?.model ?? '(none)', best_gflops: sig(b.best?.gflops, 4),
    best_params: b.best?.params ?? '', best_loss: sig(b.best?.loss, 4),
    losses: b.models.map((m) => `${m.model} ${m.loss.toFixed(4)}`).join(', '),
  }));
}

/** The runs' compute range, in Gflops and FLOPs, beside Liang et al.'s. */
export function computeRangeLine(a: ScalingLawAnalysis): string {
  if (a.problem) return `No scaling-law analysis: ${a.problem}.`;
  const cs = a.curves.flatMap((c) => c.points.map((p) => p.compute));
  const [cmin, cmax] = [Math.min(...cs), Math.max(...cs)];
  return `${a.curves.length} model(s) of experiment ${a.experiment} (seed ${a.curves[0].seed ?? 'n/a'}), training compute ${cmin.toPrecision(3)}-${cmax.toPrecision(3)} Gflops ` +
    `= about ${(cmin * FLOPS_PER_GFLOP).toExponential(1)}-${(cmax * FLOPS_PER_GFLOP).toExponential(1)} FLOPs (the kit's Gflops count multiply-adds; ` +
    `Liang et al. span 1e17-6e18 FLOPs, ${Math.log10(1e17 / (cmax * FLOPS_PER_GFLOP)).toFixed(1)} orders of magnitude above this run's largest budget).`;
}

/** The fitted law with its standard error, t-interval and bootstrap interval, and whether the loss falls. */
export function fitLines(a: ScalingLawAnalysis): string[] {
  if (a.problem) return [`No scaling-law analysis: ${a.problem}.`];
  const f = a.fit;
  if (!f) return [`No power law: ${a.fitProblem}.`];
  const lv = Math.round(f.level * 100);
  return [
    `Along the compute frontier (${f.n} points): val_loss = ${f.a.toPrecision(4)} * C^-${f.b.toFixed(4)}, R^2 = ${f.r2.toFixed(3)}; ` +
      `b = ${f.b.toFixed(4)} +- ${f.bStderr.toFixed(4)} (se), ${lv}% t-interval ${f.tInterval[0].toFixed(4)} .. ${f.tInterval[1].toFixed(4)}, ` +
      `${lv}% bootstrap interval ${f.bootstrap.interval[0].toFixed(4)} .. ${f.bootstrap.interval[1].toFixed(4)} (${f.bootstrap.used} of ${f.bootstrap.rounds} resamples).`,
    f.tInterval[0] > 0 && f.bootstrap.interval[0] > 0
      ? 'The loss falls with compute along the frontier: both intervals of b lie above 0.'
      : f.b > 0 ? 'The loss falls with compute along the frontier, but an interval of b reaches 0: the fall is not established at this precision.'
        : 'The loss does NOT fall with compute along the frontier (b <= 0).',
  ];
}

/** Who owns the frontier, and how independent its points are. */
export function frontierLines(a: ScalingLawAnalysis): string[] {
  if (a.problem) return [`No scaling-law analysis: ${a.problem}.`];
  const owners = frontierOwners(a.frontier);
  const shared = owners.filter((o) => o.points > 1).reduce((s, o) => s + o.points, 0);
  const out = [`The frontier (${a.frontier.length} points) is owned by ${owners.map((o) => `${o.model} (${o.points} point${o.points > 1 ? 's' : ''}, ${o.compute_from.toPrecision(3)}-${o.compute_to.toPrecision(3)} Gflops)`).join(', ')}.`];
  if (shared) {
    out.push(`${shared} of its ${a.frontier.length} points are successive evaluations of the same run (one model, several steps): they are not independent, so both intervals of b are narrower than independent runs would give.`);
  }
  return out;
}

/** The isoFLOP budgets and whether the best model grows with them. */
export function isoFlopLines(a: ScalingLawAnalysis): string[] {
  if (a.problem) return [`No scaling-law analysis: ${a.problem}.`];
  const out: string[] = [];
  if (a.isoNote) out.push(`IsoFLOP: ${a.isoNote}.`);
  if (!a.iso.budgets.length) out.push('IsoFLOP: no training compute is reached by two or more models, so no budget compares models.');
  else out.push(`IsoFLOP (${a.iso.budgets.length} budgets): ${a.trend.text}` + (a.trend.paramsSlope !== null ? `; log best-model params vs log budget slope ${a.trend.paramsSlope.toFixed(3)} (a discrete grid of models: crude)` : '') + '.');
  return out;
}

/** Loss vs FID over models at the final step. */
export function lossFidLines(a: ScalingLawAnalysis): string[] {
  if (a.problem) return [`No scaling-law analysis: ${a.problem}.`];
  return [`Loss vs FID at the final step: ${a.lossFid.text}.`];
}

/** Every sentence the notebook prints, in order. */
export function scalingLawLines(a: ScalingLawAnalysis): string[] {
  if (a.problem) return [`No scaling-law analysis: ${a.problem}.`];
  return [computeRangeLine(a), ...fitLines(a), ...frontierLines(a), ...isoFlopLines(a), ...lossFidLines(a)];
}

// ---- 5. the figure -----------------------------------------------------------------------------------

const FALLBACK = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const BUDGET_COLORS = ['#fdd49e', '#fc8d59', '#d7301f', '#990000', '#4a1486', '#2171b5', '#238b45'];

export interface ScalingLawSpec extends FigureSpec {
  analysis: ScalingLawAnalysis;
}

/** The figure's title: what was measured along the frontier. */
function lawTitle(a: ScalingLawAnalysis): string {
  const f = a.fit;
  if (!f) return `Held-out loss vs training compute (${a.curves.length} models): no power law fitted (${a.fitProblem})`;
  const lv = Math.round(f.level * 100);
  const ci = `${lv}% CI of b ${f.tInterval[0].toFixed(3)}..${f.tInterval[1].toFixed(3)}`;
  return f.b > 0
    ? `Held-out loss falls as C^-${f.b.toFixed(3)} along the compute frontier (${ci})`
    : `Held-out loss does not fall along the compute frontier: C^+${(-f.b).toFixed(3)} (${ci})`;
}

/**
 * Two panels. Left: each model's held-out loss against training compute (log-log; colour
 * by model size, dash by patch size), the compute-efficient frontier as open markers and
 * the power law fitted to it with its 95% confidence band of the mean. Right: isoFLOP
 * profiles, the loss of each model at fixed budgets against its Gflops (log x), the best
 * model of each budget starred. The analysis comes back in `analysis`.
 */
export function figScalingLaw(rows: readonly ResultRow[], opts: FigureOptions & FitOptions = {}): ScalingLawSpec {
  const figure = 'Scaling law (loss vs compute)';
  const a = scalingLawAnalysis(rows, opts);
  if (a.problem) throw new MissingDataError(figure, 'scaling', `${figure}: ${a.problem}`);
  const data: PlotlyTrace[] = [];
  a.curves.forEach((c, i) => {
    data.push({
      type: 'scatter', mode: 'lines+markers', name: c.model, legendgroup: c.model, xaxis: 'x', yaxis: 'y',
      x: c.points.map((p) => p.compute), y: c.points.map((p) => p.loss),
      text: c.points.map((p) => `${c.model}${c.gflops !== null ? ` (${formatGflops(c.gflops)} Gflops)` : ''}<br>step ${p.step}<br>compute ${p.compute.toPrecision(3)} Gflops<br>val_loss ${p.loss.toFixed(4)}`),
      hoverinfo: 'text',
      line: { color: c.size ? SIZE_COLOR[c.size] ?? FALLBACK[i % 10] : FALLBACK[i % 10], dash: patchStyle(c.model, c.patch).dash, width: 2.2 },
      marker: { size: 5 },
    });
  });
  data.push({
    type: 'scatter', mode: 'markers', name: `compute frontier (${a.frontier.length} points)`, xaxis: 'x', yaxis: 'y',
    x: a.frontier.map((p) => p.compute), y: a.frontier.map((p) => p.loss),
    text: a.frontier.map((p) => `frontier: ${p.model}, step ${p.step}`), hoverinfo: 'text',
    marker: { size: 12, symbol: 'circle-open', color: '#111', line: { width: 2 } },
  });
  if (a.fit) {
    const cs = a.frontier.map((p) => p.compute);
    const band = scalingLawBand(a.fit, logspace(Math.min(...cs), Math.max(...cs), 60));
    const lv = Math.round(a.fit.level * 100);
    data.push(
      { type: 'scatter', mode: 'lines', x: band.x, y: band.lower, xaxis: 'x', yaxis: 'y', line: { width: 0 }, hoverinfo: 'skip', showlegend: false, name: `${lv}% band (lower)` },
      { type: 'scatter', mode: 'lines', x: band.x, y: band.upper, xaxis: 'x', yaxis: 'y', fill: 'tonexty', fillcolor: 'rgba(120,120,120,0.2)', line: { width: 0 }, hoverinfo: 'skip', name: `${lv}% confidence band of the fit` },
      { type: 'scatter', mode: 'lines', x: band.x, y: band.y, xaxis: 'x', yaxis: 'y', line: { color: '#333', dash: 'dash', width: 1.8 }, hoverinfo: 'skip', name: `fit: L = ${a.fit.a.toPrecision(3)} · C^-${a.fit.b.toFixed(3)} (R² ${a.fit.r2.toFixed(3)})` },
    );
  }
  a.iso.budgets.forEach((b, i) => {
    if (!b.models.length) return;
    const ms = b.models.filter((m) => m.gflops !== null && m.gflops > 0);
    data.push({
      type: 'scatter', mode: 'lines+markers', name: `isoFLOP C = ${b.budget.toPrecision(3)} Gflops`, legendgroup: `iso${i}`, xaxis: 'x2', yaxis: 'y2',
      x: ms.map((m) => m.gflops), y: ms.map((m) => m.loss), text: ms.map((m) => `${m.model}<br>loss ${m.loss.toFixed(4)} at C = ${b.budget.toPrecision(3)}`), hoverinfo: 'text',
      line: { color: BUDGET_COLORS[i % BUDGET_COLORS.length], width: 2 }, marker: { size: 7 },
    });
  });
  const bests = a.iso.budgets.filter((b) => b.best && b.best.gflops !== null && b.best.gflops > 0);
  if (bests.length) {
    data.push({
      type: 'scatter', mode: 'markers+text', name: 'best model per budget', xaxis: 'x2', yaxis: 'y2',
      // A model best at several budgets is named once (its stars sit on top of each other when the losses are close).
      x: bests.map((b) => b.best!.gflops), y: bests.map((b) => b.best!.loss), text: bests.map((b, i) => (bests.findIndex((o) => o.best!.model === b.best!.model) === i ? b.best!.model : '')),
      textposition: 'bottom center', textfont: { size: 10 },
      hovertext: bests.map((b) => `best at C = ${b.budget.toPrecision(3)}: ${b.best!.model}, loss ${b.best!.loss.toFixed(4)}`), hoverinfo: 'text',
      marker: { size: 15, symbol: 'star', color: '#ffd700', line: { color: '#222', width: 1 } },
    });
  }
  const sub = [
    `experiment ${a.experiment}`, `seed ${a.curves[0].seed ?? 'n/a'}`, `${a.curves.length} models (adaLN-Zero)`,
    a.fit ? `fit over ${a.fit.n} frontier points, R² ${a.fit.r2.toFixed(3)}, bootstrap ${Math.round(a.fit.level * 100)}% CI of b ${a.fit.bootstrap.interval[0].toFixed(3)}..${a.fit.bootstrap.interval[1].toFixed(3)}` : '',
    a.iso.budgets.length ? `isoFLOP: ${a.trend.trend === 'not testable' ? 'not testable' : `best model ${a.trend.trend}`}` : 'isoFLOP: no overlapping budgets',
  ].filter(Boolean).join(' · ');
  const layout = baseLayout(lawTitle(a), sub, 1300, 600);
  layout.xaxis = axis('Training compute C (Gflops = forward Gflops × batch × steps × 3)', { type: 'log', exponentformat: 'power', domain: [0, 0.5], anchor: 'y' });
  layout.yaxis = axis('Held-out diffusion loss (val_loss)', { type: 'log', anchor: 'x' });
  layout.xaxis2 = axis('Model Gflops (forward pass, one sample)', { type: 'log', domain: [0.6, 1], anchor: 'y2' });
  layout.yaxis2 = axis(a.iso.budgets.length ? 'Loss at the budget (interpolated in log C)' : 'isoFLOP: no budget is reached by 2+ models', { type: 'log', anchor: 'x2' });
  layout.legend = { traceorder: 'normal', x: 1.02, xanchor: 'left', y: 1, yanchor: 'top', bgcolor: 'rgba(255,255,255,0.85)', bordercolor: '#ccc', borderwidth: 1, font: { size: 11 } };
  // 10 more at the top for the panel titles.
  layout.margin = { l: 70, r: 300, t: (layout.margin as { t: number }).t + 10, b: 70 };
  layout.annotations = [
    { text: '<b>loss vs training compute; frontier and fit</b>', xref: 'paper', yref: 'paper', x: 0.25, y: 1, xanchor: 'center', yanchor: 'bottom', showarrow: false },
    { text: '<b>isoFLOP profiles</b>', xref: 'paper', yref: 'paper', x: 0.8, y: 1, xanchor: 'center', yanchor: 'bottom', showarrow: false },
  ];
  return { data, layout, analysis: a };
}
