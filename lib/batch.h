/* SPDX-License-Identifier: MIT */
/* batch.h: training inputs from a schedule (sfc-reference.md §1.4, §2.1):
 * a slot's image is resized and flipped as its augmentation says, the
 * window cut and pasted into a zero canvas, normalised with ImageNet's
 * mean and std (so the padding, 0, is the mean colour), with the pasted
 * box as the valid mask. Also reads a step's slots back from the db. */
#ifndef SFC_BATCH_H
#define SFC_BATCH_H

#include <stdint.h>

#include "db.h"
#include "sample.h"

/* torchvision's ImageNet normalisation (§1.4). */
extern const float sfc_imagenet_mean[3], sfc_imagenet_std[3];

/* (x / 255 - mean) / std for a uint8 (H, W, 3) image into (3, H, W). */
void sfc_normalize_image(float *out, const uint8_t *rgb, int H, int W);

/* One slot: rgb (H, W, 3) -> img (3, S, S) and box (S, S). The
 * augmentation's h, w must be the image size after its resize
 * (sfc_aug_resized of H, W by a->scale): resize with PIL bicubic, then flip,
 * then the window. rgb == NULL fills a zero image and an empty box (a draw
 * from an empty bank entry). */
void sfc_batch_fill(float *img, float *box, const uint8_t *rgb, int H, int W,
                    const struct sfc_aug *a, int S);

/* Part k (0 .. parts - 1) of n items cut into parts contiguous ranges
 * whose sizes differ by at most one: [*lo, *hi) = [k n / parts, (k + 1) n
 * / parts) (e.g. a step's images over data-parallel ranks). */
void sfc_batch_split(int n, int parts, int k, int *lo, int *hi);

/* A schedule row as stored in the db. */
struct sfc_step_slot {
    char *image;       /* NULL: empty bank draw */
    int bank_class;    /* 0 for batch rows, else the class drawn */
    int epoch;
    struct sfc_aug aug; /* h, w left 0: the caller sets them from the image */
};

/* The slots of (run, step) in slot order: *n_out rows. A step with no
 * rows is an error. Free with sfc_step_slots_free. */
int sfc_step_slots_read(struct sfc_db *db, int64_t run, long step,
                        struct sfc_step_slot **out, int *n_out);
void sfc_step_slots_free(struct sfc_step_slot *v, int n);

#endif
