/* SPDX-License-Identifier: MIT */
/* ops.c: the non-ResNet layers of SFC and IRN, forward and backward.
 *
 * Follows sfc-reference.md: §2.2 (SFC Net.forward, Net.PCM,
 * Net.prototype in network/resnet50_SFC.py: L2 normalisation by norm +
 * 1e-5, max-normalisation by adaptive_max_pool2d + 1e-5, PCM affinity,
 * prototypes and cosine), §2.5 (multilabel soft margin, weighted L1),
 * §6.3 (GroupNorm of the IRN edge branch) and §10.19 (PyTorch's bilinear
 * and nearest source-index formulas, reproducing ATen's CPU behaviour:
 * float ratio, clamp at 0, copy when out == in).
 *
 * Matrix products go through cblas_sgemm (one call per image, outside any
 * OpenMP region); everything else is OpenMP over independent outputs, so
 * results do not depend on the thread count. Reductions are serial per
 * output and accumulate in double. */
#include <cblas.h>
#include <math.h>
#include <stdint.h>

#include "err.h"
#include "ops.h"
#include "util.h"

/* Pixel block for the channel reductions (x is (C, HW) per image: a block
 * of pixels is walked channel by channel, so reads stay contiguous). */
#define PBLK 64

/* ------------------------------------------------------------ GroupNorm */

void sfc_groupnorm_forward(float *y, float *mean, float *rstd, const float *x,
                           const float *gamma, const float *beta, float eps,
                           int N, int C, int G, int HW)
{
    SFC_ASSERT(G > 0 && C % G == 0);
    int Cg = C / G;
    long M = (long)Cg * HW;
#pragma omp parallel for schedule(static)
    for (int ng = 0; ng < N * G; ng++) {
        int n = ng / G, g = ng % G;
        long off = ((long)n * C + (long)g * Cg) * HW;
        const float *xg = x + off;
        float *yg = y + off;
        double s = 0;
        for (long i = 0; i < M; i++) s += xg[i];
        double m = s / M, v = 0;
        for (long i = 0; i < M; i++) {
            double d = xg[i] - m;
            v += d * d;
        }
        v /= M;
        float mf = (float)m, r = (float)(1.0 / sqrt(v + eps));
        if (mean) mean[ng] = mf;
        if (rstd) rstd[ng] = r;
        for (int cc = 0; cc < Cg; cc++) {
            int c = g * Cg + cc;
            float ga = gamma ? gamma[c] : 1.0f, be = beta ? beta[c] : 0.0f;
            const float *xc = xg + (long)cc * HW;
            float *yc = yg + (long)cc * HW;
            for (int p = 0; p < HW; p++)
                yc[p] = (xc[p] - mf) * r * ga + be;
        }
    }
}

void sfc_groupnorm_backward(float *dx, float *dgamma, float *dbeta,
                            const float *dy, const float *x,
                            const float *mean, const float *rstd,
                            const float *gamma, int N, int C, int G, int HW)
{
    int Cg = C / G;
    long M = (long)Cg * HW;
    if (dx) {
#pragma omp parallel for schedule(static)
        for (int ng = 0; ng < N * G; ng++) {
            int n = ng / G, g = ng % G;
            long off = ((long)n * C + (long)g * Cg) * HW;
            float m = mean[ng], r = rstd[ng];
            double s1 = 0, s2 = 0; /* sum dxhat, sum dxhat * xhat */
            for (int cc = 0; cc < Cg; cc++) {
                float ga = gamma ? gamma[g * Cg + cc] : 1.0f;
                const float *xc = x + off + (long)cc * HW;
                const float *dc = dy + off + (long)cc * HW;
                for (int p = 0; p < HW; p++) {
                    double dh = (double)dc[p] * ga;
                    s1 += dh;
                    s2 += dh * ((xc[p] - m) * r);
                }
            }
            float a1 = (float)(s1 / M), a2 = (float)(s2 / M);
            for (int cc = 0; cc < Cg; cc++) {
                float ga = gamma ? gamma[g * Cg + cc] : 1.0f;
                const float *xc = x + off + (long)cc * HW;
                const float *dc = dy + off + (long)cc * HW;
                float *gc = dx + off + (long)cc * HW;
                for (int p = 0; p < HW; p++) {
                    float xh = (xc[p] - m) * r;
                    gc[p] += r * (dc[p] * ga - a1 - xh * a2);
                }
            }
        }
    }
    if (dgamma || dbeta) {
#pragma omp parallel for schedule(static)
        for (int c = 0; c < C; c++) {
            int g = c / Cg;
            double sg = 0, sb = 0;
            for (int n = 0; n < N; n++) {
                float m = mean[n * G + g], r = rstd[n * G + g];
                const float *xc = x + ((long)n * C + c) * HW;
                const float *dc = dy + ((long)n * C + c) * HW;
                for (int p = 0; p < HW; p++) {
                    sg += (double)dc[p] * ((xc[p] - m) * r);
                    sb += dc[p];
                }
            }
            if (dgamma) dgamma[c] += (float)sg;
            if (dbeta) dbeta[c] += (float)sb;
        }
    }
}

