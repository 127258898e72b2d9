// The own sgemm's register tile and its GELU epilogues, written once for any vector width.
// gemm_avx512.c and gemm_avx2.c each define the vector layer below and include this file,
// which then defines GEMM_TILES(...): C = bias + A @ (packed B), tile by tile (gemm.h).
//
// The vector layer: V (vector of VL floats), VM (a lane mask), MR (rows of a C tile), and
//   V_ZERO() V_SET1(x) V_LOAD(p) (aligned) V_LOADU(p) V_STOREU(p, v)
//   V_LOADM(m, p) (masked lanes read as 0) V_STOREM(p, m, v) MASK_OF(n) (lanes 0..n-1)
//   V_FMA(a, b, c) = a b + c, V_MUL V_ADD V_DIV V_MIN V_MAX
//   V_ROUND(x) (to nearest), V_POW2(n) (2^n for an integral-valued float n)
//   V_KEEP_UNLESS_GT(v, z, t): v where !(z > t), else 0 (NaN z keeps v)
// A C tile is MR rows by NR = 2 VL columns: 2 MR accumulators, two panel vectors and one
// broadcast of A in registers (AVX-512: 14 x 32 in 28 of 32 registers; AVX2: 6 x 16 in 12 of 16).
#define NR (2 * VL)

// ---- GELU epilogues: vmath.c's formulas (exp_bounded, x sigmoid(2u), its derivative), VL lanes.

static inline V exp_bounded_v(V z) {
  const V n = V_ROUND(V_MUL(z, V_SET1(1.44269504088896341f)));
  V r = V_FMA(n, V_SET1(-0.693145751953125f), z);
  r = V_FMA(n, V_SET1(-1.428606765330187045e-06f), r);
  V p = V_SET1(1.0f / 5040.0f);
  p = V_FMA(p, r, V_SET1(1.0f / 720.0f));
  p = V_FMA(p, r, V_SET1(1.0f / 120.0f));
  p = V_FMA(p, r, V_SET1(1.0f / 24.0f));
  p = V_FMA(p, r, V_SET1(1.0f / 6.0f));
  p = V_FMA(p, r, V_SET1(0.5f));
  p = V_FMA(p, r, V_SET1(1.0f));
  p = V_FMA(p, r, V_SET1(1.0f));
  return V_MUL(p, V_POW2(n));
}

#define GELU_K 0.7978845608028654f  // sqrt(2/pi)
#define GELU_C 0.044715f

// z = -2 sqrt(2/pi) (x + 0.044715 x^3), so that gelu(x) = x / (1 + e^z).
static inline V gelu_z(V x, V x2) {
  const V inner = V_FMA(V_MUL(V_SET1(GELU_C), x2), x, x);
  return V_MUL(inner, V_SET1(-2.0f * GELU_K));
}

static inline V gelu_v(V x) {
  V z = gelu_z(x, V_MUL(x, x));
  z = V_MIN(V_MAX(z, V_SET1(-80.0f)), V_SET1(80.0f));
  const V s = V_DIV(V_SET1(1.0f), V_ADD(V_SET1(1.0f), exp_bounded_v(z)));
  return V_MUL(x, s);
}

// dy * gelu'(x) = dy (s + x 2 e s^2 sqrt(2/pi) (1 + 3 0.044715 x^2)); 0 past z = 40.
static inline V gelu_grad_v(V x, V dy) {
  const V x2 = V_MUL(x, x);
  const V z0 = gelu_z(x, x2);
  const V z = V_MIN(V_MAX(z0, V_SET1(-80.0f)), V_SET1(40.0f));
  const V e = exp_bounded_v(z);
  const V s = V_DIV(V_SET1(1.0f), V_ADD(V_SET1(1.0f), e));
  const V du = V_MUL(V_SET1(GELU_K), V_FMA(V_SET1(3.0f * GELU_C), x2, V_SET1(1.0f)));
  const V d = V_FMA(V_MUL(V_MUL(x, V_SET1(2.0f)), V_MUL(V_MUL(e, s), s)), du, s);
  return V_KEEP_UNLESS_GT(V_MUL(dy, d), z0, 40.0f);
}

