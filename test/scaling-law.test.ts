// The scaling-law analysis of notebook 07 (lib/notebook/scaling_law.ts) and the
// calibration ladder figure (lib/figures/ladder.ts), on constructed rows whose answers
// are known: an exact power law, a noisy one, a frontier that changes hands, isoFLOP
// budgets whose best model switches, and curves that must not be extrapolated.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { RESULT_COLUMNS, ResultRow } from '../lib/results/registry';
import { MissingDataError } from '../lib/figures/specs';
import { CALIBRATION_LADDER } from '../lib/experiments/calibration';
import { figCalibrationLadder, ladderSummary, ladderTable, LADDER_ERROR_Z } from '../lib/figures/ladder';
import {
  bestModelTrend, computeFrontier, figScalingLaw, fitPowerLaw, frontierOwners, isoFlop, lossCurves, LossCurve, lossFidCorrelation,
  overlapRange, scalingLawAnalysis, scalingLawLines,
} from '../lib/notebook/scaling_law';
import { Rng } from '../lib/util/rng';

function row(o: Partial<ResultRow>): ResultRow {
  const r = Object.fromEntries(RESULT_COLUMNS.map((c) => [c, null])) as ResultRow;
  return {
    ...r, experiment: 'unit', study: 'scaling', variant: 'adaln-zero', feature_net: 'default', sampler: 'ddpm', sampling_steps: 10, cfg_scale: 1,
    guidance_channels: 'first3', num_samples: 100, batch_size: 1, seed: 0, timestamp: '2026-01-01T00:00:00Z', ...o,
  };
}

/** Rows of one model: gflops g, batch 1, so train_gflops = 3 g step; loss given per compute. */
function modelRows(model: string, gflops: number, points: Array<[number, number]>, extra: Partial<ResultRow> = {}): ResultRow[] {
  return points.map(([compute, loss]) => row({
    model, gflops, params: Math.round(gflops * 1e6), train_step: Math.round(compute / (3 * gflops)), train_gflops: compute, val_loss: loss, fid: 100 * loss, ...extra,
  }));
}

/** A curve directly (for the frontier and isoFLOP functions). */
function curve(model: string, gflops: number, points: Array<[number, number]>): LossCurve {
  const ps = points.map(([compute, loss], i) => ({ step: i + 1, compute, loss, fid: null, featureNet: null, sampleStdRatio: null }));
  return { experiment: 'unit', model, variant: 'adaln-zero', size: null, patch: null, seed: 0, gflops, params: gflops * 1e6, points: ps, final: ps[ps.length - 1], sampleStdRatio: null };
}

// ---- the fit -----------------------------------------------------------------------------------

test('an exact power law L = 2 C^-0.1 is recovered with a tiny interval', () => {
  const pts: Array<[number, number]> = [1e2, 3e2, 1e3, 5e3, 2e4, 1e5, 1e6].map((c) => [c, 2 * c ** -0.1]);
  const f = fitPowerLaw(pts);
  assert.ok(Math.abs(f.b - 0.1) < 1e-12, `b ${f.b}`);
  assert.ok(Math.abs(f.a - 2) < 1e-10, `a ${f.a}`);
  assert.ok(f.r2 > 1 - 1e-12);
  assert.equal(f.n, 7);
  // stats.linearFit's se is linregress's sqrt((1 - r^2) syy / sxx / df): 1 - r^2 cancels to ~1e-16, so ~1e-9, not 0.
  assert.ok(f.tInterval[1] - f.tInterval[0] < 1e-6, `t interval ${f.tInterval}`);
  assert.ok(f.bootstrap.interval[1] - f.bootstrap.interval[0] < 1e-10, `bootstrap ${f.bootstrap.interval}`);
  assert.ok(f.tInterval[0] <= f.b + 1e-12 && f.b - 1e-12 <= f.tInterval[1]);
  assert.equal(f.bootstrap.rounds, 2000);
  // A resample of one repeated compute value has no slope: skipped, not counted.
  assert.ok(f.bootstrap.used <= 2000 && f.bootstrap.used > 1990);
  // Too few points or non-positive values: errors, not numbers.
  assert.throws(() => fitPowerLaw(pts.slice(0, 2)), /at least 3/);
  assert.throws(() => fitPowerLaw([[1, 1], [2, 0], [3, 1]]), /positive/);
});

