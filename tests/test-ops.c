/* SPDX-License-Identifier: MIT */
/* test-ops.c: every op of lib/ops.c, forward and backward, against PyTorch
 * (tests/ref/ref_ops.py: the committed goldens in tests/golden/ops/, and
 * fresh random cases when test_oracle() is set), with the bar of
 * max relative error <= 1e-4 (relative to max(|ref|, 1e-2 max|ref|)).
 * Backward gradients are checked to accumulate (each gradient buffer starts
 * as a copy of its reference).
 * Independently of PyTorch: central finite differences of the forward,
 * summed in double, against the backward for several ops; results do not
 * depend on the OpenMP thread count; NULL gradients are skipped. And the
 * ops composed into SFC's whole head and loss (two scales, PCM, prototypes,
 * L_cls + L_PDW + L_WDW) against the same network in PyTorch. */
#include <omp.h>
#include <time.h>
#include <unistd.h>

#include "sfc.h"
#include "layers.h"
#include "npy.h"
#include "ops.h"
#include "test.h"

#define BAR 1e-4

/* ------------------------------------------------------- .npy reading */

/* Read <dir>/<name>.<t>.npy (float32) into a fresh aligned buffer; *n gets
 * the element count. Exits on a bad file (test data). */
static float *npy_load(const char *dir, const char *name, const char *t,
                       long *n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.%s.npy", dir, name, t);
    struct sfc_tensor x;
    if (sfc_npy_read(path, &x) != 0 || sfc_check_dtype(path, &x, SFC_F32)) {
        fprintf(stderr, "%s\n", sfc_errmsg());
        exit(1);
    }
    long cnt = (long)sfc_tensor_numel(&x);
    float *d = sfc_xmalloc_aligned((size_t)cnt * 4 + 4);
    memcpy(d, x.data, (size_t)cnt * 4);
    sfc_tensor_release(&x);
    *n = cnt;
    return d;
}

/* ------------------------------------------------------- case plumbing */

struct kase {
    const char *dir;
    char op[32], name[64];
    int np;
    char keys[24][16];
    double vals[24];
    float *t[48];
    int nt;
};

static double P(struct kase *k, const char *key)
{
    for (int i = 0; i < k->np; i++)
        if (!strcmp(k->keys[i], key)) return k->vals[i];
    fprintf(stderr, "%s: no parameter %s\n", k->name, key);
    exit(1);
}

static int Pi(struct kase *k, const char *key)
{
    return (int)P(k, key);
}

/* Load tensor t of the case, checking its element count; freed with the
 * case. */
static float *L(struct kase *k, const char *t, long want)
{
    long n;
    float *d = npy_load(k->dir, k->name, t, &n);
    if (n != want) {
        fprintf(stderr, "%s.%s: %ld elements, want %ld\n", k->name, t, n,
                want);
        exit(1);
    }
    SFC_ASSERT(k->nt < 48);
    k->t[k->nt++] = d;
    return d;
}

static float *buf(struct kase *k, long n, float fill)
{
    float *d = sfc_xmalloc_aligned((size_t)n * 4 + 4);
    for (long i = 0; i < n; i++) d[i] = fill;
    SFC_ASSERT(k->nt < 48);
    k->t[k->nt++] = d;
    return d;
}

/* A gradient buffer holding a copy of its reference, so that cmp() can
 * check that backward accumulated (got - ref == ref) without losing the
 * precision of small gradients. */
static float *acc(struct kase *k, const float *ref, long n)
{
    float *d = buf(k, n, 0);
    memcpy(d, ref, (size_t)n * 4);
    return d;
}

static float *zalloc(long n)
{
    return sfc_xcalloc((size_t)n + 1, sizeof(float));
}

static double worst_rel;

/* got vs ref with the bar; accumulated = 1 for gradients, whose
 * buffer started as a copy of ref (acc()). */
static void cmp(struct kase *k, const char *what, float *got, const float *ref,
                long n, int accumulated)
{
    double mx = 0;
    for (long i = 0; i < n; i++) {
        if (accumulated) got[i] -= ref[i];
        mx = fmax(mx, fabs(ref[i]));
    }
    double r = test_max_rel(got, ref, n, fmax(1e-2 * mx, 1e-30));
    if (r > worst_rel) worst_rel = r;
    if (getenv("SFC_OPS_VERBOSE"))
        printf("  %-13s %-10s %-12s %.3g\n", k->op, k->name, what, r);
    T_CHECK_MSG(r <= BAR, "%s %s.%s: max rel err %.3g", k->op, k->name, what,
                r);
}

/* ------------------------------------------------- composed SFC head
 * SFC's Net.forward after the backbone and the training loss, composed
 * from the ops as ops.h describes, against the same network in PyTorch
 * (ref_ops.py sfc_head): the pieces must fit together, including the
 * gradient paths through the background channel, both PCM products, the
 * prototypes and the ReLU of the cosine. */

struct pass {
    int N, Cf, HW;
    const float *cam, *f, *valid; /* (N,20,HW) (N,Cf,HW) (N,21,HW) */
    float *score, *rc, *c, *cmax, *bmax, *ncam, *fn, *fnorm, *a, *colsum,
          *t1, *mw;
    int *cidx, *bidx;
};

static void pass_alloc(struct pass *p)
{
    long N = p->N, HW = p->HW;
    p->score = zalloc(N * 20), p->rc = zalloc(N * 20 * HW);
    p->c = zalloc(N * 20 * HW), p->cmax = zalloc(N * 20);
    p->bmax = zalloc(N * HW), p->ncam = zalloc(N * 21 * HW);
    p->fn = zalloc(N * p->Cf * HW), p->fnorm = zalloc(N * HW);
    p->a = zalloc(N * HW * HW), p->colsum = zalloc(N * HW);
    p->t1 = zalloc(N * 21 * HW), p->mw = zalloc(N * 21 * HW);
    p->cidx = sfc_xcalloc((size_t)N * 20, sizeof(int));
    p->bidx = sfc_xcalloc((size_t)N * HW, sizeof(int));
}

