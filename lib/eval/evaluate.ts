// `evaluateSamples`: the one path from images, features or statistics to FID, sFID,
// Inception Score, precision and recall of samples against a reference, as ADM's evaluator
// (guided-diffusion evaluations/evaluator.py main) computes them with lib/metrics.
//
// For each metric the two sides must provide the same kind of quantity in the same feature
// space. Each side offers what its file holds first (stored statistics before statistics of
// stored features, as ADM's read_statistics), then what the network computes from its
// images; the first pair with equal dimensions and no conflicting feature_net tag is used.
// A metric no pair can serve is reported absent with the reason; the others are computed.
import { FeatureArrays, FeatureNet } from '../features/network';
import * as fs from 'fs';
import { FeatureNetOptions, defaultInceptionWeightsPath, loadFeatureNet } from '../features';
import { defaultCnnDir, defaultCnnProblem, isDefaultCnnId } from '../features/default_store';
import { featureStats, FidStatistics, frechetDistance } from '../metrics/fid';
import { classAccuracy } from '../metrics/class_accuracy';
import { inceptionScore } from '../metrics/inception_score';
import { ManifoldOptions, featureMatrix, precisionRecall } from '../metrics/precision_recall';
import { EvalInput, Matrix, checkEvalInput, openEvalInput } from './inputs';
import { extractFeatures, referenceFeatures } from './extract';
import { Progress, progress } from '../util/progress';

export type MetricName = 'fid' | 'sfid' | 'inception_score' | 'precision' | 'recall' | 'class_accuracy';
export const METRICS: readonly MetricName[] = ['fid', 'sfid', 'inception_score', 'precision', 'recall', 'class_accuracy'];

export interface EvaluateOptions extends FeatureNetOptions {
  /** Use this network for images (features/inceptionWeights are then ignored). */
  net?: FeatureNet;
  batchSize?: number;
  /** Reference statistics cache (default data/features/stats); null: none. */
  cacheDir?: string | null;
  manifold?: ManifoldOptions;
  /** Inception Score split size (ADM: 5000). */
  splitSize?: number;
  log?: (msg: string) => void;
  /** Show feature extraction progress on stderr. Default false. */
  progress?: boolean;
}

export interface Evaluation {
  fid: number | null;
  sfid: number | null;
  inception_score: number | null;
  precision: number | null;
  recall: number | null;
  /** Share of samples the kit's default CNN classifies as the class they were generated for (needs arr_1 labels). */
  class_accuracy: number | null;
  /** Why each missing metric could not be computed. */
  absent: Partial<Record<MetricName, string>>;
  /** The network that processed images, when one did. */
  featureNet: string | null;
  /** What each metric was computed from. */
  sources: Partial<Record<MetricName, string>>;
}

/** A quantity one side can provide: its dimension, feature space (network id, if known) and value. */
interface Offer<T> {
  what: string;
  dim: number;
  space?: string;
  get: () => T;
}

type Offers<T> = Array<Offer<T> | string>; // a string: why that route is closed

function compatible(a: Offer<unknown>, b: Offer<unknown>): boolean {
  return a.dim === b.dim && (!a.space || !b.space || a.space === b.space);
}

/** The network, loaded on first need; a load failure becomes a reason, not an exception. */
class NetHolder {
  private net: FeatureNet | null | undefined;
  problem = '';
  constructor(private readonly opts: EvaluateOptions) {}
  /** With mayTrain false, null unless the network is there already: a shortcut never trains one. */
  get(mayTrain = true): FeatureNet | null {
    if (this.net === undefined && !mayTrain && !this.ready()) return null;
    if (this.net === undefined) {
      try {
        this.net = this.opts.net ?? loadFeatureNet(this.opts);
      } catch (err) {
        this.net = null;
        this.problem = (err as Error).message;
      }
    }
    return this.net;
  }
  /** Would getting the network train one (the default CNN, not yet trained)? */
  wouldTrain(): boolean {
    if (this.net !== undefined || this.opts.net || (this.opts.features ?? 'default') !== 'default') return false;
    return defaultCnnProblem(this.opts.defaultCnnDir ?? defaultCnnDir()) !== null;
  }
  private ready(): boolean {
    if (this.opts.net) return true;
    if ((this.opts.features ?? 'default') === 'inception') return fs.existsSync(this.opts.inceptionWeights ?? defaultInceptionWeightsPath());
    return defaultCnnProblem(this.opts.defaultCnnDir ?? defaultCnnDir()) === null;
  }
  used(): string | null {
    return this.net ? this.net.id : null;
  }
  dispose(): void {
    if (this.net && !this.opts.net) this.net.dispose();
  }
}

