/* SPDX-License-Identifier: MIT */
/* conv_dilated.h: internal to lib/conv.c. Dilated 3x3 stride-1
 * convolutions with padding = dilation (DeepLab's layer3/layer4) as
 * undilated 3x3 padding-1 convolutions on their polyphase sub-images
 * (details in conv_dilated.c). conv.c decides when this path runs
 * (sfc_conv2d_set_algo); callers use conv.h only. */
#ifndef SFC_CONV_DILATED_H
#define SFC_CONV_DILATED_H

#include <stddef.h>

#include "conv.h"

/* The shapes this path can do: K 3, stride 1, dilation > 1, P == D. */
int sfc_conv2d_dilated_applies(const struct sfc_conv2d *c);

/* Whether it is faster than im2col for this shape (measured; AUTO). */
int sfc_conv2d_dilated_pays(const struct sfc_conv2d *c, int H, int W);

/* Off (0): AUTO never takes this path, as before it existed (for
 * benchmarks: bench-seg's SFC_BENCH_DILATED=0). Process-wide, like
 * sfc_conv2d_set_algo. */
void sfc_conv2d_dilated_enable(int on);

/* Floats of scratch sfc_conv2d_dilated_forward and _backward need for an H x W
 * input, any N (they work one image at a time). */
size_t sfc_conv2d_dilated_scratch(const struct sfc_conv2d *c, int H, int W);

/* As conv.c's forward: y = conv(x) + b then the epilogue ep (NULL: none),
 * or, with acc, y += conv(x) (b and ep NULL). */
void sfc_conv2d_dilated_forward(const struct sfc_conv2d *c, float *y,
                                const float *x, const float *w,
                                const float *b, int N, int H, int W,
                                float *scratch,
                                const struct sfc_conv2d_epilogue *ep,
                                int acc);

/* Given dy (N, OC, H, W): dw += dL/dw (dw not NULL; x the forward
 * input), dx += dL/dx (dx not NULL; set: dx = dL/dx). */
void sfc_conv2d_dilated_backward(const struct sfc_conv2d *c, float *dx,
                                 float *dw, const float *dy, const float *x,
                                 const float *w, int N, int H, int W,
                                 float *scratch, int set);

#endif
