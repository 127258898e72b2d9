// Fused DiT kernels (forward and backward) behind lib/ops: layer norm with the adaLN
// modulation, and multi-head attention reading q/k/v in place (row strides instead of
// split/transpose copies). One pass over memory where the unfused graph makes ten.
#include "fused.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vmath.h"

// y = (x - mean) * rstd * (1 + scale[n]) + shift[n] per row of D; rows are [N, T].
// shift/scale may be NULL (plain layer norm without affine).
void ln_mod_forward(const float *x, const float *shift, const float *scale, float *y, long N, long T, long D,
                    float eps) {
  for (long n = 0; n < N; n++) {
    const float *sh = shift ? shift + n * D : NULL, *sc = scale ? scale + n * D : NULL;
    for (long t = 0; t < T; t++) {
      const float *xr = x + (n * T + t) * D;
      float *yr = y + (n * T + t) * D;
      float mean = 0.0f, var = 0.0f;
      for (long d = 0; d < D; d++) mean += xr[d];
      mean /= (float)D;
      for (long d = 0; d < D; d++) var += (xr[d] - mean) * (xr[d] - mean);
      float rstd = 1.0f / sqrtf(var / (float)D + eps);
      if (sc)
        for (long d = 0; d < D; d++) yr[d] = (xr[d] - mean) * rstd * (1.0f + sc[d]) + sh[d];
      else
        for (long d = 0; d < D; d++) yr[d] = (xr[d] - mean) * rstd;
    }
  }
}

// Gradients of ln_mod_forward. dshift/dscale ([N, D]) are written only when scale is given.
// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * (1 + scale).
void ln_mod_backward(const float *x, const float *scale, const float *dy, float *dx, float *dshift, float *dscale,
                     long N, long T, long D, float eps) {
  float *g = malloc(sizeof(float) * D), *xh = malloc(sizeof(float) * D);
  if (!g || !xh) abort();
  for (long n = 0; n < N; n++) {
    const float *sc = scale ? scale + n * D : NULL;
    if (sc) {
      memset(dshift + n * D, 0, sizeof(float) * D);
      memset(dscale + n * D, 0, sizeof(float) * D);
    }
    for (long t = 0; t < T; t++) {
      const float *xr = x + (n * T + t) * D, *dyr = dy + (n * T + t) * D;
      float *dxr = dx + (n * T + t) * D;
      float mean = 0.0f, var = 0.0f;
      for (long d = 0; d < D; d++) mean += xr[d];
      mean /= (float)D;
      for (long d = 0; d < D; d++) var += (xr[d] - mean) * (xr[d] - mean);
      float rstd = 1.0f / sqrtf(var / (float)D + eps);
      for (long d = 0; d < D; d++) xh[d] = (xr[d] - mean) * rstd;
      if (sc) {
        float *ds = dshift + n * D, *dc = dscale + n * D;
        for (long d = 0; d < D; d++) {
          ds[d] += dyr[d];
          dc[d] += dyr[d] * xh[d];
          g[d] = dyr[d] * (1.0f + sc[d]);
        }
      } else {
        memcpy(g, dyr, sizeof(float) * D);
      }
      float mg = 0.0f, mgx = 0.0f;
      for (long d = 0; d < D; d++) {
        mg += g[d];
        mgx += g[d] * xh[d];
      }
      mg /= (float)D;
      mgx /= (float)D;
      for (long d = 0; d < D; d++) dxr[d] = rstd * (g[d] - mg - xh[d] * mgx);
    }
  }
  free(g);
  free(xh);
}

// Softmax attention for every (sample n, head h). Token i of sample n, head h reads
// q[qo + n*Tq*qs + i*qs + h*hd .. +hd] (qs = row stride, so a fused [N, T, 3D] qkv tensor
// is read in place); same for k and v. out is [N, Tq, H*hd]; probs [N, H, Tq, Tk] is kept
// for the backward pass. With probs NULL (no gradient needed) every head reuses one
// [Tq, Tk] scratch that stays in cache instead of streaming [N, H, Tq, Tk] through memory.
void attn_forward(const struct attn_args *a, float *out, float *probs) {
  const long D = a->H * a->hd;
  float *scratch = probs ? NULL : malloc(sizeof(float) * a->Tq * a->Tk);
  if (!probs && !scratch) abort();
  for (long n = 0; n < a->N; n++) {
    for (long h = 0; h < a->H; h++) {
      const float *Q = a->q + n * a->Tq * a->qs + h * a->hd;
      const float *K = a->k + n * a->Tk * a->ks + h * a->hd;
      const float *V = a->v + n * a->Tk * a->vs + h * a->hd;
      float *P = probs ? probs + (n * a->H + h) * a->Tq * a->Tk : scratch;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, a->Tq, a->Tk, a->hd, a->scale, Q, a->qs, K, a->ks, 0.0f,
                  P, a->Tk);
      vm_softmax(P, P, a->Tq, a->Tk);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, a->Tq, a->hd, a->Tk, 1.0f, P, a->Tk, V, a->vs, 0.0f,
                  out + n * a->Tq * D + h * a->hd, D);
    }
  }
  free(scratch);
}