const statsOf = (m: Matrix): FidStatistics => featureStats(m.data, m.n, m.d);

/** One side of the evaluation: file contents plus, on demand, features of its images. */
class Side {
  private fromImages: (FeatureArrays & { poolStats?: FidStatistics; spatialStats?: FidStatistics }) | null = null;
  private imageProblem: string | null = null;
  private readonly memo = new Map<string, unknown>();

  constructor(readonly input: EvalInput, readonly role: 'reference' | 'samples', readonly holder: NetHolder, private readonly opts: EvaluateOptions) {}

  private once<T>(key: string, f: () => T): T {
    if (!this.memo.has(key)) this.memo.set(key, f());
    return this.memo.get(key) as T;
  }

  /** Why the images cannot be turned into features, or null. */
  private netRoute(): string | FeatureNet {
    if (!this.input.images) return `${verb(this.role, 'hold')} no images`;
    const net = this.holder.get();
    return net ?? `the ${this.role === 'reference' ? 'reference' : 'sample'} images need a feature network: ${this.holder.problem}`;
  }

  /** Features of the images (the reference through the statistics cache). */
  private features(net: FeatureNet) {
    if (this.fromImages) return this.fromImages;
    const log = this.opts.log;
    const bars: Progress[] = [];
    const onProgress = this.opts.progress ? (done: number, total: number) => {
      if (!bars.length) bars.push(progress(`${this.role} features (${net.id})`, total, { unit: 'images' }));
      if (done < total) bars[0].update(done);
      else bars[0].done();
    } : undefined;
    if (this.role === 'reference' && this.opts.cacheDir !== null && this.input.hash) {
      const r = referenceFeatures(this.input, net, { batchSize: this.opts.batchSize, cacheDir: this.opts.cacheDir, log, onProgress });
      if (r.cached) log?.(`${this.input.name}: reference statistics from the cache (${net.id})`);
      this.fromImages = { n: r.n, pool: r.pool.data, logits: new Float32Array(0), spatial: new Float32Array(0), poolStats: r.poolStats, spatialStats: r.spatialStats };
    } else {
      const src = this.input.images!();
      log?.(`${this.input.name}: extracting ${net.id} features of ${src.n} images`);
      this.fromImages = extractFeatures(net, src, { batchSize: this.opts.batchSize, onProgress });
    }
    return this.fromImages;
  }

  private netOffer<T>(what: string, dim: (net: FeatureNet) => number, value: (net: FeatureNet) => T): Offer<T> | string {
    const r = this.netRoute();
    if (typeof r === 'string') return r;
    return { what: `${what} of the images (${r.id})`, dim: dim(r), space: r.id, get: () => this.once(`net:${what}`, () => value(r)) };
  }

  private fileSpace(): string | undefined {
    return this.input.featureNet;
  }

  poolStats(withNet: boolean): Offers<FidStatistics> {
    const i = this.input, out: Offers<FidStatistics> = [];
    if (i.poolStats) out.push({ what: 'mu/sigma in the file', dim: i.poolStats.mu.length, space: this.fileSpace(), get: () => i.poolStats! });
    else if (i.pool) out.push({ what: 'statistics of the pool features in the file', dim: i.pool.d, space: this.fileSpace(), get: () => this.once('file:poolStats', () => statsOf(i.pool!)) });
    if (withNet) {
      out.push(this.netOffer('pool statistics', (n) => n.poolDim, (n) => {
        const f = this.features(n);
        return f.poolStats ?? featureStats(f.pool, f.n, n.poolDim);
      }));
    }
    return out;
  }

