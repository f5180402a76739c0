/* SPDX-License-Identifier: MIT */
/* layers.h: the simple ResNet layers. Conventions in nn.h. */
#ifndef SFC_LAYERS_H
#define SFC_LAYERS_H

/* Frozen BatchNorm (PyTorch eval mode): y = (x - mean) / sqrt(var + eps) *
 * gamma + beta, per channel; running statistics never change, gamma and
 * beta are trainable. y may equal x. x, y (N, C, HW). */
void sfc_bn_frozen_forward(float *y, const float *x, const float *gamma,
                           const float *beta, const float *mean,
                           const float *var, float eps, int N, int C, int HW);
/* dx += dy * gamma / sqrt(var + eps); dgamma += sum dy * xhat;
 * dbeta += sum dy. Any gradient may be NULL; x is read only for dgamma
 * (it may be NULL when dgamma is NULL). */
void sfc_bn_frozen_backward(float *dx, float *dgamma, float *dbeta,
                            const float *dy, const float *x,
                            const float *gamma, const float *mean,
                            const float *var, float eps, int N, int C,
                            int HW);

/* ReLU over n elements; y may equal x. Backward: dx += dy where y > 0. */
void sfc_relu_forward(float *y, const float *x, long n);
void sfc_relu_backward(float *dx, const float *dy, const float *y, long n);

/* Max pool K x K, stride S, padding P (padding never wins), PyTorch's
 * floor output size: (H + 2P - K) / S + 1. idx (N, C, OH, OW) records the
 * argmax (flat index into H*W) for backward; it may be NULL in inference.
 * Ties: the first maximum in row-major window order wins (PyTorch CPU); a
 * NaN wins and propagates. Requires P <= K/2 (as PyTorch), so that every
 * window holds at least one input element. */
static inline int sfc_maxpool2d_outsize(int H, int K, int S, int P)
{
    return (H + 2 * P - K) / S + 1;
}
void sfc_maxpool2d_forward(float *y, int *idx, const float *x, int N, int C,
                           int H, int W, int K, int S, int P);
void sfc_maxpool2d_backward(float *dx, const float *dy, const int *idx,
                            int N, int C, int H, int W, int OH, int OW);

/* Global average pool: y (N, C) = mean over H*W of x (N, C, H*W). */
void sfc_gap_forward(float *y, const float *x, int N, int C, int HW);
void sfc_gap_backward(float *dx, const float *dy, int N, int C, int HW);

#endif
