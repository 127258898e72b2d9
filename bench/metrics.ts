// The sample-quality metrics of the kit against numpy/scipy (bench/numpy_metrics.py: ADM's
// evaluator), on the same random features, 10k vs 10k 2048-d by default, one BLAS thread each:
//   FID = featureStats of both sets (float64 mean and covariance: dsyrk through the native
//         addon, else TypeScript) + frechetDetails (tr sqrtm(S1 S2): dpstrf, dtrmm, dsyevd
//         through the addon's LAPACK, else TypeScript);
//   P/R = k-NN radii of both sets + evaluate_pr (float32 distances whose u.v products,
//         ~2 n^2 d flops per pass, go through tf.matMul on the active backend).
// Kit and numpy repeats alternate (kit FID, numpy FID, kit P/R, numpy P/R, then again);
// each figure is the median of the repeats with its spread, by CPU and by wall time.
// Run on its own: node dist/bench/metrics.js [n] [d] [reps]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { backendInfo, initBackend } from '../lib/backend';
import { loadNativeAddon } from '../lib/backend/native_addon';
import { encodeNpy } from '../lib/io/npy';
import { featureStats, frechetDetails } from '../lib/metrics/fid';
import { fidLinalg } from '../lib/metrics/fid_linalg';
import { evaluatePr, featureMatrix, FeatureMatrix, manifoldOptions, manifoldRadii, ManifoldOptions } from '../lib/metrics/precision_recall';
import { repoRoot } from '../lib/util/paths';
import { Rng } from '../lib/util/rng';
import { addTimings, fmtRatio, fmtSpread, loadAverage, ratio, Ratio, sides, Sides, timed, Timing } from './measure';
import { ONE_THREAD_ENV, pythonWith } from './kernels';
import { PyWorker } from './pyworker';

export interface MetricsBenchOptions extends ManifoldOptions {
  n?: number;
  d?: number;
  /** Repeats of each side (default 3). */
  reps?: number;
  /** A Python with numpy and scipy (default: found by pythonWith); null: kit only. */
  python?: string | null;
  /** Where lines go (default: console.log). */
  log?: (line: string) => void;
}

export interface MetricsSide {
  fid: Sides;
  fidPr: Sides;
  pr: Sides;
}

export interface MetricsBenchResult {
  backend: string;
  /** Which linear algebra the kit's FID ran on (fid_linalg.ts). */
  linalg: string;
  n: number;
  d: number;
  kit: MetricsSide & { fid_value: number; precision: number; recall: number; blas: string; threads: number | null };
  numpy: (MetricsSide & { fid_value: number; precision: number; recall: number; info: Record<string, unknown> }) | null;
  /** kit / numpy: FID alone, and FID + precision/recall. */
  ratio: { fid: Ratio; fidPr: Ratio } | null;
  reps: number;
  loadAverage: { start: number[]; end: number[] };
  /** tf.matMul work of the kit's three distance passes (GFLOP). */
  prMatmulGflop: number;
}

/** u.v pairs the radii pass evaluates: blocks on and right of the diagonal when symmetric. */
function radiiPairs(n: number, rows: number, symmetric: boolean): number {
  if (!symmetric) return n * n;
  let pairs = 0;
  for (let r0 = 0; r0 < n; r0 += rows) pairs += (Math.min(n, r0 + rows) - r0) * (n - r0);
  return pairs;
}

const fmt = (t: Timing) => `${t.cpu_s.toFixed(1)} s cpu, ${t.wall_s.toFixed(1)} s wall`;

/** Reference and sample sets from slightly different distributions, non-negative like pool_3. */
function benchFeatures(n: number, d: number): [Float32Array, Float32Array] {
  const rng = new Rng(2024);
  const ref = rng.fillNormal(new Float32Array(n * d));
  const sample = rng.fillNormal(new Float32Array(n * d), 0.01, 1.02);
  for (let i = 0; i < ref.length; i++) {
    ref[i] = Math.abs(ref[i]);
    sample[i] = Math.abs(sample[i]);
  }
  return [ref, sample];
}