static void pass_free(struct pass *p)
{
    free(p->score), free(p->rc), free(p->c), free(p->cmax), free(p->bmax);
    free(p->ncam), free(p->fn), free(p->fnorm), free(p->a), free(p->colsum);
    free(p->t1), free(p->mw), free(p->cidx), free(p->bidx);
}

/* Normalised CAM, PCM: M_W in p->mw. */
static void pass_forward(struct pass *p)
{
    int N = p->N, HW = p->HW;
    sfc_gap_forward(p->score, p->cam, N, 20, HW);
    sfc_relu_forward(p->rc, p->cam, (long)N * 20 * HW);
    sfc_maxnorm_forward(p->c, p->cmax, p->cidx, p->rc, 1e-5f, N, 20, HW);
    sfc_chanmax_forward(p->bmax, p->bidx, p->c, N, 20, HW);
    for (int n = 0; n < N; n++) {
        float *o = p->ncam + (long)n * 21 * HW;
        const float *v = p->valid + (long)n * 21 * HW;
        for (int q = 0; q < HW; q++) o[q] = (1 - p->bmax[n * HW + q]) * v[q];
        for (long i = 0; i < 20L * HW; i++)
            o[HW + i] = p->c[(long)n * 20 * HW + i] * v[HW + i];
    }
    sfc_l2norm_forward(p->fn, p->fnorm, p->f, 1e-5f, N, p->Cf, HW);
    sfc_pcm_affinity_forward(p->a, p->colsum, p->fn, 1e-5f, N, p->Cf, HW);
    sfc_pcm_apply_forward(p->t1, p->ncam, p->a, N, 21, HW);
    sfc_pcm_apply_forward(p->mw, p->t1, p->a, N, 21, HW);
}

/* Given dscore (N,20) and dmw (N,21,HW): dcam, df. */
static void pass_backward(struct pass *p, float *dcam, float *df,
                          const float *dscore, const float *dmw)
{
    long N = p->N, HW = p->HW;
    float *dt1 = zalloc(N * 21 * HW), *da = zalloc(N * HW * HW);
    float *dncam = zalloc(N * 21 * HW), *dfn = zalloc(N * p->Cf * HW);
    float *dc = zalloc(N * 20 * HW), *dbmax = zalloc(N * HW);
    float *drc = zalloc(N * 20 * HW);
    float *s = zalloc((long)sfc_pcm_affinity_scratch((int)HW));
    sfc_pcm_apply_backward(dt1, da, dmw, p->t1, p->a, N, 21, HW);
    sfc_pcm_apply_backward(dncam, da, dt1, p->ncam, p->a, N, 21, HW);
    sfc_pcm_affinity_backward(dfn, da, p->fn, p->a, p->colsum, N, p->Cf, HW,
                              s);
    sfc_l2norm_backward(df, dfn, p->f, p->fnorm, 1e-5f, N, p->Cf, HW);
    for (long n = 0; n < N; n++) {
        const float *g = dncam + n * 21 * HW, *v = p->valid + n * 21 * HW;
        for (long q = 0; q < HW; q++) dbmax[n * HW + q] = -g[q] * v[q];
        for (long i = 0; i < 20 * HW; i++)
            dc[n * 20 * HW + i] = g[HW + i] * v[HW + i];
    }
    sfc_chanmax_backward(dc, dbmax, p->bidx, N, 20, HW);
    sfc_maxnorm_backward(drc, dc, p->rc, p->cmax, p->cidx, 1e-5f, N, 20, HW);
    sfc_relu_backward(dcam, drc, p->rc, N * 20 * HW);
    sfc_gap_backward(dcam, dscore, N, 20, HW);
    free(dt1), free(da), free(dncam), free(dfn), free(dc), free(dbmax);
    free(drc), free(s);
}

