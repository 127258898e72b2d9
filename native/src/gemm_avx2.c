// The own sgemm's tiles for AVX2 + FMA (gemm_tile.h with 8-float vectors): a 6 x 16 C tile in
// 12 of the 16 ymm registers, as in BLIS's Haswell kernel. Built with -mavx2 -mfma (this file
// only); gemm.c calls it only when the CPU has both and no AVX-512F.
#include "gemm.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#define V __m256
#define VM __m256i
#define VL 8
#define MR 6
#define V_ZERO() _mm256_setzero_ps()
#define V_SET1(x) _mm256_set1_ps(x)
#define V_LOAD(p) _mm256_load_ps(p)
#define V_LOADU(p) _mm256_loadu_ps(p)
#define V_STOREU(p, v) _mm256_storeu_ps(p, v)
#define V_LOADM(m, p) _mm256_maskload_ps(p, m)
#define V_STOREM(p, m, v) _mm256_maskstore_ps(p, m, v)
#define MASK_OF(n) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)((n) < 0 ? 0 : (n) > 8 ? 8 : (n))), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_MUL(a, b) _mm256_mul_ps(a, b)
#define V_ADD(a, b) _mm256_add_ps(a, b)
#define V_DIV(a, b) _mm256_div_ps(a, b)
#define V_MIN(a, b) _mm256_min_ps(a, b)
#define V_MAX(a, b) _mm256_max_ps(a, b)
#define V_ROUND(x) _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_POW2(n) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23))
#define V_KEEP_UNLESS_GT(v, z, t) _mm256_and_ps(v, _mm256_cmp_ps(z, _mm256_set1_ps(t), _CMP_NGT_UQ))
#define GEMM_TILES dit_gemm_tiles_avx2

const int dit_gemm_built_avx2 = 1;
#include "gemm_tile.h"

#else  // the compiler cannot build AVX2 code: gemm.c never calls this

const int dit_gemm_built_avx2 = 0;
void dit_gemm_tiles_avx2(long M, long N, long K, const float *a, long lda, const float *bp, const float *bias,
                        float *c, long ldc, int epi, float *aux) {
  (void)M; (void)N; (void)K; (void)a; (void)lda; (void)bp; (void)bias; (void)c; (void)ldc; (void)epi; (void)aux;
}

#endif
