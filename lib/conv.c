/* SPDX-License-Identifier: MIT */
/* conv.c: 2-D convolution forward and backward, PyTorch nn.Conv2d semantics
 * (groups 1, square kernel, same stride/padding/dilation in both dims).
 *
 * Lowering: im2col into scratch (C*K*K, OH*OW), then y_n (OC, OH*OW) =
 * w (OC, C*K*K) * col by cblas_sgemm (row-major). Two paths, chosen from
 * the shape (struct plan):
 *  - one image at a time; a 1x1 stride-1 unpadded convolution needs no
 *    im2col (x_n is the column matrix); a strided 1x1 goes through im2col,
 *    which then is a plain subsample; a large column matrix is built in
 *    bands of output rows so that it stays in cache (TILE_MAX);
 *  - small feature maps (OH*OW < MIN_COLS): the columns of several images
 *    side by side in one wider sgemm, the product reordered into NCHW.
 * im2col/col2im of a strided convolution work on input rows split into
 * their S phases, so that every copy is contiguous (im2col_phased).
 * Backward: dw += dy col^T (beta 1), then the same scratch is reused for
 * dcol = w^T dy, scattered back by col2im; db in double.
 *
 * Threads: OpenBLAS's inside sgemm; OpenMP for im2col/col2im/bias/db, each
 * thread owning whole output rows or channels so that every element is
 * summed in a fixed order: our part is independent of the OpenMP thread
 * count. (OpenBLAS itself is deterministic for a fixed thread count, but
 * its sgemm may round differently with 1 and 2 threads for some shapes.)
 * BLAS is never called inside an OpenMP region. */
#include <string.h>

#include <cblas.h>

#include "conv.h"
#include "util.h" /* defines: SFC_MIN */

/* Parallelise an OpenMP loop only when there is enough work to pay. */
#define PAR_MIN_WORK 32768L
/* sgemm runs near its peak from a few hundred columns on (per thread);
 * thinner products (small feature maps: layer4 of a 256x256 or toy-sized
 * input) are widened by putting the columns of several images side by
 * side. (Single-threaded, layer4's 3x3 at 6x6, N 20: 66 GF/s one image at
 * a time, 87 batched; 256 to 2048 columns all within noise.) */
#define MIN_COLS 512L
/* A column matrix larger than TILE_MAX floats is built and consumed in
 * bands of whole output rows of about TILE_TARGET floats (never fewer than
 * MIN_COLS columns), so that it stays in cache between im2col and sgemm
 * (conv1 and layer1 at 512x512 would otherwise stream ~38 MB through
 * memory per image). */
#define TILE_MAX (3L << 20)
#define TILE_TARGET (1L << 20)

/* How one convolution is lowered; depends on the shape only (not on N or
 * the thread count), so results are reproducible. */
struct plan {
    int OH, OW;
    int ckk;   /* C*K*K: rows of the column matrix */
    long ohw;  /* OH*OW */
    int pw;    /* 1x1 stride 1 unpadded: x itself is the column matrix */
    int band;  /* output rows per column band (single-image path) */
    int group; /* images per sgemm (batched path when > 1 and N > 1) */
};

static struct plan make_plan(const struct sfc_conv2d *c, int H, int W)
{
    struct plan p;
    p.OH = sfc_conv2d_outsize(H, c->K, c->S, c->P, c->D);
    p.OW = sfc_conv2d_outsize(W, c->K, c->S, c->P, c->D);
    p.ckk = c->C * c->K * c->K;
    p.ohw = (long)p.OH * p.OW;
    p.pw = c->K == 1 && c->S == 1 && c->P == 0;
    p.band = p.OH;
    p.group = 1;
    if (p.ohw > 0 && p.ohw < MIN_COLS) {
        p.group = (int)((MIN_COLS + p.ohw - 1) / p.ohw);
    } else if (!p.pw && (long)p.ckk * p.ohw > TILE_MAX) {
        long b = TILE_TARGET / ((long)p.ckk * p.OW);
        long bmin = (MIN_COLS + p.OW - 1) / p.OW;
        if (b < bmin) b = bmin;
        p.band = b > p.OH ? p.OH : (int)b;
    }
    return p;
}

/* Scratch layout. Single-image path: the column band (ckk, band*OW).
 * Batched path: the columns of `group` images (ckk, group*ohw), then a
 * buffer (OC, group*ohw) for the product (forward) or the gathered dy
 * (backward). */
