/* SPDX-License-Identifier: MIT */
/* sfcnet.h: the SFC classification network and its training losses
 * (sfc-reference.md §2.2, §2.4, §2.5).
 *
 * Backbone: a ResNet (lib/resnet.h) with conv1..layer2 frozen; heads:
 * classifier (C4 -> C), f9 (3 + C4 -> C4) for PCM, side1..4 (layer1..4 ->
 * side[i]) for the hierarchical feature; all 1x1, no bias. One scale's
 * forward gives score (GAP of the CAM), M_W (the max-normalised CAM with a
 * 1 - max background, masked, refined twice by the PCM affinity) and M_P
 * (ReLU of the cosine between the hierarchical feature and per-image
 * prototypes seeded by the argmax of M_W with background x proto_bg).
 * Gradient paths as the reference: sides read detached features, seeds
 * carry no gradient, PCM is not detached.
 *
 * Parameters: ONE block (the backbone's, in torchvision names, then
 * classifier.weight, f9.weight, side1..4.weight); gradients in a second
 * block of the same layout. The two scales use two backbone instances
 * over the same blocks, each with its own activation plan. */
#ifndef SFC_SFCNET_H
#define SFC_SFCNET_H

#include "arena.h"
#include "pblock.h"
#include "resnet.h"

struct sfc_sfcnet_config {
    struct sfc_resnet_config backbone;
    int C;          /* foreground classes */
    int side[4];    /* side conv widths: 128, 128, 256, 256 */
    float proto_bg; /* background weight of the prototype seeds: 0.3 */
};

/* ResNet-50 with SFC strides, conv1..layer2 frozen, sides as §2.2. */
void sfc_sfcnet_config_default(struct sfc_sfcnet_config *cfg, int C);

/* Activations of one scale (planned once per input shape). */
struct sfc_sfcnet_act {
    int N, H, W, h, w, K, D; /* input, feature grid, K = C + 1, D = sum side */
    int train, heads;        /* what the plan holds buffers for */
    struct sfc_arena arena;
    float *vm;                      /* (N, K, hw) low-res valid mask */
    float *cam, *score;             /* (N, C, hw), (N, C) */
    float *crelu, *cn, *cmax;       /* relu, max-normalised, max (N, C) */
    int *cidx;                      /* (N, C) argmax of crelu */
    float *bgmax;                   /* (N, hw) max over classes of cn */
    int *bgidx;
    float *cam21;                   /* (N, K, hw) */
    float *sraw[4], *snorm[4], *sn[4]; /* side outputs, norms, normalised */
    float *hie;                     /* (N, D, hw) */
    float *xs, *f, *fnorm, *fn;     /* (N,3,hw), (N,C4,hw), (N,hw), ... */
    float *A, *colsum;              /* (N, hw, hw), (N, hw) */
    float *t, *mw;                  /* (N, K, hw): cam21 A, M_W */
    float *seeds, *proto, *cos, *mp; /* (N,K,hw), (N,K,D), (N,K,hw) x2 */
    /* gradients and scratch (training) */
    float *dmw, *dmp, *dscore, *dx4;
    float *g1, *g2, *g3, *gA, *gcam, *gside, *gsn, *scratch;
    float *cscratch;                /* for the 1x1 convolutions */
};

/* Work buffers of the training step (planned once per micro-batch and
 * crop size): the low-res masks, the half-size images and the loss
 * terms' intermediates. */
struct sfc_sfcnet_work {
    int m, S, K;
    struct sfc_arena arena;
    float *vm1, *vm2, *img2, *tmp, *w21;
    float *mph, *mx, *dmph;          /* (m, K, hw1), (m, K), (m, K, hw1) */
    int *ix;
    float *d, *e, *dd, *de;          /* (m, K, hw2) */
};

struct sfc_sfcnet {
    struct sfc_sfcnet_config cfg;
    struct sfc_pblock pb;
    float *params, *grads;
    size_t bb_size;                  /* floats of the backbone part */
    struct sfc_resnet bb[2];         /* one per scale, shared blocks */
    float *w_cls, *w_f9, *w_side[4]; /* views into params */
    float *dw_cls, *dw_f9, *dw_side[4];
    struct sfc_sfcnet_act act[2];
    struct sfc_sfcnet_work work;
    /* Optional (data-parallel overlap, lib/dist.h): NULL, or called
     * during the last backward of sfc_sfcnet_accumulate (its last
     * micro-batch's last scale) after each backbone block, with from = a
     * gradient from which on to the end of the block (heads included)
     * the call writes nothing more. */
    void (*grad_ready)(void *ctx, const float *from);
    void *grad_ready_ctx;
};

int sfc_sfcnet_init(struct sfc_sfcnet *net, const struct sfc_sfcnet_config *cfg);
void sfc_sfcnet_release(struct sfc_sfcnet *net);
/* Load all parameters (backbone + heads) from a safetensors file. With
 * backbone_only, only the backbone's keys are read (ImageNet weights) and
 * other keys in the file are ignored. */
int sfc_sfcnet_load(struct sfc_sfcnet *net, const char *path,
                    int backbone_only);
/* Save every parameter, with the network configuration and any extra
 * metadata pairs (e.g. the optimiser step) in the file's metadata. */
int sfc_sfcnet_save(const struct sfc_sfcnet *net, const char *path,
                    int nmeta, const char *const *keys,
                    const char *const *values);
/* The same plus the optimiser's state (opt may be NULL): a training
 * checkpoint that sfc_checkpoint_load resumes and every tool can read. */