// Gradients of attn_forward given dout [N, Tq, D]; dq/dk/dv use the same layout (offsets,
// row strides) as q/k/v. With a fused qkv they are thirds of one [N, T, 3D] gradient.
//   dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dP * P)), dQ = s dS K, dK = s dS^T Q.
void attn_backward(const struct attn_args *a, const float *probs, const float *dout, float *dq, float *dk, float *dv) {
  const long D = a->H * a->hd;
  float *dS = malloc(sizeof(float) * a->Tq * a->Tk);
  if (!dS) abort();
  for (long n = 0; n < a->N; n++) {
    for (long h = 0; h < a->H; h++) {
      const float *Q = a->q + n * a->Tq * a->qs + h * a->hd;
      const float *K = a->k + n * a->Tk * a->ks + h * a->hd;
      const float *V = a->v + n * a->Tk * a->vs + h * a->hd;
      const float *P = probs + (n * a->H + h) * a->Tq * a->Tk;
      const float *dO = dout + n * a->Tq * D + h * a->hd;
      float *dQ = dq + n * a->Tq * a->qs + h * a->hd;
      float *dK = dk + n * a->Tk * a->ks + h * a->hd;
      float *dV = dv + n * a->Tk * a->vs + h * a->hd;
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, a->Tk, a->hd, a->Tq, 1.0f, P, a->Tk, dO, D, 0.0f, dV,
                  a->vs);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, a->Tq, a->Tk, a->hd, 1.0f, dO, D, V, a->vs, 0.0f, dS,
                  a->Tk);
      for (long i = 0; i < a->Tq; i++) {
        const float *pr = P + i * a->Tk;
        float *sr = dS + i * a->Tk;
        float dot = 0.0f;
        for (long j = 0; j < a->Tk; j++) dot += sr[j] * pr[j];
        for (long j = 0; j < a->Tk; j++) sr[j] = pr[j] * (sr[j] - dot);
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, a->Tq, a->hd, a->Tk, a->scale, dS, a->Tk, K, a->ks, 0.0f,
                  dQ, a->qs);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, a->Tk, a->hd, a->Tq, a->scale, dS, a->Tk, Q, a->qs, 0.0f,
                  dK, a->ks);
    }
  }
  free(dS);
}

// out = x + g[n] * h per token of D: adaLN-Zero's gated residual (DiT Sec. 3.2) in one pass.
// Each value rounds as the composite tf ops round it (the product, then the sum; no FMA).
void gated_residual_forward(const float *x, const float *h, const float *g, float *out, long N, long T, long D) {
  for (long n = 0; n < N; n++) {
    const float *gn = g + n * D;
    for (long t = 0; t < T; t++) {
      const long o = (n * T + t) * D;
      for (long d = 0; d < D; d++) out[o + d] = x[o + d] + h[o + d] * gn[d];
    }
  }
}

// Its gradient: dh = g[n] * dy and dg[n] = sum over tokens of h * dy (dx = dy needs no kernel).
void gated_residual_backward(const float *h, const float *g, const float *dy, float *dh, float *dg, long N, long T, long D) {
  for (long n = 0; n < N; n++) {
    const float *gn = g + n * D;
    float *dgn = dg + n * D;
    for (long d = 0; d < D; d++) dgn[d] = 0.0f;
    for (long t = 0; t < T; t++) {
      const long o = (n * T + t) * D;
      for (long d = 0; d < D; d++) {
        dh[o + d] = dy[o + d] * gn[d];
        dgn[d] += h[o + d] * dy[o + d];
      }
    }
  }
}
