/* SPDX-License-Identifier: MIT */
/* test-toy.c: the toy dataset generator (lib/toy.c).
 *
 * Oracles: the expected per-class image probabilities are recomputed here
 * by brute force over every ordered draw (nested loops, independent of
 * the library's recursion); observed counts, taken from the rendered
 * masks, must lie within 4 binomial standard deviations of them. Checks:
 * the default class table (8 classes, 3 groups, one head per group, the
 * pilot's weights), head/tail image ratio >= 10, each head above its
 * group's tails, class-balanced val split, masks consistent with the
 * image labels (exactly the drawn classes, each visible), determinism
 * (same seed same bytes, any thread count; another seed other bytes). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "err.h"
#include "toy.h"
#include "test.h"
#include "util.h"

#define N_TRAIN 1500
#define N_VAL 300

/* P(class k in image) by brute force: all ordered sequences of n distinct
 * classes, each step proportional to the remaining weights. */
static void brute_expected(const double *q, int C, double *p)
{
    const double *pn = sfc_toy_nobj_p;
    for (int k = 0; k < C; k++) p[k] = 0;
    double tot = 0;
    for (int a = 0; a < C; a++) tot += q[a];
    for (int a = 0; a < C; a++) {
        double pa = q[a] / tot;
        double t1 = tot - q[a];
        /* one object; with C = 2 three objects are capped at two */
        double w1 = pn[0];
        p[a] += w1 * pa;
        for (int b = 0; b < C; b++) {
            if (b == a) continue;
            double pb = pa * q[b] / t1;
            double w2 = pn[1] + (C < 3 ? pn[2] : 0);
            p[a] += w2 * pb, p[b] += w2 * pb;
            double t2 = t1 - q[b];
            for (int c = 0; c < C && C >= 3; c++) {
                if (c == a || c == b) continue;
                double pc = pb * q[c] / t2;
                p[a] += pn[2] * pc, p[b] += pn[2] * pc, p[c] += pn[2] * pc;
            }
        }
    }
}

static void check_table(void)
{
    struct sfc_toy_config c;
    T_CHECK(sfc_toy_config_default(&c, 1) == -1);
    T_CHECK(sfc_toy_config_default(&c, SFC_TOY_MAX_CLASSES + 1) == -1);
    T_CHECK(sfc_toy_config_default(&c, 8) == 0);
    const double w[8] = {1, .6, .4, .12, .09, .07, .05, .04};
    int heads[3] = {0}, members[3] = {0};
    T_CHECK(c.n_classes == 8 && c.n_groups == 3 && c.size == 96);
    for (int k = 0; k < 8; k++) {
        T_CHECK(c.cls[k].weight == w[k]);
        T_CHECK(c.cls[k].group >= 0 && c.cls[k].group < 3);
        heads[c.cls[k].group] += c.cls[k].head;
        members[c.cls[k].group]++;
        /* a head outweighs every tail of its group */
        for (int j = 0; j < 8; j++)
            if (c.cls[j].group == c.cls[k].group && c.cls[k].head &&
                !c.cls[j].head)
                T_CHECK(c.cls[k].weight > c.cls[j].weight);
        /* classes of a group differ in their mark (shape and colour) */
        for (int j = 0; j < k; j++) {
            if (c.cls[j].group != c.cls[k].group) continue;
            T_CHECK(c.cls[j].mark != c.cls[k].mark);
            T_CHECK(memcmp(c.cls[j].mark_rgb, c.cls[k].mark_rgb, 3) != 0);
            T_CHECK(strcmp(c.cls[j].name, c.cls[k].name) != 0);
        }
    }
    for (int g = 0; g < 3; g++) T_CHECK(heads[g] == 1 && members[g] >= 2);

    /* the library's expectation against brute force, several configs */
    const int Cs[] = {2, 3, 5, 8, 13, 24};
    const double imbs[] = {0, 1, 1.5};
    for (size_t i = 0; i < SFC_ARRAY_LEN(Cs); i++)
        for (size_t j = 0; j < SFC_ARRAY_LEN(imbs); j++) {
            sfc_toy_config_default(&c, Cs[i]);
            c.imbalance = imbs[j];
            double q[SFC_TOY_MAX_CLASSES], pb[SFC_TOY_MAX_CLASSES],
                pl[SFC_TOY_MAX_CLASSES];
            for (int k = 0; k < c.n_classes; k++)
                q[k] = pow(c.cls[k].weight, c.imbalance);
            brute_expected(q, c.n_classes, pb);
            sfc_toy_expected(&c, SFC_TOY_TRAIN, pl);
            double md = 0, sum = 0;
            for (int k = 0; k < c.n_classes; k++)
                md = fmax(md, fabs(pb[k] - pl[k])), sum += pl[k];
            T_CHECK_MSG(md < 1e-12, "C=%d imb=%g: expected differs by %g",
                        Cs[i], imbs[j], md);
            /* sum of inclusion probabilities = mean object count */
            double en = 0;
            for (int n = 1; n <= 3; n++)
                en += sfc_toy_nobj_p[n - 1] * (n < c.n_classes ? n : c.n_classes);
            T_CHECK(fabs(sum - en) < 1e-12);
            /* val is uniform whatever the weights */
            sfc_toy_expected(&c, SFC_TOY_VAL, pl);
            for (int k = 0; k < c.n_classes; k++)
                T_CHECK(fabs(pl[k] - en / c.n_classes) < 1e-12);
        }
}

