/* SPDX-License-Identifier: MIT */
/* irnnet.h: IRN's class-boundary (edge) branch on the five stage outputs of
 * a frozen ResNet, and the affinity loss that trains it (sfc-reference.md
 * §6.3, §6.5; IRN's net/resnet50_irn.py Net.fc_edge1..6 and
 * AffinityDisplacementLoss without the displacement terms).
 *
 * Head, per branch i = 1..5 on feature x_i (N, C_i, h_i, w_i):
 *   e_i = ReLU(up_i(GN(4, 32)(conv1x1_{C_i -> 32, no bias}(x_i))))
 * with up_i bilinear, align_corners False, scale factor 1, 1, 2, 4, 4
 * (given explicitly, as nn.Upsample does); e_3..e_5 are cropped to e_2's
 * size (h, w) = (h_2, w_2), the five are concatenated (160 channels) and
 * logit = conv1x1_{160 -> 1, with bias}(cat): edge logits (N, 1, h, w).
 * The backbone is frozen: backward yields parameter gradients only (no
 * gradient to the features).
 *
 * Parameters live in ONE flat block (gradients in a second block with the
 * same layout) under the keys IRN's state_dict uses:
 *   fc_edge{1..5}.0.weight (32, C_i, 1, 1), fc_edge{1..5}.1.weight (32),
 *   fc_edge{1..5}.1.bias (32), fc_edge6.weight (1, 160, 1, 1),
 *   fc_edge6.bias (1)
 * in that order (branch by branch). IRN's checkpoint keys are the same, so
 * its irn.pth converted to safetensors loads here.
 *
 * Loss (training, §6.3): e = sigmoid(logit), aff = 1 - max over the path of
 * e (lib/pathidx.h), pos = -ln(aff + 1e-5), neg = -ln(1 + 1e-5 - aff),
 *   Lpos = 1/2 [sum bg_pos pos / (S_bg + 1e-5) + sum fg_pos pos /
 *          (S_fg + 1e-5)],  Lneg = sum neg negl / (S_neg + 1e-5),
 *   L = (Lpos + Lneg) / 2,
 * the sums running over the whole batch. The S are fixed by the labels, so
 * a batch can be processed in micro-batches: count S over the batch first
 * (sfc_irn_label_sums), then each micro-batch's loss terms and gradients
 * add up to the whole batch's exactly. */
#ifndef SFC_IRNNET_H
#define SFC_IRNNET_H

#include <stddef.h>
#include <stdint.h>

#include "pathidx.h"
#include "rng.h"

#define SFC_IRN_BRANCHES 5
#define SFC_IRN_EDGE_CH 32      /* channels of each side branch */
#define SFC_IRN_GN_GROUPS 4     /* GroupNorm(4, 32) */
#define SFC_IRN_GN_EPS 1e-5f
#define SFC_IRN_NENTRIES (3 * SFC_IRN_BRANCHES + 2)
#define SFC_IRN_LOSS_EPS 1e-5   /* the 1e-5 of pos, neg and the divisors */
#define SFC_IRN_TRAIN_RADIUS 10 /* path radius of the loss (§6.2) */

struct sfc_irnhead_entry {
    char name[24];     /* state_dict key */
    size_t off, numel; /* floats from the block start */
    int ndim;
    int64_t shape[4];
};

struct sfc_irnhead {
    int in_c[SFC_IRN_BRANCHES]; /* channels of x1..x5 (64..2048 for R50) */
    struct sfc_irnhead_entry ent[SFC_IRN_NENTRIES];
    size_t size;                /* floats in the block */
    float *params, *grads;      /* size floats each; grads may be NULL */
    unsigned owns_params : 1, owns_grads : 1;
    /* views into params / grads */
    float *w[SFC_IRN_BRANCHES];     /* (32, C_i) */
    float *gamma[SFC_IRN_BRANCHES], *beta[SFC_IRN_BRANCHES]; /* (32) */
    float *wf, *bf;                 /* (1, 160), (1) */
    float *dw[SFC_IRN_BRANCHES], *dgamma[SFC_IRN_BRANCHES],
        *dbeta[SFC_IRN_BRANCHES], *dwf, *dbf;
    /* plan (sfc_irnhead_plan) */
    int N, train;
    int fh[SFC_IRN_BRANCHES], fw[SFC_IRN_BRANCHES]; /* feature sizes */
    int uh[SFC_IRN_BRANCHES], uw[SFC_IRN_BRANCHES]; /* after upsampling */
    int oh, ow;                     /* output grid = (fh[1], fw[1]) */
    float *t[SFC_IRN_BRANCHES];     /* conv outputs (N, 32, fh*fw) */
    float *mean[SFC_IRN_BRANCHES], *rstd[SFC_IRN_BRANCHES]; /* (N, 4) */
    float *cat;                     /* (N, 160, oh*ow) ReLU outputs */
    float *logit;                   /* (N, oh*ow): the forward's result */
    float *gbuf, *ubuf, *dtbuf, *dcat, *cscratch; /* scratch */
    const float *x[SFC_IRN_BRANCHES];  /* the last forward's features */
    size_t plan_bytes;
    void *mem;                      /* one allocation for the plan */
};

