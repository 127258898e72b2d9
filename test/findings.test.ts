// Verdicts count a comparison only when it is resolved beyond its noise:
// |delta| > 1.96 sqrt(se1^2 + se2^2 + 2 se_seed^2); off-scale models are left out.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { RESULT_COLUMNS, ResultRow } from '../lib/results/registry';
import { bootstrapLogPearson, compareFid, seedSpread, tally } from '../lib/figures/resolution';
import { conditioningFinding, fig10Table, figureHeadline, gflopsFidFinding, resolvedVerdict, samplingComputeFinding, scalingFinding, trainingComputeFinding } from '../lib/notebook/findings';

function row(o: Partial<ResultRow>): ResultRow {
  const r = Object.fromEntries(RESULT_COLUMNS.map((c) => [c, null])) as ResultRow;
  return {
    ...r, experiment: 'unit', feature_net: 'study', sampler: 'ddpm', sampling_steps: 50, cfg_scale: 1, guidance_channels: 'first3',
    num_samples: 1000, batch_size: 32, seed: 0, variant: 'adaln-zero', timestamp: '2026-01-01T00:00:00Z', ...o,
  };
}

test('compareFid: resolved, unresolved and resolved against, with the seed spread in the threshold', () => {
  assert.equal(compareFid({ fid: 10, se: 1 }, { fid: 13, se: 1 }).status, 'agree'); // 3 > 1.96 sqrt(2) = 2.77
  assert.equal(compareFid({ fid: 10, se: 1 }, { fid: 12, se: 1 }).status, 'unresolved');
  assert.equal(compareFid({ fid: 13, se: 1 }, { fid: 10, se: 1 }).status, 'against');
  // se_seed 1 raises the threshold to 1.96 sqrt(4) = 3.92.
  const c = compareFid({ fid: 10, se: 1 }, { fid: 13, se: 1 }, 1);
  assert.equal(c.status, 'unresolved');
  assert.ok(Math.abs(c.threshold - 3.92) < 1e-12);
  assert.deepEqual(tally([c, compareFid({ fid: 1, se: 0 }, { fid: 2, se: 0 })]), { agree: 1, against: 0, unresolved: 1 });
  assert.equal(resolvedVerdict({ agree: 3, against: 0, unresolved: 5 }), 'reproduced');
  assert.equal(resolvedVerdict({ agree: 3, against: 1, unresolved: 0 }), 'partly reproduced');
  assert.equal(resolvedVerdict({ agree: 1, against: 1, unresolved: 0 }), 'not reproduced');
  assert.equal(resolvedVerdict({ agree: 0, against: 0, unresolved: 4 }), 'not testable');
});

test('seedSpread pairs replicate rows with the main seed and removes the sampling noise', () => {
  const rows = [
    row({ study: 'scaling', model: 'mini-S/2', train_step: 100, fid: 50, fid_se: 1 }),
    row({ study: 'replicate', model: 'mini-S/2', train_step: 100, fid: 54, fid_se: 1, seed: 1 }),
    row({ study: 'scaling', model: 'mini-L/2', train_step: 100, fid: 40, fid_se: 1 }),
    row({ study: 'replicate', model: 'mini-L/2', train_step: 100, fid: 38, fid_se: 1, seed: 1 }),
    row({ study: 'scaling', model: 'mini-B/2', train_step: 100, fid: 45, fid_se: 1 }),
  ];
  const s = seedSpread(rows, 'unit', 'study');
  assert.equal(s.pairs, 2);
  // ((16 - 2) / 2 + (4 - 2) / 2) / 2 = 4 -> 2
  assert.ok(Math.abs(s.se - 2) < 1e-12, String(s.se));
  assert.equal(seedSpread(rows.filter((r) => r.seed === 0), 'unit', 'study').se, 0);
});

/** A 2 x 2 grid (S, B at p 4 and 2) with FIDs and ses. */
function grid(f: Record<string, [number, number, number?]>): ResultRow[] {
  const g: Record<string, number> = { 'mini-S/4': 1, 'mini-S/2': 4, 'mini-B/4': 3, 'mini-B/2': 12 };
  return Object.entries(f).map(([m, [fid, se, std]]) => row({ study: 'scaling', model: m, cell: `${m.replace('/', '_')}-adaln-zero`, gflops: g[m], train_step: 100, fid, fid_se: se, sample_std_ratio: std ?? 1 }));
}

