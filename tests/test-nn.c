/* SPDX-License-Identifier: MIT */
/* test-nn.c: the layer kernels (lib/conv.c, lib/layers.c) against three
 * oracles:
 *  - PyTorch (tests/ref/ref_nn.py): forward outputs and the gradients of
 *    (out * dout).sum() for every conv/BN/ReLU/max-pool/GAP case, from the
 *    committed goldens in tests/golden/nn/ and, when test_oracle() is set,
 *    from fresh cases with a new seed. Every tensor must pass test_close
 *    and have max relative error <= 1e-4 (the bar);
 *  - a brute-force direct convolution (sfc_conv2d_forward_naive, and a
 *    direct backward written here) on many random shapes;
 *  - itself: the fused epilogue of sfc_conv2d_forward_ex equals the plain
 *    forward followed by its steps, bit for bit; backward with dx set
 *    equals backward accumulating into zeros;
 *  - the Winograd path of 3x3 stride-1 convolutions (conv.h
 *    sfc_conv2d_set_algo), forced on the small shapes, against PyTorch
 *    and the direct convolution (the im2col path is AUTO's there);
 *  - itself: the same results, bit for bit, with 1 and 2 OpenMP threads
 *    (OpenBLAS's thread count fixed: its sgemm rounds differently with 1
 *    and 2 threads for some shapes, which is outside these kernels), and
 *    backward accumulating (+=) and honouring NULL gradients. */
#include <time.h>
#include <unistd.h>

#include <omp.h>

#include "err.h"
#include "nn.h"
#include "npy.h"
#include "rng.h"
#include "util.h"
#include "test.h"
#include "nncheck.h"

#define GOLDEN_DIR "tests/golden/nn"
#define REF_SCRIPT "tests/ref/ref_nn.py"

/* The bar: max |got - ref| / max(|ref|, floor) <= 1e-4, where the
 * floor, 1e-2 of the tensor's largest magnitude, keeps elements that are
 * zero up to cancellation from dividing by ~0. (With a floor of 1e-3,
 * PyTorch's own float32 conv scores up to 1e-4 against its float64 one on
 * these cases; with 1e-2 it scores <= 2.5e-5.) */

static const char *const CONV_CASES[] = {
    "conv_k7s2p3", "conv_k7s2p3_even", "conv_k3s1p1", "conv_k3s2p1",
    "conv_k3s2p1_even", "conv_k3d2p2", "conv_k3d4p4", "conv_k1s1",
    "conv_k1s1_bias", "conv_k1s2", "conv_k1s2_even", "conv_k3s1p1_wide",
    "conv_k1s1_wide", "conv_k3s1p0", "conv_k3s1p2",
};
static const char *const BN_CASES[] = {"bn", "bn_eps"};
static const char *const POOL_CASES[] = {
    "maxpool_k3s2p1", "maxpool_k3s2p1_even", "maxpool_k2s2p0",
    "maxpool_k3s1p1", "maxpool_ties",
};

/* ------------------------------------------------------------------ */
/* PyTorch cases                                                      */

/* Set while the Winograd path is forced (sfc_conv2d_set_algo): the
 * PyTorch cases then run only the shapes it applies to. */
static int wino_forced;

static void set_algo(int algo)
{
    sfc_conv2d_set_algo(algo);
    wino_forced = algo == SFC_CONV2D_WINOGRAD;
}

static void check_conv_case(const char *dir, const char *cs)
{
    struct sfc_npz z;
    const int64_t *m;
    if (nn_load(dir, cs, &z, &m, 10)) return;
    struct sfc_conv2d c = nn_conv_of(m);
    if (!wino_forced || (c.K == 3 && c.S == 1 && c.D == 1))
        nn_check_conv(&z, m, cs);
    sfc_npz_release(&z);
}