/* ------------------------------------------------------------- Resizing */

/* ATen's area_pixel_compute_scale (float accumulation type). */
static float linear_ratio(int in, int out, int align_corners, double scale)
{
    if (align_corners)
        return out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
    if (scale > 0) return (float)(1.0 / scale);
    return (float)in / (float)out;
}

/* ATen's compute_source_index_and_lambda for linear modes: the ratio is a
 * float, the source index is computed in double (the CPU accumulation
 * type) and the weights are stored as floats. Matching this matters: a
 * float source index near 30 is off by up to 1e-6 in its weight. */
static void linear_index(int o, int in, int out, int align_corners,
                         float ratio, int *i0, int *i1, float *l0, float *l1)
{
    if (out == in) {
        *i0 = o;
        *i1 = o;
        *l0 = 1.0f;
        *l1 = 0.0f;
        return;
    }
    double src;
    if (align_corners) {
        src = (double)ratio * o;
    } else {
        src = (double)ratio * (o + 0.5) - 0.5;
        if (src < 0) src = 0;
    }
    int a = (int)src;
    *i0 = a;
    *i1 = a + (a < in - 1 ? 1 : 0);
    double l = src - a;
    if (l < 0) l = 0;
    if (l > 1) l = 1;
    *l1 = (float)l;
    *l0 = 1.0f - *l1;
}

/* Output columns are done in chunks of RCH whose source indices and
 * weights are computed once per plane and chunk. */
#define RCH 256

void sfc_resize_bilinear_forward(float *y, const float *x, int N, int C,
                                 int H, int W, int OH, int OW,
                                 int align_corners, double scale_h,
                                 double scale_w)
{
    float rh = linear_ratio(H, OH, align_corners, scale_h);
    float rw = linear_ratio(W, OW, align_corners, scale_w);
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < (long)N * C; pl++) {
        const float *xp = x + pl * H * W;
        float *yp = y + pl * OH * OW;
        for (int c0 = 0; c0 < OW; c0 += RCH) {
            int nc = SFC_MIN(RCH, OW - c0), w0[RCH], w1[RCH];
            float b0[RCH], b1[RCH];
            for (int j = 0; j < nc; j++)
                linear_index(c0 + j, W, OW, align_corners, rw, &w0[j], &w1[j],
                             &b0[j], &b1[j]);
            for (int oy = 0; oy < OH; oy++) {
                int h0, h1;
                float a0, a1;
                linear_index(oy, H, OH, align_corners, rh, &h0, &h1, &a0,
                             &a1);
                const float *r0 = xp + (long)h0 * W, *r1 = xp + (long)h1 * W;
                float *yr = yp + (long)oy * OW + c0;
                for (int j = 0; j < nc; j++) {
                    double v0 = (double)b0[j] * r0[w0[j]] +
                                (double)b1[j] * r0[w1[j]];
                    double v1 = (double)b0[j] * r1[w0[j]] +
                                (double)b1[j] * r1[w1[j]];
                    yr[j] = (float)(a0 * v0 + a1 * v1);
                }
            }
        }
    }
}