static void run_head(struct kase *k)
{
    int N = Pi(k, "N"), Cf = Pi(k, "Cf"), h = Pi(k, "h"), ns = Pi(k, "ns");
    int h2 = h / 2, HW = h * h, HW2 = h2 * h2, cs[8], hs[8], D = 0;
    SFC_ASSERT(ns <= 8);
    for (int i = 0; i < ns; i++) {
        char key[8];
        snprintf(key, sizeof key, "c%d", i), cs[i] = Pi(k, key);
        snprintf(key, sizeof key, "h%d", i), hs[i] = Pi(k, key);
        D += cs[i];
    }
    struct pass p1 = {0}, p2 = {0};
    p1.N = p2.N = N, p1.Cf = p2.Cf = Cf, p1.HW = HW, p2.HW = HW2;
    p1.cam = L(k, "cam1", (long)N * 20 * HW);
    p2.cam = L(k, "cam2", (long)N * 20 * HW2);
    p1.f = L(k, "f1", (long)N * Cf * HW), p2.f = L(k, "f2", (long)N * Cf * HW2);
    p1.valid = L(k, "v1", (long)N * 21 * HW);
    p2.valid = L(k, "v2", (long)N * 21 * HW2);
    const float *lab = L(k, "label", (long)N * 20), *w = L(k, "w", 21);
    const float *lossr = L(k, "loss", 4);
    pass_alloc(&p1), pass_alloc(&p2);
    pass_forward(&p1), pass_forward(&p2);
    cmp(k, "mw1", p1.mw, L(k, "mw1", (long)N * 21 * HW), (long)N * 21 * HW,
        0);
    cmp(k, "mw2", p2.mw, L(k, "mw2", (long)N * 21 * HW2),
        (long)N * 21 * HW2, 0);

    /* hie (N, D, HW): side i L2-normalised, resized to h x h */
    float *hie = zalloc((long)N * D * HW), *sn[8], *snorm[8], *sr[8];
    const float *side[8];
    for (int i = 0, off = 0; i < ns; off += cs[i], i++) {
        char key[8];
        long hw = (long)hs[i] * hs[i];
        snprintf(key, sizeof key, "s%d", i);
        side[i] = L(k, key, (long)N * cs[i] * hw);
        sn[i] = zalloc(N * cs[i] * hw), snorm[i] = zalloc(N * hw);
        sr[i] = zalloc((long)N * cs[i] * HW);
        sfc_l2norm_forward(sn[i], snorm[i], side[i], 1e-5f, N, cs[i],
                           (int)hw);
        sfc_resize_bilinear_forward(sr[i], sn[i], N, cs[i], hs[i], hs[i], h,
                                    h, 0, 0, 0);
        for (int n = 0; n < N; n++)
            memcpy(hie + ((long)n * D + off) * HW,
                   sr[i] + (long)n * cs[i] * HW, (size_t)cs[i] * HW * 4);
    }
    /* prototypes and M_P; seeds from PyTorch (an argmax), own ones checked */
    float *seeds = zalloc((long)N * 21 * HW), *P = zalloc((long)N * 21 * D);
    float *cosr = zalloc((long)N * 21 * HW), *mp = zalloc((long)N * 21 * HW);
    const float *seedr = L(k, "seeds", (long)N * 21 * HW);
    sfc_proto_seeds(seeds, p1.mw, p1.valid, 0.3f, N, 21, HW);
    T_CHECK_MSG(memcmp(seeds, seedr, (size_t)N * 21 * HW * 4) == 0,
                "%s: seeds differ", k->name);
    sfc_proto_forward(P, seedr, hie, N, 21, D, HW);
    sfc_cosine_forward(cosr, hie, P, 1e-8f, N, 21, D, HW);
    sfc_relu_forward(mp, cosr, (long)N * 21 * HW);
    cmp(k, "mp1", mp, L(k, "mp1", (long)N * 21 * HW), (long)N * 21 * HW, 0);

    /* losses */
    float *mpn = zalloc((long)N * 21 * HW), *mpmax = zalloc(N * 21);
    int *mpidx = sfc_xcalloc((size_t)N * 21, sizeof(int));
    sfc_maxnorm_forward(mpn, mpmax, mpidx, mp, 1e-5f, N, 21, HW);
    float *dd = zalloc((long)N * 21 * HW2), *ee = zalloc((long)N * 21 * HW2);
    sfc_resize_bilinear_forward(dd, p1.mw, N, 21, h, h, h2, h2, 1, 0.5, 0.5);
    for (long n = 0; n < N; n++)
        for (long c = 0; c < 21; c++) {
            float y = c ? lab[n * 20 + c - 1] : 1.0f;
            for (long q = 0; q < HW2; q++) {
                long i = (n * 21 + c) * HW2 + q;
                dd[i] *= y;
                ee[i] = p2.mw[i] * y;
            }
        }
    float loss[4];
    loss[1] = 0.5f * (sfc_mlsm_loss_forward(p1.score, lab, N, 20) +
                      sfc_mlsm_loss_forward(p2.score, lab, N, 20));
    loss[2] = 1.6f * sfc_l1_loss_forward(p1.mw, mpn, w, N, 21, HW, 0, 21);
    loss[3] = 0.8f * sfc_l1_loss_forward(dd, ee, w, N, 21, HW2, 1, 20);
    loss[0] = loss[1] + loss[2] + loss[3];
    cmp(k, "loss", loss, lossr, 4, 0);

    /* backward */
    float *dscore1 = zalloc(N * 20), *dscore2 = zalloc(N * 20);
    float *dmw1 = zalloc((long)N * 21 * HW), *dmw2 = zalloc((long)N * 21 * HW2);
    float *dmpn = zalloc((long)N * 21 * HW), *dmp = zalloc((long)N * 21 * HW);
    float *dcos = zalloc((long)N * 21 * HW), *dP = zalloc((long)N * 21 * D);
    float *dhie = zalloc((long)N * D * HW), *ddd = zalloc((long)N * 21 * HW2);
    float *dee = zalloc((long)N * 21 * HW2);
    float *cscr = zalloc((long)sfc_cosine_scratch(N, 21, D, HW));
    sfc_mlsm_loss_backward(dscore1, 0.5f, p1.score, lab, N, 20);
    sfc_mlsm_loss_backward(dscore2, 0.5f, p2.score, lab, N, 20);
    sfc_l1_loss_backward(dmw1, dmpn, 1.6f, p1.mw, mpn, w, N, 21, HW, 0, 21);
    sfc_l1_loss_backward(ddd, dee, 0.8f, dd, ee, w, N, 21, HW2, 1, 20);
    for (long n = 0; n < N; n++)
        for (long c = 0; c < 21; c++) {
            float y = c ? lab[n * 20 + c - 1] : 1.0f;
            for (long q = 0; q < HW2; q++) {
                long i = (n * 21 + c) * HW2 + q;
                ddd[i] *= y;
                dmw2[i] += dee[i] * y;
            }
        }
    sfc_resize_bilinear_backward(dmw1, ddd, N, 21, h, h, h2, h2, 1, 0.5,
                                 0.5);
    sfc_maxnorm_backward(dmp, dmpn, mp, mpmax, mpidx, 1e-5f, N, 21, HW);
    sfc_relu_backward(dcos, dmp, mp, (long)N * 21 * HW);
    sfc_cosine_backward(dhie, dP, dcos, hie, P, 1e-8f, N, 21, D, HW, cscr);
    sfc_proto_backward(dhie, dP, seedr, N, 21, D, HW);
    for (int i = 0, off = 0; i < ns; off += cs[i], i++) {
        long hw = (long)hs[i] * hs[i];
        float *dsr = zalloc((long)N * cs[i] * HW), *dsn = zalloc(N * cs[i] * hw);
        float *ds = zalloc(N * cs[i] * hw);
        char key[8];
        for (int n = 0; n < N; n++)
            memcpy(dsr + (long)n * cs[i] * HW,
                   dhie + ((long)n * D + off) * HW, (size_t)cs[i] * HW * 4);
        sfc_resize_bilinear_backward(dsn, dsr, N, cs[i], hs[i], hs[i], h, h,
                                     0, 0, 0);
        sfc_l2norm_backward(ds, dsn, side[i], snorm[i], 1e-5f, N, cs[i],
                            (int)hw);
        snprintf(key, sizeof key, "ds%d", i);
        cmp(k, key, ds, L(k, key, N * cs[i] * hw), N * cs[i] * hw, 0);
        free(dsr), free(dsn), free(ds), free(sn[i]), free(snorm[i]);
        free(sr[i]);
    }
    float *dcam1 = zalloc((long)N * 20 * HW), *dcam2 = zalloc((long)N * 20 * HW2);
    float *df1 = zalloc((long)N * Cf * HW), *df2 = zalloc((long)N * Cf * HW2);
    pass_backward(&p1, dcam1, df1, dscore1, dmw1);
    pass_backward(&p2, dcam2, df2, dscore2, dmw2);
    cmp(k, "dcam1", dcam1, L(k, "dcam1", (long)N * 20 * HW), (long)N * 20 * HW,
        0);
    cmp(k, "dcam2", dcam2, L(k, "dcam2", (long)N * 20 * HW2),
        (long)N * 20 * HW2, 0);
    cmp(k, "df1", df1, L(k, "df1", (long)N * Cf * HW), (long)N * Cf * HW, 0);
    cmp(k, "df2", df2, L(k, "df2", (long)N * Cf * HW2), (long)N * Cf * HW2,
        0);
    pass_free(&p1), pass_free(&p2);
    free(hie), free(seeds), free(P), free(cosr), free(mp), free(mpn);
    free(mpmax), free(mpidx), free(dd), free(ee), free(dscore1);
    free(dscore2), free(dmw1), free(dmw2), free(dmpn), free(dmp), free(dcos);
    free(dP), free(dhie), free(ddd), free(dee), free(cscr), free(dcam1);
    free(dcam2), free(df1), free(df2);
}

