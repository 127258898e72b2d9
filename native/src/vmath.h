// Transcendental loops, compiled apart with -ffast-math so that gcc vectorizes them through
// glibc's libmvec (expf/tanhf/logf... 8 lanes at a time). Nothing here tests for NaN.
#pragma once

// Unary op codes shared with lib/backend/native.ts (UNARY there). Codes below U_FAST_FIRST
// are plain arithmetic handled in ditnative.c (exact IEEE semantics, NaN-safe).
enum {
  U_NEG, U_SQUARE, U_SQRT, U_RSQRT, U_RECIPROCAL, U_ABS, U_RELU, U_STEP, U_LEAKYRELU, U_RELU6, U_CUBE,
  U_FAST_FIRST,
  U_EXP = U_FAST_FIRST, U_LOG, U_TANH, U_SIGMOID, U_SIN, U_COS, U_SOFTPLUS, U_LOG1P, U_EXPM1,
  U_ERF, U_ELU, U_GELU_TANH, U_COUNT
};

// out = f(x) elementwise; alpha is the op's parameter where it has one. 0 for an unknown op.
int vm_unary(int op, const float *x, float *out, long n, float alpha);
// out = softmax(x) over rows of length cols.
void vm_softmax(const float *x, float *out, long rows, long cols);
// dx = dy * gelu_tanh'(x).
void vm_gelu_tanh_grad(const float *x, const float *dy, float *dx, long n);
