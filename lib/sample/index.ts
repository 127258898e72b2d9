// Sampling: loading a DiT from any checkpoint, DDPM/DDIM sampling with guidance, and the
// health check of the samples' scale.
export * from './load';
export * from './sample';
export * from './health';
