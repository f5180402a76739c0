/* SPDX-License-Identifier: MIT */
/* test-convdil.c: dilated 3x3 stride-1 convolutions with padding =
 * dilation by Winograd on polyphase sub-images (lib/conv_dilated.c,
 * dispatched from lib/conv.c), against:
 *  - PyTorch (tests/ref/ref_convdil.py: F.conv2d with dilation 2..5 in
 *    float64): forward, dx, dw, db of the goldens in tests/golden/convdil/
 *    and, with the oracle installed, fresh cases; max relative error
 *    <= 1e-4, both with the new path (sfc_conv2d_set_algo WINOGRAD) and
 *    with im2col (IM2COL);
 *  - the im2col path and the direct convolution (sfc_conv2d_forward_naive
 *    and a direct backward in double) on random shapes: dilations 2..5,
 *    maps smaller than the dilation, several images, dx set and
 *    accumulated, NULL gradients;
 *  - AUTO on a wide layer (>= 128 channels, as DeepLab's) against im2col;
 *  - itself: the fused epilogue equals the forward followed by its steps
 *    bit for bit; the dispatch really takes the new path; 1 and 2 OpenMP
 *    threads give the same bits. */
#include <time.h>
#include <unistd.h>

#include <omp.h>

#include "conv_dilated.h"
#include "err.h"
#include "nn.h"
#include "npy.h"
#include "rng.h"
#include "util.h"
#include "test.h"
#include "nncheck.h"


static const char *const CASES[] = {"dil2_odd", "dil2_even", "dil3",
                                    "dil4",     "dil4_small", "dil5"};

/* ------------------------------------------------------------------ */
/* PyTorch cases                                                      */

static void check_case(const char *dir, const char *cs, int algo)
{
    char tag[160];
    snprintf(tag, sizeof tag, "%s[%s]", cs,
             algo == SFC_CONV2D_IM2COL ? "im2col" : "phases");
    struct sfc_npz z;
    const int64_t *m;
    if (nn_load(dir, cs, &z, &m, 10)) return;
    struct sfc_conv2d c = nn_conv_of(m);
    T_CHECK(sfc_conv2d_dilated_applies(&c));
    sfc_conv2d_set_algo(algo);
    nn_check_conv(&z, m, tag);
    sfc_conv2d_set_algo(SFC_CONV2D_AUTO);
    sfc_npz_release(&z);
}

static void check_dir(const char *dir)
{
    fprintf(stderr, "cases in %s\n", dir);
    for (size_t i = 0; i < SFC_ARRAY_LEN(CASES); i++) {
        check_case(dir, CASES[i], SFC_CONV2D_WINOGRAD);
        check_case(dir, CASES[i], SFC_CONV2D_IM2COL);
    }
}

/* ------------------------------------------------------------------ */
/* Random shapes: the phase path vs im2col vs the direct convolution  */

static void backward_naive(const struct sfc_conv2d *c, double *dx,
                           double *dw, double *db, const float *dy,
                           const float *x, const float *w, int N, int H,
                           int W)
{
    const int D = c->D, P = c->P, C = c->C, OC = c->OC;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++)
            for (int oh = 0; oh < H; oh++)
                for (int ow = 0; ow < W; ow++) {
                    double g = dy[(((size_t)n * OC + o) * H + oh) * W + ow];
                    db[o] += g;
                    for (int ch = 0; ch < C; ch++)
                        for (int kh = 0; kh < 3; kh++) {
                            int ih = oh - P + kh * D;
                            if (ih < 0 || ih >= H) continue;
                            for (int kw = 0; kw < 3; kw++) {
                                int iw = ow - P + kw * D;
                                if (iw < 0 || iw >= W) continue;
                                size_t xi = (((size_t)n * C + ch) * H + ih) *
                                                W + iw;
                                size_t wi = (((size_t)o * C + ch) * 3 + kh) *
                                                3 + kw;
                                dx[xi] += g * w[wi];
                                dw[wi] += g * x[xi];
                            }
                        }
                }
}