void sfc_resize_bilinear_backward(float *dx, const float *dy, int N, int C,
                                  int H, int W, int OH, int OW,
                                  int align_corners, double scale_h,
                                  double scale_w)
{
    float rh = linear_ratio(H, OH, align_corners, scale_h);
    float rw = linear_ratio(W, OW, align_corners, scale_w);
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < (long)N * C; pl++) {
        float *xp = dx + pl * H * W;
        const float *yp = dy + pl * OH * OW;
        for (int c0 = 0; c0 < OW; c0 += RCH) {
            int nc = SFC_MIN(RCH, OW - c0), w0[RCH], w1[RCH];
            float b0[RCH], b1[RCH];
            for (int j = 0; j < nc; j++)
                linear_index(c0 + j, W, OW, align_corners, rw, &w0[j], &w1[j],
                             &b0[j], &b1[j]);
            for (int oy = 0; oy < OH; oy++) {
                int h0, h1;
                float a0, a1;
                linear_index(oy, H, OH, align_corners, rh, &h0, &h1, &a0,
                             &a1);
                float *r0 = xp + (long)h0 * W, *r1 = xp + (long)h1 * W;
                const float *gr = yp + (long)oy * OW + c0;
                for (int j = 0; j < nc; j++) {
                    float g = gr[j];
                    r0[w0[j]] += a0 * b0[j] * g;
                    r0[w1[j]] += a0 * b1[j] * g;
                    r1[w0[j]] += a1 * b0[j] * g;
                    r1[w1[j]] += a1 * b1[j] * g;
                }
            }
        }
    }
}

/* ATen's nearest_idx (legacy 'nearest'). */
static int nearest_index(int o, int in, int out, double scale)
{
    if (out == in) return o;
    if (out == 2 * in) return o >> 1;
    float r = scale > 0 ? (float)(1.0 / scale) : (float)in / (float)out;
    long s = (long)floorf((float)o * r);
    return (int)(s < in - 1 ? s : in - 1);
}

void sfc_resize_nearest_forward(float *y, const float *x, int N, int C,
                                int H, int W, int OH, int OW, double scale_h,
                                double scale_w)
{
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < (long)N * C; pl++) {
        const float *xp = x + pl * H * W;
        float *yp = y + pl * OH * OW;
        for (int oy = 0; oy < OH; oy++) {
            const float *r = xp + (long)nearest_index(oy, H, OH, scale_h) * W;
            for (int ox = 0; ox < OW; ox++)
                yp[(long)oy * OW + ox] = r[nearest_index(ox, W, OW, scale_w)];
        }
    }
}

void sfc_resize_nearest_backward(float *dx, const float *dy, int N, int C,
                                 int H, int W, int OH, int OW, double scale_h,
                                 double scale_w)
{
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < (long)N * C; pl++) {
        float *xp = dx + pl * H * W;
        const float *yp = dy + pl * OH * OW;
        for (int oy = 0; oy < OH; oy++) {
            float *r = xp + (long)nearest_index(oy, H, OH, scale_h) * W;
            for (int ox = 0; ox < OW; ox++)
                r[nearest_index(ox, W, OW, scale_w)] += yp[(long)oy * OW + ox];
        }
    }
}

int sfc_resize_outsize(int in, double scale)
{
    return (int)floor((double)in * scale);
}

/* ------------------------------------------------------ L2 normalisation */

void sfc_l2norm_forward(float *y, float *norm, const float *x, float eps,
                        int N, int C, int HW)
{
    int nb = (HW + PBLK - 1) / PBLK;
#pragma omp parallel for schedule(static)
    for (long nbk = 0; nbk < (long)N * nb; nbk++) {
        int n = (int)(nbk / nb), p0 = (int)(nbk % nb) * PBLK;
        int np = SFC_MIN(PBLK, HW - p0);
        const float *xn = x + (long)n * C * HW + p0;
        float *yn = y + (long)n * C * HW + p0;
        double ss[PBLK] = {0};
        float d[PBLK];
        for (int c = 0; c < C; c++)
            for (int p = 0; p < np; p++) {
                double v = xn[(long)c * HW + p];
                ss[p] += v * v;
            }
        for (int p = 0; p < np; p++) {
            float nr = (float)sqrt(ss[p]);
            if (norm) norm[(long)n * HW + p0 + p] = nr;
            d[p] = nr + eps;
        }
        for (int c = 0; c < C; c++)
            for (int p = 0; p < np; p++)
                yn[(long)c * HW + p] = xn[(long)c * HW + p] / d[p];
    }
}