  spatialStats(withNet: boolean): Offers<FidStatistics> {
    const i = this.input, out: Offers<FidStatistics> = [];
    if (i.spatialStats) out.push({ what: 'mu_s/sigma_s in the file', dim: i.spatialStats.mu.length, space: this.fileSpace(), get: () => i.spatialStats! });
    else if (i.spatial) out.push({ what: 'statistics of the spatial features in the file', dim: i.spatial.d, space: this.fileSpace(), get: () => this.once('file:spatialStats', () => statsOf(i.spatial!)) });
    if (withNet) {
      out.push(this.netOffer('spatial statistics', (n) => n.spatialDim, (n) => {
        const f = this.features(n);
        return f.spatialStats ?? featureStats(f.spatial, f.n, n.spatialDim);
      }));
    }
    return out;
  }

  pool(withNet: boolean): Offers<Matrix> {
    const i = this.input, out: Offers<Matrix> = [];
    if (i.pool) out.push({ what: 'pool features in the file', dim: i.pool.d, space: this.fileSpace(), get: () => i.pool! });
    if (withNet) {
      out.push(this.netOffer('pool features', (n) => n.poolDim, (n) => {
        const f = this.features(n);
        return { data: f.pool, n: f.n, d: n.poolDim };
      }));
    }
    return out;
  }

  /** Logits: stored, else the network's head on stored pool features, else from the images. */
  logits(withNet: boolean): Offers<Matrix> {
    const i = this.input, out: Offers<Matrix> = [];
    if (i.logits) out.push({ what: 'logits in the file', dim: i.logits.d, space: this.fileSpace(), get: () => i.logits! });
    if (!withNet) return out;
    if (i.pool && !i.logits) {
      // A shortcut: only with a network already there, never one trained for it.
      const net = this.holder.get(false);
      if (net && i.pool.d === net.poolDim && (!i.featureNet || i.featureNet === net.id)) {
        out.push({ what: `${net.id} head on the pool features in the file`, dim: net.numClasses, space: net.id, get: () => this.once('head', () => ({ data: net.logitsFromPool(i.pool!.data, i.pool!.n), n: i.pool!.n, d: net.numClasses })) });
      }
    }
    out.push(this.netOffer('logits', (n) => n.numClasses, (n) => {
      const f = this.features(n);
      return { data: f.logits, n: f.n, d: n.numClasses };
    }));
    return out;
  }
}

/** 'the reference holds', 'the samples hold'. */
function verb(role: string, v: string): string {
  return role === 'reference' ? `the reference ${v}s` : `the samples ${v}`;
}

function describe(offers: Offers<unknown>, role: string): string {
  const usable = offers.filter((o): o is Offer<unknown> => typeof o !== 'string');
  if (usable.length) return `${verb(role, 'offer')} ${usable.map((o) => `${o.dim}-d ${o.what}${o.space ? ` [${o.space}]` : ''}`).join(' or ')}`;
  return offers.filter((o): o is string => typeof o === 'string').join('; ') || `${verb(role, 'hold')} nothing usable`;
}

function firstPair<T>(what: string, ref: Offers<T>, sample: Offers<T>): [Offer<T>, Offer<T>] | string {
  for (const r of ref) {
    if (typeof r === 'string') continue;
    for (const s of sample) if (typeof s !== 'string' && compatible(r, s)) return [r, s];
  }
  return `no matching ${what}: ${describe(ref, 'reference')}; ${describe(sample, 'samples')}`;
}

/**
 * The first compatible (reference, samples) pair, or the reason there is none. What the
 * files hold is tried alone first, so the network is loaded (or trained) only when needed.
 */
function pair<T>(what: string, ref: (withNet: boolean) => Offers<T>, sample: (withNet: boolean) => Offers<T>, sides: [Side, Side]): [Offer<T>, Offer<T>] | string {
  const p = firstPair(what, ref(false), sample(false));
  if (typeof p !== 'string') return p;
  // The network only adds offers for images: it is not trained when a side without images has nothing to pair
  // (a side without images offers the same with or without it, so asking it withNet loads nothing).
  const usable = (o: Offers<T>) => o.some((x) => typeof x !== 'string');
  const [R, S] = sides;
  if (R.holder.wouldTrain() && ((!R.input.images && !usable(ref(false))) || (!S.input.images && !usable(sample(false))))) {
    const q = firstPair(what, ref(!R.input.images), sample(!S.input.images));
    return typeof q === 'string' ? `${q} (the feature network was not trained for it)` : q;
  }
  return firstPair(what, ref(true), sample(true));
}