test('a noisy power law: both 95% intervals contain the truth and are of sensible width', () => {
  const rng = new Rng(7);
  const pts: Array<[number, number]> = [];
  for (let i = 0; i < 40; i++) {
    const c = 10 ** (2 + (5 * i) / 39);
    pts.push([c, 2 * c ** -0.1 * Math.exp(0.03 * rng.normal())]);
  }
  const f = fitPowerLaw(pts, { seed: 3 });
  for (const [lo, hi] of [f.tInterval, f.bootstrap.interval]) {
    assert.ok(lo < 0.1 && 0.1 < hi, `interval ${lo}..${hi} should contain 0.1`);
    assert.ok(hi - lo > 1e-3 && hi - lo < 0.05, `width ${hi - lo}`);
  }
  // The bootstrap is seeded: same seed, same interval; another seed, another one.
  assert.deepEqual(fitPowerLaw(pts, { seed: 3 }).bootstrap.interval, f.bootstrap.interval);
  assert.notDeepEqual(fitPowerLaw(pts, { seed: 4 }).bootstrap.interval, f.bootstrap.interval);
  // The se matches the t interval: half-width = t_{0.975, 38} se (2.0244).
  assert.ok(Math.abs((f.tInterval[1] - f.tInterval[0]) / 2 / f.bStderr - 2.02439) < 1e-4);
});

// ---- frontier and isoFLOP ----------------------------------------------------------------------------

// small: lower at small compute; big: lower at large compute; far: only at compute no one else
// reaches, and its line extrapolated back to 1e5 would beat big there (0.17 < 0.2).
const small = curve('small', 1, [[1e2, 1.0], [1e3, 0.7], [1e4, 0.5]]);
const big = curve('big', 10, [[1e3, 0.9], [1e4, 0.4], [1e5, 0.2]]);
const far = curve('far', 100, [[2e5, 0.15], [1e6, 0.1]]);

test('the frontier changes hands from the small to the big model, and no curve is extrapolated', () => {
  const f = computeFrontier([small, big, far]);
  assert.deepEqual(f.map((p) => [p.model, p.compute]), [['small', 1e2], ['small', 1e3], ['big', 1e4], ['big', 1e5], ['far', 2e5], ['far', 1e6]]);
  // big@1e5 stays although far's line, extrapolated, would be lower there.
  assert.ok(f.some((p) => p.model === 'big' && p.compute === 1e5));
  assert.deepEqual(frontierOwners(f).map((o) => [o.model, o.points]), [['small', 2], ['big', 2], ['far', 2]]);
  // With extrapolation's target moved inside far's range, far does take over.
  const far2 = curve('far', 100, [[5e4, 0.15], [1e6, 0.1]]);
  assert.ok(!computeFrontier([small, big, far2]).some((p) => p.model === 'big' && p.compute === 1e5));
});

test('isoFLOP: the best model switches from small to big as the budget grows; outside a range a model is absent', () => {
  const iso = isoFlop([small, big, far], [1e3, 1e4, 1e5]);
  assert.deepEqual(iso.budgets.map((b) => b.best?.model), ['small', 'big', 'big']);
  assert.deepEqual(iso.budgets[0].models.map((m) => [m.model, m.loss]), [['small', 0.7], ['big', 0.9]]);
  // At 1e5 only big has data: far starts at 2e5 and small ends at 1e4.
  assert.deepEqual(iso.budgets[2].models.map((m) => m.model), ['big']);
  // Interpolated in log compute: small at sqrt(10) x 1e2 is halfway between 1.0 and 0.7.
  const mid = isoFlop([small], [10 ** 2.5]).budgets[0].models[0].loss;
  assert.ok(Math.abs(mid - 0.85) < 1e-12);
  const t = bestModelTrend(isoFlop([small, big], [1e3, 1e4]));
  assert.equal(t.trend, 'grows');
  assert.equal(t.increases, 1);
  const reversed = bestModelTrend(isoFlop([curve('small', 1, [[1e2, 1], [1e4, 0.1]]), curve('big', 10, [[1e2, 0.5], [1e4, 0.4]])], [1e2, 1e4]));
  assert.equal(reversed.trend, 'shrinks');
  assert.equal(bestModelTrend(isoFlop([small], [1e3])).trend, 'not testable');
});

