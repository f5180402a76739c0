/* SPDX-License-Identifier: MIT */
/* irnaug.h: the input side of IRN training and edge inference
 * (sfc-reference.md §1.4, §6.1, §7; IRN's VOC12AffinityDataset and
 * EdgeDisplacement): ImageNet normalisation, the random rescale / flip /
 * crop of an image and its IR label, the label's stride-4 grid, and the
 * padded image + flip pair of inference.
 *
 * Training sample, in the reference's order: scale s ~ U[lo, hi]; image
 * resized to (round(H s), round(W s)) with PIL bicubic, label with PIL
 * nearest (np.round sizes, lib/resample.h); normalised; both flipped with
 * probability 1/2; a crop x crop window: where the image is larger, a
 * random window of it, where smaller, the image placed at a random offset
 * of the canvas (image padded with 0 after normalisation, label with 255);
 * then the label resized by 1/4 with PIL nearest (source pixel 4x + 2 for
 * a crop divisible by 4). Random numbers come only from the rng passed in,
 * drawn in a fixed order: scale, flip, vertical then horizontal offset. */
#ifndef SFC_IRNAUG_H
#define SFC_IRNAUG_H

#include <stdint.h>

#include "rng.h"

/* torchvision's ImageNet statistics (§1.4). */
#define SFC_IMAGENET_MEAN {0.485f, 0.456f, 0.406f}
#define SFC_IMAGENET_STD {0.229f, 0.224f, 0.225f}

/* x (3, H, W) = (img / 255 - mean) / std of img uint8 (H, W, 3). */
void sfc_image_normalize(float *x, const uint8_t *img, int H, int W);

struct sfc_irn_aug {
    double scale_lo, scale_hi; /* rescale range: SFC (0.5, 1.0), IRN (0.5, 1.5) */
    int crop;                  /* window side (512) */
    int flip;                  /* 1: random horizontal flip */
};

/* Side of the label grid of a crop: np.round(crop / 4). */
int sfc_irn_grid_side(int crop);

/* The random choices of one sample, for an H x W input. */
struct sfc_irn_aug_draw {
    double scale;
    int sh, sw;  /* rescaled size */
    int flip;
    int sy, dy;  /* window rows: source start, destination start */
    int sx, dx;  /* window columns */
    int ly, lx;  /* window size: min(sh, crop), min(sw, crop) */
};
void sfc_irn_aug_draw(struct sfc_irn_aug_draw *d, int H, int W,
                      const struct sfc_irn_aug *a, struct sfc_rng *rng);
/* Apply a draw: img (H, W, 3) and lab (H, W) -> x (3, crop, crop) and
 * grid (g, g), g = sfc_irn_grid_side(crop). */
void sfc_irn_aug_apply(float *x, uint8_t *grid, const uint8_t *img,
                       const uint8_t *lab, int H, int W,
                       const struct sfc_irn_aug *a,
                       const struct sfc_irn_aug_draw *d);
/* Draw, then apply. */
void sfc_irn_augment(float *x, uint8_t *grid, const uint8_t *img,
                     const uint8_t *lab, int H, int W,
                     const struct sfc_irn_aug *a, struct sfc_rng *rng);

/* Inference input (§7): x (2, 3, S, S) = the normalised image and its
 * horizontal flip, each zero-padded at the right and bottom to S x S.
 * Needs H, W <= S. */
void sfc_irn_infer_input(float *x, const uint8_t *img, int H, int W, int S);

#endif