struct sfc_sgd;
int sfc_sfcnet_checkpoint(const struct sfc_sfcnet *net, const char *path,
                          const struct sfc_sgd *opt, int nmeta,
                          const char *const *keys, const char *const *values);
/* Read the configuration a checkpoint was saved with. */
int sfc_sfcnet_config_read(struct sfc_sfcnet_config *cfg,
                           const struct sfc_safetensors *st,
                           const char *domain);
/* Heads: PyTorch's default Conv2d init, U(+-1/sqrt(fan_in)); backbone:
 * sfc_resnet_init_random. */
void sfc_sfcnet_init_random(struct sfc_sfcnet *net, struct sfc_rng *rng);

/* Forward one scale s (0 or 1) for images x (N, 3, H, W) and the low-res
 * valid mask vm (N, K, h, w) (h, w = the layer3 grid); train keeps what
 * backward needs. Outputs in net->act[s]. heads = 0 computes score only
 * (the plain CAM baseline). */
void sfc_sfcnet_forward(struct sfc_sfcnet *net, int s, const float *x,
                        const float *vm, int N, int H, int W, int train,
                        int heads);
/* The layer3 grid of an H x W input. */
void sfc_sfcnet_grid(struct sfc_sfcnet *net, int H, int W, int *h, int *w);

/* Backward of scale s from act[s].dscore, dmw, dmp (filled by the caller,
 * zero where unused). Accumulates into net->grads. */
void sfc_sfcnet_backward(struct sfc_sfcnet *net, int s, int heads);

/* CAM inference at one scale (§3, class CAM of the reference): x (2, 3,
 * H, W) holds the image and its horizontal flip; the two copies' CAMs,
 * hierarchical features, images and x4 are summed (the flip flipped
 * back); the background is 1 - max over all classes, with no label
 * masking before PCM; the prototypes are seeded inside y21 (K), the
 * background-padded label. mw, mp (K, h, w) receive M_W and M_P; mc (K,
 * h, w), if not NULL, the classifier CAM before PCM (the reference's
 * orignal_cam: what a plain CAM classifier, the baseline, produces). */
void sfc_sfcnet_cam(struct sfc_sfcnet *net, const float *x, int H, int W,
                    const float *y21, float *mw, float *mp, float *mc);

/* Loss switches (the paper's ablation rows). */
enum sfc_sfc_flags {
    SFC_LOSS_SCALE2 = 1 << 0, /* second scale (x0.5) in L_cls */
    SFC_LOSS_PDW = 1 << 1,    /* L_PDW x1.6 */
    SFC_LOSS_WDW = 1 << 2,    /* L_WDW x0.8 */
    SFC_LOSS_DC = 1 << 3,     /* DC weights (else 1) */
    SFC_LOSS_SFC = 0xf
};

struct sfc_sfc_losses {
    float cls, pdw, wdw;
};

/* Micro-batches. Every loss term of §2.5 is a mean over the step's
 * images of a per-image quantity (the CAM normalisation, the PCM, the
 * prototypes, the max-normalisation of M_P and the resizes all act on one
 * image; BN uses fixed statistics), so the gradient of a step is the sum
 * over its images of 1/N times each image's gradient and can be computed
 * in parts of any size: the result depends on the split only through the
 * order of float sums.
 *
 * Default micro-batch (micro <= 0): as many images as fit in
 * SFC_SFCNET_MICRO_PIXELS input pixels at scale 1 (4 at 512x512; a toy
 * batch at 64x64 goes through whole), at least one. */
#define SFC_SFCNET_MICRO_PIXELS (1L << 20)
int sfc_sfcnet_micro_default(int S);

/* How n images are cut into micro-batches of at most micro (> 0): chunks
 * k = 0 .. count - 1 of m = ceil(n / count) images, count = ceil(n /
 * micro); chunk k is images [*lo, *hi) = [k m, min(n, (k + 1) m)). Every
 * pass runs m images, so one activation plan serves the whole step: the
 * pass of a shorter last chunk is the window [*wlo, *wlo + m) = [n - m,
 * n), whose first m - (hi - lo) images are run again with no loss
 * (their gradients are exactly zero). Returns count. */
int sfc_sfcnet_micro_chunk(int n, int micro, int k, int *lo, int *hi,
                           int *wlo);

/* Accumulate into net->grads the gradients of n images that are part of a
 * training step of N images (n <= N): img (n, 3, S, S) normalised (0 on
 * padding), label (n, C) multi-hot, box (n, S, S) 1 on the pasted image,
 * dc (C) class weights; micro-batches of at most micro images (<= 0: the
 * default). Each image's loss counts 1/N, so calls over the parts of a
 * partition of the step's images (e.g. the ranks of a data-parallel step,
 * sfc_batch_split) add up to the whole step's gradient; adds the part's
 * share of the loss terms to *out. Zeroes neither. After the first call
 * for a given (m, S) it allocates nothing. */
void sfc_sfcnet_accumulate(struct sfc_sfcnet *net, const float *img,
                           const float *label, const float *box,
                           const float *dc, int n, int N, int S, int micro,
                           unsigned flags, struct sfc_sfc_losses *out);

/* One training step's gradients: zero the gradient block and *out, then
 * sfc_sfcnet_accumulate over all N images: forward both scales, the losses
 * of §2.5, backward. Returns the loss terms in *out. With micro >= N the
 * outputs of the last pass (net->act) are those of the whole batch. */
void sfc_sfcnet_step(struct sfc_sfcnet *net, const float *img,
                     const float *label, const float *box, const float *dc,
                     int N, int S, int micro, unsigned flags,
                     struct sfc_sfc_losses *out);

#endif