static void run_case(struct kase *k)
{
    if (!strcmp(k->op, "groupnorm")) {
        int N = Pi(k, "N"), C = Pi(k, "C"), G = Pi(k, "G");
        int HW = Pi(k, "H") * Pi(k, "W");
        long n = (long)N * C * HW;
        float *x = L(k, "x", n), *ga = L(k, "gamma", C), *be = L(k, "beta", C);
        float *yr = L(k, "y", n), *dy = L(k, "dy", n), *dxr = L(k, "dx", n);
        float *dgr = L(k, "dgamma", C), *dbr = L(k, "dbeta", C);
        float *y = buf(k, n, 0), *mean = buf(k, N * G, 0),
              *rstd = buf(k, N * G, 0);
        float *dx = acc(k, dxr, n), *dg = acc(k, dgr, C), *db = acc(k, dbr, C);
        sfc_groupnorm_forward(y, mean, rstd, x, ga, be, 1e-5f, N, C, G, HW);
        cmp(k, "y", y, yr, n, 0);
        sfc_groupnorm_backward(dx, dg, db, dy, x, mean, rstd, ga, N, C, G,
                               HW);
        cmp(k, "dx", dx, dxr, n, 1);
        cmp(k, "dgamma", dg, dgr, C, 1);
        cmp(k, "dbeta", db, dbr, C, 1);
    } else if (!strcmp(k->op, "bilinear") || !strcmp(k->op, "nearest")) {
        int bil = k->op[0] == 'b';
        int N = Pi(k, "N"), C = Pi(k, "C"), H = Pi(k, "H"), W = Pi(k, "W");
        int OH = Pi(k, "OH"), OW = Pi(k, "OW"), ac = bil ? Pi(k, "ac") : 0;
        double sh = P(k, "sh"), sw = P(k, "sw");
        if (sh > 0) {
            T_CHECK(sfc_resize_outsize(H, sh) == OH);
            T_CHECK(sfc_resize_outsize(W, sw) == OW);
        }
        long n = (long)N * C * H * W, m = (long)N * C * OH * OW;
        float *x = L(k, "x", n), *yr = L(k, "y", m), *dy = L(k, "dy", m);
        float *dxr = L(k, "dx", n), *y = buf(k, m, 0), *dx = acc(k, dxr, n);
        if (bil) {
            sfc_resize_bilinear_forward(y, x, N, C, H, W, OH, OW, ac, sh, sw);
            sfc_resize_bilinear_backward(dx, dy, N, C, H, W, OH, OW, ac, sh,
                                         sw);
        } else {
            sfc_resize_nearest_forward(y, x, N, C, H, W, OH, OW, sh, sw);
            sfc_resize_nearest_backward(dx, dy, N, C, H, W, OH, OW, sh, sw);
        }
        cmp(k, "y", y, yr, m, 0);
        cmp(k, "dx", dx, dxr, n, 1);
    } else if (!strcmp(k->op, "l2norm")) {
        int N = Pi(k, "N"), C = Pi(k, "C"), HW = Pi(k, "H") * Pi(k, "W");
        long n = (long)N * C * HW;
        float *x = L(k, "x", n), *yr = L(k, "y", n), *dy = L(k, "dy", n);
        float *dxr = L(k, "dx", n), *y = buf(k, n, 0), *dx = acc(k, dxr, n);
        float *nr = buf(k, (long)N * HW, 0);
        sfc_l2norm_forward(y, nr, x, 1e-5f, N, C, HW);
        cmp(k, "y", y, yr, n, 0);
        sfc_l2norm_backward(dx, dy, x, nr, 1e-5f, N, C, HW);
        cmp(k, "dx", dx, dxr, n, 1);
    } else if (!strcmp(k->op, "cosine")) {
        int N = Pi(k, "N"), K = Pi(k, "K"), D = Pi(k, "D");
        int HW = Pi(k, "H") * Pi(k, "W");
        long nx = (long)N * D * HW, np = (long)N * K * D, ny = (long)N * K * HW;
        float *x = L(k, "x", nx), *p = L(k, "p", np), *yr = L(k, "y", ny);
        float *dy = L(k, "dy", ny), *dxr = L(k, "dx", nx),
              *dpr = L(k, "dp", np);
        float *y = buf(k, ny, 0), *dx = acc(k, dxr, nx), *dp = acc(k, dpr, np);
        float *dp2 = acc(k, dpr, np);
        float *s = buf(k, (long)sfc_cosine_scratch(N, K, D, HW), 0);
        sfc_cosine_forward(y, x, p, 1e-8f, N, K, D, HW);
        cmp(k, "y", y, yr, ny, 0);
        sfc_cosine_backward(dx, dp, dy, x, p, 1e-8f, N, K, D, HW, s);
        cmp(k, "dx", dx, dxr, nx, 1);
        cmp(k, "dp", dp, dpr, np, 1);
        sfc_cosine_backward(NULL, dp2, dy, x, p, 1e-8f, N, K, D, HW, s);
        cmp(k, "dp(dx NULL)", dp2, dpr, np, 1);
    } else if (!strcmp(k->op, "pcm_affinity")) {
        int N = Pi(k, "N"), C = Pi(k, "C"), HW = Pi(k, "HW");
        long nf = (long)N * C * HW, na = (long)N * HW * HW;
        float *f = L(k, "f", nf), *ar = L(k, "a", na), *da = L(k, "da", na);
        float *dfr = L(k, "df", nf), *a = buf(k, na, 0), *df = acc(k, dfr, nf);
        float *cs = buf(k, (long)N * HW, 0);
        float *s = buf(k, (long)sfc_pcm_affinity_scratch(HW), 0);
        sfc_pcm_affinity_forward(a, cs, f, 1e-5f, N, C, HW);
        sfc_pcm_affinity_backward(df, da, f, a, cs, N, C, HW, s);
        cmp(k, "a", a, ar, na, 0);
        cmp(k, "df", df, dfr, nf, 1);
    } else if (!strcmp(k->op, "pcm_apply")) {
        int N = Pi(k, "N"), K = Pi(k, "K"), HW = Pi(k, "HW");
        long nc = (long)N * K * HW, na = (long)N * HW * HW;
        float *cam = L(k, "cam", nc), *a = L(k, "a", na), *yr = L(k, "y", nc);
        float *dy = L(k, "dy", nc), *dcr = L(k, "dcam", nc),
              *dar = L(k, "da", na);
        float *y = buf(k, nc, 0), *dc = acc(k, dcr, nc), *da = acc(k, dar, na);
        float *dc2 = acc(k, dcr, nc);
        sfc_pcm_apply_forward(y, cam, a, N, K, HW);
        cmp(k, "y", y, yr, nc, 0);
        sfc_pcm_apply_backward(dc, da, dy, cam, a, N, K, HW);
        cmp(k, "dcam", dc, dcr, nc, 1);
        cmp(k, "da", da, dar, na, 1);
        sfc_pcm_apply_backward(dc2, NULL, dy, cam, a, N, K, HW);
        cmp(k, "dcam(da NULL)", dc2, dcr, nc, 1);
    } else if (!strcmp(k->op, "proto")) {
        int N = Pi(k, "N"), K = Pi(k, "K"), D = Pi(k, "D");
        int HW = Pi(k, "H") * Pi(k, "W");
        long nc = (long)N * K * HW, nh = (long)N * D * HW, np = (long)N * K * D;
        float *cam = L(k, "cam", nc), *valid = L(k, "valid", nc);
        float *sr = L(k, "seeds", nc), *hie = L(k, "hie", nh);
        float *pr = L(k, "p", np), *dp = L(k, "dp", np),
              *dhr = L(k, "dhie", nh);
        float *sd = buf(k, nc, 0), *p = buf(k, np, 0), *dh = acc(k, dhr, nh);
        sfc_proto_seeds(sd, cam, valid, 0.3f, N, K, HW);
        T_CHECK_MSG(memcmp(sd, sr, (size_t)nc * 4) == 0, "%s seeds",
                    k->name);
        sfc_proto_forward(p, sr, hie, N, K, D, HW);
        cmp(k, "p", p, pr, np, 0);
        sfc_proto_backward(dh, dp, sr, N, K, D, HW);
        cmp(k, "dhie", dh, dhr, nh, 1);
    } else if (!strcmp(k->op, "maxnorm")) {
        int N = Pi(k, "N"), C = Pi(k, "C"), HW = Pi(k, "H") * Pi(k, "W");
        long n = (long)N * C * HW;
        float *x = L(k, "x", n), *yr = L(k, "y", n), *dy = L(k, "dy", n);
        float *dxr = L(k, "dx", n), *y = buf(k, n, 0), *dx = acc(k, dxr, n);
        float *mx = buf(k, (long)N * C, 0);
        int *idx = (int *)buf(k, (long)N * C, 0);
        sfc_maxnorm_forward(y, mx, idx, x, 1e-5f, N, C, HW);
        cmp(k, "y", y, yr, n, 0);
        sfc_maxnorm_backward(dx, dy, x, mx, idx, 1e-5f, N, C, HW);
        cmp(k, "dx", dx, dxr, n, 1);
    } else if (!strcmp(k->op, "chanmax")) {
        int N = Pi(k, "N"), C = Pi(k, "C"), HW = Pi(k, "H") * Pi(k, "W");
        long n = (long)N * C * HW, m = (long)N * HW;
        float *x = L(k, "x", n), *yr = L(k, "y", m), *dy = L(k, "dy", m);
        float *dxr = L(k, "dx", n), *y = buf(k, m, 0), *dx = acc(k, dxr, n);
        int *idx = (int *)buf(k, m, 0);
        sfc_chanmax_forward(y, idx, x, N, C, HW);
        cmp(k, "y", y, yr, m, 0);
        sfc_chanmax_backward(dx, dy, idx, N, C, HW);
        cmp(k, "dx", dx, dxr, n, 1);
    } else if (!strcmp(k->op, "mlsm")) {
        int N = Pi(k, "N"), C = Pi(k, "C");
        long n = (long)N * C;
        float *x = L(k, "x", n), *t = L(k, "t", n), *lr = L(k, "loss", 1);
        float *dxr = L(k, "dx", n), *dx = acc(k, dxr, n);
        float l = sfc_mlsm_loss_forward(x, t, N, C);
        cmp(k, "loss", &l, lr, 1, 0);
        sfc_mlsm_loss_backward(dx, (float)P(k, "dloss"), x, t, N, C);
        cmp(k, "dx", dx, dxr, n, 1);
    } else if (!strcmp(k->op, "l1")) {
        int N = Pi(k, "N"), C = Pi(k, "C"), HW = Pi(k, "H") * Pi(k, "W");
        int c0 = Pi(k, "c0"), nc = Pi(k, "nc");
        long n = (long)N * C * HW;
        float *a = L(k, "a", n), *b = L(k, "b", n), *w = L(k, "w", C);
        float *lr = L(k, "loss", 1), *dar = L(k, "da", n), *dbr = L(k, "db", n);
        float *da = acc(k, dar, n), *db = acc(k, dbr, n), *db2 = acc(k, dbr, n);
        const float *wp = Pi(k, "weighted") ? w : NULL;
        float dl = (float)P(k, "dloss");
        float l = sfc_l1_loss_forward(a, b, wp, N, C, HW, c0, nc);
        cmp(k, "loss", &l, lr, 1, 0);
        sfc_l1_loss_backward(da, db, dl, a, b, wp, N, C, HW, c0, nc);
        cmp(k, "da", da, dar, n, 1);
        cmp(k, "db", db, dbr, n, 1);
        sfc_l1_loss_backward(NULL, db2, dl, a, b, wp, N, C, HW, c0, nc);
        cmp(k, "db(da NULL)", db2, dbr, n, 1);
    } else if (!strcmp(k->op, "sfc_head")) {
        run_head(k);
    } else {
        T_CHECK_MSG(0, "unknown op '%s' in manifest", k->op);
    }
}

