/* SPDX-License-Identifier: MIT */
/* deeplab.h: DeepLab-v2 (Chen et al., TPAMI 2017) as kazuto1011's
 * deeplab-pytorch trains it (DeepLabV2 + MSC), on lib/resnet.
 *
 * Backbone: torchvision's ResNet-50/101 with replace_stride_with_dilation
 * = [False, True, True] (strides {1,2,2,2}, dilate {0,0,1,1}: layer3 keeps
 * stride 1 with dilation 2, layer4 dilation 4, the first block of each
 * with the previous dilation, output stride 8), frozen BatchNorm (running
 * statistics fixed; gamma and beta get gradients, whether they are trained
 * is the optimiser's choice, sfc_deeplab_sgd_groups). Head (ASPP of
 * DeepLab-v2): four 3x3 convolutions feat_c[4] -> nclass with bias,
 * dilation = padding = rates {6, 12, 18, 24}, their outputs summed.
 *
 * Multi-scale (MSC): for input scales s_0 = 1, s_1, ... (DeepLab: 1, 0.75,
 * 0.5) the input is resized by F.interpolate(x, scale_factor = s,
 * bilinear, align_corners False) (size floor(H s); s = 1 is the input
 * itself), each goes through the network giving logits L_k (N, C, lh_k,
 * lw_k); L_k for k > 0 is resized to scale 0's logit size (bilinear,
 * align_corners False, size given) and the fused logits are their
 * pixel-wise maximum (torch.max over the stack: the gradient goes to the
 * first maximum). Training loss: the ignore-255 softmax cross-entropy of
 * each L_k against the crop label resized to (lh_k, lw_k) by PIL nearest,
 * plus the fused logits' against scale 0's labels, each the mean over its
 * non-ignored pixels, summed. The mean's denominator is the count over the
 * whole batch (sfc_deeplab_count), so micro-batches with accumulated
 * gradients give the whole batch's gradient (the reference averages each
 * micro-batch's mean instead; the two agree when the counts do).
 *
 * Memory: parameters, then buffers (running statistics) of the backbone,
 * then the head, in ONE flat block (net->params, layout net->pb: the
 * backbone under torchvision's key names, the head under aspp.c{0..3}.
 * {weight,bias}); gradients in a second block with the same layout, so an
 * allreduce is one call. Each scale has its own ResNet instance (its own
 * activation arena) viewing the same blocks. */
#ifndef SFC_DEEPLAB_H
#define SFC_DEEPLAB_H

#include <stddef.h>
#include <stdint.h>

#include "aspp.h"
#include "optim.h"
#include "pblock.h"
#include "resnet.h"
#include "rng.h"
#include "safetensors.h"

#define SFC_ASPP_BRANCHES 4
#define SFC_ASPP_RATES {6, 12, 18, 24}
#define SFC_ASPP_INIT_STD 0.01   /* head weights ~ N(0, 0.01^2), bias 0 */
#define SFC_DEEPLAB_MAXSCALES 8
#define SFC_IGNORE_LABEL 255

struct sfc_deeplab_config {
    struct sfc_resnet_config bb; /* DeepLab: strides {1,2,2,2}, dilate
                                    {0,0,1,1}, frozen 0 */
    int nclass;                  /* C: output channels (21 for VOC) */
    int rates[SFC_ASPP_BRANCHES];
};

/* ResNet-50 (depth 50) or -101 (101) DeepLab-v2 with nclass outputs. */
void sfc_deeplab_config_default(struct sfc_deeplab_config *cfg, int depth,
                                int nclass);

/* One input scale of the plan (see the top comment). */
struct sfc_deeplab_scale {
    double s;                  /* input scale (1: the input itself) */
    struct sfc_resnet bb;      /* views the shared blocks */
    int h, w;                  /* input size at this scale */
    int lh, lw;                /* logit size */
    float *x;                  /* (N, 3, h, w) resized input; NULL if s == 1 */
    float *logit;              /* (N, C, lh, lw) */
    float *up;                 /* (N, C, LH, LW) logit resized (k > 0) */
    float *dlogit, *dup;       /* gradients of logit and up (training) */
    float *dfeat;              /* (N, feat_c[4], lh, lw) */
    uint8_t *lab;              /* (N, lh, lw) labels of the last training */
    float *scratch;            /* the ASPP head's and bb's: shared by the
                                  scales (in sfc_deeplab's mem) */
    void *mem;                 /* one allocation for the above */
};

struct sfc_deeplab {
    struct sfc_deeplab_config cfg;
    struct sfc_pblock pb;      /* backbone entries, then the head's */
    float *params, *grads;     /* pb.size floats each */
    size_t bb_size;            /* floats of the backbone part */
    unsigned owns_params : 1, owns_grads : 1;
    struct sfc_resnet bb;      /* backbone view for init, load and save */
    struct sfc_aspp head;      /* the ASPP head (lib/aspp) */
    float *w[SFC_ASPP_BRANCHES], *b[SFC_ASPP_BRANCHES];   /* views */
    float *dw[SFC_ASPP_BRANCHES], *db[SFC_ASPP_BRANCHES];
    /* plan */
    int N, H, W, train, nscale;
    int LH, LW;                /* fused logit size (scale 0's) */
    struct sfc_deeplab_scale sc[SFC_DEEPLAB_MAXSCALES];
    float *fused;              /* (N, C, LH, LW) */
    int *arg;                  /* (N, C, LH, LW) which scale won */
    float *dfused;
    void *mem;                 /* one allocation for the shared scratch,
                                  fused, arg, dfused */
};

