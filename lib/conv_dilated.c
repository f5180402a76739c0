/* SPDX-License-Identifier: MIT */
/* conv_dilated.c: dilated 3x3 stride-1 convolutions with padding equal to
 * the dilation d (torchvision's conv3x3 in a dilated ResNet: DeepLab's
 * layer3 and layer4) by the undilated fast path of lib/conv.c.
 *
 * Output (i, j) of such a convolution reads the inputs (i + (kh-1)d,
 * j + (kw-1)d): the same residues i mod d, j mod d as the output itself.
 * Split x into its d*d polyphase sub-images x_ab(i', j') = x(a + d i',
 * b + d j') (a, b < d); then y_ab = conv3x3(x_ab, w) with padding 1 and
 * dilation 1, and y(a + d i', b + d j') = y_ab(i', j'). The d*d phases of
 * an image, padded with zeros to one size Hq x Wq = ceil(H/d) x ceil(W/d)
 * (a zero row or column is exactly the padding the dilated convolution
 * reads there), are stacked as d*d images, so that one call of the
 * undilated convolution (Winograd F(2x2, 3x3) for wide layers) does the
 * whole image; outputs that fall in the padding are dropped when the
 * phases are interleaved back.
 *
 * Backward: dy is gathered into the same layout, with zeros at the
 * separators (those outputs do not exist); one undilated backward gives
 * dx in the blocked layout (scattered back) and dw += sum_ab dw(x_ab,
 * dy_ab), the sum over the phases.
 * The fused epilogue (frozen BN, residual, ReLU; conv.h) is pointwise: it
 * runs on each output row as the phases are interleaved into it.
 *
 * Threads: OpenMP in the gather and the interleave, one task per output
 * row (a pure copy or a fixed per-element arithmetic), so the result does
 * not depend on the OpenMP thread count; the undilated convolution
 * guarantees the same for its part. BLAS is only called through conv.h,
 * outside OpenMP regions. */
#include <string.h>

#include "conv_dilated.h"
#include "util.h" /* defines: SFC_MAX */

#define PAR_MIN_WORK 32768L

/* The undilated convolution the phases go through. */
static struct sfc_conv2d undilated(const struct sfc_conv2d *c)
{
    return (struct sfc_conv2d){c->C, c->OC, 3, 1, 1, 1};
}

/* The blocked layout of a length-n axis: phase a (positions a + d i',
 * i' < len(a) = ceil((n - a) / d)) at [off(a), off(a) + len(a)), one zero
 * separator after each phase but the last: n + d - 1 in all. */
static int ph_len(int n, int d, int a)
{
    return (n - a + d - 1) / d;
}

static int ph_off(int n, int d, int a)
{
    int o = 0;
    for (int k = 0; k < a; k++) o += ph_len(n, d, k) + 1;
    return o;
}

int sfc_conv2d_dilated_applies(const struct sfc_conv2d *c)
{
    return c->K == 3 && c->S == 1 && c->D > 1 && c->P == c->D;
}

/* The phase path pays from about 600 outputs per map on (bench-seg
 * dilconv: one image, 2 threads, chrt; ms im2col -> phases, forward /
 * dx / dw): 256 ch, dilation 2, at 41x41 12.9 -> 10.3 / 13.5 -> 10.4 /
 * 11.4 -> 9.9, at 32x24 7.1 -> 5.9 / 7.7 -> 5.8 / 5.6 -> 5.5; 512 ch,
 * dilation 4, at 41x41 51.4 -> 33.3 / 52.1 -> 33.2 / 45.6 -> 30.8, at
 * 94x71 182 -> 119; but at 21x21 3.1 -> 3.7 / 3.7 -> 3.7 / 3.1 -> 3.5
 * (256 ch) and 12.3 -> 12.8 / 14.5 -> 12.8 / 11.1 -> 12.0 (512 ch): on
 * small maps the Winograd transforms and the separators cost about what
 * the multiplies save. */
#define MIN_PIXELS 600L

static int dil_enabled = 1;

void sfc_conv2d_dilated_enable(int on)
{
    dil_enabled = on != 0;
}

int sfc_conv2d_dilated_pays(const struct sfc_conv2d *c, int H, int W)
{
    (void)c;
    return dil_enabled && (long)H * W >= MIN_PIXELS;
}

size_t sfc_conv2d_dilated_scratch(const struct sfc_conv2d *c, int H, int W)
{
    const int Hb = H + c->D - 1, Wb = W + c->D - 1;
    const struct sfc_conv2d u = undilated(c);
    return (size_t)Hb * Wb * ((size_t)c->C + c->OC) +
           sfc_conv2d_scratch(&u, Hb, Wb);
}

/* xb (C, H + d - 1, W + d - 1): one image x (C, H, W) in the blocked
 * layout of both axes (zero separators). One task per row of xb. */
static void gather(float *xb, const float *x, int C, int H, int W, int d)
{
    const int Hb = H + d - 1, Wb = W + d - 1;
    const long tasks = (long)C * Hb;
#pragma omp parallel for schedule(static) if (tasks * Wb >= PAR_MIN_WORK)
    for (long t = 0; t < tasks; t++) {
        int r = (int)(t % Hb), ch = (int)(t / Hb);
        float *dst = xb + t * Wb;
        int a = 0, off = 0; /* the phase of row r */
        while (a < d - 1 && r >= off + ph_len(H, d, a) + 1)
            off += ph_len(H, d, a) + 1, a++;
        int i = r - off;
        if (i >= ph_len(H, d, a)) { /* a separator */
            memset(dst, 0, sizeof(float) * Wb);
            continue;
        }
        const float *xr = x + ((size_t)ch * H + a + (size_t)d * i) * W;
        float *q = dst;
        for (int b = 0; b < d; b++) {
            int n = ph_len(W, d, b);
            for (int j = 0; j < n; j++) q[j] = xr[b + d * j];
            q += n;
            if (b < d - 1) *q++ = 0.0f;
        }
    }
}

