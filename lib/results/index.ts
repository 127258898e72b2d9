// The results registry: one CSV per experiment under results/, one row per evaluation.
export * from './registry';
