// The kit as a package, as a user's project gets it: `npm install <path to the kit>` in a
// fresh folder (offline; npm links the folder, so the built dist/ is there), then
// require('dit-kit') and the `dit-kit` command through npx.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

const root = path.join(__dirname, '..', '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dit-package-'));
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

// Under `npm test` the environment carries npm_* settings of the kit's own run (its
// prefix among them): the child npm must see none, or it could install into the kit.
const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
const npmFlags = ['--offline', '--no-audit', '--no-fund', '--prefix', dir, '--cache', path.join(dir, '.npm-cache')];
const sh = (cmd: string, args: string[]) => spawnSync(cmd, args, { cwd: dir, env, encoding: 'utf8', timeout: 60_000 });

const NAMESPACES = ['model', 'diffusion', 'train', 'sample', 'metrics', 'eval', 'experiments', 'results', 'figures', 'notebook', 'io',
  'data', 'autoencoder', 'features', 'backend', 'ops'];

test('installed by path, require("dit-kit") gives the API by concept and npx dit-kit runs the CLI', { timeout: 60_000 }, () => {
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'dit-kit-user', version: '1.0.0', private: true }));
  // install-links=false (npm's default since v9, explicit here): a folder dependency is a symlink.
  const install = sh('npm', ['install', ...npmFlags, '--install-links=false', '--no-package-lock', root]);
  assert.equal(install.status, 0, `${install.error ?? ''}${install.stdout}${install.stderr}`);
  assert.equal(fs.realpathSync(path.join(dir, 'node_modules', 'dit-kit')), fs.realpathSync(root));
  for (const bin of ['dit-kit', 'dit']) assert.ok(fs.existsSync(path.join(dir, 'node_modules', '.bin', bin)), `no .bin/${bin}`);

  const probe = `
    const k = require('dit-kit');
    const pkg = require('dit-kit/package.json');
    const functions = {};
    for (const n of ${JSON.stringify(NAMESPACES)}) {
      const ns = k[n];
      functions[n] = ns && typeof ns === 'object' ? Object.values(ns).filter((v) => typeof v === 'function').length : -1;
    }
    console.log(JSON.stringify({ hidden: k.model.ditConfig('DiT-XL/2').hiddenSize, functions, types: pkg.types, keys: Object.keys(k).sort() }));`;
  const req = sh(process.execPath, ['-e', probe]);
  assert.equal(req.status, 0, req.stderr);
  const got = JSON.parse(req.stdout.trim().split('\n').pop()!);
  assert.equal(got.hidden, 1152);
  for (const n of NAMESPACES) assert.ok(got.functions[n] >= 1, `dit-kit.${n}: ${got.functions[n] < 0 ? 'not an object' : 'no functions'}`);
  assert.deepEqual(got.keys, [...NAMESPACES].sort());
  assert.ok(fs.existsSync(path.join(root, got.types)), `package.json types ${got.types} is missing (build first)`);

  // --no: never fetch a package of that name (the bare `dit` on npm is an unrelated package).
  const cli = sh('npx', ['--no', ...npmFlags, 'dit-kit', 'gflops', '--model', 'DiT-XL/2', '--json']);
  assert.equal(cli.status, 0, `${cli.error ?? ''}${cli.stderr}`);
  const row = JSON.parse(cli.stdout);
  assert.equal(row.model, 'DiT-XL/2');
  // Table 4 of the paper: DiT-XL/2 at 256x256 (32x32x4 latents), 118.6 Gflops.
  assert.ok(Math.abs(row.gflops - 118.6) / 118.6 < 0.01, `gflops ${row.gflops}`);
});
