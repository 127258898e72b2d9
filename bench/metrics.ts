// Times the sample-quality metrics on random features, 10k vs 10k 2048-d by default:
//   FID = featureStats of both sets (float64 covariance, pure TypeScript) + frechetDistance
//         (pivoted Cholesky, L^T S2 L, tridiagonal QL: ~3 d^3 flops); also the FID with
//         featureStatsOnBackend (covariance products in float32 on the tfjs backend);
//   P/R = k-NN radii of both sets + evaluate_pr (float32 distances; the u.v products,
//         ~2 n^2 d flops per pass, go through tf.matMul on the active backend).
// Wall and process CPU seconds are both printed: the machine may be shared.
// Run: node dist/bench/metrics.js [n] [d] [fid|pr]
import { backendInfo, initBackend } from '../lib/backend';
import { featureStats, frechetDetails } from '../lib/metrics/fid';
import { evaluatePr, featureMatrix, FeatureMatrix, manifoldRadii, ManifoldOptions } from '../lib/metrics/precision_recall';
import { featureStatsOnBackend } from '../lib/metrics/stats_backend';
import { Rng } from '../lib/util/rng';

export interface MetricsBenchOptions extends ManifoldOptions {
  n?: number;
  d?: number;
  /** Time the FID part (default true). */
  fid?: boolean;
  /** Time the precision/recall part (default true). */
  pr?: boolean;
  /** Where lines go (default: console.log). */
  log?: (line: string) => void;
}

export interface Timing {
  wall_s: number;
  cpu_s: number;
}

export interface FidBench {
  /** featureStats x2 (float64), frechetDistance, and their sum. */
  stats: Timing;
  frechet: Timing;
  total: Timing;
  /** featureStatsOnBackend x2, and the FID with it (stats + frechetDistance). */
  statsOnBackend: Timing;
  totalOnBackend: Timing;
  fid: number;
  fidOnBackend: number;
}

export interface PrBench {
  radii: Timing;
  evaluatePr: Timing;
  total: Timing;
  /** tf.matMul work of the three distance passes (GFLOP). */
  matmulGflop: number;
  precision: number;
  recall: number;
}

export interface MetricsBenchResult {
  backend: string;
  n: number;
  d: number;
  fid?: FidBench;
  pr?: PrBench;
}

async function timed<T>(f: () => T | Promise<T>): Promise<[T, Timing]> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const v = await f();
  const cu = process.cpuUsage(c0);
  return [v, { wall_s: (performance.now() - t0) / 1000, cpu_s: (cu.user + cu.system) / 1e6 }];
}

const add = (a: Timing, b: Timing): Timing => ({ wall_s: a.wall_s + b.wall_s, cpu_s: a.cpu_s + b.cpu_s });
const fmt = (t: Timing) => `${t.wall_s.toFixed(1)} s wall, ${t.cpu_s.toFixed(1)} s cpu`;

/** u.v pairs the radii pass evaluates: blocks on and right of the diagonal when symmetric. */
function radiiPairs(n: number, rows: number, symmetric: boolean): number {
  if (!symmetric) return n * n;
  let pairs = 0;
  for (let r0 = 0; r0 < n; r0 += rows) pairs += (Math.min(n, r0 + rows) - r0) * (n - r0);
  return pairs;
}

export async function benchMetrics(opts: MetricsBenchOptions = {}): Promise<MetricsBenchResult> {
  const { n = 10000, d = 2048, fid = true, pr = true, log = (s: string) => console.log(s), ...manifold } = opts;
  await initBackend({ quiet: true });
  const backend = backendInfo()?.name ?? 'unknown';
  log(`[metrics bench] ${n} vs ${n} features of ${d} dims, backend ${backend}`);
  const rng = new Rng(2024);
  // Reference and sample sets from slightly different distributions, non-negative like pool_3.
  const ref = rng.fillNormal(new Float32Array(n * d));
  const sample = rng.fillNormal(new Float32Array(n * d), 0.01, 1.02);
  for (let i = 0; i < ref.length; i++) {
    ref[i] = Math.abs(ref[i]);
    sample[i] = Math.abs(sample[i]);
  }
  const out: MetricsBenchResult = { backend, n, d };
  if (fid) out.fid = await benchFid(ref, sample, n, d, log);
  if (pr) out.pr = await benchPr(featureMatrix(ref, n, d), featureMatrix(sample, n, d), manifold, log);
  if (out.fid && out.pr) log(`  FID + P/R           ${fmt(add(out.fid.total, out.pr.total))}`);
  return out;
}

async function benchFid(ref: Float32Array, sample: Float32Array, n: number, d: number, log: (s: string) => void): Promise<FidBench> {
  const [[a, b], stats] = await timed(() => [featureStats(ref, n, d), featureStats(sample, n, d)] as const);
  log(`  featureStats x2     ${fmt(stats)}`);
  const [det, frechet] = await timed(() => frechetDetails(a.mu, a.sigma, b.mu, b.sigma));
  log(`  frechetDistance     ${fmt(frechet)}  (FID ${det.fid.toFixed(4)})`);
  const total = add(stats, frechet);
  log(`  FID total           ${fmt(total)}`);
  const [[a2, b2], statsOnBackend] = await timed(async () => [await featureStatsOnBackend(ref, n, d), await featureStatsOnBackend(sample, n, d)] as const);
  const [det2, frechet2] = await timed(() => frechetDetails(a2.mu, a2.sigma, b2.mu, b2.sigma));
  const totalOnBackend = add(statsOnBackend, frechet2);
  log(`  featureStatsOnBackend x2 ${fmt(statsOnBackend)}; FID total ${fmt(totalOnBackend)}` +
    ` (FID ${det2.fid.toFixed(4)}, ${((det2.fid - det.fid) / det.fid).toExponential(1)} relative to float64 stats)`);
  return { stats, frechet, total, statsOnBackend, totalOnBackend, fid: det.fid, fidOnBackend: det2.fid };
}

async function benchPr(R: FeatureMatrix, S: FeatureMatrix, manifold: ManifoldOptions, log: (s: string) => void): Promise<PrBench> {
  const [[rr, rs], radii] = await timed(async () => [await manifoldRadii(R, manifold), await manifoldRadii(S, manifold)] as const);
  log(`  radii x2            ${fmt(radii)}`);
  const [pr, evalPr] = await timed(() => evaluatePr(R, rr, S, rs, manifold));
  log(`  evaluate_pr         ${fmt(evalPr)}  (precision ${pr.precision}, recall ${pr.recall})`);
  const total = add(radii, evalPr);
  const rows = manifold.rowBatchSize ?? 4096;
  const pairs = radiiPairs(R.n, rows, manifold.exploitSymmetry ?? true) + radiiPairs(S.n, rows, manifold.exploitSymmetry ?? true) + R.n * S.n;
  const matmulGflop = (2 * R.d * pairs) / 1e9;
  log(`  P/R total           ${fmt(total)}  (${matmulGflop.toFixed(0)} GFLOP of u.v: ` +
    `${(matmulGflop / total.wall_s).toFixed(1)} GFLOP/s wall, ${(matmulGflop / total.cpu_s).toFixed(1)} per cpu second)`);
  return { radii, evaluatePr: evalPr, total, matmulGflop, precision: pr.precision, recall: pr.recall };
}

if (require.main === module) {
  const [n, d] = process.argv.slice(2, 4).map(Number);
  const only = process.argv[4];
  benchMetrics({ n: n || undefined, d: d || undefined, fid: only !== 'pr', pr: only !== 'fid' }).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
