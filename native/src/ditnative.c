// ditnative: float32 CPU kernels for the kit's 'native' tfjs backend (lib/backend/native.ts).
// Every function works in place on Float32Arrays handed over by JS (zero copy): inputs are
// read, the output array (allocated by JS) is written. Shapes and strides arrive already
// simplified by the JS side (size-1 dims dropped, mergeable dims merged), so loops here stay
// small. Matrix products go to OpenBLAS, or to gemm.c's own kernel where it is faster;
// transcendental loops live in vmath.c (fast-math TU).
#define NAPI_VERSION 8
#include <node_api.h>
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conv.h"
#include "fused.h"
#include "gemm.h"
#include "linalg.h"
#include "manifold.h"
#include "optim.h"
#include "vmath.h"

#define MAXD 8

// ---- argument helpers -------------------------------------------------------------------

#define GET_ARGS(N)                                                                     \
  napi_value argv[N];                                                                   \
  size_t argc = N;                                                                      \
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < N) {    \
    napi_throw_error(env, NULL, "ditnative: expected " #N " arguments");                 \
    return NULL;                                                                        \
  }

static int f32(napi_env env, napi_value v, float **p, size_t *n) {
  napi_typedarray_type t;
  size_t len;
  void *data;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &t, &len, &data, &ab, &off) != napi_ok || t != napi_float32_array) {
    napi_throw_type_error(env, NULL, "ditnative: expected a Float32Array");
    return 0;
  }
  *p = (float *)data;
  if (n) *n = len;
  return 1;
}

static int num(napi_env env, napi_value v, double *out) {
  if (napi_get_value_double(env, v, out) != napi_ok) {
    napi_throw_type_error(env, NULL, "ditnative: expected a number");
    return 0;
  }
  return 1;
}

static int inum(napi_env env, napi_value v, long *out) {
  double d;
  if (!num(env, v, &d)) return 0;
  *out = (long)d;
  return 1;
}

// Reads a plain JS array of integers (shape or strides) into out[]; returns its length or -1.
static int longs(napi_env env, napi_value v, long *out) {
  uint32_t n;
  if (napi_get_array_length(env, v, &n) != napi_ok || n > MAXD) {
    napi_throw_type_error(env, NULL, "ditnative: expected an array of at most 8 integers");
    return -1;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    double d;
    if (napi_get_element(env, v, i, &e) != napi_ok || napi_get_value_double(env, e, &d) != napi_ok) {
      napi_throw_type_error(env, NULL, "ditnative: expected an array of integers");
      return -1;
    }
    out[i] = (long)d;
  }
  return (int)n;
}

static int fail(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return 0;
}

// ---- matmul ------------------------------------------------------------------------------

// Products that gemm.c's kernel does faster (gemm.h says which) go to it when the CPU has
// AVX-512 or AVX2; setGemm('openblas') sends every product to OpenBLAS (for A/B timing and
// the equivalence test).
static int use_own_gemm(long ta, long M, long N, long K) { return !ta && dit_gemm_pays(M, N, K); }
// c[M, N] = op(a) @ op(b) (+ bias [N]), row-major: op(a) = a [M, K] or, with ta, a^T for
// a [K, M]; op(b) = b [K, N] or, with tb, b^T for b [N, K]. The own kernel where it is faster
// (the bias starts its sums); else OpenBLAS, the bias written into every row of c first and
// the product added with beta = 1 (the pass beta = 0 would spend zeroing c adds the bias).
static void product(const float *a, long ta, const float *b, long tb, const float *bias, float *c, long M, long N,
                    long K) {
  const long lda = ta ? M : K, ldb = tb ? K : N;
  if (use_own_gemm(ta, M, N, K) && dit_gemm(M, N, K, a, lda, b, ldb, (int)tb, bias, c, N, DIT_EPI_NONE, NULL)) return;
  if (bias) {
    for (long r = 0; r < M; r++) memcpy(c + r * N, bias, sizeof(float) * N);
  } else if (K == 0) {
    memset(c, 0, sizeof(float) * M * N);
  }
  if (K > 0)
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, a, lda,
                b, ldb, bias ? 1.0f : 0.0f, c, N);
}

// out[n] = sum over rows of x[rows, n] (the bias gradients), row by row in order.
static void col_sums(const float *x, float *out, long rows, long n) {
  if (rows == 0) {
    memset(out, 0, sizeof(float) * n);
    return;
  }
  memcpy(out, x, sizeof(float) * n);
  for (long j = 1; j < rows; j++) {
    const float *row = x + j * n;
    for (long i = 0; i < n; i++) out[i] += row[i];
  }
}

// matmul(a, b, out, batchA, batchB, batchOut, M, N, K, transA, transB, bias)
// out[i] = op(a[i % batchA]) @ op(b[i % batchB]) (+ bias), all row-major, out is [batchOut, M, N].
// Transposes are sgemm flags, never copies. When b is shared and a is not transposed, the
// whole batch is one [batch*M, K] @ [K, N] product (the usual linear layer). bias [N] or null.
static napi_value matmul(napi_env env, napi_callback_info info) {
  GET_ARGS(12);
  float *a, *b, *c, *bias = NULL;
  size_t na, nb, nc, nbias = 0;
  long batchA, batchB, batchOut, M, N, K, ta, tb;
  napi_valuetype bt;
  if (!f32(env, argv[0], &a, &na) || !f32(env, argv[1], &b, &nb) || !f32(env, argv[2], &c, &nc)) return NULL;
  if (!inum(env, argv[3], &batchA) || !inum(env, argv[4], &batchB) || !inum(env, argv[5], &batchOut) ||
      !inum(env, argv[6], &M) || !inum(env, argv[7], &N) || !inum(env, argv[8], &K) ||
      !inum(env, argv[9], &ta) || !inum(env, argv[10], &tb) || napi_typeof(env, argv[11], &bt) != napi_ok)
    return NULL;
  if (bt != napi_null && bt != napi_undefined && !f32(env, argv[11], &bias, &nbias)) return NULL;
  if ((size_t)(batchA * M * K) > na || (size_t)(batchB * K * N) > nb || (size_t)(batchOut * M * N) > nc ||
      (bias && nbias != (size_t)N)) {
    fail(env, "matmul: array too small for the given shape (or bias not of length N)");
    return NULL;
  }
  if (M == 0 || N == 0) return NULL;
  if (batchB == 1 && !ta && batchA == batchOut) {
    product(a, 0, b, tb, bias, c, batchOut * M, N, K);
    return NULL;
  }
  for (long i = 0; i < batchOut; i++)
    product(a + (i % batchA) * M * K, ta, b + (i % batchB) * K * N, tb, bias, c + i * M * N, M, N, K);
  return NULL;
}

