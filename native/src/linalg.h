// Float64 linear algebra for the FID through OpenBLAS's BLAS and LAPACK, see linalg.c.
#pragma once

// Mean (mu, d) and unbiased covariance (sigma, d x d row-major, symmetric) of n >= 2
// row-major feature vectors: np.mean / np.cov(rowvar=False), centred first, in float64.
// Exactly one of xf (float32) and xd (float64) is non-NULL. Returns 0, or -1 when out of memory.
int feature_covariance(const float *xf, const double *xd, long n, long d, double *mu, double *sigma);

// tr sqrtm(S1 S2) through the eigenvalues of L^T S2[P, P] L, S1[P, P] = L L^T (pivoted
// Cholesky, dpstrf, stopping at pivots <= n eps max diag(S1)); S1 is read by its lower
// triangle (row-major), S2 whole. Writes the eigenvalues (ascending) to eig[0..rank)
// and the diagonal of what the factorisation left out to resid[0..n-rank). Returns the
// rank, -1 when out of memory, -2 when a LAPACK routine fails.
long trace_sqrt_product(const double *s1, const double *s2, long n, double *eig, double *resid);
