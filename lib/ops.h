/* SPDX-License-Identifier: MIT */
/* ops.h: the non-ResNet layers SFC and IRN need (GroupNorm, resizing,
 * normalisation, similarity, the PCM products, losses). Conventions in
 * nn.h: outputs first, then inputs, then dimensions, then scratch; kernels
 * never allocate; forward overwrites its output; backward ACCUMULATES into
 * every gradient it is given and skips a NULL one. HW = H * W.
 *
 * Each op matches the PyTorch 1.13 expression named with it (CPU, float32)
 * to within float rounding; tests/ref/ref_ops.py is the oracle.
 *
 * How SFC's Net.forward composes them (sfc-reference.md §2.2, §2.5; h x w
 * the stride-16 grid, HW = h * w, valid (N, 21, HW)):
 *   c  = maxnorm(relu(cam))  (cam = classifier(x4), N x 20)
 *   b  = 1 - chanmax(c); ncam = [b, c] * valid           (N, 21, HW)
 *   hie = concat_i bilinear(l2norm(side_i), h x w, align_corners 0)
 *   f  = l2norm(f9(concat(bilinear(img, h x w, align_corners 1), x4)))
 *   A  = pcm_affinity(f); M_W = pcm_apply(pcm_apply(ncam, A), A)
 *        (backward: both apply calls accumulate into the same dA)
 *   seeds = proto_seeds(M_W, valid, 0.3); P = proto(seeds, hie)
 *   M_P = relu(cosine(hie, P))
 *   L_cls = mlsm(score)  (twice, dloss 0.5 each)
 *   L_PDW = 1.6 * l1(M_W, maxnorm(M_P), w = [1, DC], c0 0, nc 21)
 *   L_WDW = 0.8 * l1(bilinear(M_W, x0.5, align_corners 1) * y21,
 *                    M_W(half) * y21, w = [-, DC], c0 1, nc 20) */
#ifndef SFC_OPS_H
#define SFC_OPS_H

#include <stddef.h>
#include <stdint.h>

/* ---- GroupNorm (nn.GroupNorm(G, C, eps, affine=True), training-mode
 * statistics per sample and group; biased variance). ---------------------
 * x, y (N, C, HW); gamma, beta (C) (NULL: 1 and 0); C % G == 0.
 * mean, rstd (N, G) receive the statistics for backward (either may be
 * NULL in inference). y may equal x (inference only: backward needs x). */
void sfc_groupnorm_forward(float *y, float *mean, float *rstd, const float *x,
                           const float *gamma, const float *beta, float eps,
                           int N, int C, int G, int HW);
/* dx += dL/dx, dgamma += sum dy * xhat, dbeta += sum dy; any may be NULL.
 * x is the forward input, mean and rstd what the forward stored. */
void sfc_groupnorm_backward(float *dx, float *dgamma, float *dbeta,
                            const float *dy, const float *x,
                            const float *mean, const float *rstd,
                            const float *gamma, int N, int C, int G, int HW);

/* ---- Resizing (F.interpolate, NCHW, no antialias) -----------------------
 * x (N, C, H, W) -> y (N, C, OH, OW); the N*C planes are independent.
 *
 * Bilinear: align_corners = 1: src = dst * (in - 1) / (out - 1) (0 when
 * out == 1); align_corners = 0: src = max(0, (dst + 0.5) * r - 0.5) with
 * r = in / out, or r = 1 / scale when scale > 0 ("scale_factor given
 * explicitly", recompute_scale_factor unset; scale_h / scale_w are the
 * factors passed to F.interpolate, 0 = size given). As in PyTorch, the
 * scale is ignored when align_corners = 1, and a dimension with out == in
 * is copied. The caller computes OH = floor(H * scale_h) itself
 * (sfc_resize_outsize). */
void sfc_resize_bilinear_forward(float *y, const float *x, int N, int C,
                                 int H, int W, int OH, int OW,
                                 int align_corners, double scale_h,
                                 double scale_w);
/* dx (N, C, H, W) += adjoint of the forward applied to dy (N, C, OH, OW). */
void sfc_resize_bilinear_backward(float *dx, const float *dy, int N, int C,
                                  int H, int W, int OH, int OW,
                                  int align_corners, double scale_h,
                                  double scale_w);