static void check_bn_case(const char *dir, const char *cs)
{
    struct sfc_npz z;
    const int64_t *m;
    if (nn_load(dir, cs, &z, &m, 4)) return;
    int N = m[0], C = m[1], HW = m[2] * m[3];
    long n = (long)N * C * HW;
    const float *x = nn_getf(&z, cs, "x", n), *y = nn_getf(&z, cs, "y", n);
    const float *dout = nn_getf(&z, cs, "dout", n), *dx = nn_getf(&z, cs, "dx", n);
    const float *eps = nn_getf(&z, cs, "eps", 1);
    const float *mean = nn_getf(&z, cs, "mean", C), *var = nn_getf(&z, cs, "var", C);
    const float *gamma = nn_getf(&z, cs, "gamma", C);
    const float *beta = nn_getf(&z, cs, "beta", C);
    const float *dg = nn_getf(&z, cs, "dgamma", C);
    const float *dbt = nn_getf(&z, cs, "dbeta", C);
    if (x && y && dout && dx && eps && mean && var && gamma && beta && dg &&
        dbt) {
        float *gy = nn_falloc(n), *gdx = nn_falloc(n), *gdg = nn_falloc(C);
        float *gdb = nn_falloc(C);
        sfc_bn_frozen_forward(gy, x, gamma, beta, mean, var, *eps, N, C, HW);
        nn_compare(cs, "y", gy, y, n, 1e-5, 1e-4);
        sfc_bn_frozen_backward(gdx, gdg, gdb, dout, x, gamma, mean, var, *eps,
                               N, C, HW);
        nn_compare(cs, "dx", gdx, dx, n, 1e-5, 1e-4);
        nn_compare(cs, "dgamma", gdg, dg, C, 1e-5, 1e-4);
        nn_compare(cs, "dbeta", gdb, dbt, C, 1e-5, 1e-4);
        /* dbeta alone needs no x */
        memset(gdb, 0, sizeof(float) * C);
        sfc_bn_frozen_backward(NULL, NULL, gdb, dout, NULL, gamma, mean, var,
                               *eps, N, C, HW);
        nn_compare(cs, "dbeta_alone", gdb, dbt, C, 1e-5, 1e-4);
        /* in place (y == x) gives the same result */
        memcpy(gy, x, sizeof(float) * n);
        sfc_bn_frozen_forward(gy, gy, gamma, beta, mean, var, *eps, N, C, HW);
        nn_compare(cs, "y_inplace", gy, y, n, 1e-5, 1e-4);
        free(gy), free(gdx), free(gdg), free(gdb);
    }
    sfc_npz_release(&z);
}

static void check_relu_case(const char *dir, const char *cs)
{
    struct sfc_npz z;
    const int64_t *m;
    if (nn_load(dir, cs, &z, &m, 4)) return;
    long n = m[0] * m[1] * m[2] * m[3];
    const float *x = nn_getf(&z, cs, "x", n), *y = nn_getf(&z, cs, "y", n);
    const float *dout = nn_getf(&z, cs, "dout", n), *dx = nn_getf(&z, cs, "dx", n);
    if (x && y && dout && dx) {
        float *gy = nn_falloc(n), *gdx = nn_falloc(n);
        sfc_relu_forward(gy, x, n);
        T_CHECK_MSG(!memcmp(gy, y, sizeof(float) * n), "%s: y differs", cs);
        sfc_relu_backward(gdx, dout, gy, n);
        T_CHECK_MSG(!memcmp(gdx, dx, sizeof(float) * n), "%s: dx differs",
                    cs);
        free(gy), free(gdx);
    }
    sfc_npz_release(&z);
}

static void check_pool_case(const char *dir, const char *cs)
{
    struct sfc_npz z;
    const int64_t *m;
    if (nn_load(dir, cs, &z, &m, 7)) return;
    int N = m[0], C = m[1], H = m[2], W = m[3], K = m[4], S = m[5], P = m[6];
    int OH = sfc_maxpool2d_outsize(H, K, S, P);
    int OW = sfc_maxpool2d_outsize(W, K, S, P);
    long nx = (long)N * C * H * W, ny = (long)N * C * OH * OW;
    const float *x = nn_getf(&z, cs, "x", nx), *y = nn_getf(&z, cs, "y", ny);
    const float *dout = nn_getf(&z, cs, "dout", ny), *dx = nn_getf(&z, cs, "dx", nx);
    const struct sfc_tensor *ia = sfc_npz_get(&z, "idx");
    int iok = ia && ia->dtype == SFC_I32 && sfc_tensor_numel(ia) == ny;
    T_CHECK_MSG(iok,
                "%s: bad idx", cs);
    if (x && y && dout && dx && iok) {
        float *gy = nn_falloc(ny), *gdx = nn_falloc(nx);
        int *gi = calloc(ny, sizeof(int));
        sfc_maxpool2d_forward(gy, gi, x, N, C, H, W, K, S, P);
        T_CHECK_MSG(!memcmp(gy, y, sizeof(float) * ny), "%s: y differs", cs);
        long bad = 0;
        for (long i = 0; i < ny; i++) bad += gi[i] != ((int *)ia->data)[i];
        T_CHECK_MSG(bad == 0, "%s: %ld argmax indices differ from PyTorch",
                    cs, bad);
        sfc_maxpool2d_backward(gdx, dout, gi, N, C, H, W, OH, OW);
        nn_compare(cs, "dx", gdx, dx, nx, 1e-6, 1e-6);
        /* idx == NULL (inference) gives the same y */
        memset(gy, 0, sizeof(float) * ny);
        sfc_maxpool2d_forward(gy, NULL, x, N, C, H, W, K, S, P);
        T_CHECK_MSG(!memcmp(gy, y, sizeof(float) * ny), "%s: y (no idx)",
                    cs);
        free(gy), free(gdx), free(gi);
    }
    sfc_npz_release(&z);
}

