// The kit's own sgemm for the linear layers' products (gemm.c; tiles in gemm_tile.h).
#ifndef DIT_GEMM_H
#define DIT_GEMM_H

// Where the kernel is faster than OpenBLAS 0.3.21 (M = 2048 unless said; both on one thread,
// each call on distinct data, paired timings):
// - AVX-512 (Zen 4, against the Cooperlake kernels): K >= 384, 9-20% faster, because it packs
//   only B and keeps each C tile in registers for all of K; at K = 128-256 up to 8% slower, and
//   a forward pass was no faster with it taking the short-K products with a bias too.
#define DIT_GEMM_MIN_K_AVX512 384
// - AVX2 (Zen 3, against the Zen kernels): every DiT product shape at M = 2048, 6-35% faster
//   (parity at N >= 512; in a forward pass OpenBLAS spent 10.7% of the time packing the
//   activations and 6.5% pre-filling C with the bias, which this kernel does not do); at
//   M = 32 (adaLN's 768 x 128) 20-23% slower, packing B costing more than a few rows save.
#define DIT_GEMM_MIN_M_AVX2 256

// Chooses the kernel: "auto" (AVX-512 if the CPU has it, else AVX2 + FMA, else none),
// "openblas" (none: every product to OpenBLAS), "avx2" or "avx512" (that one). Returns 0,
// changing nothing, for an unknown mode or a kernel this build or CPU cannot run.
int dit_gemm_use(const char *mode);
// The kernel in use: "own-avx512", "own-avx2" or "openblas".
const char *dit_gemm_kernel(void);
// 1 when the kernel in use is faster than OpenBLAS for an [M, K] @ [K, N] product (see above)
// and it fits (dit_gemm_fits).
int dit_gemm_pays(long M, long N, long K);
// 1 when a kernel is in use and op(b) [K, N], packed, fits in L2 (every row tile streams it).
int dit_gemm_fits(long N, long K);

// c[M, N] (row stride ldc) = (bias[N] or 0) + a[M, K] (row-major, lda) @ op(b), op(b) =
// b [K, N] (row stride ldb) or, with tb, b^T for b [N, K], then an epilogue on each tile
// while it is in registers (c and aux share ldc):
//   DIT_EPI_NONE       c = the sums (aux unused);
//   DIT_EPI_GELU       c = gelu_tanh(sums), aux = the sums (the pre-activation; aux may be NULL);
//   DIT_EPI_GELU_GRAD  c = sums * gelu_tanh'(aux) (aux the pre-activation).
// The GELU formulas are vmath.c's (x sigmoid(2u) through exp_bounded), a vector at a time.
// Each sum is the k-ordered fused multiply-add chain of row i, started at bias[j], so a row's
// result never depends on which other rows are in the call. Returns 0 (and computes
// nothing) if no kernel is in use.
enum { DIT_EPI_NONE = 0, DIT_EPI_GELU = 1, DIT_EPI_GELU_GRAD = 2 };
int dit_gemm(long M, long N, long K, const float *a, long lda, const float *b, long ldb, int tb,
             const float *bias, float *c, long ldc, int epi, float *aux);

#endif
