// Fused AdamW update. Built without reassociation or FMA contraction (native/build.sh), so
// every step rounds like the composite tf-op version in lib/ops (same values, one pass).
#include "optim.h"

#include <math.h>

void adamw_update(const float *p, const float *g, const float *m, const float *v, float *p1, float *m1, float *v1,
                  long n, const struct adamw_consts *c) {
  for (long i = 0; i < n; i++) {
    float mi = m[i] * c->beta1 + g[i] * c->one_minus_beta1;
    float vi = v[i] * c->beta2 + (g[i] * g[i]) * c->one_minus_beta2;
    float denom = sqrtf(vi) / c->sqrt_bc2 + c->eps;
    float pd = c->decay ? p[i] * c->keep : p[i];
    m1[i] = mi;
    v1[i] = vi;
    p1[i] = pd - (mi / denom) * c->step_size;
  }
}

void ema_update(const float *e, const float *p, float *e1, long n, float decay, float one_minus_decay) {
  for (long i = 0; i < n; i++) e1[i] = e[i] * decay + p[i] * one_minus_decay;
}