static void check_gap_case(const char *dir, const char *cs)
{
    struct sfc_npz z;
    const int64_t *m;
    if (nn_load(dir, cs, &z, &m, 4)) return;
    int N = m[0], C = m[1], HW = m[2] * m[3];
    long nx = (long)N * C * HW;
    const float *x = nn_getf(&z, cs, "x", nx), *y = nn_getf(&z, cs, "y", N * C);
    const float *dout = nn_getf(&z, cs, "dout", N * C);
    const float *dx = nn_getf(&z, cs, "dx", nx);
    if (x && y && dout && dx) {
        float *gy = nn_falloc(N * C), *gdx = nn_falloc(nx);
        sfc_gap_forward(gy, x, N, C, HW);
        nn_compare(cs, "y", gy, y, N * C, 1e-6, 1e-5);
        sfc_gap_backward(gdx, dout, N, C, HW);
        nn_compare(cs, "dx", gdx, dx, nx, 1e-6, 1e-5);
        free(gy), free(gdx);
    }
    sfc_npz_release(&z);
}

static void check_dir(const char *dir)
{
    fprintf(stderr, "cases in %s\n", dir);
    for (size_t i = 0; i < SFC_ARRAY_LEN(CONV_CASES); i++)
        check_conv_case(dir, CONV_CASES[i]);
    /* the 3x3 stride-1 cases again by Winograd (too narrow for AUTO) */
    set_algo(SFC_CONV2D_WINOGRAD);
    for (size_t i = 0; i < SFC_ARRAY_LEN(CONV_CASES); i++)
        check_conv_case(dir, CONV_CASES[i]);
    set_algo(SFC_CONV2D_AUTO);
    for (size_t i = 0; i < SFC_ARRAY_LEN(BN_CASES); i++)
        check_bn_case(dir, BN_CASES[i]);
    check_relu_case(dir, "relu");
    for (size_t i = 0; i < SFC_ARRAY_LEN(POOL_CASES); i++)
        check_pool_case(dir, POOL_CASES[i]);
    check_gap_case(dir, "gap");
}

static void check_fresh(void)
{
    const char *py = test_oracle();
    if (!py) {
        fprintf(stderr, "no oracle: goldens only\n");
        return;
    }
    char *dir = test_tmpdir("nn");
    unsigned seed = test_fresh_seed(REF_SCRIPT);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=1 '%s' %s --out '%s' --seed %u", py, REF_SCRIPT,
             dir, seed);
    int ok = system(cmd) == 0;
    T_CHECK_MSG(ok, "%s failed", cmd);
    if (ok) check_dir(dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    free(dir);
}

/* ------------------------------------------------------------------ */
/* Brute force: direct backward, and fast vs naive on random shapes   */

static void conv_backward_naive(const struct sfc_conv2d *c, double *dx,
                                double *dw, double *db, const float *dy,
                                const float *x, const float *w, int N, int H,
                                int W)
{
    const int K = c->K, S = c->S, P = c->P, D = c->D, C = c->C, OC = c->OC;
    const int OH = sfc_conv2d_outsize(H, K, S, P, D);
    const int OW = sfc_conv2d_outsize(W, K, S, P, D);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double g = dy[(((long)n * OC + o) * OH + oh) * OW + ow];
                    db[o] += g;
                    for (int ch = 0; ch < C; ch++)
                        for (int kh = 0; kh < K; kh++)
                            for (int kw = 0; kw < K; kw++) {
                                int ih = oh * S - P + kh * D;
                                int iw = ow * S - P + kw * D;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                                    continue;
                                long xi = (((long)n * C + ch) * H + ih) * W +
                                          iw;
                                long wi = (((long)o * C + ch) * K + kh) * K +
                                          kw;
                                dx[xi] += g * w[wi];
                                dw[wi] += g * x[xi];
                            }
                }
}

static void tofloat(float *f, const double *d, long n)
{
    for (long i = 0; i < n; i++) f[i] = (float)d[i];
}

/* sfc_conv2d_forward_ex against the plain forward y0 followed by the
 * epilogue's steps written out here: bit for bit, for a random choice of
 * the epilogue's parts. */
