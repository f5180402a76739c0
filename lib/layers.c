/* SPDX-License-Identifier: MIT */
/* layers.c: the simple ResNet layers, forward and backward: frozen
 * BatchNorm (PyTorch eval mode; the FixedBatchNorm of sfc-reference.md
 * section 2.2), ReLU, max pooling (nn.MaxPool2d, floor mode) and global
 * average pooling.
 *
 * BN folds its statistics into y = x*alpha + beta per channel, alpha =
 * gamma/sqrt(var + eps), as PyTorch's CPU eval path does. Max pooling scans
 * the window row by row and keeps the first maximum (a later equal value
 * does not replace it; a NaN always does), matching PyTorch's CPU kernel;
 * padding never wins. Reductions (dgamma, dbeta, the GAP mean) are blocked
 * float sums added in double, one thread per channel: results do not
 * depend on the thread count. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "layers.h"

#define PAR_MIN_WORK 32768L

/* Reductions: float partial sums in LANES independent lanes (which the
 * compiler vectorises) over blocks of BLOCK elements, the blocks added in
 * double. Same order whatever the thread count; error ~1e-7 relative. */
#define LANES 16
#define BLOCK 1024

/* *s1 += sum a; *s2 += sum a * (b - bm) (when b != NULL). */
static void block_sums(const float *a, const float *b, float bm, long n,
                       double *s1, double *s2)
{
    for (long i0 = 0; i0 < n; i0 += BLOCK) {
        long m = n - i0 < BLOCK ? n - i0 : BLOCK;
        const float *ap = a + i0;
        float l1[LANES] = {0}, l2[LANES] = {0};
        long i = 0;
        if (b) {
            const float *bp = b + i0;
            for (; i + LANES <= m; i += LANES)
                for (int k = 0; k < LANES; k++) {
                    l1[k] += ap[i + k];
                    l2[k] += ap[i + k] * (bp[i + k] - bm);
                }
            for (; i < m; i++) {
                l1[0] += ap[i];
                l2[0] += ap[i] * (bp[i] - bm);
            }
        } else {
            for (; i + LANES <= m; i += LANES)
                for (int k = 0; k < LANES; k++) l1[k] += ap[i + k];
            for (; i < m; i++) l1[0] += ap[i];
        }
        double d1 = 0, d2 = 0;
        for (int k = 0; k < LANES; k++) d1 += l1[k], d2 += l2[k];
        *s1 += d1;
        if (b) *s2 += d2;
    }
}

void sfc_bn_frozen_forward(float *y, const float *x, const float *gamma,
                           const float *beta, const float *mean,
                           const float *var, float eps, int N, int C, int HW)
{
    long planes = (long)N * C;
#pragma omp parallel for schedule(static) if (planes * HW >= PAR_MIN_WORK)
    for (long pl = 0; pl < planes; pl++) {
        int ch = (int)(pl % C);
        float alpha = gamma[ch] / sqrtf(var[ch] + eps);
        float shift = beta[ch] - mean[ch] * alpha;
        const float *xp = x + pl * HW;
        float *yp = y + pl * HW;
        for (int i = 0; i < HW; i++) yp[i] = xp[i] * alpha + shift;
    }
}

void sfc_bn_frozen_backward(float *dx, float *dgamma, float *dbeta,
                            const float *dy, const float *x,
                            const float *gamma, const float *mean,
                            const float *var, float eps, int N, int C,
                            int HW)
{
    long work = (long)N * C * HW;
    if (dx) {
        long planes = (long)N * C;
#pragma omp parallel for schedule(static) if (work >= PAR_MIN_WORK)
        for (long pl = 0; pl < planes; pl++) {
            int ch = (int)(pl % C);
            float alpha = gamma[ch] / sqrtf(var[ch] + eps);
            const float *dyp = dy + pl * HW;
            float *dxp = dx + pl * HW;
            for (int i = 0; i < HW; i++) dxp[i] += dyp[i] * alpha;
        }
    }
    if (!dgamma && !dbeta) return;
#pragma omp parallel for schedule(static) if (work >= PAR_MIN_WORK)
    for (int ch = 0; ch < C; ch++) {
        double sdy = 0, sdyx = 0; /* sum dy, sum dy * (x - mean) */
        for (int n = 0; n < N; n++)
            block_sums(dy + ((size_t)n * C + ch) * HW,
                       dgamma ? x + ((size_t)n * C + ch) * HW : NULL,
                       mean[ch], HW, &sdy, &sdyx);
        double istd = 1.0 / sqrt((double)var[ch] + eps);
        if (dgamma) dgamma[ch] += (float)(sdyx * istd);
        if (dbeta) dbeta[ch] += (float)sdy;
    }
}

