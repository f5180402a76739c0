/* SPDX-License-Identifier: MIT */
/* nn.h: the layer kernels of the CNN engine (umbrella for conv.h,
 * layers.h, ops.h) and the conventions they share.
 *
 * Dimension letters: N batch, C channels in, OC channels out, H W input
 * height and width, OH OW output height and width, K kernel size, S stride,
 * P padding, D dilation, G groups (GroupNorm). Activations are NCHW,
 * float32, contiguous.
 *
 * Kernel rules (after llm.c):
 *  - outputs first, then inputs (const float *), then dimensions, then
 *    scratch; kernels never allocate (scratch sizes come from *_scratch());
 *  - forward overwrites its output;
 *  - backward ACCUMULATES (+=) into every gradient it is given (dx, dw, db,
 *    ...): the model zeroes gradients once per step, and a tensor used by
 *    two branches (residual) gets both contributions. A NULL gradient
 *    pointer means "not needed" and is skipped (frozen weights, first layer);
 *  - threads: OpenBLAS's for matrix products; OpenMP elsewhere, never
 *    calling BLAS inside an OpenMP region; results do not depend on the
 *    number of threads (no racy reductions). */
#ifndef SFC_NN_H
#define SFC_NN_H

#include "conv.h"
#include "layers.h"
#include "ops.h"

#endif
