// Evaluation: feature extraction in batches, reference statistics cache, evaluateSamples.
export * from './inputs';
export * from './extract';
export * from './evaluate';