/* Run every case of dir/manifest.txt; returns the number of cases. */
static int run_dir(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    FILE *fp = fopen(path, "r");
    T_CHECK_MSG(fp != NULL, "cannot open %s", path);
    if (!fp) return 0;
    char line[1024];
    int cases = 0;
    worst_rel = 0;
    while (fgets(line, sizeof line, fp)) {
        struct kase k;
        memset(&k, 0, sizeof k);
        k.dir = dir;
        char *tok = strtok(line, " \n");
        if (!tok) continue;
        snprintf(k.op, sizeof k.op, "%s", tok);
        tok = strtok(NULL, " \n");
        SFC_ASSERT(tok);
        snprintf(k.name, sizeof k.name, "%s", tok);
        while ((tok = strtok(NULL, " \n"))) {
            char *eq = strchr(tok, '=');
            SFC_ASSERT(eq && k.np < 24);
            *eq = 0;
            snprintf(k.keys[k.np], sizeof k.keys[0], "%s", tok);
            k.vals[k.np++] = strtod(eq + 1, NULL);
        }
        run_case(&k);
        for (int i = 0; i < k.nt; i++) free(k.t[i]);
        cases++;
    }
    fclose(fp);
    printf("%s: %d cases, worst relative error %.3g\n", dir, cases,
           worst_rel);
    return cases;
}

