/* SPDX-License-Identifier: MIT */
/* pseudo.h: pseudo labels from CAMs and an IRN edge map by the random walk
 * (sfc-reference.md §7).
 *
 * SFC (two passes, default): S = resize(M_W + w_p M_P, h x w)^power;
 *   R_A = RW(S[1:]), R_B = RW(S^power) on all K channels (one walk: both
 *   use the same transition matrix); each is upsampled x4 (bilinear,
 *   align_corners False, scale factor 4), cropped to H x W and divided by
 *   its global max; label = keys[argmax([bg + R_B[0], R_A[c] + R_B[c]])].
 * Single pass (option, IRN-like): label = keys[argmax([bg, R_A[c]])] on
 * the same S; IRN's own code walks its stride-4 max-normalised CAM with no
 * power, which sfc's CAM files do not hold. */
#ifndef SFC_PSEUDO_H
#define SFC_PSEUDO_H

#include <stdint.h>

struct sfc_pseudo_params {
    float w_p;      /* weight of M_P in S: 0.3 */
    float power;    /* exponent: 1.3 */
    float bg;       /* background score offset: 0.25 */
    float beta;     /* affinity exponent: 10 */
    int exp_times;  /* 2^exp_times walk steps: 8 */
    int radius;     /* path radius: 5 */
    int two_pass;   /* 1 = SFC, 0 = IRN */
    int walk_double; /* 1 = the walk's state in float64, 0 = float32 */
};

void sfc_pseudo_params_default(struct sfc_pseudo_params *p);

/* label (H, W) from cam_w, cam_p (K, H, W) with keys (K) (keys[0] = 0)
 * and edge (h, w), h = ceil(H / 4), w = ceil(W / 4) (IRN's stride-4
 * grid). cam_p may be NULL (taken as 0). 0, or -1 with the error set. */
int sfc_pseudo_label(uint8_t *label, const float *cam_w, const float *cam_p,
                     const int64_t *keys, int K, int H, int W,
                     const float *edge, int h, int w,
                     const struct sfc_pseudo_params *p);

#endif
