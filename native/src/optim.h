// Fused optimizer updates, see optim.c.
#pragma once

// Float32 constants of one AdamW step, rounded by the caller exactly as the composite
// version rounds them (each a float32 scalar tensor there).
struct adamw_consts {
  float beta1, one_minus_beta1, beta2, one_minus_beta2, sqrt_bc2, eps, keep, step_size;
  int decay; // apply p * keep (keep = 1 - lr * weight_decay)
};

// m1 = m b1 + g (1 - b1); v1 = v b2 + g^2 (1 - b2);
// p1 = p keep - (m1 / (sqrt(v1) / sqrt_bc2 + eps)) step_size. The outputs must not overlap the inputs.
void adamw_update(const float *restrict p, const float *restrict g, const float *restrict m, const float *restrict v,
                  float *restrict p1, float *restrict m1, float *restrict v1, long n, const struct adamw_consts *c);

// e1 = e decay + p (1 - decay): the weight EMA's update, rounded like the tf ops (two products, one sum).
void ema_update(const float *e, const float *p, float *e1, long n, float decay, float one_minus_decay);