static void check_epilogue(struct sfc_rng *r, const struct sfc_conv2d *c,
                           const char *name, const float *y0,
                           const float *x, const float *w, const float *b,
                           int N, int H, int W, float *scratch)
{
    int OH = sfc_conv2d_outsize(H, c->K, c->S, c->P, c->D);
    int OW = sfc_conv2d_outsize(W, c->K, c->S, c->P, c->D);
    long hw = (long)OH * OW, ny = (long)N * c->OC * hw;
    float *sc = nn_frand(r, c->OC, 1), *sh = nn_frand(r, c->OC, 1);
    float *rs = nn_frand(r, c->OC, 1), *rt = nn_frand(r, c->OC, 1);
    float *res = nn_frand(r, ny, 1);
    float *y = nn_falloc(ny), *pre = nn_falloc(ny), *ref = nn_falloc(ny);
    int bits = (int)sfc_rng_below(r, 32);
    struct sfc_conv2d_epilogue ep = {
        .scale = bits & 1 ? sc : NULL, .shift = bits & 1 ? sh : NULL,
        .res = bits & 2 ? res : NULL, .rscale = bits & 4 ? rs : NULL,
        .rshift = bits & 4 ? rt : NULL, .relu = (bits & 8) != 0,
        .pre = bits & 16 ? pre : NULL};
    for (long i = 0; i < ny; i++) {
        int o = (int)(i / hw % c->OC);
        float v = y0[i];
        if (ep.scale) v = v * sc[o] + sh[o];
        if (ep.res) v = v + (ep.rscale ? res[i] * rs[o] + rt[o] : res[i]);
        if (ep.relu) v = v > 0.0f ? v : 0.0f;
        ref[i] = v;
    }
    sfc_conv2d_forward_ex(c, y, x, w, b, N, H, W, scratch, &ep);
    T_CHECK_MSG(!memcmp(y, ref, sizeof(float) * ny),
                "%s: epilogue %d differs from its steps", name, bits);
    if (ep.pre)
        T_CHECK_MSG(!memcmp(pre, y0, sizeof(float) * ny),
                    "%s: epilogue pre differs from the output", name);
    free(sc), free(sh), free(rs), free(rt), free(res), free(y), free(pre);
    free(ref);
}

/* Fast forward and backward vs the direct ones on one shape. */
static void check_shape(struct sfc_rng *r, struct sfc_conv2d c, int N, int H,
                    int W, int bias)
{
    int OH = sfc_conv2d_outsize(H, c.K, c.S, c.P, c.D);
    int OW = sfc_conv2d_outsize(W, c.K, c.S, c.P, c.D);
    long nx = (long)N * c.C * H * W, ny = (long)N * c.OC * OH * OW;
    long nw = (long)c.OC * c.C * c.K * c.K;
    float *x = nn_frand(r, nx, 1), *w = nn_frand(r, nw, 0.3);
    float *b = nn_frand(r, c.OC, 1), *dy = nn_frand(r, ny, 1);
    float *y = nn_falloc(ny), *yn = nn_falloc(ny);
    float *scratch = nn_falloc(sfc_conv2d_scratch(&c, H, W));
    char name[128];
    snprintf(name, sizeof name,
             "random N%d C%d OC%d %dx%d K%d S%d P%d D%d b%d", N, c.C,
             c.OC, H, W, c.K, c.S, c.P, c.D, bias);
    sfc_conv2d_forward(&c, y, x, w, bias ? b : NULL, N, H, W, scratch);
    sfc_conv2d_forward_naive(&c, yn, x, w, bias ? b : NULL, N, H, W);
    nn_compare(name, "y", y, yn, ny, 1e-5, 1e-4);
    /* backward: starts from 1 to check accumulation */
    double *ddx = calloc(nx, sizeof(double)),
           *ddw = calloc(nw, sizeof(double)),
           *ddb = calloc(c.OC, sizeof(double));
    conv_backward_naive(&c, ddx, ddw, ddb, dy, x, w, N, H, W);
    for (long i = 0; i < nx; i++) ddx[i] += 1;
    for (long i = 0; i < nw; i++) ddw[i] += 1;
    for (long i = 0; i < c.OC; i++) ddb[i] += 1;
    float *rdx = nn_falloc(nx), *rdw = nn_falloc(nw), *rdb = nn_falloc(c.OC);
    tofloat(rdx, ddx, nx), tofloat(rdw, ddw, nw), tofloat(rdb, ddb, c.OC);
    float *gdx = nn_falloc(nx), *gdw = nn_falloc(nw), *gdb = nn_falloc(c.OC);
    for (long i = 0; i < nx; i++) gdx[i] = 1;
    for (long i = 0; i < nw; i++) gdw[i] = 1;
    for (long i = 0; i < c.OC; i++) gdb[i] = 1;
    sfc_conv2d_backward(&c, gdx, gdw, gdb, dy, x, w, N, H, W, scratch);
    nn_compare(name, "dx", gdx, rdx, nx, 1e-5, 1e-4);
    nn_compare(name, "dw", gdw, rdw, nw, 1e-5, 1e-4);
    nn_compare(name, "db", gdb, rdb, c.OC, 1e-5, 1e-4);
    /* NULL gradients: each alone gives the same as all together */
    float *ox = nn_falloc(nx), *ow = nn_falloc(nw), *ob = nn_falloc(c.OC);
    for (long i = 0; i < nx; i++) ox[i] = 1;
    /* x is not needed (and may be NULL) without dw */
    sfc_conv2d_backward(&c, ox, NULL, NULL, dy, NULL, w, N, H, W, scratch);
    for (long i = 0; i < nw; i++) ow[i] = 1;
    sfc_conv2d_backward(&c, NULL, ow, NULL, dy, x, w, N, H, W, scratch);
    for (long i = 0; i < c.OC; i++) ob[i] = 1;
    sfc_conv2d_backward(&c, NULL, NULL, ob, dy, NULL, w, N, H, W, scratch);
    T_CHECK_MSG(!memcmp(ox, gdx, sizeof(float) * nx) &&
                    !memcmp(ow, gdw, sizeof(float) * nw) &&
                    !memcmp(ob, gdb, sizeof(float) * c.OC),
                "%s: a NULL gradient changes the others", name);
    /* SFC_CONV2D_DX_SET: dx overwritten (whatever it held) with what
     * accumulating into zeros gives */
    for (long i = 0; i < nx; i++) ox[i] = 0, gdx[i] = (float)i;
    sfc_conv2d_backward(&c, ox, NULL, NULL, dy, NULL, w, N, H, W, scratch);
    sfc_conv2d_backward_ex(&c, gdx, NULL, NULL, dy, NULL, w, N, H, W,
                           scratch, SFC_CONV2D_DX_SET);
    T_CHECK_MSG(!memcmp(ox, gdx, sizeof(float) * nx),
                "%s: dx set differs from dx accumulated into zeros", name);
    check_epilogue(r, &c, name, y, x, w, bias ? b : NULL, N, H, W, scratch);
    free(x), free(w), free(b), free(dy), free(y), free(yn), free(scratch);
    free(ddx), free(ddw), free(ddb), free(rdx), free(rdw), free(rdb);
    free(gdx), free(gdw), free(gdb), free(ox), free(ow), free(ob);
}

