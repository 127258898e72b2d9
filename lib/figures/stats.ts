// Statistics for the figures (paper Fig. 8: Gflops against FID): Pearson and Spearman
// correlation, least squares with standard errors and a 95% band for the mean
// prediction. The Student t distribution comes from the regularised incomplete beta
// function, so no Python or stats package is needed at run time. Each function states
// what scipy function it matches (test/fixtures/figures/stats.json, within 1e-9).

// ---- special functions -------------------------------------------------------------

// Lanczos approximation, g = 7, n = 9 (about 15 significant digits for x > 0).
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Gamma(x) for x > 0. */
export function lnGamma(x: number): number {
  if (!(x > 0)) throw new Error(`lnGamma: x must be positive, got ${x}`);
  // Reflection keeps the series in its accurate range for small x.
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const z = x - 1;
  let a = LANCZOS[0];
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** lnGamma(x) - Stirling's approximation, for x >= 10 (asymptotic series to x^-13, error < 1e-16). */
function stirlingCorrection(x: number): number {
  const x2 = 1 / (x * x);
  return (1 / 12 + x2 * (-1 / 360 + x2 * (1 / 1260 + x2 * (-1 / 1680 + x2 * (1 / 1188 + x2 * (-691 / 360360 + x2 / 156)))))) / x;
}

/**
 * ln B(a, b). For large arguments the lnGamma terms are thousands while their sum is
 * small, so differences are taken analytically (as R's lbeta does) to keep the digits.
 */
export function lnBeta(a: number, b: number): number {
  if (!(a > 0 && b > 0)) throw new Error(`lnBeta: a and b must be positive, got ${a}, ${b}`);
  const p = Math.min(a, b);
  const q = Math.max(a, b);
  if (p >= 10) {
    const corr = stirlingCorrection(p) + stirlingCorrection(q) - stirlingCorrection(p + q);
    return -0.5 * Math.log(q) + 0.5 * Math.log(2 * Math.PI) + corr + (p - 0.5) * Math.log(p / (p + q)) + q * Math.log1p(-p / (p + q));
  }
  if (q >= 10) {
    const corr = stirlingCorrection(q) - stirlingCorrection(p + q);
    return lnGamma(p) + corr + p - p * Math.log(p + q) + (q - 0.5) * Math.log1p(-p / (p + q));
  }
  return lnGamma(p) + lnGamma(q) - lnGamma(p + q);
}

/** Continued fraction of I_x(a, b) (modified Lentz); converges fast for x < (a+1)/(a+b+2). */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const TINY = 1e-300;
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 10000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) return h;
  }
  throw new Error(`betainc: continued fraction did not converge (a ${a}, b ${b}, x ${x})`);
}

/** Regularised incomplete beta I_x(a, b) (scipy.special.betainc). */
export function betainc(a: number, b: number, x: number): number {
  if (!(a > 0 && b > 0)) throw new Error(`betainc: a and b must be positive, got ${a}, ${b}`);
  if (!(x >= 0 && x <= 1)) throw new Error(`betainc: x must be in [0, 1], got ${x}`);
  if (x === 0 || x === 1) return x;
  const lnFront = -lnBeta(a, b) + a * Math.log(x) + b * Math.log1p(-x);
  const front = Math.exp(lnFront);
  // Use the symmetry I_x(a, b) = 1 - I_{1-x}(b, a) where the fraction converges faster.
  if (x < (a + 1) / (a + b + 2)) return (front * betaContinuedFraction(a, b, x)) / a;
  return 1 - (front * betaContinuedFraction(b, a, 1 - x)) / b;
}

function checkDf(df: number, who: string): void {
  if (!(df > 0) || !Number.isFinite(df)) throw new Error(`${who}: degrees of freedom must be positive and finite, got ${df}`);
}

/** Upper tail P(T > t) of Student's t with df degrees of freedom (scipy.stats.t.sf). */
export function studentTSf(t: number, df: number): number {
  checkDf(df, 'studentTSf');
  if (Number.isNaN(t)) return NaN;
  if (t === Infinity) return 0;
  if (t === -Infinity) return 1;
  // P(|T| > |t|) = I_{df/(df+t^2)}(df/2, 1/2), computed directly so small tails keep their digits.
  const x = df / (df + t * t);
  const twoTail = t * t < df ? 1 - betainc(0.5, df / 2, (t * t) / (df + t * t)) : betainc(df / 2, 0.5, x);
  return t > 0 ? twoTail / 2 : 1 - twoTail / 2;
}

/** P(T <= t) (scipy.stats.t.cdf). */
export function studentTCdf(t: number, df: number): number {
  return studentTSf(-t, df);
}

