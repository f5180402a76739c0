/* SPDX-License-Identifier: MIT */
/* resnet.h: ResNet-50/101 (torchvision v1.5 bottleneck: stride on the 3x3
 * conv; downsample = 1x1 conv + BN) with frozen BatchNorm (eval-mode
 * semantics, eps 1e-5, gamma and beta trainable), forward and backward.
 *
 * Stages: 0 = stem (conv1 7x7, bn1, relu, maxpool 3x3 s2 p1), 1..4 =
 * layer1..layer4. The features returned are the outputs of stages 0..4
 * (the heads of SFC and IRN read them). Activations NCHW float32.
 *
 * Memory: parameters, then buffers (BatchNorm running mean and variance)
 * in ONE contiguous block (net->params, layout net->pb with torchvision's
 * key names); gradients in a second block with the same layout. The
 * trainable parameters form the contiguous range [train_off, train_off +
 * train_len) of the block (stages below cfg.frozen and all buffers are
 * outside it). Activations and scratch live in an arena planned once per
 * input shape by sfc_resnet_plan(); forward and backward never allocate.
 * Frozen stages keep no activations. A batch may be split into
 * micro-batches: zero the gradients once, then forward + backward each
 * micro-batch (backward accumulates; frozen BN makes this exact). */
#ifndef SFC_RESNET_H
#define SFC_RESNET_H

#include <stddef.h>

#include "arena.h"
#include "conv.h"
#include "pblock.h"
#include "rng.h"
#include "safetensors.h"

#define SFC_RESNET_STAGES 5 /* stem + layer1..4 */
#define SFC_BN_EPS 1e-5f

struct sfc_resnet_config {
    int blocks[4];     /* bottlenecks per layer: {3,4,6,3} R50, {3,4,23,3} R101 */
    int width;         /* stem channels = layer1 planes (64); layer i has
                          width << (i-1) planes and 4x that out */
    int in_ch;         /* input channels (3) */
    int stem_stride;   /* conv1 stride (2) */
    int strides[4];    /* layer1..4 strides; SFC/IRN {1,2,2,1},
                          torchvision {1,2,2,2} */
    int dilate[4];     /* torchvision's replace_stride_with_dilation per
                          layer: the layer's stride becomes dilation; its
                          first block keeps the previous dilation (DeepLab:
                          strides {1,2,2,2}, dilate {0,0,1,1} gives layer3
                          dilation 2, layer4 4, first blocks 1 and 2) */
    int frozen;        /* stages 0..frozen-1 are frozen: no gradient, no
                          update, no activations kept (SFC 3, IRN 5) */
};

/* ResNet-50 (depth 50) or -101 (101) with SFC/IRN strides, nothing frozen. */
void sfc_resnet_config_default(struct sfc_resnet_config *cfg, int depth);

/* Frozen BatchNorm parameters: views into the blocks. */
struct sfc_resnet_bn {
    int C;
    float *gamma, *beta, *mean, *var;  /* (C) each */
    float *dgamma, *dbeta;             /* (C), in the gradient block */
    float *scale, *shift;              /* (C) each, owned: the folded map
                                          y = x * scale + shift, refreshed
                                          by every forward */
};

struct sfc_resnet_block {
    struct sfc_conv2d c1, c2, c3, cd;  /* cd.OC = 0: no downsample */
    float *w1, *w2, *w3, *wd;          /* weights (OC, C, K, K) */
    float *dw1, *dw2, *dw3, *dwd;
    struct sfc_resnet_bn bn1, bn2, bn3, bnd;
    int stage;                         /* 1..4 */
    int H, W, OH, OW;                  /* planned input / output size */
    /* planned activations (training: kept for backward) */
    const float *x;                    /* block input */
    float *t1, *a1, *t2, *a2, *t3, *td, *out;
};

