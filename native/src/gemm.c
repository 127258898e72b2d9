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

// ---- GELU epilogues: vmath.c's formulas (exp_bounded, x sigmoid(2u), its derivative), 16 lanes.

static inline __m512 exp_bounded16(__m512 z) {
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(z, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693145751953125f), z);
  r = _mm512_fmadd_ps(n, _mm512_set1_ps(-1.428606765330187045e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

#define GELU_K 0.7978845608028654f  // sqrt(2/pi)
#define GELU_C 0.044715f

// z = -2 sqrt(2/pi) (x + 0.044715 x^3), so that gelu(x) = x / (1 + e^z).
static inline __m512 gelu_z(__m512 x, __m512 x2) {
  const __m512 inner = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(GELU_C), x2), x, x);
  return _mm512_mul_ps(inner, _mm512_set1_ps(-2.0f * GELU_K));
}

static inline __m512 gelu16(__m512 x) {
  __m512 z = gelu_z(x, _mm512_mul_ps(x, x));
  z = _mm512_min_ps(_mm512_max_ps(z, _mm512_set1_ps(-80.0f)), _mm512_set1_ps(80.0f));
  const __m512 s = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), exp_bounded16(z)));
  return _mm512_mul_ps(x, s);
}

// dy * gelu'(x) = dy (s + x 2 e s^2 sqrt(2/pi) (1 + 3 0.044715 x^2)); 0 past z = 40.
static inline __m512 gelu_grad16(__m512 x, __m512 dy) {
  const __m512 x2 = _mm512_mul_ps(x, x);
  __m512 z = gelu_z(x, x2);
  const __mmask16 saturated = _mm512_cmp_ps_mask(z, _mm512_set1_ps(40.0f), _CMP_GT_OQ);
  z = _mm512_min_ps(_mm512_max_ps(z, _mm512_set1_ps(-80.0f)), _mm512_set1_ps(40.0f));
  const __m512 e = exp_bounded16(z);
  const __m512 s = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
  const __m512 du = _mm512_mul_ps(_mm512_set1_ps(GELU_K), _mm512_fmadd_ps(_mm512_set1_ps(3.0f * GELU_C), x2, _mm512_set1_ps(1.0f)));
  const __m512 d = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(2.0f)), _mm512_mul_ps(_mm512_mul_ps(e, s), s)), du, s);
  return _mm512_maskz_mul_ps(~saturated, dy, d);
}

// One C tile of mr <= MR rows; masks m0/m1 select the valid columns of its two vectors.
// The chains start from the bias (or 0): bias + a0 b0 + a1 b1 + ... The epilogue then
// stores the sums (DIT_EPI_NONE), or GELU of them with the sums themselves in aux
// (DIT_EPI_GELU; aux may be NULL), or the sums times GELU' of aux (DIT_EPI_GELU_GRAD).
static inline __attribute__((always_inline)) void tile(int mr, long K, const float *a, long lda,
    const float *bp, const float *bias, float *c, long ldc, __mmask16 m0, __mmask16 m1, int epi, float *aux) {
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
    if (epi == DIT_EPI_GELU) {
      if (aux) {
        _mm512_mask_storeu_ps(aux + r * ldc, m0, c0[r]);
        _mm512_mask_storeu_ps(aux + r * ldc + 16, m1, c1[r]);
      }
      c0[r] = gelu16(c0[r]);
      c1[r] = gelu16(c1[r]);
    } else if (epi == DIT_EPI_GELU_GRAD) {
      c0[r] = gelu_grad16(_mm512_maskz_loadu_ps(m0, aux + r * ldc), c0[r]);
      c1[r] = gelu_grad16(_mm512_maskz_loadu_ps(m1, aux + r * ldc + 16), c1[r]);
    }
    _mm512_mask_storeu_ps(cr, m0, c0[r]);
    _mm512_mask_storeu_ps(cr + 16, m1, c1[r]);
  }
}
// The full tile with mr a constant (fully unrolled), and the last rows' tile.
static void tile_full(long K, const float *a, long lda, const float *bp, const float *bias, float *c, long ldc,
                      __mmask16 m0, __mmask16 m1, int epi, float *aux) {
  tile(MR, K, a, lda, bp, bias, c, ldc, m0, m1, epi, aux);
}
static void tile_part(int mr, long K, const float *a, long lda, const float *bp, const float *bias, float *c,
                      long ldc, __mmask16 m0, __mmask16 m1, int epi, float *aux) {
  tile(mr, K, a, lda, bp, bias, c, ldc, m0, m1, epi, aux);
}

static __mmask16 mask_of(long n) { return n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

int dit_gemm(long M, long N, long K, const float *a, long lda, const float *b, long ldb, int tb,
             const float *bias, float *c, long ldc, int epi, float *aux) {
  if (M <= 0 || N <= 0 || K <= 0) return 0;
  const long panels = (N + NR - 1) / NR;
  float *bp = pack_buffer((size_t)panels * K * NR);
  if (!bp) return 0;
  // Panel p holds columns [32p, 32p + 32) of op(b), row k at bp[(p K + k) 32]; zero past N.
  for (long p = 0; p < panels; p++) {
    float *d = bp + p * K * NR;
    const long n0 = p * NR, w = N - n0 < NR ? N - n0 : NR;
    if (tb) {  // b's rows n0.. are the panel's columns: read each row in order
      for (long j = 0; j < w; j++) {
        const float *row = b + (n0 + j) * ldb;
        for (long k = 0; k < K; k++) d[k * NR + j] = row[k];
      }
      for (long k = 0; k < K; k++)
        for (long j = w; j < NR; j++) d[k * NR + j] = 0.0f;
    } else {
      for (long k = 0; k < K; k++, d += NR) {
        memcpy(d, b + k * ldb + n0, sizeof(float) * w);
        for (long j = w; j < NR; j++) d[j] = 0.0f;
      }
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
      float *xt = aux ? aux + i * ldc + p * NR : NULL;
      if (mr == MR) tile_full(K, a + i * lda, lda, pp, bt, ct, ldc, k0, k1, epi, xt);
      else tile_part(mr, K, a + i * lda, lda, pp, bt, ct, ldc, k0, k1, epi, xt);
    }
  }
  return 1;
}

#else  // no AVX-512 in this build: OpenBLAS does every product

int dit_gemm_available(void) { return 0; }
int dit_gemm(long M, long N, long K, const float *a, long lda, const float *b, long ldb, int tb,
             const float *bias, float *c, long ldc, int epi, float *aux) {
  (void)M; (void)N; (void)K; (void)a; (void)lda; (void)b; (void)ldb; (void)tb; (void)bias; (void)c; (void)ldc;
  (void)epi; (void)aux;
  return 0;
}

#endif
