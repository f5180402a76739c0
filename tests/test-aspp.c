/* SPDX-License-Identifier: MIT */
/* test-aspp.c: lib/aspp.c (the ASPP head as one stacked-tap product)
 * against PyTorch (tests/ref/ref_aspp.py: the sum of F.conv2d per branch
 * and autograd, float64): y, dx, every dw_b and db_b, on odd map sizes,
 * rates larger than the map (taps wholly in the padding), a repeated rate
 * and a 1x1 map; the accumulate and overwrite modes of dx and the
 * accumulation of dw and db. Independently of PyTorch: the same against
 * lib/conv.c's im2col convolution per branch, summed, on a wider map, and
 * the scratch size from sfc_aspp_scratch is enough (a guard zone after
 * it stays untouched). */
#include "aspp.h"
#include "conv.h"
#include "err.h"
#include "rng.h"
#include "safetensors.h"
#include "test.h"
#include "util.h"

#define TOL 1e-4 /* relative to the tensor's max |ref| */
#define GUARD 64
#define GUARD_VAL 12345.0f

static double rel_err(const float *got, const float *ref, size_t n,
                      const float *base)
{
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double r = (double)ref[i] + (base ? base[i] : 0);
        double e = fabs((double)got[i] - r);
        if (e > d || isnan(e)) d = isnan(e) ? INFINITY : e;
        if (fabs(ref[i]) > m) m = fabs(ref[i]);
    }
    return m > 0 ? d / m : d;
}

static float *scratch_new(const struct sfc_aspp *a, int h, int w, size_t *n)
{
    *n = sfc_aspp_scratch(a, h, w);
    float *s = sfc_xmalloc((*n + GUARD) * sizeof(float));
    for (size_t i = 0; i < *n + GUARD; i++) s[i] = GUARD_VAL;
    return s;
}

static int guard_ok(const float *s, size_t n)
{
    for (size_t i = n; i < n + GUARD; i++)
        if (s[i] != GUARD_VAL) return 0;
    return 1;
}

static const float *get(const struct sfc_safetensors *st, const char *fmt,
                        int i, size_t *n)
{
    char name[32];
    snprintf(name, sizeof name, fmt, i);
    const struct sfc_tensor *t = sfc_safetensors_get(st, name);
    T_CHECK_MSG(t != NULL, "tensor %s", name);
    if (!t) exit(test_summary());
    if (n) *n = (size_t)sfc_tensor_numel(t);
    return sfc_tensor_f(t);
}

