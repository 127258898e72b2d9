// Training: AdamW, the shared optimiser step, the data order, EMA, the training source,
// the resumable trainer, its checkpoints and the validation loss.
export * from './adamw';
export * from './step';
export * from './order';
export * from './ema';
export * from './source';
export * from './trainer';
export * from './checkpoint';
export * from './validation';