test('Fig. 6 counts resolved comparisons, and does not compare off-scale models', () => {
  const f = scalingFinding(grid({ 'mini-S/4': [100, 1], 'mini-S/2': [90, 1], 'mini-B/4': [99, 1], 'mini-B/2': [80, 1] }));
  // Bigger: B/4 vs S/4 (1 apart: unresolved), B/2 vs S/2 (resolved); smaller patch: S (resolved), B (resolved).
  assert.equal(f.verdict, 'reproduced');
  assert.deepEqual([f.numbers.sizeAgree, f.numbers.sizeUnresolved, f.numbers.patchAgree, f.numbers.resolvedAgainst], [1, 1, 2, 0]);
  assert.match(f.reason, /bigger model: 1 agree and resolved, 1 unresolved, 0 resolved against/);
  const against = scalingFinding(grid({ 'mini-S/4': [100, 1], 'mini-S/2': [90, 1], 'mini-B/4': [110, 1], 'mini-B/2': [80, 1] }));
  assert.equal(against.numbers.resolvedAgainst, 1);
  assert.equal(against.verdict, 'partly reproduced');
  // mini-S/4 off-scale: its two comparisons are not counted, and it is named.
  const off = scalingFinding(grid({ 'mini-S/4': [30, 1, 3], 'mini-S/2': [90, 1], 'mini-B/4': [99, 1], 'mini-B/2': [80, 1] }));
  assert.equal(off.numbers.notCompared, 2);
  assert.equal(off.numbers.resolvedAgainst, 0);
  assert.ok(off.caveats.some((c) => /mini-S\/4 3\.00x/.test(c)));
});

