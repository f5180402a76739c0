/* SPDX-License-Identifier: MIT */
/* test-grad.c: finite-difference gradient check of the layer kernels,
 * independent of PyTorch (catches a kernel and a reference script that
 * agree on the wrong thing).
 *
 * For L = sum(out * dout), accumulated in double, each analytic gradient
 * from *_backward is compared with the central difference
 * (L(p + h) - L(p - h)) / (p+h - (p-h)) at sampled elements, the divisor
 * being the perturbation actually stored in float. conv, BN and GAP are
 * linear in each input, so a large step is exact up to rounding; ReLU and
 * max pooling are piecewise linear: a small step, and an element is skipped
 * when the step crosses a kink (the sign of a ReLU input flips, or an
 * argmax of the pool changes). Gradients start at 0.5, so the check also
 * proves that backward accumulates. */
#include "nn.h"
#include "rng.h"
#include "test.h"
#include "util.h"

#define NSAMPLE 24
#define G0 0.5f

/* One layer under test: forward writes out from the current inputs. */
struct layer {
    void (*forward)(struct layer *l, float *out);
    int (*kink)(struct layer *l, float *p, long i, float h); /* may be NULL */
    const struct sfc_conv2d *conv;
    float *x, *w, *b, *gamma, *beta, *mean, *var;
    int N, C, H, W, K, S, P;
    float *scratch;
    int *idx;
};

static double loss(struct layer *l, float *out, const float *dout, long nout)
{
    l->forward(l, out);
    double s = 0;
    for (long i = 0; i < nout; i++) s += (double)out[i] * dout[i];
    return s;
}

/* Check grad (analytic, accumulated onto G0) of parameter p (np floats). */
static void fd_check(const char *name, struct layer *l, float *p, long np,
                     const float *grad, const float *dout, long nout,
                     float step, struct sfc_rng *r)
{
    float *out = sfc_xmalloc(sizeof(float) * nout);
    int bad = 0, checked = 0, skipped = 0;
    double worst = 0;
    for (int t = 0; t < NSAMPLE && t < np * 2; t++) {
        long i = t < np ? (np <= NSAMPLE ? t : (long)sfc_rng_below(r, np))
                        : (long)sfc_rng_below(r, np);
        if (l->kink && l->kink(l, p, i, step)) {
            skipped++;
            continue;
        }
        float p0 = p[i];
        float hi = p0 + step, lo = p0 - step;
        p[i] = hi;
        double lp = loss(l, out, dout, nout);
        p[i] = lo;
        double lm = loss(l, out, dout, nout);
        p[i] = p0;
        double fd = (lp - lm) / ((double)hi - lo);
        double an = (double)grad[i] - G0;
        double err = fabs(fd - an);
        double tol = 1e-4 + 1e-4 * fabs(fd);
        if (err / (1 + fabs(fd)) > worst) worst = err / (1 + fabs(fd));
        checked++;
        if (!(err <= tol)) {
            if (bad++ < 5)
                fprintf(stderr, "  %s[%ld]: analytic %.7g, finite diff %.7g\n",
                        name, i, an, fd);
        }
    }
    T_CHECK_MSG(bad == 0, "%s: %d of %d elements off", name, bad, checked);
    T_CHECK_MSG(checked >= NSAMPLE / 2 || checked >= np / 2,
                "%s: only %d elements checked (%d at kinks)", name, checked,
                skipped);
    fprintf(stderr, "%-28s %3d checked, %2d at kinks, worst err %.2g\n", name,
            checked, skipped, worst);
    free(out);
}

static float *frand(struct sfc_rng *r, long n, double scale)
{
    float *p = sfc_xmalloc(sizeof(float) * (n > 0 ? n : 1));
    for (long i = 0; i < n; i++) p[i] = (float)(sfc_rng_normal(r) * scale);
    return p;
}

static float *ffill(long n, float v)
{
    float *p = sfc_xmalloc(sizeof(float) * (n > 0 ? n : 1));
    for (long i = 0; i < n; i++) p[i] = v;
    return p;
}

/* ---------------------------------------------------------------- conv */

static void conv_fwd(struct layer *l, float *out)
{
    sfc_conv2d_forward(l->conv, out, l->x, l->w, l->b, l->N, l->H, l->W,
                       l->scratch);
}