static void check_file(const char *dir, const char *tag)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, tag);
    struct sfc_safetensors st;
    if (!T_CHECK(sfc_safetensors_read(path, &st) == 0)) {
        fprintf(stderr, "  %s\n", sfc_errmsg());
        return;
    }
    struct sfc_aspp a = {0};
    const char *rs = sfc_safetensors_meta(&st, "rates");
    T_CHECK(rs != NULL);
    while (rs && *rs && a.nb < SFC_ASPP_MAXBR) {
        char *end;
        a.rates[a.nb++] = (int)strtol(rs, &end, 10);
        rs = *end == ',' ? end + 1 : end;
    }
    const struct sfc_tensor *xt = sfc_safetensors_get(&st, "x");
    const struct sfc_tensor *wt = sfc_safetensors_get(&st, "w.0");
    int N = (int)xt->shape[0], h = (int)xt->shape[2], w = (int)xt->shape[3];
    a.F = (int)xt->shape[1];
    a.C = (int)wt->shape[0];
    const float *x = sfc_tensor_f(xt);
    const float *wv[SFC_ASPP_MAXBR], *bv[SFC_ASPP_MAXBR];
    for (int b = 0; b < a.nb; b++) {
        wv[b] = get(&st, "w.%d", b, NULL);
        bv[b] = get(&st, "b.%d", b, NULL);
    }
    size_t ny, nx, ns;
    const float *yref = get(&st, "y", 0, &ny);
    const float *dxref = get(&st, "dx", 0, &nx);
    const float *dy = get(&st, "dy", 0, NULL);
    float *scratch = scratch_new(&a, h, w, &ns);
    float *y = sfc_xmalloc(ny * sizeof(float));
    float *dx = sfc_xmalloc(nx * sizeof(float));
    float *base = sfc_xmalloc(nx * sizeof(float));
    size_t nw = (size_t)a.C * a.F * 9;
    float *dw[SFC_ASPP_MAXBR], *db[SFC_ASPP_MAXBR];
    for (int b = 0; b < a.nb; b++) {
        dw[b] = sfc_xmalloc(nw * sizeof(float));
        db[b] = sfc_xmalloc((size_t)a.C * sizeof(float));
        for (size_t i = 0; i < nw; i++) dw[b][i] = (float)(i % 7) - 3;
        for (int c = 0; c < a.C; c++) db[b][c] = (float)c;
    }
    for (size_t i = 0; i < ny; i++) y[i] = NAN;
    sfc_aspp_forward(&a, y, x, wv, bv, N, h, w, scratch);
    double e = rel_err(y, yref, ny, NULL);
    T_CHECK_MSG(e <= TOL, "%s y: rel err %g", tag, e);
    double worst = e;
    /* dx overwritten (over NaN), dw and db accumulated */
    for (size_t i = 0; i < nx; i++) dx[i] = NAN;
    sfc_aspp_backward(&a, dx, dw, db, dy, x, wv, N, h, w, scratch,
                      SFC_ASPP_DX_SET);
    e = rel_err(dx, dxref, nx, NULL);
    T_CHECK_MSG(e <= TOL, "%s dx (set): rel err %g", tag, e);
    worst = fmax(worst, e);
    float *wbase = sfc_xmalloc(nw * sizeof(float));
    float *bbase = sfc_xmalloc((size_t)a.C * sizeof(float));
    for (size_t i = 0; i < nw; i++) wbase[i] = (float)(i % 7) - 3;
    for (int c = 0; c < a.C; c++) bbase[c] = (float)c;
    for (int b = 0; b < a.nb; b++) {
        e = rel_err(dw[b], get(&st, "dw.%d", b, NULL), nw, wbase);
        T_CHECK_MSG(e <= TOL, "%s dw.%d: rel err %g", tag, b, e);
        worst = fmax(worst, e);
        e = rel_err(db[b], get(&st, "db.%d", b, NULL), (size_t)a.C, bbase);
        T_CHECK_MSG(e <= TOL, "%s db.%d: rel err %g", tag, b, e);
        worst = fmax(worst, e);
    }
    /* dx accumulated; dw and db skipped */
    for (size_t i = 0; i < nx; i++) dx[i] = base[i] = (float)(i % 5) - 2;
    sfc_aspp_backward(&a, dx, NULL, NULL, dy, x, wv, N, h, w, scratch, 0);
    e = rel_err(dx, dxref, nx, base);
    T_CHECK_MSG(e <= TOL, "%s dx (add): rel err %g", tag, e);
    T_CHECK_MSG(guard_ok(scratch, ns), "%s: scratch overrun", tag);
    fprintf(stderr, "%s/%s: rel err %.3g\n", dir, tag, worst);
    for (int b = 0; b < a.nb; b++) {
        free(dw[b]);
        free(db[b]);
    }
    free(wbase);
    free(bbase);
    free(scratch);
    free(y);
    free(dx);
    free(base);
    sfc_safetensors_release(&st);
}

static void check_dir(const char *dir)
{
    static const char *const tags[] = {"odd", "deeplab", "repeat", "one"};
    for (size_t i = 0; i < sizeof tags / sizeof *tags; i++)
        check_file(dir, tags[i]);
}

