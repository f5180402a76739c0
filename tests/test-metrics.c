/* SPDX-License-Identifier: MIT */
/* test-metrics.c: lib/metrics against hand-computed cases, the head/
 * middle/tail split (lib/db.h's sfc_class_groups) of sfc-reference.md
 * §1.2's VOC counts, and the numpy
 * oracle tests/ref/ref_miou.py (chainercv's confusion and IoU re-expressed,
 * IRN's threshold rule with torch): committed goldens in
 * tests/golden/miou/, plus fresh random cases when SFC_ORACLE is set.
 * Confusion counts and label maps must agree exactly; IoU, precision and
 * recall to float rounding. */
#include <dirent.h>
#include <unistd.h>

#include "db.h" /* sfc_class_groups */
#include "metrics.h"
#include "npy.h"
#include "sfc.h"
#include "test.h"

#define K21 21

/* ---- hand cases ------------------------------------------------------------ */

static void test_hand(void)
{
    /* K = 3; gt 255 ignored, pred 255 -> background */
    const uint8_t gt[] = {0, 0, 1, 1, 1, 255, 2, 0};
    const uint8_t pr[] = {0, 1, 1, 1, 255, 2, 0, 255};
    struct sfc_confusion cm;
    T_CHECK(sfc_confusion_init(&cm, 3) == 0);
    T_CHECK(sfc_confusion_add(&cm, pr, gt, 8, "p.png", "g.png") == 0);
    /* rows gt, columns pred */
    const int64_t want[9] = {2, 1, 0, /* gt 0: pred 0, 1, 0(255) */
                             1, 2, 0, /* gt 1: pred 1, 1, 0(255) */
                             1, 0, 0};
    T_CHECK(memcmp(cm.c, want, sizeof want) == 0);
    double iou[3], pre[3], rec[3];
    int64_t row[3], col[3];
    sfc_confusion_scores(&cm, iou, pre, rec, row, col);
    /* class 0: d 2, row 3, col 4 -> 2/5; class 1: d 2, row 3, col 3 -> 2/4;
     * class 2: d 0, row 1, col 0 -> 0/1 */
    T_CHECK(iou[0] == 2.0 / 5 && iou[1] == 2.0 / 4 && iou[2] == 0.0);
    T_CHECK(pre[0] == 2.0 / 4 && pre[1] == 2.0 / 3 && isnan(pre[2]));
    T_CHECK(rec[0] == 2.0 / 3 && rec[1] == 2.0 / 3 && rec[2] == 0.0);
    T_CHECK(row[0] == 3 && row[2] == 1 && col[0] == 4 && col[2] == 0);
    T_CHECK(sfc_nanmean(iou, 3) == (0.4 + 0.5 + 0.0) / 3);

    /* out-of-range values are errors naming the map; nothing is added */
    const uint8_t bad[] = {0, 0, 1, 1, 3, 0, 0, 0};
    T_CHECK(sfc_confusion_add(&cm, bad, gt, 8, "p.png", "g.png") == -1);
    T_CHECK(strcmp(sfc_errmsg(), "p.png: label value 3 out of range [0, 3) "
                   "at pixel 4") == 0);
    T_CHECK(sfc_confusion_add(&cm, pr, bad, 8, "p.png", "g.png") == -1);
    T_CHECK(strncmp(sfc_errmsg(), "g.png: label value 3", 20) == 0);
    T_CHECK(memcmp(cm.c, want, sizeof want) == 0);

    /* a class absent from gt and prediction is NaN and skipped */
    struct sfc_confusion c4;
    T_CHECK(sfc_confusion_init(&c4, 4) == 0);
    T_CHECK(sfc_confusion_add(&c4, pr, gt, 8, "p", "g") == 0);
    sfc_confusion_merge(&c4, &c4); /* doubling changes no ratio */
    double iou4[4];
    sfc_confusion_scores(&c4, iou4, NULL, NULL, NULL, NULL);
    T_CHECK(isnan(iou4[3]) && iou4[0] == 0.4);
    T_CHECK(sfc_nanmean(iou4, 4) == sfc_nanmean(iou, 3));
    T_CHECK(c4.c[0] == 4);
    double allnan[2] = {NAN, NAN};
    T_CHECK(isnan(sfc_nanmean(allnan, 2)));
    sfc_confusion_release(&c4);
    sfc_confusion_zero(&cm);
    T_CHECK(cm.c[0] == 0 && cm.c[4] == 0);
    sfc_confusion_release(&cm);
    sfc_confusion_release(&cm); /* safe twice */
    T_CHECK(sfc_confusion_init(&cm, 0) == -1);
    T_CHECK(sfc_confusion_init(&cm, 256) == -1);

    double *t;
    int nt;
    T_CHECK(sfc_thresholds(0.05, 0.6, 0.05, &t, &nt) == 0 && nt == 12);
    T_CHECK(t[0] == 0.05 && t[11] == 0.05 + 11 * 0.05);
    free(t);
    T_CHECK(sfc_thresholds(0.3, 0.3, 0.1, &t, &nt) == 0 && nt == 1);
    free(t);
    T_CHECK(sfc_thresholds(0.5, 0.3, 0.1, &t, &nt) == -1);
    T_CHECK(sfc_thresholds(0.1, 0.3, 0, &t, &nt) == -1);
}

