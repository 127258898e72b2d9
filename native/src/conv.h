// 2-D convolution (NHWC, filter [FH, FW, C, OC]) as im2col + sgemm, see conv.c.
#pragma once

struct conv_geom {
  long N, H, W, C;     // input
  long OH, OW, OC;     // output
  long FH, FW;         // filter
  long SH, SW, DH, DW; // strides, dilations
  long PT, PL;         // padding before the first row / column
};

void conv2d_forward(const float *x, const float *w, float *y, const struct conv_geom *g);
void conv2d_backprop_input(const float *dy, const float *w, float *dx, const struct conv_geom *g);
void conv2d_backprop_filter(const float *x, const float *dy, float *dw, const struct conv_geom *g);
// Max (avg = 0) or average (avg = 1) pooling; the geometry's OC is C, FH/FW the window.
void pool2d(int avg, const float *x, float *y, const struct conv_geom *g);
