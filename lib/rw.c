/* SPDX-License-Identifier: MIT */
/* rw.c: sparse random walk (sfc-reference.md §7; the dense original is
 * irn/misc/indexing.py propagate_to_edge). See rw.h for the formula.
 *
 * Per step: y[k][j] = sum_o wt[o][j] * x[k][j + off_o], summed in a fixed
 * offset order (self first), so results do not depend on the thread
 * count. The state planes carry a zero border of the path radius, and the
 * weights are 0 wherever j + off_o leaves the grid, so every pixel sums
 * all offsets with no bounds test (the extra terms are exact zeros). A
 * tile of 16 columns of up to 4 channels keeps its sums in registers over
 * all offsets; the weights of a row (all offsets, contiguous) are read
 * once per tile for every channel of the group. Threads take groups of
 * channels through all the steps (channels are independent walks), so no
 * barrier separates the steps. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "rw.h"
#include "util.h"

/* On x86-64 the walk is compiled twice, for AVX2 and for the baseline,
 * and the loader picks one per machine (target_clones): the same
 * operations in the same order (no fused multiply-add), wider registers. */
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define HOT __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef HOT
#define HOT
#endif

#if defined(__GNUC__)
#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")
#define VF 8 /* floats per vector */
#define VD 4 /* doubles per vector */
typedef float vf __attribute__((vector_size(32), aligned(4), may_alias));
typedef float vf4 __attribute__((vector_size(16), aligned(4), may_alias));
typedef double vd __attribute__((vector_size(32), aligned(8), may_alias));
#define WIDEN(p) __builtin_convertvector(*(const vf4 *)(p), vd)
/* 32-byte vectors are passed between inlined functions only */
#pragma GCC diagnostic ignored "-Wpsabi"
#else
#define INLINE static inline
#define UNROLL
#define VF 1
#define VD 1
typedef float vf;
typedef double vd;
#define WIDEN(p) ((double)*(p))
#endif

#define TW 32   /* the column tiles divide this */
#define GMAX 4  /* channels per group */
#define NVMAX 8 /* vectors per channel in a tile */

/* 1 - max of edge over direction k's path from pixel (y, x). */
static float path_aff(const struct sfc_pathidx *p, int k, const float *edge,
                      int w, int y, int x)
{
    float m = 0;
    for (int q = p->start[k]; q < p->start[k + 1]; q++) {
        float e = edge[(long)(y + p->py[q]) * w + x + p->px[q]];
        if (q == p->start[k] || e > m) m = e;
    }
    return 1.0f - m;
}

int sfc_rw_init(struct sfc_rw *rw, const struct sfc_pathidx *p,
                const float *edge, int h, int w, float beta)
{
    memset(rw, 0, sizeof *rw);
    if (h < 1 || w < 1) return sfc_error(NULL, "random walk: empty grid");
    int nd = p->ndir, noff = 2 * nd + 1;
    int wv = (w + TW - 1) / TW * TW, pad = 0;
    for (int k = 0; k < nd; k++)
        pad = SFC_MAX(pad, SFC_MAX(abs(p->dy[k]), abs(p->dx[k])));
    rw->h = h;
    rw->w = w;
    rw->noff = noff;
    rw->wv = wv;
    rw->pad = pad;
    rw->ws = wv + 2 * pad;
    rw->plane = (long)(h + 2 * pad) * rw->ws;
    rw->oy = sfc_xmalloc(sizeof(int) * (size_t)noff);
    rw->ox = sfc_xmalloc(sizeof(int) * (size_t)noff);
    rw->wt = sfc_xcalloc((size_t)h * noff * wv, sizeof(float));
    /* plane 0: self; plane 1+k: i = j + d_k; plane 1+nd+k: i = j - d_k */
    rw->oy[0] = rw->ox[0] = 0;
    for (int k = 0; k < nd; k++) {
        rw->oy[1 + k] = p->dy[k];
        rw->ox[1 + k] = p->dx[k];
        rw->oy[1 + nd + k] = -p->dy[k];
        rw->ox[1 + nd + k] = -p->dx[k];
    }
    long rs = (long)noff * wv; /* floats per row of weights */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) rw->wt[y * rs + x] = 1.0f; /* A^beta */
    /* B for each forward pair (j, j + d): both offsets get the same value */
    #pragma omp parallel for schedule(static)
    for (int k = 0; k < nd; k++) {
        int dy = p->dy[k], dx = p->dx[k];
        for (int y = 0; y + dy < h; y++)
            for (int x = SFC_MAX(0, -dx); x < w && x + dx < w; x++) {
                float b = powf(path_aff(p, k, edge, w, y, x), beta);
                /* at j: B[j+d, j]; at j+d: B[j, j+d] */
                rw->wt[y * rs + (long)(1 + k) * wv + x] = b;
                rw->wt[(y + dy) * rs + (long)(1 + nd + k) * wv + x + dx] = b;
            }
    }
    /* column sums over i for each j (in offset order), then normalise */
    #pragma omp parallel for schedule(static)
    for (int y = 0; y < h; y++) {
        float *r = rw->wt + y * rs;
        for (int x = 0; x < w; x++) {
            double s = 0;
            for (int o = 0; o < noff; o++) s += r[(long)o * wv + x];
            float c = (float)s;
            for (int o = 0; o < noff; o++) r[(long)o * wv + x] /= c;
        }
    }
    return 0;
}