/* sfc-reference.md §1.2: train_aug image counts by foreground index 0..19
 * (segmentation id = index + 1). */
static const int64_t voc_trainaug[20] = {590, 504, 705, 468, 714, 393, 1150,
                                         1005, 1228, 267, 613, 1188, 445, 492,
                                         4155, 522, 300, 649, 503, 567};

static void test_groups(void)
{
    int64_t counts[K21] = {999999};
    int g[K21];
    for (int c = 1; c < K21; c++) counts[c] = voc_trainaug[c - 1];
    sfc_class_groups(counts, K21, g);
    /* ranks 1..7 of the table: person chair dog car cat bottle bird;
     * ranks 15..20: motorbike boat horse bus sheep cow (index + 1) */
    const int head[] = {15, 9, 12, 7, 8, 5, 3};
    const int tail[] = {14, 4, 13, 6, 17, 10};
    int nh = 0, nm = 0, ntl = 0;
    for (int c = 1; c < K21; c++) {
        nh += g[c] == SFC_GROUP_HEAD;
        nm += g[c] == SFC_GROUP_MIDDLE;
        ntl += g[c] == SFC_GROUP_TAIL;
    }
    T_CHECK(g[0] == -1 && nh == 7 && nm == 7 && ntl == 6);
    for (size_t i = 0; i < SFC_ARRAY_LEN(head); i++)
        T_CHECK(g[head[i]] == SFC_GROUP_HEAD);
    for (size_t i = 0; i < SFC_ARRAY_LEN(tail); i++)
        T_CHECK(g[tail[i]] == SFC_GROUP_TAIL);

    /* ties: equal counts keep class-id order */
    int64_t eq[5] = {0, 7, 7, 7, 7};
    int g5[5];
    sfc_class_groups(eq, 5, g5); /* n = 4: 2 head, 1 middle, 1 tail */
    T_CHECK(g5[1] == 0 && g5[2] == 0 && g5[3] == 1 && g5[4] == 2);
    int64_t two[3] = {0, 1, 5};
    int g3[3];
    sfc_class_groups(two, 3, g3); /* n = 2: 1 head, 1 middle, 0 tail */
    T_CHECK(g3[2] == 0 && g3[1] == 1);

    double iou[5] = {0.9, 0.1, NAN, 0.3, 0.4}, m[3];
    sfc_group_means(5, iou, g5, m);
    T_CHECK(m[0] == 0.1 && m[1] == 0.3 && m[2] == 0.4);
    double iou3[3] = {0.5, 0.2, 0.6};
    sfc_group_means(3, iou3, g3, m);
    T_CHECK(m[0] == 0.6 && m[1] == 0.2 && isnan(m[2]));
}