/** Starts bench/numpy_metrics.py on the features (written as .npy to a temporary folder), or null with the reason logged. */
async function startNumpy(py: string | null, ref: Float32Array, sample: Float32Array, n: number, d: number, log: (s: string) => void) {
  if (!py) {
    log('  (numpy/scipy side skipped: no python3 with numpy and scipy; set DIT_PYTHON, or apt-get install python3-scipy)');
    return null;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-metrics-bench-'));
  const files = ['ref.npy', 'sample.npy'].map((f) => path.join(dir, f));
  fs.writeFileSync(files[0], encodeNpy({ dtype: 'float32', shape: [n, d], data: ref }));
  fs.writeFileSync(files[1], encodeNpy({ dtype: 'float32', shape: [n, d], data: sample }));
  try {
    const { worker, ready } = await PyWorker.start(py, path.join(repoRoot(), 'bench', 'numpy_metrics.py'), ['--ref', files[0], '--sample', files[1], '--serve']);
    return { worker, ready, dir };
  } catch (err) {
    log(`  (numpy/scipy side skipped: ${(err as Error).message})`);
    fs.rmSync(dir, { recursive: true, force: true });
    return null;
  }
}

export async function benchMetrics(opts: MetricsBenchOptions = {}): Promise<MetricsBenchResult> {
  const { n = 10000, d = 2048, reps = 3, log = (s: string) => console.log(s), python, ...manifold } = opts;
  await initBackend({ quiet: true });
  const backend = backendInfo()?.name ?? 'unknown';
  const addon = loadNativeAddon();
  const linalg = fidLinalg(addon);
  const [ref, sample] = benchFeatures(n, d);
  const R: FeatureMatrix = featureMatrix(ref, n, d), S: FeatureMatrix = featureMatrix(sample, n, d);
  const np = await startNumpy(python === undefined ? pythonWith('numpy, scipy.linalg') : python, ref, sample, n, d, log);
  const kitBlas = addon ? `${addon.blasConfig()}, ${addon.getThreads()} thread(s)` : 'none (no native addon)';
  log(`  ${n} vs ${n} features of ${d} dims; kit: FID linear algebra ${linalg.name}, distances on ${backend}, BLAS ${kitBlas}`);
  if (np) {
    const b = np.ready.blas as { library: string; threads: number | null };
    log(`  numpy ${String(np.ready.numpy_version)}, scipy ${String(np.ready.scipy_version)}: BLAS ${b.library}, ${b.threads ?? '?'} thread(s) ` +
      `(${Object.entries(ONE_THREAD_ENV).map(([k, v]) => `${k}=${v}`).join(' ')})`);
  }
  const start = loadAverage();
  const kit = { fid: [] as Timing[], pr: [] as Timing[] }, ref2 = { fid: [] as Timing[], pr: [] as Timing[] };
  let kitValues = { fid: NaN, precision: NaN, recall: NaN }, npValues = { fid: NaN, precision: NaN, recall: NaN };
  try {
    for (let r = 0; r < reps; r++) {
      const [[a, b], stats] = await timed(() => [featureStats(ref, n, d, linalg), featureStats(sample, n, d, linalg)] as const);
      const [det, frechet] = await timed(() => frechetDetails(a.mu, a.sigma, b.mu, b.sigma, 1e-6, linalg));
      kit.fid.push(addTimings(stats, frechet));
      let npFid = '';
      if (np) {
        const o = await np.worker.request({ op: 'fid' });
        ref2.fid.push({ wall_s: o.wall_s as number, cpu_s: o.cpu_s as number });
        npValues.fid = o.fid as number;
        npFid = `; numpy/scipy ${fmt(ref2.fid[r])}`;
      }
      log(`  repeat ${r + 1}: kit FID ${fmt(kit.fid[r])} (statistics ${stats.cpu_s.toFixed(1)} s, frechet ${frechet.cpu_s.toFixed(1)} s cpu)${npFid}`);
      const [[rr, rs], radii] = await timed(async () => [await manifoldRadii(R, manifold), await manifoldRadii(S, manifold)] as const);
      const [pr, evalPr] = await timed(() => evaluatePr(R, rr, S, rs, manifold));
      kit.pr.push(addTimings(radii, evalPr));
      kitValues = { fid: det.fid, precision: pr.precision, recall: pr.recall };
      let npPr = '';
      if (np) {
        const o = await np.worker.request({ op: 'pr' });
        ref2.pr.push({ wall_s: o.wall_s as number, cpu_s: o.cpu_s as number });
        npValues = { ...npValues, precision: o.precision as number, recall: o.recall as number };
        npPr = `; numpy ${fmt(ref2.pr[r])}`;
      }
      log(`  repeat ${r + 1}: kit P/R ${fmt(kit.pr[r])} (radii ${radii.cpu_s.toFixed(1)} s, evaluate_pr ${evalPr.cpu_s.toFixed(1)} s cpu)${npPr}`);
    }
  } finally {
    if (np) {
      np.worker.close();
      fs.rmSync(np.dir, { recursive: true, force: true });
    }
  }
  const end = loadAverage();
  const both = (s: { fid: Timing[]; pr: Timing[] }) => s.fid.map((t, i) => addTimings(t, s.pr[i]));
  const side = (s: { fid: Timing[]; pr: Timing[] }): MetricsSide => ({ fid: sides(s.fid), pr: sides(s.pr), fidPr: sides(both(s)) });
  const mo = manifoldOptions(manifold);
  const pairs = radiiPairs(n, mo.rowBatchSize, mo.exploitSymmetry) * 2 + n * n;
  const result: MetricsBenchResult = {
    backend, linalg: linalg.name, n, d, reps,
    kit: { ...side(kit), fid_value: kitValues.fid, precision: kitValues.precision, recall: kitValues.recall, blas: addon?.blasConfig() ?? 'none', threads: addon?.getThreads() ?? null },
    numpy: np ? { ...side(ref2), fid_value: npValues.fid, precision: npValues.precision, recall: npValues.recall, info: np.ready } : null,
    ratio: np ? { fid: ratio(kit.fid, ref2.fid), fidPr: ratio(both(kit), both(ref2)) } : null,
    loadAverage: { start, end },
    prMatmulGflop: (2 * d * pairs) / 1e9,
  };
  const k = result.kit, p = result.numpy;
  log(`  values: kit FID ${k.fid_value.toFixed(6)}, precision ${k.precision}, recall ${k.recall}` +
    (p ? `; numpy/scipy FID ${p.fid_value.toFixed(6)} (kit ${((k.fid_value - p.fid_value) / p.fid_value).toExponential(1)} relative), precision ${p.precision}, recall ${p.recall}` : ''));
  for (const [what, key] of [['FID', 'fid'], ['FID + P/R', 'fidPr']] as const) {
    const r = result.ratio?.[key];
    log(`  ${what.padEnd(10)} CPU  kit ${fmtSpread(k[key].cpu_s, 1)}${p ? `  numpy ${fmtSpread(p[key].cpu_s, 1)}  ratio ${fmtRatio(r!.cpu, r!.paired_cpu)}${key === 'fidPr' ? ' (target <= 0.5)' : ''}` : ''}`);
    log(`  ${''.padEnd(10)} wall kit ${fmtSpread(k[key].wall_s, 1)}${p ? `  numpy ${fmtSpread(p[key].wall_s, 1)}  ratio ${fmtRatio(r!.wall, r!.paired_wall)}` : ''}`);
  }
  log(`  (kit P/R: ${result.prMatmulGflop.toFixed(0)} GFLOP of u.v products, ${(result.prMatmulGflop / k.pr.cpu_s.median).toFixed(1)} GFLOP per CPU second; ` +
    `load average ${start.join(' ')} -> ${end.join(' ')})`);
  return result;
}

if (require.main === module) {
  const [n, d, reps] = process.argv.slice(2, 5).map(Number);
  benchMetrics({ n: n || undefined, d: d || undefined, reps: reps || undefined }).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