static void check_random_shapes(void)
{
    struct sfc_rng r;
    sfc_rng_seed(&r, 42);
    static const int Ks[] = {1, 1, 2, 3, 3, 5, 7};
    int ncase = 0;
    for (int t = 0; t < 400 && ncase < 150; t++) {
        struct sfc_conv2d c;
        c.K = Ks[sfc_rng_below(&r, SFC_ARRAY_LEN(Ks))];
        c.S = 1 + (int)sfc_rng_below(&r, 3);
        c.D = 1 + (int)sfc_rng_below(&r, 3);
        c.P = (int)sfc_rng_below(&r, 4);
        c.C = 1 + (int)sfc_rng_below(&r, 9);
        c.OC = 1 + (int)sfc_rng_below(&r, 9);
        int N = 1 + (int)sfc_rng_below(&r, 2);
        int H = 1 + (int)sfc_rng_below(&r, 17);
        int W = 1 + (int)sfc_rng_below(&r, 17);
        if (t % 5 == 0) c.K = 1, c.S = 1, c.P = 0; /* the direct path */
        int bias = (int)sfc_rng_below(&r, 2);
        if (H + 2 * c.P < c.D * (c.K - 1) + 1 ||
            W + 2 * c.P < c.D * (c.K - 1) + 1)
            continue;
        ncase++;
        check_shape(&r, c, N, H, W, bias);
    }
    T_CHECK(ncase >= 100);
    fprintf(stderr, "%d random shapes vs the direct convolution\n", ncase);
    /* column matrices large enough to be built in bands of output rows
     * (conv.c TILE_MAX): several bands with a short last one, and bands
     * of a single row */
    check_shape(&r, (struct sfc_conv2d){3, 2, 7, 2, 3, 1}, 1, 300, 290, 1);
    check_shape(&r, (struct sfc_conv2d){200, 2, 3, 1, 1, 1}, 1, 3, 600, 0);
    check_shape(&r, (struct sfc_conv2d){40, 3, 3, 2, 1, 1}, 2, 260, 200, 0);
    /* several images per sgemm (conv.c MIN_COLS), with a short last group,
     * and images of MIN_COLS outputs or more, one at a time */
    check_shape(&r, (struct sfc_conv2d){5, 4, 3, 1, 1, 1}, 5, 15, 20, 1);
    check_shape(&r, (struct sfc_conv2d){6, 5, 1, 1, 0, 1}, 5, 16, 20, 1);
    check_shape(&r, (struct sfc_conv2d){6, 5, 1, 2, 0, 1}, 7, 9, 11, 0);
    check_shape(&r, (struct sfc_conv2d){3, 4, 1, 1, 0, 1}, 2, 32, 33, 1);
    check_shape(&r, (struct sfc_conv2d){3, 4, 3, 1, 1, 1}, 2, 33, 32, 0);
    /* products large enough to be cut into pieces (conv.c psgemm, at
     * least PSGEMM_MIN multiply-adds): 1x1 with six column pieces and a
     * short last one, dw cut along its columns (C >= OC) and along its
     * rows (OC > C); 3x3 bands cut into pieces of output rows, stride 1
     * and 2 */
    check_shape(&r, (struct sfc_conv2d){48, 40, 1, 1, 0, 1}, 1, 40, 41, 1);
    check_shape(&r, (struct sfc_conv2d){24, 72, 1, 1, 0, 1}, 1, 40, 41, 0);
    check_shape(&r, (struct sfc_conv2d){16, 24, 3, 1, 1, 1}, 1, 40, 41, 1);
    check_shape(&r, (struct sfc_conv2d){16, 24, 3, 2, 1, 1}, 1, 80, 81, 0);
    /* strided 1x1 dx written straight from the column matrix (conv.c
     * sub1x1_dx): one and two images, stride 3, and two bands */
    check_shape(&r, (struct sfc_conv2d){20, 24, 1, 2, 0, 1}, 1, 61, 75, 1);
    check_shape(&r, (struct sfc_conv2d){20, 24, 1, 2, 0, 1}, 2, 61, 75, 0);
    check_shape(&r, (struct sfc_conv2d){9, 8, 1, 3, 0, 1}, 1, 70, 47, 0);
    check_shape(&r, (struct sfc_conv2d){4, 600, 1, 2, 0, 1}, 1, 91, 81, 0);
    /* strided rows too long for the phase buffer (conv.c MAXROW): the
     * gather path */
    check_shape(&r, (struct sfc_conv2d){2, 2, 3, 2, 1, 1}, 1, 3, 4200, 1);
    check_shape(&r, (struct sfc_conv2d){2, 2, 3, 3, 2, 2}, 1, 4, 4500, 0);
}