void sfc_rw_release(struct sfc_rw *rw)
{
    if (!rw) return;
    free(rw->oy);
    free(rw->ox);
    free(rw->wt);
    memset(rw, 0, sizeof *rw);
}

/* One tile: NV vectors of columns from `at` of row r for G channels
 * (planes P apart), x -> y. d[o]: flat offset of offset o in the padded plane. */
INLINE void tile_f(float *restrict y, const float *restrict x, long P,
                   const float *restrict wr, int wv, const long *d, int noff,
                   long at, int G, int NV)
{
    vf acc[GMAX][NVMAX];
    UNROLL
    for (int k = 0; k < G; k++)
        UNROLL
        for (int v = 0; v < NV; v++)
            acc[k][v] = *(const vf *)(wr + v * VF) *
                        *(const vf *)(x + k * P + at + v * VF);
    for (int o = 1; o < noff; o++) {
        const float *wo = wr + (long)o * wv;
        vf wt[NVMAX];
        UNROLL
        for (int v = 0; v < NV; v++) wt[v] = *(const vf *)(wo + v * VF);
        UNROLL
        for (int k = 0; k < G; k++)
            UNROLL
            for (int v = 0; v < NV; v++)
                acc[k][v] += wt[v] * *(const vf *)(x + k * P + at + d[o] +
                                                   v * VF);
    }
    UNROLL
    for (int k = 0; k < G; k++)
        UNROLL
        for (int v = 0; v < NV; v++)
            *(vf *)(y + k * P + at + v * VF) = acc[k][v];
}

INLINE void tile_d(double *restrict y, const double *restrict x, long P,
                   const float *restrict wr, int wv, const long *d, int noff,
                   long at, int G, int NV)
{
    vd acc[GMAX][NVMAX];
    UNROLL
    for (int k = 0; k < G; k++)
        UNROLL
        for (int v = 0; v < NV; v++)
            acc[k][v] = WIDEN(wr + v * VD) *
                        *(const vd *)(x + k * P + at + v * VD);
    for (int o = 1; o < noff; o++) {
        const float *wo = wr + (long)o * wv;
        vd wt[NVMAX];
        UNROLL
        for (int v = 0; v < NV; v++) wt[v] = WIDEN(wo + v * VD);
        UNROLL
        for (int k = 0; k < G; k++)
            UNROLL
            for (int v = 0; v < NV; v++)
                acc[k][v] += wt[v] * *(const vd *)(x + k * P + at + d[o] +
                                                   v * VD);
    }
    UNROLL
    for (int k = 0; k < G; k++)
        UNROLL
        for (int v = 0; v < NV; v++)
            *(vd *)(y + k * P + at + v * VD) = acc[k][v];
}

/* One step y = x T for a group of G channels (padded planes): tiles of
 * NV vectors per channel, about 8 sums in registers whatever G (enough
 * independent additions to hide their latency). */
#define NVOF(n, L) ((n) < TW / (L) ? (n) : TW / (L))
#define ROW(TILE, G, NV, L)                                                  \
    for (int c = 0; c < rw->wv; c += (NV) * (L))                             \
        TILE(y, x, P, wr + c, rw->wv, d, rw->noff, at0 + c, G, NV)
#define STEP_BODY(TILE, L)                                                   \
    for (int r = 0; r < rw->h; r++) {                                        \
        const float *wr = rw->wt + (long)r * rw->noff * rw->wv;              \
        long at0 = (long)(r + rw->pad) * rw->ws + rw->pad;                   \
        switch (G) {                                                         \
        case 1: ROW(TILE, 1, NVOF(8, L), L); break;                          \
        case 2: ROW(TILE, 2, NVOF(4, L), L); break;                          \
        case 3: ROW(TILE, 3, NVOF(2, L), L); break;                          \
        default: ROW(TILE, 4, NVOF(2, L), L);                                \
        }                                                                    \
    }