/* One output row of the epilogue (conv.h): y[i] = relu?(v[i]*scale +
 * shift + res'[i]), res' = res*rscale + rshift or res itself. y may
 * equal v. The arithmetic is that of conv.c's epilogue. */
static void epi_row(const struct sfc_conv2d_epilogue *ep, int o, float *y,
                    const float *v, const float *res, int n)
{
    const float s = ep->scale ? ep->scale[o] : 1.0f;
    const float t = ep->shift ? ep->shift[o] : 0.0f;
    const float rs = ep->rscale ? ep->rscale[o] : 1.0f;
    const float rt = ep->rscale && ep->rshift ? ep->rshift[o] : 0.0f;
    const int relu = ep->relu;
    if (res && ep->rscale) {
        for (int i = 0; i < n; i++) {
            float u = (v[i] * s + t) + (res[i] * rs + rt);
            y[i] = relu && !(u > 0.0f) ? 0.0f : u;
        }
    } else if (res) {
        for (int i = 0; i < n; i++) {
            float u = (v[i] * s + t) + res[i];
            y[i] = relu && !(u > 0.0f) ? 0.0f : u;
        }
    } else {
        for (int i = 0; i < n; i++) {
            float u = v[i] * s + t;
            y[i] = relu && !(u > 0.0f) ? 0.0f : u;
        }
    }
}

/* y (OC, H, W) of one image from yb (OC, H + d - 1, W + d - 1), the
 * output in the blocked layout: v = row oh of y gathered back; then pre =
 * v, y += v (acc), y = the epilogue of v (ep), or y = v. ep's res and pre
 * are (OC, H, W) of this image. One task per output row. */
static void interleave(float *y, const float *yb, int OC, int H, int W,
                       int d, const struct sfc_conv2d_epilogue *ep,
                       const float *res, float *pre, int acc)
{
    const int Hb = H + d - 1, Wb = W + d - 1;
    const long tasks = (long)OC * H;
#pragma omp parallel for schedule(static) if (tasks * W >= PAR_MIN_WORK)
    for (long t = 0; t < tasks; t++) {
        int oh = (int)(t % H), o = (int)(t / H);
        int rb = ph_off(H, d, oh % d) + oh / d;
        size_t r0 = ((size_t)o * H + oh) * W;
        const float *src = yb + ((size_t)o * Hb + rb) * Wb;
        float *yr = y + r0;
        if (acc) {
            for (int b = 0; b < d; b++) {
                int n = ph_len(W, d, b);
                for (int j = 0; j < n; j++) yr[b + d * j] += src[j];
                src += n + 1;
            }
            continue;
        }
        float *v = pre ? pre + r0 : yr;
        for (int b = 0; b < d; b++) {
            int n = ph_len(W, d, b);
            for (int j = 0; j < n; j++) v[b + d * j] = src[j];
            src += n + 1;
        }
        if (ep) epi_row(ep, o, yr, v, res ? res + r0 : NULL, W);
    }
}

void sfc_conv2d_dilated_forward(const struct sfc_conv2d *c, float *y,
                                const float *x, const float *w,
                                const float *b, int N, int H, int W,
                                float *scratch,
                                const struct sfc_conv2d_epilogue *ep,
                                int acc)
{
    const int d = c->D, Hb = H + d - 1, Wb = W + d - 1;
    const struct sfc_conv2d u = undilated(c);
    const size_t pl = (size_t)Hb * Wb;
    float *xb = scratch, *yb = xb + pl * c->C, *inner = yb + pl * c->OC;
    const size_t xs = (size_t)c->C * H * W, ys = (size_t)c->OC * H * W;
    float *pre = ep ? ep->pre : NULL;
    const float *res = ep ? ep->res : NULL;
    for (int n = 0; n < N; n++) {
        gather(xb, x + n * xs, c->C, H, W, d);
        sfc_conv2d_forward(&u, yb, xb, w, b, 1, Hb, Wb, inner);
        interleave(y + n * ys, yb, c->OC, H, W, d, ep,
                   res ? res + n * ys : NULL, pre ? pre + n * ys : NULL, acc);
    }
}

void sfc_conv2d_dilated_backward(const struct sfc_conv2d *c, float *dx,
                                 float *dw, const float *dy, const float *x,
                                 const float *w, int N, int H, int W,
                                 float *scratch, int set)
{
    const int d = c->D, Hb = H + d - 1, Wb = W + d - 1;
    const struct sfc_conv2d u = undilated(c);
    const size_t pl = (size_t)Hb * Wb;
    float *xb = scratch, *dyb = xb + pl * c->C, *inner = dyb + pl * c->OC;
    const size_t xs = (size_t)c->C * H * W, ys = (size_t)c->OC * H * W;
    for (int n = 0; n < N; n++) {
        gather(dyb, dy + n * ys, c->OC, H, W, d);
        if (dw) {
            gather(xb, x + n * xs, c->C, H, W, d);
            sfc_conv2d_backward(&u, NULL, dw, NULL, dyb, xb, w, 1, Hb, Wb,
                                inner);
        }
        if (dx) { /* into xb, no longer needed */
            sfc_conv2d_backward_ex(&u, xb, NULL, NULL, dyb, NULL, w, 1, Hb,
                                   Wb, inner, SFC_CONV2D_DX_SET);
            interleave(dx + n * xs, xb, c->C, H, W, d, NULL, NULL, NULL,
                       !set);
        }
    }
}