static void to_float(float *f, const double *d, long n)
{
    for (long i = 0; i < n; i++) f[i] = (float)d[i];
}

/* Forward, backward (dx set and accumulated, NULL gradients) and the
 * epilogue of one shape with the phase path forced, against im2col and
 * the direct convolution. */
static void check_shape(struct sfc_rng *r, struct sfc_conv2d c, int N, int H,
                        int W, int bias)
{
    char name[96];
    snprintf(name, sizeof name, "C%d OC%d d%d N%d %dx%d", c.C, c.OC, c.D, N,
             H, W);
    long nx = (long)N * c.C * H * W, ny = (long)N * c.OC * H * W;
    long nw = (long)c.OC * c.C * 9;
    float *x = nn_frand(r, nx, 1), *w = nn_frand(r, nw, 1.0 / sqrt(9.0 * c.C));
    float *b = bias ? nn_frand(r, c.OC, 1) : NULL, *dy = nn_frand(r, ny, 1);
    float *scratch = nn_falloc(sfc_conv2d_scratch(&c, H, W));
    float *y = nn_falloc(ny), *yi = nn_falloc(ny), *yn = nn_falloc(ny);
    float *gdx = nn_falloc(nx), *gdw = nn_falloc(nw), *gdb = nn_falloc(c.OC);
    float *idx = nn_falloc(nx), *idw = nn_falloc(nw), *idb = nn_falloc(c.OC);
    float *rdx = nn_falloc(nx), *rdw = nn_falloc(nw), *rdb = nn_falloc(c.OC);
    double *ddx = calloc(nx, sizeof(double)), *ddw = calloc(nw, sizeof(double));
    double *ddb = calloc(c.OC, sizeof(double));
    if (!ddx || !ddw || !ddb) abort();

    sfc_conv2d_forward_naive(&c, yn, x, w, b, N, H, W);
    backward_naive(&c, ddx, ddw, ddb, dy, x, w, N, H, W);
    to_float(rdx, ddx, nx), to_float(rdw, ddw, nw), to_float(rdb, ddb, c.OC);

    sfc_conv2d_set_algo(SFC_CONV2D_IM2COL);
    sfc_conv2d_forward(&c, yi, x, w, b, N, H, W, scratch);
    sfc_conv2d_backward(&c, idx, idw, idb, dy, x, w, N, H, W, scratch);

    sfc_conv2d_set_algo(SFC_CONV2D_WINOGRAD);
    sfc_conv2d_forward(&c, y, x, w, b, N, H, W, scratch);
    /* dx, dw, db accumulate onto a nonzero start */
    for (long i = 0; i < nx; i++) gdx[i] = 1.0f;
    for (long i = 0; i < nw; i++) gdw[i] = 1.0f;
    for (int i = 0; i < c.OC; i++) gdb[i] = 1.0f;
    sfc_conv2d_backward(&c, gdx, gdw, gdb, dy, x, w, N, H, W, scratch);
    for (long i = 0; i < nx; i++) gdx[i] -= 1.0f;
    for (long i = 0; i < nw; i++) gdw[i] -= 1.0f;
    for (int i = 0; i < c.OC; i++) gdb[i] -= 1.0f;

    char t[160];
#define CMP(tn, got, ref, n)                                                 \
    do {                                                                     \
        snprintf(t, sizeof t, "%s %s", name, tn);                            \
        nn_compare(t, "", got, ref, n, 1e-5, 1e-4);                             \
    } while (0)
    CMP("y vs direct", y, yn, ny);
    CMP("y vs im2col", y, yi, ny);
    CMP("dx vs direct", gdx, rdx, nx);
    CMP("dx vs im2col", gdx, idx, nx);
    CMP("dw vs direct", gdw, rdw, nw);
    CMP("dw vs im2col", gdw, idw, nw);
    CMP("db vs direct", gdb, rdb, c.OC);

    /* dx set equals dx accumulated into zeros; each gradient alone */
    float *sx = nn_falloc(nx), *ax = nn_falloc(nx), *aw = nn_falloc(nw);
    for (long i = 0; i < nx; i++) sx[i] = 7.0f;
    sfc_conv2d_backward_ex(&c, sx, NULL, NULL, dy, NULL, w, N, H, W, scratch,
                           SFC_CONV2D_DX_SET);
    sfc_conv2d_backward(&c, ax, NULL, NULL, dy, NULL, w, N, H, W, scratch);
    T_CHECK_MSG(!memcmp(sx, ax, sizeof(float) * nx), "%s: dx set differs",
                name);
    sfc_conv2d_backward(&c, NULL, aw, NULL, dy, x, w, N, H, W, scratch);
    CMP("dw alone", aw, rdw, nw);

    /* the fused epilogue: BN, residual with its own BN, ReLU, pre kept */
    float *sc = nn_frand(r, c.OC, 1), *sh = nn_frand(r, c.OC, 1);
    float *rs = nn_frand(r, c.OC, 1), *rt = nn_frand(r, c.OC, 1);
    float *res = nn_frand(r, ny, 1), *ye = nn_falloc(ny), *pre = nn_falloc(ny);
    for (int variant = 0; variant < 3; variant++) {
        struct sfc_conv2d_epilogue ep = {sc, sh, res, rs, rt, 1, pre};
        if (variant == 1) ep.rscale = ep.rshift = NULL, ep.pre = NULL;
        if (variant == 2) ep.res = NULL, ep.relu = 0, ep.scale = NULL;
        sfc_conv2d_forward_ex(&c, ye, x, w, b, N, H, W, scratch, &ep);
        long bad = 0;
        for (long i = 0; i < ny; i++) {
            int o = (int)(i / ((long)H * W) % c.OC);
            float v = y[i];
            float e = v * (ep.scale ? sc[o] : 1.0f) + sh[o];
            if (ep.res) e += ep.rscale ? res[i] * rs[o] + rt[o] : res[i];
            if (ep.relu) e = e > 0.0f ? e : 0.0f;
            bad += memcmp(&e, &ye[i], sizeof e) != 0;
            if (ep.pre) bad += memcmp(&v, &pre[i], sizeof v) != 0;
        }
        T_CHECK_MSG(bad == 0, "%s: epilogue %d: %ld elements differ", name,
                    variant, bad);
    }
    sfc_conv2d_set_algo(SFC_CONV2D_AUTO);
    free(x), free(w), free(b), free(dy), free(scratch), free(y), free(yi);
    free(yn), free(gdx), free(gdw), free(gdb), free(idx), free(idw);
    free(idb), free(rdx), free(rdw), free(rdb), free(ddx), free(ddw);
    free(ddb), free(sx), free(ax), free(aw), free(sc), free(sh), free(rs);
    free(rt), free(res), free(ye), free(pre);
}

