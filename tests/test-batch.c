/* SPDX-License-Identifier: MIT */
/* test-batch.c: training slots (resize, flip, window, canvas,
 * normalisation, box) against tests/ref/ref_batch.py (PIL + numpy), on the
 * golden and, with the oracle, fresh random cases. */
#include "batch.h"
#include "npy.h"
#include "sfc.h"
#include "test.h"

static void check_dir(const char *dir)
{
    char *path = sfc_xasprintf("%s/batch.npz", dir);
    struct sfc_npz z;
    if (!T_CHECK(sfc_npz_read(path, &z) == 0)) {
        fprintf(stderr, "%s\n", sfc_errmsg());
        free(path);
        return;
    }
    const struct sfc_tensor *rgb = sfc_npz_get(&z, "rgb"),
                            *augs = sfc_npz_get(&z, "augs"),
                            *img = sfc_npz_get(&z, "img"),
                            *box = sfc_npz_get(&z, "box"),
                            *St = sfc_npz_get(&z, "S");
    T_CHECK(rgb && augs && img && box && St);
    int S = (int)*(int64_t *)St->data, H = (int)rgb->shape[0],
        W = (int)rgb->shape[1];
    float *im = sfc_xmalloc(sizeof(float) * 3 * S * S);
    float *bx = sfc_xmalloc(sizeof(float) * S * S);
    for (int k = 0; k < augs->shape[0]; k++) {
        const int64_t *a = (int64_t *)augs->data + 9 * k;
        struct sfc_aug g = {0};
        g.h = (int)a[0];
        g.w = (int)a[1];
        g.flip = (int)a[2];
        g.img_top = (int)a[3];
        g.img_left = (int)a[4];
        g.cont_top = (int)a[5];
        g.cont_left = (int)a[6];
        g.ch = (int)a[7];
        g.cw = (int)a[8];
        sfc_batch_fill(im, bx, rgb->data, H, W, &g, S);
        char name[64];
        snprintf(name, sizeof name, "slot %d image", k);
        test_close(name, im, (float *)img->data + (size_t)k * 3 * S * S,
                   3L * S * S, 1e-6, 1e-6);
        snprintf(name, sizeof name, "slot %d box", k);
        test_close(name, bx, (float *)box->data + (size_t)k * S * S,
                   (long)S * S, 0, 0);
    }
    /* an empty bank draw: zero image, empty box */
    sfc_batch_fill(im, bx, NULL, H, W, NULL, S);
    int nz = 0;
    for (int i = 0; i < 3 * S * S; i++) nz += im[i] != 0;
    for (int i = 0; i < S * S; i++) nz += bx[i] != 0;
    T_CHECK(nz == 0);
    free(im);
    free(bx);
    sfc_npz_release(&z);
    free(path);
}

int main(int argc, char **argv)
{
    (void)argc;
    sfc_proginit(argv[0]);
    test_with_oracle("ref_batch.py", "batch", check_dir);
    return test_summary();
}
