import { initBackend } from '../backend';
import { evaluateSamples, Evaluation, METRICS, MetricName } from '../eval/evaluate';
import { FeatureKind } from '../features';
import { parseArgs, UsageError } from '../util/args';
import type { Command } from './command';

const USAGE = `usage: dit-kit evaluate REF SAMPLE [--features default|inception] [--inception-weights FILE]
                        [--default-cnn DIR] [--batch-size N] [--no-cache] [--json]

FID, sFID, Inception Score, precision and recall (k = 3) of SAMPLE against REF, as ADM's
evaluation suite computes them, and, when SAMPLE holds its labels (arr_1, as dit sample
writes them) and the features are the default CNN's, the class accuracy: the share of
samples classified as the class they were generated for. REF and SAMPLE are .npz files holding any of
  arr_0              uint8 (N, H, W, 3) images (ADM's sample and reference batches)
  pool, spatial, logits   precomputed features (N x D), e.g. from \`dit-kit features stats\`
  mu, sigma [, mu_s, sigma_s]   precomputed statistics (ADM's VIRTUAL_*.npz)
or a dataset (shard folder, CIFAR-10, image folder). Images go through the feature network:
  --features default     the kit's CNN, trained on the synthetic dataset (trained on first use,
                         cached in data/features/default-cnn); its FIDs are NOT comparable
                         with Inception FIDs
  --features inception   the FID Inception-v3; --inception-weights is the published
                         pt_inception-2015-12-05-6726825d.pth (default: data/features/inception/)
A metric that cannot be computed from what is given is reported absent, with the reason.
Reference statistics of images are cached in data/features/stats (--no-cache: not).
  --json   one JSON object: fid, sfid, inception_score, precision, recall, class_accuracy (null when absent),
           absent (metric -> reason), feature_net, sources`;

const FLAGS = {
  features: 'string', 'inception-weights': 'string', 'default-cnn': 'string', 'batch-size': 'count',
  'no-cache': 'boolean', json: 'boolean',
} as const;

const LABELS: Record<MetricName, string> = {
  inception_score: 'Inception Score', fid: 'FID', sfid: 'sFID', precision: 'Precision', recall: 'Recall', class_accuracy: 'Class accuracy',
};

/** ADM's order of printing. */
const PRINT_ORDER: MetricName[] = ['inception_score', 'fid', 'sfid', 'precision', 'recall', 'class_accuracy'];

function formatEvaluation(e: Evaluation): string {
  const lines = PRINT_ORDER.filter((m) => m !== 'class_accuracy' || e.class_accuracy !== null || e.absent[m]).map((m) => {
    const v = e[m];
    return v === null ? `${LABELS[m]}: absent (${e.absent[m] ?? 'not computed'})` : `${LABELS[m]}: ${v}`;
  });
  if (e.featureNet) lines.push(`feature network: ${e.featureNet}`);
  return lines.join('\n');
}

function evaluationJson(e: Evaluation): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const m of METRICS) out[m] = e[m];
  return { ...out, absent: e.absent, feature_net: e.featureNet, sources: e.sources };
}

export const evaluateCommand: Command = {
  name: 'evaluate',
  summary: 'FID, sFID, Inception Score, precision/recall of samples against a reference (ADM suite)',
  usage: USAGE,
  async run(argv) {
    const { flags: f, positional } = parseArgs(argv, FLAGS);
    if (positional.length !== 2) throw new UsageError(`expected REF and SAMPLE, got ${positional.length} argument(s)`);
    const features = (f.features ?? 'default') as FeatureKind;
    if (features !== 'default' && features !== 'inception') throw new UsageError(`--features must be default or inception, got '${features}'`);
    if (f['inception-weights'] && features !== 'inception') throw new UsageError('--inception-weights goes with --features inception');
    await initBackend();
    const log = f.json ? undefined : (m: string) => process.stderr.write(m + '\n');
    const e = await evaluateSamples(positional[0], positional[1], {
      features, inceptionWeights: f['inception-weights'] as string | undefined, defaultCnnDir: f['default-cnn'] as string | undefined,
      batchSize: f['batch-size'] as number | undefined, cacheDir: f['no-cache'] ? null : undefined,
      log: (m) => process.stderr.write(m + '\n'), progress: true,
    });
    if (f.json) process.stdout.write(JSON.stringify(evaluationJson(e)) + '\n');
    else {
      process.stdout.write(formatEvaluation(e) + '\n');
      for (const [m, src] of Object.entries(e.sources)) log?.(`${m}: ${src}`);
    }
    return METRICS.some((m) => e[m] !== null) ? 0 : 1;
  },
};