static void check_random_shapes(void)
{
    struct sfc_rng r;
    sfc_rng_seed(&r, 45);
    for (int t = 0; t < 30; t++) {
        struct sfc_conv2d c = {0};
        c.K = 3, c.S = 1;
        c.D = c.P = 2 + (int)sfc_rng_below(&r, 4);
        c.C = 1 + (int)sfc_rng_below(&r, 9);
        c.OC = 1 + (int)sfc_rng_below(&r, 9);
        int N = 1 + (int)sfc_rng_below(&r, 3);
        int H = 1 + (int)sfc_rng_below(&r, 19);
        int W = 1 + (int)sfc_rng_below(&r, 19);
        check_shape(&r, c, N, H, W, (int)sfc_rng_below(&r, 2));
    }
    /* rows longer than a Winograd transform chunk (conv.c WCHUNK) after
     * the phase split, and one image of 16 phases in several bands */
    check_shape(&r, (struct sfc_conv2d){3, 2, 3, 1, 2, 2}, 1, 5, 301, 1);
    check_shape(&r, (struct sfc_conv2d){200, 5, 3, 1, 4, 4}, 1, 41, 37, 0);
}

/* AUTO on a DeepLab-like layer (>= 128 channels, a map large enough for
 * the phase path to pay: conv_dilated.c MIN_PIXELS) against im2col; it
 * must differ from im2col in the last bits (it took the phase path),
 * while on a small map AUTO is im2col bit for bit. */
