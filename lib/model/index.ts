// The DiT model: configs, parameter table, layers and forward, fixed embeddings,
// Gflops, and checkpoints in the published state_dict layout.
export * from './config';
export * from './params';
export * from './embed';
export * from './layers';
export * from './dit';
export * from './gflops';
export * from './checkpoint';
export * from './diffusers';