/* Nearest (PyTorch's legacy mode='nearest'): src = min(floor(dst * r),
 * in - 1), r = in / out or 1 / scale when scale > 0 (computed in float as
 * PyTorch does); out == in copies, out == 2 * in takes dst >> 1. */
void sfc_resize_nearest_forward(float *y, const float *x, int N, int C,
                                int H, int W, int OH, int OW, double scale_h,
                                double scale_w);
void sfc_resize_nearest_backward(float *dx, const float *dy, int N, int C,
                                 int H, int W, int OH, int OW, double scale_h,
                                 double scale_w);
/* Output size F.interpolate computes from a scale factor: floor(in * s). */
int sfc_resize_outsize(int in, double scale);

/* ---- Channel-wise L2 normalisation (SFC: x / (torch.norm(x, dim=1) +
 * eps), eps = 1e-5) -------------------------------------------------------
 * x, y (N, C, HW); each pixel's C-vector is divided by its norm + eps.
 * norm (N, HW) receives ||x|| for backward (may be NULL). y != x. */
void sfc_l2norm_forward(float *y, float *norm, const float *x, float eps,
                        int N, int C, int HW);
/* dx += dL/dx. A pixel whose norm is 0 gets dy / eps (PyTorch's norm
 * gradient at 0 is 0). */
void sfc_l2norm_backward(float *dx, const float *dy, const float *x,
                         const float *norm, float eps, int N, int C, int HW);

/* ---- Cosine similarity of pixels and per-image prototypes
 * (torch.cosine_similarity(x.unsqueeze(1), p[..., None, None], dim=2,
 * eps=1e-8)). Torch 1.13 clamps EACH norm at eps: cos = sum (x / cx) *
 * (p / cp), cx = max(|x|, eps), so a zero prototype gives 0. Its backward
 * treats the clamped norm as the norm: with zh = z / cz, dz = (g - (g .
 * zh) zh) / cz (no mask when clamped; a zero prototype gets dy * xh / eps).
 * x (N, D, HW) pixel features, p (N, K, D) prototypes, y (N, K, HW). */
void sfc_cosine_forward(float *y, const float *x, const float *p, float eps,
                        int N, int K, int D, int HW);
/* dx (N, D, HW) += dL/dx, dp (N, K, D) += dL/dp; either may be NULL.
 * Scratch: sfc_cosine_scratch() floats. */
void sfc_cosine_backward(float *dx, float *dp, const float *dy,
                         const float *x, const float *p, float eps, int N,
                         int K, int D, int HW, float *scratch);
size_t sfc_cosine_scratch(int N, int K, int D, int HW);

/* ---- PCM (SFC/SEAM Net.PCM) ---------------------------------------------
 * Per image n, f (C, HW) (already L2-normalised by the caller):
 *   A = ReLU(f^T f) (HW, HW);  s_j = sum_i A[i, j] + eps;  A[:, j] /= s_j.
 * f (N, C, HW), a (N, HW, HW), colsum (N, HW) receives s for backward.
 * eps = 1e-5 in SFC. One cblas_sgemm per image. */
void sfc_pcm_affinity_forward(float *a, float *colsum, const float *f,
                              float eps, int N, int C, int HW);
/* df (N, C, HW) += dL/df given da (N, HW, HW) and the forward's a and
 * colsum. Scratch: sfc_pcm_affinity_scratch(HW) floats (HW * HW). */
void sfc_pcm_affinity_backward(float *df, const float *da, const float *f,
                               const float *a, const float *colsum, int N,
                               int C, int HW, float *scratch);
size_t sfc_pcm_affinity_scratch(int HW);
/* y = cam * A per image: cam (N, K, HW), a (N, HW, HW), y (N, K, HW).
 * M_W = (cam A) A is two calls. y != cam. */
void sfc_pcm_apply_forward(float *y, const float *cam, const float *a, int N,
                           int K, int HW);
/* dcam += dy A^T, da += cam^T dy (per image); either may be NULL. */
void sfc_pcm_apply_backward(float *dcam, float *da, const float *dy,
                            const float *cam, const float *a, int N, int K,
                            int HW);