void sfc_l2norm_backward(float *dx, const float *dy, const float *x,
                         const float *norm, float eps, int N, int C, int HW)
{
    if (!dx) return;
    int nb = (HW + PBLK - 1) / PBLK;
#pragma omp parallel for schedule(static)
    for (long nbk = 0; nbk < (long)N * nb; nbk++) {
        int n = (int)(nbk / nb), p0 = (int)(nbk % nb) * PBLK;
        int np = SFC_MIN(PBLK, HW - p0);
        long off = (long)n * C * HW + p0;
        double dot[PBLK] = {0};
        float inv[PBLK], k2[PBLK];
        for (int c = 0; c < C; c++)
            for (int p = 0; p < np; p++)
                dot[p] += (double)dy[off + (long)c * HW + p] *
                          x[off + (long)c * HW + p];
        for (int p = 0; p < np; p++) {
            double nr = norm[(long)n * HW + p0 + p], d = nr + eps;
            inv[p] = (float)(1.0 / d);
            /* d||x||/dx = x / ||x||, taken as 0 at x = 0 (as PyTorch) */
            k2[p] = nr > 0 ? (float)(dot[p] / (d * d * nr)) : 0.0f;
        }
        for (int c = 0; c < C; c++)
            for (int p = 0; p < np; p++) {
                long i = off + (long)c * HW + p;
                dx[i] += dy[i] * inv[p] - x[i] * k2[p];
            }
    }
}

/* ---------------------------------------------------- Cosine similarity
 * Torch 1.13 (ATen Distance.cpp) computes sum (x / cx) * (p / cp) with
 * cx = max(||x||, eps) clamped in place under a no-grad guard, so the
 * autograd of the norm sees the clamped value: d(z / c)/dz applied to g is
 * (g - (g . zh) zh) / c with zh = z / c, also when the norm was clamped
 * (no mask), and 0 for z = 0 through the norm. Checked against torch with
 * a tiny (clamped) prototype, a zero prototype and a zero pixel. */

/* The work runs in phases over all N images (OpenMP phase, then one
 * sgemm per image, ...) rather than image by image: alternating OpenMP
 * regions and OpenBLAS calls N times makes their idle threads spin against
 * each other on a busy machine. */

/* Clamped per-pixel norms of x (N, D, HW) into nx (N, HW). */
static void pixel_norms(float *nx, const float *x, float eps, int N, int D,
                        int HW)
{
    int nb = (HW + PBLK - 1) / PBLK;
#pragma omp parallel for schedule(static)
    for (long nbk = 0; nbk < (long)N * nb; nbk++) {
        int n = (int)(nbk / nb), p0 = (int)(nbk % nb) * PBLK;
        int np = SFC_MIN(PBLK, HW - p0);
        const float *xn = x + (long)n * D * HW + p0;
        double ss[PBLK] = {0};
        for (int d = 0; d < D; d++)
            for (int p = 0; p < np; p++) {
                double v = xn[(long)d * HW + p];
                ss[p] += v * v;
            }
        for (int p = 0; p < np; p++) {
            float nr = (float)sqrt(ss[p]);
            nx[(long)n * HW + p0 + p] = nr >= eps ? nr : eps;
        }
    }
}

/* Clamped prototype norms npk (N*K) and v = p / npk (N, K, D). */
static void proto_norms(float *npk, float *v, const float *p, float eps,
                        int N, int K, int D)
{
#pragma omp parallel for schedule(static)
    for (long nk = 0; nk < (long)N * K; nk++) {
        const float *pk = p + nk * D;
        double s = 0;
        for (int d = 0; d < D; d++) s += (double)pk[d] * pk[d];
        float nr = (float)sqrt(s);
        npk[nk] = nr >= eps ? nr : eps;
        if (v)
            for (int d = 0; d < D; d++) v[nk * D + d] = pk[d] / npk[nk];
    }
}

static float vec_norm(const float *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)v[i] * v[i];
    return (float)sqrt(s);
}

size_t sfc_cosine_scratch(int N, int K, int D, int HW)
{
    return (size_t)N * (2 * (size_t)HW + (size_t)K + 2 * (size_t)K * HW +
                        2 * (size_t)K * D);
}