struct sfc_resnet {
    struct sfc_resnet_config cfg;
    struct sfc_pblock pb;              /* names, offsets, shapes */
    float *params, *grads;             /* pb.size floats each */
    size_t train_off, train_len;       /* trainable range of the block */
    unsigned owns_params : 1, owns_grads : 1;
    /* stem */
    struct sfc_conv2d conv1;
    float *w0, *dw0;
    struct sfc_resnet_bn bn0;
    int nblocks;
    struct sfc_resnet_block *blk;
    /* plan */
    int N, H, W, train;                /* planned input shape; 0 = none */
    int feat_c[SFC_RESNET_STAGES], feat_h[SFC_RESNET_STAGES],
        feat_w[SFC_RESNET_STAGES];
    float *feat[SFC_RESNET_STAGES];    /* stage outputs (N, C, h, w) */
    float *t0, *a0;                    /* stem conv out, relu out */
    int *pool_idx;
    float *scratch, *g[2], *gt3, *gt2, *gt1, *gtd, *gstem;
    size_t nscratch;           /* floats at scratch (planned); a caller may
                                  point scratch at its own buffer of as many
                                  floats after each plan */
    const float *x_in;                 /* the last forward's input */
    struct sfc_arena arena;
    /* Optional per-layer timing (benchmarks): NULL, or nblocks + 1 rows
     * (row 0 the stem, row k + 1 block k) to which forward ([0]) and
     * backward ([1]) add wall seconds per operation (enum sfc_resnet_op;
     * the stem's convolution counts as SFC_RESNET_OP_C1). */
    double (*prof)[2][5];
    /* Optional (data-parallel overlap, lib/dist.h): NULL, or called by
     * sfc_resnet_backward after each block's backward (and the stem's)
     * with from = the first gradient of that block: from there to the end
     * of the backbone's gradients this backward writes nothing more. */
    void (*grad_ready)(void *ctx, const float *from);
    void *grad_ready_ctx;
};

enum sfc_resnet_op {
    SFC_RESNET_OP_C1, SFC_RESNET_OP_C2, SFC_RESNET_OP_C3, SFC_RESNET_OP_CD,
    SFC_RESNET_OP_OTHER /* BN, ReLU, residual, pooling, copies */
};

/* Build the layout and carve the views. params and grads are caller
 * memory of sfc_resnet_size(cfg) floats each (e.g. a range of a trainer's
 * larger block, so backbone and heads share one allreduce), or NULL to
 * allocate (zeroed; owned). Returns 0, or -1 on an invalid config (error
 * slot set). sfc_resnet_size returns 0 on an invalid config. */
size_t sfc_resnet_size(const struct sfc_resnet_config *cfg);
int sfc_resnet_init(struct sfc_resnet *net, const struct sfc_resnet_config *cfg,
                    float *params, float *grads);
void sfc_resnet_release(struct sfc_resnet *net);

/* torchvision's initialisation: conv weights ~ N(0, 2/fan_out) (kaiming
 * normal, fan_out, relu), BN gamma 1, beta 0, mean 0, var 1. */
void sfc_resnet_init_random(struct sfc_resnet *net, struct sfc_rng *rng);

/* Load the block from a safetensors file by torchvision key names, each
 * key prefixed with prefix ("" for ImageNet weights). fc.*, optim.*
 * (optimiser state, optim.h) and *.num_batches_tracked are ignored;
 * missing keys, unexpected keys and
 * shape mismatches are errors listing the keys. */
int sfc_resnet_load(struct sfc_resnet *net, const struct sfc_safetensors *st,
                    const char *prefix, const char *domain);
int sfc_resnet_load_file(struct sfc_resnet *net, const char *path);
/* Save the block (parameters and running statistics) under the same names. */
int sfc_resnet_save(const struct sfc_resnet *net, const char *path);

/* Plan activations and scratch for inputs (N, in_ch, H, W); train = 1
 * keeps what backward needs for the unfrozen stages. Re-planning for the
 * same shape is free; another shape re-plans (the only allocation). */
void sfc_resnet_plan(struct sfc_resnet *net, int N, int H, int W, int train);
/* Bytes of the planned arena. */
size_t sfc_resnet_arena_bytes(const struct sfc_resnet *net);

/* Forward x (N, in_ch, H, W) of the planned shape; the stage outputs are
 * then net->feat[s] (N, feat_c[s], feat_h[s], feat_w[s]), valid until the
 * next forward. x must stay alive until the backward that follows (the
 * stem's weight gradient reads it). */
void sfc_resnet_forward(struct sfc_resnet *net, const float *x);

/* Zero the gradient block. */
void sfc_resnet_zero_grad(struct sfc_resnet *net);

/* Backward after a training forward: dfeat[s] is dL/d feat[s] or NULL
 * (zero); gradients of frozen stages' outputs must be NULL. Accumulates
 * into net->grads. Needs a plan with train = 1. */
void sfc_resnet_backward(struct sfc_resnet *net,
                         const float *const dfeat[SFC_RESNET_STAGES]);

/* Multiply-accumulate count x 2 of one forward for the planned shape. */
double sfc_resnet_flops(const struct sfc_resnet *net);

#endif
