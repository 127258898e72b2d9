// File formats for tensors: host arrays, zip, npy/npz, torch checkpoints, safetensors.
export * from './array';
export * from './source';
export * from './zip';
export * from './npy';
export * from './pickle';
export * from './torch';
export * from './safetensors';
export * from './tensor_file';