static void test_cam_hand(void)
{
    /* 2 classes present (keys 0, 4), 1 x 3 pixels */
    int64_t kv[2] = {0, 4};
    float w[6] = {1.0f, 0.2f, 0.5f, /* bg */ 0.5f, 0.8f, 0.5f};
    float p[6] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f};
    struct sfc_tensor keys, cw, cp, s;
    sfc_tensor_view(&keys, kv, SFC_I64, 1, (const int64_t[]){2});
    sfc_tensor_view(&cw, w, SFC_F32, 3, (const int64_t[]){2, 1, 3});
    sfc_tensor_view(&cp, p, SFC_F32, 3, (const int64_t[]){2, 1, 3});
    T_CHECK(sfc_cam_check("a.npz", K21, &keys, &cw, &cp, 1, 0.7) == 0);
    T_CHECK(sfc_cam_score(&cw, &cp, 1, 0.7, &s) == 0);
    uint8_t lab[3], cls[3];
    float fm[3];
    sfc_cam_argmax(&keys, &s, lab);
    /* pixel 1: 0.8 > 0.2; pixel 2: 0.5 vs 0.5 + 0.7 * 1 -> class */
    T_CHECK(lab[0] == 0 && lab[1] == 4 && lab[2] == 4);
    sfc_tensor_release(&s);
    T_CHECK(sfc_cam_score(&cw, NULL, 1, 0, &s) == 0);
    sfc_cam_argmax(&keys, &s, lab);
    T_CHECK(lab[2] == 0); /* exact tie: the lower channel (background) */
    sfc_cam_fgmax(&keys, &s, fm, cls);
    /* normalised by 0.8 + 1e-5 */
    T_CHECK(cls[0] == 4 && fm[1] == 0.8f / (0.8f + 1e-5f));
    sfc_cam_threshold(fm, cls, 3, 0.62, lab);
    T_CHECK(lab[0] == 4 && lab[1] == 4 && lab[2] == 4);
    sfc_cam_threshold(fm, cls, 3, 0.63, lab); /* 0.5/0.80001 = 0.62499 */
    T_CHECK(lab[0] == 0 && lab[1] == 4 && lab[2] == 0);
    sfc_tensor_release(&s);

    /* errors name the file */
    kv[0] = 1;
    T_CHECK(sfc_cam_check("a.npz", K21, &keys, &cw, &cp, 1, 1) == -1);
    T_CHECK(strstr(sfc_errmsg(), "a.npz: 'keys' must start with 0") != NULL);
    kv[0] = 0;
    kv[1] = 21;
    T_CHECK(sfc_cam_check("a.npz", K21, &keys, &cw, &cp, 1, 1) == -1);
    T_CHECK(strstr(sfc_errmsg(), "outside [0, 21)") != NULL);
    kv[1] = 0;
    T_CHECK(sfc_cam_check("a.npz", K21, &keys, &cw, &cp, 1, 1) == -1);
    kv[1] = 4;
    T_CHECK(sfc_cam_check("a.npz", K21, &keys, NULL, &cp, 1, 1) == -1);
    T_CHECK(strcmp(sfc_errmsg(), "a.npz: no array 'cam_w'") == 0);
    T_CHECK(sfc_cam_check("a.npz", K21, &keys, NULL, &cp, 0, 1) == 0);
    T_CHECK(sfc_cam_check("a.npz", K21, &keys, &cw, &cp, 0, 0) == -1);
    struct sfc_tensor c3;
    sfc_tensor_view(&c3, p, SFC_F32, 3, (const int64_t[]){2, 3, 1});
    T_CHECK(sfc_cam_check("a.npz", K21, &keys, &cw, &c3, 1, 1) == -1);
    T_CHECK(strstr(sfc_errmsg(), "differ in shape") != NULL);
    sfc_tensor_view(&c3, p, SFC_F32, 3, (const int64_t[]){3, 1, 2});
    T_CHECK(sfc_cam_check("a.npz", K21, &keys, &cw, &c3, 1, 1) == -1);
    T_CHECK(strstr(sfc_errmsg(), "'cam_p' has shape (3, 1, 2)") != NULL);
    sfc_tensor_view(&c3, p, SFC_U8, 3, (const int64_t[]){2, 1, 3});
    T_CHECK(sfc_cam_check("a.npz", K21, &keys, &cw, &c3, 1, 1) == -1);
    T_CHECK(strstr(sfc_errmsg(), "dtype uint8") != NULL);
}

/* ---- oracle cases ------------------------------------------------------------ */

static const struct sfc_tensor *get(const struct sfc_npz *z, const char *f,
                                    const char *name)
{
    const struct sfc_tensor *t = sfc_npz_get(z, name);
    if (!t) fprintf(stderr, "  %s: no array '%s'\n", f, name);
    return t;
}

static int64_t scalar_i64(const struct sfc_tensor *t)
{
    return ((const int64_t *)t->data)[0];
}

static const double *f64(const struct sfc_tensor *t)
{
    return (const double *)t->data; /* float64 bits stored as int64 */
}

/* Equal, or both NaN, or within rel 1e-15 (float rounding). */
static int same_double(double a, double b)
{
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return fabs(a - b) <= 1e-15 * fmax(fabs(b), 1e-300);
}