static uint64_t fnv(const uint8_t *p, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* Render n images of a split; count images per class from the masks and
 * check each mask against the image's labels. Returns a hash of all
 * bytes. */
static uint64_t render_split(const struct sfc_toy_config *c,
                             enum sfc_toy_split sp, int n, long *count,
                             int *bad_masks, int *drops)
{
    int S = c->size;
    uint64_t *h = sfc_xcalloc((size_t)n, sizeof *h);
    long cnt[SFC_TOY_MAX_CLASSES] = {0};
    int bad = 0, dropped = 0;
#pragma omp parallel
    {
        uint8_t *rgb = sfc_xmalloc((size_t)S * S * 3), *m = sfc_xmalloc((size_t)S * S);
        long lc[SFC_TOY_MAX_CLASSES] = {0};
        int lbad = 0, ldrop = 0;
#pragma omp for schedule(dynamic, 8)
        for (int i = 0; i < n; i++) {
            int ids[SFC_TOY_MAX_OBJECTS], plan[SFC_TOY_MAX_OBJECTS];
            int k = sfc_toy_render(c, sp, i, rgb, m, ids);
            int np = sfc_toy_classes(c, sp, i, plan);
            ldrop += np - k;
            long pix[256] = {0};
            for (int p = 0; p < S * S; p++) pix[m[p]]++;
            /* mask classes == image labels, each visible (>= 20 px) */
            int present = 0;
            for (int v = 1; v < 256; v++) present += pix[v] > 0;
            int ok = present == k && k >= 1;
            for (int j = 0; j < k; j++) {
                ok &= ids[j] >= 1 && ids[j] <= c->n_classes && pix[ids[j]] >= 20;
                lc[ids[j] - 1]++;
            }
            lbad += !ok;
            h[i] = fnv(m, (size_t)S * S, fnv(rgb, (size_t)S * S * 3, 14695981039346656037ULL));
        }
#pragma omp critical
        {
            for (int k = 0; k < c->n_classes; k++) cnt[k] += lc[k];
            bad += lbad;
            dropped += ldrop;
        }
        free(rgb);
        free(m);
    }
    uint64_t all = 0;
    for (int i = 0; i < n; i++) all = all * 31 + h[i];
    free(h);
    for (int k = 0; k < c->n_classes; k++) count[k] = cnt[k];
    *bad_masks = bad;
    *drops = dropped;
    return all;
}

static void check_split(const struct sfc_toy_config *c, enum sfc_toy_split sp,
                        int n, const long *cnt)
{
    double q[SFC_TOY_MAX_CLASSES] = {0}, p[SFC_TOY_MAX_CLASSES];
    for (int k = 0; k < c->n_classes; k++)
        q[k] = sp == SFC_TOY_VAL ? 1 : pow(c->cls[k].weight, c->imbalance);
    brute_expected(q, c->n_classes, p);
    for (int k = 0; k < c->n_classes; k++) {
        double e = p[k] * n, sd = sqrt(e * (1 - p[k]));
        T_CHECK_MSG(fabs(cnt[k] - e) <= 4 * sd + 1,
                    "%s class %d: %ld images, expected %.1f +- %.1f",
                    sp == SFC_TOY_VAL ? "val" : "train", k + 1, cnt[k], e,
                    sd);
    }
}

int main(void)
{
    sfc_proginit("test-toy");
    check_table();

    struct sfc_toy_config c;
    sfc_toy_config_default(&c, 8);
    c.seed = 7;
    long tr[SFC_TOY_MAX_CLASSES], va[SFC_TOY_MAX_CLASSES];
    int bad, drops;
    double t0 = sfc_now();
    uint64_t h1 = render_split(&c, SFC_TOY_TRAIN, N_TRAIN, tr, &bad, &drops);
    fprintf(stderr, "rendered %d train images in %.2fs\n", N_TRAIN,
            sfc_now() - t0);
    T_CHECK_MSG(bad == 0, "%d train masks disagree with their labels", bad);
    T_CHECK_MSG(drops <= N_TRAIN / 200, "%d objects dropped", drops);
    check_split(&c, SFC_TOY_TRAIN, N_TRAIN, tr);
    long mx = 0, mn = N_TRAIN;
    for (int k = 0; k < 8; k++) mx = SFC_MAX(mx, tr[k]), mn = SFC_MIN(mn, tr[k]);
    fprintf(stderr, "train counts:");
    for (int k = 0; k < 8; k++) fprintf(stderr, " %ld", tr[k]);
    fprintf(stderr, " (head/tail ratio %.1f)\n", (double)mx / mn);
    T_CHECK_MSG(mx >= 10 * mn, "head/tail ratio %ld/%ld < 10", mx, mn);
    for (int k = 0; k < 8; k++)
        for (int j = 0; j < 8; j++)
            if (c.cls[k].head && !c.cls[j].head &&
                c.cls[k].group == c.cls[j].group)
                T_CHECK(tr[k] > 2 * tr[j]);

    render_split(&c, SFC_TOY_VAL, N_VAL, va, &bad, &drops);
    T_CHECK_MSG(bad == 0, "%d val masks disagree with their labels", bad);
    check_split(&c, SFC_TOY_VAL, N_VAL, va);
    mx = 0, mn = N_VAL;
    for (int k = 0; k < 8; k++) mx = SFC_MAX(mx, va[k]), mn = SFC_MIN(mn, va[k]);
    T_CHECK_MSG(mx <= 2 * mn, "val not balanced: %ld..%ld", mn, mx);

    /* stronger imbalance: ratio grows */
    struct sfc_toy_config c2 = c;
    c2.imbalance = 1.5;
    long tr2[SFC_TOY_MAX_CLASSES];
    render_split(&c2, SFC_TOY_TRAIN, 600, tr2, &bad, &drops);
    T_CHECK(bad == 0);
    check_split(&c2, SFC_TOY_TRAIN, 600, tr2);

    /* determinism: one thread vs the default, and another seed */
    long tmp[SFC_TOY_MAX_CLASSES];
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
    uint64_t h2 = render_split(&c, SFC_TOY_TRAIN, N_TRAIN, tmp, &bad, &drops);
    T_CHECK_MSG(h1 == h2, "bytes depend on the thread count");
#ifdef _OPENMP
    omp_set_num_threads(3);
#endif
    uint64_t h3 = render_split(&c, SFC_TOY_TRAIN, 200, tmp, &bad, &drops);
    uint64_t h4 = render_split(&c, SFC_TOY_TRAIN, 200, tmp, &bad, &drops);
    T_CHECK(h3 == h4);
    c.seed = 8;
    uint64_t h5 = render_split(&c, SFC_TOY_TRAIN, 200, tmp, &bad, &drops);
    T_CHECK(h5 != h3);

    /* other class counts and sizes still render consistent masks */
    const int Cs[] = {2, 5, 24};
    const int sizes[] = {32, 64, 128};
    for (int i = 0; i < 3; i++) {
        sfc_toy_config_default(&c, Cs[i]);
        c.size = sizes[i];
        c.seed = 3;
        render_split(&c, SFC_TOY_TRAIN, 100, tmp, &bad, &drops);
        T_CHECK_MSG(bad == 0, "C=%d size %d: %d bad masks", Cs[i], sizes[i],
                    bad);
    }
    return test_summary();
}