/* Build the layout and carve the views. params and grads are caller
 * memory of sfc_deeplab_size(cfg) floats each, or NULL to allocate
 * (zeroed, owned). 0, or -1 (error set) on an invalid configuration. */
size_t sfc_deeplab_size(const struct sfc_deeplab_config *cfg);
int sfc_deeplab_init(struct sfc_deeplab *net,
                     const struct sfc_deeplab_config *cfg, float *params,
                     float *grads);
void sfc_deeplab_release(struct sfc_deeplab *net);

/* Backbone as sfc_resnet_init_random (torchvision's), then the head's
 * weights ~ N(0, 0.01^2) drawn in block order, biases 0. */
void sfc_deeplab_init_random(struct sfc_deeplab *net, struct sfc_rng *rng);
/* Backbone only, from torchvision-named weights (ImageNet: fc.* skipped);
 * the head is left as it is. */
int sfc_deeplab_load_backbone(struct sfc_deeplab *net, const char *path);
/* The whole block (backbone under prefix + torchvision names, head under
 * prefix + aspp.*); optim.* and fc.* keys skipped; missing, unexpected
 * or mis-shaped keys are errors naming them (domain = file name). */
int sfc_deeplab_load(struct sfc_deeplab *net, const struct sfc_safetensors *st,
                     const char *prefix, const char *domain);

/* Plan for inputs (N, 3, H, W) at the nscale scales (scales[0] defines the
 * fused size; DeepLab: {1, 0.75, 0.5}); train = 1 keeps what backward
 * needs. Re-planning the same shape and scales is free. 0, or -1 (error
 * set) if a scale gives an empty input or too many scales. */
int sfc_deeplab_plan(struct sfc_deeplab *net, int N, int H, int W,
                     int nscale, const double *scales, int train);

/* Forward x (N, 3, H, W) of the planned shape: per-scale logits in
 * net->sc[k].logit, the fused logits in net->fused. x must stay alive
 * until the backward. */
void sfc_deeplab_forward(struct sfc_deeplab *net, const float *x);

/* Non-ignored pixels (label < nclass) of each output for crop labels lab
 * (N, H, W) of the planned input size: count[k] += those of scale k's
 * resized labels (k < nscale), count[nscale] += scale 0's (the fused
 * output's). Any N (a whole batch, then micro-batches). */
void sfc_deeplab_count(const struct sfc_deeplab *net, const uint8_t *lab,
                       int N, double *count);

/* Training forward, loss and backward for a micro-batch x (N, 3, H, W),
 * lab (N, H, W) of the planned shape (train plan): the loss
 * sum_k CE_k / denom[k] over the nscale + 1 outputs, where CE_k is the
 * summed cross-entropy of output k (an output with denom 0 adds 0). Its
 * gradient is ACCUMULATED into net->grads (zero them once per batch).
 * Returns the loss; parts[k] (may be NULL) receives each output's term. */
double sfc_deeplab_train(struct sfc_deeplab *net, const float *x,
                         const uint8_t *lab, const double *denom,
                         double *parts);

void sfc_deeplab_zero_grad(struct sfc_deeplab *net);

/* Inference on one image img (H, W, 3) uint8 of any size: normalised
 * (ImageNet statistics), the fused logits at the nscale scales and, if
 * flip, those of the mirrored image mirrored back, their pixel-wise max,
 * resized to (H, W) (bilinear, align_corners False): out (C, H, W).
 * Plans for the image (an allocation when the size changes). 0, or -1
 * (error set) if a scale leaves the image empty. */
int sfc_deeplab_predict(struct sfc_deeplab *net, float *out,
                        const uint8_t *img, int H, int W, int nscale,
                        const double *scales, int flip);

/* DeepLab's parameter groups (kazuto1011 deeplab-pytorch main.py): the
 * backbone's convolution weights at lr with weight decay wd; the head's
 * weights at head_mult * lr with wd; the head's biases at bias_mult * lr
 * without decay; the backbone's BN gamma and beta at lr with wd only if
 * train_bn (DeepLab keeps them frozen). o must be fresh (no groups). */
void sfc_deeplab_sgd_groups(const struct sfc_deeplab *net, struct sfc_sgd *o,
                            double lr, double wd, double head_mult,
                            double bias_mult, int train_bn);

/* Metadata describing the model, for a checkpoint: keys sfc.model,
 * sfc.blocks, sfc.width, sfc.classes (values written into vals, 4 strings
 * of at most 64 bytes each). */
#define SFC_DEEPLAB_NMETA 4
void sfc_deeplab_meta(const struct sfc_deeplab_config *cfg,
                      const char *keys[SFC_DEEPLAB_NMETA],
                      char vals[SFC_DEEPLAB_NMETA][64]);
/* The configuration from a checkpoint's metadata (written by
 * sfc_deeplab_meta); -1 (error, domain = path) if absent or malformed. */
int sfc_deeplab_config_from_meta(struct sfc_deeplab_config *cfg,
                                 const struct sfc_safetensors *st,
                                 const char *path);

/* Multiply-accumulate count x 2 of one forward for the planned shape. */
double sfc_deeplab_flops(const struct sfc_deeplab *net);

#endif