static int same_doubles(const char *what, const double *a, const double *b,
                        int n)
{
    for (int i = 0; i < n; i++)
        if (!same_double(a[i], b[i])) {
            fprintf(stderr, "  %s[%d]: got %.17g want %.17g\n", what, i, a[i],
                    b[i]);
            return 0;
        }
    return 1;
}

static void check_conf_case(const char *path)
{
    struct sfc_npz z;
    if (!T_CHECK(sfc_npz_read(path, &z) == 0)) {
        fprintf(stderr, "  %s\n", sfc_errmsg());
        return;
    }
    const struct sfc_tensor *tk = get(&z, path, "K"),
                            *tn = get(&z, path, "n_img"),
                            *tc = get(&z, path, "confusion"),
                            *ti = get(&z, path, "iou_bits"),
                            *tp = get(&z, path, "precision_bits"),
                            *tr = get(&z, path, "recall_bits"),
                            *tm = get(&z, path, "miou_bits"),
                            *tcnt = get(&z, path, "counts"),
                            *tg = get(&z, path, "groups"),
                            *tgm = get(&z, path, "group_bits");
    if (!T_CHECK(tk && tn && tc && ti && tp && tr && tm && tcnt && tg && tgm))
        goto done;
    int K = (int)scalar_i64(tk), n = (int)scalar_i64(tn);
    struct sfc_confusion cm;
    T_CHECK(sfc_confusion_init(&cm, K) == 0);
    for (int i = 0; i < n; i++) {
        char pn[16], gn[16];
        snprintf(pn, sizeof pn, "pred%d", i);
        snprintf(gn, sizeof gn, "gt%d", i);
        const struct sfc_tensor *p = get(&z, path, pn), *g = get(&z, path, gn);
        if (!T_CHECK(p && g && sfc_check_same(gn, p, g) == 0)) continue;
        T_CHECK(sfc_confusion_add(&cm, p->data, g->data, sfc_tensor_numel(p),
                                  pn, gn) == 0);
    }
    T_CHECK_MSG(sfc_check_shape("confusion", tc, K, K) == 0 &&
                memcmp(cm.c, tc->data, sizeof(int64_t) * K * K) == 0,
                "%s: confusion counts differ from the oracle", path);
    double *iou = sfc_xmalloc(3 * K * sizeof *iou), *pre = iou + K,
           *rec = iou + 2 * K;
    sfc_confusion_scores(&cm, iou, pre, rec, NULL, NULL);
    T_CHECK(same_doubles("iou", iou, f64(ti), K));
    T_CHECK(same_doubles("precision", pre, f64(tp), K));
    T_CHECK(same_doubles("recall", rec, f64(tr), K));
    double miou = sfc_nanmean(iou, K);
    T_CHECK_MSG(fabs(miou - f64(tm)[0]) <= 1e-12, "%s: mIoU %.17g want %.17g",
                path, miou, f64(tm)[0]);
    int *g = sfc_xmalloc(K * sizeof *g);
    sfc_class_groups(tcnt->data, K, g);
    int gs_ok = 1;
    for (int c = 0; c < K; c++)
        gs_ok &= g[c] == (int)((const int64_t *)tg->data)[c];
    T_CHECK_MSG(gs_ok, "%s: head/middle/tail split differs", path);
    double gm[SFC_NGROUPS];
    sfc_group_means(K, iou, g, gm);
    for (int j = 0; j < SFC_NGROUPS; j++)
        T_CHECK_MSG(isnan(f64(tgm)[j]) ? isnan(gm[j])
                                       : fabs(gm[j] - f64(tgm)[j]) <= 1e-12,
                    "%s: group %d mean %.17g want %.17g", path, j, gm[j],
                    f64(tgm)[j]);
    free(g);
    free(iou);
    sfc_confusion_release(&cm);
done:
    sfc_npz_release(&z);
}

