/* SPDX-License-Identifier: MIT */
/* irnaug.c: IRN's training augmentation and inference input
 * (sfc-reference.md §1.4, §6.1, §7), after IRN's
 * voc12/dataloader.VOC12AffinityDataset (random_scale, HWC_to_CHW after
 * normalisation, random_lr_flip, random_crop, pil_rescale of the label by
 * 0.25) and EdgeDisplacement's zero padding. The resizing itself is
 * lib/resample.c (PIL-exact). */
#include <stdlib.h>
#include <string.h>

#include "irnaug.h"
#include "resample.h"
#include "util.h"

void sfc_image_normalize(float *x, const uint8_t *img, int H, int W)
{
    static const float mean[3] = SFC_IMAGENET_MEAN, sd[3] = SFC_IMAGENET_STD;
    size_t hw = (size_t)H * W;
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < hw; i++)
            x[c * hw + i] = (img[3 * i + c] / 255.0f - mean[c]) / sd[c];
}

int sfc_irn_grid_side(int crop)
{
    return sfc_rescale_size(crop, 0.25);
}

/* IRN's crop box along one axis: source start, destination start, length */
static void crop_axis(int n, int crop, struct sfc_rng *rng, int *src,
                      int *dst, int *len)
{
    int space = n - crop;
    *len = n < crop ? n : crop;
    if (space > 0) {
        *dst = 0;
        *src = (int)sfc_rng_below(rng, (uint64_t)space + 1);
    } else {
        *src = 0;
        *dst = (int)sfc_rng_below(rng, (uint64_t)-space + 1);
    }
}

void sfc_irn_aug_draw(struct sfc_irn_aug_draw *d, int H, int W,
                      const struct sfc_irn_aug *a, struct sfc_rng *rng)
{
    d->scale =
        a->scale_lo + sfc_rng_uniform(rng) * (a->scale_hi - a->scale_lo);
    d->sh = sfc_rescale_size(H, d->scale);
    d->sw = sfc_rescale_size(W, d->scale);
    d->flip = a->flip && sfc_rng_uniform(rng) < 0.5;
    crop_axis(d->sh, a->crop, rng, &d->sy, &d->dy, &d->ly);
    crop_axis(d->sw, a->crop, rng, &d->sx, &d->dx, &d->lx);
}

void sfc_irn_aug_apply(float *x, uint8_t *grid, const uint8_t *img,
                       const uint8_t *lab, int H, int W,
                       const struct sfc_irn_aug *a,
                       const struct sfc_irn_aug_draw *d)
{
    int sh = d->sh, sw = d->sw;
    uint8_t *ri = sfc_xmalloc((size_t)sh * sw * 3);
    uint8_t *rl = sfc_xmalloc((size_t)sh * sw);
    sfc_resize_bicubic_u8(ri, sh, sw, img, H, W, 3);
    sfc_resize_nearest_u8(rl, sh, sw, lab, H, W, 1);
    size_t shw = (size_t)sh * sw;
    float *nx = sfc_xmalloc(sizeof(float) * 3 * shw);
    sfc_image_normalize(nx, ri, sh, sw);
    size_t cc = (size_t)a->crop * a->crop;
    memset(x, 0, sizeof(float) * 3 * cc);
    uint8_t *cl = sfc_xmalloc(cc);
    memset(cl, 255, cc);
    for (int y = 0; y < d->ly; y++)
        for (int xx = 0; xx < d->lx; xx++) {
            int col = d->sx + xx;
            if (d->flip) col = sw - 1 - col; /* flip, then crop */
            size_t si = (size_t)(d->sy + y) * sw + col;
            size_t di = (size_t)(d->dy + y) * a->crop + d->dx + xx;
            for (int c = 0; c < 3; c++) x[c * cc + di] = nx[c * shw + si];
            cl[di] = rl[si];
        }
    int g = sfc_irn_grid_side(a->crop);
    sfc_resize_nearest_u8(grid, g, g, cl, a->crop, a->crop, 1);
    free(ri);
    free(rl);
    free(nx);
    free(cl);
}

void sfc_irn_augment(float *x, uint8_t *grid, const uint8_t *img,
                     const uint8_t *lab, int H, int W,
                     const struct sfc_irn_aug *a, struct sfc_rng *rng)
{
    struct sfc_irn_aug_draw d;
    sfc_irn_aug_draw(&d, H, W, a, rng);
    sfc_irn_aug_apply(x, grid, img, lab, H, W, a, &d);
}

void sfc_irn_infer_input(float *x, const uint8_t *img, int H, int W, int S)
{
    size_t ss = (size_t)S * S, hw = (size_t)H * W;
    float *nx = sfc_xmalloc(sizeof(float) * 3 * hw);
    sfc_image_normalize(nx, img, H, W);
    memset(x, 0, sizeof(float) * 6 * ss);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++) {
                float v = nx[c * hw + (size_t)y * W + xx];
                x[c * ss + (size_t)y * S + xx] = v;
                x[(3 + c) * ss + (size_t)y * S + (W - 1 - xx)] = v;
            }
    free(nx);
}