/* ------------------------------------------- finite differences (no torch)
 * L(x) = sum_i r_i y_i(x) in double; dL/dx_j by central differences at a
 * few coordinates, against the backward given dy = r. */

static struct sfc_rng rng;

static void fill(float *a, long n, double scale, double shift)
{
    for (long i = 0; i < n; i++)
        a[i] = (float)(scale * sfc_rng_normal(&rng) + shift);
}

typedef double (*lossfn)(void *ctx);

/* Perturb in[j] for `picks` random j and compare with grad[j]. */
static void fd_check(const char *what, lossfn f, void *ctx, float *in, long n,
                     const float *grad, int picks, double h, double tol)
{
    double worst = 0, gmax = 0;
    for (long j = 0; j < n; j++) gmax = fmax(gmax, fabs(grad[j]));
    for (int t = 0; t < picks; t++) {
        long j = (long)sfc_rng_below(&rng, (uint64_t)n);
        float x0 = in[j];
        in[j] = (float)(x0 + h);
        double xp = in[j], lp = f(ctx);
        in[j] = (float)(x0 - h);
        double xm = in[j], lm = f(ctx);
        in[j] = x0;
        double fd = (lp - lm) / (xp - xm);
        double e = fabs(fd - grad[j]) / fmax(fabs(grad[j]), 0.05 * gmax);
        worst = fmax(worst, e);
    }
    printf("fd %-22s worst rel err %.2e (tol %.0e)\n", what, worst, tol);
    T_CHECK_MSG(worst <= tol, "fd %s: %.3g", what, worst);
}

static double dotr(const float *y, const float *r, long n)
{
    double s = 0;
    for (long i = 0; i < n; i++) s += (double)y[i] * r[i];
    return s;
}

struct gn_ctx {
    float *x, *ga, *be, *y, *r;
    int N, C, G, HW;
};
static double gn_loss(void *v)
{
    struct gn_ctx *c = v;
    sfc_groupnorm_forward(c->y, NULL, NULL, c->x, c->ga, c->be, 1e-5f, c->N,
                          c->C, c->G, c->HW);
    return dotr(c->y, c->r, (long)c->N * c->C * c->HW);
}

struct l2_ctx {
    float *x, *y, *r;
    int N, C, HW;
};
static double l2_loss(void *v)
{
    struct l2_ctx *c = v;
    sfc_l2norm_forward(c->y, NULL, c->x, 1e-5f, c->N, c->C, c->HW);
    return dotr(c->y, c->r, (long)c->N * c->C * c->HW);
}

struct cos_ctx {
    float *x, *p, *y, *r;
    int N, K, D, HW;
};
static double cos_loss(void *v)
{
    struct cos_ctx *c = v;
    sfc_cosine_forward(c->y, c->x, c->p, 1e-8f, c->N, c->K, c->D, c->HW);
    return dotr(c->y, c->r, (long)c->N * c->K * c->HW);
}

struct aff_ctx {
    float *f, *a, *cs, *r;
    int N, C, HW;
};
static double aff_loss(void *v)
{
    struct aff_ctx *c = v;
    sfc_pcm_affinity_forward(c->a, c->cs, c->f, 1e-5f, c->N, c->C, c->HW);
    return dotr(c->a, c->r, (long)c->N * c->HW * c->HW);
}

struct mx_ctx {
    float *x, *y, *r;
    int N, C, HW;
};
static double mx_loss(void *v)
{
    struct mx_ctx *c = v;
    sfc_maxnorm_forward(c->y, NULL, NULL, c->x, 1e-5f, c->N, c->C, c->HW);
    return dotr(c->y, c->r, (long)c->N * c->C * c->HW);
}

