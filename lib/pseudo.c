/* SPDX-License-Identifier: MIT */
/* pseudo.c: SFC's two-pass random-walk pseudo labels and IRN's single
 * pass (sfc-reference.md §7; SFC make_seg_labels.py, IRN
 * step/make_sem_seg_labels.py). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "ops.h"
#include "pseudo.h"
#include "rw.h"
#include "util.h"

void sfc_pseudo_params_default(struct sfc_pseudo_params *p)
{
    p->w_p = 0.3f;
    p->power = 1.3f;
    p->bg = 0.25f;
    p->beta = 10.0f;
    p->exp_times = 8;
    p->radius = 5;
    p->two_pass = 1;
    p->walk_double = 0;
}

/* One channel x (h, w) -> out (H, W): x4 upsampled, cropped. up holds
 * the upsampled (uh, uw) plane. */
static void up_crop(float *out, float *up, const float *x, int h, int w,
                    int H, int W)
{
    int uh = sfc_resize_outsize(h, 4.0), uw = sfc_resize_outsize(w, 4.0);
    sfc_resize_bilinear_forward(up, x, 1, 1, h, w, uh, uw, 0, 4.0, 4.0);
    for (int y = 0; y < H; y++)
        memcpy(out + (size_t)y * W, up + (size_t)y * uw, sizeof(float) * W);
}

/* The max over the n channels of x (n, h, w) upsampled and cropped; 1 if
 * it is not positive (all-zero maps stay zero; the reference divides by
 * 0). */
static float up_max(float *buf, float *up, const float *x, int n, int h,
                    int w, int H, int W)
{
    float mx = -INFINITY;
    for (int c = 0; c < n; c++) {
        up_crop(buf, up, x + (size_t)c * h * w, h, w, H, W);
        for (size_t i = 0; i < (size_t)H * W; i++)
            if (buf[i] > mx) mx = buf[i];
    }
    return mx > 0 ? mx : 1.0f;
}

int sfc_pseudo_label(uint8_t *label, const float *cam_w, const float *cam_p,
                     const int64_t *keys, int K, int H, int W,
                     const float *edge, int h, int w,
                     const struct sfc_pseudo_params *p)
{
    if (K < 1 || h != (H + 3) / 4 || w != (W + 3) / 4)
        return sfc_error(NULL, "pseudo label: edge map %dx%d does not fit "
                               "a %dx%d image", h, w, H, W);
    /* Memory is O(H W + K h w): the full-resolution maps are made one
     * channel at a time. */
    size_t HW = (size_t)H * W, hw = (size_t)h * w;
    float *s = sfc_xmalloc(sizeof(float) * HW);
    /* walk input: pass A = S[1:], then (two passes) pass B = S^power */
    int na = K - 1, nb = p->two_pass ? K : 0;
    float *x = sfc_xmalloc(sizeof(float) * (size_t)(na + nb) * hw + 1);
    float *sd = sfc_xmalloc(sizeof(float) * hw);
    for (int c = 0; c < K; c++) {
        const float *mw = cam_w + c * HW, *mp = cam_p ? cam_p + c * HW : NULL;
        for (size_t i = 0; i < HW; i++)
            s[i] = mw[i] + (mp ? p->w_p * mp[i] : 0.0f);
        sfc_resize_bilinear_forward(sd, s, 1, 1, H, W, h, w, 0, 0, 0);
        for (size_t i = 0; i < hw; i++) sd[i] = powf(sd[i], p->power);
        if (c) memcpy(x + (c - 1) * hw, sd, sizeof(float) * hw);
        if (nb)
            for (size_t i = 0; i < hw; i++)
                x[(na + c) * hw + i] = powf(sd[i], p->power);
    }
    free(sd);
    int rc = sfc_rw_propagate(x, na + nb, edge, h, w, p->radius, p->beta,
                              p->exp_times, p->walk_double);
    if (rc == 0) {
        int uh = sfc_resize_outsize(h, 4.0), uw = sfc_resize_outsize(w, 4.0);
        float *up = sfc_xmalloc(sizeof(float) * (size_t)uh * uw);
        float *ra = sfc_xmalloc(sizeof(float) * HW);
        float *rb = nb ? sfc_xmalloc(sizeof(float) * HW) : NULL;
        float *best = s; /* reused: the best score so far */
        float ma = na ? up_max(ra, up, x, na, h, w, H, W) : 1.0f;
        float mb = nb ? up_max(ra, up, x + na * hw, nb, h, w, H, W) : 1.0f;
        if (nb) up_crop(rb, up, x + na * hw, h, w, H, W);
        for (size_t i = 0; i < HW; i++) {
            best[i] = p->bg + (nb ? rb[i] / mb : 0.0f);
            label[i] = (uint8_t)keys[0];
        }
        for (int c = 1; c < K; c++) {
            up_crop(ra, up, x + (c - 1) * hw, h, w, H, W);
            if (nb) up_crop(rb, up, x + (na + c) * hw, h, w, H, W);
            for (size_t i = 0; i < HW; i++) {
                float v = ra[i] / ma + (nb ? rb[i] / mb : 0.0f);
                if (v > best[i]) best[i] = v, label[i] = (uint8_t)keys[c];
            }
        }
        free(up);
        free(ra);
        free(rb);
    }
    free(x);
    free(s);
    return rc;
}
