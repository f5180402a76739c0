/* SPDX-License-Identifier: MIT */
/* aspp.c: DeepLab-v2's ASPP head (nb dilated 3x3 convolutions F -> C with
 * bias, summed; Chen et al., TPAMI 2017, and kazuto1011/deeplab-pytorch's
 * _ASPP) as one thin-output operation.
 *
 * The output of tap t = (ky, kx) of branch b at pixel p is W_bt x(p + o),
 * o = ((ky - 1) r_b, (kx - 1) r_b), W_bt the (C, F) slice of the kernel.
 * Taps with the same offset are merged (every branch's centre tap has
 * offset (0, 0): their kernels are summed), taps whose offset leaves the
 * map in a dimension (|o_y| >= h or |o_x| >= w) only ever see padding and
 * are dropped. With S distinct offsets left, W_all (S C, F) stacks their
 * kernels and per image
 *   Z = W_all x                  (one sgemm, S C x hw, inner dimension F)
 *   y(p) = sum_b b_b + sum_s Z_s(p + o_s)   (in-range p + o_s only).
 * Compared with im2col per branch (F 9 x hw floats written and read for an
 * output of C rows) this reads x once for all taps and branches.
 * Backward: dZ_s(q) = dy(q - o_s) (0 where q - o_s leaves the map),
 *   dx = W_all^T dZ,  dW_all = sum_n dZ x^T,  db_b = sum dy,
 * and dW_all is scattered back to the taps (a merged row to each of its
 * taps).
 * Threads: OpenBLAS inside the sgemms; OpenMP over output channels for
 * the packing, the shifted sums and the bias gradient, each element
 * summed in a fixed order by one thread (independent of the OpenMP thread
 * count). No BLAS call inside an OpenMP region. */
#include <string.h>

#include <cblas.h>

#include "aspp.h"
#include "err.h"
#include "util.h"

/* Parallelise an OpenMP loop only when there is enough work to pay. */
#define PAR_MIN_WORK 32768L

struct slice {
    int oy, ox;                 /* offset of the source pixel */
    int n;                      /* taps merged into this slice */
    int b[SFC_ASPP_MAXBR], t[SFC_ASPP_MAXBR]; /* branch, tap (ky 3 + kx) */
};

/* The distinct in-range offsets of a's taps for an h x w map, the merged
 * centre first; returns their count. */
static int slices(const struct sfc_aspp *a, int h, int w, struct slice *s)
{
    SFC_ASSERT(a->nb >= 1 && a->nb <= SFC_ASPP_MAXBR);
    int S = 1;
    s[0].oy = s[0].ox = 0;
    s[0].n = a->nb;
    for (int b = 0; b < a->nb; b++) {
        s[0].b[b] = b;
        s[0].t[b] = 4;
    }
    for (int b = 0; b < a->nb; b++) {
        int r = a->rates[b];
        SFC_ASSERT(r >= 1);
        for (int t = 0; t < 9; t++) {
            int oy = (t / 3 - 1) * r, ox = (t % 3 - 1) * r;
            if (t == 4 || oy >= h || -oy >= h || ox >= w || -ox >= w)
                continue;
            int k = 0;
            while (k < S && (s[k].oy != oy || s[k].ox != ox)) k++;
            if (k == S) { /* a new offset (rates may repeat) */
                s[S].oy = oy;
                s[S].ox = ox;
                s[S].n = 0;
                S++;
            }
            s[k].b[s[k].n] = b;
            s[k].t[s[k].n] = t;
            s[k].n++;
        }
    }
    return S;
}

size_t sfc_aspp_scratch(const struct sfc_aspp *a, int h, int w)
{
    struct slice s[1 + 8 * SFC_ASPP_MAXBR];
    size_t sc = (size_t)slices(a, h, w, s) * a->C;
    /* W_all, Z (or dZ), dW_all */
    return sc * (2 * (size_t)a->F + (size_t)h * w);
}

/* W_all (S C, F): row s C + c = the sum of the slice's taps' kernels */
static void pack(const struct sfc_aspp *a, float *wall,
                 const struct slice *s, int S, const float *const *w)
{
    int C = a->C, F = a->F;
#pragma omp parallel for schedule(static) \
    if ((long)S * C * F > PAR_MIN_WORK)
    for (int c = 0; c < C; c++)
        for (int k = 0; k < S; k++) {
            float *row = wall + ((size_t)k * C + c) * F;
            for (int j = 0; j < s[k].n; j++) {
                const float *src = w[s[k].b[j]] + (size_t)c * F * 9 +
                                   s[k].t[j];
                if (j == 0)
                    for (int f = 0; f < F; f++) row[f] = src[(size_t)f * 9];
                else
                    for (int f = 0; f < F; f++) row[f] += src[(size_t)f * 9];
            }
        }
}

/* the range [lo, hi) of output coordinates p with 0 <= p + o < n */
static void valid(int n, int o, int *lo, int *hi)
{
    *lo = o < 0 ? -o : 0;
    *hi = o > 0 ? n - o : n;
}

