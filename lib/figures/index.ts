// The paper's figures: plotly specs from results rows, their statistics and resolution
// rule, the calibration ladder, the sample grid (Fig. 7), HTML pages and PNG rendering.
export * from './specs';
export * from './stats';
export * from './resolution';
export * from './ladder';
export * from './samples';
export * from './html';
export * from './render';
