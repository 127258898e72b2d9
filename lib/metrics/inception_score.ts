// Inception Score (Salimans et al. 2016) as ADM's Evaluator.compute_inception_score:
// preds = softmax(logits); for each split of `split_size` consecutive samples,
// score = exp(mean_x KL(p(y|x) || p(y))) with p(y) the split's mean prediction;
// IS = np.mean(scores). The improved-gan / torch-fidelity variant (10 equal splits,
// mean and std) is the `numSplits` option.

export interface InceptionScoreOptions {
  /** ADM: splits of this many consecutive samples (the last may be shorter). Default 5000. */
  splitSize?: number;
  /** Instead: this many equal splits, rows [i*n/S, (i+1)*n/S) as improved-gan does. */
  numSplits?: number;
  /** Whether `values` holds classifier logits (softmax applied here) or probabilities. Default 'logits'. */
  input?: 'logits' | 'probs';
}

export interface InceptionScore {
  /** Mean of the split scores (ADM's reported Inception Score). */
  mean: number;
  /** Population standard deviation of the split scores (np.std), as other tools report. */
  std: number;
  splitScores: number[];
}

/**
 * Inception Score of n = values.length / numClasses predictions (row-major n x numClasses).
 * Computed in float64. From logits, log p comes from a stable log-softmax, so classes with
 * vanishing probability contribute 0 (0 log 0 = 0); ADM's float32 softmax would give NaN there.
 */
export function inceptionScore(
  values: Float32Array | Float64Array,
  numClasses: number,
  opts: InceptionScoreOptions = {},
): InceptionScore {
  const C = numClasses;
  if (!Number.isInteger(C) || C < 1) throw new Error(`inceptionScore: numClasses must be a positive integer, got ${C}`);
  if (values.length % C !== 0) {
    throw new Error(`inceptionScore: ${values.length} values are not a whole number of ${C}-class rows`);
  }
  const n = values.length / C;
  if (n === 0) throw new Error('inceptionScore: no predictions');
  const input = opts.input ?? 'logits';
  if (input !== 'logits' && input !== 'probs') throw new Error(`inceptionScore: input must be 'logits' or 'probs', got '${input}'`);
  const bounds = splitBounds(n, opts);
  const logp = input === 'logits' ? logSoftmax(values, n, C) : logOfProbs(values, n, C);
  const splitScores = bounds.map(([a, b]) => splitScore(logp, a, b, C));
  const mean = splitScores.reduce((s, v) => s + v, 0) / splitScores.length;
  const std = Math.sqrt(splitScores.reduce((s, v) => s + (v - mean) ** 2, 0) / splitScores.length);
  return { mean, std, splitScores };
}

function splitBounds(n: number, opts: InceptionScoreOptions): Array<[number, number]> {
  if (opts.numSplits !== undefined && opts.splitSize !== undefined) {
    throw new Error('inceptionScore: give splitSize (ADM) or numSplits (improved-gan), not both');
  }
  const out: Array<[number, number]> = [];
  if (opts.numSplits !== undefined) {
    const S = opts.numSplits;
    if (!Number.isInteger(S) || S < 1 || S > n) {
      throw new Error(`inceptionScore: numSplits must be an integer in [1, ${n}] for ${n} samples, got ${S}`);
    }
    for (let i = 0; i < S; i++) out.push([Math.floor((i * n) / S), Math.floor(((i + 1) * n) / S)]);
    return out;
  }
  const size = opts.splitSize ?? 5000;
  if (!Number.isInteger(size) || size < 1) throw new Error(`inceptionScore: splitSize must be a positive integer, got ${size}`);
  for (let a = 0; a < n; a += size) out.push([a, Math.min(n, a + size)]);
  return out;
}

function logSoftmax(z: Float32Array | Float64Array, n: number, C: number): Float64Array {
  const out = new Float64Array(n * C);
  for (let i = 0; i < n; i++) {
    const r = i * C;
    let max = -Infinity;
    for (let c = 0; c < C; c++) {
      const v = z[r + c];
      if (!Number.isFinite(v)) throw new Error(`inceptionScore: logit [${i}, ${c}] is ${v}`);
      if (v > max) max = v;
    }
    let sum = 0;
    for (let c = 0; c < C; c++) sum += Math.exp(z[r + c] - max);
    const lse = max + Math.log(sum);
    for (let c = 0; c < C; c++) out[r + c] = z[r + c] - lse;
  }
  return out;
}

function logOfProbs(p: Float32Array | Float64Array, n: number, C: number): Float64Array {
  const out = new Float64Array(n * C);
  for (let i = 0; i < n; i++) {
    const r = i * C;
    let sum = 0;
    for (let c = 0; c < C; c++) {
      const v = p[r + c];
      if (!(v >= 0 && v <= 1)) throw new Error(`inceptionScore: probability [${i}, ${c}] is ${v}, not in [0, 1]`);
      sum += v;
      out[r + c] = Math.log(v); // -Infinity for 0, handled as 0 log 0 = 0
    }
    if (Math.abs(sum - 1) > 1e-3) {
      throw new Error(`inceptionScore: row ${i} of probabilities sums to ${sum}; pass input: 'logits' for logits`);
    }
  }
  return out;
}

/** exp(mean_x KL(p(y|x) || p(y))) over rows [a, b). */
function splitScore(logp: Float64Array, a: number, b: number, C: number): number {
  const m = b - a;
  const py = new Float64Array(C);
  for (let i = a; i < b; i++) {
    const r = i * C;
    for (let c = 0; c < C; c++) py[c] += Math.exp(logp[r + c]);
  }
  const logPy = new Float64Array(C);
  for (let c = 0; c < C; c++) logPy[c] = Math.log(py[c] / m);
  let kl = 0;
  for (let i = a; i < b; i++) {
    const r = i * C;
    let s = 0;
    for (let c = 0; c < C; c++) {
      const lp = logp[r + c];
      if (lp === -Infinity) continue; // 0 log 0 = 0
      s += Math.exp(lp) * (lp - logPy[c]);
    }
    kl += s;
  }
  return Math.exp(kl / m);
}
