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
}

/* x (n, h, w) -> x4 upsampled, cropped to (n, H, W), divided by its max. */
static void up_crop_norm(float *out, const float *x, int n, int h, int w,
                         int H, int W)
{
    int uh = sfc_resize_outsize(h, 4.0), uw = sfc_resize_outsize(w, 4.0);
    float *up = sfc_xmalloc(sizeof(float) * (size_t)n * uh * uw);
    sfc_resize_bilinear_forward(up, x, 1, n, h, w, uh, uw, 0, 4.0, 4.0);
    float mx = -INFINITY;
    for (int c = 0; c < n; c++)
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++) {
                float v = up[((size_t)c * uh + y) * uw + xx];
                out[((size_t)c * H + y) * W + xx] = v;
                if (v > mx) mx = v;
            }
    if (mx > 0) /* all-zero maps stay zero (the reference divides by 0) */
        for (size_t i = 0; i < (size_t)n * H * W; i++) out[i] /= mx;
    free(up);
}

int sfc_pseudo_label(uint8_t *label, const float *cam_w, const float *cam_p,
                     const int64_t *keys, int K, int H, int W,
                     const float *edge, int h, int w,
                     const struct sfc_pseudo_params *p)
{
    if (K < 1 || h != (H + 3) / 4 || w != (W + 3) / 4)
        return sfc_error(NULL, "pseudo label: edge map %dx%d does not fit "
                               "a %dx%d image", h, w, H, W);
    size_t HW = (size_t)H * W, hw = (size_t)h * w;
    float *s = sfc_xmalloc(sizeof(float) * K * HW);
    for (size_t i = 0; i < K * HW; i++)
        s[i] = cam_w[i] + (cam_p ? p->w_p * cam_p[i] : 0.0f);
    /* walk input: pass A = S[1:], then (two passes) pass B = S^power */
    int na = K - 1, nb = p->two_pass ? K : 0;
    float *x = sfc_xmalloc(sizeof(float) * (size_t)(na + nb) * hw + 1);
    float *sd = sfc_xmalloc(sizeof(float) * K * hw);
    sfc_resize_bilinear_forward(sd, s, 1, K, H, W, h, w, 0, 0, 0);
    for (size_t i = 0; i < K * hw; i++) sd[i] = powf(sd[i], p->power);
    memcpy(x, sd + hw, sizeof(float) * na * hw);
    for (size_t i = 0; i < (size_t)nb * hw; i++)
        x[na * hw + i] = powf(sd[i], p->power);
    int rc = sfc_rw_propagate(x, na + nb, edge, h, w, p->radius, p->beta,
                              p->exp_times);
    if (rc == 0) {
        float *ra = sfc_xmalloc(sizeof(float) * (na + nb) * HW);
        if (na) up_crop_norm(ra, x, na, h, w, H, W);
        if (nb) up_crop_norm(ra + na * HW, x + na * hw, nb, h, w, H, W);
        const float *rb = ra + na * HW;
        for (size_t i = 0; i < HW; i++) {
            float best = p->bg + (nb ? rb[i] : 0.0f);
            int arg = 0;
            for (int c = 1; c < K; c++) {
                float v = ra[(c - 1) * HW + i] + (nb ? rb[c * HW + i] : 0.0f);
                if (v > best) best = v, arg = c;
            }
            label[i] = (uint8_t)keys[arg];
        }
        free(ra);
    }
    free(sd);
    free(x);
    free(s);
    return rc;
}
