/* SPDX-License-Identifier: MIT */
/* aspp.h: the ASPP head of DeepLab-v2 as one operation: nb parallel 3x3
 * convolutions F -> C with bias, stride 1, dilation = padding = rates[b],
 * their outputs summed (PyTorch: sum(conv_b(x) for b)), forward and
 * backward.
 *
 * For a thin output (C of 21 against F of 2048 inputs) this is one
 * product Z = W_all X per image, W_all stacking the kernels of every
 * distinct tap offset (nb * 9 taps; the centre taps of all branches share
 * the offset (0, 0) and are merged, taps that fall wholly outside the map
 * are dropped), then the sum of the shifted C x hw slices of Z (zero
 * padding = out-of-range pixels skipped). See aspp.c.
 * Conventions as conv.h/nn.h: the backward accumulates into dw and db;
 * dx is accumulated, or overwritten with SFC_ASPP_DX_SET; a NULL gradient
 * is skipped. */
#ifndef SFC_ASPP_H
#define SFC_ASPP_H

#include <stddef.h>

#define SFC_ASPP_MAXBR 8

struct sfc_aspp {
    int F, C;                    /* channels in, out */
    int nb;                      /* branches, 1 to SFC_ASPP_MAXBR */
    int rates[SFC_ASPP_MAXBR];   /* dilation = padding, >= 1 */
};

/* Floats of scratch forward and backward need for an h x w map (any N). */
size_t sfc_aspp_scratch(const struct sfc_aspp *a, int h, int w);

/* y (N, C, h, w) = sum_b conv_b(x (N, F, h, w); w[b] (C, F, 3, 3)) + b[b]
 * (C). b may be NULL (no biases). scratch: sfc_aspp_scratch floats. */
void sfc_aspp_forward(const struct sfc_aspp *a, float *y, const float *x,
                      const float *const *w, const float *const *b, int N,
                      int h, int wd, float *scratch);

/* Given dy (N, C, h, w): dx (N, F, h, w) += (or = with SFC_ASPP_DX_SET)
 * dL/dx, dw[b] += dL/dw_b, db[b] += dL/db_b. dx, dw, db may be NULL; x
 * is read for dw only. */
#define SFC_ASPP_DX_SET 1
void sfc_aspp_backward(const struct sfc_aspp *a, float *dx, float *const *dw,
                       float *const *db, const float *dy, const float *x,
                       const float *const *w, int N, int h, int wd,
                       float *scratch, int flags);

#endif