static void check_conv(struct sfc_rng *r, struct sfc_conv2d c, int N, int H,
                       int W, int bias)
{
    int OH = sfc_conv2d_outsize(H, c.K, c.S, c.P, c.D);
    int OW = sfc_conv2d_outsize(W, c.K, c.S, c.P, c.D);
    long nx = (long)N * c.C * H * W, ny = (long)N * c.OC * OH * OW;
    long nw = (long)c.OC * c.C * c.K * c.K;
    struct layer l = {.forward = conv_fwd, .conv = &c, .N = N, .H = H,
                      .W = W};
    l.x = frand(r, nx, 1), l.w = frand(r, nw, 0.5);
    l.b = bias ? frand(r, c.OC, 1) : NULL;
    l.scratch = sfc_xmalloc(sizeof(float) * (sfc_conv2d_scratch(&c, H, W) + 1));
    float *dout = frand(r, ny, 1);
    float *dx = ffill(nx, G0), *dw = ffill(nw, G0), *db = ffill(c.OC, G0);
    sfc_conv2d_backward(&c, dx, dw, bias ? db : NULL, dout, l.x, l.w, N, H, W,
                        l.scratch);
    char name[96];
    snprintf(name, sizeof name, "conv K%d S%d P%d D%d %dx%d", c.K, c.S, c.P,
             c.D, H, W);
    char nm[128];
    snprintf(nm, sizeof nm, "%s dx", name);
    fd_check(nm, &l, l.x, nx, dx, dout, ny, 0.25f, r);
    snprintf(nm, sizeof nm, "%s dw", name);
    fd_check(nm, &l, l.w, nw, dw, dout, ny, 0.25f, r);
    if (bias) {
        snprintf(nm, sizeof nm, "%s db", name);
        fd_check(nm, &l, l.b, c.OC, db, dout, ny, 0.25f, r);
    }
    free(l.x), free(l.w), free(l.b), free(l.scratch), free(dout), free(dx);
    free(dw), free(db);
}

/* ------------------------------------------------------------------ bn */

static void bn_fwd(struct layer *l, float *out)
{
    sfc_bn_frozen_forward(out, l->x, l->gamma, l->beta, l->mean, l->var,
                          1e-5f, l->N, l->C, l->H * l->W);
}

static void check_bn(struct sfc_rng *r)
{
    int N = 2, C = 3, H = 5, W = 4;
    long n = (long)N * C * H * W;
    struct layer l = {.forward = bn_fwd, .N = N, .C = C, .H = H, .W = W};
    l.x = frand(r, n, 1), l.gamma = frand(r, C, 1), l.beta = frand(r, C, 1);
    l.mean = frand(r, C, 1), l.var = frand(r, C, 1);
    for (int i = 0; i < C; i++) l.var[i] = 0.3f + fabsf(l.var[i]);
    float *dout = frand(r, n, 1);
    float *dx = ffill(n, G0), *dg = ffill(C, G0), *db = ffill(C, G0);
    sfc_bn_frozen_backward(dx, dg, db, dout, l.x, l.gamma, l.mean, l.var,
                           1e-5f, N, C, H * W);
    fd_check("bn dx", &l, l.x, n, dx, dout, n, 0.25f, r);
    fd_check("bn dgamma", &l, l.gamma, C, dg, dout, n, 0.25f, r);
    fd_check("bn dbeta", &l, l.beta, C, db, dout, n, 0.25f, r);
    free(l.x), free(l.gamma), free(l.beta), free(l.mean), free(l.var);
    free(dout), free(dx), free(dg), free(db);
}

/* ---------------------------------------------------------------- relu */

static void relu_fwd(struct layer *l, float *out)
{
    sfc_relu_forward(out, l->x, (long)l->N * l->C * l->H * l->W);
}

static int relu_kink(struct layer *l, float *p, long i, float h)
{
    (void)l;
    return fabsf(p[i]) <= 2 * h;
}

static void check_relu(struct sfc_rng *r)
{
    struct layer l = {.forward = relu_fwd, .kink = relu_kink, .N = 1,
                      .C = 2, .H = 5, .W = 7};
    long n = 70;
    l.x = frand(r, n, 1);
    float *dout = frand(r, n, 1), *y = sfc_xmalloc(sizeof(float) * n);
    float *dx = ffill(n, G0);
    sfc_relu_forward(y, l.x, n);
    sfc_relu_backward(dx, dout, y, n);
    fd_check("relu dx", &l, l.x, n, dx, dout, n, 1e-2f, r);
    free(l.x), free(dout), free(y), free(dx);
}

/* ------------------------------------------------------------- maxpool */

static void pool_fwd(struct layer *l, float *out)
{
    sfc_maxpool2d_forward(out, NULL, l->x, l->N, l->C, l->H, l->W, l->K,
                          l->S, l->P);
}

