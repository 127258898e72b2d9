// The numbers ADM's evaluator prints (guided-diffusion evaluations/evaluator.py main), from
// features computed elsewhere (Inception-v3 pool_3, spatial mixed_6/conv[..., :7], logits).
import { featureStats, FidStatistics, frechetDistance } from './fid';
import { inceptionScore } from './inception_score';
import { FeatureMatrix, ManifoldOptions, precisionRecall } from './precision_recall';
import { ReferenceStatistics } from './reference_stats';

export interface AdmReference {
  /** pool_3 activations of the reference batch (precision/recall always need them). */
  pool: FeatureMatrix;
  /** Spatial activations; needed unless `stats` is given. */
  spatial?: FeatureMatrix;
  /** Precomputed statistics (an npz with mu, sigma, mu_s, sigma_s), used instead of the activations' as ADM does. */
  stats?: ReferenceStatistics;
}

export interface AdmSample {
  pool: FeatureMatrix;
  spatial: FeatureMatrix;
  /** Classifier logits of the same samples (row-major n x numClasses). */
  logits: Float32Array;
  numClasses: number;
}

export interface AdmEvaluation {
  inceptionScore: number;
  fid: number;
  sfid: number;
  precision: number;
  recall: number;
}

const statsOf = (f: FeatureMatrix): FidStatistics => featureStats(f.data, f.n, f.d);

/** Inception Score, FID, sFID, precision and recall of samples against a reference batch. */
export async function admEvaluate(ref: AdmReference, sample: AdmSample, opts: ManifoldOptions = {}): Promise<AdmEvaluation> {
  if (sample.logits.length !== sample.pool.n * sample.numClasses) {
    throw new Error(`admEvaluate: ${sample.pool.n} samples need ${sample.pool.n} x ${sample.numClasses} logits, got ${sample.logits.length} values`);
  }
  if (sample.spatial.n !== sample.pool.n) {
    throw new Error(`admEvaluate: ${sample.pool.n} pool but ${sample.spatial.n} spatial sample features`);
  }
  let refStats = ref.stats;
  if (!refStats) {
    if (!ref.spatial) throw new Error('admEvaluate: the reference needs spatial features or precomputed statistics');
    refStats = { pool: statsOf(ref.pool), spatial: statsOf(ref.spatial) };
  }
  const pool = statsOf(sample.pool), spatial = statsOf(sample.spatial);
  const { precision, recall } = await precisionRecall(ref.pool, sample.pool, opts);
  return {
    inceptionScore: inceptionScore(sample.logits, sample.numClasses, { splitSize: 5000 }).mean,
    fid: frechetDistance(pool.mu, pool.sigma, refStats.pool.mu, refStats.pool.sigma),
    sfid: frechetDistance(spatial.mu, spatial.sigma, refStats.spatial.mu, refStats.spatial.sigma),
    precision,
    recall,
  };
}
