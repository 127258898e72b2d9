// Helpers for the tslab notebooks in notebooks/ (import from '../dist/lib/notebook').
// Cells stay short: the mode switch and result loading, DataFrames, inline figures and
// images, the paper's numbers, each figure's finding computed from the data, throughput
// measurements, and the published models' sampling (notebook 08) live here.
export * from './results';
export * from './display';
export * from './frames';
export * from './paper';
export * from './findings';
export * from './throughput';
export * from './compare';
export * from './scaling_law';
export * from './pretrained';
