/* SPDX-License-Identifier: MIT */
/* optim.h: SGD over a flat parameter block with parameter groups, weight
 * decay, momentum, the poly schedule and global-norm gradient clipping,
 * with PyTorch's semantics (torch.optim.SGD, dampening 0, no Nesterov;
 * torch.nn.utils.clip_grad_norm_; IRN's PolyOptimizerSGD), and
 * checkpoints that resume bit-exactly. sfc-reference.md §2.6.
 *
 * A group is a list of ranges [off, off + len) of the block with its own
 * initial lr and weight decay. Only parameters that receive gradients
 * belong in a group: PyTorch skips parameters whose .grad is None (no
 * decay, no update), here such parameters are simply left out (a frozen
 * prefix of a ResNet, its BN running statistics).
 *
 * Step t (0-based, before the update): lr_g = lr0_g * (1 - t/T)^power for
 * t < T (T = max_step; after T the last lr stays, as PolyOptimizerSGD);
 * T = 0 keeps lr0. Then, if clip > 0: total = sqrt(sum of squared
 * gradients over all groups), coef = clip / (total + 1e-6), and the
 * gradients are multiplied by coef if coef < 1. Then per element:
 *   d = g + wd * p;  buf = (t == 0) ? d : momentum * buf + d;  p -= lr * buf
 * (without momentum: p -= lr * d). Float32 arithmetic, lr and coefficients
 * rounded to float as PyTorch does. */
#ifndef SFC_OPTIM_H
#define SFC_OPTIM_H

#include <stddef.h>

#include "pblock.h"

struct sfc_range {
    size_t off, len; /* floats */
};

struct sfc_sgd_group {
    double lr0, weight_decay;
    double lr;                   /* lr of the last step */
    int nranges;
    struct sfc_range *ranges;    /* owned copy */
};

struct sfc_sgd {
    size_t n;                    /* floats in the parameter block */
    double momentum;             /* 0: none (no buffers) */
    double power;                /* poly power (0.9) */
    long max_step;               /* poly T; 0 = constant lr */
    double clip;                 /* max global L2 norm; 0 = off */
    long step;                   /* updates done so far */
    float *buf;                  /* (n) momentum buffers, NULL if none */
    double *part;                /* partial sums of the norm (internal) */
    int ngroups;
    struct sfc_sgd_group *groups;
};

/* An optimiser for a block of n floats, no groups yet. Rejects (returns
 * -1) negative momentum, power, max_step or clip. */
int sfc_sgd_init(struct sfc_sgd *o, size_t n, double momentum, double power,
                 long max_step, double clip);
void sfc_sgd_release(struct sfc_sgd *o);
/* Add a group; ranges are copied and must lie in [0, n) and not overlap
 * any range already added (SFC_ASSERT). */
void sfc_sgd_add_group(struct sfc_sgd *o, double lr0, double weight_decay,
                       int nranges, const struct sfc_range *ranges);

/* The lr factor (1 - t/T)^power for step t. */
double sfc_sgd_poly(const struct sfc_sgd *o, long t);

/* Global L2 norm of the gradients in the groups (double, summed in a fixed
 * order whatever the thread count). */
double sfc_sgd_grad_norm(const struct sfc_sgd *o, const float *grads);

/* One update: schedule, clipping (grads are scaled in place), then the
 * SGD step on params; step += 1. Returns the gradient norm before
 * clipping (0 if clip is off and nothing computed it). */
double sfc_sgd_step(struct sfc_sgd *o, float *params, float *grads);

/* The smallest range [*off, *off + *len) of the block that holds every
 * group's ranges ({0, 0} without groups): the part of the gradient block
 * a data-parallel step sums over ranks (lib/dist.h). */
void sfc_sgd_span(const struct sfc_sgd *o, size_t *off, size_t *len);
/* Make the optimiser state (step, momentum buffers) of every rank rank
 * 0's (lib/dist.h; a no-op in one process). Groups are not sent: every
 * rank builds the same. */
void sfc_sgd_bcast(struct sfc_sgd *o);

/* Checkpoints: the block under its layout's names, plus the optimiser's
 * state: tensor "optim.momentum" (n floats, when momentum != 0) and
 * metadata "optim.step". Loading (o may be NULL to load only weights)
 * restores both, so a resumed run continues bit-exactly; keys "optim.*"
 * are not model keys; other unknown keys are errors as in
 * sfc_pblock_load. */
int sfc_checkpoint_save(const char *path, const struct sfc_pblock *pb,
                        const float *params, const struct sfc_sgd *o);
/* The same with nmeta extra metadata pairs (e.g. a model's configuration);
 * o may be NULL to write weights only. */
int sfc_checkpoint_save_meta(const char *path, const struct sfc_pblock *pb,
                             const float *params, const struct sfc_sgd *o,
                             int nmeta, const char *const *keys,
                             const char *const *values);
int sfc_checkpoint_load(const char *path, const struct sfc_pblock *pb,
                        float *params, struct sfc_sgd *o);

#endif
