// Experiments: configs (experiments/*.json), the pipeline built from one, sweeps, the
// one-call run, the learning-rate pilot, the calibration ladder, Slurm job arrays.
export * from './config';
export * from './pipeline';
export * from './sweep';
export * from './run';
export * from './lr_pilot';
export * from './calibration';
export * from './slurm';
export * from './status';
