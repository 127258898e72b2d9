// Convolutions for the kit's autoencoder on the native backend. Output pixels are taken in
// chunks: the chunk's receptive fields are unrolled into a [P, FH*FW*C] matrix (im2col) so
// one sgemm does the chunk; chunks bound the scratch memory. A 1x1, stride-1, unpadded
// convolution is a plain matmul on the input.
#include "conv.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_FLOATS (1L << 20) // 4 MB of im2col scratch

static long kdim(const struct conv_geom *g) { return g->FH * g->FW * g->C; }

static int pointwise(const struct conv_geom *g) {
  return g->FH == 1 && g->FW == 1 && g->SH == 1 && g->SW == 1 && g->PT == 0 && g->PL == 0 && g->OH == g->H &&
         g->OW == g->W;
}

static long chunk_pixels(const struct conv_geom *g) {
  long p = CHUNK_FLOATS / kdim(g);
  return p < 1 ? 1 : p;
}

// cols[p - p0][(fh*FW + fw)*C + c] = x[oh*SH - PT + fh*DH, ow*SW - PL + fw*DW, c], 0 outside.
static void im2col(const float *xn, const struct conv_geom *g, long p0, long p1, float *cols) {
  const long K = kdim(g), C = g->C;
  for (long p = p0; p < p1; p++) {
    const long oh = p / g->OW, ow = p % g->OW;
    float *row = cols + (p - p0) * K;
    for (long fh = 0; fh < g->FH; fh++) {
      const long ih = oh * g->SH - g->PT + fh * g->DH;
      for (long fw = 0; fw < g->FW; fw++) {
        const long iw = ow * g->SW - g->PL + fw * g->DW;
        float *dst = row + (fh * g->FW + fw) * C;
        if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W)
          memset(dst, 0, sizeof(float) * C);
        else
          memcpy(dst, xn + (ih * g->W + iw) * C, sizeof(float) * C);
      }
    }
  }
}

// The adjoint of im2col: dxn[...] += cols[...].
static void col2im_add(float *dxn, const struct conv_geom *g, long p0, long p1, const float *cols) {
  const long K = kdim(g), C = g->C;
  for (long p = p0; p < p1; p++) {
    const long oh = p / g->OW, ow = p % g->OW;
    const float *row = cols + (p - p0) * K;
    for (long fh = 0; fh < g->FH; fh++) {
      const long ih = oh * g->SH - g->PT + fh * g->DH;
      if (ih < 0 || ih >= g->H) continue;
      for (long fw = 0; fw < g->FW; fw++) {
        const long iw = ow * g->SW - g->PL + fw * g->DW;
        if (iw < 0 || iw >= g->W) continue;
        float *dst = dxn + (ih * g->W + iw) * C;
        const float *src = row + (fh * g->FW + fw) * C;
        for (long c = 0; c < C; c++) dst[c] += src[c];
      }
    }
  }
}

void conv2d_forward(const float *x, const float *w, float *y, const struct conv_geom *g) {
  const long K = kdim(g), P = g->OH * g->OW, OC = g->OC;
  if (pointwise(g)) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->N * P, OC, K, 1.0f, x, K, w, OC, 0.0f, y, OC);
    return;
  }
  const long chunk = chunk_pixels(g);
  float *cols = malloc(sizeof(float) * chunk * K);
  if (!cols) abort();
  for (long n = 0; n < g->N; n++) {
    const float *xn = x + n * g->H * g->W * g->C;
    for (long p0 = 0; p0 < P; p0 += chunk) {
      const long p1 = p0 + chunk < P ? p0 + chunk : P;
      im2col(xn, g, p0, p1, cols);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p1 - p0, OC, K, 1.0f, cols, K, w, OC, 0.0f,
                  y + (n * P + p0) * OC, OC);
    }
  }
  free(cols);
}

// dx = col2im(dy @ w^T).
void conv2d_backprop_input(const float *dy, const float *w, float *dx, const struct conv_geom *g) {
  const long K = kdim(g), P = g->OH * g->OW, OC = g->OC;
  if (pointwise(g)) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->N * P, K, OC, 1.0f, dy, OC, w, OC, 0.0f, dx, K);
    return;
  }
  memset(dx, 0, sizeof(float) * g->N * g->H * g->W * g->C);
  const long chunk = chunk_pixels(g);
  float *cols = malloc(sizeof(float) * chunk * K);
  if (!cols) abort();
  for (long n = 0; n < g->N; n++) {
    float *dxn = dx + n * g->H * g->W * g->C;
    for (long p0 = 0; p0 < P; p0 += chunk) {
      const long p1 = p0 + chunk < P ? p0 + chunk : P;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p1 - p0, K, OC, 1.0f, dy + (n * P + p0) * OC, OC, w, OC,
                  0.0f, cols, K);
      col2im_add(dxn, g, p0, p1, cols);
    }
  }
  free(cols);
}

// dw = sum over images and chunks of im2col(x)^T @ dy.
void conv2d_backprop_filter(const float *x, const float *dy, float *dw, const struct conv_geom *g) {
  const long K = kdim(g), P = g->OH * g->OW, OC = g->OC;
  if (pointwise(g)) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, OC, g->N * P, 1.0f, x, K, dy, OC, 0.0f, dw, OC);
    return;
  }
  memset(dw, 0, sizeof(float) * K * OC);
  const long chunk = chunk_pixels(g);
  float *cols = malloc(sizeof(float) * chunk * K);
  if (!cols) abort();
  for (long n = 0; n < g->N; n++) {
    const float *xn = x + n * g->H * g->W * g->C;
    for (long p0 = 0; p0 < P; p0 += chunk) {
      const long p1 = p0 + chunk < P ? p0 + chunk : P;
      im2col(xn, g, p0, p1, cols);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, OC, p1 - p0, 1.0f, cols, K, dy + (n * P + p0) * OC, OC,
                  1.0f, dw, OC);
    }
  }
  free(cols);
}

// Max or average pooling over NHWC windows (dilation 1), channels innermost so the loops
// vectorize. As tfjs' cpu kernels: max skips NaN (a NaN never compares greater) and padding;
// average divides by the number of in-bounds elements.
void pool2d(int avg, const float *x, float *y, const struct conv_geom *g) {
  const long C = g->C;
  for (long n = 0; n < g->N; n++) {
    for (long oh = 0; oh < g->OH; oh++) {
      const long h0 = oh * g->SH - g->PT, h1 = h0 + g->FH;
      const long hs = h0 < 0 ? 0 : h0, he = h1 > g->H ? g->H : h1;
      for (long ow = 0; ow < g->OW; ow++) {
        const long w0 = ow * g->SW - g->PL, w1 = w0 + g->FW;
        const long ws = w0 < 0 ? 0 : w0, we = w1 > g->W ? g->W : w1;
        float *o = y + ((n * g->OH + oh) * g->OW + ow) * C;
        for (long c = 0; c < C; c++) o[c] = avg ? 0.0f : -INFINITY;
        for (long ih = hs; ih < he; ih++) {
          for (long iw = ws; iw < we; iw++) {
            const float *xp = x + ((n * g->H + ih) * g->W + iw) * C;
            if (avg)
              for (long c = 0; c < C; c++) o[c] += xp[c];
            else
              for (long c = 0; c < C; c++) o[c] = xp[c] > o[c] ? xp[c] : o[c];
          }
        }
        if (avg) {
          const float count = (float)((he - hs) * (we - ws));
          for (long c = 0; c < C; c++) o[c] /= count;
        }
      }
    }
  }
}
