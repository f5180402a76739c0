/* SPDX-License-Identifier: MIT */
/* segaug.c: DeepLab-v2's training augmentation and inference inputs (see
 * segaug.h), after kazuto1011 deeplab-pytorch libs/datasets/base.py
 * (_augmentation: random.choice of the scale, int() sizes, copyMakeBorder
 * at the bottom and right with the mean and the ignore label,
 * random.randint offsets, flip after the crop) and sfc-reference.md §1.4
 * (ImageNet normalisation; padding 0 after it is the mean). */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "irnaug.h"
#include "resample.h"
#include "segaug.h"
#include "util.h"

void sfc_seg_aug_draw(struct sfc_seg_aug_draw *d, int H, int W,
                      const struct sfc_seg_aug *a, struct sfc_rng *rng)
{
    SFC_ASSERT(a->nscale >= 1 && a->nscale <= SFC_SEG_AUG_MAXSCALES);
    d->scale = a->scales[sfc_rng_below(rng, (uint64_t)a->nscale)];
    d->sh = SFC_MAX(1, (int)(H * d->scale));
    d->sw = SFC_MAX(1, (int)(W * d->scale));
    int ph = SFC_MAX(d->sh, a->crop), pw = SFC_MAX(d->sw, a->crop);
    d->oy = (int)sfc_rng_below(rng, (uint64_t)(ph - a->crop) + 1);
    d->ox = (int)sfc_rng_below(rng, (uint64_t)(pw - a->crop) + 1);
    d->flip = a->flip && sfc_rng_uniform(rng) < 0.5;
}

void sfc_seg_aug_apply(float *x, uint8_t *lab_out, const uint8_t *img,
                       const uint8_t *lab, int H, int W,
                       const struct sfc_seg_aug *a,
                       const struct sfc_seg_aug_draw *d)
{
    int sh = d->sh, sw = d->sw, S = a->crop;
    const uint8_t *ri = img, *rl = lab;
    uint8_t *ri_m = NULL, *rl_m = NULL;
    if (sh != H || sw != W) { /* PIL returns a copy at the same size */
        ri = ri_m = sfc_xmalloc((size_t)sh * sw * 3);
        rl = rl_m = sfc_xmalloc((size_t)sh * sw);
        sfc_resize_bicubic_u8(ri_m, sh, sw, img, H, W, 3);
        sfc_resize_nearest_u8(rl_m, sh, sw, lab, H, W, 1);
    }
    static const float mean[3] = SFC_IMAGENET_MEAN, sd[3] = SFC_IMAGENET_STD;
    size_t ss = (size_t)S * S;
    for (int y = 0; y < S; y++)
        for (int xx = 0; xx < S; xx++) {
            int sy = d->oy + y, sx = d->ox + (d->flip ? S - 1 - xx : xx);
            size_t di = (size_t)y * S + xx;
            if (sy < sh && sx < sw) {
                size_t si = (size_t)sy * sw + sx;
                for (int c = 0; c < 3; c++)
                    x[c * ss + di] = (ri[3 * si + c] / 255.0f - mean[c]) /
                                     sd[c];
                lab_out[di] = rl[si];
            } else {
                for (int c = 0; c < 3; c++) x[c * ss + di] = 0;
                lab_out[di] = 255;
            }
        }
    free(ri_m);
    free(rl_m);
}

void sfc_seg_input(float *x, const uint8_t *img, int H, int W, int flip)
{
    size_t hw = (size_t)H * W;
    sfc_image_normalize(x, img, H, W);
    if (!flip) return;
    float *f = x + 3 * hw;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++)
                f[c * hw + (size_t)y * W + xx] =
                    x[c * hw + (size_t)y * W + (W - 1 - xx)];
}