// ---- strided iteration -------------------------------------------------------------------

// Calls body(pa, pb, po, n, sa, sb, so) for every innermost run of an nd-dim iteration
// (shape[nd-1] elements) with per-operand strides; the outer dims are walked odometer style.
#define ITERATE3(nd, shape, sa, sb, so, A0, B0, O0, BODY)                                   \
  do {                                                                                     \
    long idx_[MAXD] = {0};                                                                 \
    long outer_ = 1;                                                                       \
    for (int k_ = 0; k_ < (nd) - 1; k_++) outer_ *= shape[k_];                             \
    long n = (nd) > 0 ? shape[(nd) - 1] : 1;                                               \
    long ia = (nd) > 0 ? sa[(nd) - 1] : 0, ib = (nd) > 0 ? sb[(nd) - 1] : 0,               \
         io = (nd) > 0 ? so[(nd) - 1] : 0;                                                 \
    const float *pa = (A0);                                                                \
    const float *pb = (B0);                                                                \
    float *po = (O0);                                                                      \
    (void)pb;                                                                              \
    (void)ib;                                                                              \
    (void)io;                                                                              \
    for (long o_ = 0; o_ < outer_; o_++) {                                                 \
      BODY;                                                                                \
      for (int k_ = (nd) - 2; k_ >= 0; k_--) {                                             \
        idx_[k_]++;                                                                        \
        pa += sa[k_];                                                                      \
        pb += sb[k_];                                                                      \
        po += so[k_];                                                                      \
        if (idx_[k_] < shape[k_]) break;                                                   \
        pa -= sa[k_] * shape[k_];                                                          \
        pb -= sb[k_] * shape[k_];                                                          \
        po -= so[k_] * shape[k_];                                                          \
        idx_[k_] = 0;                                                                      \
      }                                                                                    \
    }                                                                                      \
  } while (0)

// copy(src, srcOffset, srcStrides, dst, dstOffset, dstStrides, shape)
// dst[dOff + sum i_k*ds_k] = src[sOff + sum i_k*ss_k]: transpose, slice, concat, tile, pad.
static napi_value copy(napi_env env, napi_callback_info info) {
  GET_ARGS(7);
  float *src, *dst;
  size_t ns, nd_;
  long soff, doff, ss[MAXD], ds[MAXD], shape[MAXD];
  if (!f32(env, argv[0], &src, &ns) || !inum(env, argv[1], &soff) || !f32(env, argv[3], &dst, &nd_) ||
      !inum(env, argv[4], &doff))
    return NULL;
  int n1 = longs(env, argv[2], ss), n2 = longs(env, argv[5], ds), nd = longs(env, argv[6], shape);
  if (n1 < 0 || n2 < 0 || nd < 0) return NULL;
  if (n1 != nd || n2 != nd) {
    fail(env, "copy: shape and strides differ in length");
    return NULL;
  }
  for (int k = 0; k < nd; k++)
    if (shape[k] == 0) return NULL;
  ITERATE3(nd, shape, ss, ss, ds, src + soff, src + soff, dst + doff, {
    if (ia == 1 && io == 1) {
      memcpy(po, pa, sizeof(float) * n);
    } else if (ia == 0) {
      float v = pa[0];
      for (long i = 0; i < n; i++) po[i * io] = v;
    } else {
      for (long i = 0; i < n; i++) po[i * io] = pa[i * ia];
    }
  });
  return NULL;
}

// ---- elementwise binary ops with broadcasting ---------------------------------------------

enum { B_ADD, B_SUB, B_MUL, B_DIV, B_MAX, B_MIN, B_SQDIFF, B_POW, B_COUNT };

#define BIN_CASES(EXPR)                                                        \
  if (ia == 1 && ib == 1) {                                                    \
    for (long i = 0; i < n; i++) {                                             \
      float x = pa[i], y = pb[i];                                              \
      po[i] = (EXPR);                                                          \
    }                                                                          \
  } else if (ia == 1 && ib == 0) {                                             \
    float y = pb[0];                                                           \
    for (long i = 0; i < n; i++) {                                             \
      float x = pa[i];                                                         \
      po[i] = (EXPR);                                                          \
    }                                                                          \
  } else if (ia == 0 && ib == 1) {                                             \
    float x = pa[0];                                                           \
    for (long i = 0; i < n; i++) {                                             \
      float y = pb[i];                                                         \
      po[i] = (EXPR);                                                          \
    }                                                                          \
  } else {                                                                     \
    for (long i = 0; i < n; i++) {                                             \
      float x = pa[i * ia], y = pb[i * ib];                                    \
      po[i] = (EXPR);                                                          \
    }                                                                          \
  }

// NaN-propagating max/min like tfjs (a NaN on either side gives NaN).
static inline float fmax_nan(float x, float y) { return (x != x || y != y) ? NAN : (x > y ? x : y); }
static inline float fmin_nan(float x, float y) { return (x != x || y != y) ? NAN : (x < y ? x : y); }

