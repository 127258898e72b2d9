// The kit's own sgemm for the linear layers' long-K products (gemm.c).
#ifndef DIT_GEMM_H
#define DIT_GEMM_H

// Shortest inner dimension sent to dit_gemm (measured on Zen 4 against OpenBLAS 0.3.21's
// Cooperlake kernels, M = 2048): at K >= 384 it is 9-20% faster, because it packs only B and
// keeps each C tile in registers for all of K; at K = 128-256 it is up to 8% slower, and a
// forward pass was no faster with it taking the short-K products with a bias too (perf
// shares of the GEMMs unchanged), although that saves OpenBLAS's pre-fill of C.
#define DIT_GEMM_MIN_K 384
// Largest packed B (K x N rounded up to 32 columns) it takes, in floats: every 14-row tile
// streams all of it, so it must stay in L2 (1 MB on Zen 4). At 1024 x 1024 x 1024 (4 MB of
// B) it ran at 81 GFLOP/s against OpenBLAS's 104.
#define DIT_GEMM_MAX_PACKED (1L << 18)

// 1 when this build has the AVX-512 kernel and the CPU runs it.
int dit_gemm_available(void);

// c[M, N] (row stride ldc) = (bias[N] or 0) + a[M, K] (row-major, lda) @ op(b), op(b) =
// b [K, N] (row stride ldb) or, with tb, b^T for b [N, K], then an epilogue on each tile
// while it is in registers (c and aux share ldc):
//   DIT_EPI_NONE       c = the sums (aux unused);
//   DIT_EPI_GELU       c = gelu_tanh(sums), aux = the sums (the pre-activation; aux may be NULL);
//   DIT_EPI_GELU_GRAD  c = sums * gelu_tanh'(aux) (aux the pre-activation).
// The GELU formulas are vmath.c's (x sigmoid(2u) through exp_bounded), 16 lanes at a time.
// Each sum is the k-ordered fused multiply-add chain of row i, started at bias[j], so a row's
// result never depends on which other rows are in the call. Returns 0 (and computes
// nothing) if it cannot run here.
enum { DIT_EPI_NONE = 0, DIT_EPI_GELU = 1, DIT_EPI_GELU_GRAD = 2 };
int dit_gemm(long M, long N, long K, const float *a, long lda, const float *b, long ldb, int tb,
             const float *bias, float *c, long ldc, int epi, float *aux);

#endif
