// The kit's own sgemm for the linear layers' long-K products (gemm.c).
#ifndef DIT_GEMM_H
#define DIT_GEMM_H

// Shortest inner dimension sent to dit_gemm by default: below it OpenBLAS's packed kernel
// is as fast or faster (measured on Zen 4: K = 128-256 within +-8% either way; K >= 384
// own 9-20% faster, because it packs only B and keeps each C tile in registers for all of K).
#define DIT_GEMM_MIN_K 384

// 1 when this build has the AVX-512 kernel and the CPU runs it.
int dit_gemm_available(void);

// c[M, N] (row stride ldc) = a[M, K] (row-major, lda) @ op(b) (+ c when accumulate),
// op(b) = b [K, N] (row stride ldb) or, with tb, b^T for b [N, K]. Each c[i, j] is the
// k-ordered fused multiply-add chain of row i, so a row's result never depends on which
// other rows are in the call. Returns 0 (and computes nothing) if it cannot run here.
int dit_gemm(long M, long N, long K, const float *a, long lda, const float *b, long ldb, int tb,
             int accumulate, float *c, long ldc);

#endif