/* The Winograd path (forced) on random 3x3 stride-1 shapes with every
 * padding that fits (the transposed dx of padding P has padding 2 - P),
 * maps of one or two rows or columns, and several images; then tile rows
 * longer than a transform chunk (conv.c WCHUNK), and bands of tile rows
 * (conv.c WINO_TARGET) that end inside an image. */
static void check_wino_shapes(void)
{
    struct sfc_rng r;
    sfc_rng_seed(&r, 44);
    set_algo(SFC_CONV2D_WINOGRAD);
    int ncase = 0;
    for (int t = 0; t < 200 && ncase < 40; t++) {
        struct sfc_conv2d c = {0};
        c.K = 3, c.S = 1, c.D = 1;
        c.P = (int)sfc_rng_below(&r, 4);
        c.C = 1 + (int)sfc_rng_below(&r, 9);
        c.OC = 1 + (int)sfc_rng_below(&r, 9);
        int N = 1 + (int)sfc_rng_below(&r, 3);
        int H = 1 + (int)sfc_rng_below(&r, 12);
        int W = 1 + (int)sfc_rng_below(&r, 12);
        if (H + 2 * c.P < 3 || W + 2 * c.P < 3) continue;
        ncase++;
        check_shape(&r, c, N, H, W, (int)sfc_rng_below(&r, 2));
    }
    T_CHECK(ncase >= 30);
    fprintf(stderr, "%d random shapes by Winograd vs the direct "
                    "convolution\n", ncase);
    check_shape(&r, (struct sfc_conv2d){2, 3, 3, 1, 1, 1}, 1, 5, 300, 1);
    /* C + OC = 256: 512 tiles a band, 57 tile rows of 9; 6 images of 11
     * tile rows: the second band starts inside the sixth image */
    check_shape(&r, (struct sfc_conv2d){250, 6, 3, 1, 1, 1}, 6, 21, 17, 0);
    set_algo(SFC_CONV2D_AUTO);
}

/* Max pooling vs a direct scan of each window in row-major order (the
 * rule PyTorch's CPU kernel uses: a strictly greater value or a NaN
 * replaces the current maximum), on random shapes whose values tie often
 * and hold NaNs and -inf. */