static void check_cam_case(const char *path)
{
    struct sfc_npz z;
    if (!T_CHECK(sfc_npz_read(path, &z) == 0)) {
        fprintf(stderr, "  %s\n", sfc_errmsg());
        return;
    }
    const struct sfc_tensor *keys = get(&z, path, "keys"),
                            *cw = get(&z, path, "cam_w"),
                            *cp = get(&z, path, "cam_p"),
                            *tw = get(&z, path, "weights_bits"),
                            *gt = get(&z, path, "gt"),
                            *ls = get(&z, path, "label_sfc"),
                            *li = get(&z, path, "label_irn"),
                            *tt = get(&z, path, "thr_bits"),
                            *sw = get(&z, path, "sweep_conf");
    if (!T_CHECK(keys && cw && cp && tw && gt && ls && li && tt && sw))
        goto done;
    double ww = f64(tw)[0], wp = f64(tw)[1];
    if (!T_CHECK(sfc_cam_check(path, K21, keys, cw, cp, ww, wp) == 0)) {
        fprintf(stderr, "  %s\n", sfc_errmsg());
        goto done;
    }
    struct sfc_tensor s;
    T_CHECK(sfc_cam_score(cw, cp, ww, wp, &s) == 0);
    int64_t n = s.shape[1] * s.shape[2];
    uint8_t *lab = sfc_xmalloc(2 * n), *cls = lab + n;
    float *fm = sfc_xmalloc(n * sizeof *fm);
    sfc_cam_argmax(keys, &s, lab);
    T_CHECK_MSG(memcmp(lab, ls->data, n) == 0, "%s: SFC argmax differs",
                path);
    sfc_cam_fgmax(keys, &s, fm, cls);
    sfc_cam_threshold(fm, cls, n, 0.15, lab);
    T_CHECK_MSG(memcmp(lab, li->data, n) == 0, "%s: IRN threshold differs",
                path);
    int nt = (int)tt->shape[0];
    double *thr;
    int nt2;
    T_CHECK(sfc_thresholds(0.05, 0.60, 0.05, &thr, &nt2) == 0 && nt2 == nt);
    T_CHECK(same_doubles("thresholds", thr, f64(tt), SFC_MIN(nt, nt2)));
    struct sfc_confusion *cms = sfc_xmalloc(nt * sizeof *cms), one;
    for (int i = 0; i < nt; i++) sfc_confusion_init(&cms[i], K21);
    sfc_confusion_init(&one, K21);
    T_CHECK(sfc_confusion_add_sweep(cms, nt, f64(tt), fm, cls, gt->data, n,
                                    "gt") == 0);
    T_CHECK(sfc_check_shape("sweep_conf", sw, nt, K21, K21) == 0);
    for (int i = 0; i < nt; i++) {
        const int64_t *want = (const int64_t *)sw->data + (int64_t)i * K21 * K21;
        T_CHECK_MSG(memcmp(cms[i].c, want, sizeof(int64_t) * K21 * K21) == 0,
                    "%s: sweep confusion at threshold %g differs", path,
                    f64(tt)[i]);
        /* brute force: threshold then the plain accumulator */
        sfc_confusion_zero(&one);
        sfc_cam_threshold(fm, cls, n, f64(tt)[i], lab);
        T_CHECK(sfc_confusion_add(&one, lab, gt->data, n, "p", "g") == 0);
        T_CHECK(memcmp(one.c, cms[i].c, sizeof(int64_t) * K21 * K21) == 0);
        sfc_confusion_release(&cms[i]);
    }
    sfc_confusion_release(&one);
    free(cms);
    free(thr);
    free(fm);
    free(lab);
    sfc_tensor_release(&s);
done:
    sfc_npz_release(&z);
}

static int check_dir(const char *dir)
{
    int ncases = 0;
    for (int i = 0;; i++) {
        char *p = sfc_xasprintf("%s/conf-%d.npz", dir, i);
        int ok = sfc_file_exists(p);
        if (ok) check_conf_case(p), ncases++;
        free(p);
        if (!ok) break;
    }
    for (int i = 0;; i++) {
        char *p = sfc_xasprintf("%s/cam-%d.npz", dir, i);
        int ok = sfc_file_exists(p);
        if (ok) check_cam_case(p), ncases++;
        free(p);
        if (!ok) break;
    }
    return ncases;
}

int main(void)
{
    test_hand();
    test_groups();
    test_cam_hand();
    T_CHECK_MSG(check_dir("tests/golden/miou") >= 8,
                "goldens missing: run make ref");
    const char *py = test_oracle();
    if (py) {
        char *dir = test_tmpdir("miou");
        unsigned seed = test_fresh_seed("ref_miou.py");
        char *cmd = sfc_xasprintf("%s tests/ref/ref_miou.py --out %s --seed %u",
                                  py, dir, seed);
        fprintf(stderr, "oracle: %s\n", cmd);
        if (T_CHECK(system(cmd) == 0))
            T_CHECK(check_dir(dir) >= 8);
        free(cmd);
        cmd = sfc_xasprintf("rm -rf '%s'", dir);
        T_CHECK(system(cmd) == 0);
        free(cmd);
        free(dir);
    }
    return test_summary();
}