size_t sfc_conv2d_scratch(const struct sfc_conv2d *c, int H, int W)
{
    struct plan p = make_plan(c, H, W);
    size_t single = p.pw ? 0 : (size_t)p.ckk * p.band * p.OW;
    size_t batched = p.group > 1
                         ? ((size_t)p.ckk + c->OC) * p.group * p.ohw
                         : 0;
    return single > batched ? single : batched;
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

/* Column matrix of output rows [oh0, oh1) of nimg images x (nimg, C, H, W):
 * row r (= (ch*K + kh)*K + kw) starts at col + r*ld, image i's columns at
 * offset i*(oh1-oh0)*OW. Padding reads as 0. One task per column-matrix
 * row; a strided convolution gathers every S-th input. */
static void im2col_gather(const struct sfc_conv2d *c, float *col, long ld,
                   const float *x, int nimg, int H, int W, int OW, int oh0,
                   int oh1)
{
    const int K = c->K, S = c->S, P = c->P, D = c->D;
    const long rows = (long)c->C * K * K;
    const long ncol = (long)(oh1 - oh0) * OW;
    const long tasks = rows * nimg;
#pragma omp parallel for schedule(dynamic, 8) \
    if (tasks * ncol >= PAR_MIN_WORK)
    for (long t = 0; t < tasks; t++) {
        long r = t % rows, img = t / rows;
        int kw = (int)(r % K), kh = (int)(r / K % K), ch = (int)(r / K / K);
        const float *xc = x + ((size_t)img * c->C + ch) * H * W;
        float *dst = col + (size_t)r * ld + (size_t)img * ncol;
        int lo, hi;
        valid_range(W, OW, S, P, kw * D, &lo, &hi);
        for (int oh = oh0; oh < oh1; oh++) {
            float *d = dst + (size_t)(oh - oh0) * OW;
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

/* dx (nimg, C, H, W) += col2im(col), col laid out as im2col writes it.
 * Each thread owns whole (image, channel) planes and visits (kh, kw, oh,
 * ow) in a fixed order. */
static void col2im_scatter(const struct sfc_conv2d *c, float *dx,
                       const float *col, long ld, int nimg, int H, int W,
                       int OW, int oh0, int oh1)
{
    const int K = c->K, S = c->S, P = c->P, D = c->D;
    const long ncol = (long)(oh1 - oh0) * OW;
    const long planes = (long)nimg * c->C;
#pragma omp parallel for schedule(dynamic, 1) \
    if (planes * K * K * ncol >= PAR_MIN_WORK)
    for (long pl = 0; pl < planes; pl++) {
        long img = pl / c->C;
        int ch = (int)(pl % c->C);
        float *xc = dx + (size_t)pl * H * W;
        for (int kh = 0; kh < K; kh++)
            for (int kw = 0; kw < K; kw++) {
                const float *src = col +
                                   ((size_t)(ch * K + kh) * K + kw) * ld +
                                   (size_t)img * ncol;
                int lo, hi;
                valid_range(W, OW, S, P, kw * D, &lo, &hi);
                for (int oh = oh0; oh < oh1; oh++) {
                    int ih = oh * S - P + kh * D;
                    if (ih < 0 || ih >= H) continue;
                    long base = (long)ih * W - P + kw * D;
                    const float *s = src + (size_t)(oh - oh0) * OW;
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

/* Strided convolutions (S > 1) by phases: an input row split into its S
 * phases (x[j*S + ph] at buf[ph*Wq + j]) makes the inputs of consecutive
 * output columns contiguous, so every column-matrix row segment is one
 * memcpy (and, backward, one contiguous add) instead of a gather with
 * stride S. One task per input row; rows of at most MAXROW floats and
 * kernels of at most MAXK (else the gather path). */
#define MAXROW 4096
#define MAXK 32

struct phase {
    int ph, q, lo, hi; /* x column of output ow: (ow + q)*S + ph, valid in
                          [lo, hi) */
};

static struct phase phase_of(const struct sfc_conv2d *c, int W, int OW,
                             int kw)
{
    struct phase f;
    int off = kw * c->D - c->P;
    f.ph = ((off % c->S) + c->S) % c->S;
    f.q = (off - f.ph) / c->S;
    valid_range(W, OW, c->S, c->P, kw * c->D, &f.lo, &f.hi);
    return f;
}

/* The band of input rows [*ih0, *ih1) that output rows [oh0, oh1) read. */
static void input_band(const struct sfc_conv2d *c, int H, int oh0, int oh1,
                       int *ih0, int *ih1)
{
    int a = oh0 * c->S - c->P, b = (oh1 - 1) * c->S - c->P +
                                   (c->K - 1) * c->D + 1;
    *ih0 = a < 0 ? 0 : a;
    *ih1 = b > H ? H : b;
    if (*ih1 < *ih0) *ih1 = *ih0;
}

static void im2col_phased(const struct sfc_conv2d *c, float *col, long ld,
                          const float *x, int nimg, int H, int W, int OW,
                          int oh0, int oh1)
{
    const int K = c->K, S = c->S, P = c->P, D = c->D, C = c->C;
    const long rows = (long)C * K * K;
    const long ncol = (long)(oh1 - oh0) * OW;
    const int Wq = (W + S - 1) / S;
    int ih0, ih1;
    input_band(c, H, oh0, oh1, &ih0, &ih1);
    const int nih = ih1 - ih0;
    const int par = rows * nimg * ncol >= PAR_MIN_WORK;
    struct phase fk[MAXK];
    for (int kw = 0; kw < K; kw++) fk[kw] = phase_of(c, W, OW, kw);
    /* output rows that read a padding row are zero */
#pragma omp parallel for schedule(dynamic, 8) if (par)
    for (long t = 0; t < rows * nimg; t++) {
        long r = t % rows, img = t / rows;
        int kh = (int)(r / K % K);
        float *dst = col + (size_t)r * ld + (size_t)img * ncol;
        for (int oh = oh0; oh < oh1; oh++) {
            int ih = oh * S - P + kh * D;
            if (ih < 0 || ih >= H)
                memset(dst + (size_t)(oh - oh0) * OW, 0, sizeof(float) * OW);
        }
    }
    if (nih == 0) return;
    /* every other output row is filled from the one input row it reads */
#pragma omp parallel for schedule(dynamic, 4) if (par)
    for (long t = 0; t < (long)nimg * C * nih; t++) {
        long pl = t / nih, img = pl / C;
        int ih = ih0 + (int)(t % nih), ch = (int)(pl % C);
        const float *xr = x + (size_t)pl * H * W + (size_t)ih * W;
        float buf[MAXROW];
        for (int ph = 0; ph < S; ph++)
            for (int j = 0; j * S + ph < W; j++)
                buf[ph * Wq + j] = xr[j * S + ph];
        for (int kh = 0; kh < K; kh++) {
            int num = ih + P - kh * D, oh = num / S;
            if (num < 0 || num % S || oh < oh0 || oh >= oh1) continue;
            for (int kw = 0; kw < K; kw++) {
                struct phase f = fk[kw];
                float *d = col + ((size_t)(ch * K + kh) * K + kw) * ld +
                           (size_t)img * ncol + (size_t)(oh - oh0) * OW;
                memset(d, 0, sizeof(float) * f.lo);
                if (f.hi > f.lo) /* buf index only formed when in range */
                    memcpy(d + f.lo, buf + f.ph * Wq + f.q + f.lo,
                           sizeof(float) * (f.hi - f.lo));
                memset(d + f.hi, 0, sizeof(float) * (OW - f.hi));
            }
        }
    }
}

/* Backward of im2col_phased: each input row sums its contributions (in
 * (kh, kw, ow) order) in phase layout, then adds them to dx. */
static void col2im_phased(const struct sfc_conv2d *c, float *dx,
                          const float *col, long ld, int nimg, int H, int W,
                          int OW, int oh0, int oh1)
{
    const int K = c->K, S = c->S, P = c->P, D = c->D, C = c->C;
    const long ncol = (long)(oh1 - oh0) * OW;
    const int Wq = (W + S - 1) / S;
    int ih0, ih1;
    input_band(c, H, oh0, oh1, &ih0, &ih1);
    const int nih = ih1 - ih0;
    if (nih == 0) return;
    struct phase fk[MAXK];
    for (int kw = 0; kw < K; kw++) fk[kw] = phase_of(c, W, OW, kw);
#pragma omp parallel for schedule(dynamic, 4) \
    if ((long)nimg * C * K * K * ncol >= PAR_MIN_WORK)
    for (long t = 0; t < (long)nimg * C * nih; t++) {
        long pl = t / nih, img = pl / C;
        int ih = ih0 + (int)(t % nih), ch = (int)(pl % C);
        float buf[MAXROW];
        int used = 0;
        for (int kh = 0; kh < K; kh++) {
            int num = ih + P - kh * D, oh = num / S;
            if (num < 0 || num % S || oh < oh0 || oh >= oh1) continue;
            if (!used) memset(buf, 0, sizeof(float) * S * Wq), used = 1;
            for (int kw = 0; kw < K; kw++) {
                struct phase f = fk[kw];
                const float *s = col +
                                 ((size_t)(ch * K + kh) * K + kw) * ld +
                                 (size_t)img * ncol +
                                 (size_t)(oh - oh0) * OW;
                long bi = (long)f.ph * Wq + f.q;
                for (int ow = f.lo; ow < f.hi; ow++) buf[bi + ow] += s[ow];
            }
        }
        if (!used) continue;
        float *xr = dx + (size_t)pl * H * W + (size_t)ih * W;
        for (int ph = 0; ph < S; ph++)
            for (int j = 0; j * S + ph < W; j++)
                xr[j * S + ph] += buf[ph * Wq + j];
    }
}

static int phased(const struct sfc_conv2d *c, int W)
{
    return c->S > 1 && c->K <= MAXK &&
           (long)c->S * ((W + c->S - 1) / c->S) <= MAXROW;
}

static void im2col(const struct sfc_conv2d *c, float *col, long ld,
                   const float *x, int nimg, int H, int W, int OW, int oh0,
                   int oh1)
{
    if (phased(c, W))
        im2col_phased(c, col, ld, x, nimg, H, W, OW, oh0, oh1);
    else
        im2col_gather(c, col, ld, x, nimg, H, W, OW, oh0, oh1);
}

static void col2im_add(const struct sfc_conv2d *c, float *dx,
                       const float *col, long ld, int nimg, int H, int W,
                       int OW, int oh0, int oh1)
{
    if (phased(c, W))
        col2im_phased(c, dx, col, ld, nimg, H, W, OW, oh0, oh1);
    else
        col2im_scatter(c, dx, col, ld, nimg, H, W, OW, oh0, oh1);
}

/* buf (OC, nimg*ohw), the batched layout, from y (nimg, OC, ohw). */
static void gather(float *buf, const float *y, int nimg, int OC, long ohw)
{
    const long planes = (long)nimg * OC, ld = nimg * ohw;
#pragma omp parallel for schedule(static) if (planes * ohw >= PAR_MIN_WORK)
    for (long pl = 0; pl < planes; pl++)
        memcpy(buf + (size_t)(pl % OC) * ld + (size_t)(pl / OC) * ohw,
               y + (size_t)pl * ohw, sizeof(float) * ohw);
}

/* y (nimg, OC, ohw) = buf (OC, nimg*ohw) + b (OC) (b may be NULL). */
static void scatter(float *y, const float *buf, const float *b, int nimg,
                    int OC, long ohw)
{
    const long planes = (long)nimg * OC, ld = nimg * ohw;
#pragma omp parallel for schedule(static) if (planes * ohw >= PAR_MIN_WORK)
    for (long pl = 0; pl < planes; pl++) {
        long o = pl % OC;
        float *yp = y + (size_t)pl * ohw;
        const float *bp = buf + (size_t)o * ld + (size_t)(pl / OC) * ohw;
        if (b)
            for (long q = 0; q < ohw; q++) yp[q] = bp[q] + b[o];
        else
            memcpy(yp, bp, sizeof(float) * ohw);
    }
}

void sfc_conv2d_forward(const struct sfc_conv2d *c, float *y, const float *x,
                        const float *w, const float *b, int N, int H, int W,
                        float *scratch)
{
    const struct plan p = make_plan(c, H, W);
    const int OC = c->OC, ckk = p.ckk, ldy = (int)p.ohw;
    const size_t xs = (size_t)c->C * H * W, ys = (size_t)OC * p.ohw;
    if (p.group > 1 && N > 1) {
        for (int n0 = 0; n0 < N; n0 += p.group) {
            int g = SFC_MIN(p.group, N - n0);
            int cols = (int)(g * p.ohw);
            float *col = scratch, *buf = scratch + (size_t)ckk * cols;
            im2col(c, col, cols, x + n0 * xs, g, H, W, p.OW, 0, p.OH);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, cols,
                        ckk, 1.0f, w, ckk, col, cols, 0.0f, buf, cols);
            scatter(y + n0 * ys, buf, b, g, OC, p.ohw);
        }
        return;
    }
    for (int n = 0; n < N; n++) {
        float *yn = y + n * ys;
        const float *xn = x + n * xs;
        if (b) {
#pragma omp parallel for schedule(static) if (OC * p.ohw >= PAR_MIN_WORK)
            for (int o = 0; o < OC; o++)
                for (long q = 0; q < p.ohw; q++) yn[o * p.ohw + q] = b[o];
        }
        if (p.pw) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, ldy,
                        ckk, 1.0f, w, ckk, xn, ldy, b ? 1.0f : 0.0f, yn,
                        ldy);
            continue;
        }
        for (int oh0 = 0; oh0 < p.OH; oh0 += p.band) {
            int oh1 = SFC_MIN(oh0 + p.band, p.OH);
            int ncol = (oh1 - oh0) * p.OW;
            im2col(c, scratch, ncol, xn, 1, H, W, p.OW, oh0, oh1);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, ncol,
                        ckk, 1.0f, w, ckk, scratch, ncol, b ? 1.0f : 0.0f,
                        yn + (size_t)oh0 * p.OW, ldy);
        }
    }
}

/* Backward of `g` images at once through the batched layout. */
static void backward_group(const struct sfc_conv2d *c, const struct plan *p,
                           float *dx, float *dw, const float *dy,
                           const float *x, const float *w, int g, int H,
                           int W, float *scratch)
{
    const int OC = c->OC, ckk = p->ckk, cols = (int)(g * p->ohw);
    float *col = scratch, *buf = scratch + (size_t)ckk * cols;
    gather(buf, dy, g, OC, p->ohw);
    if (dw) {
        im2col(c, col, cols, x, g, H, W, p->OW, 0, p->OH);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, ckk, cols,
                    1.0f, buf, cols, col, cols, 1.0f, dw, ckk);
    }
    if (dx) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ckk, cols, OC,
                    1.0f, w, ckk, buf, cols, 0.0f, col, cols);
        col2im_add(c, dx, col, cols, g, H, W, p->OW, 0, p->OH);
    }
}

void sfc_conv2d_backward(const struct sfc_conv2d *c, float *dx, float *dw,
                         float *db, const float *dy, const float *x,
                         const float *w, int N, int H, int W, float *scratch)
{
    const struct plan p = make_plan(c, H, W);
    const int OC = c->OC, ckk = p.ckk, ldy = (int)p.ohw;
    const long ohw = p.ohw;
    const size_t xs = (size_t)c->C * H * W, ys = (size_t)OC * ohw;

    if (db) {
#pragma omp parallel for schedule(dynamic, 1) \
    if (N * OC * ohw >= PAR_MIN_WORK)
        for (int o = 0; o < OC; o++) {
            double s = 0;
            for (int n = 0; n < N; n++) {
                const float *d = dy + ((size_t)n * OC + o) * ohw;
                for (long q = 0; q < ohw; q++) s += d[q];
            }
            db[o] += (float)s;
        }
    }
    if (!dw && !dx) return;
    if (p.group > 1 && N > 1) {
        for (int n0 = 0; n0 < N; n0 += p.group)
            backward_group(c, &p, dx ? dx + n0 * xs : NULL, dw, dy + n0 * ys,
                           dw ? x + n0 * xs : NULL, w,
                           SFC_MIN(p.group, N - n0), H, W, scratch);
        return;
    }
    for (int n = 0; n < N; n++) {
        const float *dyn = dy + n * ys;
        const float *xn = dw ? x + n * xs : NULL; /* x unused without dw */
        float *dxn = dx ? dx + n * xs : NULL;
        if (p.pw) {
            if (dw)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, ckk,
                            ldy, 1.0f, dyn, ldy, xn, ldy, 1.0f, dw, ckk);
            if (dxn)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ckk, ldy,
                            OC, 1.0f, w, ckk, dyn, ldy, 1.0f, dxn, ldy);
            continue;
        }
        for (int oh0 = 0; oh0 < p.OH; oh0 += p.band) {
            int oh1 = SFC_MIN(oh0 + p.band, p.OH);
            int ncol = (oh1 - oh0) * p.OW;
            const float *dyt = dyn + (size_t)oh0 * p.OW;
            if (dw) {
                im2col(c, scratch, ncol, xn, 1, H, W, p.OW, oh0, oh1);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, ckk,
                            ncol, 1.0f, dyt, ldy, scratch, ncol, 1.0f, dw,
                            ckk);
            }
            if (dxn) {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ckk,
                            ncol, OC, 1.0f, w, ckk, dyt, ldy, 0.0f, scratch,
                            ncol);
                col2im_add(c, dxn, scratch, ncol, 1, H, W, p.OW, oh0, oh1);
            }
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
