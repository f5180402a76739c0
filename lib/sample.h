/* SPDX-License-Identifier: MIT */
/* sample.h: class statistics, the scaled distribution coefficients (DC)
 * and the training schedule with Image Bank Re-sampling (IBR), as pure
 * functions of the dataset and a seed (sfc-reference.md §2.1, §2.3, §2.5).
 *
 * The schedule fixes, for every step, which images form the batch (in the
 * per-step permuted order), every augmentation parameter, and which bank
 * entries are drawn, so that training is a pure function of it. The bank
 * holds, per foreground class, the most recent batch image containing that
 * class together with the augmentation it had (the bank stores the cropped
 * image) and is updated with the batch before the draws. */
#ifndef SFC_SAMPLE_H
#define SFC_SAMPLE_H

#include <stdint.h>

/* ---- class statistics and DC (§2.5) ------------------------------------ */

/* Expected extra samples per class that the bank adds over a run:
 * steps * draws / C (the reference hard-codes 660*4*3/20 = 396 for VOC). */
double sfc_dc_n_ibr(long steps, int draws, int C);

/* DC_c = r_c / mean_k r_k with r_c = sum_k |N_c - N_k| / (N_c + n_ibr),
 * for the C foreground classes (counts[c] = images containing class c).
 * Returns -1 (error set) if C < 1 or every r_c is 0. */
int sfc_dc_compute(int C, const int64_t *counts, double n_ibr, double *dc);

/* ---- augmentation ----------------------------------------------------- */

enum sfc_aug_style {
    SFC_AUG_SFC = 0, /* SFC's code: random placement in the crop canvas */
    SFC_AUG_IRN = 1  /* IRN's: long side resized to U{lo..hi}, flip, crop */
};

/* The geometry of one training sample: the image (after the optional
 * long-side resize and flip) is cut to a window and pasted into a crop x
 * crop canvas (IRN's random_crop semantics, per dimension: if the image is
 * larger than the crop a random window is taken, else the whole image is
 * placed at a random offset). */
struct sfc_aug {
    double scale;    /* resize factor (1 = none): target long side / long side */
    int flip;        /* horizontal flip before cropping */
    int h, w;        /* image size after resize */
    int cont_top, cont_left; /* placement in the canvas */
    int img_top, img_left;   /* window origin in the image */
    int ch, cw;              /* window size = min(crop, size) */
};

/* Image size after resizing by scale: round(h * scale), round(w * scale)
 * with halves to even (numpy's np.round, as the reference), at least 1. Every user of a schedule computes sizes with this. */
void sfc_aug_resized(int h, int w, double scale, int *h_out, int *w_out);

/* ---- schedule --------------------------------------------------------- */

struct sfc_sched_params {
    int n_images;          /* training list size */
    const int *height, *width;  /* per image */
    int C;                 /* foreground classes */
    const uint8_t *labels; /* (n_images, C) multi-hot */
    int epochs, batch, draws, crop;
    enum sfc_aug_style aug;
    int resize_lo, resize_hi; /* SFC_AUG_IRN long-side range */
    uint64_t seed;
};

struct sfc_slot {
    int image;      /* index into the list; -1 = an empty bank slot */
    int bank_class; /* -1 for a batch image, else the class drawn */
    struct sfc_aug aug;
};

struct sfc_bank_entry {
    int image;       /* -1 = empty (class not seen yet) */
    int since_step;  /* step at which it was stored */
    struct sfc_aug aug;
};

struct sfc_schedule {
    long steps;           /* epochs * (n_images / batch), drop_last */
    int steps_per_epoch;
    int slots;            /* batch + draws per step */
    int C;
    struct sfc_slot *slot;        /* (steps, slots) */
    struct sfc_bank_entry *bank;  /* (steps, C): state after the update,
                                     before the draws, of each step */
};

/* Build the whole schedule. One PRNG stream seeded by p->seed; per epoch a
 * shuffle of the list; per step a permutation of the batch, the
 * augmentation of each batch slot in order, the bank update in that order,
 * then `draws` classes drawn uniformly with replacement. -1 on bad
 * parameters (error set). */
int sfc_schedule_build(const struct sfc_sched_params *p,
                       struct sfc_schedule *out);
void sfc_schedule_release(struct sfc_schedule *s);

#endif
