/* SPDX-License-Identifier: MIT */
/* test-segaug.c: DeepLab's training sample (lib/segaug.c) against numpy +
 * Pillow (tests/ref/ref_segaug.py: resizing, normalisation, padding, crop
 * window and flip for given draws; goldens and fresh seeds), and the draws
 * themselves: offsets inside the padded image, every listed scale drawn,
 * flips about half the time, the same seed gives the same draws. Also the
 * inference input with its mirror. */
#include "npy.h"
#include "segaug.h"
#include "sfc.h"
#include "test.h"

static void check_dir(const char *dir)
{
    for (int i = 0; i < 4; i++) {
        char *path = sfc_xasprintf("%s/case%d.npz", dir, i);
        struct sfc_npz z;
        if (!T_CHECK(sfc_npz_read(path, &z) == 0)) {
            fprintf(stderr, "%s\n", sfc_errmsg());
            free(path);
            continue;
        }
        const struct sfc_tensor *img = sfc_npz_get(&z, "img"),
                                *lab = sfc_npz_get(&z, "lab"),
                                *dr = sfc_npz_get(&z, "draw"),
                                *x = sfc_npz_get(&z, "x"),
                                *y = sfc_npz_get(&z, "y");
        T_CHECK(img && lab && dr && x && y);
        const float *dv = sfc_tensor_f(dr);
        int H = (int)img->shape[0], W = (int)img->shape[1];
        struct sfc_seg_aug a = {(int)dv[4], 1, 1, {dv[0]}};
        struct sfc_seg_aug_draw d = {dv[0], (int)(H * (double)dv[0]),
                                     (int)(W * (double)dv[0]), (int)dv[1],
                                     (int)dv[2], (int)dv[3]};
        int S = a.crop;
        float *gx = sfc_xmalloc(sizeof(float) * 3 * S * S);
        uint8_t *gy = sfc_xmalloc((size_t)S * S);
        sfc_seg_aug_apply(gx, gy, img->data, lab->data, H, W, &a, &d);
        test_close(path, gx, sfc_tensor_f(x), 3 * S * S, 1e-6, 1e-6);
        int bad = 0;
        for (int j = 0; j < S * S; j++) bad += gy[j] != ((uint8_t *)y->data)[j];
        T_CHECK_MSG(bad == 0, "%s: %d label pixels differ", path, bad);
        free(gx);
        free(gy);
        sfc_npz_release(&z);
        free(path);
    }
}

static void test_draws(void)
{
    struct sfc_seg_aug a = {321, 1, 5, {0.5, 0.75, 1, 1.25, 1.5}};
    int seen[5] = {0}, flips = 0, n = 2000, ok = 1;
    struct sfc_rng r, r2;
    sfc_rng_seed(&r, 3);
    for (int i = 0; i < n; i++) {
        struct sfc_seg_aug_draw d, d2;
        int H = 200 + i % 300, W = 500 - i % 250;
        sfc_seg_aug_draw(&d, H, W, &a, &r);
        for (int k = 0; k < 5; k++) seen[k] += d.scale == a.scales[k];
        flips += d.flip;
        ok &= d.sh == (int)(H * d.scale) && d.sw == (int)(W * d.scale);
        ok &= d.oy >= 0 && d.oy + a.crop <= SFC_MAX(d.sh, a.crop);
        ok &= d.ox >= 0 && d.ox + a.crop <= SFC_MAX(d.sw, a.crop);
        sfc_rng_seed(&r2, 1000 + i);
        sfc_seg_aug_draw(&d, H, W, &a, &r2);
        sfc_rng_seed(&r2, 1000 + i);
        sfc_seg_aug_draw(&d2, H, W, &a, &r2);
        ok &= d.scale == d2.scale && d.sh == d2.sh && d.sw == d2.sw &&
              d.oy == d2.oy && d.ox == d2.ox && d.flip == d2.flip;
    }
    T_CHECK(ok);
    for (int k = 0; k < 5; k++)
        T_CHECK_MSG(seen[k] > n / 5 - 100 && seen[k] < n / 5 + 100,
                    "scale %g drawn %d times", a.scales[k], seen[k]);
    T_CHECK_MSG(flips > n / 2 - 100 && flips < n / 2 + 100, "%d flips", flips);
    a.flip = 0;
    struct sfc_seg_aug_draw d;
    int any = 0;
    for (int i = 0; i < 100; i++) {
        sfc_seg_aug_draw(&d, 50, 60, &a, &r);
        any |= d.flip;
    }
    T_CHECK(!any);
}

static void test_input(void)
{
    enum { H = 3, W = 4 };
    uint8_t img[H * W * 3];
    for (int i = 0; i < H * W * 3; i++) img[i] = (uint8_t)(i * 7);
    float x[2 * 3 * H * W];
    sfc_seg_input(x, img, H, W, 1);
    int ok = 1;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++)
                ok &= x[(3 + c) * H * W + y * W + xx] ==
                      x[c * H * W + y * W + (W - 1 - xx)];
    T_CHECK(ok);
    T_CHECK(fabsf(x[0] - (0 / 255.0f - 0.485f) / 0.229f) < 1e-6f);
}

int main(void)
{
    test_draws();
    test_input();
    test_with_oracle("ref_segaug.py", "segaug", check_dir);
    return test_summary();
}