// binary(op, a, b, out, shape, aStrides, bStrides); out is contiguous with the given shape.
static napi_value binary(napi_env env, napi_callback_info info) {
  GET_ARGS(7);
  long op, shape[MAXD], sa[MAXD], sb[MAXD], so[MAXD];
  float *a, *b, *o;
  if (!inum(env, argv[0], &op) || !f32(env, argv[1], &a, NULL) || !f32(env, argv[2], &b, NULL) ||
      !f32(env, argv[3], &o, NULL))
    return NULL;
  int nd = longs(env, argv[4], shape), n1 = longs(env, argv[5], sa), n2 = longs(env, argv[6], sb);
  if (nd < 0 || n1 < 0 || n2 < 0) return NULL;
  if (n1 != nd || n2 != nd || op < 0 || op >= B_COUNT) {
    fail(env, "binary: bad op or strides");
    return NULL;
  }
  long s = 1;
  for (int k = nd - 1; k >= 0; k--) {
    if (shape[k] == 0) return NULL;
    so[k] = s;
    s *= shape[k];
  }
  ITERATE3(nd, shape, sa, sb, so, a, b, o, {
    switch (op) {
      case B_ADD: BIN_CASES(x + y) break;
      case B_SUB: BIN_CASES(x - y) break;
      case B_MUL: BIN_CASES(x * y) break;
      case B_DIV: BIN_CASES(x / y) break;
      case B_MAX: BIN_CASES(fmax_nan(x, y)) break;
      case B_MIN: BIN_CASES(fmin_nan(x, y)) break;
      case B_SQDIFF: BIN_CASES((x - y) * (x - y)) break;
      case B_POW: BIN_CASES(powf(x, y)) break;
    }
  });
  return NULL;
}

// ---- elementwise unary ops ---------------------------------------------------------------

// Plain-arithmetic unary ops (codes below U_FAST_FIRST), with tfjs' NaN behaviour.
static int simple_unary(int op, const float *x, float *o, long n, float alpha) {
  switch (op) {
    case U_NEG: for (long i = 0; i < n; i++) o[i] = -x[i]; return 1;
    case U_SQUARE: for (long i = 0; i < n; i++) o[i] = x[i] * x[i]; return 1;
    case U_CUBE: for (long i = 0; i < n; i++) o[i] = x[i] * x[i] * x[i]; return 1;
    case U_SQRT: for (long i = 0; i < n; i++) o[i] = sqrtf(x[i]); return 1;
    case U_RSQRT: for (long i = 0; i < n; i++) o[i] = 1.0f / sqrtf(x[i]); return 1;
    case U_RECIPROCAL: for (long i = 0; i < n; i++) o[i] = 1.0f / x[i]; return 1;
    case U_ABS: for (long i = 0; i < n; i++) o[i] = fabsf(x[i]); return 1;
    case U_RELU: for (long i = 0; i < n; i++) o[i] = x[i] < 0.0f ? 0.0f : x[i]; return 1;
    case U_STEP: for (long i = 0; i < n; i++) o[i] = x[i] != x[i] ? x[i] : (x[i] > 0.0f ? 1.0f : alpha); return 1;
    case U_LEAKYRELU: for (long i = 0; i < n; i++) o[i] = x[i] < 0.0f ? alpha * x[i] : x[i]; return 1;
    case U_RELU6:
      for (long i = 0; i < n; i++) o[i] = x[i] < 0.0f ? 0.0f : (x[i] > 6.0f ? 6.0f : x[i]);
      return 1;
  }
  return 0;
}

// unary(op, x, out, alpha): the op codes are listed in vmath.h.
static napi_value unary(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  long op;
  double alpha;
  float *x, *o;
  size_t nx, no;
  if (!inum(env, argv[0], &op) || !f32(env, argv[1], &x, &nx) || !f32(env, argv[2], &o, &no) ||
      !num(env, argv[3], &alpha))
    return NULL;
  if (no < nx) {
    fail(env, "unary: output smaller than input");
    return NULL;
  }
  int done = op < U_FAST_FIRST ? simple_unary((int)op, x, o, (long)nx, (float)alpha)
                                : vm_unary((int)op, x, o, (long)nx, (float)alpha);
  if (!done) fail(env, "unary: unknown op");
  return NULL;
}

// ---- reductions --------------------------------------------------------------------------

enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_COUNT };

// reduce(op, x, out, outer, r, inner): out[o, i] = reduce_j x[o, j, i] (x is [outer, r, inner]).
static napi_value reduce(napi_env env, napi_callback_info info) {
  GET_ARGS(6);
  long op, outer, r, inner;
  float *x, *out;
  size_t nx, no;
  if (!inum(env, argv[0], &op) || !f32(env, argv[1], &x, &nx) || !f32(env, argv[2], &out, &no) ||
      !inum(env, argv[3], &outer) || !inum(env, argv[4], &r) || !inum(env, argv[5], &inner))
    return NULL;
  if ((size_t)(outer * r * inner) > nx || (size_t)(outer * inner) > no || op < 0 || op >= R_COUNT) {
    fail(env, "reduce: bad op or sizes");
    return NULL;
  }
  for (long o = 0; o < outer; o++) {
    const float *xo = x + o * r * inner;
    float *dst = out + o * inner;
    if (inner == 1) {
      if (op == R_SUM || op == R_MEAN) {
        float acc = 0.0f;
        for (long j = 0; j < r; j++) acc += xo[j];
        dst[0] = op == R_MEAN ? acc / (float)r : acc;
      } else {
        float acc = op == R_MAX ? -INFINITY : INFINITY;
        int nan = 0;
        if (op == R_MAX)
          for (long j = 0; j < r; j++) acc = xo[j] > acc ? xo[j] : acc;
        else
          for (long j = 0; j < r; j++) acc = xo[j] < acc ? xo[j] : acc;
        for (long j = 0; j < r; j++) nan |= xo[j] != xo[j];
        dst[0] = nan ? NAN : acc;
      }
      continue;
    }
    if (op == R_SUM || op == R_MEAN) {
      col_sums(xo, dst, r, inner);
      if (op == R_MEAN) {
        float sc = 1.0f / (float)r;
        for (long i = 0; i < inner; i++) dst[i] *= sc;
      }
      continue;
    }
    memcpy(dst, xo, sizeof(float) * inner);
    for (long j = 1; j < r; j++) {
      const float *row = xo + j * inner;
      if (op == R_MAX)
        for (long i = 0; i < inner; i++) dst[i] = fmax_nan(dst[i], row[i]);
      else
        for (long i = 0; i < inner; i++) dst[i] = fmin_nan(dst[i], row[i]);
    }
  }
  return NULL;
}