void sfc_relu_forward(float *y, const float *x, long n)
{
#pragma omp parallel for schedule(static) if (n >= 4 * PAR_MIN_WORK)
    for (long i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0.0f;
}

void sfc_relu_backward(float *dx, const float *dy, const float *y, long n)
{
#pragma omp parallel for schedule(static) if (n >= 4 * PAR_MIN_WORK)
    for (long i = 0; i < n; i++)
        if (y[i] > 0) dx[i] += dy[i];
}

/* Max pooling of one plane, output row by output row: each input row of
 * the window is reduced across the window's columns (hv, hi), then the
 * rows are merged in order. Row-major first-maximum order survives this
 * (a later row or column wins only when strictly greater), and so does
 * "the last NaN wins". The input row is padded with -inf (which never
 * replaces anything, and the initial index is the window's first real
 * element) and split into its S phases, so that the value at column
 * ow*S - P + kw of every output column is one contiguous vector: the
 * selects vectorise instead of being mispredicted branches. Needs
 * OW <= MAXOW, S <= MAXS, K <= MAXKP (else the plain scan). */
#define MAXOW 512
#define MAXS 4
#define MAXKP 8

static int maxpool_fast(int OW, int K, int S)
{
    return OW <= MAXOW && S <= MAXS && K <= MAXKP;
}

static void maxpool_plane(float *yp, int *ip, const float *xp, int H, int W,
                          int OH, int OW, int K, int S, int P)
{
    /* q[ph][j] = padded row at j*S + ph; the padded row at c is x at
     * c - P (or -inf); an output column reads c = ow*S + kw */
    float q[MAXS][MAXOW + MAXKP];
    float m[MAXOW], hv[MAXOW];
    int mi[MAXOW], hi[MAXOW];
    const int qn = OW + (K - 1) / S + 1; /* entries per phase used */
    for (int oh = 0; oh < OH; oh++) {
        int h0 = oh * S - P, h1 = h0 + K;
        if (h0 < 0) h0 = 0;
        if (h1 > H) h1 = H;
        for (int ow = 0; ow < OW; ow++) {
            int w0 = ow * S - P;
            m[ow] = -INFINITY;
            mi[ow] = h0 * W + (w0 < 0 ? 0 : w0);
        }
        for (int ih = h0; ih < h1; ih++) {
            const float *xr = xp + (size_t)ih * W;
            for (int ph = 0; ph < S; ph++)
                for (int j = 0; j < qn; j++) {
                    int c = j * S + ph - P;
                    q[ph][j] = c >= 0 && c < W ? xr[c] : -INFINITY;
                }
            for (int ow = 0; ow < OW; ow++) {
                int w0 = ow * S - P;
                hv[ow] = -INFINITY;
                hi[ow] = ih * W + (w0 < 0 ? 0 : w0);
            }
            for (int kw = 0; kw < K; kw++) {
                const float *u = q[kw % S] + kw / S;
                int base = ih * W + kw - P;
#pragma omp simd
                for (int ow = 0; ow < OW; ow++) {
                    float v = u[ow];
                    int take = (v > hv[ow]) | (v != v);
                    hv[ow] = take ? v : hv[ow];
                    hi[ow] = take ? base + ow * S : hi[ow];
                }
            }
#pragma omp simd
            for (int ow = 0; ow < OW; ow++) {
                float v = hv[ow];
                int take = (v > m[ow]) | (v != v);
                m[ow] = take ? v : m[ow];
                mi[ow] = take ? hi[ow] : mi[ow];
            }
        }
        memcpy(yp + (size_t)oh * OW, m, sizeof(float) * OW);
        if (ip) memcpy(ip + (size_t)oh * OW, mi, sizeof(int) * OW);
    }
}

void sfc_maxpool2d_forward(float *y, int *idx, const float *x, int N, int C,
                           int H, int W, int K, int S, int P)
{
    const int OH = sfc_maxpool2d_outsize(H, K, S, P);
    const int OW = sfc_maxpool2d_outsize(W, K, S, P);
    const long planes = (long)N * C;
#pragma omp parallel for schedule(static) \
    if (planes * OH * OW * K * K >= PAR_MIN_WORK)
    for (long pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * H * W;
        float *yp = y + pl * OH * OW;
        int *ip = idx ? idx + pl * OH * OW : NULL;
        if (maxpool_fast(OW, K, S)) {
            maxpool_plane(yp, ip, xp, H, W, OH, OW, K, S, P);
            continue;
        }
        for (int oh = 0; oh < OH; oh++) {
            int h0 = oh * S - P, h1 = h0 + K;
            if (h0 < 0) h0 = 0;
            if (h1 > H) h1 = H;
            for (int ow = 0; ow < OW; ow++) {
                int w0 = ow * S - P, w1 = w0 + K;
                if (w0 < 0) w0 = 0;
                if (w1 > W) w1 = W;
                float m = -INFINITY;
                int mi = h0 * W + w0;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) {
                        float v = xp[ih * W + iw];
                        if (v > m || isnan(v)) m = v, mi = ih * W + iw;
                    }
                yp[oh * OW + ow] = m;
                if (ip) ip[oh * OW + ow] = mi;
            }
        }
    }
}

void sfc_maxpool2d_backward(float *dx, const float *dy, const int *idx,
                            int N, int C, int H, int W, int OH, int OW)
{
    const long planes = (long)N * C;
    const long ohw = (long)OH * OW;
#pragma omp parallel for schedule(static) if (planes * ohw >= PAR_MIN_WORK)
    for (long pl = 0; pl < planes; pl++) {
        float *dxp = dx + pl * H * W;
        const float *dyp = dy + pl * ohw;
        const int *ip = idx + pl * ohw;
        for (long o = 0; o < ohw; o++) dxp[ip[o]] += dyp[o];
    }
}

void sfc_gap_forward(float *y, const float *x, int N, int C, int HW)
{
    const long planes = (long)N * C;
#pragma omp parallel for schedule(static) if (planes * HW >= PAR_MIN_WORK)
    for (long pl = 0; pl < planes; pl++) {
        double s = 0;
        block_sums(x + pl * HW, NULL, 0, HW, &s, NULL);
        y[pl] = (float)(s / HW);
    }
}

void sfc_gap_backward(float *dx, const float *dy, int N, int C, int HW)
{
    const long planes = (long)N * C;
#pragma omp parallel for schedule(static) if (planes * HW >= PAR_MIN_WORK)
    for (long pl = 0; pl < planes; pl++) {
        float g = dy[pl] / (float)HW;
        float *dxp = dx + pl * HW;
        for (int i = 0; i < HW; i++) dxp[i] += g;
    }
}