void sfc_aspp_forward(const struct sfc_aspp *a, float *y, const float *x,
                      const float *const *w, const float *const *b, int N,
                      int h, int wd, float *scratch)
{
    struct slice s[1 + 8 * SFC_ASPP_MAXBR];
    int S = slices(a, h, wd, s), C = a->C, F = a->F;
    long hw = (long)h * wd;
    float *wall = scratch, *z = scratch + (size_t)S * C * F;
    pack(a, wall, s, S, w);
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * F * hw;
        float *yn = y + (size_t)n * C * hw;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, S * C,
                    (int)hw, F, 1.0f, wall, F, xn, (int)hw, 0.0f, z,
                    (int)hw);
#pragma omp parallel for schedule(static) if ((long)S * C * hw > PAR_MIN_WORK)
        for (int c = 0; c < C; c++) {
            float bias = 0;
            if (b)
                for (int k = 0; k < a->nb; k++) bias += b[k][c];
            float *yc = yn + (size_t)c * hw;
            for (long i = 0; i < hw; i++) yc[i] = bias;
            for (int k = 0; k < S; k++) {
                const float *zc = z + ((size_t)k * C + c) * hw;
                int y0, y1, x0, x1;
                valid(h, s[k].oy, &y0, &y1);
                valid(wd, s[k].ox, &x0, &x1);
                long off = (long)s[k].oy * wd + s[k].ox;
                for (int yy = y0; yy < y1; yy++) {
                    float *dst = yc + (long)yy * wd;
                    const float *src = zc + (long)yy * wd + off;
                    for (int xx = x0; xx < x1; xx++) dst[xx] += src[xx];
                }
            }
        }
    }
}

void sfc_aspp_backward(const struct sfc_aspp *a, float *dx, float *const *dw,
                       float *const *db, const float *dy, const float *x,
                       const float *const *w, int N, int h, int wd,
                       float *scratch, int flags)
{
    struct slice s[1 + 8 * SFC_ASPP_MAXBR];
    int S = slices(a, h, wd, s), C = a->C, F = a->F;
    long hw = (long)h * wd;
    float *wall = scratch, *dz = scratch + (size_t)S * C * F;
    float *dwall = dz + (size_t)S * C * hw;
    if (db) {
#pragma omp parallel for schedule(static) if ((long)N * C * hw > PAR_MIN_WORK)
        for (int c = 0; c < C; c++) {
            double sum = 0;
            for (int n = 0; n < N; n++) {
                const float *d = dy + ((size_t)n * C + c) * hw;
                for (long i = 0; i < hw; i++) sum += d[i];
            }
            for (int k = 0; k < a->nb; k++)
                if (db[k]) db[k][c] += (float)sum;
        }
    }
    if (!dx && !dw) return;
    if (dx) pack(a, wall, s, S, w);
    for (int n = 0; n < N; n++) {
        const float *dyn = dy + (size_t)n * C * hw;
        /* dZ: row s C + c is dy_c shifted by o_s, zero outside */
#pragma omp parallel for schedule(static) if ((long)S * C * hw > PAR_MIN_WORK)
        for (int c = 0; c < C; c++)
            for (int k = 0; k < S; k++) {
                float *dzc = dz + ((size_t)k * C + c) * hw;
                const float *dyc = dyn + (size_t)c * hw;
                memset(dzc, 0, (size_t)hw * sizeof *dzc);
                int y0, y1, x0, x1;
                valid(h, s[k].oy, &y0, &y1);
                valid(wd, s[k].ox, &x0, &x1);
                long off = (long)s[k].oy * wd + s[k].ox;
                for (int yy = y0; yy < y1; yy++)
                    memcpy(dzc + (long)yy * wd + off + x0,
                           dyc + (long)yy * wd + x0,
                           (size_t)(x1 - x0) * sizeof *dzc);
            }
        if (dx)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, F, (int)hw,
                        S * C, 1.0f, wall, F, dz, (int)hw,
                        flags & SFC_ASPP_DX_SET ? 0.0f : 1.0f,
                        dx + (size_t)n * F * hw, (int)hw);
        if (dw)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, S * C, F,
                        (int)hw, 1.0f, dz, (int)hw, x + (size_t)n * F * hw,
                        (int)hw, n ? 1.0f : 0.0f, dwall, F);
    }
    if (!dw || N < 1) return;
    /* scatter dW_all back: each tap's gradient is its slice's row */
#pragma omp parallel for schedule(static) if ((long)S * C * F > PAR_MIN_WORK)
    for (int c = 0; c < C; c++)
        for (int k = 0; k < S; k++) {
            const float *row = dwall + ((size_t)k * C + c) * F;
            for (int j = 0; j < s[k].n; j++) {
                if (!dw[s[k].b[j]]) continue;
                float *dst = dw[s[k].b[j]] + (size_t)c * F * 9 + s[k].t[j];
                for (int f = 0; f < F; f++) dst[(size_t)f * 9] += row[f];
            }
        }
}