/** Density of Student's t. */
export function studentTPdf(t: number, df: number): number {
  checkDf(df, 'studentTPdf');
  // Gamma((df+1)/2) / (sqrt(df pi) Gamma(df/2)) = 1 / (sqrt(df) B(df/2, 1/2))
  const ln = -lnBeta(df / 2, 0.5) - 0.5 * Math.log(df) - ((df + 1) / 2) * Math.log1p((t * t) / df);
  return Math.exp(ln);
}

/**
 * Quantile of Student's t (scipy.stats.t.ppf): the t with P(T <= t) = p, found by
 * safeguarded Newton steps on log P(T > t) inside a bracket that always holds the root.
 */
export function studentTPpf(p: number, df: number): number {
  checkDf(df, 'studentTPpf');
  if (!(p >= 0 && p <= 1)) throw new Error(`studentTPpf: p must be in [0, 1], got ${p}`);
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  if (p === 0.5) return 0;
  // Solve sf(t) = q for t > 0 with q the smaller tail; the sign comes from symmetry.
  const q = p < 0.5 ? p : 1 - p;
  const sign = p < 0.5 ? -1 : 1;
  const logQ = Math.log(q);
  let lo = 0;
  let hi = 1;
  while (studentTSf(hi, df) > q) {
    lo = hi;
    hi *= 2;
    if (hi > 1e300) throw new Error(`studentTPpf: no bracket for p ${p}, df ${df}`);
  }
  let t = (lo + hi) / 2;
  for (let i = 0; i < 500; i++) {
    const sf = studentTSf(t, df);
    const f = Math.log(sf) - logQ;
    if (f === 0) break;
    if (f > 0) lo = t;
    else hi = t;
    // d/dt log sf(t) = -pdf(t) / sf(t); a step that leaves the bracket is replaced by bisection.
    let next = t + (f * sf) / studentTPdf(t, df);
    if (!(next >= lo && next <= hi)) next = (lo + hi) / 2;
    const step = Math.abs(next - t);
    t = next;
    if (step <= 2e-16 * t || hi - lo <= 4e-16 * hi) break;
  }
  return sign * t;
}

// ---- descriptive statistics -------------------------------------------------------

function checkPairs(x: readonly number[], y: readonly number[], who: string, minN: number): void {
  if (x.length !== y.length) throw new Error(`${who}: x has ${x.length} values, y has ${y.length}`);
  if (x.length < minN) throw new Error(`${who}: needs at least ${minN} pairs, got ${x.length}`);
  for (const v of [...x, ...y]) if (!Number.isFinite(v)) throw new Error(`${who}: values must be finite, got ${v}`);
}

function mean(v: readonly number[]): number {
  let s = 0;
  for (const a of v) s += a;
  return s / v.length;
}

export interface Correlation {
  /** The coefficient (Pearson r or Spearman rho). */
  r: number;
  /** Two-sided p-value of the null hypothesis r = 0 (t test with n - 2 degrees of freedom). */
  p: number;
  n: number;
}

/** p-value of a correlation coefficient: t = r sqrt(df / (1 - r^2)), two-sided. */
function correlationP(r: number, n: number): number {
  if (n <= 2) return 1;
  if (Math.abs(r) === 1) return 0;
  const df = n - 2;
  const t = r * Math.sqrt(df / ((1 - r) * (1 + r)));
  return 2 * studentTSf(Math.abs(t), df);
}

/** Pearson's r and its p-value (scipy.stats.pearsonr). */
export function pearson(x: readonly number[], y: readonly number[]): Correlation {
  checkPairs(x, y, 'pearson', 2);
  const mx = mean(x);
  const my = mean(y);
  let nx = 0, ny = 0;
  for (let i = 0; i < x.length; i++) {
    nx += (x[i] - mx) ** 2;
    ny += (y[i] - my) ** 2;
  }
  nx = Math.sqrt(nx);
  ny = Math.sqrt(ny);
  if (nx === 0 || ny === 0) throw new Error('pearson: an input is constant, so the correlation is undefined');
  let r = 0;
  for (let i = 0; i < x.length; i++) r += ((x[i] - mx) / nx) * ((y[i] - my) / ny);
  r = Math.max(-1, Math.min(1, r));
  return { r, p: correlationP(r, x.length), n: x.length };
}

/** Ranks from 1, ties given the average of the ranks they span (scipy.stats.rankdata 'average'). */
export function rankAverage(v: readonly number[]): number[] {
  const order = v.map((_, i) => i).sort((a, b) => v[a] - v[b]);
  const ranks = new Array<number>(v.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && v[order[j + 1]] === v[order[i]]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]] = r;
    i = j + 1;
  }
  return ranks;
}

/** Spearman's rho (Pearson of average ranks) and its p-value (scipy.stats.spearmanr). */
export function spearman(x: readonly number[], y: readonly number[]): Correlation {
  checkPairs(x, y, 'spearman', 2);
  return pearson(rankAverage(x), rankAverage(y));
}