// geluTanhGrad(x, dy, dx): dx = dy * d/dx [0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))].
static napi_value gelu_tanh_grad(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  float *x, *dy, *dx;
  size_t nx, ny, nd;
  if (!f32(env, argv[0], &x, &nx) || !f32(env, argv[1], &dy, &ny) || !f32(env, argv[2], &dx, &nd)) return NULL;
  if (ny < nx || nd < nx) {
    fail(env, "geluTanhGrad: arrays differ in size");
    return NULL;
  }
  vm_gelu_tanh_grad(x, dy, dx, (long)nx);
  return NULL;
}

// ---- the DiT MLP: fc2(gelu_tanh(fc1(x))) ---------------------------------------------------

static int f32_or_null(napi_env env, napi_value v, float **p, size_t *n);

// mlpForward(x, w1, b1, w2, b2, y, h, g, rows, D, H, DO): h = x w1 + b1 (the pre-activation;
// null when no gradient needs it), g = gelu_tanh(h), y = g w2 + b2; x [rows, D], w1 [D, H],
// w2 [H, DO]. With the own kernel GELU is fc1's epilogue (no pass over h; at any K, since
// it saves that pass, while w1 packed fits in L2); else the same products and vm_unary's GELU.
static napi_value mlp_forward(napi_env env, napi_callback_info info) {
  GET_ARGS(12);
  float *x, *w1, *b1, *w2, *b2, *y, *h = NULL, *g;
  size_t nx, nw1, nb1, nw2, nb2, ny, nh = 0, ng;
  long rows, D, H, DO;
  if (!f32(env, argv[0], &x, &nx) || !f32(env, argv[1], &w1, &nw1) || !f32(env, argv[2], &b1, &nb1) ||
      !f32(env, argv[3], &w2, &nw2) || !f32(env, argv[4], &b2, &nb2) || !f32(env, argv[5], &y, &ny) ||
      !f32_or_null(env, argv[6], &h, &nh) || !f32(env, argv[7], &g, &ng) || !inum(env, argv[8], &rows) ||
      !inum(env, argv[9], &D) || !inum(env, argv[10], &H) || !inum(env, argv[11], &DO))
    return NULL;
  if (nx < (size_t)(rows * D) || nw1 < (size_t)(D * H) || nb1 < (size_t)H || nw2 < (size_t)(H * DO) ||
      nb2 < (size_t)DO || ny < (size_t)(rows * DO) || (h && nh < (size_t)(rows * H)) || ng < (size_t)(rows * H)) {
    fail(env, "mlpForward: array too small for the given shape");
    return NULL;
  }
  if (!(dit_gemm_fits(H, D) && dit_gemm(rows, H, D, x, D, w1, H, 0, b1, g, H, DIT_EPI_GELU, h))) {
    float *pre = h ? h : g;
    product(x, 0, w1, 0, b1, pre, rows, H, D);
    vm_unary(U_GELU_TANH, pre, g, rows * H, 0.0f);
  }
  product(g, 0, w2, 0, b2, y, rows, DO, H);
  return NULL;
}

// mlpBackward(x, w1, w2, h, g, dy, dx, dw1, db1, dw2, db2, dh, rows, D, H, DO): the gradients
// of mlpForward; dh [rows, H] is scratch. dh = (dy w2^T) * gelu_tanh'(h) is one product with
// the GELU derivative as its epilogue when the own kernel runs.
static napi_value mlp_backward(napi_env env, napi_callback_info info) {
  GET_ARGS(16);
  float *x, *w1, *w2, *h, *g, *dy, *dx, *dw1, *db1, *dw2, *db2, *dh;
  size_t nx, nw1, nw2, nh, ng, ndy, ndx, ndw1, ndb1, ndw2, ndb2, ndh;
  long rows, D, H, DO;
  if (!f32(env, argv[0], &x, &nx) || !f32(env, argv[1], &w1, &nw1) || !f32(env, argv[2], &w2, &nw2) ||
      !f32(env, argv[3], &h, &nh) || !f32(env, argv[4], &g, &ng) || !f32(env, argv[5], &dy, &ndy) ||
      !f32(env, argv[6], &dx, &ndx) || !f32(env, argv[7], &dw1, &ndw1) || !f32(env, argv[8], &db1, &ndb1) ||
      !f32(env, argv[9], &dw2, &ndw2) || !f32(env, argv[10], &db2, &ndb2) || !f32(env, argv[11], &dh, &ndh) ||
      !inum(env, argv[12], &rows) || !inum(env, argv[13], &D) || !inum(env, argv[14], &H) || !inum(env, argv[15], &DO))
    return NULL;
  const size_t rD = rows * D, rH = rows * H, rO = rows * DO;
  if (nx < rD || nw1 < (size_t)(D * H) || nw2 < (size_t)(H * DO) || nh < rH || ng < rH || ndy < rO || ndx < rD ||
      ndw1 < (size_t)(D * H) || ndb1 < (size_t)H || ndw2 < (size_t)(H * DO) || ndb2 < (size_t)DO || ndh < rH || rows < 1) {
    fail(env, "mlpBackward: array too small for the given shape (or no rows)");
    return NULL;
  }
  product(g, 1, dy, 0, NULL, dw2, H, DO, rows);
  col_sums(dy, db2, rows, DO);
  if (!(dit_gemm_fits(H, DO) && dit_gemm(rows, H, DO, dy, DO, w2, DO, 1, NULL, dh, H, DIT_EPI_GELU_GRAD, h))) {
    product(dy, 0, w2, 1, NULL, dh, rows, H, DO);
    vm_gelu_tanh_grad(h, dh, dh, rows * H);
  }
  product(x, 1, dh, 0, NULL, dw1, D, H, rows);
  col_sums(dh, db1, rows, H);
  product(dh, 0, w1, 1, NULL, dx, rows, D, H);
  return NULL;
}