test('isoFLOP default budgets: five log-spaced values where at least 3 models have data', () => {
  const cs = [curve('a', 1, [[1, 1], [100, 0.5]]), curve('b', 2, [[10, 0.9], [1000, 0.4]]), curve('c', 4, [[50, 0.8], [5000, 0.3]])];
  assert.deepEqual(overlapRange(cs, 3), [50, 100]);
  const iso = isoFlop(cs);
  assert.equal(iso.budgets.length, 5);
  assert.equal(iso.budgets[0].budget, 50);
  assert.equal(iso.budgets[4].budget, 100);
  for (const b of iso.budgets) assert.equal(b.models.length, 3, `budget ${b.budget}`);
  // No 3-way overlap: no default budgets (the analysis then falls back to 2, saying so).
  assert.equal(isoFlop([small, big, far]).budgets.length, 0);
  assert.equal(overlapRange([small, big, far], 2)![0], 1e3);
});

// ---- from rows ------------------------------------------------------------------------------------

test('lossCurves: scaling adaLN-Zero rows of one experiment and the most common seed, newest row per step', () => {
  const rows = [
    ...modelRows('mini-S/2', 1, [[30, 0.5], [60, 0.4]]),
    // Re-evaluated step (newer timestamp wins) and an older duplicate.
    row({ model: 'mini-S/2', gflops: 1, train_step: 20, train_gflops: 60, val_loss: 0.35, timestamp: '2026-01-02T00:00:00Z', sample_std_ratio: 0.9 }),
    ...modelRows('mini-B/2', 2, [[60, 0.45], [120, 0.3]]),
    // Another seed (less common), another variant, another study, a row without val_loss, another experiment.
    ...modelRows('mini-B/2', 2, [[60, 0.01]], { seed: 1 }),
    ...modelRows('mini-B/2', 2, [[60, 0.02]], { variant: 'in-context' }),
    ...modelRows('mini-B/2', 2, [[60, 0.03]], { study: 'sampling-compute' }),
    ...modelRows('mini-L/2', 4, [[120, 0.2]], { val_loss: null }),
    ...modelRows('mini-XL/2', 8, [[240, 0.1]], { experiment: 'older', timestamp: '2025-01-01T00:00:00Z' }),
  ];
  const cs = lossCurves(rows);
  assert.deepEqual(cs.map((c) => c.model), ['mini-S/2', 'mini-B/2']);
  assert.deepEqual(cs[0].points.map((p) => [p.compute, p.loss]), [[30, 0.5], [60, 0.35]]);
  assert.equal(cs[0].final.step, 20);
  assert.equal(cs[0].sampleStdRatio, 0.9);
  assert.equal(cs[1].points.length, 2);
  assert.equal(cs[1].seed, 0);
  assert.equal(cs[1].params, 2e6);
  assert.deepEqual(lossCurves(rows, { experiment: 'older' }).map((c) => c.model), ['mini-XL/2']);
  assert.deepEqual(lossCurves(rows, { seed: 1 }).map((c) => c.model), ['mini-B/2']);
  assert.deepEqual(lossCurves([]), []);
});

