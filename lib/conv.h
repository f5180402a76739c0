/* SPDX-License-Identifier: MIT */
/* conv.h: 2-D convolution (PyTorch nn.Conv2d semantics, groups = 1) by
 * im2col + cblas_sgemm, with 1x1 stride-1 convolutions as a direct sgemm
 * and wide 3x3 stride-1 ones by Winograd F(2x2, 3x3), and an optional
 * fused per-channel epilogue (details in conv.c).
 * Conventions in nn.h (backward accumulates; NULL gradient = skip). */
#ifndef SFC_CONV_H
#define SFC_CONV_H

#include <stddef.h>

struct sfc_conv2d {
    int C, OC;   /* channels in, out */
    int K;       /* square kernel K x K */
    int S, P, D; /* stride, padding, dilation (same in both dims) */
};

/* PyTorch's output size: (H + 2P - D(K-1) - 1) / S + 1. */
static inline int sfc_conv2d_outsize(int H, int K, int S, int P, int D)
{
    return (H + 2 * P - D * (K - 1) - 1) / S + 1;
}

/* Floats of scratch the forward and backward need for an H x W input, for
 * any batch size N. It depends on the shape only; it may be 0 (a 1x1
 * stride-1 unpadded convolution on a large map) and may be nonzero for
 * any convolution (small maps batch several images per sgemm), so size
 * scratch by calling this for every convolution. */
size_t sfc_conv2d_scratch(const struct sfc_conv2d *c, int H, int W);

/* y (N, OC, OH, OW) = conv(x (N, C, H, W), w (OC, C, K, K)) + b (OC).
 * b may be NULL. Requires OH, OW >= 1 (PyTorch rejects the rest); scratch
 * holds sfc_conv2d_scratch(c, H, W) floats. */
void sfc_conv2d_forward(const struct sfc_conv2d *c, float *y, const float *x,
                        const float *w, const float *b, int N, int H, int W,
                        float *scratch);

/* Fused epilogue of sfc_conv2d_forward_ex, per output channel o and
 * element (frozen BN, residual sum and ReLU of a ResNet block in one pass
 * while the output is in cache):
 *   v = conv(x) + b                      (pre, if not NULL, receives v)
 *   y = v * scale[o] + shift[o]          (scale NULL: 1; shift NULL: 0)
 *   y += res * rscale[o] + rshift[o]     (if res; rscale NULL: y += res)
 *   y = y > 0 ? y : 0                    (if relu)
 * The arithmetic is exactly that of the separate steps. res and pre are
 * (N, OC, OH, OW) and must not overlap y or x (res may not be y). */
struct sfc_conv2d_epilogue {
    const float *scale, *shift;   /* (OC) each, or NULL */
    const float *res;             /* NULL: no residual */
    const float *rscale, *rshift; /* (OC) each, or NULL */
    int relu;
    float *pre;                   /* NULL: not kept */
};

/* sfc_conv2d_forward followed by the epilogue ep (NULL: none). */
void sfc_conv2d_forward_ex(const struct sfc_conv2d *c, float *y,
                           const float *x, const float *w, const float *b,
                           int N, int H, int W, float *scratch,
                           const struct sfc_conv2d_epilogue *ep);

/* Given dy (N, OC, OH, OW): dx += dL/dx, dw += dL/dw, db += dL/db.
 * Any of dx, dw, db may be NULL. x is the forward input, read only for dw
 * (it may be NULL when dw is NULL). */
void sfc_conv2d_backward(const struct sfc_conv2d *c, float *dx, float *dw,
                         float *db, const float *dy, const float *x,
                         const float *w, int N, int H, int W, float *scratch);

/* sfc_conv2d_backward with flags: SFC_CONV2D_DX_SET overwrites dx with
 * dL/dx instead of adding to it (no clearing pass needed). */
#define SFC_CONV2D_DX_SET 1
void sfc_conv2d_backward_ex(const struct sfc_conv2d *c, float *dx, float *dw,
                            float *db, const float *dy, const float *x,
                            const float *w, int N, int H, int W,
                            float *scratch, int flags);

/* Which algorithm 3x3 stride-1 undilated convolutions use. AUTO (the
 * default) chooses from the shape: Winograd F(2x2, 3x3) with at least 128
 * input and output channels, im2col + sgemm otherwise. WINOGRAD uses it
 * for every such convolution, IM2COL for none (tests cover both paths on
 * small shapes). The two agree to float rounding, not bit for bit.
 * Dilated 3x3 stride-1 convolutions with padding = dilation follow the
 * same choice, Winograd running on their polyphase sub-images
 * (conv_dilated.c; under AUTO only on maps large enough to pay).
 * Process-wide; set it before convolutions run, not while they do. */
enum { SFC_CONV2D_AUTO, SFC_CONV2D_IM2COL, SFC_CONV2D_WINOGRAD };
void sfc_conv2d_set_algo(int algo);

/* Naive direct convolution: the reference the fast path is tested against. */
void sfc_conv2d_forward_naive(const struct sfc_conv2d *c, float *y,
                              const float *x, const float *w, const float *b,
                              int N, int H, int W);

#endif
