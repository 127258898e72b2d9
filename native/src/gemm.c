// An AVX-512 sgemm for the linear layers' products with a long inner dimension (the MLP's
// second layer, the input gradients of qkv and fc1). OpenBLAS packs
// both operands into panels; here only B (the weight, small) is packed, into K x 32 panels,
// and A is read in place: a 14 x 32 tile of C stays in 28 registers for the whole of K, each
// step broadcasting one element of 14 A rows against two vectors of the panel. The bias is
// the chains' starting value, so no pass writes it into C first (OpenBLAS's beta = 1 way
// costs a write and a read of C). Built with -mavx512f (this file only) and
// called only when dit_gemm_available(); ditnative.c falls back to OpenBLAS otherwise.
#include "gemm.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__AVX512F__)
#include <immintrin.h>

#define MR 14  // rows of a C tile
#define NR 32  // columns of a C tile: two 16-float vectors

int dit_gemm_available(void) { return __builtin_cpu_supports("avx512f") != 0; }

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

// One C tile of mr <= MR rows; masks m0/m1 select the valid columns of its two vectors.
// The chains start from the bias (or 0): bias + a0 b0 + a1 b1 + ...
static inline __attribute__((always_inline)) void tile(int mr, long K, const float *a, long lda,
    const float *bp, const float *bias, float *c, long ldc, __mmask16 m0, __mmask16 m1, int accumulate) {
  __m512 c0[MR], c1[MR];
  const __m512 z0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
  const __m512 z1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
  for (int r = 0; r < MR; r++) {
    c0[r] = z0;
    c1[r] = z1;
  }
  for (long k = 0; k < K; k++) {
    const __m512 b0 = _mm512_load_ps(bp + k * NR), b1 = _mm512_load_ps(bp + k * NR + 16);
    for (int r = 0; r < MR; r++) {
      if (r < mr) {
        const __m512 av = _mm512_set1_ps(a[r * lda + k]);
        c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
        c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
      }
    }
  }
  for (int r = 0; r < mr; r++) {
    float *cr = c + r * ldc;
    if (accumulate) {
      c0[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, cr), c0[r]);
      c1[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, cr + 16), c1[r]);
    }
    _mm512_mask_storeu_ps(cr, m0, c0[r]);
    _mm512_mask_storeu_ps(cr + 16, m1, c1[r]);
  }
}
// The full tile with mr a constant (fully unrolled), and the last rows' tile.
static void tile_full(long K, const float *a, long lda, const float *bp, const float *bias, float *c, long ldc,
                      __mmask16 m0, __mmask16 m1, int acc) { tile(MR, K, a, lda, bp, bias, c, ldc, m0, m1, acc); }
static void tile_part(int mr, long K, const float *a, long lda, const float *bp, const float *bias, float *c,
                      long ldc, __mmask16 m0, __mmask16 m1, int acc) { tile(mr, K, a, lda, bp, bias, c, ldc, m0, m1, acc); }

static __mmask16 mask_of(long n) { return n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

int dit_gemm(long M, long N, long K, const float *a, long lda, const float *b, long ldb, int tb,
             const float *bias, int accumulate, float *c, long ldc) {
  if (M <= 0 || N <= 0 || K <= 0) return 0;
  const long panels = (N + NR - 1) / NR;
  float *bp = pack_buffer((size_t)panels * K * NR);
  if (!bp) return 0;
  // Panel p holds columns [32p, 32p + 32) of op(b), row k at bp[(p K + k) 32]; zero past N.
  for (long p = 0; p < panels; p++) {
    float *d = bp + p * K * NR;
    const long n0 = p * NR, w = N - n0 < NR ? N - n0 : NR;
    for (long k = 0; k < K; k++, d += NR) {
      if (tb) {
        for (long j = 0; j < w; j++) d[j] = b[(n0 + j) * ldb + k];
      } else {
        memcpy(d, b + k * ldb + n0, sizeof(float) * w);
      }
      for (long j = w; j < NR; j++) d[j] = 0.0f;
    }
  }
  // Each tile's 14 rows of A stay in L1 while the panels stream past them from L2.
  for (long i = 0; i < M; i += MR) {
    const int mr = M - i < MR ? (int)(M - i) : MR;
    for (long p = 0; p < panels; p++) {
      const long rem = N - p * NR;
      const __mmask16 k0 = mask_of(rem), k1 = mask_of(rem - 16);
      const float *pp = bp + p * K * NR;
      float *ct = c + i * ldc + p * NR;
      const float *bt = bias ? bias + p * NR : NULL;
      if (mr == MR) tile_full(K, a + i * lda, lda, pp, bt, ct, ldc, k0, k1, accumulate);
      else tile_part(mr, K, a + i * lda, lda, pp, bt, ct, ldc, k0, k1, accumulate);
    }
  }
  return 1;
}

#else  // no AVX-512 in this build: OpenBLAS does every product

int dit_gemm_available(void) { return 0; }
int dit_gemm(long M, long N, long K, const float *a, long lda, const float *b, long ldb, int tb,
             const float *bias, int accumulate, float *c, long ldc) {
  (void)M; (void)N; (void)K; (void)a; (void)lda; (void)b; (void)ldb; (void)tb; (void)bias; (void)accumulate; (void)c; (void)ldc;
  return 0;
}

#endif