void sfc_cosine_forward(float *y, const float *x, const float *p, float eps,
                        int N, int K, int D, int HW)
{
    for (int n = 0; n < N; n++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, HW, D,
                    1.0f, p + (long)n * K * D, D, x + (long)n * D * HW, HW,
                    0.0f, y + (long)n * K * HW, HW);
    int nb = (HW + PBLK - 1) / PBLK;
#pragma omp parallel for schedule(static)
    for (long nbk = 0; nbk < (long)N * nb; nbk++) {
        int n = (int)(nbk / nb), p0 = (int)(nbk % nb) * PBLK;
        int np = SFC_MIN(PBLK, HW - p0);
        const float *xn = x + (long)n * D * HW + p0;
        double ss[PBLK] = {0};
        for (int d = 0; d < D; d++)
            for (int q = 0; q < np; q++) {
                double v = xn[(long)d * HW + q];
                ss[q] += v * v;
            }
        float inx[PBLK];
        for (int q = 0; q < np; q++) {
            float nr = (float)sqrt(ss[q]);
            inx[q] = 1.0f / (nr >= eps ? nr : eps);
        }
        for (int k = 0; k < K; k++) {
            float nk = vec_norm(p + ((long)n * K + k) * D, D);
            float ik = 1.0f / (nk >= eps ? nk : eps);
            float *yk = y + ((long)n * K + k) * HW + p0;
            for (int q = 0; q < np; q++) yk[q] *= ik * inx[q];
        }
    }
}

void sfc_cosine_backward(float *dx, float *dp, const float *dy,
                         const float *x, const float *p, float eps, int N,
                         int K, int D, int HW, float *scratch)
{
    if (!dx && !dp) return;
    long nKH = (long)N * K * HW, nKD = (long)N * K * D;
    float *nx = scratch;                  /* (N, HW) clamped pixel norms */
    float *sx = nx + (long)N * HW;        /* (N, HW) sum_k dy c / nx^2 */
    float *npk = sx + (long)N * HW;       /* (N, K) clamped proto norms */
    float *cs = npk + (long)N * K;        /* (N, K, HW) cosine */
    float *gs = cs + nKH;                 /* (N, K, HW) dy / nx */
    float *v = gs + nKH;                  /* (N, K, D) p / np */
    float *t = v + nKD;                   /* (N, K, D) gs x^T */
    pixel_norms(nx, x, eps, N, D, HW);
    proto_norms(npk, v, p, eps, N, K, D);
    for (int n = 0; n < N; n++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, HW, D,
                    1.0f, v + (long)n * K * D, D, x + (long)n * D * HW, HW,
                    0.0f, cs + (long)n * K * HW, HW);
#pragma omp parallel for schedule(static)
    for (long nk = 0; nk < (long)N * K; nk++) {
        const float *nxn = nx + (nk / K) * HW;
        for (int q = 0; q < HW; q++) {
            long i = nk * HW + q;
            cs[i] /= nxn[q];
            gs[i] = dy[i] / nxn[q];
        }
    }
    if (dx) {
        /* dx = V^T G - x * (sum_k dy c) / nx^2 */
#pragma omp parallel for schedule(static)
        for (long nq = 0; nq < (long)N * HW; nq++) {
            long n = nq / HW, q = nq % HW;
            double s = 0;
            for (int k = 0; k < K; k++) {
                long i = (n * K + k) * HW + q;
                s += (double)dy[i] * cs[i];
            }
            sx[nq] = (float)(s / ((double)nx[nq] * nx[nq]));
        }
    }
    for (int n = 0; n < N; n++) {
        if (dx)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, D, HW, K,
                        1.0f, v + (long)n * K * D, D, gs + (long)n * K * HW,
                        HW, 1.0f, dx + (long)n * D * HW, HW);
        if (dp)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, K, D, HW,
                        1.0f, gs + (long)n * K * HW, HW,
                        x + (long)n * D * HW, HW, 0.0f, t + (long)n * K * D,
                        D);
    }
    if (dx) {
#pragma omp parallel for schedule(static)
        for (long nd = 0; nd < (long)N * D; nd++) {
            long n = nd / D;
            const float *xr = x + nd * HW, *sr = sx + n * HW;
            float *dr = dx + nd * HW;
            for (int q = 0; q < HW; q++) dr[q] -= xr[q] * sr[q];
        }
    }
    if (dp) {
        /* dp = (G X^T) / np - v * (sum_p dy c) / np */
#pragma omp parallel for schedule(static)
        for (long nk = 0; nk < (long)N * K; nk++) {
            double r = 0;
            for (int q = 0; q < HW; q++)
                r += (double)dy[nk * HW + q] * cs[nk * HW + q];
            float a = 1.0f / npk[nk], b = (float)r / npk[nk];
            for (int d = 0; d < D; d++)
                dp[nk * D + d] += t[nk * D + d] * a - v[nk * D + d] * b;
        }
    }
}

