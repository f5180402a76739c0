/* SPDX-License-Identifier: MIT */
/* test-coco: lib/coco against tests/ref/ref_coco.py (an independent Python
 * re-expression of COCO's RLE formats and a brute-force polygon raster):
 * - cases.json: every annotation's instance mask equals the oracle's
 *   (RLE as counts and as strings, random / self-intersecting /
 *   integer-corner / partly outside polygons); encoding the mask gives the
 *   oracle's counts and string back;
 * - toy/: a COCO file traced from the toy dataset's true masks: RLE
 *   objects come back exactly, polygon objects with IoU >= 0.98 against
 *   their true component; whole class masks agree with the truth (crowd
 *   as class) and crowd pixels are 255 with SFC_COCO_CROWD_IGNORE; the 80
 *   categories map to classes 1..80 in id order;
 * - malformed RLE strings are errors. */
#include "coco.h"
#include "err.h"
#include "img.h"
#include "npy.h"
#include "test.h"
#include "util.h"

static void check_cases(const char *dir)
{
    char *js = sfc_xasprintf("%s/cases.json", dir);
    char *nz = sfc_xasprintf("%s/cases.npz", dir);
    struct sfc_coco c;
    struct sfc_npz z;
    int ok = sfc_coco_read(js, 1.0, &c) == 0;
    T_CHECK_MSG(ok, "%s", sfc_errmsg());
    T_CHECK_MSG(sfc_npz_read(nz, &z) == 0, "%s", sfc_errmsg());
    if (!ok) return;
    long npoly = 0, nrle = 0, nstr = 0;
    for (long a = 0; a < c.n_anns; a++) {
        const struct sfc_coco_ann *an = &c.anns[a];
        const struct sfc_coco_image *im = &c.images[an->image];
        int H = im->height, W = im->width;
        char name[32];
        snprintf(name, sizeof name, "m%lld", (long long)an->id);
        const struct sfc_tensor *want = sfc_npz_get(&z, name);
        T_CHECK_MSG(want && want->shape[0] == H && want->shape[1] == W,
                    "%s", name);
        if (!want) continue;
        uint8_t *m = sfc_xmalloc((size_t)H * W);
        long px = sfc_coco_ann_mask(&c, a, m), wpx = 0;
        long diff = 0;
        for (long q = 0; q < (long)H * W; q++) {
            diff += m[q] != ((const uint8_t *)want->data)[q];
            wpx += ((const uint8_t *)want->data)[q];
        }
        T_CHECK_MSG(diff == 0 && px == wpx, "annotation %lld (%s, %dx%d): "
                    "%ld pixels differ", (long long)an->id,
                    an->kind == SFC_COCO_POLY ? "polygon" : "rle", W, H,
                    diff);
        if (an->kind != SFC_COCO_POLY) {
            size_t n;
            uint32_t *cnt = sfc_coco_rle_encode(want->data, H, W, &n);
            char *s = sfc_coco_rle_to_string(cnt, n);
            if (an->kind == SFC_COCO_RLE) {
                T_CHECK_MSG(n == an->n && !memcmp(cnt, c.counts + an->off,
                                                  n * sizeof *cnt),
                            "annotation %lld: encoded runs differ",
                            (long long)an->id);
                nrle++;
            } else {
                T_CHECK_MSG(strlen(s) == an->n &&
                                !memcmp(s, c.str + an->off, an->n),
                            "annotation %lld: string '%s' vs '%.*s'",
                            (long long)an->id, s, (int)an->n,
                            c.str + an->off);
                uint32_t *back;
                size_t nb;
                T_CHECK(sfc_coco_rle_from_string("t", s, strlen(s), &back,
                                                 &nb) == 0);
                T_CHECK(nb == n && !memcmp(back, cnt, n * sizeof *cnt));
                free(back);
                nstr++;
            }
            free(s);
            free(cnt);
        } else {
            npoly++;
        }
        free(m);
    }
    T_CHECK(npoly >= 10 && nrle >= 5 && nstr >= 5);
    fprintf(stderr, "%s: %ld polygon, %ld RLE, %ld string cases\n", dir,
            npoly, nrle, nstr);
    sfc_npz_release(&z);
    sfc_coco_release(&c);
    free(js);
    free(nz);
}