export interface LinearFit {
  slope: number;
  intercept: number;
  /** Pearson r of x and y. */
  r: number;
  /** Two-sided p-value of slope = 0. */
  p: number;
  slopeStderr: number;
  interceptStderr: number;
  /** sqrt(sum of squared residuals / (n - 2)). */
  residualStd: number;
  n: number;
  df: number;
  xMean: number;
  /** sum (x - xMean)^2 */
  sxx: number;
}

/** Ordinary least squares y = intercept + slope x (scipy.stats.linregress, plus the residual std). */
export function linearFit(x: readonly number[], y: readonly number[]): LinearFit {
  checkPairs(x, y, 'linearFit', 3);
  const n = x.length;
  const mx = mean(x);
  const my = mean(y);
  let sxx = 0, syy = 0, sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
    sxy += (x[i] - mx) * (y[i] - my);
  }
  if (sxx === 0) throw new Error('linearFit: all x are equal, so the slope is undefined');
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  const r = syy === 0 ? 0 : Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
  const df = n - 2;
  let sse = 0;
  for (let i = 0; i < n; i++) sse += (y[i] - intercept - slope * x[i]) ** 2;
  // linregress's form: sqrt((1 - r^2) syy / sxx / df) (the same quantity as sqrt(sse / df / sxx)).
  const slopeStderr = Math.sqrt(((1 - r * r) * syy) / sxx / df);
  const interceptStderr = slopeStderr * Math.sqrt(sxx / n + mx * mx);
  return {
    slope, intercept, r, p: correlationP(r, n), slopeStderr, interceptStderr,
    residualStd: Math.sqrt(sse / df), n, df, xMean: mx, sxx,
  };
}

export interface Band {
  x: number[];
  /** Fitted mean at x. */
  y: number[];
  lower: number[];
  upper: number[];
}

/**
 * Confidence band of the mean prediction at x0: yhat +- t_{(1+level)/2, n-2} s
 * sqrt(1/n + (x0 - xMean)^2 / sxx). level defaults to 0.95.
 */
export function confidenceBand(fit: LinearFit, x0: readonly number[], level = 0.95): Band {
  if (!(level > 0 && level < 1)) throw new Error(`confidenceBand: level must be in (0, 1), got ${level}`);
  const tq = studentTPpf((1 + level) / 2, fit.df);
  const y = x0.map((v) => fit.intercept + fit.slope * v);
  const half = x0.map((v) => tq * fit.residualStd * Math.sqrt(1 / fit.n + (v - fit.xMean) ** 2 / fit.sxx));
  return { x: [...x0], y, lower: y.map((v, i) => v - half[i]), upper: y.map((v, i) => v + half[i]) };
}

export interface PowerLawFit {
  /** FID = a * Gflops^b */
  a: number;
  b: number;
  /** Standard errors of b and of log10 a. */
  bStderr: number;
  log10aStderr: number;
  /** The fit in log10 space (log10 y = log10 a + b log10 x). */
  logFit: LinearFit;
}

/** Power law y = a x^b by least squares on log10 x, log10 y; every value must be positive. */
export function powerLawFit(x: readonly number[], y: readonly number[]): PowerLawFit {
  checkPairs(x, y, 'powerLawFit', 3);
  for (const v of [...x, ...y]) if (!(v > 0)) throw new Error(`powerLawFit: values must be positive for a log-log fit, got ${v}`);
  const logFit = linearFit(x.map(Math.log10), y.map(Math.log10));
  return { a: 10 ** logFit.intercept, b: logFit.slope, bStderr: logFit.slopeStderr, log10aStderr: logFit.interceptStderr, logFit };
}

/** The power law's band mapped back from log space: at each x, a x^b with its lower and upper curve. */
export function powerLawBand(fit: PowerLawFit, x: readonly number[], level = 0.95): Band {
  const band = confidenceBand(fit.logFit, x.map(Math.log10), level);
  const up = (v: number) => 10 ** v;
  return { x: [...x], y: band.y.map(up), lower: band.lower.map(up), upper: band.upper.map(up) };
}

/** n points spaced evenly in log10 between lo and hi (both positive). */
export function logspace(lo: number, hi: number, n: number): number[] {
  if (!(lo > 0 && hi > 0)) throw new Error(`logspace: bounds must be positive, got ${lo}, ${hi}`);
  const a = Math.log10(lo);
  const b = Math.log10(hi);
  return Array.from({ length: n }, (_, i) => 10 ** (n === 1 ? a : a + ((b - a) * i) / (n - 1)));
}

/** The median (the mean of the two middle values for an even count). */
export function median(xs: readonly number[]): number {
  if (!xs.length) throw new Error('median: no values');
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
