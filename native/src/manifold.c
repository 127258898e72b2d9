// The per-block loops of lib/metrics/precision_recall.ts in C, value for value: the float32
// distance max(fl(fl(|u|^2 - 2 u.v) + |v|^2), 0) (built without FMA contraction, so each
// operation rounds as the TypeScript's Math.fround does) and the same sorted insertion.
#include "manifold.h"

static inline float dist(float nu, float uv, float nv) {
  float v = (nu - 2.0f * uv) + nv;
  return v > 0.0f ? v : 0.0f;
}

static inline void insert(double *best, double *worst, long k1, long row, double v) {
  double *b = best + row * k1;
  long p = k1 - 1;
  while (p > 0 && b[p - 1] > v) {
    b[p] = b[p - 1];
    p--;
  }
  b[p] = v;
  worst[row] = b[k1 - 1];
}

void radii_block(const float *uv, long rows, long w, long r0, long c0, long mirror_from, const float *norms,
                 double *best, double *worst, long k1) {
  long c1 = c0 + w;
  for (long i = r0; i < r0 + rows; i++) {
    const float ni = norms[i], *row = uv + (i - r0) * w;
    double wi = worst[i];
    for (long j = c0; j < mirror_from; j++) {
      float dij = dist(ni, row[j - c0], norms[j]);
      if (dij < wi) {
        insert(best, worst, k1, i, dij);
        wi = worst[i];
      }
    }
    for (long j = mirror_from; j < c1; j++) {
      float m = row[j - c0], nj = norms[j];
      float dij = dist(ni, m, nj);
      if (dij < wi) {
        insert(best, worst, k1, i, dij);
        wi = worst[i];
      }
      float dji = dist(nj, m, ni);
      if (dji < worst[j]) insert(best, worst, k1, j, dji);
    }
  }
}

void pr_block(const float *uv, long rows, long w, long r0, long c0, const float *nr, const float *ns,
              const float *ref_radii, const float *sample_radii, uint8_t *ref_in, uint8_t *sample_in) {
  long c1 = c0 + w;
  for (long i = r0; i < r0 + rows; i++) {
    const float ni = nr[i], ri = ref_radii[i], *row = uv + (i - r0) * w;
    uint8_t inside = ref_in[i];
    for (long j = c0; j < c1; j++) {
      float dij = dist(ni, row[j - c0], ns[j]);
      if (dij <= ri) sample_in[j] = 1;
      if (dij <= sample_radii[j]) inside = 1;
    }
    ref_in[i] = inside;
  }
}
