/* SPDX-License-Identifier: MIT */
/* sample.c: DC coefficients and the IBR schedule (sfc-reference.md §2.1,
 * §2.3, §2.5; the reference's train_resnet50_SFC.py bank loop and
 * IRN-lineage imutils.random_crop / random_resize_long). The stream of
 * random numbers is ours (xoshiro), not Python's: schedules are
 * reproducible from our seed, not bit-equal to the reference run. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "rng.h"
#include "sample.h"
#include "util.h"

double sfc_dc_n_ibr(long steps, int draws, int C)
{
    return C > 0 ? (double)steps * draws / C : 0.0;
}

int sfc_dc_compute(int C, const int64_t *counts, double n_ibr, double *dc)
{
    if (C < 1) return sfc_error(NULL, "DC needs at least one class");
    double mean = 0;
    for (int c = 0; c < C; c++) {
        double ben = 0;
        for (int k = 0; k < C; k++) ben += fabs((double)(counts[c] - counts[k]));
        double den = (double)counts[c] + n_ibr;
        dc[c] = den > 0 ? ben / den : 0.0;
        mean += dc[c];
    }
    mean /= C;
    if (!(mean > 0))
        return sfc_error(NULL, "DC undefined: every class has the same "
                               "count (or no images)");
    for (int c = 0; c < C; c++) dc[c] /= mean;
    return 0;
}

void sfc_aug_resized(int h, int w, double scale, int *h_out, int *w_out)
{
    /* np.round (half to even), as IRN's pil_rescale */
    *h_out = SFC_MAX(1, (int)nearbyint(h * scale));
    *w_out = SFC_MAX(1, (int)nearbyint(w * scale));
}

/* One dimension of random_crop: window origin in the image and placement
 * in the canvas. */
static void crop_dim(struct sfc_rng *r, int size, int crop, int *img_off,
                     int *cont_off, int *len)
{
    int space = size - crop;
    if (space > 0) {
        *cont_off = 0;
        *img_off = (int)sfc_rng_below(r, (uint64_t)space + 1);
    } else {
        *cont_off = (int)sfc_rng_below(r, (uint64_t)(-space) + 1);
        *img_off = 0;
    }
    *len = SFC_MIN(size, crop);
}

static void draw_aug(struct sfc_rng *r, const struct sfc_sched_params *p,
                     int h, int w, struct sfc_aug *a)
{
    memset(a, 0, sizeof *a);
    a->h = h;
    a->w = w;
    a->scale = 1.0;
    if (p->aug == SFC_AUG_IRN) {
        /* IRN's random_resize_long: target long side uniform in lo..hi */
        int target = p->resize_lo + (int)sfc_rng_below(
            r, (uint64_t)(p->resize_hi - p->resize_lo) + 1);
        a->scale = (double)target / SFC_MAX(h, w);
        sfc_aug_resized(h, w, a->scale, &a->h, &a->w);
        a->flip = (int)sfc_rng_below(r, 2);
    }
    crop_dim(r, a->w, p->crop, &a->img_left, &a->cont_left, &a->cw);
    crop_dim(r, a->h, p->crop, &a->img_top, &a->cont_top, &a->ch);
}

int sfc_schedule_build(const struct sfc_sched_params *p,
                       struct sfc_schedule *out)
{
    memset(out, 0, sizeof *out);
    if (p->n_images < 1 || p->C < 1 || p->epochs < 1 || p->batch < 1 ||
        p->draws < 0 || p->crop < 1)
        return sfc_error(NULL, "schedule: invalid parameters");
    if (p->batch > p->n_images)
        return sfc_error(NULL, "schedule: batch %d is larger than the %d "
                               "training images", p->batch, p->n_images);
    if (p->aug == SFC_AUG_IRN &&
        (p->resize_lo < 1 || p->resize_hi < p->resize_lo))
        return sfc_error(NULL, "schedule: invalid resize range %d..%d",
                         p->resize_lo, p->resize_hi);
    for (int i = 0; i < p->n_images; i++)
        if (p->height[i] < 1 || p->width[i] < 1)
            return sfc_error(NULL, "schedule: image %d has no size", i);

    out->steps_per_epoch = p->n_images / p->batch;
    out->steps = (long)p->epochs * out->steps_per_epoch;
    out->slots = p->batch + p->draws;
    out->C = p->C;
    out->slot = sfc_xcalloc((size_t)out->steps * out->slots,
                            sizeof *out->slot);
    out->bank = sfc_xcalloc((size_t)out->steps * p->C, sizeof *out->bank);

    struct sfc_rng rng;
    sfc_rng_seed(&rng, p->seed);
    int *order = sfc_xmalloc(sizeof(int) * (size_t)p->n_images);
    struct sfc_bank_entry *bank = sfc_xmalloc(sizeof *bank * (size_t)p->C);
    for (int c = 0; c < p->C; c++) {
        memset(&bank[c], 0, sizeof bank[c]);
        bank[c].image = -1;
        bank[c].since_step = -1;
    }
    long step = 0;
    for (int e = 0; e < p->epochs; e++) {
        for (int i = 0; i < p->n_images; i++) order[i] = i;
        sfc_rng_shuffle_int(&rng, order, p->n_images);
        for (int s = 0; s < out->steps_per_epoch; s++, step++) {
            struct sfc_slot *sl = out->slot + step * out->slots;
            int *b = order + (long)s * p->batch;
            /* the reference permutes the batch before the bank update */
            sfc_rng_shuffle_int(&rng, b, p->batch);
            for (int j = 0; j < p->batch; j++) {
                int im = b[j];
                sl[j].image = im;
                sl[j].bank_class = -1;
                draw_aug(&rng, p, p->height[im], p->width[im], &sl[j].aug);
                const uint8_t *lab = p->labels + (long)im * p->C;
                for (int c = 0; c < p->C; c++)
                    if (lab[c]) {
                        bank[c].image = im;
                        bank[c].since_step = (int)step;
                        bank[c].aug = sl[j].aug;
                    }
            }
            memcpy(out->bank + step * p->C, bank, sizeof *bank * (size_t)p->C);
            for (int d = 0; d < p->draws; d++) {
                int k = (int)sfc_rng_below(&rng, (uint64_t)p->C);
                struct sfc_slot *x = &sl[p->batch + d];
                x->bank_class = k;
                x->image = bank[k].image;
                x->aug = bank[k].aug;
            }
        }
    }
    free(order);
    free(bank);
    return 0;
}

void sfc_schedule_release(struct sfc_schedule *s)
{
    if (!s) return;
    free(s->slot);
    free(s->bank);
    memset(s, 0, sizeof *s);
}