test('the analysis says why when there is no val_loss, and never throws on missing data', () => {
  const noLoss = modelRows('mini-S/2', 1, [[30, 0.5], [60, 0.4]], { val_loss: null });
  const a = scalingLawAnalysis(noLoss);
  assert.match(a.problem!, /have no val_loss/);
  assert.match(scalingLawLines(a)[0], /^No scaling-law analysis/);
  assert.match(scalingLawAnalysis([]).problem!, /no results for study 'scaling'/);
  assert.throws(() => figScalingLaw(noLoss), (e: unknown) => e instanceof MissingDataError && /no val_loss/.test(e.message));
  // One model, two points: curves but no fit, no isoFLOP budget; still lines, no exception.
  const one = scalingLawAnalysis(modelRows('mini-S/2', 1, [[30, 0.5], [60, 0.4]]));
  assert.equal(one.fit, null);
  assert.match(one.fitProblem!, /at least 3 points/);
  assert.ok(scalingLawLines(one).some((l) => /No power law/.test(l)));
});

test('val_loss vs FID: Spearman over models at the final step, also without off-scale models', () => {
  const rows = [
    ...modelRows('mini-S/2', 1, [[30, 0.5], [60, 0.4]], { fid: 50, sample_std_ratio: 1 }),
    ...modelRows('mini-B/2', 2, [[60, 0.45], [120, 0.3]], { fid: 40, sample_std_ratio: 1 }),
    ...modelRows('mini-L/2', 4, [[120, 0.35], [240, 0.2]], { fid: 30, sample_std_ratio: 1.1 }),
    ...modelRows('mini-XL/2', 8, [[240, 0.3], [480, 0.1]], { fid: 90, sample_std_ratio: 25 }),
  ];
  const c = lossFidCorrelation(lossCurves(rows));
  assert.equal(c.all!.n, 4);
  // Ranks of loss XL 1, L 2, B 3, S 4 against FID L 1, B 2, S 3, XL 4: rho = 1 - 6 * 12 / 60 = -0.2.
  assert.ok(Math.abs(c.all!.r + 0.2) < 1e-12, `rho ${c.all!.r}`);
  assert.equal(c.onScale!.n, 3);
  assert.ok(Math.abs(c.onScale!.r - 1) < 1e-12);
  assert.match(c.text, /without the 1 model\(s\) whose samples are off the data's scale \(mini-XL\/2\)/);
  assert.equal(lossFidCorrelation(lossCurves(rows.slice(0, 4))).all, null);
});

test('figScalingLaw: model lines, frontier, fit and band on log-log axes; isoFLOP lines and best markers on the right', () => {
  const law = (c: number) => 2 * c ** -0.1;
  const rows = [
    ...modelRows('mini-S/2', 1, [[10, law(10) * 1.0], [100, law(100) * 1.02], [1000, law(1000) * 1.1]], { patch_size: 2 }),
    ...modelRows('mini-B/2', 2, [[50, law(50) * 1.05], [500, law(500) * 1.0], [5000, law(5000) * 1.03]], { patch_size: 2 }),
    ...modelRows('mini-L/4', 4, [[80, law(80) * 1.2], [800, law(800) * 1.01], [8000, law(8000) * 1.0]], { patch_size: 4 }),
  ];
  const spec = figScalingLaw(rows);
  const names = spec.data.map((t) => String(t.name));
  for (const m of ['mini-S/2', 'mini-B/2', 'mini-L/4']) assert.ok(names.includes(m), m);
  const left = spec.data.filter((t) => t.xaxis === 'x');
  const right = spec.data.filter((t) => t.xaxis === 'x2');
  assert.ok(names.some((n) => /^compute frontier/.test(n)));
  assert.ok(names.some((n) => /^fit: L = /.test(n)));
  assert.ok(left.some((t) => t.fill === 'tonexty'), 'a confidence band');
  const isoLines = right.filter((t) => /^isoFLOP C = /.test(String(t.name)));
  assert.equal(isoLines.length, 5);
  assert.ok(right.some((t) => t.name === 'best model per budget' && (t.marker as { symbol: string }).symbol === 'star'));
  const L = spec.layout as Record<string, Record<string, unknown>>;
  assert.equal(L.xaxis.type, 'log');
  assert.equal(L.yaxis.type, 'log');
  assert.equal(L.xaxis2.type, 'log');
  assert.match(String((L.xaxis.title as { text: string }).text), /Training compute/);
  assert.match(String((L.xaxis2.title as { text: string }).text), /Model Gflops/);
  // Colour by size, dash by the patch's rank in the family (mini: 4 dot, 2 dash, 1 solid).
  const s2 = spec.data.find((t) => t.name === 'mini-S/2')!.line as { color: string; dash: string };
  const l4 = spec.data.find((t) => t.name === 'mini-L/4')!.line as { color: string; dash: string };
  assert.notEqual(s2.color, l4.color);
  assert.equal(s2.dash, 'dash');
  assert.equal(l4.dash, 'dot');
  // The title states the measured exponent and its interval.
  const f = spec.analysis.fit!;
  assert.match(String((L.title as { text: string }).text), new RegExp(`falls as C\\^-${f.b.toFixed(3)} along the compute frontier \\(95% CI of b`));
  assert.ok(f.b > 0.05 && f.b < 0.2, `b ${f.b}`);
  // The frontier's points are the lowest at their compute: every frontier loss <= every curve's interpolated loss there.
  for (const p of spec.analysis.frontier) {
    for (const c of spec.analysis.curves) {
      const other = isoFlop([c], [p.compute]).budgets[0].models[0]?.loss;
      if (other !== undefined) assert.ok(p.loss <= other + 1e-12, `${p.model}@${p.compute} vs ${c.model}`);
    }
  }
});

// ---- the calibration ladder --------------------------------------------------------------------------

test('figCalibrationLadder: one point per rung present, ladder order, error bars from fid_se, the checks', () => {
  const present = CALIBRATION_LADDER.filter((_, i) => i !== 3);
  const rows = present.map((r, i) => row({
    study: 'calibration', cell: r.rung, model: r.rung, variant: null, train_step: null, sampler: null, sampling_steps: null,
    fid: 10 + i, fid_se: 0.5, timestamp: `2026-01-01T00:00:${String(i).padStart(2, '0')}Z`,
  }));
  // An older row of the same rung is replaced by the newer one.
  rows.unshift({ ...rows[0], fid: 999, timestamp: '2025-01-01T00:00:00Z' });
  const spec = figCalibrationLadder(rows);
  assert.equal(spec.points.length, present.length);
  assert.deepEqual(spec.points.map((p) => p.rung), present.map((r) => r.rung));
  assert.equal(spec.points[0].fid, 10);
  const xs = spec.data.flatMap((t) => t.x as string[]);
  assert.equal(xs.length, present.length);
  for (const t of spec.data) {
    const e = t.error_y as { array: number[]; visible: boolean };
    assert.equal(e.visible, true);
    assert.deepEqual(e.array, (t.x as string[]).map(() => LADDER_ERROR_Z * 0.5));
  }
  assert.deepEqual(spec.data.map((t) => t.name), [...new Set(present.map((r) => r.kind))]);
  assert.equal((spec.layout.yaxis as { type: string }).type, 'log');
  // The missing rung (noise-20) fails its kind's check, by name.
  const missing = CALIBRATION_LADDER[3];
  const failed = spec.checks.filter((c) => !c.pass);
  assert.ok(failed.some((c) => c.detail.includes(`missing rung ${missing.rung}`)), JSON.stringify(failed));
  const table = ladderTable(spec.checks);
  assert.equal(table.length, spec.checks.length);
  assert.ok(table.some((r) => r.result === 'FAIL') && table.some((r) => r.result === 'pass'));
  assert.match(ladderSummary(spec.checks), /of \d+ calibration checks pass; failing: /);
  assert.throws(() => figCalibrationLadder(rows.filter((r) => r.study !== 'calibration')), MissingDataError);
});
