/* SPDX-License-Identifier: MIT */
/* pathidx.c: IRN's path index, affinity labels and edge-to-affinity
 * (sfc-reference.md §6.1-§6.3; mirrors irn/misc/indexing.py PathIndex,
 * edge_to_affinity and the label extraction of
 * voc12/dataloader.GetAffinityLabelFromIndices, re-expressed per pixel). */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "pathidx.h"
#include "util.h"

struct dir_tmp {
    int dy, dx, n, order;
    int *py, *px;
};

static int cmp_len(const void *a, const void *b)
{
    const struct dir_tmp *x = a, *y = b;
    if (x->n != y->n) return x->n < y->n ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int iabs(int v)
{
    return v < 0 ? -v : v;
}

int sfc_pathidx_init(struct sfc_pathidx *p, int radius)
{
    memset(p, 0, sizeof *p);
    if (radius < 2 || radius > 64)
        return sfc_error(NULL, "path index radius %d out of range [2, 64]",
                         radius);
    int r = radius, maxdir = 4 * r * r;
    struct dir_tmp *d = sfc_xcalloc((size_t)maxdir, sizeof *d);
    int nd = 0;
    for (int x = 1; x < r; x++) d[nd].dy = 0, d[nd].dx = x, nd++;
    for (int y = 1; y < r; y++)
        for (int x = -r + 1; x < r; x++)
            if (x * x + y * y < r * r) d[nd].dy = y, d[nd].dx = x, nd++;
    int total = 0;
    for (int k = 0; k < nd; k++) {
        int dy = d[k].dy, dx = d[k].dx, len2 = dy * dy + dx * dx;
        int y0 = SFC_MIN(0, dy), y1 = SFC_MAX(0, dy);
        int x0 = SFC_MIN(0, dx), x1 = SFC_MAX(0, dx);
        int cap = (y1 - y0 + 1) * (x1 - x0 + 1);
        d[k].py = sfc_xmalloc(sizeof(int) * (size_t)cap);
        d[k].px = sfc_xmalloc(sizeof(int) * (size_t)cap);
        d[k].order = k;
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++) {
                int c = dy * x - dx * y; /* distance^2 * len2 = c^2 */
                if (c * c < len2) {
                    d[k].py[d[k].n] = y;
                    d[k].px[d[k].n] = x;
                    d[k].n++;
                }
            }
        /* stable insertion sort by decreasing |y| + |x| */
        for (int i = 1; i < d[k].n; i++) {
            int ty = d[k].py[i], tx = d[k].px[i], key = iabs(ty) + iabs(tx);
            int j = i - 1;
            while (j >= 0 && iabs(d[k].py[j]) + iabs(d[k].px[j]) < key) {
                d[k].py[j + 1] = d[k].py[j];
                d[k].px[j + 1] = d[k].px[j];
                j--;
            }
            d[k].py[j + 1] = ty;
            d[k].px[j + 1] = tx;
        }
        total += d[k].n;
    }
    qsort(d, (size_t)nd, sizeof *d, cmp_len);
    p->radius = r;
    p->rf = r - 1;
    p->ndir = nd;
    p->dy = sfc_xmalloc(sizeof(int) * (size_t)nd);
    p->dx = sfc_xmalloc(sizeof(int) * (size_t)nd);
    p->start = sfc_xmalloc(sizeof(int) * (size_t)(nd + 1));
    p->py = sfc_xmalloc(sizeof(int) * (size_t)total);
    p->px = sfc_xmalloc(sizeof(int) * (size_t)total);
    int at = 0;
    for (int k = 0; k < nd; k++) {
        p->dy[k] = d[k].dy;
        p->dx[k] = d[k].dx;
        p->start[k] = at;
        memcpy(p->py + at, d[k].py, sizeof(int) * (size_t)d[k].n);
        memcpy(p->px + at, d[k].px, sizeof(int) * (size_t)d[k].n);
        at += d[k].n;
        free(d[k].py);
        free(d[k].px);
    }
    p->start[nd] = at;
    free(d);
    return 0;
}

void sfc_pathidx_release(struct sfc_pathidx *p)
{
    if (!p) return;
    free(p->dy);
    free(p->dx);
    free(p->start);
    free(p->py);
    free(p->px);
    memset(p, 0, sizeof *p);
}

long sfc_pathidx_nsrc(const struct sfc_pathidx *p, int H, int W)
{
    long h = H - p->rf, w = W - 2 * p->rf;
    return h > 0 && w > 0 ? h * w : 0;
}

void sfc_affinity_labels(const struct sfc_pathidx *p, const unsigned char *L,
                         int H, int W, int nclass, float *bg_pos,
                         float *fg_pos, float *neg)
{
    int ch = H - p->rf, cw = W - 2 * p->rf;
    long nsrc = sfc_pathidx_nsrc(p, H, W);
    #pragma omp parallel for schedule(static)
    for (int k = 0; k < p->ndir; k++) {
        long o = (long)k * nsrc;
        for (int y = 0; y < ch; y++)
            for (int x = 0; x < cw; x++, o++) {
                int from = L[(long)y * W + x + p->rf];
                int to = L[(long)(y + p->dy[k]) * W + x + p->rf + p->dx[k]];
                int valid = from < nclass && to < nclass;
                bg_pos[o] = (float)(valid && from == to && from == 0);
                fg_pos[o] = (float)(valid && from == to && from > 0);
                neg[o] = (float)(valid && from != to);
            }
    }
}

void sfc_edge_affinity_forward(const struct sfc_pathidx *p, float *aff,
                               int *arg, const float *edge, int H, int W)
{
    int ch = H - p->rf, cw = W - 2 * p->rf;
    long nsrc = sfc_pathidx_nsrc(p, H, W);
    #pragma omp parallel for schedule(static)
    for (int k = 0; k < p->ndir; k++) {
        long o = (long)k * nsrc;
        for (int y = 0; y < ch; y++)
            for (int x = 0; x < cw; x++, o++) {
                long base = (long)y * W + x + p->rf, best_i = -1;
                float best = 0;
                for (int q = p->start[k]; q < p->start[k + 1]; q++) {
                    long i = base + (long)p->py[q] * W + p->px[q];
                    if (best_i < 0 || edge[i] > best) best = edge[i], best_i = i;
                }
                aff[o] = 1.0f - best;
                if (arg) arg[o] = (int)best_i;
            }
    }
}

void sfc_edge_affinity_backward(const struct sfc_pathidx *p, float *dedge,
                                const float *daff, const int *arg, int H,
                                int W)
{
    /* serial scatter: many (dir, src) pairs share an argmax pixel, and a
     * fixed order keeps the sum independent of the thread count */
    long n = (long)p->ndir * sfc_pathidx_nsrc(p, H, W);
    for (long o = 0; o < n; o++) dedge[arg[o]] -= daff[o];
}