/* ---- Prototypes (SFC Net.prototype) -------------------------------------
 * Seeds: s = cam with channel 0 multiplied by bg_scale (0.3); the first
 * argmax over K per pixel (torch.argmax) is one-hot encoded and multiplied
 * by valid (N, K, HW) (NULL = 1). seeds, cam (N, K, HW). No gradient. */
void sfc_proto_seeds(float *seeds, const float *cam, const float *valid,
                     float bg_scale, int N, int K, int HW);
/* p (N, K, D) = seeds (N, K, HW) * hie (N, D, HW)^T / HW (the
 * adaptive_avg_pool2d of seed * feature). One sgemm per image. */
void sfc_proto_forward(float *p, const float *seeds, const float *hie, int N,
                       int K, int D, int HW);
/* dhie (N, D, HW) += dp^T seeds / HW (seeds get no gradient). */
void sfc_proto_backward(float *dhie, const float *dp, const float *seeds,
                        int N, int K, int D, int HW);

/* ---- Max helpers ----------------------------------------------------------
 * Per-channel max-normalisation y = x / (max_HW x + eps) (SFC: c /
 * (F.adaptive_max_pool2d(c, 1) + 1e-5), eps = 1e-5). x, y (N, C, HW); idx
 * (N, C) receives the first argmax (adaptive_max_pool2d's tie rule), max
 * (N, C) the max; either may be NULL. */
void sfc_maxnorm_forward(float *y, float *max, int *idx, const float *x,
                         float eps, int N, int C, int HW);
/* dx += dy / (max + eps), and the max's gradient -sum(dy * x) /
 * (max + eps)^2 goes to x[idx] only. */
void sfc_maxnorm_backward(float *dx, const float *dy, const float *x,
                          const float *max, const int *idx, float eps, int N,
                          int C, int HW);
/* Max over channels (torch.max(x, dim=1)): y (N, HW), idx (N, HW) the
 * first argmax (may be NULL); x (N, C, HW). Backward: dx[idx] += dy. */
void sfc_chanmax_forward(float *y, int *idx, const float *x, int N, int C,
                         int HW);
void sfc_chanmax_backward(float *dx, const float *dy, const int *idx, int N,
                          int C, int HW);

/* ---- Losses (return the loss; backward takes dloss, the upstream scalar
 * gradient, e.g. 0.5 for L_cls's half) -----------------------------------
 * F.multilabel_soft_margin_loss(x, t): mean over N and C of
 * -[t log sigmoid(x) + (1 - t) log sigmoid(-x)]. x, t, dx (N, C). */
float sfc_mlsm_loss_forward(const float *x, const float *t, int N, int C);
/* dx += dloss * (sigmoid(x) - t) / (N * C). */
void sfc_mlsm_loss_backward(float *dx, float dloss, const float *x,
                            const float *t, int N, int C);
/* Weighted L1 over channels c0 .. c0+nc-1 of a, b (N, C, HW):
 * mean over (n, c in range, p) of w[c] |a - b|; w (C) or NULL (= 1).
 * L_PDW: c0 = 0, nc = 21; L_WDW: c0 = 1, nc = 20 (mean over N*20*HW). */
float sfc_l1_loss_forward(const float *a, const float *b, const float *w,
                          int N, int C, int HW, int c0, int nc);
/* da += dloss * w sign(a - b) / count, db -= the same (sign(0) = 0);
 * either may be NULL. Channels outside the range get nothing. */
void sfc_l1_loss_backward(float *da, float *db, float dloss, const float *a,
                          const float *b, const float *w, int N, int C,
                          int HW, int c0, int nc);

/* ---- Softmax cross-entropy over channels (DeepLab's loss:
 * F.cross_entropy(x, t, ignore_index=255, reduction='sum')) --------------
 * x (N, C, HW) logits, t (N, HW) labels; a pixel whose label is >= C (255 =
 * ignore) takes no part. Returns the sum over the other pixels of
 * logsumexp_c x - x[t] (double, summed in pixel order); *count (may be
 * NULL) receives their number. */
double sfc_softmax_ce_forward(const float *x, const uint8_t *t, int N, int C,
                              int HW, long *count);
/* dx += scale * (softmax(x) - onehot(t)) at the counted pixels (scale =
 * dloss / count gives the mean's gradient). */
void sfc_softmax_ce_backward(float *dx, float scale, const float *x,
                             const uint8_t *t, int N, int C, int HW);

#endif