// softmax(x, out, rows, cols): softmax over the last axis.
static napi_value softmax(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  float *x, *o;
  size_t nx, no;
  long rows, cols;
  if (!f32(env, argv[0], &x, &nx) || !f32(env, argv[1], &o, &no) || !inum(env, argv[2], &rows) ||
      !inum(env, argv[3], &cols))
    return NULL;
  if ((size_t)(rows * cols) > nx || (size_t)(rows * cols) > no) {
    fail(env, "softmax: arrays too small");
    return NULL;
  }
  vm_softmax(x, o, rows, cols);
  return NULL;
}

// ---- fused DiT kernels (fused.c) --------------------------------------------------------

// A Float32Array or null (for optional operands).
static int f32_or_null(napi_env env, napi_value v, float **p, size_t *n) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) == napi_ok && (t == napi_null || t == napi_undefined)) {
    *p = NULL;
    *n = 0;
    return 1;
  }
  return f32(env, v, p, n);
}

// lnModForward(x, shift|null, scale|null, y, N, T, D, eps)
static napi_value ln_mod_fwd(napi_env env, napi_callback_info info) {
  GET_ARGS(8);
  float *x, *sh, *sc, *y;
  size_t nx, nsh, nsc, ny;
  long N, T, D;
  double eps;
  if (!f32(env, argv[0], &x, &nx) || !f32_or_null(env, argv[1], &sh, &nsh) || !f32_or_null(env, argv[2], &sc, &nsc) ||
      !f32(env, argv[3], &y, &ny) || !inum(env, argv[4], &N) || !inum(env, argv[5], &T) || !inum(env, argv[6], &D) ||
      !num(env, argv[7], &eps))
    return NULL;
  size_t rows = (size_t)(N * T * D), mod = (size_t)(N * D);
  if (nx < rows || ny < rows || (!sh) != (!sc) || (sh && (nsh < mod || nsc < mod))) {
    fail(env, "lnModForward: arrays do not match [N, T, D]");
    return NULL;
  }
  ln_mod_forward(x, sh, sc, y, N, T, D, (float)eps);
  return NULL;
}

// gatedResidual(x, h, g, out, N, T, D): out = x + g[:, None] * h; x, h, out [N, T, D], g [N, D].
static napi_value gated_res_fwd(napi_env env, napi_callback_info info) {
  GET_ARGS(7);
  float *x, *h, *g, *out;
  size_t nx, nh, ng, no;
  long N, T, D;
  if (!f32(env, argv[0], &x, &nx) || !f32(env, argv[1], &h, &nh) || !f32(env, argv[2], &g, &ng) ||
      !f32(env, argv[3], &out, &no) || !inum(env, argv[4], &N) || !inum(env, argv[5], &T) || !inum(env, argv[6], &D))
    return NULL;
  size_t all = (size_t)(N * T * D), mod = (size_t)(N * D);
  if (N < 0 || T < 0 || D < 0 || nx < all || nh < all || no < all || ng < mod) {
    fail(env, "gatedResidual: arrays do not match [N, T, D] and g [N, D]");
    return NULL;
  }
  gated_residual_forward(x, h, g, out, N, T, D);
  return NULL;
}

// gatedResidualGrad(h, g, dy, dh, dg, N, T, D): dh = g[:, None] * dy, dg = sum_t h * dy.
static napi_value gated_res_bwd(napi_env env, napi_callback_info info) {
  GET_ARGS(8);
  float *h, *g, *dy, *dh, *dg;
  size_t nh, ng, ndy, ndh, ndg;
  long N, T, D;
  if (!f32(env, argv[0], &h, &nh) || !f32(env, argv[1], &g, &ng) || !f32(env, argv[2], &dy, &ndy) ||
      !f32(env, argv[3], &dh, &ndh) || !f32(env, argv[4], &dg, &ndg) || !inum(env, argv[5], &N) ||
      !inum(env, argv[6], &T) || !inum(env, argv[7], &D))
    return NULL;
  size_t all = (size_t)(N * T * D), mod = (size_t)(N * D);
  if (N < 0 || T < 0 || D < 0 || nh < all || ndy < all || ndh < all || ng < mod || ndg < mod) {
    fail(env, "gatedResidualGrad: arrays do not match [N, T, D] and g [N, D]");
    return NULL;
  }
  gated_residual_backward(h, g, dy, dh, dg, N, T, D);
  return NULL;
}

// lnModBackward(x, scale|null, dy, dx, dshift|null, dscale|null, N, T, D, eps)
static napi_value ln_mod_bwd(napi_env env, napi_callback_info info) {
  GET_ARGS(10);
  float *x, *sc, *dy, *dx, *dsh, *dsc;
  size_t nx, nsc, ndy, ndx, ndsh, ndsc;
  long N, T, D;
  double eps;
  if (!f32(env, argv[0], &x, &nx) || !f32_or_null(env, argv[1], &sc, &nsc) || !f32(env, argv[2], &dy, &ndy) ||
      !f32(env, argv[3], &dx, &ndx) || !f32_or_null(env, argv[4], &dsh, &ndsh) ||
      !f32_or_null(env, argv[5], &dsc, &ndsc) || !inum(env, argv[6], &N) || !inum(env, argv[7], &T) ||
      !inum(env, argv[8], &D) || !num(env, argv[9], &eps))
    return NULL;
  size_t rows = (size_t)(N * T * D), mod = (size_t)(N * D);
  if (nx < rows || ndy < rows || ndx < rows || (sc && (nsc < mod || !dsh || !dsc || ndsh < mod || ndsc < mod))) {
    fail(env, "lnModBackward: arrays do not match [N, T, D]");
    return NULL;
  }
  ln_mod_backward(x, sc, dy, dx, dsh, dsc, N, T, D, (float)eps);
  return NULL;
}