/* ------------------------------------------------------------------ PCM */

void sfc_pcm_affinity_forward(float *a, float *colsum, const float *f,
                              float eps, int N, int C, int HW)
{
    int nb = (HW + PBLK - 1) / PBLK;
    /* all products first, then one OpenMP phase (see the cosine note) */
    for (int n = 0; n < N; n++)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, HW, HW, C, 1.0f,
                    f + (long)n * C * HW, HW, f + (long)n * C * HW, HW, 0.0f,
                    a + (long)n * HW * HW, HW);
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (long nbk = 0; nbk < (long)N * nb; nbk++) {
            int n = (int)(nbk / nb), j0 = (int)(nbk % nb) * PBLK;
            int nj = SFC_MIN(PBLK, HW - j0);
            float *an = a + (long)n * HW * HW;
            double s[PBLK] = {0};
            for (int i = 0; i < HW; i++) {
                float *row = an + (long)i * HW + j0;
                for (int j = 0; j < nj; j++) {
                    if (!(row[j] > 0)) row[j] = 0;
                    s[j] += row[j];
                }
            }
            for (int j = 0; j < nj; j++)
                colsum[(long)n * HW + j0 + j] = (float)s[j] + eps;
        }
#pragma omp for schedule(static)
        for (long ni = 0; ni < (long)N * HW; ni++) {
            const float *sn = colsum + (ni / HW) * HW;
            float *row = a + ni * HW;
            for (int j = 0; j < HW; j++) row[j] /= sn[j];
        }
    }
}

size_t sfc_pcm_affinity_scratch(int HW)
{
    return (size_t)HW * HW + HW;
}

void sfc_pcm_affinity_backward(float *df, const float *da, const float *f,
                               const float *a, const float *colsum, int N,
                               int C, int HW, float *scratch)
{
    if (!df) return;
    int nb = (HW + PBLK - 1) / PBLK;
    float *sg = scratch, *tj = scratch + (size_t)HW * HW;
    for (int n = 0; n < N; n++) {
        const float *dan = da + (long)n * HW * HW;
        const float *an = a + (long)n * HW * HW;
        const float *sn = colsum + (long)n * HW;
        /* t_j = sum_i da[i, j] a[i, j] */
#pragma omp parallel for schedule(static)
        for (int b = 0; b < nb; b++) {
            int j0 = b * PBLK, nj = SFC_MIN(PBLK, HW - j0);
            double s[PBLK] = {0};
            for (int i = 0; i < HW; i++)
                for (int j = 0; j < nj; j++)
                    s[j] += (double)dan[(long)i * HW + j0 + j] *
                            an[(long)i * HW + j0 + j];
            for (int j = 0; j < nj; j++) tj[j0 + j] = (float)s[j];
        }
        /* dG = (da - t) / s where A > 0 (ReLU), then symmetrised */
#pragma omp parallel for schedule(static)
        for (int i = 0; i < HW; i++)
            for (int j = 0; j < HW; j++) {
                long k = (long)i * HW + j;
                sg[k] = an[k] > 0 ? (dan[k] - tj[j]) / sn[j] : 0.0f;
            }
#pragma omp parallel for schedule(dynamic, 16)
        for (int i = 0; i < HW; i++) {
            sg[(long)i * HW + i] *= 2;
            for (int j = i + 1; j < HW; j++) {
                float v = sg[(long)i * HW + j] + sg[(long)j * HW + i];
                sg[(long)i * HW + j] = v;
                sg[(long)j * HW + i] = v;
            }
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, C, HW, HW,
                    1.0f, f + (long)n * C * HW, HW, sg, HW, 1.0f,
                    df + (long)n * C * HW, HW);
    }
}

void sfc_pcm_apply_forward(float *y, const float *cam, const float *a, int N,
                           int K, int HW)
{
    for (int n = 0; n < N; n++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, HW, HW,
                    1.0f, cam + (long)n * K * HW, HW, a + (long)n * HW * HW,
                    HW, 0.0f, y + (long)n * K * HW, HW);
}