struct bl_ctx {
    float *x, *y, *r;
    int N, C, H, W, OH, OW, ac;
    double s;
};
static double bl_loss(void *v)
{
    struct bl_ctx *c = v;
    sfc_resize_bilinear_forward(c->y, c->x, c->N, c->C, c->H, c->W, c->OH,
                                c->OW, c->ac, c->s, c->s);
    return dotr(c->y, c->r, (long)c->N * c->C * c->OH * c->OW);
}

struct ml_ctx {
    float *x, *t;
    int N, C;
};
static double ml_loss(void *v)
{
    struct ml_ctx *c = v;
    return sfc_mlsm_loss_forward(c->x, c->t, c->N, c->C);
}

static void test_fd(void)
{
    sfc_rng_seed(&rng, 77);
    {
        struct gn_ctx c = {0};
        c.N = 2, c.C = 6, c.G = 3, c.HW = 10;
        long n = (long)c.N * c.C * c.HW;
        c.x = zalloc(n), c.y = zalloc(n), c.r = zalloc(n);
        c.ga = zalloc(c.C), c.be = zalloc(c.C);
        fill(c.x, n, 1.5, 0.3), fill(c.r, n, 1, 0);
        fill(c.ga, c.C, 0.5, 1), fill(c.be, c.C, 1, 0);
        float *mean = zalloc(c.N * c.G), *rstd = zalloc(c.N * c.G);
        float *dx = zalloc(n), *dg = zalloc(c.C);
        sfc_groupnorm_forward(c.y, mean, rstd, c.x, c.ga, c.be, 1e-5f, c.N,
                              c.C, c.G, c.HW);
        sfc_groupnorm_backward(dx, dg, NULL, c.r, c.x, mean, rstd, c.ga, c.N,
                               c.C, c.G, c.HW);
        fd_check("groupnorm dx", gn_loss, &c, c.x, n, dx, 20, 1e-2, 2e-3);
        fd_check("groupnorm dgamma", gn_loss, &c, c.ga, c.C, dg, 6, 1e-2,
                 2e-3);
        free(c.x), free(c.y), free(c.r), free(c.ga), free(c.be);
        free(mean), free(rstd), free(dx), free(dg);
    }
    {
        struct l2_ctx c = {0};
        c.N = 2, c.C = 7, c.HW = 9;
        long n = (long)c.N * c.C * c.HW;
        c.x = zalloc(n), c.y = zalloc(n), c.r = zalloc(n);
        fill(c.x, n, 1, 0), fill(c.r, n, 1, 0);
        float *nr = zalloc(c.N * c.HW), *dx = zalloc(n);
        sfc_l2norm_forward(c.y, nr, c.x, 1e-5f, c.N, c.C, c.HW);
        sfc_l2norm_backward(dx, c.r, c.x, nr, 1e-5f, c.N, c.C, c.HW);
        fd_check("l2norm dx", l2_loss, &c, c.x, n, dx, 20, 1e-2, 2e-3);
        free(c.x), free(c.y), free(c.r), free(nr), free(dx);
    }
    {
        struct cos_ctx c = {0};
        c.N = 2, c.K = 3, c.D = 8, c.HW = 12;
        long nx = (long)c.N * c.D * c.HW, np = (long)c.N * c.K * c.D;
        long ny = (long)c.N * c.K * c.HW;
        c.x = zalloc(nx), c.p = zalloc(np), c.y = zalloc(ny), c.r = zalloc(ny);
        fill(c.x, nx, 1, 0), fill(c.p, np, 1, 0), fill(c.r, ny, 1, 0);
        float *dx = zalloc(nx), *dp = zalloc(np);
        float *s = zalloc((long)sfc_cosine_scratch(c.N, c.K, c.D, c.HW));
        sfc_cosine_backward(dx, dp, c.r, c.x, c.p, 1e-8f, c.N, c.K, c.D, c.HW,
                            s);
        fd_check("cosine dx", cos_loss, &c, c.x, nx, dx, 20, 1e-2, 2e-3);
        fd_check("cosine dp", cos_loss, &c, c.p, np, dp, 20, 1e-2, 2e-3);
        free(c.x), free(c.p), free(c.y), free(c.r), free(dx), free(dp);
        free(s);
    }
    {
        struct aff_ctx c = {0};
        c.N = 2, c.C = 5, c.HW = 12;
        long nf = (long)c.N * c.C * c.HW, na = (long)c.N * c.HW * c.HW;
        c.f = zalloc(nf), c.a = zalloc(na), c.cs = zalloc(c.N * c.HW);
        c.r = zalloc(na);
        fill(c.f, nf, 1, 0.2), fill(c.r, na, 1, 0);
        float *df = zalloc(nf), *s = zalloc((long)sfc_pcm_affinity_scratch(
                                              c.HW));
        sfc_pcm_affinity_forward(c.a, c.cs, c.f, 1e-5f, c.N, c.C, c.HW);
        sfc_pcm_affinity_backward(df, c.r, c.f, c.a, c.cs, c.N, c.C, c.HW, s);
        /* small h: a ReLU kink must not fall inside [x - h, x + h] */
        fd_check("pcm_affinity df", aff_loss, &c, c.f, nf, df, 20, 3e-3,
                 5e-3);
        free(c.f), free(c.a), free(c.cs), free(c.r), free(df), free(s);
    }
    {
        struct mx_ctx c = {0};
        c.N = 2, c.C = 3, c.HW = 15;
        long n = (long)c.N * c.C * c.HW;
        c.x = zalloc(n), c.y = zalloc(n), c.r = zalloc(n);
        fill(c.x, n, 1, 0), fill(c.r, n, 1, 0);
        float *mx = zalloc(c.N * c.C), *dx = zalloc(n);
        int *idx = sfc_xcalloc((size_t)c.N * c.C, sizeof(int));
        sfc_maxnorm_forward(c.y, mx, idx, c.x, 1e-5f, c.N, c.C, c.HW);
        sfc_maxnorm_backward(dx, c.r, c.x, mx, idx, 1e-5f, c.N, c.C, c.HW);
        fd_check("maxnorm dx", mx_loss, &c, c.x, n, dx, 30, 1e-3, 5e-3);
        free(c.x), free(c.y), free(c.r), free(mx), free(dx), free(idx);
    }
    for (int ac = 0; ac < 2; ac++) {
        struct bl_ctx c = {0};
        c.N = 1, c.C = 2, c.H = 7, c.W = 5, c.ac = ac, c.s = 2.5;
        c.OH = sfc_resize_outsize(c.H, c.s), c.OW = sfc_resize_outsize(c.W,
                                                                       c.s);
        long n = (long)c.N * c.C * c.H * c.W,
             m = (long)c.N * c.C * c.OH * c.OW;
        c.x = zalloc(n), c.y = zalloc(m), c.r = zalloc(m);
        fill(c.x, n, 1, 0), fill(c.r, m, 1, 0);
        float *dx = zalloc(n);
        sfc_resize_bilinear_backward(dx, c.r, c.N, c.C, c.H, c.W, c.OH, c.OW,
                                     ac, c.s, c.s);
        fd_check(ac ? "bilinear ac=1 dx" : "bilinear ac=0 dx", bl_loss, &c,
                 c.x, n, dx, 20, 1e-2, 2e-3);
        free(c.x), free(c.y), free(c.r), free(dx);
    }
    {
        struct ml_ctx c = {0};
        c.N = 3, c.C = 7;
        long n = (long)c.N * c.C;
        c.x = zalloc(n), c.t = zalloc(n);
        fill(c.x, n, 2, 0);
        for (long i = 0; i < n; i++) c.t[i] = (float)(i % 3 == 0);
        float *dx = zalloc(n);
        sfc_mlsm_loss_backward(dx, 1.0f, c.x, c.t, c.N, c.C);
        fd_check("mlsm dx", ml_loss, &c, c.x, n, dx, 10, 3e-2, 5e-3);
        free(c.x), free(c.t), free(dx);
    }
}