static void check_maxpool_random(void)
{
    struct sfc_rng r;
    sfc_rng_seed(&r, 43);
    int bad = 0;
    for (int t = 0; t < 60; t++) {
        int K = 1 + (int)sfc_rng_below(&r, 4), S = 1 + (int)sfc_rng_below(&r, 3);
        int P = (int)sfc_rng_below(&r, (unsigned)(K / 2 + 1));
        int N = 1 + (int)sfc_rng_below(&r, 2), C = 1 + (int)sfc_rng_below(&r, 3);
        int H = K + (int)sfc_rng_below(&r, 12), W = K + (int)sfc_rng_below(&r, 12);
        if (t == 0) H = 3, W = 1500; /* wider than the row buffers */
        int OH = sfc_maxpool2d_outsize(H, K, S, P);
        int OW = sfc_maxpool2d_outsize(W, K, S, P);
        long nx = (long)N * C * H * W, ny = (long)N * C * OH * OW;
        float *x = nn_falloc(nx), *y = nn_falloc(ny), *yr = nn_falloc(ny);
        int *ix = calloc(ny, sizeof(int)), *ir = calloc(ny, sizeof(int));
        for (long i = 0; i < nx; i++) {
            int u = (int)sfc_rng_below(&r, 20);
            x[i] = u == 0 ? NAN : u == 1 ? -INFINITY : (float)(u % 4);
        }
        sfc_maxpool2d_forward(y, ix, x, N, C, H, W, K, S, P);
        for (long pl = 0; pl < (long)N * C; pl++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    float m = -INFINITY;
                    int mi = -1;
                    for (int kh = 0; kh < K; kh++)
                        for (int kw = 0; kw < K; kw++) {
                            int ih = oh * S - P + kh, iw = ow * S - P + kw;
                            if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                                continue;
                            float v = x[pl * H * W + ih * W + iw];
                            if (mi < 0) mi = ih * W + iw; /* all -inf */
                            if (v > m || isnan(v)) m = v, mi = ih * W + iw;
                        }
                    long o = (pl * OH + oh) * OW + ow;
                    yr[o] = m;
                    ir[o] = mi;
                }
        for (long i = 0; i < ny; i++)
            if (ix[i] != ir[i] ||
                (isnan(y[i]) ? !isnan(yr[i]) : y[i] != yr[i]))
                bad++;
        free(x), free(y), free(yr), free(ix), free(ir);
    }
    T_CHECK_MSG(bad == 0, "max pool: %d outputs differ from the direct scan",
                bad);
}

/* ------------------------------------------------------------------ */
/* Thread-count independence                                          */

struct run_out {
    float *y, *dx, *dw, *db, *bn, *pool, *gap, *wy, *wdx, *wdw;
};

static void run_all(struct run_out *o, int threads)
{
    omp_set_num_threads(threads);
    struct sfc_rng r;
    sfc_rng_seed(&r, 7);
    /* big enough to cross every OpenMP threshold */
    struct sfc_conv2d c = {.C = 32, .OC = 40, .K = 3, .S = 1, .P = 2, .D = 2};
    int N = 2, H = 23, W = 29;
    long nx = (long)N * c.C * H * W, ny = (long)N * c.OC * H * W;
    long nw = (long)c.OC * c.C * 9;
    float *x = nn_frand(&r, nx, 1), *w = nn_frand(&r, nw, 0.1);
    float *b = nn_frand(&r, c.OC, 1), *dy = nn_frand(&r, ny, 1);
    float *scratch = nn_falloc(sfc_conv2d_scratch(&c, H, W));
    o->y = nn_falloc(ny), o->dx = nn_falloc(nx), o->dw = nn_falloc(nw);
    o->db = nn_falloc(c.OC);
    sfc_conv2d_forward(&c, o->y, x, w, b, N, H, W, scratch);
    sfc_conv2d_backward(&c, o->dx, o->dw, o->db, dy, x, w, N, H, W, scratch);
    float *g = nn_frand(&r, c.C, 1), *m = nn_frand(&r, c.C, 1);
    float *v = nn_falloc(c.C);
    for (int i = 0; i < c.C; i++) v[i] = 0.5f + i * 0.01f;
    o->bn = nn_falloc(nx + 2 * c.C);
    sfc_bn_frozen_backward(o->bn, o->bn + nx, o->bn + nx + c.C, x, dy, g, m,
                           v, 1e-5f, N, c.C, H * W);
    int OH = sfc_maxpool2d_outsize(H, 3, 2, 1);
    int OW = sfc_maxpool2d_outsize(W, 3, 2, 1);
    int *idx = calloc((long)N * c.C * OH * OW, sizeof(int));
    o->pool = nn_falloc(nx);
    sfc_maxpool2d_forward(o->y + 0, idx, x, N, c.C, H, W, 3, 2, 1);
    sfc_maxpool2d_backward(o->pool, dy, idx, N, c.C, H, W, OH, OW);
    o->gap = nn_falloc((long)N * c.C);
    sfc_gap_forward(o->gap, x, N, c.C, H * W);
    /* the Winograd path (dilation 1) */
    struct sfc_conv2d cw = {.C = 32, .OC = 40, .K = 3, .S = 1, .P = 1,
                            .D = 1};
    float *sw = nn_falloc(sfc_conv2d_scratch(&cw, H, W));
    set_algo(SFC_CONV2D_WINOGRAD);
    o->wy = nn_falloc(ny), o->wdx = nn_falloc(nx), o->wdw = nn_falloc(nw);
    sfc_conv2d_forward(&cw, o->wy, x, w, b, N, H, W, sw);
    sfc_conv2d_backward(&cw, o->wdx, o->wdw, NULL, dy, x, w, N, H, W, sw);
    set_algo(SFC_CONV2D_AUTO);
    free(sw);
    free(x), free(w), free(b), free(dy), free(scratch), free(g), free(m);
    free(v), free(idx);
    omp_set_num_threads(2);
}

