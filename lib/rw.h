/* SPDX-License-Identifier: MIT */
/* rw.h: the random walk of IRN / SFC (sfc-reference.md §7), computed
 * sparsely. On an h x w grid, with the directions of a path index:
 *   A[p,p] = 1; A[p,p+d] = A[p+d,p] = 1 - max over the path of edge;
 *   B = A^beta (element-wise); T[i,j] = B[i,j] / sum_k B[k,j];
 *   out = (x * (1 - edge)) T^steps     (x: K row vectors of length hw).
 * The reference forms T densely (hw x hw) and squares it 8 times; here T
 * is kept as one weight per pixel and offset (self, +d, -d: 2 ndir + 1
 * offsets) and x is multiplied by T `steps` times, which is the same
 * product up to float rounding with O(hw) memory. In float32 (the
 * default) the walk is as far from a float64 one as IRN's float32 dense
 * walk is (tests/test-irn.c); float64 takes twice the time. */
#ifndef SFC_RW_H
#define SFC_RW_H

#include <stddef.h>

#include "pathidx.h"

struct sfc_rw {
    int h, w;
    int noff;       /* 2 * ndir + 1 */
    int wv;         /* w rounded up to the tile width (16) */
    int pad;        /* zero border of the state planes: the path radius */
    int ws;         /* row stride of a state plane: wv + 2 pad */
    long plane;     /* floats or doubles per state plane: (h + 2 pad) ws */
    int *oy, *ox;   /* (noff) source offset i - j of each offset */
    float *wt;      /* (h, noff, wv): T[j + off_o, j] of pixel j = (r, c) at
                     * [r][o][c]; 0 where j + off_o leaves the grid and for
                     * c >= w */
};

/* Build T from an edge map (h, w) in [0, 1]. 0 or -1 (error set). */
int sfc_rw_init(struct sfc_rw *rw, const struct sfc_pathidx *p,
                const float *edge, int h, int w, float beta);
void sfc_rw_release(struct sfc_rw *rw);

/* Bytes of scratch sfc_rw_apply needs for K channels. */
size_t sfc_rw_scratch(const struct sfc_rw *rw, int K, int dbl);

/* x (K, h*w) <- x T^steps, the state in float32 (dbl = 0) or float64
 * (dbl = 1); scratch: sfc_rw_scratch(rw, K, dbl) bytes. */
void sfc_rw_apply(const struct sfc_rw *rw, float *x, int K, int steps,
                  int dbl, void *scratch);

/* The whole propagation of §7: x <- (x * (1 - edge)) T^(2^exp_times),
 * radius/beta as given, state precision as sfc_rw_apply; allocates its own
 * T and scratch. */
int sfc_rw_propagate(float *x, int K, const float *edge, int h, int w,
                     int radius, float beta, int exp_times, int dbl);

#endif