/* ------------------------------------------ thread-count independence */

static void test_threads(void)
{
    sfc_rng_seed(&rng, 5);
    int N = 2, C = 8, G = 2, HW = 300, OH = 37, OW = 23;
    long n = (long)N * C * HW;
    float *x = zalloc(n), *dy = zalloc(n), *ga = zalloc(C), *be = zalloc(C);
    fill(x, n, 1, 0), fill(dy, n, 1, 0), fill(ga, C, 1, 0), fill(be, C, 1, 0);
    int K = 3, D = 8;
    long nc = (long)N * K * HW, nk = (long)N * K * D;
    float *p = zalloc(nk), *dyc = zalloc(nc);
    fill(p, nk, 1, 0), fill(dyc, nc, 1, 0);
    float *cs = zalloc((long)sfc_cosine_scratch(N, K, D, HW));
    float *res[2][8];
    int maxt = omp_get_max_threads();
    for (int r = 0; r < 2; r++) {
        omp_set_num_threads(r == 0 ? 1 : 3);
        float *y = zalloc(n), *m = zalloc(N * G), *s = zalloc(N * G);
        float *dx = zalloc(n), *dg = zalloc(C), *yl = zalloc(n),
              *nr = zalloc(N * HW), *dxl = zalloc(n);
        float *yb = zalloc((long)N * C * OH * OW);
        sfc_groupnorm_forward(y, m, s, x, ga, be, 1e-5f, N, C, G, HW);
        sfc_groupnorm_backward(dx, dg, NULL, dy, x, m, s, ga, N, C, G, HW);
        sfc_l2norm_forward(yl, nr, x, 1e-5f, N, C, HW);
        sfc_l2norm_backward(dxl, dy, x, nr, 1e-5f, N, C, HW);
        sfc_resize_bilinear_forward(yb, x, N, C, 20, 15, OH, OW, 0, 0, 0);
        res[r][0] = dx, res[r][1] = dg, res[r][2] = yl, res[r][3] = dxl;
        res[r][4] = yb;
        /* x read as (N, D, HW) features and (N, C, HW) for PCM */
        float *yc = zalloc(nc), *dxc = zalloc((long)N * D * HW),
              *dpc = zalloc(nk);
        sfc_cosine_forward(yc, x, p, 1e-8f, N, K, D, HW);
        sfc_cosine_backward(dxc, dpc, dyc, x, p, 1e-8f, N, K, D, HW, cs);
        res[r][5] = yc, res[r][6] = dpc;
        float *af = zalloc((long)N * HW * HW), *acs = zalloc(N * HW);
        sfc_pcm_affinity_forward(af, acs, x, 1e-5f, N, C, HW);
        res[r][7] = af;
        free(dxc), free(acs);
        free(y), free(m), free(s), free(nr);
    }
    omp_set_num_threads(maxt);
    long sz[8] = {n, C, n, n, (long)N * C * OH * OW, nc, nk,
                  (long)N * HW * HW};
    for (int i = 0; i < 8; i++) {
        T_CHECK_MSG(memcmp(res[0][i], res[1][i], (size_t)sz[i] * 4) == 0,
                    "result %d depends on the thread count", i);
        free(res[0][i]), free(res[1][i]);
    }
    free(x), free(dy), free(ga), free(be), free(p), free(dyc), free(cs);
}

int main(void)
{
    const char *gold = getenv("SFC_GOLDEN_OPS");
    int n = run_dir(gold ? gold : "tests/golden/ops");
    T_CHECK(n >= 25);
    test_fd();
    test_threads();
    const char *py = test_oracle();
    if (py) {
        char *dir = test_tmpdir("ops");
        unsigned seed = test_fresh_seed("ref_ops.py");
        char *cmd = sfc_xasprintf("%s tests/ref/ref_ops.py --out %s "
                                  "--seed %u", py, dir, seed);
        int rc = system(cmd);
        T_CHECK_MSG(rc == 0, "oracle failed: %s", cmd);
        if (rc == 0) T_CHECK(run_dir(dir) >= 30);
        char *rm = sfc_xasprintf("rm -rf '%s'", dir);
        if (system(rm) != 0) fprintf(stderr, "cannot remove %s\n", dir);
        free(rm), free(cmd), free(dir);
    }
    return test_summary();
}