// Reads (array, offset, rowStride) for q, k, v from argv[i..i+8] and the sizes from
// argv[j..j+5]; checks that every access stays inside its array.
static int attn_parse(napi_env env, napi_value *argv, int i, int j, struct attn_args *a, size_t lens[3], long off[3]) {
  float *p[3];
  long st[3], sizes[5];
  double scale;
  for (int k = 0; k < 3; k++) {
    if (!f32(env, argv[i + 3 * k], &p[k], &lens[k]) || !inum(env, argv[i + 3 * k + 1], &off[k]) ||
        !inum(env, argv[i + 3 * k + 2], &st[k]))
      return 0;
  }
  for (int k = 0; k < 5; k++)
    if (!inum(env, argv[j + k], &sizes[k])) return 0;
  if (!num(env, argv[j + 5], &scale)) return 0;
  a->N = sizes[0], a->Tq = sizes[1], a->Tk = sizes[2], a->H = sizes[3], a->hd = sizes[4];
  a->scale = (float)scale;
  long T[3] = {a->Tq, a->Tk, a->Tk};
  for (int k = 0; k < 3; k++) {
    long last = off[k] + (a->N * T[k] - 1) * st[k] + a->H * a->hd;
    if (a->N <= 0 || T[k] <= 0 || off[k] < 0 || st[k] < a->H * a->hd || (size_t)last > lens[k])
      return fail(env, "attention: q/k/v layout does not fit its array");
  }
  a->q = p[0] + off[0], a->k = p[1] + off[1], a->v = p[2] + off[2];
  a->qs = st[0], a->ks = st[1], a->vs = st[2];
  return 1;
}

// attnForward(q, qOff, qStride, k, kOff, kStride, v, vOff, vStride, out, probs, N, Tq, Tk, H, hd, scale)
// probs may be null: nothing kept for a backward pass.
static napi_value attn_fwd(napi_env env, napi_callback_info info) {
  GET_ARGS(17);
  struct attn_args a;
  size_t lens[3], nout, np = 0;
  long off[3];
  float *out, *probs = NULL;
  napi_valuetype pt;
  if (napi_typeof(env, argv[10], &pt) != napi_ok) return NULL;
  int keep = pt != napi_null && pt != napi_undefined;
  if (!attn_parse(env, argv, 0, 11, &a, lens, off) || !f32(env, argv[9], &out, &nout) || (keep && !f32(env, argv[10], &probs, &np)))
    return NULL;
  if (nout < (size_t)(a.N * a.Tq * a.H * a.hd) || (keep && np < (size_t)(a.N * a.H * a.Tq * a.Tk))) {
    fail(env, "attnForward: out or probs too small");
    return NULL;
  }
  attn_forward(&a, out, probs);
  return NULL;
}

// attnBackward(q, qOff, qStride, k, kOff, kStride, v, vOff, vStride, probs, dout, dq, dk, dv, N, Tq, Tk, H, hd, scale)
// dq/dk/dv have the layout (offset, row stride, length) of q/k/v.
static napi_value attn_bwd(napi_env env, napi_callback_info info) {
  GET_ARGS(20);
  struct attn_args a;
  size_t lens[3], np, ndo, nd[3];
  long off[3];
  float *probs, *dout, *d[3];
  if (!attn_parse(env, argv, 0, 14, &a, lens, off) || !f32(env, argv[9], &probs, &np) || !f32(env, argv[10], &dout, &ndo) ||
      !f32(env, argv[11], &d[0], &nd[0]) || !f32(env, argv[12], &d[1], &nd[1]) || !f32(env, argv[13], &d[2], &nd[2]))
    return NULL;
  if (np < (size_t)(a.N * a.H * a.Tq * a.Tk) || ndo < (size_t)(a.N * a.Tq * a.H * a.hd) || nd[0] < lens[0] ||
      nd[1] < lens[1] || nd[2] < lens[2]) {
    fail(env, "attnBackward: probs, dout or a gradient array too small");
    return NULL;
  }
  attn_backward(&a, probs, dout, d[0] + off[0], d[1] + off[1], d[2] + off[2]);
  return NULL;
}

// adamw(p, g, m, v, p1, m1, v1, [beta1, 1-beta1, beta2, 1-beta2, sqrtBc2, eps, keep, stepSize, decay])
static napi_value adamw(napi_env env, napi_callback_info info) {
  GET_ARGS(8);
  float *a[7];
  size_t n[7];
  for (int i = 0; i < 7; i++)
    if (!f32(env, argv[i], &a[i], &n[i])) return NULL;
  for (int i = 1; i < 7; i++)
    if (n[i] != n[0]) {
      fail(env, "adamw: arrays differ in length");
      return NULL;
    }
  double k[9];
  uint32_t len;
  if (napi_get_array_length(env, argv[7], &len) != napi_ok || len != 9) {
    fail(env, "adamw: expected 9 constants");
    return NULL;
  }
  for (uint32_t i = 0; i < 9; i++) {
    napi_value e;
    if (napi_get_element(env, argv[7], i, &e) != napi_ok || !num(env, e, &k[i])) return NULL;
  }
  struct adamw_consts c = {(float)k[0], (float)k[1], (float)k[2], (float)k[3], (float)k[4],
                           (float)k[5], (float)k[6], (float)k[7], k[8] != 0};
  adamw_update(a[0], a[1], a[2], a[3], a[4], a[5], a[6], (long)n[0], &c);
  return NULL;
}

// ema(e, p, e1, decay, oneMinusDecay): e1 = e decay + p (1 - decay), float32 constants.
static napi_value ema(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  float *a[3];
  size_t n[3];
  double d, omd;
  for (int i = 0; i < 3; i++)
    if (!f32(env, argv[i], &a[i], &n[i])) return NULL;
  if (n[1] != n[0] || n[2] != n[0]) {
    fail(env, "ema: arrays differ in length");
    return NULL;
  }
  if (!num(env, argv[3], &d) || !num(env, argv[4], &omd)) return NULL;
  ema_update(a[0], a[1], a[2], (long)n[0], (float)d, (float)omd);
  return NULL;
}

