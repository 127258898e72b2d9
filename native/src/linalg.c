// Float64 linear algebra for the FID (lib/metrics/linalg_native.ts): the covariance of
// feature vectors (dsyrk) and tr sqrtm(S1 S2) (dpstrf, dtrmm/dgemm, dsyevd), the same
// algorithm as lib/metrics/linalg.ts with OpenBLAS doing the O(n^3) work. Matrices are
// row-major: a row-major lower triangle is LAPACK's (column-major) upper one.
#include <cblas.h>
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "linalg.h"

// Debian's libopenblas exports LAPACK's Fortran symbols but no LAPACKE (NO_LAPACKE):
// declared here with gfortran's hidden string lengths at the end (LP64 integers).
extern void dpstrf_(const char *uplo, const int *n, double *a, const int *lda, int *piv, int *rank, const double *tol,
                    double *work, int *info, size_t uplo_len);
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
                    const int *lwork, int *iwork, const int *liwork, int *info, size_t jobz_len, size_t uplo_len);

// Rows centred per dsyrk call: 512 x d doubles stay well inside L2/L3 per panel.
#define COV_CHUNK 512

int feature_covariance(const float *xf, const double *xd, long n, long d, double *mu, double *sigma) {
  double *buf = malloc(sizeof(double) * COV_CHUNK * d);
  if (!buf) return -1;
  memset(mu, 0, sizeof(double) * d);
  // Summed in row order, as lib/metrics/fid.ts does, so the means agree to the last bit.
  for (long i = 0; i < n; i++) {
    if (xf) {
      const float *r = xf + i * d;
      for (long a = 0; a < d; a++) mu[a] += r[a];
    } else {
      const double *r = xd + i * d;
      for (long a = 0; a < d; a++) mu[a] += r[a];
    }
  }
  for (long a = 0; a < d; a++) mu[a] /= (double)n;
  memset(sigma, 0, sizeof(double) * d * d);
  for (long r0 = 0; r0 < n; r0 += COV_CHUNK) {
    long rows = n - r0 < COV_CHUNK ? n - r0 : COV_CHUNK;
    for (long r = 0; r < rows; r++) {
      double *dst = buf + r * d;
      if (xf) {
        const float *src = xf + (r0 + r) * d;
        for (long a = 0; a < d; a++) dst[a] = (double)src[a] - mu[a];
      } else {
        const double *src = xd + (r0 + r) * d;
        for (long a = 0; a < d; a++) dst[a] = src[a] - mu[a];
      }
    }
    // sigma (lower) += Xc^T Xc
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, (int)d, (int)rows, 1.0, buf, (int)d, 1.0, sigma, (int)d);
  }
  free(buf);
  double scale = 1.0 / (double)(n - 1); // np.cov multiplies by 1/fact
  for (long i = 0; i < d; i++) {
    for (long j = 0; j <= i; j++) {
      double v = sigma[i * d + j] * scale;
      sigma[i * d + j] = v;
      sigma[j * d + i] = v;
    }
  }
  return 0;
}

long trace_sqrt_product(const double *s1, const double *s2, long n, double *eig, double *resid) {
  int N = (int)n, rank = 0, info = 0;
  double *L = malloc(sizeof(double) * n * n), *work = malloc(sizeof(double) * 2 * n);
  int *piv = malloc(sizeof(int) * n);
  double *S2p = NULL, *W = NULL;
  long ret = -1;
  if (!L || !work || !piv) goto done;
  memcpy(L, s1, sizeof(double) * n * n);
  double maxd = 0;
  for (long i = 0; i < n; i++)
    if (s1[i * n + i] > maxd) maxd = s1[i * n + i];
  // linalg.ts's tolerance (n eps max diag, eps = DBL_EPSILON); LAPACK's default is half of it.
  double tol = (double)n * DBL_EPSILON * maxd;
  // 'U' of the column-major view = the row-major lower triangle; on exit that triangle holds
  // L (rows in pivoted order, columns < rank) with S1[P, P] = L L^T.
  dpstrf_("U", &N, L, &N, piv, &rank, &tol, work, &info, 1);
  if (info < 0) {
    ret = -2;
    goto done;
  }
  const long r = rank;
  // What the factorisation left out: S1[p_i, p_i] - |L[i, :r]|^2 for i >= r.
  for (long i = r; i < n; i++) {
    long p = piv[i] - 1;
    double s = s1[p * n + p];
    for (long k = 0; k < r; k++) s -= L[i * n + k] * L[i * n + k];
    resid[i - r] = s;
  }
  if (r == 0) {
    ret = 0;
    goto done;
  }
  S2p = malloc(sizeof(double) * n * n);
  W = malloc(sizeof(double) * r * n);
  if (!S2p || !W) goto done;
  for (long i = 0; i < n; i++) {
    const double *src = s2 + (long)(piv[i] - 1) * n;
    double *dst = S2p + i * n;
    for (long k = 0; k < n; k++) dst[k] = src[piv[k] - 1];
  }
  // L = [L11; L21] (L11 r x r lower triangular). W = L^T S2p = L11^T S2p[:r] + L21^T S2p[r:].
  memcpy(W, S2p, sizeof(double) * r * n);
  cblas_dtrmm(CblasRowMajor, CblasLeft, CblasLower, CblasTrans, CblasNonUnit, (int)r, N, 1.0, L, N, W, N);
  if (r < n)
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)r, N, (int)(n - r), 1.0, L + r * n, N, S2p + r * n, N,
                1.0, W, N);
  // B = W L = W[:, :r] L11 + W[:, r:] L21 (r x r), written over S2p, no longer needed.
  double *B = S2p;
  for (long i = 0; i < r; i++) memcpy(B + i * r, W + i * n, sizeof(double) * r);
  cblas_dtrmm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, (int)r, (int)r, 1.0, L, N, B, (int)r);
  if (r < n)
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)r, (int)r, (int)(n - r), 1.0, W + r, N, L + r * n, N, 1.0,
                B, (int)r);
  // Eigenvalues only, of B's row-major lower triangle.
  int R = (int)r, lwork = -1, liwork = -1, iw = 0;
  double wq = 0;
  dsyevd_("N", "U", &R, B, &R, eig, &wq, &lwork, &iw, &liwork, &info, 1, 1);
  if (info != 0) {
    ret = -2;
    goto done;
  }
  lwork = (int)wq;
  liwork = iw > 1 ? iw : 1;
  double *ework = malloc(sizeof(double) * (lwork > 1 ? lwork : 1));
  int *iwork = malloc(sizeof(int) * liwork);
  if (ework && iwork) {
    dsyevd_("N", "U", &R, B, &R, eig, ework, &lwork, iwork, &liwork, &info, 1, 1);
    ret = info == 0 ? r : -2;
  }
  free(ework);
  free(iwork);
done:
  free(L);
  free(work);
  free(piv);
  free(S2p);
  free(W);
  return ret;
}