test('Fig. 5 needs adaLN-Zero lowest at every step and resolved at the last', () => {
  const curve = (variant: string, fids: number[], se = 1) => fids.map((fid, i) => row({ study: 'conditioning', model: 'mini-B/2', variant, gflops: 0.02, train_step: 10 * (i + 1), fid, fid_se: se }));
  assert.equal(conditioningFinding([...curve('in-context', [100, 80]), ...curve('adaln-zero', [90, 70])]).verdict, 'reproduced');
  // Lowest everywhere but within the noise at the last step: partly.
  const close = conditioningFinding([...curve('in-context', [100, 71]), ...curve('adaln-zero', [90, 70])]);
  assert.equal(close.verdict, 'partly reproduced');
  assert.equal(close.numbers.unresolvedAtLast, 1);
  assert.equal(conditioningFinding([...curve('in-context', [100, 60]), ...curve('adaln-zero', [90, 70])]).verdict, 'not reproduced');
  // An off-scale variant is not compared, however its FID lies: the rest decides, and the verdict says one was left out.
  const std = (rows: ResultRow[], r: number) => rows.map((x) => ({ ...x, sample_std_ratio: r }));
  const gated = conditioningFinding([...curve('in-context', [100, 80]), ...std(curve('cross-attention', [50, 40]), 3), ...curve('adaln-zero', [90, 70])]);
  assert.equal(gated.verdict, 'partly reproduced');
  assert.equal(gated.numbers.offScaleVariants, 1);
  assert.equal(gated.numbers.resolvedAgreeAtLast, 1);
  assert.equal(gated.numbers.resolvedAgainstAtLast, 0);
  assert.match(gated.reason, /not compared, off the data's scale: mini-B\/2 Cross-Attention 3\.00x/);
  // Only off-scale rivals: nothing to compare with.
  assert.equal(conditioningFinding([...std(curve('in-context', [100, 80]), 3), ...curve('adaln-zero', [90, 70])]).verdict, 'not testable');
});

test('Fig. 8 fits on-scale models only and its interval decides', () => {
  const models = ['mini-S/4', 'mini-S/2', 'mini-B/4', 'mini-B/2', 'mini-L/2'];
  const g = [1, 4, 3, 12, 40];
  const rows = models.map((m, i) => row({ study: 'scaling', model: m, gflops: g[i], train_step: 100, fid: 200 * g[i] ** -0.4, fid_se: 0.5, sample_std_ratio: 1 }));
  const f = gflopsFidFinding(rows);
  assert.equal(f.verdict, 'reproduced');
  assert.equal(f.numbers.n, 5);
  assert.ok(f.numbers.pearsonLogHigh! < 0);
  // An off-scale model with a "good" FID would spoil the fit: it is left out.
  const spoiled = [...rows, row({ study: 'scaling', model: 'mini-XL/4', gflops: 0.5, train_step: 100, fid: 20, fid_se: 0.5, sample_std_ratio: 25 })];
  const s = gflopsFidFinding(spoiled);
  assert.equal(s.numbers.n, 5);
  assert.equal(s.numbers.excluded, 1);
  assert.equal(s.numbers.pearsonLog, f.numbers.pearsonLog);
  // Noise swamping a weak trend: the interval reaches 0.
  const [lo, hi] = bootstrapLogPearson([1, 2, 3, 4], [50, 49, 50, 49], [20, 20, 20, 20]);
  assert.ok(lo < 0 && hi > 0, `${lo} ${hi}`);
  assert.match(figureHeadline(f), /^Fig. 8: reproduced at this scale: strong negative correlation/);
  assert.ok(figureHeadline(f).split('<br>').every((l) => l.length <= 110));
});

test('Figs. 9 and 10 use the same rule; Fig. 10 compares against the largest model\'s best', () => {
  const train = [
    ...[1, 2, 4].map((k) => row({ study: 'scaling', model: 'mini-S/4', gflops: 1, train_step: 1000 * k, train_gflops: 1000 * k, fid: 100 / k, fid_se: 1 })),
    ...[1, 2, 4].map((k) => row({ study: 'scaling', model: 'mini-B/4', gflops: 2, train_step: 1000 * k, train_gflops: 2000 * k, fid: 48 / k, fid_se: 1 })),
  ];
  // At 4e3: B 24 vs S 25: within the noise.
  const t = trainingComputeFinding(train);
  assert.equal(t.numbers.unresolved, 1);
  assert.equal(t.verdict, 'not testable');
  const pts = (m: string, g: number, fids: Record<number, number>) => Object.entries(fids).map(([n, fid]) => row({ study: 'sampling-compute', model: m, gflops: g, train_step: 100, sampling_steps: Number(n), sampling_gflops_per_image: g * Number(n), fid, fid_se: 1 }));
  const sampling = [...pts('mini-S/4', 1, { 10: 60, 100: 40 }), ...pts('mini-B/4', 2, { 10: 50, 100: 45 }), ...pts('mini-L/4', 8, { 10: 35, 100: 30 })];
  const f = samplingComputeFinding(sampling);
  assert.equal(f.verdict, 'reproduced');
  assert.deepEqual([f.numbers.points, f.numbers.behind, f.numbers.ahead], [4, 4, 0]);
  const caught = samplingComputeFinding([...sampling.filter((r) => r.model !== 'mini-S/4'), ...pts('mini-S/4', 1, { 10: 60, 100: 25 })]);
  assert.equal(caught.numbers.ahead, 1);
  const table = fig10Table(sampling);
  assert.deepEqual(table.map((r) => r.model), ['mini-S/4', 'mini-B/4', 'mini-L/4']);
  assert.equal(table[2]['FID @100 steps'], '30.0 ± 1.0');
  assert.equal(table[0].best, '40.0 (100 steps)');
});

test("notebook 06's default configs are valid models of the family", async () => {
  const fs = await import('node:fs');
  const path = await import('node:path');
  const { repoRoot } = await import('../lib/util/paths');
  const { ditConfig } = await import('../lib/model/config');
  const nb = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'notebooks', '06-compare-configs.ipynb'), 'utf8'));
  const src = nb.cells.map((c: { source: string[] | string }) => (Array.isArray(c.source) ? c.source.join('') : c.source)).join('\n');
  const m = /const CONFIGS = \[([^\]]*)\]/.exec(src);
  assert.ok(m, 'CONFIGS line');
  const names = [...m[1].matchAll(/'([^']+)'/g)].map((x) => x[1]);
  assert.ok(names.length >= 2);
  for (const n of names) assert.doesNotThrow(() => ditConfig(n), n);
});

test('a cell not yet at the study\'s last step (a run in progress) is left out of final-step comparisons and said so', async () => {
  const rows = [
    ...grid({ 'mini-S/4': [100, 1], 'mini-S/2': [90, 1], 'mini-B/4': [95, 1] }),
    // mini-B/2 has only reached step 50: its FID there must not be compared with the others' step-100 FIDs.
    row({ study: 'scaling', model: 'mini-B/2', cell: 'mini-B_2-adaln-zero', gflops: 12, train_step: 50, fid: 150, fid_se: 1, sample_std_ratio: 1 }),
  ];
  const f = scalingFinding(rows);
  assert.equal(f.numbers.resolvedAgainst, 0);
  assert.ok(f.caveats.some((c) => /Not yet at the study's last step .*mini-B\/2 \(step 50\)/.test(c)), f.caveats.join('\n'));
  const { fig8GflopsVsFid } = await import('../lib/figures/specs');
  const s = fig8GflopsVsFid(rows).stats;
  assert.deepEqual(s.unfinished, ['mini-B/2']);
  assert.ok(!s.points.some((p) => p.model === 'mini-B/2'));
});