// ---- convolution (conv.c) ----------------------------------------------------------------

// conv2d(mode, a, b, out, [N, H, W, C, OH, OW, OC, FH, FW, SH, SW, DH, DW, PT, PL])
// mode 0: out = conv(x = a, w = b); 1: out = dx from (dy = a, w = b); 2: out = dw from (x = a, dy = b);
// 3: out = maxPool(a); 4: out = avgPool(a) (b unused; OC = C; FH/FW the window).
static napi_value conv2d(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  long mode, v[15];
  float *a, *b, *o;
  size_t na, nb, no;
  if (!inum(env, argv[0], &mode) || !f32(env, argv[1], &a, &na) || !f32(env, argv[2], &b, &nb) ||
      !f32(env, argv[3], &o, &no))
    return NULL;
  uint32_t len;
  if (napi_get_array_length(env, argv[4], &len) != napi_ok || len != 15) {
    fail(env, "conv2d: expected 15 geometry numbers");
    return NULL;
  }
  for (uint32_t i = 0; i < 15; i++) {
    napi_value e;
    if (napi_get_element(env, argv[4], i, &e) != napi_ok || !inum(env, e, &v[i])) return NULL;
  }
  struct conv_geom g = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14]};
  for (int i = 0; i < 13; i++)
    if (v[i] <= 0) {
      fail(env, "conv2d: sizes, strides and dilations must be positive");
      return NULL;
    }
  size_t nx = (size_t)(g.N * g.H * g.W * g.C), ny = (size_t)(g.N * g.OH * g.OW * g.OC),
         nw = (size_t)(g.FH * g.FW * g.C * g.OC);
  size_t want[3][3] = {{nx, nw, ny}, {ny, nw, nx}, {nx, ny, nw}};
  if (mode < 0 || mode > 4) {
    fail(env, "conv2d: bad mode");
    return NULL;
  }
  if (mode <= 2 && (na < want[mode][0] || nb < want[mode][1] || no < want[mode][2])) {
    fail(env, "conv2d: arrays too small for the geometry");
    return NULL;
  }
  if (mode == 3 || mode == 4) {
    if (na < nx || no < ny || g.OC != g.C) {
      fail(env, "pool2d: arrays too small for the geometry");
      return NULL;
    }
    pool2d(mode == 4, a, o, &g);
    return NULL;
  }
  if (mode == 0) conv2d_forward(a, b, o, &g);
  else if (mode == 1) conv2d_backprop_input(a, b, o, &g);
  else conv2d_backprop_filter(a, b, o, &g);
  return NULL;
}

// ---- float64 linear algebra for the FID (linalg.c) ------------------------------------------

static int f64(napi_env env, napi_value v, double **p, size_t *n) {
  napi_typedarray_type t;
  size_t len;
  void *data;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &t, &len, &data, &ab, &off) != napi_ok || t != napi_float64_array) {
    napi_throw_type_error(env, NULL, "ditnative: expected a Float64Array");
    return 0;
  }
  *p = (double *)data;
  *n = len;
  return 1;
}

// featureCovariance(x: Float32Array | Float64Array, n, d, mu: Float64Array(d), sigma: Float64Array(d*d))
static napi_value feature_cov(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  napi_typedarray_type t;
  size_t nx;
  void *x;
  napi_value ab;
  size_t off;
  long n, d;
  double *mu, *sigma;
  size_t nmu, nsigma;
  if (napi_get_typedarray_info(env, argv[0], &t, &nx, &x, &ab, &off) != napi_ok ||
      (t != napi_float32_array && t != napi_float64_array)) {
    napi_throw_type_error(env, NULL, "featureCovariance: expected a Float32Array or Float64Array of features");
    return NULL;
  }
  if (!inum(env, argv[1], &n) || !inum(env, argv[2], &d) || !f64(env, argv[3], &mu, &nmu) ||
      !f64(env, argv[4], &sigma, &nsigma))
    return NULL;
  if (n < 2 || d < 1 || nx != (size_t)(n * d) || nmu != (size_t)d || nsigma != (size_t)(d * d)) {
    fail(env, "featureCovariance: arrays do not match n x d (n >= 2)");
    return NULL;
  }
  int rc = t == napi_float32_array ? feature_covariance((const float *)x, NULL, n, d, mu, sigma)
                                   : feature_covariance(NULL, (const double *)x, n, d, mu, sigma);
  if (rc != 0) fail(env, "featureCovariance: out of memory");
  return NULL;
}

// traceSqrtProduct(s1, s2, n, eig: Float64Array(n), resid: Float64Array(n)) -> rank of s1
static napi_value trace_sqrt(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  double *s1, *s2, *eig, *resid;
  size_t n1, n2, ne, nr;
  long n;
  if (!f64(env, argv[0], &s1, &n1) || !f64(env, argv[1], &s2, &n2) || !inum(env, argv[2], &n) ||
      !f64(env, argv[3], &eig, &ne) || !f64(env, argv[4], &resid, &nr))
    return NULL;
  if (n < 1 || n1 != (size_t)(n * n) || n2 != n1 || ne < (size_t)n || nr < (size_t)n) {
    fail(env, "traceSqrtProduct: arrays do not match n x n");
    return NULL;
  }
  long rank = trace_sqrt_product(s1, s2, n, eig, resid);
  if (rank == -1) {
    fail(env, "traceSqrtProduct: out of memory");
    return NULL;
  }
  if (rank < 0) {
    fail(env, "traceSqrtProduct: LAPACK (dpstrf/dsyevd) failed");
    return NULL;
  }
  napi_value v;
  napi_create_int32(env, (int32_t)rank, &v);
  return v;
}

// ---- precision/recall block loops (manifold.c) ------------------------------------------------

static int u8(napi_env env, napi_value v, uint8_t **p, size_t *n) {
  napi_typedarray_type t;
  void *data;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &t, n, &data, &ab, &off) != napi_ok || t != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "ditnative: expected a Uint8Array");
    return 0;
  }
  *p = (uint8_t *)data;
  return 1;
}

