/* SPDX-License-Identifier: MIT */
/* pathidx.h: IRN's path index (sfc-reference.md §6.2): the forward
 * half-disc of directions within a radius, the grid points on the path of
 * each direction, affinity labels from a label grid (§6.1) and the
 * edge-to-affinity map with its gradient (§6.3).
 *
 * Directions are (dy, dx) with dy = 0, dx = 1..r-1, then dy = 1..r-1 and
 * dx = -(r-1)..(r-1) with dx^2 + dy^2 < r^2. A direction's path is every
 * integer point of the box spanned by (0,0) and (dy,dx) whose distance to
 * the line through them is < 1, both ends included, sorted by decreasing
 * |y| + |x| (stable: box scan order breaks ties), so the destination
 * comes first and the source (0,0) last. Directions are then grouped by
 * path length, ascending (stable within a group): that is the order of
 * every per-direction array here.
 *
 * Source pixels of a H x W grid are rows 0..H-rf-1 and columns rf..W-rf-1
 * (rf = ceil(r) - 1), numbered row-major: nsrc = (H - rf) * (W - 2 rf).
 * The destination of source s in direction d is s + (dy, dx). */
#ifndef SFC_PATHIDX_H
#define SFC_PATHIDX_H

struct sfc_pathidx {
    int radius, rf;  /* radius and radius_floor = ceil(radius) - 1 */
    int ndir;
    int *dy, *dx;    /* (ndir) destination offsets */
    int *start;      /* (ndir + 1) first path point of each direction */
    int *py, *px;    /* path points, destination first, (0,0) last */
};

/* Build the index for an integer radius >= 2. 0 or -1 (error set). */
int sfc_pathidx_init(struct sfc_pathidx *p, int radius);
void sfc_pathidx_release(struct sfc_pathidx *p);

/* Number of source pixels of an H x W grid (0 if the grid is too small). */
long sfc_pathidx_nsrc(const struct sfc_pathidx *p, int H, int W);

/* Affinity labels (§6.1) from a label grid L (H, W): with from = L[src],
 * to = L[dst] and valid = from < nclass && to < nclass:
 * bg_pos = valid && from == to == 0; fg_pos = valid && from == to > 0;
 * neg = valid && from != to. Each output is (ndir, nsrc), 1.0 or 0.0. */
void sfc_affinity_labels(const struct sfc_pathidx *p, const unsigned char *L,
                         int H, int W, int nclass, float *bg_pos,
                         float *fg_pos, float *neg);

/* aff (ndir, nsrc) = 1 - max over the path of edge (H, W) at src + point.
 * arg (ndir, nsrc), may be NULL, records the flat pixel index of the max
 * (first point in path order wins ties) for the backward. */
void sfc_edge_affinity_forward(const struct sfc_pathidx *p, float *aff,
                               int *arg, const float *edge, int H, int W);
/* dedge (H, W) += -daff at the argmax pixel of every (dir, src). */
void sfc_edge_affinity_backward(const struct sfc_pathidx *p, float *dedge,
                                const float *daff, const int *arg, int H,
                                int W);

#endif
