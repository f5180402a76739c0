/* SPDX-License-Identifier: MIT */
/* test-irn.c: the path index, affinity labels, edge-to-affinity and the
 * sparse random walk against tests/ref/ref_irn.py (a numpy re-expression
 * of sfc-reference.md §6.1-§6.3 and a dense float64 random walk), on the
 * committed goldens and, with the oracle, on fresh random cases. Also a
 * finite-difference check of the edge-to-affinity gradient. */
#include "npy.h"
#include "pathidx.h"
#include "rw.h"
#include "sfc.h"
#include "test.h"

static const struct sfc_tensor *get(const struct sfc_npz *z, const char *n)
{
    const struct sfc_tensor *t = sfc_npz_get(z, n);
    if (!t) {
        fprintf(stderr, "%s\n", sfc_errmsg());
        exit(1);
    }
    return t;
}

static void check_path(const char *dir, int r)
{
    char *path = sfc_xasprintf("%s/path_r%d.npz", dir, r);
    struct sfc_npz z;
    if (!T_CHECK(sfc_npz_read(path, &z) == 0)) {
        fprintf(stderr, "%s\n", sfc_errmsg());
        free(path);
        return;
    }
    struct sfc_pathidx p;
    T_CHECK(sfc_pathidx_init(&p, r) == 0);
    const struct sfc_tensor *dirs = get(&z, "dirs"), *st = get(&z, "starts"),
                            *pts = get(&z, "points"), *L = get(&z, "labels"),
                            *edge = get(&z, "edge"),
                            *al = get(&z, "aff_labels"), *aff = get(&z, "aff");
    T_CHECK(dirs->shape[0] == p.ndir);
    int same = dirs->shape[0] == p.ndir;
    const int64_t *d = dirs->data, *s = st->data, *q = pts->data;
    for (int k = 0; same && k < p.ndir; k++)
        same = d[2 * k] == p.dy[k] && d[2 * k + 1] == p.dx[k] &&
               s[k] == p.start[k] && s[k + 1] == p.start[k + 1];
    for (int i = 0; same && i < p.start[p.ndir]; i++)
        same = q[2 * i] == p.py[i] && q[2 * i + 1] == p.px[i];
    T_CHECK_MSG(same, "radius %d: directions or path points differ", r);

    int H = (int)L->shape[0], W = (int)L->shape[1];
    long nsrc = sfc_pathidx_nsrc(&p, H, W), n = p.ndir * nsrc;
    T_CHECK(al->shape[2] == nsrc);
    float *lab = sfc_xmalloc(sizeof(float) * 3 * n);
    sfc_affinity_labels(&p, L->data, H, W, 3, lab, lab + n, lab + 2 * n);
    T_CHECK(test_close("affinity labels", lab, al->data, 3 * n, 0, 0));
    float *a = sfc_xmalloc(sizeof(float) * n);
    int *arg = sfc_xmalloc(sizeof(int) * n);
    sfc_edge_affinity_forward(&p, a, arg, edge->data, H, W);
    T_CHECK(test_close("edge affinity", a, aff->data, n, 0, 0));

    /* gradient: d/d edge of sum(aff * g) by central differences (the max
     * is piecewise linear; random edges have no ties) */
    float *g = sfc_xmalloc(sizeof(float) * n);
    struct sfc_rng rng;
    sfc_rng_seed(&rng, 5);
    for (long i = 0; i < n; i++) g[i] = (float)sfc_rng_normal(&rng);
    float *de = sfc_xcalloc((size_t)H * W, sizeof(float));
    sfc_edge_affinity_backward(&p, de, g, arg, H, W);
    float *e2 = sfc_xmalloc(sizeof(float) * H * W);
    memcpy(e2, edge->data, sizeof(float) * H * W);
    int bad = 0, skipped = 0, tested = 0;
    int *arg2 = sfc_xmalloc(sizeof(int) * n);
    for (int pix = 0; pix < H * W; pix += 7) {
        double f[2];
        int kink = 0;
        for (int sgn = 0; sgn < 2; sgn++) {
            e2[pix] = ((float *)edge->data)[pix] + (sgn ? 1e-4f : -1e-4f);
            sfc_edge_affinity_forward(&p, a, arg2, e2, H, W);
            /* a max that changes hands inside the step is a kink: skip */
            kink |= memcmp(arg, arg2, sizeof(int) * n) != 0;
            double acc = 0;
            for (long i = 0; i < n; i++) acc += (double)a[i] * g[i];
            f[sgn] = acc;
        }
        e2[pix] = ((float *)edge->data)[pix];
        if (kink) {
            skipped++;
            continue;
        }
        tested++;
        double num = (f[1] - f[0]) / 2e-4;
        if (fabs(num - de[pix]) > 2e-2 + 2e-2 * fabs(num)) bad++;
    }
    free(arg2);
    T_CHECK_MSG(skipped * 4 < tested, "radius %d: %d of %d pixels at kinks",
                r, skipped, skipped + tested);
    T_CHECK_MSG(bad == 0, "radius %d: %d gradient mismatches", r, bad);
    free(g);
    free(de);
    free(e2);
    free(a);
    free(arg);
    free(lab);
    sfc_pathidx_release(&p);
    sfc_npz_release(&z);
    free(path);
}

