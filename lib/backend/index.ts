// One place decides which tfjs backend runs the kit.
// Order: DIT_BACKEND override, else the TensorFlow C++ backend when
// @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node loads, else the kit's native CPU
// backend (native/ addon: OpenBLAS + vector loops) when built, else wasm, else cpu.
// No other module depends on a particular backend.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { registerNativeBackend, nativeAddon } from './native';
import { BUILD_COMMAND, nativeGemmKernel, nativeLoadError } from './native_addon';
// Bare tfjs-core registers no gradients; the @tensorflow/tfjs bundle does (and the chained ops).
import '@tensorflow/tfjs';

export interface BackendInfo {
  /** tfjs backend name in use: 'tensorflow' | 'wasm' | 'cpu' | ... */
  name: string;
  /** Where the choice came from. */
  reason: string;
  /** Extra facts worth logging (SIMD, threads, native kernels). */
  details: string[];
}

const KNOWN = ['tensorflow', 'native', 'wasm', 'cpu'] as const;
let current: BackendInfo | null = null;
let pending: Promise<BackendInfo> | null = null;

function tryRequire(name: string): boolean {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- an optional package, present or not
    require(name);
    return true;
  } catch {
    return false;
  }
}

let warnedNoNative = false;
/** Says once per process, on stderr, that the native CPU backend is missing and how to build it. */
function warnNoNative(): void {
  if (warnedNoNative || process.env.DIT_QUIET) return;
  warnedNoNative = true;
  process.stderr.write(`[dit] native CPU backend unavailable (${nativeLoadError()}); ` +
    `running on a slower backend. Build it with: ${BUILD_COMMAND}\n`);
}

/** Loads the TensorFlow C++ bindings if installed; true when a 'tensorflow' backend is registered. */
function loadTensorflowBinding(): string | null {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    // The package may be present without its native binding (install scripts not run):
    // only a registered 'tensorflow' backend counts.
    if (tryRequire(pkg) && tf.findBackendFactory('tensorflow') != null) return pkg;
  }
  return null;
}

async function activate(name: string): Promise<boolean> {
  if (name === 'wasm' && tf.findBackendFactory('wasm') == null) {
    if (!tryRequire('@tensorflow/tfjs-backend-wasm')) return false;
  }
  if (name === 'tensorflow' && loadTensorflowBinding() == null) return false;
  if (name === 'native' && !registerNativeBackend()) return false;
  try {
    return await tf.setBackend(name);
  } catch {
    return false;
  }
}

async function choose(requested?: string): Promise<BackendInfo> {
  const want = requested ?? process.env.DIT_BACKEND;
  let info: BackendInfo;
  if (want) {
    if (!(KNOWN as readonly string[]).includes(want)) {
      throw new Error(`DIT_BACKEND='${want}' is not a backend the kit knows; use one of ${KNOWN.join(', ')}`);
    }
    if (!(await activate(want))) {
      const why = want === 'native' ? `: ${nativeLoadError()}; build it with: ${BUILD_COMMAND}` : '';
      throw new Error(`backend '${want}' was requested (DIT_BACKEND) but could not be started here${why}`);
    }
    info = { name: want, reason: 'DIT_BACKEND', details: [] };
  } else if (await activate('tensorflow')) {
    info = { name: 'tensorflow', reason: 'tfjs-node bindings loaded', details: [] };
  } else if (await activate('native')) {
    info = { name: 'native', reason: 'no tfjs-node bindings; native CPU kernels (OpenBLAS) loaded', details: [] };
  } else if (await activate('wasm')) {
    warnNoNative();
    info = { name: 'wasm', reason: 'no tfjs-node bindings and no native addon; wasm is the fastest CPU backend here', details: [] };
  } else {
    warnNoNative();
    await tf.setBackend('cpu');
    info = { name: 'cpu', reason: 'fallback: wasm could not start', details: [] };
  }
  await tf.ready();
  // tfjs-cpu's 'install tfjs-node' banner and similar tfjs warnings are noise here: the
  // kit reports its own backend choice (DEBUG checks stay off either way).
  tf.enableProdMode();
  if (info.name === 'native') {
    info.details.push(`OpenBLAS threads=${nativeAddon().getThreads()}`, nativeAddon().blasConfig(), `own GEMM=${nativeGemmKernel()}`);
  }
  return info;
}

/**
 * Picks and starts the backend once per process (later calls return the same choice;
 * a different explicit request switches). Logs the choice to stderr once unless quiet.
 */
export async function initBackend(opts: { name?: string; quiet?: boolean } = {}): Promise<BackendInfo> {
  if (current && (!opts.name || opts.name === current.name)) return current;
  if (pending && !opts.name) return pending;
  pending = choose(opts.name).then((info) => {
    current = info;
    if (!opts.quiet && !process.env.DIT_QUIET) {
      const extra = info.details.length ? ` [${info.details.join('; ')}]` : '';
      process.stderr.write(`[dit] backend: ${info.name} (${info.reason})${extra}\n`);
    }
    return info;
  });
  try {
    return await pending;
  } finally {
    pending = null;
  }
}

/** The backend chosen by initBackend, or null before it ran. */
export function backendInfo(): BackendInfo | null {
  return current;
}

// The tfjs instance the kit runs on, for callers that build tensors for it.
export { tf };
