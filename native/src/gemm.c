// The kit's own sgemm for the linear layers' products, in two widths: AVX-512 (gemm_avx512.c)
// and AVX2 + FMA (gemm_avx2.c), both gemm_tile.h's register tile. OpenBLAS packs both
// operands into panels; here only B (the weight, small) is packed, into K x NR panels, and A
// is read in place, each C tile staying in registers for the whole of K. The bias is the
// chains' starting value, so no pass writes it into C first (OpenBLAS's beta = 1 way costs a
// write and a read of C). This file chooses the kernel from the CPU's flags and packs B;
// ditnative.c falls back to OpenBLAS where no kernel runs.
#include "gemm.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void dit_gemm_tiles_avx512(long M, long N, long K, const float *a, long lda, const float *bp, const float *bias,
                           float *c, long ldc, int epi, float *aux);
void dit_gemm_tiles_avx2(long M, long N, long K, const float *a, long lda, const float *bp, const float *bias,
                         float *c, long ldc, int epi, float *aux);

extern const int dit_gemm_built_avx512, dit_gemm_built_avx2;  // 0 where the compiler could not build one

// Whether this build has the kernel `isa` and this CPU runs it.
static int cpu_has(const char *isa) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (strcmp(isa, "avx512") == 0) return dit_gemm_built_avx512 && __builtin_cpu_supports("avx512f") != 0;
  if (strcmp(isa, "avx2") == 0)
    return dit_gemm_built_avx2 && __builtin_cpu_supports("avx2") != 0 && __builtin_cpu_supports("fma") != 0;
#endif
  (void)isa;
  return 0;
}

static int kernel = -1;  // -1 not chosen yet, 0 none (OpenBLAS), 1 AVX2, 2 AVX-512

static int best(void) { return cpu_has("avx512") ? 2 : cpu_has("avx2") ? 1 : 0; }

static int chosen(void) {
  if (kernel < 0) kernel = best();
  return kernel;
}

int dit_gemm_use(const char *mode) {
  if (strcmp(mode, "auto") == 0) kernel = best();
  else if (strcmp(mode, "openblas") == 0) kernel = 0;
  else if (strcmp(mode, "avx2") == 0 || strcmp(mode, "avx512") == 0) {
    if (!cpu_has(mode)) return 0;
    kernel = mode[3] == '2' ? 1 : 2;
  } else {
    return 0;
  }
  return 1;
}

const char *dit_gemm_kernel(void) {
  static const char *names[] = { "openblas", "own-avx2", "own-avx512" };
  return names[chosen()];
}

static long panel_width(void) { return chosen() == 2 ? 32 : 16; }

// Every row tile streams all of packed B, so it must stay in L2: at most L2's size in floats
// (1 MB on Zen 4 gives 2^18; at 1024 x 1024 x 1024, 4 MB of B, the AVX-512 kernel ran at 81
// GFLOP/s against OpenBLAS's 104).
static long max_packed(void) {
  static long n = 0;
  if (!n) {
    long l2 = -1;
#if defined(_SC_LEVEL2_CACHE_SIZE)
    l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    n = l2 > 0 ? l2 / (long)sizeof(float) : 1L << 17;
  }
  return n;
}

int dit_gemm_fits(long N, long K) {
  const long nr = panel_width();
  return chosen() != 0 && K * ((N + nr - 1) / nr * nr) <= max_packed();
}

int dit_gemm_pays(long M, long N, long K) {
  const int k = chosen();
  return dit_gemm_fits(N, K) && (k == 2 ? K >= DIT_GEMM_MIN_K_AVX512 : M >= DIT_GEMM_MIN_M_AVX2);
}

// The packed B panels: one buffer per thread (worker threads run their own products).
static pthread_key_t pack_key;
static pthread_once_t pack_once = PTHREAD_ONCE_INIT;
struct pack { float *p; size_t cap; };
static void pack_free(void *v) {
  struct pack *s = v;
  free(s->p);
  free(s);
}
static void pack_init(void) { pthread_key_create(&pack_key, pack_free); }
static float *pack_buffer(size_t n) {
  pthread_once(&pack_once, pack_init);
  struct pack *s = pthread_getspecific(pack_key);
  if (!s) {
    if (!(s = calloc(1, sizeof *s))) return NULL;
    if (pthread_setspecific(pack_key, s) != 0) { free(s); return NULL; }
  }
  if (s->cap < n) {
    free(s->p);
    s->p = aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64);
    s->cap = s->p ? n : 0;
  }
  return s->p;
}

int dit_gemm(long M, long N, long K, const float *a, long lda, const float *b, long ldb, int tb,
             const float *bias, float *c, long ldc, int epi, float *aux) {
  const int k = chosen();
  if (!k || M <= 0 || N <= 0 || K <= 0) return 0;
  const long nr = panel_width(), panels = (N + nr - 1) / nr;
  float *bp = pack_buffer((size_t)panels * K * nr);
  if (!bp) return 0;
  // Panel p holds columns [nr p, nr p + nr) of op(b), row k at bp[(p K + k) nr]; zero past N.
  for (long p = 0; p < panels; p++) {
    float *d = bp + p * K * nr;
    const long n0 = p * nr, w = N - n0 < nr ? N - n0 : nr;
    if (tb) {  // b's rows n0.. are the panel's columns: read each row in order
      for (long j = 0; j < w; j++) {
        const float *row = b + (n0 + j) * ldb;
        for (long q = 0; q < K; q++) d[q * nr + j] = row[q];
      }
      for (long q = 0; q < K; q++)
        for (long j = w; j < nr; j++) d[q * nr + j] = 0.0f;
    } else {
      for (long q = 0; q < K; q++, d += nr) {
        memcpy(d, b + q * ldb + n0, sizeof(float) * w);
        for (long j = w; j < nr; j++) d[j] = 0.0f;
      }
    }
  }
  if (k == 2) dit_gemm_tiles_avx512(M, N, K, a, lda, bp, bias, c, ldc, epi, aux);
  else dit_gemm_tiles_avx2(M, N, K, a, lda, bp, bias, c, ldc, epi, aux);
  return 1;
}