/* The walk with its state in float64 must match the float64 dense walk to
 * 1e-5 of the max; in float32 (the default) to twice the distance of the
 * float32 dense walk (rw32, IRN's own precision) from it. The labels
 * (argmax over K) must be identical in both. */
static void check_rw(const char *dir, const char *tag)
{
    char *path = sfc_xasprintf("%s/rw_%s.npz", dir, tag);
    struct sfc_npz z;
    if (!T_CHECK(sfc_npz_read(path, &z) == 0)) {
        fprintf(stderr, "%s\n", sfc_errmsg());
        free(path);
        return;
    }
    const struct sfc_tensor *x = get(&z, "x"), *edge = get(&z, "edge"),
                            *want = get(&z, "rw"), *w32 = get(&z, "rw32"),
                            *par = get(&z, "params");
    const int64_t *pp = par->data;
    int K = (int)x->shape[0], h = (int)x->shape[1], w = (int)x->shape[2];
    long n = (long)K * h * w;
    const float *wv = want->data, *d32 = w32->data;
    /* scores relative to the global max (as §7 normalises them) */
    float mx = 0, e32 = 0;
    for (long i = 0; i < n; i++) {
        mx = fmaxf(mx, wv[i]);
        e32 = fmaxf(e32, fabsf(d32[i] - wv[i]));
    }
    float *got = sfc_xmalloc(sizeof(float) * n);
    for (int dbl = 1; dbl >= 0; dbl--) {
        memcpy(got, x->data, sizeof(float) * n);
        T_CHECK(sfc_rw_propagate(got, K, edge->data, h, w, (int)pp[0],
                                 (float)pp[1], (int)pp[2], dbl) == 0);
        T_CHECK(test_close(dbl ? "random walk f64" : "random walk f32", got,
                           wv, n, dbl ? 1e-5 * mx : 2 * e32, dbl ? 1e-4 : 0));
        /* labels: argmax over K per pixel */
        int diff = 0;
        for (long j = 0; j < (long)h * w; j++) {
            int a = 0, b = 0;
            for (int k = 1; k < K; k++) {
                if (got[k * h * w + j] > got[a * h * w + j]) a = k;
                if (wv[k * h * w + j] > wv[b * h * w + j]) b = k;
            }
            diff += a != b;
        }
        T_CHECK_MSG(diff == 0, "%s (%s): %d labels differ", tag,
                    dbl ? "f64" : "f32", diff);
    }
    free(got);
    sfc_npz_release(&z);
    free(path);
}

/* Channels walk independently, in groups whose size depends on K: the
 * walk of K channels at once (K = 19: groups of 4 and 3; K = 11: of 2 and
 * 1) must give the bits of each channel walked alone, for any thread count, in both precisions. */
static void check_rw_groups(int K)
{
    int h = 9, w = 11;
    long hw = (long)h * w;
    struct sfc_rng r;
    sfc_rng_seed(&r, 7);
    float *edge = sfc_xmalloc(sizeof(float) * hw);
    float *all = sfc_xmalloc(sizeof(float) * K * hw);
    float *one = sfc_xmalloc(sizeof(float) * K * hw);
    for (long i = 0; i < hw; i++) edge[i] = (float)sfc_rng_uniform(&r);
    for (int dbl = 0; dbl < 2; dbl++) {
        for (long i = 0; i < K * hw; i++)
            all[i] = one[i] = (float)sfc_rng_uniform(&r);
        T_CHECK(sfc_rw_propagate(all, K, edge, h, w, 5, 10.0f, 4, dbl) == 0);
        for (int k = 0; k < K; k++)
            T_CHECK(sfc_rw_propagate(one + k * hw, 1, edge, h, w, 5, 10.0f,
                                     4, dbl) == 0);
        T_CHECK_MSG(memcmp(all, one, sizeof(float) * K * hw) == 0,
                    "a walk of %d channels differs from the channels alone "
                    "(%s)", K, dbl ? "f64" : "f32");
    }
    free(edge);
    free(all);
    free(one);
}

static void check_dir(const char *dir)
{
    check_path(dir, 5);
    check_path(dir, 10);
    check_rw(dir, "a");
    check_rw(dir, "b");
}

int main(int argc, char **argv)
{
    (void)argc;
    sfc_proginit(argv[0]);
    struct sfc_pathidx p;
    T_CHECK(sfc_pathidx_init(&p, 10) == 0 && p.ndir == 152); /* §6.2 */
    T_CHECK(sfc_pathidx_nsrc(&p, 128, 128) == 13090);        /* §6.2 */
    sfc_pathidx_release(&p);
    T_CHECK(sfc_pathidx_init(&p, 5) == 0 && p.ndir == 34);   /* §6.2 */
    sfc_pathidx_release(&p);
    check_rw_groups(19);
    check_rw_groups(11);
    test_with_oracle("ref_irn.py", "irn", check_dir);
    return test_summary();
}
