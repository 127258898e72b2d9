// Training: AdamW, the shared optimiser step, the data order, EMA, the training source,
// the DiT batch loss, the resumable trainer (data-parallel with TrainOptions.dataParallel),
// its checkpoints and the validation loss.
export * from './adamw';
export * from './step';
export * from './order';
export * from './ema';
export * from './source';
export * from './dit_loss';
export { splitRows } from './data_parallel';
export * from './trainer';
export * from './checkpoint';
export * from './validation';
