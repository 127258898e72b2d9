// Times the sample-quality metrics on random features, 10k vs 10k 2048-d by default:
//   FID = featureStats of both sets (float64 covariance, pure TypeScript) + frechetDistance
//         (pivoted Cholesky, L^T S2 L, tridiagonal QL: ~3 d^3 flops);
//   P/R = k-NN radii of both sets + evaluate_pr (float32 distances; the u.v products,
//         ~2 n^2 d flops per pass, go through tf.matMul on the active backend).
// Wall and process CPU seconds are both printed: the machine may be shared.
// Run: node dist/bench/metrics.js [n] [d]
import { backendInfo, initBackend } from '../lib/backend';
import { featureStats, frechetDetails } from '../lib/metrics/fid';
import { evaluatePr, featureMatrix, manifoldRadii, ManifoldOptions } from '../lib/metrics/precision_recall';
import { Rng } from '../lib/util/rng';

export interface MetricsBenchOptions extends ManifoldOptions {
  n?: number;
  d?: number;
  /** Where lines go (default: console.log). */
  log?: (line: string) => void;
}

export interface Timing {
  wall_s: number;
  cpu_s: number;
}

export interface MetricsBenchResult {
  backend: string;
  n: number;
  d: number;
  stats: Timing;
  frechet: Timing;
  fid: Timing;
  radii: Timing;
  evaluatePr: Timing;
  precisionRecall: Timing;
  total: Timing;
  /** tf.matMul work of the three distance passes, and its rate over the P/R wall time. */
  matmulGflop: number;
  matmulGflops: number;
  values: { fid: number; precision: number; recall: number };
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
  const { n = 10000, d = 2048, log = (s: string) => console.log(s), ...manifold } = opts;
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

  const [[a, b], stats] = await timed(() => [featureStats(ref, n, d), featureStats(sample, n, d)] as const);
  log(`  featureStats x2     ${fmt(stats)}`);
  const [det, frechet] = await timed(() => frechetDetails(a.mu, a.sigma, b.mu, b.sigma));
  log(`  frechetDistance     ${fmt(frechet)}  (FID ${det.fid.toFixed(4)})`);
  const fid = add(stats, frechet);
  log(`  FID total           ${fmt(fid)}`);

  const R = featureMatrix(ref, n, d), S = featureMatrix(sample, n, d);
  const [[rr, rs], radii] = await timed(async () => [await manifoldRadii(R, manifold), await manifoldRadii(S, manifold)] as const);
  log(`  radii x2            ${fmt(radii)}`);
  const [pr, evalPr] = await timed(() => evaluatePr(R, rr, S, rs, manifold));
  log(`  evaluate_pr         ${fmt(evalPr)}  (precision ${pr.precision}, recall ${pr.recall})`);
  const prTime = add(radii, evalPr);
  const rows = manifold.rowBatchSize ?? 4096;
  const pairs = 2 * radiiPairs(n, rows, manifold.exploitSymmetry ?? true) + n * n;
  const matmulGflop = (2 * d * pairs) / 1e9;
  const matmulGflops = matmulGflop / prTime.wall_s;
  log(`  P/R total           ${fmt(prTime)}  (${matmulGflop.toFixed(0)} GFLOP of u.v, ${matmulGflops.toFixed(1)} GFLOP/s overall)`);
  const total = add(fid, prTime);
  log(`  FID + P/R           ${fmt(total)}`);
  return {
    backend, n, d, stats, frechet, fid, radii, evaluatePr: evalPr, precisionRecall: prTime, total,
    matmulGflop, matmulGflops,
    values: { fid: det.fid, precision: pr.precision, recall: pr.recall },
  };
}

if (require.main === module) {
  const [n, d] = process.argv.slice(2).map(Number);
  benchMetrics({ n: n || undefined, d: d || undefined }).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
