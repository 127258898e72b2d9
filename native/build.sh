#!/usr/bin/env bash
# Builds native/build/ditnative.node, the N-API addon behind the kit's 'native' CPU backend.
# Needs: a C compiler (gcc/cc), Node's headers (node_api.h) and OpenBLAS (Debian:
# libopenblas-dev). scripts/setup.sh runs this; run it by hand with `bash native/build.sh`
# or `npm run build:native`. Without the addon the kit falls back to the wasm backend.
set -euo pipefail
cd "$(dirname "$0")"

CC="${CC:-$(command -v gcc || command -v cc || true)}"
[ -n "$CC" ] || { echo "native/build.sh: no C compiler (apt-get install gcc)" >&2; exit 1; }

# node_api.h: beside the running node (official tarballs, nvm), or Debian/nodesource paths.
NODE_BIN="$(command -v node || true)"
[ -n "$NODE_BIN" ] || { echo "native/build.sh: node not found" >&2; exit 1; }
NODE_PREFIX="$(dirname "$(dirname "$(readlink -f "$NODE_BIN")")")"
NODE_INC=""
for d in "${NODE_INCLUDE_DIR:-}" "$NODE_PREFIX/include/node" /usr/include/node /usr/local/include/node \
         /usr/include/nodejs/src; do
  if [ -n "$d" ] && [ -f "$d/node_api.h" ]; then NODE_INC="$d"; break; fi
done
[ -n "$NODE_INC" ] || { echo "native/build.sh: node_api.h not found (set NODE_INCLUDE_DIR, or apt-get install libnode-dev)" >&2; exit 1; }

# OpenBLAS: cblas.h and libopenblas.so (Debian puts them behind the alternatives system).
BLAS_INC=""
for d in "${OPENBLAS_INCLUDE_DIR:-}" /usr/include/x86_64-linux-gnu /usr/include/aarch64-linux-gnu \
         /usr/include/openblas /usr/include /usr/local/include /opt/homebrew/opt/openblas/include; do
  if [ -n "$d" ] && [ -f "$d/cblas.h" ] && grep -q openblas_set_num_threads "$d/cblas.h"; then BLAS_INC="$d"; break; fi
done
[ -n "$BLAS_INC" ] || { echo "native/build.sh: OpenBLAS cblas.h not found (apt-get install libopenblas-dev)" >&2; exit 1; }

# Vector ISA: AVX2+FMA when this CPU has them (x86-64-v3), else the baseline. The addon is
# built on the machine that runs it, so checking this CPU is enough.
# The loader (lib/backend/native_addon.ts) checks the CPU flags recorded in
# build/ditnative.json, so a build copied to an older CPU fails with a message, not SIGILL.
ARCH=()
NEEDS=""
if [ "$(uname -m)" = x86_64 ] && [ -r /proc/cpuinfo ]; then
  flags="$(grep -m1 '^flags' /proc/cpuinfo)"
  if grep -qw avx2 <<<"$flags" && grep -qw fma <<<"$flags" && grep -qw bmi2 <<<"$flags"; then
    ARCH=(-march=x86-64-v3)
    NEEDS='"avx2", "fma", "bmi2", "movbe", "f16c"'
  elif grep -qw sse4_2 <<<"$flags" && grep -qw popcnt <<<"$flags"; then
    ARCH=(-march=x86-64-v2)
    NEEDS='"sse4_2", "popcnt", "ssse3"'
  fi
fi

mkdir -p build
COMMON=(-O3 -fPIC -std=c11 -Wall -Wextra -Wno-unused-parameter "${ARCH[@]}" -I"$NODE_INC" -I"$BLAS_INC" -DNODE_GYP_MODULE_NAME=ditnative)
# Main kernels: IEEE semantics kept (NaN/Inf), but reassociation allowed so sums vectorize.
"$CC" "${COMMON[@]}" -fno-math-errno -fno-trapping-math -fassociative-math -fno-signed-zeros \
  -c src/ditnative.c -o build/ditnative.o
# Transcendental loops: -ffast-math turns expf/tanhf loops into libmvec's vector calls.
"$CC" "${COMMON[@]}" -ffast-math -c src/vmath.c -o build/vmath.o
"$CC" "${COMMON[@]}" -fno-math-errno -fno-trapping-math -fassociative-math -fno-signed-zeros -c src/fused.c -o build/fused.o
"$CC" "${COMMON[@]}" -fno-math-errno -fno-trapping-math -fassociative-math -fno-signed-zeros -c src/conv.c -o build/conv.o
# The own sgemm (gemm.c chooses a kernel from the CPU's flags at run time): its AVX-512 and
# AVX2 tiles are built with those ISAs in their own files only; a file the compiler cannot
# build that way builds as a stub, and OpenBLAS does those products.
"$CC" "${COMMON[@]}" -c src/gemm.c -o build/gemm.o
for isa in avx512:-mavx512f avx2:"-mavx2 -mfma"; do
  name="${isa%%:*}"
  read -r -a flags <<<"${isa#*:}"
  if [ "$(uname -m)" != x86_64 ] || ! echo 'int main(void){return 0;}' | "$CC" "${flags[@]}" -x c -c - -o /dev/null 2>/dev/null; then
    flags=()
  fi
  "$CC" "${COMMON[@]}" "${flags[@]}" -c "src/gemm_$name.c" -o "build/gemm_$name.o"
done
# Float64 FID linear algebra: strict IEEE order (the means are summed as the TypeScript fallback sums them).
"$CC" "${COMMON[@]}" -ffp-contract=off -c src/linalg.c -o build/linalg.o
# Precision/recall loops: float32 rounding of every operation as the TypeScript's (no FMA).
"$CC" "${COMMON[@]}" -ffp-contract=off -c src/manifold.c -o build/manifold.o
# The optimizer update rounds exactly like the tf-op version: no reassociation, no FMA.
"$CC" "${COMMON[@]}" -fno-math-errno -ffp-contract=off -c src/optim.c -o build/optim.o
LINK=(-shared -o build/ditnative.node build/ditnative.o build/vmath.o build/gemm.o build/gemm_avx512.o build/gemm_avx2.o build/fused.o build/optim.o build/conv.o build/linalg.o build/manifold.o -lopenblas -lm -lpthread)
[ "$(uname -s)" = Darwin ] && LINK+=(-undefined dynamic_lookup)
"$CC" "${LINK[@]}"
rm -f build/*.o
echo "{ \"march\": \"${ARCH[*]:-baseline}\", \"cpuFlags\": [${NEEDS}] }" > build/ditnative.json

# A build that cannot load is no build: check it here, where the error is readable.
node -e "const m=require('./build/ditnative.node'); if (typeof m.matmul!=='function') throw new Error('no matmul export')" \
  || { echo "native/build.sh: build/ditnative.node was built but does not load" >&2; rm -f build/ditnative.node; exit 1; }
echo "native/build.sh: built native/build/ditnative.node (${ARCH[*]:-baseline ISA}, $BLAS_INC/cblas.h)"