void sfc_pcm_apply_backward(float *dcam, float *da, const float *dy,
                            const float *cam, const float *a, int N, int K,
                            int HW)
{
    for (int n = 0; n < N; n++) {
        const float *dyn = dy + (long)n * K * HW;
        if (dcam)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, K, HW, HW,
                        1.0f, dyn, HW, a + (long)n * HW * HW, HW, 1.0f,
                        dcam + (long)n * K * HW, HW);
        if (da)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, HW, HW, K,
                        1.0f, cam + (long)n * K * HW, HW, dyn, HW, 1.0f,
                        da + (long)n * HW * HW, HW);
    }
}

/* ----------------------------------------------------------- Prototypes */

void sfc_proto_seeds(float *seeds, const float *cam, const float *valid,
                     float bg_scale, int N, int K, int HW)
{
#pragma omp parallel for schedule(static)
    for (long np = 0; np < (long)N * HW; np++) {
        long n = np / HW, q = np % HW;
        const float *c = cam + n * K * HW + q;
        int best = 0;
        float bv = c[0] * bg_scale;
        for (int k = 1; k < K; k++)
            if (c[(long)k * HW] > bv) bv = c[(long)k * HW], best = k;
        for (int k = 0; k < K; k++) {
            long i = n * K * HW + (long)k * HW + q;
            float s = k == best ? 1.0f : 0.0f;
            seeds[i] = valid ? s * valid[i] : s;
        }
    }
}

void sfc_proto_forward(float *p, const float *seeds, const float *hie, int N,
                       int K, int D, int HW)
{
    for (int n = 0; n < N; n++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, K, D, HW,
                    1.0f / (float)HW, seeds + (long)n * K * HW, HW,
                    hie + (long)n * D * HW, HW, 0.0f, p + (long)n * K * D, D);
}

void sfc_proto_backward(float *dhie, const float *dp, const float *seeds,
                        int N, int K, int D, int HW)
{
    if (!dhie) return;
    for (int n = 0; n < N; n++)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, D, HW, K,
                    1.0f / (float)HW, dp + (long)n * K * D, D,
                    seeds + (long)n * K * HW, HW, 1.0f,
                    dhie + (long)n * D * HW, HW);
}

/* ---------------------------------------------------------- Max helpers */

void sfc_maxnorm_forward(float *y, float *max, int *idx, const float *x,
                         float eps, int N, int C, int HW)
{
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < (long)N * C; pl++) {
        const float *xp = x + pl * HW;
        float *yp = y + pl * HW;
        int best = 0;
        float m = xp[0];
        for (int q = 1; q < HW; q++)
            if (xp[q] > m) m = xp[q], best = q;
        if (max) max[pl] = m;
        if (idx) idx[pl] = best;
        float d = m + eps;
        for (int q = 0; q < HW; q++) yp[q] = xp[q] / d;
    }
}

void sfc_maxnorm_backward(float *dx, const float *dy, const float *x,
                          const float *max, const int *idx, float eps, int N,
                          int C, int HW)
{
    if (!dx) return;
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < (long)N * C; pl++) {
        const float *xp = x + pl * HW, *gp = dy + pl * HW;
        float *dp = dx + pl * HW;
        float d = max[pl] + eps;
        double s = 0;
        for (int q = 0; q < HW; q++) {
            s += (double)gp[q] * xp[q];
            dp[q] += gp[q] / d;
        }
        dp[idx[pl]] -= (float)(s / ((double)d * d));
    }
}

void sfc_chanmax_forward(float *y, int *idx, const float *x, int N, int C,
                         int HW)
{
#pragma omp parallel for schedule(static)
    for (long np = 0; np < (long)N * HW; np++) {
        long n = np / HW, q = np % HW;
        const float *c = x + n * C * HW + q;
        int best = 0;
        float m = c[0];
        for (int k = 1; k < C; k++)
            if (c[(long)k * HW] > m) m = c[(long)k * HW], best = k;
        y[np] = m;
        if (idx) idx[np] = best;
    }
}

void sfc_chanmax_backward(float *dx, const float *dy, const int *idx, int N,
                          int C, int HW)
{
    if (!dx) return;
#pragma omp parallel for schedule(static)
    for (long np = 0; np < (long)N * HW; np++) {
        long n = np / HW, q = np % HW;
        dx[n * C * HW + (long)idx[np] * HW + q] += dy[np];
    }
}

