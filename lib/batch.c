/* SPDX-License-Identifier: MIT */
/* batch.c: training inputs from schedule rows (sfc-reference.md §1.4,
 * §2.1; the reference's VOC12ClsDataset: optional random_resize_long and
 * flip, then normalisation, then imutils.random_crop into a zero canvas
 * with the valid mask of the pasted box). */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "err.h"
#include "resample.h"
#include "util.h"

const float sfc_imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
const float sfc_imagenet_std[3] = {0.229f, 0.224f, 0.225f};

void sfc_normalize_image(float *out, const uint8_t *rgb, int H, int W)
{
    size_t hw = (size_t)H * W;
    for (int c = 0; c < 3; c++) {
        float m = sfc_imagenet_mean[c], s = sfc_imagenet_std[c];
        for (size_t p = 0; p < hw; p++)
            out[c * hw + p] = ((float)rgb[p * 3 + c] / 255.0f - m) / s;
    }
}

void sfc_batch_split(int n, int parts, int k, int *lo, int *hi)
{
    SFC_ASSERT(n >= 0 && parts >= 1 && k >= 0 && k < parts);
    *lo = (int)((int64_t)k * n / parts);
    *hi = (int)((int64_t)(k + 1) * n / parts);
}

void sfc_batch_fill(float *img, float *box, const uint8_t *rgb, int H, int W,
                    const struct sfc_aug *a, int S)
{
    size_t SS = (size_t)S * S;
    memset(img, 0, sizeof(float) * 3 * SS);
    memset(box, 0, sizeof(float) * SS);
    if (!rgb) return;
    const uint8_t *src = rgb;
    uint8_t *tmp = NULL;
    int h = H, w = W;
    if (a->h != H || a->w != W) {
        tmp = sfc_xmalloc((size_t)a->h * a->w * 3);
        sfc_resize_bicubic_u8(tmp, a->h, a->w, rgb, H, W, 3);
        src = tmp;
        h = a->h;
        w = a->w;
    }
    for (int y = 0; y < a->ch; y++) {
        int sy = a->img_top + y, dy = a->cont_top + y;
        SFC_ASSERT(sy < h && dy < S);
        for (int x = 0; x < a->cw; x++) {
            int sx = a->img_left + x, dx = a->cont_left + x;
            SFC_ASSERT(sx < w && dx < S);
            if (a->flip) sx = w - 1 - sx; /* flip, then cut the window */
            const uint8_t *p = src + ((size_t)sy * w + sx) * 3;
            for (int c = 0; c < 3; c++)
                img[c * SS + (size_t)dy * S + dx] =
                    ((float)p[c] / 255.0f - sfc_imagenet_mean[c]) /
                    sfc_imagenet_std[c];
            box[(size_t)dy * S + dx] = 1.0f;
        }
    }
    free(tmp);
}

int sfc_step_slots_read(struct sfc_db *db, int64_t run, long step,
                        struct sfc_step_slot **out, int *n_out)
{
    sqlite3_stmt *st = sfc_db_prepare(
        db, "SELECT image, coalesce(bank_class, 0), epoch, scale, flip, "
            "src_y, src_x, dst_y, dst_x, crop_h, crop_w FROM schedule "
            "WHERE run = ?1 AND step = ?2 ORDER BY slot");
    if (!st) return -1;
    if (sfc_db_bind(db, st, "II", run, (int64_t)step)) {
        sqlite3_finalize(st);
        return -1;
    }
    int n = 0, cap = 0, rc;
    struct sfc_step_slot *v = NULL;
    while ((rc = sfc_db_step(db, st)) == 1) {
        if (n == cap) {
            cap = cap ? 2 * cap : 32;
            v = sfc_xrealloc(v, sizeof *v * (size_t)cap);
        }
        struct sfc_step_slot *s = &v[n++];
        memset(s, 0, sizeof *s);
        const unsigned char *im = sqlite3_column_text(st, 0);
        s->image = im ? sfc_xstrdup((const char *)im) : NULL;
        s->bank_class = sqlite3_column_int(st, 1);
        s->epoch = sqlite3_column_int(st, 2);
        s->aug.scale = sqlite3_column_double(st, 3);
        s->aug.flip = sqlite3_column_int(st, 4);
        s->aug.img_top = sqlite3_column_int(st, 5);
        s->aug.img_left = sqlite3_column_int(st, 6);
        s->aug.cont_top = sqlite3_column_int(st, 7);
        s->aug.cont_left = sqlite3_column_int(st, 8);
        s->aug.ch = sqlite3_column_int(st, 9);
        s->aug.cw = sqlite3_column_int(st, 10);
    }
    sqlite3_finalize(st);
    if (rc < 0) {
        sfc_step_slots_free(v, n);
        return -1;
    }
    if (n == 0) {
        free(v);
        return sfc_error(db->path, "no schedule rows for run %lld step %ld",
                         (long long)run, step);
    }
    *out = v;
    *n_out = n;
    return 0;
}

void sfc_step_slots_free(struct sfc_step_slot *v, int n)
{
    for (int i = 0; i < n; i++) free(v[i].image);
    free(v);
}