// One C tile of mr <= MR rows; with `full` all NR columns are valid (plain loads and stores),
// else the masks m0/m1 select the valid columns of its two vectors. The chains start from the
// bias (or 0): bias + a0 b0 + a1 b1 + ... The epilogue then stores the sums (DIT_EPI_NONE),
// or GELU of them with the sums themselves in aux (DIT_EPI_GELU; aux may be NULL), or the
// sums times GELU' of aux (DIT_EPI_GELU_GRAD).
static inline __attribute__((always_inline)) void tile(int mr, int full, long K, const float *a, long lda,
    const float *bp, const float *bias, float *c, long ldc, VM m0, VM m1, int epi, float *aux) {
#define LD(m, p) (full ? V_LOADU(p) : V_LOADM(m, p))
#define ST(p, m, v) do { if (full) V_STOREU(p, v); else V_STOREM(p, m, v); } while (0)
  V c0[MR], c1[MR];
  const V z0 = bias ? LD(m0, bias) : V_ZERO();
  const V z1 = bias ? LD(m1, bias + VL) : V_ZERO();
  for (int r = 0; r < MR; r++) {
    c0[r] = z0;
    c1[r] = z1;
  }
  for (long k = 0; k < K; k++) {
    const V b0 = V_LOAD(bp + k * NR), b1 = V_LOAD(bp + k * NR + VL);
    for (int r = 0; r < MR; r++) {
      if (r < mr) {
        const V av = V_SET1(a[r * lda + k]);
        c0[r] = V_FMA(av, b0, c0[r]);
        c1[r] = V_FMA(av, b1, c1[r]);
      }
    }
  }
  for (int r = 0; r < mr; r++) {
    float *cr = c + r * ldc;
    if (epi == DIT_EPI_GELU) {
      if (aux) {
        ST(aux + r * ldc, m0, c0[r]);
        ST(aux + r * ldc + VL, m1, c1[r]);
      }
      c0[r] = gelu_v(c0[r]);
      c1[r] = gelu_v(c1[r]);
    } else if (epi == DIT_EPI_GELU_GRAD) {
      c0[r] = gelu_grad_v(LD(m0, aux + r * ldc), c0[r]);
      c1[r] = gelu_grad_v(LD(m1, aux + r * ldc + VL), c1[r]);
    }
    ST(cr, m0, c0[r]);
    ST(cr + VL, m1, c1[r]);
  }
#undef LD
#undef ST
}

// The tiles with mr a constant (fully unrolled): full or masked columns; the last rows' tile
// has each row count 1..MR-1 as its own constant too (a runtime count kept the chains in memory).
static void tile_full(long K, const float *a, long lda, const float *bp, const float *bias, float *c, long ldc,
                      VM m0, VM m1, int epi, float *aux) {
  tile(MR, 1, K, a, lda, bp, bias, c, ldc, m0, m1, epi, aux);
}
static void tile_edge(long K, const float *a, long lda, const float *bp, const float *bias, float *c, long ldc,
                      VM m0, VM m1, int epi, float *aux) {
  tile(MR, 0, K, a, lda, bp, bias, c, ldc, m0, m1, epi, aux);
}
static void tile_part(int mr, long K, const float *a, long lda, const float *bp, const float *bias, float *c,
                      long ldc, VM m0, VM m1, int epi, float *aux) {
  switch (mr) {
#define PART(n) case n: if (n < MR) tile(n, 0, K, a, lda, bp, bias, c, ldc, m0, m1, epi, aux); break;
    PART(1) PART(2) PART(3) PART(4) PART(5) PART(6) PART(7) PART(8) PART(9) PART(10) PART(11) PART(12) PART(13)
#undef PART
  }
}

// c = bias + a @ B for B packed by gemm.c into NR-column panels (panel p: bp + p K NR).
// Each tile's MR rows of A stay in L1 while the panels stream past them from L2 (blocking
// the rows so that a panel stays in L1 instead, or the panels so that fewer stream, was no
// faster on Zen 3).
void GEMM_TILES(long M, long N, long K, const float *a, long lda, const float *bp, const float *bias, float *c,
                long ldc, int epi, float *aux) {
  const long panels = (N + NR - 1) / NR, row_lines = (K + 15) / 16;
  for (long i = 0; i < M; i += MR) {
    const int mr = M - i < MR ? (int)(M - i) : MR;
    // The next row tile's A, a share of its cache lines during each panel: the first panel
    // of a tile would otherwise wait on each row's lines as the k loop reaches them (with
    // this, 3-26% faster on Zen 3 at M = 2048, K = 128-512). (r, l): the next line to fetch.
    const long rows_next = M - i - MR < MR ? M - i - MR : MR, lines = rows_next > 0 ? rows_next * row_lines : 0;
    long r = 0, l = 0, done = 0;
    for (long p = 0; p < panels; p++) {
      for (const long until = (p + 1) * lines / panels; done < until; done++) {
        __builtin_prefetch(a + (i + MR + r) * lda + l * 16);
        if (++l == row_lines) l = 0, r++;
      }
      const long rem = N - p * NR;
      const VM k0 = MASK_OF(rem), k1 = MASK_OF(rem - VL);
      const float *pp = bp + p * K * NR;
      float *ct = c + i * ldc + p * NR;
      for (int q = 0; q < mr; q++) {  // and the tile's C lines, to be written (1-2%)
        __builtin_prefetch(ct + q * ldc, 1);
        if (NR > 16) __builtin_prefetch(ct + q * ldc + 16, 1);
      }
      const float *bt = bias ? bias + p * NR : NULL;
      float *xt = aux ? aux + i * ldc + p * NR : NULL;
      if (mr < MR) tile_part(mr, K, a + i * lda, lda, pp, bt, ct, ldc, k0, k1, epi, xt);
      else if (rem >= NR) tile_full(K, a + i * lda, lda, pp, bt, ct, ldc, k0, k1, epi, xt);
      else tile_edge(K, a + i * lda, lda, pp, bt, ct, ldc, k0, k1, epi, xt);
    }
  }
}
