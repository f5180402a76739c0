/* SPDX-License-Identifier: MIT */
/* segaug.h: the training augmentation of DeepLab-v2 (kazuto1011
 * deeplab-pytorch libs/datasets/base.py _augmentation), and the inputs of
 * segmentation inference.
 *
 * One sample, in the reference's order: a scale s drawn uniformly from a
 * list (DeepLab: 0.5, 0.75, 1, 1.25, 1.5); the image resized to (int(H s),
 * int(W s)) (PIL bicubic, lib/resample.h; the reference uses OpenCV's
 * bilinear, which sfc does not carry), the label by PIL nearest; both
 * padded at the bottom and right to at least crop x crop, the image with
 * the mean colour (0 after the ImageNet normalisation), the label with 255;
 * a crop x crop window at a uniform random offset; a horizontal flip with
 * probability 1/2. Random numbers only from the rng passed in, in a fixed
 * order: scale, row offset, column offset, flip, so a sample is replayed
 * from the rng's seed. */
#ifndef SFC_SEGAUG_H
#define SFC_SEGAUG_H

#include <stdint.h>

#include "rng.h"

#define SFC_SEG_AUG_MAXSCALES 16

struct sfc_seg_aug {
    int crop;                              /* window side (321) */
    int flip;                              /* 1: random horizontal flip */
    int nscale;                            /* >= 1 */
    double scales[SFC_SEG_AUG_MAXSCALES];  /* the scale list */
};

/* The random choices of one sample of an H x W image. */
struct sfc_seg_aug_draw {
    double scale;
    int sh, sw;   /* resized size: int(H s), int(W s), at least 1 */
    int oy, ox;   /* window offset in the padded resized image */
    int flip;
};
void sfc_seg_aug_draw(struct sfc_seg_aug_draw *d, int H, int W,
                      const struct sfc_seg_aug *a, struct sfc_rng *rng);
/* Apply a draw: img (H, W, 3) uint8 and lab (H, W) -> x (3, crop, crop)
 * normalised and lab_out (crop, crop). */
void sfc_seg_aug_apply(float *x, uint8_t *lab_out, const uint8_t *img,
                       const uint8_t *lab, int H, int W,
                       const struct sfc_seg_aug *a,
                       const struct sfc_seg_aug_draw *d);

/* Inference input: x (1 + flip, 3, H, W) = the normalised image and, if
 * flip, its horizontal mirror. */
void sfc_seg_input(float *x, const uint8_t *img, int H, int W, int flip);

#endif