static void check_threads(void)
{
    struct run_out a, b;
    run_all(&a, 1);
    run_all(&b, 2);
    long nx = 2L * 32 * 23 * 29, ny = 2L * 40 * 23 * 29, nw = 40L * 32 * 9;
    T_CHECK(!memcmp(a.y, b.y, sizeof(float) * ny));
    T_CHECK(!memcmp(a.dx, b.dx, sizeof(float) * nx));
    T_CHECK(!memcmp(a.dw, b.dw, sizeof(float) * nw));
    T_CHECK(!memcmp(a.db, b.db, sizeof(float) * 40));
    T_CHECK(!memcmp(a.bn, b.bn, sizeof(float) * (nx + 64)));
    T_CHECK(!memcmp(a.pool, b.pool, sizeof(float) * nx));
    T_CHECK(!memcmp(a.gap, b.gap, sizeof(float) * 64));
    T_CHECK(!memcmp(a.wy, b.wy, sizeof(float) * ny));
    T_CHECK(!memcmp(a.wdx, b.wdx, sizeof(float) * nx));
    T_CHECK(!memcmp(a.wdw, b.wdw, sizeof(float) * nw));
    struct run_out *o[2] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        free(o[i]->y), free(o[i]->dx), free(o[i]->dw), free(o[i]->db);
        free(o[i]->bn), free(o[i]->pool), free(o[i]->gap);
        free(o[i]->wy), free(o[i]->wdx), free(o[i]->wdw);
    }
}

/* BN and GAP reductions over several blocks (layers.c BLOCK) with a
 * ragged tail, against plain double sums. */
static void check_long_reductions(void)
{
    struct sfc_rng r;
    sfc_rng_seed(&r, 11);
    int N = 2, C = 3, HW = 2 * 1024 + 37;
    long n = (long)N * C * HW;
    float *x = nn_frand(&r, n, 2), *dy = nn_frand(&r, n, 1);
    float g[3] = {0.7f, 1.2f, -0.4f}, m[3] = {0.5f, -1.0f, 3.0f};
    float v[3] = {0.8f, 2.0f, 0.3f};
    float dg[3] = {0}, db[3] = {0}, rg[3], rb[3];
    float *gy = nn_falloc(N * C), *ry = nn_falloc(N * C);
    sfc_bn_frozen_backward(NULL, dg, db, dy, x, g, m, v, 1e-5f, N, C, HW);
    sfc_gap_forward(gy, x, N, C, HW);
    for (int ch = 0; ch < C; ch++) {
        double sd = 0, sdx = 0;
        for (int k = 0; k < N; k++)
            for (int i = 0; i < HW; i++) {
                long j = ((long)k * C + ch) * HW + i;
                sd += dy[j];
                sdx += (double)dy[j] * ((double)x[j] - m[ch]);
            }
        rg[ch] = (float)(sdx / sqrt((double)v[ch] + 1e-5));
        rb[ch] = (float)sd;
    }
    for (long pl = 0; pl < N * C; pl++) {
        double s = 0;
        for (int i = 0; i < HW; i++) s += x[pl * HW + i];
        ry[pl] = (float)(s / HW);
    }
    nn_compare("long", "bn dgamma", dg, rg, C, 1e-5, 1e-4);
    nn_compare("long", "bn dbeta", db, rb, C, 1e-5, 1e-4);
    nn_compare("long", "gap y", gy, ry, N * C, 1e-6, 1e-4);
    free(x), free(dy), free(gy), free(ry);
}

/* The checker must be able to fail: a perturbed tensor is caught. */
static void check_checker(void)
{
    float a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 4.01f};
    T_CHECK(!test_close_q("perturbed", b, a, 4, 1e-5, 1e-4, 1));
    T_CHECK(test_max_rel(b, a, 4, 1e-3) > NN_MAX_REL);
}

int main(void)
{
    check_checker();
    check_dir(GOLDEN_DIR);
    check_fresh();
    check_random_shapes();
    check_wino_shapes();
    check_maxpool_random();
    check_threads();
    check_long_reductions();
    fprintf(stderr, "worst relative error seen: %.3g\n", nn_worst_rel);
    return test_summary();
}
