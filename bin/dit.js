#!/usr/bin/env node
// Entry point of the kit's CLI (`dit-kit`, also `dit`): runs the compiled library (npm run build makes dist/).
const path = require('path');
const fs = require('fs');
const entry = path.join(__dirname, '..', 'dist', 'lib', 'cli', 'index.js');
if (!fs.existsSync(entry)) {
  console.error('dit: the kit is not built yet; run `npm run setup` (or `npm run build`) first.');
  process.exit(2);
}
require(entry).main(process.argv.slice(2)).then(
  (code) => process.exit(code ?? 0),
  (err) => { console.error(`dit: ${err && err.message ? err.message : err}`); process.exit(1); },
);
