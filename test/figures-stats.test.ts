import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../lib/util/paths';
import {
  betainc,
  confidenceBand,
  linearFit,
  logspace,
  pearson,
  powerLawBand,
  powerLawFit,
  rankAverage,
  spearman,
  studentTCdf,
  studentTPpf,
  studentTSf,
} from '../lib/figures/stats';

// Fixture: scripts/fixtures/make_figure_fixtures.py (scipy.stats / scipy.special).
const FIX = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'test', 'fixtures', 'figures', 'stats.json'), 'utf8'));

function close(actual: number, expected: number, what: string, rel = 1e-9): void {
  if (expected === actual) return;
  // Relative, with an absolute floor for values that are zero up to rounding (t.ppf(0.5) = 8e-17 in scipy).
  const err = Math.abs(actual - expected) / Math.max(Math.abs(expected), 1e-300);
  assert.ok(Math.abs(actual - expected) <= rel * Math.abs(expected) + 1e-15, `${what}: got ${actual}, scipy ${expected} (relative error ${err.toExponential(2)})`);
}

function closeAll(actual: number[], expected: number[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  actual.forEach((v, i) => close(v, expected[i], `${what}[${i}]`));
}

describe('figures/stats vs scipy', () => {
  test('betainc', () => {
    for (const c of FIX.betainc) close(betainc(c.a, c.b, c.x), c.value, `betainc(${c.a}, ${c.b}, ${c.x})`);
  });

  test('Student t cdf and sf', () => {
    for (const c of FIX.t_cdf) {
      close(studentTCdf(c.t, c.df), c.cdf, `t.cdf(${c.t}, ${c.df})`);
      close(studentTSf(c.t, c.df), c.sf, `t.sf(${c.t}, ${c.df})`);
    }
  });

  test('Student t ppf (numerical inversion)', () => {
    for (const c of FIX.t_ppf) {
      const t = studentTPpf(c.p, c.df);
      close(t, c.exact, `t.ppf(${c.p}, ${c.df}) vs mpmath`, 1e-12);
      // scipy 1.10's t.ppf (cephes stdtri) is itself off by up to 2.3e-9 here (see the fixture script).
      close(t, c.value, `t.ppf(${c.p}, ${c.df}) vs scipy`, 5e-9);
    }
    assert.equal(studentTPpf(0, 3), -Infinity);
    assert.equal(studentTPpf(1, 3), Infinity);
    assert.throws(() => studentTPpf(1.5, 3), /p must be in \[0, 1\]/);
    assert.throws(() => studentTPpf(0.5, 0), /degrees of freedom/);
  });

  test('pearsonr', () => {
    for (const c of FIX.pearson) {
      const r = pearson(c.x, c.y);
      close(r.r, c.r, `${c.name} r`);
      close(r.p, c.p, `${c.name} p`);
    }
    assert.throws(() => pearson([1, 1, 1], [1, 2, 3]), /constant/);
    assert.throws(() => pearson([1, 2], [1, 2, 3]), /x has 2 values, y has 3/);
  });

  test('spearmanr with ties (average ranks)', () => {
    for (const c of FIX.spearman) {
      assert.deepEqual(rankAverage(c.x), c.ranks_x, `${c.name} ranks x`);
      assert.deepEqual(rankAverage(c.y), c.ranks_y, `${c.name} ranks y`);
      const r = spearman(c.x, c.y);
      close(r.r, c.rho, `${c.name} rho`);
      close(r.p, c.p, `${c.name} p`);
    }
  });

  test('linregress, residual std and the 95% band of the mean', () => {
    for (const c of FIX.ols) {
      const f = linearFit(c.x, c.y);
      close(f.slope, c.slope, `${c.name} slope`);
      close(f.intercept, c.intercept, `${c.name} intercept`);
      close(f.r, c.r, `${c.name} r`);
      close(f.p, c.p, `${c.name} p`);
      close(f.slopeStderr, c.slope_stderr, `${c.name} slope stderr`);
      close(f.interceptStderr, c.intercept_stderr, `${c.name} intercept stderr`);
      close(f.residualStd, c.residual_std, `${c.name} residual std`);
      const b = confidenceBand(f, c.x0);
      closeAll(b.y, c.yhat, `${c.name} yhat`);
      closeAll(b.lower, c.lower, `${c.name} lower`);
      closeAll(b.upper, c.upper, `${c.name} upper`);
    }
    assert.throws(() => linearFit([1, 2], [1, 2]), /at least 3/);
    assert.throws(() => linearFit([2, 2, 2], [1, 2, 3]), /all x are equal/);
  });

  test('power law FID = a Gflops^b is the log10 fit mapped back', () => {
    const table4 = FIX.ols.find((c: { name: string }) => c.name === 'table4-log10');
    const gflops = table4.x.map((v: number) => 10 ** v);
    const fid = table4.y.map((v: number) => 10 ** v);
    const pl = powerLawFit(gflops, fid);
    close(pl.b, table4.slope, 'b', 1e-9);
    close(Math.log10(pl.a), table4.intercept, 'log10 a', 1e-9);
    assert.ok(pl.b < 0, 'FID falls with Gflops');
    const xs = logspace(0.1, 1000, 9);
    close(xs[0], 0.1, 'logspace lo');
    close(xs[8], 1000, 'logspace hi');
    const band = powerLawBand(pl, xs);
    for (let i = 0; i < xs.length; i++) {
      close(band.y[i], pl.a * xs[i] ** pl.b, `band mean ${i}`, 1e-12);
      assert.ok(band.lower[i] < band.y[i] && band.y[i] < band.upper[i]);
    }
    assert.throws(() => powerLawFit([1, 0, 2], [1, 2, 3]), /positive/);
  });
});

test('median: the middle value, the mean of the two middle ones for an even count', async () => {
  const { median } = await import('../lib/figures/stats');
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.throws(() => median([]), /no values/);
});