static void check_auto_wide(void)
{
    struct sfc_rng r;
    sfc_rng_seed(&r, 46);
    struct sfc_conv2d c = {128, 128, 3, 1, 2, 2};
    int N = 1, H = 33, W = 35;
    long nx = (long)N * c.C * H * W, ny = (long)N * c.OC * H * W;
    long nw = (long)c.OC * c.C * 9;
    float *x = nn_frand(&r, nx, 1), *w = nn_frand(&r, nw, 1.0 / sqrt(9.0 * c.C));
    float *dy = nn_frand(&r, ny, 1);
    float *scratch = nn_falloc(sfc_conv2d_scratch(&c, H, W));
    float *y[2], *dx[2], *dw[2];
    for (int k = 0; k < 2; k++) {
        sfc_conv2d_set_algo(k ? SFC_CONV2D_IM2COL : SFC_CONV2D_AUTO);
        y[k] = nn_falloc(ny), dx[k] = nn_falloc(nx), dw[k] = nn_falloc(nw);
        sfc_conv2d_forward(&c, y[k], x, w, NULL, N, H, W, scratch);
        sfc_conv2d_backward(&c, dx[k], dw[k], NULL, dy, x, w, N, H, W,
                            scratch);
    }
    sfc_conv2d_set_algo(SFC_CONV2D_AUTO);
    nn_compare("auto 128ch d2", "y", y[0], y[1], ny, 1e-5, 1e-4);
    nn_compare("auto 128ch d2", "dx", dx[0], dx[1], nx, 1e-5, 1e-4);
    nn_compare("auto 128ch d2", "dw", dw[0], dw[1], nw, 1e-5, 1e-4);
    T_CHECK(sfc_conv2d_dilated_pays(&c, H, W));
    T_CHECK(memcmp(y[0], y[1], sizeof(float) * ny) != 0);
    T_CHECK(memcmp(dx[0], dx[1], sizeof(float) * nx) != 0);
    T_CHECK(memcmp(dw[0], dw[1], sizeof(float) * nw) != 0);
    H = 9, W = 7; /* too small: im2col */
    ny = (long)N * c.OC * H * W;
    T_CHECK(!sfc_conv2d_dilated_pays(&c, H, W));
    for (int k = 0; k < 2; k++) {
        sfc_conv2d_set_algo(k ? SFC_CONV2D_IM2COL : SFC_CONV2D_AUTO);
        sfc_conv2d_forward(&c, y[k], x, w, NULL, N, H, W, scratch);
    }
    sfc_conv2d_set_algo(SFC_CONV2D_AUTO);
    T_CHECK(!memcmp(y[0], y[1], sizeof(float) * ny));
    for (int k = 0; k < 2; k++) free(y[k]), free(dx[k]), free(dw[k]);
    free(x), free(w), free(dy), free(scratch);
}

/* With WINOGRAD forced, conv.h's forward is the phase path bit for bit
 * (the dispatch takes it), and im2col rounds differently (so the bitwise
 * check can fail); the phase path's accumulating forward (y += conv(x),
 * which conv.c uses for a transposed convolution) adds the same bits. */