HOT static void step_f(const struct sfc_rw *rw, float *y, const float *x,
                       int G, const long *d)
{
    long P = rw->plane;
    STEP_BODY(tile_f, VF)
}

HOT static void step_d(const struct sfc_rw *rw, double *y, const double *x,
                       int G, const long *d)
{
    long P = rw->plane;
    STEP_BODY(tile_d, VD)
}

size_t sfc_rw_scratch(const struct sfc_rw *rw, int K, int dbl)
{
    return 2 * (size_t)K * rw->plane * (dbl ? sizeof(double) : sizeof(float));
}

void sfc_rw_apply(const struct sfc_rw *rw, float *x, int K, int steps,
                  int dbl, void *scratch)
{
    int h = rw->h, w = rw->w;
    long hw = (long)h * w, P = rw->plane;
    long *d = sfc_xmalloc(sizeof(long) * (size_t)rw->noff);
    for (int o = 0; o < rw->noff; o++) d[o] = (long)rw->oy[o] * rw->ws + rw->ox[o];
    memset(scratch, 0, sfc_rw_scratch(rw, K, dbl)); /* the zero borders */
    /* channels walk independently: each thread takes a group of channels
     * through all the steps, with no barrier between steps (a barrier per
     * step costs most of the time on a shared machine); small K keeps one
     * channel per group so that 2 threads share evenly */
    int g = K >= 16 ? 4 : K >= 8 ? 2 : 1, ng = (K + g - 1) / g;
    #pragma omp parallel for schedule(dynamic, 1)
    for (int q = 0; q < ng; q++) {
        int k0 = q * g, nk = SFC_MIN(g, K - k0);
        for (int k = 0; k < nk; k++)
            for (int r = 0; r < h; r++) {
                long at = (long)(r + rw->pad) * rw->ws + rw->pad;
                const float *src = x + (k0 + k) * hw + (long)r * w;
                if (dbl) {
                    double *a = (double *)scratch + 2 * k0 * P + k * P + at;
                    for (int c = 0; c < w; c++) a[c] = src[c];
                } else {
                    float *a = (float *)scratch + 2 * k0 * P + k * P + at;
                    memcpy(a, src, sizeof(float) * w);
                }
            }
        void *a, *b;
        if (dbl) {
            a = (double *)scratch + 2 * k0 * P;
            b = (double *)a + nk * P;
        } else {
            a = (float *)scratch + 2 * k0 * P;
            b = (float *)a + nk * P;
        }
        for (int s = 0; s < steps; s++) {
            if (dbl)
                step_d(rw, b, a, nk, d);
            else
                step_f(rw, b, a, nk, d);
            void *t = a;
            a = b;
            b = t;
        }
        for (int k = 0; k < nk; k++)
            for (int r = 0; r < h; r++) {
                long at = (long)(r + rw->pad) * rw->ws + rw->pad;
                float *dst = x + (k0 + k) * hw + (long)r * w;
                if (dbl) {
                    const double *s = (const double *)a + k * P + at;
                    for (int c = 0; c < w; c++) dst[c] = (float)s[c];
                } else {
                    memcpy(dst, (const float *)a + k * P + at,
                           sizeof(float) * w);
                }
            }
    }
    free(d);
}

int sfc_rw_propagate(float *x, int K, const float *edge, int h, int w,
                     int radius, float beta, int exp_times, int dbl)
{
    struct sfc_pathidx p;
    struct sfc_rw rw;
    if (exp_times < 0 || exp_times > 20)
        return sfc_error(NULL, "random walk: exp_times %d out of range",
                         exp_times);
    if (sfc_pathidx_init(&p, radius)) return -1;
    if (sfc_rw_init(&rw, &p, edge, h, w, beta)) {
        sfc_pathidx_release(&p);
        return -1;
    }
    long hw = (long)h * w;
    for (int k = 0; k < K; k++)
        for (long j = 0; j < hw; j++) x[k * hw + j] *= 1.0f - edge[j];
    void *scratch = sfc_xmalloc(sfc_rw_scratch(&rw, K, dbl));
    sfc_rw_apply(&rw, x, K, 1 << exp_times, dbl, scratch);
    free(scratch);
    sfc_rw_release(&rw);
    sfc_pathidx_release(&p);
    return 0;
}
