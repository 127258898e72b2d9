// dit-kit's public API, one namespace per concept: require('dit-kit').model.ditConfig(...).
// The command line is bin/dit.js (`npx dit-kit <command>`); lib/cli is not part of this API.
export * as backend from './backend';
export * as ops from './ops';
export * as model from './model';
export * as diffusion from './diffusion';
export * as io from './io';
export * as data from './data';
export * as autoencoder from './autoencoder';
export * as train from './train';
export * as sample from './sample';
export * as features from './features';
export * as metrics from './metrics';
export * as eval from './eval';
export * as experiments from './experiments';
export * as results from './results';
export * as figures from './figures';
export * as notebook from './notebook';