/* against lib/conv.c's im2col convolution per branch, summed */
static void check_conv(int N, int F, int C, int h, int w)
{
    struct sfc_aspp a = {F, C, 4, {6, 12, 18, 24}};
    struct sfc_rng rng;
    sfc_rng_seed(&rng, 7);
    size_t nx = (size_t)N * F * h * w, ny = (size_t)N * C * h * w;
    size_t nw = (size_t)C * F * 9;
    float *x = sfc_xmalloc(nx * sizeof(float));
    float *dy = sfc_xmalloc(ny * sizeof(float));
    float *wv[4], *bv[4], *dw[4], *dwr[4], dbr[64], *db[4];
    for (size_t i = 0; i < nx; i++) x[i] = (float)sfc_rng_normal(&rng);
    for (size_t i = 0; i < ny; i++) dy[i] = (float)sfc_rng_normal(&rng);
    for (int b = 0; b < 4; b++) {
        wv[b] = sfc_xmalloc(nw * sizeof(float));
        bv[b] = sfc_xmalloc((size_t)C * sizeof(float));
        dw[b] = sfc_xcalloc(nw, sizeof(float));
        dwr[b] = sfc_xcalloc(nw, sizeof(float));
        db[b] = sfc_xcalloc((size_t)C, sizeof(float));
        for (size_t i = 0; i < nw; i++)
            wv[b][i] = (float)(0.1 * sfc_rng_normal(&rng));
        for (int c = 0; c < C; c++) bv[b][c] = (float)sfc_rng_normal(&rng);
    }
    float *y = sfc_xmalloc(ny * sizeof(float));
    float *yr = sfc_xcalloc(ny, sizeof(float));
    float *t = sfc_xmalloc(ny * sizeof(float));
    float *dx = sfc_xmalloc(nx * sizeof(float));
    float *dxr = sfc_xcalloc(nx, sizeof(float));
    size_t ns, nc = 0;
    float *scratch = scratch_new(&a, h, w, &ns);
    for (int b = 0; b < 4; b++) {
        struct sfc_conv2d c = {F, C, 3, 1, a.rates[b], a.rates[b]};
        nc = SFC_MAX(nc, sfc_conv2d_scratch(&c, h, w));
    }
    float *cs = sfc_xmalloc((nc + 1) * sizeof(float));
    memset(dbr, 0, sizeof dbr);
    for (int b = 0; b < 4; b++) {
        struct sfc_conv2d c = {F, C, 3, 1, a.rates[b], a.rates[b]};
        sfc_conv2d_forward(&c, t, x, wv[b], bv[b], N, h, w, cs);
        for (size_t i = 0; i < ny; i++) yr[i] += t[i];
        sfc_conv2d_backward(&c, dxr, dwr[b], dbr, dy, x, wv[b], N, h, w, cs);
    }
    sfc_aspp_forward(&a, y, x, (const float *const *)wv,
                     (const float *const *)bv, N, h, w, scratch);
    sfc_aspp_backward(&a, dx, dw, db, dy, x, (const float *const *)wv, N, h,
                      w, scratch, SFC_ASPP_DX_SET);
    double e = rel_err(y, yr, ny, NULL);
    T_CHECK_MSG(e <= TOL, "conv y: rel err %g", e);
    double worst = e;
    e = rel_err(dx, dxr, nx, NULL);
    T_CHECK_MSG(e <= TOL, "conv dx: rel err %g", e);
    worst = fmax(worst, e);
    for (int b = 0; b < 4; b++) {
        e = rel_err(dw[b], dwr[b], nw, NULL);
        T_CHECK_MSG(e <= TOL, "conv dw.%d: rel err %g", b, e);
        worst = fmax(worst, e);
        /* lib/conv.c accumulated all four biases' gradients into dbr */
        for (int c = 0; c < C; c++) dbr[32 + c] = db[b][c] * 4;
        e = rel_err(dbr + 32, dbr, (size_t)C, NULL);
        T_CHECK_MSG(e <= TOL, "conv db.%d: rel err %g", b, e);
    }
    T_CHECK(guard_ok(scratch, ns));
    fprintf(stderr, "conv %dx%dx%dx%d: rel err %.3g\n", N, F, h, w, worst);
    for (int b = 0; b < 4; b++) {
        free(wv[b]);
        free(bv[b]);
        free(dw[b]);
        free(dwr[b]);
        free(db[b]);
    }
    free(x);
    free(dy);
    free(y);
    free(yr);
    free(t);
    free(dx);
    free(dxr);
    free(scratch);
    free(cs);
}

int main(void)
{
    test_with_oracle("ref_aspp.py", "aspp", check_dir);
    check_conv(2, 24, 7, 29, 37);
    check_conv(3, 9, 2, 19, 8);
    return test_summary();
}
