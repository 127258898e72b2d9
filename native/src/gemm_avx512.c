// The own sgemm's tiles for AVX-512 (gemm_tile.h with 16-float vectors): a 14 x 32 C tile in
// 28 of the 32 zmm registers. Built with -mavx512f (this file only); gemm.c calls it only
// when the CPU has AVX-512F. Without compiler support it builds empty.
#include "gemm.h"

#if defined(__x86_64__) && defined(__AVX512F__)
#include <immintrin.h>

#define V __m512
#define VM __mmask16
#define VL 16
#define MR 14
#define V_ZERO() _mm512_setzero_ps()
#define V_SET1(x) _mm512_set1_ps(x)
#define V_LOAD(p) _mm512_load_ps(p)
#define V_LOADU(p) _mm512_loadu_ps(p)
#define V_STOREU(p, v) _mm512_storeu_ps(p, v)
#define V_LOADM(m, p) _mm512_maskz_loadu_ps(m, p)
#define V_STOREM(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define MASK_OF(n) ((n) >= 16 ? (__mmask16)0xffff : (n) <= 0 ? (__mmask16)0 : (__mmask16)((1u << (n)) - 1))
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_MUL(a, b) _mm512_mul_ps(a, b)
#define V_ADD(a, b) _mm512_add_ps(a, b)
#define V_DIV(a, b) _mm512_div_ps(a, b)
#define V_MIN(a, b) _mm512_min_ps(a, b)
#define V_MAX(a, b) _mm512_max_ps(a, b)
#define V_ROUND(x) _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_POW2(n) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23))
#define V_KEEP_UNLESS_GT(v, z, t) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(z, _mm512_set1_ps(t), _CMP_NGT_UQ), v)
#define GEMM_TILES dit_gemm_tiles_avx512

const int dit_gemm_built_avx512 = 1;
#include "gemm_tile.h"

#else  // the compiler cannot build AVX-512 code: gemm.c never calls this

const int dit_gemm_built_avx512 = 0;
void dit_gemm_tiles_avx512(long M, long N, long K, const float *a, long lda, const float *bp, const float *bias,
                        float *c, long ldc, int epi, float *aux) {
  (void)M; (void)N; (void)K; (void)a; (void)lda; (void)bp; (void)bias; (void)c; (void)ldc; (void)epi; (void)aux;
}

#endif
