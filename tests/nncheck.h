/* SPDX-License-Identifier: MIT */
/* nncheck.h: what the layer tests (test-nn.c, test-convdil.c) share:
 * float buffers, random fills, the comparison against an oracle's tensor
 * (test_close plus the max-relative-error bar), the npz case loader
 * of tests/ref/ref_nn.py's layout and the convolution case check (forward,
 * dx, dw, db against PyTorch). Include after test.h. */
#ifndef SFC_TESTS_NNCHECK_H
#define SFC_TESTS_NNCHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "err.h"
#include "nn.h"
#include "npy.h"
#include "rng.h"

/* The bar for every layer against PyTorch. */
#define NN_MAX_REL 1e-4

/* The worst max-relative error nn_compare has seen in this program. */
static double nn_worst_rel;

static inline float *nn_falloc(long n)
{
    float *p = calloc(n > 0 ? n : 1, sizeof(float));
    if (!p) abort();
    return p;
}

static inline float *nn_frand(struct sfc_rng *r, long n, double scale)
{
    float *p = nn_falloc(n);
    for (long i = 0; i < n; i++) p[i] = (float)(sfc_rng_normal(r) * scale);
    return p;
}

/* test_close plus the bar, labelled "<cs>.<tn>": max |got - ref| /
 * max(|ref|, 1e-2 max|ref|) <= NN_MAX_REL. */
static inline void nn_compare(const char *cs, const char *tn,
                              const float *got, const float *ref, long n,
                              double atol, double rtol)
{
    char name[192];
    snprintf(name, sizeof name, "%s.%s", cs, tn);
    double mx = 0;
    for (long i = 0; i < n; i++)
        if (fabs(ref[i]) > mx) mx = fabs(ref[i]);
    test_close(name, got, ref, n, atol * (mx > 1 ? mx : 1), rtol);
    double rel = test_max_rel(got, ref, n, mx > 0 ? 1e-2 * mx : 1e-30);
    if (rel > nn_worst_rel) nn_worst_rel = rel;
    T_CHECK_MSG(rel <= NN_MAX_REL, "%s: max relative error %.3g > %g", name,
                rel, NN_MAX_REL);
}

/* The float32 array called name with exactly n elements, or NULL after a
 * failed check. */
static inline const float *nn_getf(const struct sfc_npz *z, const char *cs,
                                   const char *name, long n)
{
    const struct sfc_tensor *a = sfc_npz_get(z, name);
    int ok = a && a->dtype == SFC_F32 && sfc_tensor_numel(a) == n;
    T_CHECK_MSG(ok, "%s: array '%s' missing or not float32[%ld]", cs, name,
                n);
    return ok ? a->data : NULL;
}

/* DIR/<cs>.npz with an int64 "meta" of nmeta elements; 0, or -1 after a
 * failed check (z released). */
static inline int nn_load(const char *dir, const char *cs, struct sfc_npz *z,
                          const int64_t **meta, int nmeta)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.npz", dir, cs);
    int ok = sfc_npz_read(path, z) == 0;
    T_CHECK_MSG(ok, "%s", sfc_errmsg());
    if (!ok) return -1;
    const struct sfc_tensor *m = sfc_npz_get(z, "meta");
    ok = m && m->dtype == SFC_I64 && sfc_tensor_numel(m) == nmeta;
    T_CHECK_MSG(ok, "%s: bad meta", path);
    if (!ok) {
        sfc_npz_release(z);
        return -1;
    }
    *meta = m->data;
    return 0;
}

/* The convolution of a ref_nn.py conv case (meta N C OC H W K S P D bias)
 * read from an open case file. */
static inline struct sfc_conv2d nn_conv_of(const int64_t *m)
{
    return (struct sfc_conv2d){.C = m[1], .OC = m[2], .K = m[5], .S = m[6],
                               .P = m[7], .D = m[8]};
}

/* Forward, dx, dw (and db) of the conv case in z (meta m) against
 * PyTorch's, labelled tag; z stays open. */
static inline void nn_check_conv(const struct sfc_npz *z, const int64_t *m,
                                 const char *tag)
{
    int N = m[0], H = m[3], W = m[4], bias = m[9];
    struct sfc_conv2d c = nn_conv_of(m);
    int OH = sfc_conv2d_outsize(H, c.K, c.S, c.P, c.D);
    int OW = sfc_conv2d_outsize(W, c.K, c.S, c.P, c.D);
    long nx = (long)N * c.C * H * W, ny = (long)N * c.OC * OH * OW;
    long nw = (long)c.OC * c.C * c.K * c.K;
    const float *x = nn_getf(z, tag, "x", nx), *w = nn_getf(z, tag, "w", nw);
    const float *y = nn_getf(z, tag, "y", ny);
    const float *dout = nn_getf(z, tag, "dout", ny);
    const float *dx = nn_getf(z, tag, "dx", nx);
    const float *dw = nn_getf(z, tag, "dw", nw);
    const float *b = bias ? nn_getf(z, tag, "b", c.OC) : NULL;
    const float *db = bias ? nn_getf(z, tag, "db", c.OC) : NULL;
    if (!(x && w && y && dout && dx && dw && (!bias || (b && db)))) return;
    float *scratch = nn_falloc(sfc_conv2d_scratch(&c, H, W));
    float *gy = nn_falloc(ny), *gdx = nn_falloc(nx), *gdw = nn_falloc(nw);
    float *gdb = nn_falloc(c.OC);
    sfc_conv2d_forward(&c, gy, x, w, b, N, H, W, scratch);
    nn_compare(tag, "y", gy, y, ny, 1e-5, 1e-4);
    sfc_conv2d_backward(&c, gdx, gdw, bias ? gdb : NULL, dout, x, w, N, H, W,
                        scratch);
    nn_compare(tag, "dx", gdx, dx, nx, 1e-5, 1e-4);
    nn_compare(tag, "dw", gdw, dw, nw, 1e-5, 1e-4);
    if (bias) nn_compare(tag, "db", gdb, db, c.OC, 1e-5, 1e-4);
    free(scratch), free(gy), free(gdx), free(gdw), free(gdb);
}

#endif
