// FID/sFID statistics in the layout of ADM's reference batches (VIRTUAL_*.npz):
// mu, sigma (pool_3 features, FID) and mu_s, sigma_s (spatial mixed_6/conv features, sFID),
// float64, sigma as a d x d matrix. Such an npz may also hold the images as arr_0.
import { HostArray, hostArray, toFloat64 } from '../io/array';
import { readNpz, writeNpz } from '../io/npy';
import { FidStatistics } from './fid';

export interface ReferenceStatistics {
  /** pool_3 statistics (FID). */
  pool: FidStatistics;
  /** Spatial statistics (sFID). */
  spatial: FidStatistics;
}

/** The npz arrays {mu, sigma, mu_s, sigma_s} for a set of statistics. */
export function referenceStatsToArrays(s: ReferenceStatistics): Record<string, HostArray> {
  const pair = (f: FidStatistics, what: string): [HostArray, HostArray] => {
    const d = f.mu.length;
    if (f.sigma.length !== d * d) throw new Error(`${what}: sigma has ${f.sigma.length} values, expected ${d} x ${d}`);
    return [hostArray('float64', [d], f.mu), hostArray('float64', [d, d], f.sigma)];
  };
  const [mu, sigma] = pair(s.pool, 'pool statistics');
  const [muS, sigmaS] = pair(s.spatial, 'spatial statistics');
  return { mu, sigma, mu_s: muS, sigma_s: sigmaS };
}

/** Statistics from npz arrays; `name` is used in error messages. */
export function referenceStatsFromArrays(arrays: Record<string, HostArray>, name = 'npz'): ReferenceStatistics {
  const missing = ['mu', 'sigma', 'mu_s', 'sigma_s'].filter((k) => !(k in arrays));
  if (missing.length) {
    throw new Error(`${name}: no precomputed statistics (missing ${missing.join(', ')}; has ${Object.keys(arrays).join(', ') || 'nothing'})`);
  }
  const stats = (muKey: string, sigmaKey: string): FidStatistics => {
    const mu = arrays[muKey], sigma = arrays[sigmaKey];
    if (mu.shape.length !== 1) throw new Error(`${name}: ${muKey} must be 1-d, has shape [${mu.shape.join(', ')}]`);
    const d = mu.shape[0];
    if (sigma.shape.length !== 2 || sigma.shape[0] !== d || sigma.shape[1] !== d) {
      throw new Error(`${name}: ${sigmaKey} must be ${d} x ${d} to match ${muKey}, has shape [${sigma.shape.join(', ')}]`);
    }
    return { mu: toFloat64(mu), sigma: toFloat64(sigma) };
  };
  return { pool: stats('mu', 'sigma'), spatial: stats('mu_s', 'sigma_s') };
}

/** Reads {mu, sigma, mu_s, sigma_s} from an ADM-style .npz. */
export function readReferenceStats(path: string): ReferenceStatistics {
  return referenceStatsFromArrays(readNpz(path), path);
}

/** Writes statistics as an ADM-style .npz (plus any extra arrays, e.g. arr_0). */
export function writeReferenceStats(path: string, s: ReferenceStatistics, extra: Record<string, HostArray> = {}): void {
  writeNpz(path, { ...extra, ...referenceStatsToArrays(s) });
}
