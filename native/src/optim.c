// Fused AdamW update. Built without reassociation or FMA contraction (native/build.sh), so
// every step rounds like the composite tf-op version in lib/ops (same values, one pass).
#include "optim.h"

#include <math.h>

// The outputs are never the inputs (restrict) and the constants are read once: otherwise
// gcc keeps the loop scalar (too many possible aliasings to check at run time; one sqrtss
// and two divss an element). Vector sqrt, division, products and sums round exactly like
// the scalar ones.
void adamw_update(const float *restrict p, const float *restrict g, const float *restrict m, const float *restrict v,
                  float *restrict p1, float *restrict m1, float *restrict v1, long n, const struct adamw_consts *c) {
  const float beta1 = c->beta1, omb1 = c->one_minus_beta1, beta2 = c->beta2, omb2 = c->one_minus_beta2;
  // Without decay keep is 1, and p * 1 is p exactly: one loop serves both.
  const float sqrt_bc2 = c->sqrt_bc2, eps = c->eps, keep = c->decay ? c->keep : 1.0f, step = c->step_size;
  for (long i = 0; i < n; i++) {
    float mi = m[i] * beta1 + g[i] * omb1;
    float vi = v[i] * beta2 + (g[i] * g[i]) * omb2;
    float denom = sqrtf(vi) / sqrt_bc2 + eps;
    float pd = p[i] * keep;
    m1[i] = mi;
    v1[i] = vi;
    p1[i] = pd - (mi / denom) * step;
  }
}

void ema_update(const float *e, const float *p, float *e1, long n, float decay, float one_minus_decay) {
  for (long i = 0; i < n; i++) e1[i] = e[i] * decay + p[i] * one_minus_decay;
}
