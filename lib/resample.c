/* SPDX-License-Identifier: MIT */
/* resample.c: PIL-compatible uint8 resizing (see resample.h). The
 * coefficient computation follows the documented behaviour of Pillow's
 * Resample.c (filter support scaled by max(scale, 1), centre at
 * (x + 0.5) * scale, weights normalised to sum 1, then turned into fixed
 * point with 22 fractional bits; accumulation starts at half a unit);
 * tests/ref/ref_resample.py checks bit-equality against Pillow itself. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "resample.h"
#include "util.h"

#define PRECISION_BITS (32 - 8 - 2)
#define BICUBIC_SUPPORT 2.0
#define BICUBIC_A (-0.5)

int sfc_rescale_size(int size, double scale)
{
    int r = (int)nearbyint(size * scale); /* default mode: half to even */
    return r < 1 ? 1 : r;
}

static double bicubic(double x)
{
    const double a = BICUBIC_A;
    if (x < 0) x = -x;
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
}

/* Per output index: first source index, tap count, and ksize fixed-point
 * weights. Returns ksize. */
static int coeffs(int in, int out, int **bounds_out, int32_t **k_out)
{
    double scale = (double)in / out;
    double fscale = scale < 1 ? 1 : scale;
    double support = BICUBIC_SUPPORT * fscale;
    int ksize = (int)ceil(support) * 2 + 1;
    int *bounds = sfc_xmalloc(sizeof(int) * 2 * (size_t)out);
    int32_t *kk = sfc_xcalloc((size_t)out * ksize, sizeof(int32_t));
    double *k = sfc_xmalloc(sizeof(double) * (size_t)ksize);
    for (int xx = 0; xx < out; xx++) {
        double center = (xx + 0.5) * scale, ww = 0, ss = 1.0 / fscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in) xmax = in;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double w = bicubic((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (int x = 0; x < xmax; x++) {
            double w = ww != 0 ? k[x] / ww : k[x];
            double f = w * (1 << PRECISION_BITS);
            kk[(size_t)xx * ksize + x] = (int32_t)(w < 0 ? f - 0.5 : f + 0.5);
        }
        bounds[2 * xx] = xmin;
        bounds[2 * xx + 1] = xmax;
    }
    free(k);
    *bounds_out = bounds;
    *k_out = kk;
    return ksize;
}

static uint8_t clip8(int32_t v)
{
    v >>= PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* One pass along an axis: rows of `n` positions with element stride
 * `step` (C for horizontal, W*C for vertical). */
static void pass_h(uint8_t *out, int OW, const uint8_t *in, int H, int W,
                   int C)
{
    int *b;
    int32_t *k;
    int ks = coeffs(W, OW, &b, &k);
    #pragma omp parallel for schedule(static)
    for (int y = 0; y < H; y++)
        for (int xx = 0; xx < OW; xx++) {
            const int32_t *kx = k + (size_t)xx * ks;
            for (int c = 0; c < C; c++) {
                int32_t ss = 1 << (PRECISION_BITS - 1);
                for (int x = 0; x < b[2 * xx + 1]; x++)
                    ss += in[((size_t)y * W + x + b[2 * xx]) * C + c] * kx[x];
                out[((size_t)y * OW + xx) * C + c] = clip8(ss);
            }
        }
    free(b);
    free(k);
}

static void pass_v(uint8_t *out, int OH, const uint8_t *in, int H, int W,
                   int C)
{
    int *b;
    int32_t *k;
    int ks = coeffs(H, OH, &b, &k);
    #pragma omp parallel for schedule(static)
    for (int yy = 0; yy < OH; yy++) {
        const int32_t *ky = k + (size_t)yy * ks;
        for (int x = 0; x < W * C; x++) {
            int32_t ss = 1 << (PRECISION_BITS - 1);
            for (int y = 0; y < b[2 * yy + 1]; y++)
                ss += in[(size_t)(y + b[2 * yy]) * W * C + x] * ky[y];
            out[(size_t)yy * W * C + x] = clip8(ss);
        }
    }
    free(b);
    free(k);
}

void sfc_resize_bicubic_u8(uint8_t *out, int OH, int OW, const uint8_t *in,
                           int H, int W, int C)
{
    int need_h = OW != W, need_v = OH != H;
    if (!need_h && !need_v) {
        memcpy(out, in, (size_t)H * W * C);
        return;
    }
    if (need_h && need_v) {
        uint8_t *tmp = sfc_xmalloc((size_t)H * OW * C);
        pass_h(tmp, OW, in, H, W, C);
        pass_v(out, OH, tmp, H, OW, C);
        free(tmp);
    } else if (need_h) {
        pass_h(out, OW, in, H, W, C);
    } else {
        pass_v(out, OH, in, H, W, C);
    }
}

void sfc_resize_nearest_u8(uint8_t *out, int OH, int OW, const uint8_t *in,
                           int H, int W, int C)
{
    /* Pillow (ImagingScaleAffine) steps the source coordinate by adding
     * the double in/out once per pixel from in/out * 0.5 and truncates;
     * the rounding of that running sum decides exact-half cases (e.g. 2 ->
     * 7 pixels), so it is reproduced step by step, not as a product. */
    double ay = (double)H / OH, ax = (double)W / OW, yo = ay * 0.5;
    for (int y = 0; y < OH; y++, yo += ay) {
        int sy = (int)yo;
        if (sy > H - 1) sy = H - 1;
        double xo = ax * 0.5;
        for (int x = 0; x < OW; x++, xo += ax) {
            int sx = (int)xo;
            if (sx > W - 1) sx = W - 1;
            memcpy(out + ((size_t)y * OW + x) * C,
                   in + ((size_t)sy * W + sx) * C, (size_t)C);
        }
    }
}
