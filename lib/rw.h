/* SPDX-License-Identifier: MIT */
/* rw.h: the random walk of IRN / SFC (sfc-reference.md §7), computed
 * sparsely. On an h x w grid, with the directions of a path index:
 *   A[p,p] = 1; A[p,p+d] = A[p+d,p] = 1 - max over the path of edge;
 *   B = A^beta (element-wise); T[i,j] = B[i,j] / sum_k B[k,j];
 *   out = (x * (1 - edge)) T^steps     (x: K row vectors of length hw).
 * The reference forms T densely (hw x hw) and squares it 8 times; here T
 * is kept as one weight plane per offset (self, +d, -d: 2 ndir + 1 planes
 * of hw floats) and x is multiplied by T `steps` times, which is the same
 * product up to float rounding with O(hw) memory. */
#ifndef SFC_RW_H
#define SFC_RW_H

#include "pathidx.h"

struct sfc_rw {
    int h, w;
    int noff;       /* 2 * ndir + 1 */
    int *oy, *ox;   /* (noff) source offset i - j of each plane */
    float *wt;      /* (noff, h*w): wt[o][j] = T[j + off_o, j], 0 outside */
};

/* Build T from an edge map (h, w) in [0, 1]. 0 or -1 (error set). */
int sfc_rw_init(struct sfc_rw *rw, const struct sfc_pathidx *p,
                const float *edge, int h, int w, float beta);
void sfc_rw_release(struct sfc_rw *rw);

/* x (K, h*w) <- x T^steps; the walk runs in double precision (the
 * sensitivity of a slowly mixing walk to rounding grows with the number of
 * steps); scratch holds 2*K*h*w doubles. */
void sfc_rw_apply(const struct sfc_rw *rw, float *x, int K, int steps,
                  double *scratch);

/* The whole propagation of §7: x <- (x * (1 - edge)) T^(2^exp_times),
 * radius/beta as given; allocates its own T and scratch. */
int sfc_rw_propagate(float *x, int K, const float *edge, int h, int w,
                     int radius, float beta, int exp_times);

#endif