/* --------------------------------------------------------------- Losses */

/* log(sigmoid(v)), stable for large |v|. */
static double log_sigmoid(double v)
{
    return (v < 0 ? v : 0) - log1p(exp(-fabs(v)));
}

float sfc_mlsm_loss_forward(const float *x, const float *t, int N, int C)
{
    double s = 0;
    for (long i = 0; i < (long)N * C; i++)
        s -= t[i] * log_sigmoid(x[i]) + (1.0 - t[i]) * log_sigmoid(-x[i]);
    return (float)(s / ((double)N * C));
}

void sfc_mlsm_loss_backward(float *dx, float dloss, const float *x,
                            const float *t, int N, int C)
{
    if (!dx) return;
    double k = (double)dloss / ((double)N * C);
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)N * C; i++) {
        double sg = 1.0 / (1.0 + exp(-(double)x[i]));
        dx[i] += (float)(k * (sg - t[i]));
    }
}

float sfc_l1_loss_forward(const float *a, const float *b, const float *w,
                          int N, int C, int HW, int c0, int nc)
{
    SFC_ASSERT(c0 >= 0 && nc > 0 && c0 + nc <= C);
    double s = 0;
    for (int n = 0; n < N; n++)
        for (int c = c0; c < c0 + nc; c++) {
            long off = ((long)n * C + c) * HW;
            double sc = 0;
            for (int q = 0; q < HW; q++) sc += fabsf(a[off + q] - b[off + q]);
            s += (w ? w[c] : 1.0) * sc;
        }
    return (float)(s / ((double)N * nc * HW));
}

void sfc_l1_loss_backward(float *da, float *db, float dloss, const float *a,
                          const float *b, const float *w, int N, int C,
                          int HW, int c0, int nc)
{
    if (!da && !db) return;
    double k = (double)dloss / ((double)N * nc * HW);
#pragma omp parallel for schedule(static)
    for (int nc_ = 0; nc_ < N * nc; nc_++) {
        int n = nc_ / nc, c = c0 + nc_ % nc;
        long off = ((long)n * C + c) * HW;
        float g = (float)(k * (w ? w[c] : 1.0));
        for (int q = 0; q < HW; q++) {
            float d = a[off + q] - b[off + q];
            float s = d > 0 ? g : d < 0 ? -g : 0.0f;
            if (da) da[off + q] += s;
            if (db) db[off + q] -= s;
        }
    }
}

/* ------------------------------------------- softmax cross-entropy */

/* logsumexp over the C channels of pixel p of image x (C, HW) */
static double pixel_lse(const float *x, int C, long HW, long p, float *mx)
{
    float m = x[p];
    for (int c = 1; c < C; c++) m = SFC_MAX(m, x[c * HW + p]);
    double s = 0;
    for (int c = 0; c < C; c++) s += exp((double)x[c * HW + p] - m);
    *mx = m;
    return m + log(s);
}

double sfc_softmax_ce_forward(const float *x, const uint8_t *t, int N, int C,
                              int HW, long *count)
{
    double sum = 0;
    long cnt = 0;
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * C * HW;
        for (long p = 0; p < HW; p++) {
            int l = t[(size_t)n * HW + p];
            if (l >= C) continue;
            float m;
            sum += pixel_lse(xn, C, HW, p, &m) - xn[l * HW + p];
            cnt++;
        }
    }
    if (count) *count = cnt;
    return sum;
}

void sfc_softmax_ce_backward(float *dx, float scale, const float *x,
                             const uint8_t *t, int N, int C, int HW)
{
#pragma omp parallel for schedule(static)
    for (long np = 0; np < (long)N * HW; np++) {
        long n = np / HW, p = np % HW;
        int l = t[np];
        if (l >= C) continue;
        const float *xn = x + (size_t)n * C * HW;
        float *dn = dx + (size_t)n * C * HW;
        float m;
        double lse = pixel_lse(xn, C, HW, p, &m);
        for (int c = 0; c < C; c++) {
            double pr = exp((double)xn[c * HW + p] - lse);
            dn[c * HW + p] += scale * (float)(pr - (c == l));
        }
    }
}