/* 4-connected component of value v at p, marked into comp (cleared). */
static long flood(const uint8_t *t, int H, int W, long p, uint8_t *comp,
                  long *stack)
{
    memset(comp, 0, (size_t)H * W);
    long top = 0, n = 0;
    uint8_t v = t[p];
    stack[top++] = p;
    comp[p] = 1;
    while (top) {
        long q = stack[--top];
        n++;
        int y = (int)(q / W), x = (int)(q % W);
        long nb[4] = {y > 0 ? q - W : -1, y < H - 1 ? q + W : -1,
                      x > 0 ? q - 1 : -1, x < W - 1 ? q + 1 : -1};
        for (int k = 0; k < 4; k++)
            if (nb[k] >= 0 && !comp[nb[k]] && t[nb[k]] == v) {
                comp[nb[k]] = 1;
                stack[top++] = nb[k];
            }
    }
    return n;
}

static void check_toy(const char *base)
{
    char *dir = sfc_xasprintf("%s/toy", base);
    char *js = sfc_xasprintf("%s/instances.json", dir);
    struct sfc_coco c;
    int ok = sfc_coco_read(js, 1.0, &c) == 0;
    T_CHECK_MSG(ok, "%s", sfc_errmsg());
    if (!ok) return;
    T_CHECK(c.n_cats == 80);
    for (int k = 1; k < c.n_cats; k++) T_CHECK(c.cat_ids[k] > c.cat_ids[k - 1]);
    T_CHECK(!strcmp(c.cat_names[4], "traffic_light"));
    double min_iou = 1;
    long npoly = 0, nrle = 0, ncrowd = 0;
    for (long i = 0; i < c.n_images; i++) {
        const struct sfc_coco_image *im = &c.images[i];
        if (!im->n_ann) continue;
        char *stem = sfc_coco_stem(im->file);
        char *tp = sfc_xasprintf("%s/truth/%s.png", dir, stem);
        struct sfc_tensor tr;
        T_CHECK_MSG(sfc_label_load(tp, &tr) == 0, "%s", sfc_errmsg());
        int H = im->height, W = im->width;
        size_t HW = (size_t)H * W;
        const uint8_t *t = tr.data;
        uint8_t *m = sfc_xmalloc(HW), *comp = sfc_xmalloc(HW);
        long *stack = sfc_xmalloc(HW * sizeof *stack);
        for (long k = 0; k < im->n_ann; k++) {
            long a = c.by_image[im->first + k];
            const struct sfc_coco_ann *an = &c.anns[a];
            sfc_coco_ann_mask(&c, a, m);
            /* best IoU over the true components of its class */
            double best = 0;
            for (size_t p = 0; p < HW; p++) {
                if (t[p] != an->cls || !m[p]) continue;
                flood(t, H, W, (long)p, comp, stack);
                long in = 0, un = 0;
                for (size_t q = 0; q < HW; q++) {
                    in += m[q] && comp[q];
                    un += m[q] || comp[q];
                }
                double iou = un ? (double)in / un : 0;
                if (iou > best) best = iou;
            }
            if (an->kind == SFC_COCO_POLY) {
                T_CHECK_MSG(best >= 0.98, "%s annotation %lld: polygon IoU "
                            "%.4f", stem, (long long)an->id, best);
                if (best < min_iou) min_iou = best;
                npoly++;
            } else {
                T_CHECK_MSG(best == 1.0, "%s annotation %lld: RLE IoU %.6f",
                            stem, (long long)an->id, best);
                nrle++;
            }
            ncrowd += an->crowd;
        }
        /* whole masks: crowd as class, then crowd ignored */
        uint8_t present[256], lab_ign[256];
        sfc_coco_render(&c, i, SFC_COCO_CROWD_CLASS, SFC_COCO_OVERLAP_SMALL,
                        m, present);
        long agree = 0;
        for (size_t p = 0; p < HW; p++) agree += m[p] == t[p];
        T_CHECK_MSG(agree >= 0.98 * (double)HW, "%s: %ld of %zu pixels "
                    "agree", stem, agree, HW);
        for (int v = 1; v < 255; v++) {
            int in_truth = 0;
            for (size_t p = 0; p < HW && !in_truth; p++) in_truth = t[p] == v;
            T_CHECK_MSG(present[v] == in_truth, "%s: label %d", stem, v);
        }
        sfc_coco_render(&c, i, SFC_COCO_CROWD_IGNORE, SFC_COCO_OVERLAP_LAST,
                        comp, lab_ign);
        T_CHECK(!memcmp(present, lab_ign, 256));
        /* "last" paints crowd regions first, then the others in file
         * order: a pixel of an annotation keeps its value unless one
         * painted after it covers the pixel too (traced polygons of
         * touching objects can share an edge pixel) */
        uint8_t *am = sfc_xmalloc(HW), *later = sfc_xmalloc(HW);
        for (long k = 0; k < im->n_ann; k++) {
            long a = c.by_image[im->first + k];
            memset(later, 0, HW);
            for (long k2 = 0; k2 < im->n_ann; k2++) {
                long b = c.by_image[im->first + k2];
                int after = c.anns[a].crowd != c.anns[b].crowd
                                ? c.anns[a].crowd
                                : b > a;
                if (!after) continue;
                sfc_coco_ann_mask(&c, b, am);
                for (size_t p = 0; p < HW; p++) later[p] |= am[p];
            }
            sfc_coco_ann_mask(&c, a, am);
            long bad = 0;
            for (size_t p = 0; p < HW; p++)
                if (am[p] && !later[p])
                    bad += c.anns[a].crowd ? comp[p] != 255
                                           : comp[p] != c.anns[a].cls;
            T_CHECK_MSG(bad == 0, "%s annotation %lld: %ld pixels",
                        stem, (long long)c.anns[a].id, bad);
        }
        free(am);
        free(later);
        free(m);
        free(comp);
        free(stack);
        sfc_tensor_release(&tr);
        free(tp);
        free(stem);
    }
    T_CHECK(npoly >= 5 && nrle >= 3 && ncrowd == 1);
    fprintf(stderr, "%s: %ld polygon objects (min IoU %.4f), %ld RLE, %ld "
            "crowd\n", dir, npoly, min_iou, nrle, ncrowd);
    sfc_coco_release(&c);
    free(js);
    free(dir);
}

static void check_dir(const char *dir)
{
    check_cases(dir);
    check_toy(dir);
}

static void bad_strings(void)
{
    const char *bad[] = {"1p", "0{", "0o", "0 1", "ooooooooo1"};
    for (size_t k = 0; k < SFC_ARRAY_LEN(bad); k++) {
        uint32_t *v = NULL;
        size_t n;
        T_CHECK_MSG(sfc_coco_rle_from_string("s", bad[k], strlen(bad[k]), &v,
                                             &n) == -1,
                    "'%s' accepted", bad[k]);
        T_CHECK(strncmp(sfc_errmsg(), "s: RLE string", 13) == 0);
    }
    /* negative runs: "0" then "1" then a difference taking run 2 below 0 */
    uint32_t *v = NULL;
    size_t n;
    const char *neg = "11O";
    int r = sfc_coco_rle_from_string("s", neg, strlen(neg), &v, &n);
    /* 'O' = 48 + 31: a last group with the sign bit: -1; runs 0..2 are not
     * differences, so the third run is -1: an error */
    T_CHECK(r == -1);
    free(v);
}

int main(void)
{
    bad_strings();
    test_with_oracle("ref_coco.py", "coco", check_dir);
    return test_summary();
}
