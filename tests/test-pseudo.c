/* SPDX-License-Identifier: MIT */
/* test-pseudo.c: random-walk pseudo labels (SFC two passes, IRN single
 * pass) against tests/ref/ref_pseudo.py (PyTorch resizing + a dense
 * float64 walk), on the goldens and, with the oracle, on fresh cases:
 * the label maps must be identical, with the walk in float32 (the
 * default) and in float64. */
#include "npy.h"
#include "pseudo.h"
#include "sfc.h"
#include "test.h"

static void check_case(const char *dir, int i, int two)
{
    char *path = sfc_xasprintf("%s/case%d_%s.npz", dir, i, two ? "sfc" : "irn");
    struct sfc_npz z;
    if (!T_CHECK(sfc_npz_read(path, &z) == 0)) {
        fprintf(stderr, "%s\n", sfc_errmsg());
        free(path);
        return;
    }
    const struct sfc_tensor *cw = sfc_npz_get(&z, "cam_w"),
                            *cp = sfc_npz_get(&z, "cam_p"),
                            *keys = sfc_npz_get(&z, "keys"),
                            *edge = sfc_npz_get(&z, "edge"),
                            *want = sfc_npz_get(&z, "label");
    T_CHECK(cw && cp && keys && edge && want);
    int K = (int)cw->shape[0], H = (int)cw->shape[1], W = (int)cw->shape[2];
    struct sfc_pseudo_params p;
    sfc_pseudo_params_default(&p);
    p.two_pass = two;
    uint8_t *lab = sfc_xmalloc((size_t)H * W);
    for (int dbl = 0; dbl < 2; dbl++) { /* the walk in float32, float64 */
        p.walk_double = dbl;
        T_CHECK(sfc_pseudo_label(lab, cw->data, cp->data, keys->data, K, H,
                                 W, edge->data, (int)edge->shape[0],
                                 (int)edge->shape[1], &p) == 0);
        int diff = 0;
        for (int j = 0; j < H * W; j++)
            diff += lab[j] != ((uint8_t *)want->data)[j];
        T_CHECK_MSG(diff == 0, "%s (%s): %d of %d labels differ", path,
                    dbl ? "f64" : "f32", diff, H * W);
    }
    /* a wrong edge grid is refused */
    T_CHECK(sfc_pseudo_label(lab, cw->data, cp->data, keys->data, K, H, W,
                             edge->data, (int)edge->shape[0] + 1,
                             (int)edge->shape[1], &p) == -1);
    free(lab);
    sfc_npz_release(&z);
    free(path);
}

static void check_dir(const char *dir)
{
    for (int i = 0; i < 2; i++) {
        check_case(dir, i, 1);
        check_case(dir, i, 0);
    }
}

int main(int argc, char **argv)
{
    (void)argc;
    sfc_proginit(argv[0]);
    test_with_oracle("ref_pseudo.py", "pseudo", check_dir);
    return test_summary();
}