/* Lay out the block for features with channels in_c[0..4]. params and
 * grads are caller memory of sfc_irnhead_size(in_c) floats, or NULL to
 * allocate (zeroed, owned); pass no_grads = 1 for an inference-only head
 * (grads stays NULL). 0, or -1 (error set) for a channel count < 1. */
size_t sfc_irnhead_size(const int in_c[SFC_IRN_BRANCHES]);
int sfc_irnhead_init(struct sfc_irnhead *hd,
                     const int in_c[SFC_IRN_BRANCHES], float *params,
                     float *grads, int no_grads);
void sfc_irnhead_release(struct sfc_irnhead *hd);

/* PyTorch's default initialisation: conv weights and the fusion bias
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a = sqrt(5)),
 * GroupNorm weight 1, bias 0. Drawn in block order. */
void sfc_irnhead_init_random(struct sfc_irnhead *hd, struct sfc_rng *rng);

/* The entry called name, or NULL. */
const struct sfc_irnhead_entry *sfc_irnhead_find(const struct sfc_irnhead *hd,
                                                 const char *name);

/* Plan scratch for N images with features of sizes (fh[i], fw[i]);
 * train = 1 keeps what backward needs. Needs fh[0] == fh[1], fw[0] ==
 * fw[1] and up_i * fh[i] >= fh[1] (likewise w) for i = 2..4, which any
 * ResNet with strides (2, 2, 2, 1) gives. Re-planning the same shape is
 * free. 0, or -1 (error set) if the sizes do not fit. */
int sfc_irnhead_plan(struct sfc_irnhead *hd, int N,
                     const int fh[SFC_IRN_BRANCHES],
                     const int fw[SFC_IRN_BRANCHES], int train);

/* Forward x[i] (N, in_c[i], fh[i], fw[i]) of the planned shape: the edge
 * logits are then hd->logit (N, oh*ow). The features must stay alive until
 * the backward that follows (the weight gradients read them). */
void sfc_irnhead_forward(struct sfc_irnhead *hd,
                         const float *const x[SFC_IRN_BRANCHES]);
/* Zero the gradient block. */
void sfc_irnhead_zero_grad(struct sfc_irnhead *hd);
/* Given dlogit (N, oh*ow), accumulate the parameter gradients into
 * hd->grads. Needs a train plan and the forward just run. */
void sfc_irnhead_backward(struct sfc_irnhead *hd, const float *dlogit);

/* ---- affinity loss ------------------------------------------------------
 * L (N, h, w) are label grids (class ids, values >= nclass ignored: IRN
 * uses nclass 21 with 255 = unsure); sums[0..2] += the counts of bg_pos,
 * fg_pos and neg pairs (§6.1) of the N grids. */
void sfc_irn_label_sums(const struct sfc_pathidx *p, const uint8_t *L, int N,
                        int h, int w, int nclass, double sums[3]);

/* Floats of scratch sfc_irn_affinity_loss needs for an h x w grid. */
size_t sfc_irn_loss_scratch(const struct sfc_pathidx *p, int h, int w);

/* The part of the loss that N images of the batch contribute, given the
 * batch's label sums: returns it (L = (Lpos + Lneg) / 2 restricted to
 * these images; summing over micro-batches gives the batch loss) and adds
 * the parts of Lpos and Lneg to *lpos and *lneg (either may be NULL).
 * dlogit (N, oh*ow) receives dL/dlogit (overwritten; may be NULL). logit
 * (N, oh*ow). The grid must hold at least one source pixel
 * (sfc_pathidx_nsrc > 0). */
double sfc_irn_affinity_loss(const struct sfc_pathidx *p, float *dlogit,
                             const float *logit, const uint8_t *L, int N,
                             int h, int w, int nclass, const double sums[3],
                             double *lpos, double *lneg, float *scratch);

/* Inference (§7): the network runs on an image and its horizontal flip,
 * each zero-padded at the right and bottom to one canvas; logit2 (2, h, w)
 * are their logits. Both are cropped to the top-left oh x ow (oh =
 * ceil(H / 4), ow = ceil(W / 4)), then edge (oh, ow) = sigmoid(logit[0] / 2
 * + flip_w(logit[1]) / 2), the flip being within the crop's ow columns.
 * oh <= h, ow <= w. */
void sfc_irn_edge_merge(float *edge, const float *logit2, int h, int w,
                        int oh, int ow);

#endif
