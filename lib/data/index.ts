// The data layer: the synthetic default dataset, shard storage, real-data loaders,
// image codecs, PIL-exact resizing and grids, ImageNet's class names.
export * from './dataset';
export * from './synthetic';
export * from './store';
export * from './png';
export * from './image';
export * from './resize';
export * from './loaders';
export * from './grid';
export * from './degrade';
export * from './imagenet_classes';
