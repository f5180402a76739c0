/* SPDX-License-Identifier: MIT */
/* conv.c: 2-D convolution forward and backward, PyTorch nn.Conv2d semantics
 * (groups 1, square kernel, same stride/padding/dilation in both dims).
 *
 * Lowering: one image at a time, im2col into scratch (C*K*K, OH*OW), then
 * y_n (OC, OH*OW) = w (OC, C*K*K) * col by cblas_sgemm (row-major). A 1x1
 * stride-1 unpadded convolution needs no im2col: x_n itself is the column
 * matrix. Any other 1x1 (strided) goes through im2col, which then is a
 * plain subsample. Backward, per image: dw += dy_n col^T (beta 1), then the
 * same scratch is reused for dcol = w^T dy_n, scattered back by col2im.
 *
 * Threads: OpenBLAS's inside sgemm; OpenMP for im2col/col2im/bias/db, each
 * thread owning whole output rows or channels so that every element is
 * summed in a fixed order: our part is independent of the OpenMP thread
 * count. (OpenBLAS itself is deterministic for a fixed thread count, but
 * its sgemm may round differently with 1 and 2 threads for some shapes.)
 * BLAS is never called inside an OpenMP region. */
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "conv.h"

/* Parallelise an OpenMP loop only when there is enough work to pay. */
#define PAR_MIN_WORK 32768L

static int is_pointwise(const struct sfc_conv2d *c)
{
    return c->K == 1 && c->S == 1 && c->P == 0;
}

size_t sfc_conv2d_scratch(const struct sfc_conv2d *c, int H, int W)
{
    if (is_pointwise(c)) return 0;
    int OH = sfc_conv2d_outsize(H, c->K, c->S, c->P, c->D);
    int OW = sfc_conv2d_outsize(W, c->K, c->S, c->P, c->D);
    return (size_t)c->C * c->K * c->K * OH * OW;
}

/* The range [lo, hi) of output columns o whose input column
 * o*S - P + off lies in [0, W). */
static void valid_range(int W, int OW, int S, int P, int off, int *lo,
                        int *hi)
{
    int a = P - off; /* need o*S >= a */
    int l = a <= 0 ? 0 : (a + S - 1) / S;
    int b = W - 1 + P - off; /* need o*S <= b */
    int h = b < 0 ? 0 : b / S + 1;
    if (h > OW) h = OW;
    if (l > h) l = h;
    *lo = l, *hi = h;
}

/* col (C*K*K, OH*OW) from one image x (C, H, W); padding reads as 0. */
static void im2col(const struct sfc_conv2d *c, float *col, const float *x,
                   int H, int W, int OH, int OW)
{
    const int K = c->K, S = c->S, P = c->P, D = c->D;
    const long rows = (long)c->C * K * K;
    const long ohw = (long)OH * OW;
#pragma omp parallel for schedule(static) if (rows * ohw >= PAR_MIN_WORK)
    for (long r = 0; r < rows; r++) {
        int kw = (int)(r % K), kh = (int)(r / K % K), ch = (int)(r / K / K);
        const float *xc = x + (size_t)ch * H * W;
        float *dst = col + (size_t)r * ohw;
        int lo, hi;
        valid_range(W, OW, S, P, kw * D, &lo, &hi);
        for (int oh = 0; oh < OH; oh++) {
            float *d = dst + (size_t)oh * OW;
            int ih = oh * S - P + kh * D;
            if (ih < 0 || ih >= H) {
                memset(d, 0, sizeof(float) * OW);
                continue;
            }
            /* x index of output column ow is base + ow*S (valid in
             * [lo, hi)); no pointer is formed outside the array. */
            long base = (long)ih * W - P + kw * D;
            for (int ow = 0; ow < lo; ow++) d[ow] = 0;
            if (S == 1)
                memcpy(d + lo, xc + base + lo, sizeof(float) * (hi - lo));
            else
                for (int ow = lo; ow < hi; ow++)
                    d[ow] = xc[base + (long)ow * S];
            for (int ow = hi; ow < OW; ow++) d[ow] = 0;
        }
    }
}

/* dx (C, H, W) += col2im(col); each thread owns whole channels and visits
 * (kh, kw, oh, ow) in a fixed order. */
static void col2im_add(const struct sfc_conv2d *c, float *dx,
                       const float *col, int H, int W, int OH, int OW)
{
    const int K = c->K, S = c->S, P = c->P, D = c->D;
    const long ohw = (long)OH * OW;
#pragma omp parallel for schedule(static) \
    if ((long)c->C * K * K * ohw >= PAR_MIN_WORK)
    for (int ch = 0; ch < c->C; ch++) {
        float *xc = dx + (size_t)ch * H * W;
        for (int kh = 0; kh < K; kh++)
            for (int kw = 0; kw < K; kw++) {
                const float *src =
                    col + ((size_t)(ch * K + kh) * K + kw) * ohw;
                int lo, hi;
                valid_range(W, OW, S, P, kw * D, &lo, &hi);
                for (int oh = 0; oh < OH; oh++) {
                    int ih = oh * S - P + kh * D;
                    if (ih < 0 || ih >= H) continue;
                    long base = (long)ih * W - P + kw * D;
                    const float *s = src + (size_t)oh * OW;
                    if (S == 1)
                        for (int ow = lo; ow < hi; ow++)
                            xc[base + ow] += s[ow];
                    else
                        for (int ow = lo; ow < hi; ow++)
                            xc[base + (long)ow * S] += s[ow];
                }
            }
    }
}

