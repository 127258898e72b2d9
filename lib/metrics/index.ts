// Sample-quality metrics as the ADM evaluation suite (guided-diffusion evaluations/evaluator.py)
// computes them: FID, sFID, Inception Score, improved precision and recall; and the samples'
// class accuracy.
export * from './class_accuracy';
export * from './fid';
export * from './inception_score';
export * from './precision_recall';
export * from './reference_stats';
export * from './stats_backend';
export { traceSqrtProduct, pivotedCholesky, symmetricEigenvalues } from './linalg';
export { fidLinalg, FidLinalg, TYPESCRIPT_LINALG } from './fid_linalg';
