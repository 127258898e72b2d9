// Scaffolding shared by the native-backend tests (no tests here).
import { registerNativeBackend } from '../lib/backend/native';
import { BUILD_COMMAND, nativeLoadError } from '../lib/backend/native_addon';

/** Registers the 'native' backend; false when it loaded, else why the tests skip. */
export function nativeSkip(): false | string {
  return registerNativeBackend() ? false : `native addon not built (${nativeLoadError()}); build it with: ${BUILD_COMMAND}`;
}

/** Deterministic uniform inputs in [lo, hi) from a small LCG, so failures reproduce. */
export function lcg(seed: number): (n: number, lo?: number, hi?: number) => Float32Array {
  let s = seed;
  return (n, lo = -2, hi = 2) => {
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      s = (s * 1664525 + 1013904223) >>> 0;
      v[i] = lo + ((hi - lo) * s) / 2 ** 32;
    }
    return v;
  };
}

export const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