// radiiBlock(uv, rows, w, r0, c0, mirrorFrom, norms, best, worst, k1)
static napi_value radii_blk(napi_env env, napi_callback_info info) {
  GET_ARGS(10);
  float *uv, *norms;
  double *best, *worst;
  size_t nuv, nn, nb, nw;
  long rows, w, r0, c0, mf, k1;
  if (!f32(env, argv[0], &uv, &nuv) || !inum(env, argv[1], &rows) || !inum(env, argv[2], &w) || !inum(env, argv[3], &r0) ||
      !inum(env, argv[4], &c0) || !inum(env, argv[5], &mf) || !f32(env, argv[6], &norms, &nn) ||
      !f64(env, argv[7], &best, &nb) || !f64(env, argv[8], &worst, &nw) || !inum(env, argv[9], &k1))
    return NULL;
  if (rows < 0 || w < 0 || r0 < 0 || c0 < 0 || k1 < 1 || nuv < (size_t)(rows * w) || (size_t)(r0 + rows) > nn ||
      (size_t)(c0 + w) > nn || nw != nn || nb != nn * (size_t)k1 || mf < c0 || mf > c0 + w) {
    fail(env, "radiiBlock: block does not fit its arrays");
    return NULL;
  }
  radii_block(uv, rows, w, r0, c0, mf, norms, best, worst, k1);
  return NULL;
}

// prBlock(uv, rows, w, r0, c0, refNorms, sampleNorms, refRadii, sampleRadii, refIn, sampleIn)
static napi_value pr_blk(napi_env env, napi_callback_info info) {
  GET_ARGS(11);
  float *uv, *nr, *ns, *rr, *rs;
  uint8_t *ri, *si;
  size_t nuv, nnr, nns, nrr, nrs, nri, nsi;
  long rows, w, r0, c0;
  if (!f32(env, argv[0], &uv, &nuv) || !inum(env, argv[1], &rows) || !inum(env, argv[2], &w) || !inum(env, argv[3], &r0) ||
      !inum(env, argv[4], &c0) || !f32(env, argv[5], &nr, &nnr) || !f32(env, argv[6], &ns, &nns) ||
      !f32(env, argv[7], &rr, &nrr) || !f32(env, argv[8], &rs, &nrs) || !u8(env, argv[9], &ri, &nri) ||
      !u8(env, argv[10], &si, &nsi))
    return NULL;
  if (rows < 0 || w < 0 || r0 < 0 || c0 < 0 || nuv < (size_t)(rows * w) || (size_t)(r0 + rows) > nnr ||
      (size_t)(c0 + w) > nns || nrr != nnr || nri != nnr || nrs != nns || nsi != nns) {
    fail(env, "prBlock: block does not fit its arrays");
    return NULL;
  }
  pr_block(uv, rows, w, r0, c0, nr, ns, rr, rs, ri, si);
  return NULL;
}

// ---- setup -------------------------------------------------------------------------------

static napi_value set_threads(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  long n;
  if (!inum(env, argv[0], &n)) return NULL;
  if (n < 1) n = 1;
  openblas_set_num_threads((int)n);
  return NULL;
}

static napi_value get_threads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  napi_create_int32(env, openblas_get_num_threads(), &v);
  return v;
}

// setGemm(mode): 'auto' (the own kernel where it is faster, when the CPU can run it),
// 'openblas' (every product), or 'avx2' / 'avx512' (that kernel, for tests and A/B timing).
// Returns the kernel now used (gemm.h's dit_gemm_kernel).
static napi_value set_gemm(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  char mode[16];
  size_t len;
  if (napi_get_value_string_utf8(env, argv[0], mode, sizeof mode, &len) != napi_ok) {
    fail(env, "setGemm: mode must be a string");
    return NULL;
  }
  if (!dit_gemm_use(mode)) {
    char msg[128];
    snprintf(msg, sizeof msg, "setGemm: mode must be 'auto', 'openblas', 'avx2' or 'avx512' (one this CPU runs), got '%s'", mode);
    fail(env, msg);
    return NULL;
  }
  napi_value v;
  napi_create_string_utf8(env, dit_gemm_kernel(), NAPI_AUTO_LENGTH, &v);
  return v;
}

static napi_value blas_config(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  const char *s = openblas_get_config();
  napi_create_string_utf8(env, s ? s : "unknown", NAPI_AUTO_LENGTH, &v);
  return v;
}

#define EXPORT(name, fn)                                                             \
  do {                                                                               \
    napi_value f_;                                                                   \
    if (napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f_) != napi_ok || \
        napi_set_named_property(env, exports, name, f_) != napi_ok)                  \
      return NULL;                                                                   \
  } while (0)

static napi_value init(napi_env env, napi_value exports) {
  EXPORT("matmul", matmul);
  EXPORT("copy", copy);
  EXPORT("binary", binary);
  EXPORT("unary", unary);
  EXPORT("reduce", reduce);
  EXPORT("softmax", softmax);
  EXPORT("geluTanhGrad", gelu_tanh_grad);
  EXPORT("mlpForward", mlp_forward);
  EXPORT("mlpBackward", mlp_backward);
  EXPORT("lnModForward", ln_mod_fwd);
  EXPORT("lnModBackward", ln_mod_bwd);
  EXPORT("gatedResidual", gated_res_fwd);
  EXPORT("gatedResidualGrad", gated_res_bwd);
  EXPORT("attnForward", attn_fwd);
  EXPORT("attnBackward", attn_bwd);
  EXPORT("adamw", adamw);
  EXPORT("ema", ema);
  EXPORT("conv2d", conv2d);
  EXPORT("featureCovariance", feature_cov);
  EXPORT("traceSqrtProduct", trace_sqrt);
  EXPORT("radiiBlock", radii_blk);
  EXPORT("prBlock", pr_blk);
  EXPORT("setThreads", set_threads);
  EXPORT("getThreads", get_threads);
  EXPORT("blasConfig", blas_config);
  EXPORT("setGemm", set_gemm);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