/* 1 if moving p[i] by +-h changes any argmax. */
static int pool_kink(struct layer *l, float *p, long i, float h)
{
    int OH = sfc_maxpool2d_outsize(l->H, l->K, l->S, l->P);
    int OW = sfc_maxpool2d_outsize(l->W, l->K, l->S, l->P);
    long ny = (long)l->N * l->C * OH * OW;
    float *y = sfc_xmalloc(sizeof(float) * ny);
    int *i0 = sfc_xmalloc(sizeof(int) * ny);
    int *i1 = sfc_xmalloc(sizeof(int) * ny);
    float p0 = p[i];
    int changed = 0;
    sfc_maxpool2d_forward(y, i0, l->x, l->N, l->C, l->H, l->W, l->K, l->S,
                          l->P);
    for (int s = -1; s <= 1; s += 2) {
        p[i] = p0 + s * h;
        sfc_maxpool2d_forward(y, i1, l->x, l->N, l->C, l->H, l->W, l->K,
                              l->S, l->P);
        changed |= memcmp(i0, i1, sizeof(int) * ny) != 0;
    }
    p[i] = p0;
    free(y), free(i0), free(i1);
    return changed;
}

static void check_pool(struct sfc_rng *r, int H, int W, int K, int S, int P)
{
    struct layer l = {.forward = pool_fwd, .kink = pool_kink, .N = 2,
                      .C = 2, .H = H, .W = W, .K = K, .S = S, .P = P};
    int OH = sfc_maxpool2d_outsize(H, K, S, P);
    int OW = sfc_maxpool2d_outsize(W, K, S, P);
    long nx = 4L * H * W, ny = 4L * OH * OW;
    l.x = frand(r, nx, 1);
    float *dout = frand(r, ny, 1), *y = sfc_xmalloc(sizeof(float) * ny);
    int *idx = sfc_xmalloc(sizeof(int) * ny);
    float *dx = ffill(nx, G0);
    sfc_maxpool2d_forward(y, idx, l.x, 2, 2, H, W, K, S, P);
    sfc_maxpool2d_backward(dx, dout, idx, 2, 2, H, W, OH, OW);
    char name[64];
    snprintf(name, sizeof name, "maxpool K%d S%d P%d %dx%d dx", K, S, P, H,
             W);
    fd_check(name, &l, l.x, nx, dx, dout, ny, 1e-3f, r);
    free(l.x), free(dout), free(y), free(idx), free(dx);
}

/* ----------------------------------------------------------------- gap */

static void gap_fwd(struct layer *l, float *out)
{
    sfc_gap_forward(out, l->x, l->N, l->C, l->H * l->W);
}

static void check_gap(struct sfc_rng *r)
{
    struct layer l = {.forward = gap_fwd, .N = 2, .C = 3, .H = 5, .W = 3};
    long nx = 90, ny = 6;
    l.x = frand(r, nx, 1);
    float *dout = frand(r, ny, 1), *dx = ffill(nx, G0);
    sfc_gap_backward(dx, dout, 2, 3, 15);
    fd_check("gap dx", &l, l.x, nx, dx, dout, ny, 0.25f, r);
    free(l.x), free(dout), free(dx);
}

int main(void)
{
    struct sfc_rng r;
    sfc_rng_seed(&r, 2024);
    /* every conv the models use, on odd non-square inputs */
    check_conv(&r, (struct sfc_conv2d){3, 4, 7, 2, 3, 1}, 1, 13, 11, 0);
    check_conv(&r, (struct sfc_conv2d){4, 5, 3, 1, 1, 1}, 2, 9, 7, 1);
    check_conv(&r, (struct sfc_conv2d){4, 3, 3, 2, 1, 1}, 1, 9, 8, 0);
    check_conv(&r, (struct sfc_conv2d){3, 4, 3, 1, 2, 2}, 1, 9, 7, 1);
    check_conv(&r, (struct sfc_conv2d){3, 2, 3, 1, 4, 4}, 1, 11, 9, 0);
    check_conv(&r, (struct sfc_conv2d){5, 4, 1, 1, 0, 1}, 2, 7, 5, 1);
    check_conv(&r, (struct sfc_conv2d){5, 4, 1, 2, 0, 1}, 1, 9, 7, 0);
    check_bn(&r);
    check_relu(&r);
    check_pool(&r, 13, 11, 3, 2, 1);
    check_pool(&r, 8, 7, 2, 2, 0);
    check_pool(&r, 6, 5, 3, 1, 1);
    check_gap(&r);
    return test_summary();
}
