/* SPDX-License-Identifier: MIT */
/* test-resample.c: PIL-compatible bicubic and nearest resizing and the
 * np.round size rule, bit-exact against Pillow (tests/ref/ref_resample.py)
 * on the goldens and, with the oracle, on fresh random images. */
#include "npy.h"
#include "resample.h"
#include "sfc.h"
#include "test.h"

static int count_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    int d = 0;
    for (size_t i = 0; i < n; i++) d += a[i] != b[i];
    return d;
}

static void check_dir(const char *dir)
{
    for (int i = 0; i < 6; i++) {
        char *path = sfc_xasprintf("%s/case%d.npz", dir, i);
        struct sfc_npz z;
        if (!T_CHECK(sfc_npz_read(path, &z) == 0)) {
            fprintf(stderr, "%s\n", sfc_errmsg());
            free(path);
            continue;
        }
        const struct sfc_tensor *img = sfc_npz_get(&z, "img"),
                                *bic = sfc_npz_get(&z, "bicubic"),
                                *nea = sfc_npz_get(&z, "nearest");
        T_CHECK(img && bic && nea && img->dtype == SFC_U8);
        int H = (int)img->shape[0], W = (int)img->shape[1],
            C = (int)img->shape[2], OH = (int)bic->shape[0],
            OW = (int)bic->shape[1];
        size_t n = (size_t)OH * OW * C;
        uint8_t *out = sfc_xmalloc(n);
        sfc_resize_bicubic_u8(out, OH, OW, img->data, H, W, C);
        int d = count_diff(out, bic->data, n);
        T_CHECK_MSG(d == 0, "%s: bicubic %dx%d -> %dx%d: %d of %zu differ",
                    path, H, W, OH, OW, d, n);
        sfc_resize_nearest_u8(out, OH, OW, img->data, H, W, C);
        d = count_diff(out, nea->data, n);
        T_CHECK_MSG(d == 0, "%s: nearest: %d of %zu differ", path, d, n);
        free(out);
        sfc_npz_release(&z);
        free(path);
    }
    char *path = sfc_xasprintf("%s/sizes.npz", dir);
    struct sfc_npz z;
    if (T_CHECK(sfc_npz_read(path, &z) == 0)) {
        const struct sfc_tensor *sz = sfc_npz_get(&z, "sizes"),
                                *r = sfc_npz_get(&z, "rounded");
        /* the scales of ref_resample.py, in its order */
        const double scales[] = {0.5, 1.5, 2.0, 0.25, 0.75, 1.25};
        T_CHECK(sz && r && r->shape[1] == 6);
        int bad = 0;
        for (int i = 0; sz && r && i < sz->shape[0]; i++)
            for (int j = 0; j < 6; j++) {
                int64_t want = ((int64_t *)r->data)[i * 6 + j];
                int got = sfc_rescale_size((int)((int64_t *)sz->data)[i],
                                           scales[j]);
                if (want >= 1 && got != want) bad++;
            }
        T_CHECK_MSG(bad == 0, "%d rescale sizes differ from np.round", bad);
        sfc_npz_release(&z);
    }
    free(path);
}

int main(int argc, char **argv)
{
    (void)argc;
    sfc_proginit(argv[0]);
    test_with_oracle("ref_resample.py", "resample", check_dir);
    return test_summary();
}
