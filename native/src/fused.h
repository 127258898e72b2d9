// Fused DiT kernels, see fused.c.
#pragma once

void ln_mod_forward(const float *x, const float *shift, const float *scale, float *y, long N, long T, long D,
                    float eps);
void ln_mod_backward(const float *x, const float *scale, const float *dy, float *dx, float *dshift, float *dscale,
                     long N, long T, long D, float eps);
void gated_residual_forward(const float *x, const float *h, const float *g, float *out, long N, long T, long D);
void gated_residual_backward(const float *h, const float *g, const float *dy, float *dh, float *dg, long N, long T, long D);

// Where multi-head attention finds its operands: q/k/v start at the given pointers (offsets
// already applied) and step qs/ks/vs floats from one token to the next.
struct attn_args {
  const float *q, *k, *v;
  long qs, ks, vs;
  long N, Tq, Tk, H, hd;
  float scale;
};
void attn_forward(const struct attn_args *a, float *out, float *probs);
void attn_backward(const struct attn_args *a, const float *probs, const float *dout, float *dq, float *dk, float *dv);
