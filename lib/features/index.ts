// Feature networks for the sample-quality metrics: the FID Inception-v3 (published weights
// supplied by the user) and the kit's embedded default CNN (trained by the kit).
import * as fs from 'fs';
import * as path from 'path';
import { repoRoot } from '../util/paths';
import { ensureDefaultFeatureNet } from './default_store';
import { INCEPTION_WEIGHTS_FILE, loadInception } from './inception';
import { FeatureNet } from './network';

export * from './network';
export * from './inception';
export * from './default_cnn';
export * from './default_train';
export * from './default_store';

export type FeatureKind = 'default' | 'inception';

export interface FeatureNetOptions {
  /** 'default' (the kit's CNN, trained on first use) or 'inception'. Default 'default'. */
  features?: FeatureKind;
  /** The FID Inception weights (pt_inception-2015-12-05-6726825d.pth); default data/features/inception/ that file. */
  inceptionWeights?: string;
  /** Folder of the default CNN (default data/features/default-cnn). */
  defaultCnnDir?: string;
  log?: (msg: string) => void;
}

/** Where the Inception weights are looked for when no path is given. */
export function defaultInceptionWeightsPath(): string {
  return path.join(repoRoot(), 'data', 'features', 'inception', INCEPTION_WEIGHTS_FILE);
}

/** Loads the chosen feature network (training the default CNN first when it is not cached). */
export function loadFeatureNet(opts: FeatureNetOptions = {}): FeatureNet {
  const kind = opts.features ?? 'default';
  if (kind === 'inception') {
    const file = opts.inceptionWeights ?? defaultInceptionWeightsPath();
    if (!opts.inceptionWeights && !fs.existsSync(file)) {
      throw new Error(`Inception features need the FID Inception weights ${INCEPTION_WEIGHTS_FILE}: pass --inception-weights FILE or put it at ${file}`);
    }
    return loadInception(file);
  }
  if (kind !== 'default') throw new Error(`features must be 'default' or 'inception', got '${kind}'`);
  return ensureDefaultFeatureNet({ dir: opts.defaultCnnDir, log: opts.log }).net;
}