function resolve(x: EvalInput | string): EvalInput {
  return typeof x === 'string' ? openEvalInput(x) : checkEvalInput(x);
}

/**
 * Evaluates samples against a reference (each an EvalInput or a path: an .npz or a dataset).
 * Metrics that cannot be computed are null, with the reason in `absent`.
 */
export async function evaluateSamples(ref: EvalInput | string, sample: EvalInput | string, opts: EvaluateOptions = {}): Promise<Evaluation> {
  const holder = new NetHolder(opts);
  const R = new Side(resolve(ref), 'reference', holder, opts);
  const S = new Side(resolve(sample), 'samples', holder, opts);
  const result: Evaluation = { fid: null, sfid: null, inception_score: null, precision: null, recall: null, class_accuracy: null, absent: {}, featureNet: null, sources: {} };
  const attempt = (names: MetricName[], f: () => Promise<string> | string): Promise<void> => Promise.resolve()
    .then(f)
    .then((src) => { for (const n of names) result.sources[n] = src; })
    .catch((err: Error) => { for (const n of names) result.absent[n] = err.message; });
  const need = <T>(p: [Offer<T>, Offer<T>] | string): [Offer<T>, Offer<T>] => {
    if (typeof p === 'string') throw new Error(p);
    return p;
  };
  const from = (p: [Offer<unknown>, Offer<unknown>]) => `reference: ${p[0].what}; samples: ${p[1].what}`;
  // The samples' logits: those in the file when it has them, else the network's.
  const sampleLogits = (): Offers<Matrix> => {
    const inFile = S.logits(false);
    return inFile.length ? inFile : S.logits(true);
  };
  try {
    await attempt(['fid'], () => {
      const p = need(pair('pool statistics (FID)', (w) => R.poolStats(w), (w) => S.poolStats(w), [R, S]));
      const [a, b] = [p[0].get(), p[1].get()];
      result.fid = frechetDistance(b.mu, b.sigma, a.mu, a.sigma);
      return from(p);
    });
    await attempt(['sfid'], () => {
      const p = need(pair('spatial statistics (sFID)', (w) => R.spatialStats(w), (w) => S.spatialStats(w), [R, S]));
      const [a, b] = [p[0].get(), p[1].get()];
      result.sfid = frechetDistance(b.mu, b.sigma, a.mu, a.sigma);
      return from(p);
    });
    await attempt(['inception_score'], () => {
      const offers = sampleLogits();
      const o = offers.find((x): x is Offer<Matrix> => typeof x !== 'string');
      if (!o) throw new Error(`no logits for the Inception Score: ${describe(offers, 'samples')}`);
      const m = o.get();
      result.inception_score = inceptionScore(m.data, m.d, { splitSize: opts.splitSize ?? 5000 }).mean;
      return `samples: ${o.what}`;
    });
    // Not one of ADM's metrics: attempted only for samples that carry their labels.
    const labels = S.input.labels;
    if (labels) await attempt(['class_accuracy'], () => {
      // The default CNN classifies the synthetic data's classes; the FID Inception's 1008 outputs are not a label space of the samples.
      const offers = sampleLogits();
      const o = offers.find((x): x is Offer<Matrix> => typeof x !== 'string' && isDefaultCnnId(x.space));
      if (!o) throw new Error(`needs logits of the kit's default CNN (--features default): ${describe(offers, 'samples')}`);
      const m = o.get();
      if (labels.length !== m.n) throw new Error(`${labels.length} labels (arr_1) for ${m.n} samples`);
      result.class_accuracy = classAccuracy(m.data, m.d, labels);
      return `samples: ${o.what} and their labels (arr_1)`;
    });
    await attempt(['precision', 'recall'], async () => {
      const p = need(pair('pool features (precision/recall need features, statistics do not suffice)', (w) => R.pool(w), (w) => S.pool(w), [R, S]));
      const [a, b] = [p[0].get(), p[1].get()];
      const pr = await precisionRecall(featureMatrix(a.data, a.n, a.d, 'reference pool features'), featureMatrix(b.data, b.n, b.d, 'sample pool features'), opts.manifold);
      result.precision = pr.precision;
      result.recall = pr.recall;
      return from(p);
    });
  } finally {
    result.featureNet = holder.used();
    holder.dispose();
  }
  return result;
}
