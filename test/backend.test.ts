import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

// Each case runs in a fresh process: the backend is chosen once per process.
function pick(env: Record<string, string>): { code: number | null; out: string; err: string } {
  const script = `require(${JSON.stringify(path.join(__dirname, '..', 'lib', 'backend'))}).initBackend()
    .then(i => { console.log(JSON.stringify({ name: i.name, active: require('@tensorflow/tfjs-core').getBackend() })); })
    .catch(e => { console.error(e.message); process.exit(3); });`;
  const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, DIT_QUIET: '', ...env }, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const nativeBuilt = fs.existsSync(path.join(__dirname, '..', '..', 'native', 'build', 'ditnative.node'));

test('default backend without tfjs-node bindings is native (addon built) or wasm, and the choice is logged', () => {
  const r = pick({ DIT_BACKEND: '' });
  assert.equal(r.code, 0, r.err);
  const info = JSON.parse(r.out);
  assert.equal(info.name, info.active);
  // On a machine where tfjs-node(-gpu) installs, 'tensorflow' is the right answer.
  assert.ok([nativeBuilt ? 'native' : 'wasm', 'tensorflow'].includes(info.name), r.out);
  assert.match(r.err, /\[dit\] backend: /);
});

test('without the native addon the kit runs on wasm and says once how to build it', () => {
  const r = pick({ DIT_BACKEND: '', DIT_NATIVE_ADDON: '/nonexistent/ditnative.node' });
  assert.equal(r.code, 0, r.err);
  const info = JSON.parse(r.out);
  assert.ok(['wasm', 'tensorflow'].includes(info.name), r.out);
  if (info.name === 'wasm') {
    assert.equal(r.err.match(/native CPU backend unavailable/g)?.length, 1, r.err);
    assert.match(r.err, /\/nonexistent\/ditnative\.node is not built.*npm run build:native/);
  }
});

test('DIT_BACKEND=native without the addon is a clear error', () => {
  const r = pick({ DIT_BACKEND: 'native', DIT_NATIVE_ADDON: '/nonexistent/ditnative.node' });
  assert.equal(r.code, 3);
  assert.match(r.err, /backend 'native' was requested.*not built.*build:native/);
});

test('DIT_BACKEND=native runs on the addon when it is built', { skip: nativeBuilt ? false : 'native addon not built (npm run build:native)' }, () => {
  const r = pick({ DIT_BACKEND: 'native' });
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(JSON.parse(r.out), { name: 'native', active: 'native' });
  assert.match(r.err, /backend: native .*OpenBLAS threads=1/);
});

test('DIT_BACKEND overrides the choice', () => {
  const r = pick({ DIT_BACKEND: 'cpu' });
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(JSON.parse(r.out), { name: 'cpu', active: 'cpu' });
});

test('an unknown DIT_BACKEND is a clear error', () => {
  const r = pick({ DIT_BACKEND: 'gpu9000' });
  assert.equal(r.code, 3);
  assert.match(r.err, /DIT_BACKEND='gpu9000' is not a backend/);
});