void sfc_conv2d_forward(const struct sfc_conv2d *c, float *y, const float *x,
                        const float *w, const float *b, int N, int H, int W,
                        float *scratch)
{
    const int OH = sfc_conv2d_outsize(H, c->K, c->S, c->P, c->D);
    const int OW = sfc_conv2d_outsize(W, c->K, c->S, c->P, c->D);
    const int OC = c->OC;
    const int ckk = c->C * c->K * c->K;
    const long ohw = (long)OH * OW;
    const int pw = is_pointwise(c);
    for (int n = 0; n < N; n++) {
        float *yn = y + (size_t)n * OC * ohw;
        const float *xn = x + (size_t)n * c->C * H * W;
        if (b) {
#pragma omp parallel for schedule(static) if (OC * ohw >= PAR_MIN_WORK)
            for (int o = 0; o < OC; o++)
                for (long p = 0; p < ohw; p++) yn[o * ohw + p] = b[o];
        }
        const float *col = xn;
        if (!pw) {
            im2col(c, scratch, xn, H, W, OH, OW);
            col = scratch;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, (int)ohw,
                    ckk, 1.0f, w, ckk, col, (int)ohw, b ? 1.0f : 0.0f, yn,
                    (int)ohw);
    }
}

void sfc_conv2d_backward(const struct sfc_conv2d *c, float *dx, float *dw,
                         float *db, const float *dy, const float *x,
                         const float *w, int N, int H, int W, float *scratch)
{
    const int OH = sfc_conv2d_outsize(H, c->K, c->S, c->P, c->D);
    const int OW = sfc_conv2d_outsize(W, c->K, c->S, c->P, c->D);
    const int OC = c->OC;
    const int ckk = c->C * c->K * c->K;
    const long ohw = (long)OH * OW;
    const int pw = is_pointwise(c);

    if (db) {
#pragma omp parallel for schedule(static) if (N * OC * ohw >= PAR_MIN_WORK)
        for (int o = 0; o < OC; o++) {
            double s = 0;
            for (int n = 0; n < N; n++) {
                const float *d = dy + ((size_t)n * OC + o) * ohw;
                for (long p = 0; p < ohw; p++) s += d[p];
            }
            db[o] += (float)s;
        }
    }
    if (!dw && !dx) return;
    for (int n = 0; n < N; n++) {
        const float *dyn = dy + (size_t)n * OC * ohw;
        const float *xn = x + (size_t)n * c->C * H * W;
        float *dxn = dx ? dx + (size_t)n * c->C * H * W : NULL;
        if (pw) {
            if (dw)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, ckk,
                            (int)ohw, 1.0f, dyn, (int)ohw, xn, (int)ohw, 1.0f,
                            dw, ckk);
            if (dxn)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ckk,
                            (int)ohw, OC, 1.0f, w, ckk, dyn, (int)ohw, 1.0f,
                            dxn, (int)ohw);
            continue;
        }
        if (dw) {
            im2col(c, scratch, xn, H, W, OH, OW);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, ckk,
                        (int)ohw, 1.0f, dyn, (int)ohw, scratch, (int)ohw,
                        1.0f, dw, ckk);
        }
        if (dxn) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ckk,
                        (int)ohw, OC, 1.0f, w, ckk, dyn, (int)ohw, 0.0f,
                        scratch, (int)ohw);
            col2im_add(c, dxn, scratch, H, W, OH, OW);
        }
    }
}

void sfc_conv2d_forward_naive(const struct sfc_conv2d *c, float *y,
                              const float *x, const float *w, const float *b,
                              int N, int H, int W)
{
    const int K = c->K, S = c->S, P = c->P, D = c->D, C = c->C;
    const int OH = sfc_conv2d_outsize(H, K, S, P, D);
    const int OW = sfc_conv2d_outsize(W, K, S, P, D);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < c->OC; o++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double s = b ? b[o] : 0.0;
                    for (int ch = 0; ch < C; ch++)
                        for (int kh = 0; kh < K; kh++) {
                            int ih = oh * S - P + kh * D;
                            if (ih < 0 || ih >= H) continue;
                            for (int kw = 0; kw < K; kw++) {
                                int iw = ow * S - P + kw * D;
                                if (iw < 0 || iw >= W) continue;
                                s += (double)x[(((size_t)n * C + ch) * H +
                                                ih) * W + iw] *
                                     w[(((size_t)o * C + ch) * K + kh) * K +
                                       kw];
                            }
                        }
                    y[(((size_t)n * c->OC + o) * OH + oh) * OW + ow] =
                        (float)s;
                }
}