static void check_dispatch(void)
{
    struct sfc_rng r;
    sfc_rng_seed(&r, 47);
    struct sfc_conv2d c = {6, 5, 3, 1, 3, 3};
    int N = 2, H = 14, W = 9;
    long nx = (long)N * c.C * H * W, ny = (long)N * c.OC * H * W;
    float *x = nn_frand(&r, nx, 1), *w = nn_frand(&r, (long)c.OC * c.C * 9, 0.2);
    float *scratch = nn_falloc(sfc_conv2d_scratch(&c, H, W));
    float *y0 = nn_falloc(ny), *y1 = nn_falloc(ny), *y2 = nn_falloc(ny);
    sfc_conv2d_set_algo(SFC_CONV2D_WINOGRAD);
    sfc_conv2d_dilated_forward(&c, y0, x, w, NULL, N, H, W, scratch, NULL, 0);
    sfc_conv2d_forward(&c, y1, x, w, NULL, N, H, W, scratch);
    sfc_conv2d_set_algo(SFC_CONV2D_IM2COL);
    sfc_conv2d_forward(&c, y2, x, w, NULL, N, H, W, scratch);
    T_CHECK(!memcmp(y0, y1, sizeof(float) * ny));
    T_CHECK(memcmp(y0, y2, sizeof(float) * ny) != 0);
    /* the accumulating forward adds the same bits: y0 + y0 */
    memcpy(y2, y0, sizeof(float) * ny);
    sfc_conv2d_set_algo(SFC_CONV2D_WINOGRAD);
    sfc_conv2d_dilated_forward(&c, y2, x, w, NULL, N, H, W, scratch, NULL, 1);
    sfc_conv2d_set_algo(SFC_CONV2D_AUTO);
    long bad = 0;
    for (long i = 0; i < ny; i++) bad += y2[i] != 2.0f * y0[i];
    T_CHECK_MSG(bad == 0, "accumulating forward: %ld differ", bad);
    free(x), free(w), free(scratch), free(y0), free(y1), free(y2);
}

/* 1 and 2 OpenMP threads (OpenBLAS's count fixed) give the same bits. */
static void run_threads(int threads, float **out, long *n)
{
    omp_set_num_threads(threads);
    struct sfc_rng r;
    sfc_rng_seed(&r, 48);
    /* big enough to cross every OpenMP threshold */
    struct sfc_conv2d c = {24, 40, 3, 1, 2, 2};
    int N = 2, H = 29, W = 23;
    long nx = (long)N * c.C * H * W, ny = (long)N * c.OC * H * W;
    long nw = (long)c.OC * c.C * 9;
    float *x = nn_frand(&r, nx, 1), *w = nn_frand(&r, nw, 0.1);
    float *b = nn_frand(&r, c.OC, 1), *dy = nn_frand(&r, ny, 1);
    float *sc = nn_frand(&r, c.OC, 1), *res = nn_frand(&r, ny, 1);
    float *scratch = nn_falloc(sfc_conv2d_scratch(&c, H, W));
    *n = ny + nx + nw;
    float *o = *out = nn_falloc(*n);
    struct sfc_conv2d_epilogue ep = {sc, b, res, NULL, NULL, 1, NULL};
    sfc_conv2d_set_algo(SFC_CONV2D_WINOGRAD);
    sfc_conv2d_forward_ex(&c, o, x, w, b, N, H, W, scratch, &ep);
    sfc_conv2d_backward(&c, o + ny, o + ny + nx, NULL, dy, x, w, N, H, W,
                        scratch);
    sfc_conv2d_set_algo(SFC_CONV2D_AUTO);
    free(x), free(w), free(b), free(dy), free(sc), free(res), free(scratch);
    omp_set_num_threads(2);
}

static void check_threads(void)
{
    float *a, *b;
    long na, nb;
    run_threads(1, &a, &na);
    run_threads(2, &b, &nb);
    T_CHECK(na == nb && !memcmp(a, b, sizeof(float) * na));
    free(a), free(b);
}

int main(void)
{
    test_with_oracle("ref_convdil.py", "convdil", check_dir);
    check_random_shapes();
    check_auto_wide();
    check_dispatch();
    check_threads();
    return test_summary();
}
