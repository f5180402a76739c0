/* SPDX-License-Identifier: MIT */
/* rw.c: sparse random walk (sfc-reference.md §7; the dense original is
 * irn/misc/indexing.py propagate_to_edge). See rw.h for the formula.
 * Per step: y[k][j] = sum_o wt[o][j] * x[k][j + off_o], summed in a fixed
 * offset order, so results do not depend on the thread count. Threads
 * take groups of channels through all the steps (channels are independent
 * walks), so no barrier separates the steps. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "rw.h"
#include "util.h"

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
    long hw = (long)h * w;
    int nd = p->ndir, noff = 2 * nd + 1;
    rw->h = h;
    rw->w = w;
    rw->noff = noff;
    rw->oy = sfc_xmalloc(sizeof(int) * (size_t)noff);
    rw->ox = sfc_xmalloc(sizeof(int) * (size_t)noff);
    rw->wt = sfc_xcalloc((size_t)(noff * hw), sizeof(float));
    /* plane 0: self; plane 1+k: i = j + d_k; plane 1+nd+k: i = j - d_k */
    rw->oy[0] = rw->ox[0] = 0;
    for (int k = 0; k < nd; k++) {
        rw->oy[1 + k] = p->dy[k];
        rw->ox[1 + k] = p->dx[k];
        rw->oy[1 + nd + k] = -p->dy[k];
        rw->ox[1 + nd + k] = -p->dx[k];
    }
    float *self = rw->wt;
    for (long j = 0; j < hw; j++) self[j] = 1.0f; /* A[p,p]^beta = 1 */
    /* B for each forward pair (j, j + d): both planes get the same value */
    #pragma omp parallel for schedule(static)
    for (int k = 0; k < nd; k++) {
        float *fw = rw->wt + (long)(1 + k) * hw;      /* at j: B[j+d, j] */
        float *bw = rw->wt + (long)(1 + nd + k) * hw; /* at j+d: B[j, j+d] */
        int dy = p->dy[k], dx = p->dx[k];
        for (int y = 0; y + dy < h; y++)
            for (int x = SFC_MAX(0, -dx); x < w && x + dx < w; x++) {
                float b = powf(path_aff(p, k, edge, w, y, x), beta);
                fw[(long)y * w + x] = b;
                bw[(long)(y + dy) * w + x + dx] = b;
            }
    }
    /* column sums over i for each j, then normalise */
    float *col = sfc_xmalloc(sizeof(float) * (size_t)hw);
    #pragma omp parallel for schedule(static)
    for (long j = 0; j < hw; j++) {
        double s = 0;
        for (int o = 0; o < noff; o++) s += rw->wt[o * hw + j];
        col[j] = (float)s;
    }
    #pragma omp parallel for schedule(static)
    for (int o = 0; o < noff; o++)
        for (long j = 0; j < hw; j++) rw->wt[o * hw + j] /= col[j];
    free(col);
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

/* Rows r of y = x T for all K channels: the weights of a row are read
 * once for every channel. The column loops are independent elements (no
 * reduction), so vectorising them changes no rounding. */
static void step_row(const struct sfc_rw *rw, double *restrict y,
                     const double *restrict x, int K, int r)
{
    int h = rw->h, w = rw->w;
    long hw = (long)h * w;
    const float *restrict w0 = rw->wt + (long)r * w;
    for (int k = 0; k < K; k++) {
        double *restrict yr = y + k * hw + (long)r * w;
        const double *restrict xr = x + k * hw + (long)r * w;
        #pragma omp simd
        for (int c = 0; c < w; c++) yr[c] = w0[c] * xr[c];
    }
    for (int o = 1; o < rw->noff; o++) {
        int oy = rw->oy[o], ox = rw->ox[o];
        if (r + oy < 0 || r + oy >= h) continue;
        int x0 = SFC_MAX(0, -ox), x1 = SFC_MIN(w, w - ox);
        const float *restrict wr = rw->wt + o * hw + (long)r * w;
        for (int k = 0; k < K; k++) {
            double *restrict yr = y + k * hw + (long)r * w;
            const double *restrict xr = x + k * hw + (long)(r + oy) * w + ox;
            #pragma omp simd
            for (int c = x0; c < x1; c++) yr[c] += wr[c] * xr[c];
        }
    }
}

void sfc_rw_apply(const struct sfc_rw *rw, float *x, int K, int steps,
                  double *scratch)
{
    long hw = (long)rw->h * rw->w;
    /* channels walk independently: each thread takes whole channels
     * through all the steps, with no barrier between steps (a barrier per
     * step costs most of the time on a shared machine) */
    /* channels per task: the weights of a row are read once per group;
     * small K keeps one channel per task so that 2 threads share evenly */
    int g = K >= 16 ? 4 : K >= 8 ? 2 : 1, ng = (K + g - 1) / g;
    #pragma omp parallel for schedule(dynamic, 1)
    for (int q = 0; q < ng; q++) {
        int k0 = q * g, nk = SFC_MIN(g, K - k0);
        double *a = scratch + 2 * k0 * hw, *b = a + nk * hw;
        for (long i = 0; i < nk * hw; i++) a[i] = x[k0 * hw + i];
        for (int s = 0; s < steps; s++) {
            for (int r = 0; r < rw->h; r++) step_row(rw, b, a, nk, r);
            double *t = a;
            a = b;
            b = t;
        }
        for (long i = 0; i < nk * hw; i++) x[k0 * hw + i] = (float)a[i];
    }
}

int sfc_rw_propagate(float *x, int K, const float *edge, int h, int w,
                     int radius, float beta, int exp_times)
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
    double *scratch = sfc_xmalloc(sizeof(double) * 2 * (size_t)(K * hw));
    sfc_rw_apply(&rw, x, K, 1 << exp_times, scratch);
    free(scratch);
    sfc_rw_release(&rw);
    sfc_pathidx_release(&p);
    return 0;
}
