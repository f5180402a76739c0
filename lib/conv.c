/* SPDX-License-Identifier: MIT */
/* conv.c: 2-D convolution forward and backward, PyTorch nn.Conv2d semantics
 * (groups 1, square kernel, same stride/padding/dilation in both dims).
 *
 * Lowering: im2col into scratch (C*K*K, OH*OW), then y_n (OC, OH*OW) =
 * w (OC, C*K*K) * col by cblas_sgemm (row-major). Two paths, chosen from
 * the shape (struct plan):
 *  - one image at a time, in bands of output columns (whole rows when
 *    there is a column matrix) that stay in cache from im2col through
 *    sgemm to the epilogue; a 1x1 stride-1 unpadded convolution needs no
 *    im2col (x_n is the column matrix); a strided 1x1 goes through im2col,
 *    which then is a plain subsample;
 *  - small feature maps (OH*OW < MIN_COLS): the columns of several images
 *    side by side in one wider sgemm, the product reordered into NCHW.
 * A band is cut into pieces (output columns of a 1x1, whole output rows
 * otherwise) that each go through im2col, sgemm and the optional
 * epilogue (frozen BN, residual, ReLU; conv.h) on one thread, while they
 * are in its cache.
 * im2col/col2im of a strided convolution work on input rows split into
 * their S phases, so that every copy is contiguous (im2col_phased).
 * Backward: dw += dy col^T (beta 1); dx of a stride-1 convolution is the
 * forward convolution of dy with the flipped, transposed kernel (no
 * col2im; the sgemm's inner dimension is OC*K*K rather than OC), of a
 * 1x1 unpadded one w^T dy straight into dx, otherwise dcol = w^T dy
 * scattered back by col2im; db in double.
 *
 * Threads: OpenMP only. During a convolution OpenBLAS is switched to one
 * thread and every product is cut, from its shape alone, into pieces of
 * columns (or rows) that the OpenMP threads multiply with single-threaded
 * sgemm calls (psgemm; the 16 Winograd products are the pieces there), so
 * every output element comes from the same single-threaded sgemm call
 * whatever the thread count. im2col/col2im/bias/db/epilogues: each thread
 * owns whole output rows or channels, summed in a fixed order. Results
 * are thus independent of the thread count.
 *
 * Why OpenMP drives the sgemm calls here (the project's rule is otherwise
 * never to call BLAS inside an OpenMP region): Debian's OpenBLAS is the
 * pthread build, whose worker threads spin for ~2^28 cycles (0.1 s)
 * after every threaded call; any OpenMP region between two sgemm calls
 * then shares its core with a spinning OpenBLAS worker. Measured on
 * ResNet-50 forward+backward at 512x512 (2 cores, chrt): the BN/ReLU
 * backward passes took 123 ms with 1 and with 2 threads (no speed-up at
 * all), 75 ms with OPENBLAS_THREAD_TIMEOUT=4 (workers sleep at once, but
 * then every sgemm pays their wake-up: the convolutions got slower).
 * With OpenBLAS at one thread no worker spins. Calling the pthread build
 * from several threads at once is safe when it runs one thread: its gemm
 * then computes in the calling thread (interface/gemm.c, nthreads == 1)
 * with a buffer from blas_memory_alloc, which takes a lock (or a
 * thread-local table) in SMP builds, and openblas_set_num_threads(1) only
 * sets blas_cpu_number (0.3.21, NO_AFFINITY as Debian builds it; checked
 * in driver/others/blas_server.c and memory.c). The switch is made only
 * for the pthread build (openblas_get_parallel() == 1) and only outside
 * OpenMP regions; the OpenMP build runs sgemm single-threaded inside
 * OpenMP regions by itself, the serial build has nothing to switch.
 * test-nn checks the pieces against the naive convolution and against
 * one whole sgemm, and the results for 1 and 2 (and 3) threads. */
#include <string.h>

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "conv.h"
#include "conv_dilated.h"
#include "err.h"
#include "util.h" /* defines: SFC_MIN */

/* Parallelise an OpenMP loop only when there is enough work to pay. */
#define PAR_MIN_WORK 32768L
/* sgemm runs near its peak from a few hundred columns on (per thread);
 * thinner products (small feature maps: layer4 of a 256x256 or toy-sized
 * input) are widened by putting the columns of several images side by
 * side. (Single-threaded, layer4's 3x3 at 6x6, N 20: 66 GF/s one image at
 * a time, 87 batched; 256 to 2048 columns all within noise.) */
#define MIN_COLS 512L
/* One image's output is produced in bands of columns (whole output rows
 * when there is a column matrix) so that what a band touches stays in
 * cache between the steps that share it: the column matrix between
 * im2col and sgemm (about TILE_TARGET floats: conv1 and layer1 at 512x512
 * would otherwise stream ~38 MB through memory per image), and the
 * output band (about OUT_TARGET floats) between sgemm and the fused
 * epilogue. Never fewer than MIN_COLS columns per band. (ResNet-50
 * forward at 512x512, 2 threads: output bands of 1M floats (L3) beat
 * 256K (L2; twice the sgemm calls and OpenMP regions) by ~5 %, and
 * the epilogue in parallel beats it on one thread. With the pieces below,
 * forward+backward at 2 threads: bands of 256K, 1M and 4M floats and at
 * most 2, 4 or 8 pieces all within the load's noise, 2026-11-24.) */
#define TILE_TARGET (1L << 20)
#define OUT_TARGET (1L << 20)

/* ------------------------------------------------------------------------
 * Products (see Threads above). A product of at least PSGEMM_MIN
 * multiply-adds is cut into an even number (at most PIECES_MAX) of
 * pieces along the longer of its rows and columns, each piece a multiple
 * of 16 wide and at least PIECE_COLS columns or PIECE_ROWS rows (two
 * pieces when there is room for no more); one thread multiplies each
 * piece. (The inner dimension is never cut: no partial sums.) */
#define PSGEMM_MIN (1L << 21)
#define PIECES_MAX 8
#define PIECE_COLS 256
#define PIECE_ROWS 64

/* Switch OpenBLAS to one thread for the duration of a convolution (pthread
 * build, outside OpenMP regions); returns what to restore. */
static int blas_solo_begin(void)
{
#ifdef _OPENMP
    if (omp_in_parallel()) return 0;
#endif
    if (openblas_get_parallel() != 1) return 0;
    int n = openblas_get_num_threads();
    if (n > 1) openblas_set_num_threads(1);
    return n;
}

static void blas_solo_end(int n)
{
    if (n > 1) openblas_set_num_threads(n);
}

/* Pieces of a dimension of length dim: an even number (or 1), at most
 * PIECES_MAX, each at least unit long and a multiple of align (but two
 * pieces whenever dim holds two aligned ones); *step the
 * length of every piece but the last. */
static int pieces_of(long dim, long unit, long align, long *step)
{
    long np = SFC_MIN((long)PIECES_MAX, dim / unit);
    if (np > 1) np &= ~1L;
    if (np < 2) np = dim >= 2 * align ? 2 : 1;
    long st = (dim + np - 1) / np;
    st = (st + align - 1) / align * align;
    *step = st;
    return (int)((dim + st - 1) / st);
}

/* cblas_sgemm (row major) cut into pieces run by the OpenMP threads. */
static void psgemm(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int M,
                   int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc)
{
    int alongN = N >= M;
    long step = alongN ? N : M;
    int np = 1;
    if ((double)M * N * K >= (double)PSGEMM_MIN)
        np = pieces_of(alongN ? N : M, alongN ? PIECE_COLS : PIECE_ROWS, 16,
                       &step);
    if (np == 1) {
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb,
                    beta, C, ldc);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int i = 0; i < np; i++) {
        long o = i * step;
        if (alongN) {
            int n = (int)SFC_MIN(step, N - o);
            const float *b = tb == CblasTrans ? B + o * ldb : B + o;
            cblas_sgemm(CblasRowMajor, ta, tb, M, n, K, alpha, A, lda, b, ldb,
                        beta, C + o, ldc);
        } else {
            int m = (int)SFC_MIN(step, M - o);
            const float *a = ta == CblasTrans ? A + o : A + o * lda;
            cblas_sgemm(CblasRowMajor, ta, tb, m, N, K, alpha, a, lda, B, ldb,
                        beta, C + o * ldc, ldc);
        }
    }
}

/* How one convolution is lowered; depends on the shape only (not on N or
 * the thread count), so results are reproducible. */
struct plan {
    int OH, OW;
    int ckk;   /* C*K*K: rows of the column matrix */
    long ohw;  /* OH*OW */
    int pw;    /* 1x1 stride 1 unpadded: x itself is the column matrix */
    long bcols; /* output columns per band (single-image path; a multiple
                   of OW unless pw) */
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
    p.bcols = p.ohw;
    p.group = 1;
    if (p.ohw > 0 && p.ohw < MIN_COLS) {
        p.group = (int)((MIN_COLS + p.ohw - 1) / p.ohw);
        return p;
    }
    long cols = OUT_TARGET / SFC_MAX(c->OC, 1);
    if (!p.pw) cols = SFC_MIN(cols, TILE_TARGET / p.ckk);
    if (cols < MIN_COLS) cols = MIN_COLS;
    if (!p.pw) cols = (cols + p.OW - 1) / p.OW * p.OW;
    if (cols < p.ohw) p.bcols = cols;
    return p;
}

/* Backward data of a stride-1 convolution as the forward convolution of
 * dy with the flipped, transposed kernel (padding D(K-1) - P): no col2im,
 * and an sgemm with the long C*K*K inner dimension instead of OC. Needs
 * that padding to be >= 0; 1x1 unpadded convolutions are a plain sgemm
 * already. */
static int transposed_dx(const struct sfc_conv2d *c)
{
    return c->S == 1 && c->K > 1 && c->P <= c->D * (c->K - 1);
}

static struct sfc_conv2d transposed(const struct sfc_conv2d *c)
{
    return (struct sfc_conv2d){c->OC, c->C, c->K, 1,
                               c->D * (c->K - 1) - c->P, c->D};
}

/* Winograd F(2x2, 3x3) for 3x3 stride-1 undilated convolutions (below). */
static int wino_ok(const struct sfc_conv2d *c);
static int wino_applies(const struct sfc_conv2d *c);
static size_t wino_scratch(const struct sfc_conv2d *c, int H, int W);
/* Dilated 3x3 stride-1 convolutions with padding = dilation by the
 * Winograd path on their polyphase sub-images (conv_dilated.c). */
static int dil_ok(const struct sfc_conv2d *c, int H, int W);

/* Scratch of the forward. Single-image path: the column band (ckk, bcols).
 * Batched path: the columns of `group` images (ckk, group*ohw), then a
 * buffer (OC, group*ohw) for the product (forward) or the gathered dy
 * (backward). */
static size_t fwd_scratch(const struct sfc_conv2d *c, int H, int W)
{
    struct plan p = make_plan(c, H, W);
    size_t single = p.pw ? 0 : (size_t)p.ckk * p.bcols;
    size_t batched = p.group > 1
                         ? ((size_t)p.ckk + c->OC) * p.group * p.ohw
                         : 0;
    size_t s = single > batched ? single : batched;
    /* either path, whatever sfc_conv2d_set_algo says */
    if (wino_applies(c)) s = SFC_MAX(s, wino_scratch(c, H, W));
    if (sfc_conv2d_dilated_applies(c))
        s = SFC_MAX(s, sfc_conv2d_dilated_scratch(c, H, W));
    return s;
}

size_t sfc_conv2d_scratch(const struct sfc_conv2d *c, int H, int W)
{
    size_t s = fwd_scratch(c, H, W);
    if (transposed_dx(c)) {
        struct sfc_conv2d t = transposed(c);
        int OH = sfc_conv2d_outsize(H, c->K, c->S, c->P, c->D);
        int OW = sfc_conv2d_outsize(W, c->K, c->S, c->P, c->D);
        size_t b = (size_t)c->C * c->OC * c->K * c->K +
                   fwd_scratch(&t, OH, OW);
        s = SFC_MAX(s, b);
    }
    return s;
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

/* One output row of the epilogue: y[i] = relu?(src[i]*scale + shift +
 * res'[i]) with res' = res*rscale + rshift (or res itself), i < n. y may
 * equal src. The arithmetic is that of frozen BN, residual sum and ReLU
 * done one after the other. */
static void epi_row(const struct sfc_conv2d_epilogue *ep, int o, float *y,
                    const float *src, const float *res, long n)
{
    const float s = ep->scale ? ep->scale[o] : 1.0f;
    const float t = ep->shift ? ep->shift[o] : 0.0f;
    if (res && ep->rscale) {
        const float rs = ep->rscale[o];
        const float rt = ep->rshift ? ep->rshift[o] : 0.0f;
        if (ep->relu)
#pragma omp simd
            for (long i = 0; i < n; i++) {
                float v = (src[i] * s + t) + (res[i] * rs + rt);
                y[i] = v > 0.0f ? v : 0.0f;
            }
        else
#pragma omp simd
            for (long i = 0; i < n; i++)
                y[i] = (src[i] * s + t) + (res[i] * rs + rt);
    } else if (res) {
        if (ep->relu)
#pragma omp simd
            for (long i = 0; i < n; i++) {
                float v = (src[i] * s + t) + res[i];
                y[i] = v > 0.0f ? v : 0.0f;
            }
        else
#pragma omp simd
            for (long i = 0; i < n; i++) y[i] = (src[i] * s + t) + res[i];
    } else {
        if (ep->relu)
#pragma omp simd
            for (long i = 0; i < n; i++) {
                float v = src[i] * s + t;
                y[i] = v > 0.0f ? v : 0.0f;
            }
        else
#pragma omp simd
            for (long i = 0; i < n; i++) y[i] = src[i] * s + t;
    }
}

/* From the batched product buf (OC, nimg*ohw): v = buf + b (b may be
 * NULL) per plane of y (nimg, OC, ohw); pre (if not NULL) = v; then y += v
 * (acc), or y = the epilogue of v (ep), or y = v. */
static void scatter(float *y, const float *buf, const float *b, int nimg,
                    int OC, long ohw, const struct sfc_conv2d_epilogue *ep,
                    const float *res, float *pre, int acc)
{
    const long planes = (long)nimg * OC, ld = nimg * ohw;
#pragma omp parallel for schedule(static) if (planes * ohw >= PAR_MIN_WORK)
    for (long pl = 0; pl < planes; pl++) {
        int o = (int)(pl % OC);
        float *yp = y + (size_t)pl * ohw;
        const float *bp = buf + (size_t)o * ld + (size_t)(pl / OC) * ohw;
        float *v = pre ? pre + (size_t)pl * ohw : NULL;
        if (b) {
            if (!v) v = yp;
            for (long q = 0; q < ohw; q++) v[q] = bp[q] + b[o];
        } else if (v) {
            memcpy(v, bp, sizeof(float) * ohw);
        }
        const float *src = v ? v : bp;
        if (acc)
            for (long q = 0; q < ohw; q++) yp[q] += src[q];
        else if (ep)
            epi_row(ep, o, yp, src, res ? res + (size_t)pl * ohw : NULL, ohw);
        else if (src != yp)
            memcpy(yp, src, sizeof(float) * ohw);
    }
}

/* ------------------------------------------------------------------------
 * Winograd F(2x2, 3x3) for 3x3 stride-1 undilated convolutions (Lavin and
 * Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): each
 * 2x2 output tile is A^T [(G g G^T) . (B^T d B)] A over its 4x4 input
 * patch d, so the products are 16 sgemms U[xi] (OC, C) * V[xi] (C, T)
 * over the T tiles of a band, with 16 multiplies per 4 outputs instead
 * of 36. Matrices (rows):
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 * The weight gradient is done in the same domain: dU[xi] = dM[xi] V[xi]^T
 * with dM = A dy A^T per tile, then dw += G^T dU G.
 * Tiles are numbered over the global tile rows of all images (image n,
 * tile row i is row n*th + i), so small maps batch several images per
 * sgemm; a band is a range of global tile rows, sized from the shape
 * only. Every transform is one task per (channel, tile row) with a fixed
 * arithmetic: the result does not depend on the OpenMP thread count. */

#define WA 4     /* alpha: input tile side */
#define WX 16    /* alpha^2: number of sgemms */
#define WCHUNK 64 /* tiles of a tile row transformed at once */
/* The 16 matrices of U, V and M lie WSTRIDE(size) floats apart: a
 * power-of-two distance would put the 16 streams of a transform into the
 * same cache sets. */
#define WSTRIDE(n) ((size_t)(n) + 16)
/* Floats of V + M per band (both stay in L3), and the fewest tiles per
 * band (thinner sgemms run well below their peak). */
#define WINO_TARGET (1L << 21)
#define WINO_MIN_TILES 256L

/* Winograd pays from 128 channels in and out on (a 3x3 over 64 channels
 * at 128x128: im2col 7.4 ms, Winograd 8.4; over 128 at 64x64: 7.0 and
 * 5.3; 2 threads, native OpenBLAS kernel). */
#define WINO_MIN_CH 128

static int conv_algo = SFC_CONV2D_AUTO;

void sfc_conv2d_set_algo(int algo)
{
    SFC_ASSERT(algo >= SFC_CONV2D_AUTO && algo <= SFC_CONV2D_WINOGRAD);
    conv_algo = algo;
}

static int wino_applies(const struct sfc_conv2d *c)
{
    return c->K == 3 && c->S == 1 && c->D == 1;
}

static int wino_ok(const struct sfc_conv2d *c)
{
    if (!wino_applies(c) || conv_algo == SFC_CONV2D_IM2COL) return 0;
    return conv_algo == SFC_CONV2D_WINOGRAD ||
           (c->C >= WINO_MIN_CH && c->OC >= WINO_MIN_CH);
}

static int dil_ok(const struct sfc_conv2d *c, int H, int W)
{
    const struct sfc_conv2d u = {c->C, c->OC, 3, 1, 1, 1};
    return sfc_conv2d_dilated_applies(c) && wino_ok(&u) &&
           (conv_algo == SFC_CONV2D_WINOGRAD ||
            sfc_conv2d_dilated_pays(c, H, W));
}

struct wplan {
    int OH, OW, th, tw; /* output size, tile rows and columns per image */
    int rows;           /* global tile rows per band */
};

static struct wplan wino_plan(const struct sfc_conv2d *c, int H, int W)
{
    struct wplan p;
    p.OH = sfc_conv2d_outsize(H, 3, 1, c->P, 1);
    p.OW = sfc_conv2d_outsize(W, 3, 1, c->P, 1);
    p.th = (p.OH + 1) / 2;
    p.tw = (p.OW + 1) / 2;
    long tiles = WINO_TARGET / ((long)WX * (c->C + c->OC));
    if (tiles < WINO_MIN_TILES) tiles = WINO_MIN_TILES;
    p.rows = (int)SFC_MAX(1, (tiles + p.tw - 1) / p.tw);
    return p;
}

/* Scratch: U (or dU) (WX, OC, C), V (WX, C, T), M (or dM) (WX, OC, T)
 * for the tiles T of a full band. */
static size_t wino_scratch(const struct sfc_conv2d *c, int H, int W)
{
    struct wplan p = wino_plan(c, H, W);
    size_t T = (size_t)p.rows * p.tw;
    return (size_t)WX * (WSTRIDE((size_t)c->OC * c->C) +
                         WSTRIDE((size_t)c->C * T) +
                         WSTRIDE((size_t)c->OC * T));
}

/* The weight transform as one matrix: U[xi] = sum_k GG[xi][k] g[k] with
 * GG = G (x) G (16 x 9), xi = 4r + s, k = 3a + b: GG = G[r][a] G[s][b]. */
static void wino_gg(float gg[WX * 9])
{
    static const float G[4][3] = {{1, 0, 0},
                                  {0.5f, 0.5f, 0.5f},
                                  {0.5f, -0.5f, 0.5f},
                                  {0, 0, 1}};
    for (int r = 0; r < 4; r++)
        for (int s = 0; s < 4; s++)
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++)
                    gg[(r * 4 + s) * 9 + a * 3 + b] = G[r][a] * G[s][b];
}

/* U[xi] (OC, C) = G g G^T of every 3x3 kernel g of w (OC, C, 3, 3), one
 * sgemm: U (16, OC*C) = GG (16, 9) w^T. */
static void wino_weights(float *U, const float *w, int OC, int C)
{
    float gg[WX * 9];
    wino_gg(gg);
    const int n = OC * C;
    psgemm(CblasNoTrans, CblasTrans, WX, n, 9, 1.0f, gg,
                9, w, 9, 0.0f, U, (int)WSTRIDE(n));
}

/* dw (OC*C, 9) += dU^T (OC*C, 16) GG (16, 9), i.e. dw += G^T dU G. */
static void wino_weights_grad(float *dw, const float *dU, int OC, int C)
{
    float gg[WX * 9];
    wino_gg(gg);
    const int n = OC * C;
    psgemm(CblasTrans, CblasNoTrans, n, 9, WX, 1.0f, dU,
                (int)WSTRIDE(n), gg, 9, 1.0f, dw, 9);
}

/* Row q in [0, len) of a padded input row: xr[iw0 + q], 0 outside [0, W)
 * (xr NULL: a padding row); split into even (e[k] = q 2k) and odd (o[k]
 * = q 2k+1) positions, len even. */
static void wino_load_row(float *e, float *o, const float *xr, int iw0,
                          int len, int W)
{
    float d[2 * WCHUNK + 2];
    if (!xr) {
        memset(e, 0, sizeof(float) * len / 2);
        memset(o, 0, sizeof(float) * len / 2);
        return;
    }
    int lo = SFC_MAX(0, -iw0), hi = SFC_MIN(len, W - iw0);
    if (hi < lo) hi = lo;
    for (int q = 0; q < lo; q++) d[q] = 0;
    if (hi > lo) memcpy(d + lo, xr + iw0 + lo, sizeof(float) * (hi - lo));
    for (int q = hi; q < len; q++) d[q] = 0;
#pragma omp simd
    for (int k = 0; k < len / 2; k++) {
        e[k] = d[2 * k];
        o[k] = d[2 * k + 1];
    }
}

/* V (WX, C, T) = B^T d B of the tiles of global tile rows [g0, g1) of
 * x (N, C, H, W); tile (g, j) is column (g - g0)*tw + j. With tile j's
 * columns q = 2j..2j+3 of a row t of B^T d, as even/odd halves te, to:
 * (t B)[0..3] = te[j] - te[j+1], to[j] + te[j+1], te[j+1] - to[j],
 * to[j] - to[j+1]. */
static void wino_input(const struct sfc_conv2d *c, const struct wplan *p,
                       float *V, long T, const float *x, int H, int W,
                       int g0, int g1)
{
    const int C = c->C, P = c->P, tw = p->tw;
    const long tasks = (long)C * (g1 - g0);
    const size_t st = WSTRIDE((size_t)C * T);
#pragma omp parallel for schedule(static) if (tasks * tw * 32 >= PAR_MIN_WORK)
    for (long tk = 0; tk < tasks; tk++) {
        int ch = (int)(tk % C), g = g0 + (int)(tk / C);
        int n = g / p->th, i = g % p->th;
        const float *xc = x + ((size_t)n * C + ch) * H * W;
        float *v = V + (size_t)ch * T + (size_t)(g - g0) * tw;
        for (int j0 = 0; j0 < tw; j0 += WCHUNK) {
            int nj = SFC_MIN(WCHUNK, tw - j0), half = nj + 1;
            float de[WA][WCHUNK + 1], dd[WA][WCHUNK + 1];
            for (int r = 0; r < WA; r++) {
                int ih = 2 * i - P + r;
                wino_load_row(de[r], dd[r],
                              ih >= 0 && ih < H ? xc + (size_t)ih * W : NULL,
                              2 * j0 - P, 2 * half, W);
            }
            for (int r = 0; r < WA; r++) {
                /* row r of B^T d, even and odd halves */
                float te[WCHUNK + 1], to[WCHUNK + 1];
                const int a = r == 0 ? 0 : r == 3 ? 1 : 1; /* + row */
                const int b = r == 0 ? 2 : r == 3 ? 3 : 2; /* +/- row */
                const float sa = r == 2 ? -1.0f : 1.0f;
                const float sb = r == 1 ? 1.0f : r == 2 ? 1.0f : -1.0f;
#pragma omp simd
                for (int k = 0; k < half; k++) {
                    te[k] = sa * de[a][k] + sb * de[b][k];
                    to[k] = sa * dd[a][k] + sb * dd[b][k];
                }
                float *v0 = v + (size_t)(r * 4) * st + j0, *v1 = v0 + st,
                      *v2 = v1 + st, *v3 = v2 + st;
#pragma omp simd
                for (int j = 0; j < nj; j++) {
                    v0[j] = te[j] - te[j + 1];
                    v1[j] = to[j] + te[j + 1];
                    v2[j] = te[j + 1] - to[j];
                    v3[j] = to[j] - to[j + 1];
                }
            }
        }
    }
}

/* dM (WX, OC, T) = A dy A^T of the 2x2 tiles of dy (N, OC, OH, OW) in
 * global tile rows [g0, g1) (outside the map: 0). Per tile row a of dy
 * (p, q its two values): e = (p, p + q, p - q, -q); dM rows = e0, e0 + e1,
 * e0 - e1, -e1. */
static void wino_dy(const struct sfc_conv2d *c, const struct wplan *p,
                    float *dM, long T, const float *dy, int g0, int g1)
{
    const int OC = c->OC, tw = p->tw, OH = p->OH, OW = p->OW;
    const long tasks = (long)OC * (g1 - g0);
    const size_t st = WSTRIDE((size_t)OC * T);
#pragma omp parallel for schedule(static) if (tasks * tw * 32 >= PAR_MIN_WORK)
    for (long tk = 0; tk < tasks; tk++) {
        int o = (int)(tk % OC), g = g0 + (int)(tk / OC);
        int n = g / p->th, i = g % p->th;
        const float *yc = dy + ((size_t)n * OC + o) * OH * OW;
        float *m = dM + (size_t)o * T + (size_t)(g - g0) * tw;
        for (int j0 = 0; j0 < tw; j0 += WCHUNK) {
            int nj = SFC_MIN(WCHUNK, tw - j0);
            float pe[2][WCHUNK + 1], po[2][WCHUNK + 1];
            for (int a = 0; a < 2; a++) {
                int oh = 2 * i + a;
                wino_load_row(pe[a], po[a],
                              oh < OH ? yc + (size_t)oh * OW : NULL, 2 * j0,
                              2 * nj, OW);
            }
            float *m0 = m + j0;
#pragma omp simd
            for (int j = 0; j < nj; j++) {
                float p0 = pe[0][j], p1 = po[0][j];
                float q0 = pe[1][j], q1 = po[1][j];
                float e0[4] = {p0, p0 + p1, p0 - p1, -p1};
                float e1[4] = {q0, q0 + q1, q0 - q1, -q1};
                for (int s = 0; s < 4; s++) {
                    m0[(size_t)(0 + s) * st + j] = e0[s];
                    m0[(size_t)(4 + s) * st + j] = e0[s] + e1[s];
                    m0[(size_t)(8 + s) * st + j] = e0[s] - e1[s];
                    m0[(size_t)(12 + s) * st + j] = -e1[s];
                }
            }
        }
    }
}

/* y of global tile rows [g0, g1) from M (WX, OC, T): v = A^T M A + b
 * (b may be NULL); then as scatter(): pre = v, y += v (acc), y = the
 * epilogue of v (ep) or y = v. One task per (channel, tile row) writes
 * its two output rows and runs the epilogue on them. */
static void wino_output(const struct sfc_conv2d *c, const struct wplan *p,
                        float *y, const float *M, long T, const float *b,
                        const struct sfc_conv2d_epilogue *ep, int acc,
                        int g0, int g1)
{
    const int OC = c->OC, tw = p->tw, OH = p->OH, OW = p->OW;
    const long tasks = (long)OC * (g1 - g0);
    const size_t st = WSTRIDE((size_t)OC * T);
    float *pre = ep ? ep->pre : NULL;
    const float *res = ep ? ep->res : NULL;
#pragma omp parallel for schedule(static) if (tasks * tw * 32 >= PAR_MIN_WORK)
    for (long tk = 0; tk < tasks; tk++) {
        int o = (int)(tk % OC), g = g0 + (int)(tk / OC);
        int n = g / p->th, i = g % p->th;
        int nr = SFC_MIN(2, OH - 2 * i);
        size_t plane = ((size_t)n * OC + o) * OH * OW;
        size_t r0 = plane + (size_t)(2 * i) * OW;
        float *yr = y + r0, *dst = pre ? pre + r0 : yr;
        const float *m = M + (size_t)o * T + (size_t)(g - g0) * tw;
        const float bo = b ? b[o] : 0.0f;
        for (int j0 = 0; j0 < tw; j0 += WCHUNK) {
            int nj = SFC_MIN(WCHUNK, tw - j0);
            float out[2][2 * WCHUNK];
            const float *mj = m + j0;
#pragma omp simd
            for (int j = 0; j < nj; j++) {
                float u0[4], u1[4];
                for (int r = 0; r < 4; r++) {
                    const float *mr = mj + (size_t)(r * 4) * st + j;
                    float a0 = mr[0], a1 = mr[st], a2 = mr[2 * st],
                          a3 = mr[3 * st];
                    u0[r] = a0 + a1 + a2;
                    u1[r] = a1 - a2 - a3;
                }
                out[0][2 * j] = u0[0] + u0[1] + u0[2] + bo;
                out[0][2 * j + 1] = u1[0] + u1[1] + u1[2] + bo;
                out[1][2 * j] = u0[1] - u0[2] - u0[3] + bo;
                out[1][2 * j + 1] = u1[1] - u1[2] - u1[3] + bo;
            }
            int w0 = 2 * j0, nw = SFC_MIN(2 * nj, OW - w0);
            for (int a = 0; a < nr; a++) {
                float *d = dst + (size_t)a * OW + w0;
                if (acc)
                    for (int q = 0; q < nw; q++) d[q] += out[a][q];
                else
                    memcpy(d, out[a], sizeof(float) * nw);
            }
        }
        if (ep)
            for (int a = 0; a < nr; a++)
                epi_row(ep, o, yr + (size_t)a * OW, dst + (size_t)a * OW,
                        res ? res + r0 + (size_t)a * OW : NULL, OW);
    }
}

/* y = conv(x) + b (then ep), or y += conv(x) (acc), by Winograd. flip:
 * c is the transposed convolution of dx (transposed()) and w the weights
 * (c->C, c->OC, 3, 3) of the original one: the kernel flipped in both
 * axes has G J g J G^T = S (G g G^T) S with S swapping rows 0 and 3, so
 * its U[r][s] is the original's U[S r][S s] transposed. */
static void wino_forward(const struct sfc_conv2d *c, float *y,
                         const float *x, const float *w, const float *b,
                         int N, int H, int W, float *scratch,
                         const struct sfc_conv2d_epilogue *ep, int acc,
                         int flip)
{
    const struct wplan p = wino_plan(c, H, W);
    const int C = c->C, OC = c->OC;
    const long Tmax = (long)p.rows * p.tw;
    float *U = scratch, *V = U + (size_t)WX * WSTRIDE((size_t)OC * C);
    float *M = V + (size_t)WX * WSTRIDE((size_t)C * Tmax);
    if (flip)
        wino_weights(U, w, C, OC);
    else
        wino_weights(U, w, OC, C);
    const int G = N * p.th;
    for (int g0 = 0; g0 < G; g0 += p.rows) {
        int g1 = SFC_MIN(G, g0 + p.rows);
        long T = (long)(g1 - g0) * p.tw;
        wino_input(c, &p, V, T, x, H, W, g0, g1);
        /* the 16 products are the pieces (see Threads) */
#pragma omp parallel for schedule(static) \
    if ((double)OC * C * T * WX >= (double)PSGEMM_MIN)
        for (int xi = 0; xi < WX; xi++) {
            int r = xi / 4, q = xi % 4, fx = xi;
            if (flip) fx = (r == 0 ? 3 : r == 3 ? 0 : r) * 4 +
                           (q == 0 ? 3 : q == 3 ? 0 : q);
            cblas_sgemm(CblasRowMajor, flip ? CblasTrans : CblasNoTrans,
                        CblasNoTrans, OC, (int)T, C, 1.0f,
                        U + (size_t)fx * WSTRIDE((size_t)OC * C),
                        flip ? OC : C,
                        V + (size_t)xi * WSTRIDE((size_t)C * T), (int)T, 0.0f,
                        M + (size_t)xi * WSTRIDE((size_t)OC * T), (int)T);
        }
        wino_output(c, &p, y, M, T, b, ep, acc, g0, g1);
    }
}

/* dw += dL/dw by Winograd (x the forward input, dy the output gradient). */
static void wino_dw(const struct sfc_conv2d *c, float *dw, const float *dy,
                    const float *x, int N, int H, int W, float *scratch)
{
    const struct wplan p = wino_plan(c, H, W);
    const int C = c->C, OC = c->OC;
    const long Tmax = (long)p.rows * p.tw;
    float *dU = scratch, *V = dU + (size_t)WX * WSTRIDE((size_t)OC * C);
    float *dM = V + (size_t)WX * WSTRIDE((size_t)C * Tmax);
    const int G = N * p.th;
    for (int g0 = 0; g0 < G; g0 += p.rows) {
        int g1 = SFC_MIN(G, g0 + p.rows);
        long T = (long)(g1 - g0) * p.tw;
        wino_input(c, &p, V, T, x, H, W, g0, g1);
        wino_dy(c, &p, dM, T, dy, g0, g1);
#pragma omp parallel for schedule(static) \
    if ((double)OC * C * T * WX >= (double)PSGEMM_MIN)
        for (int xi = 0; xi < WX; xi++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, C,
                        (int)T, 1.0f, dM + (size_t)xi * WSTRIDE((size_t)OC * T), (int)T,
                        V + (size_t)xi * WSTRIDE((size_t)C * T), (int)T, g0 ? 1.0f : 0.0f,
                        dU + (size_t)xi * WSTRIDE((size_t)OC * C), C);
    }
    wino_weights_grad(dw, dU, OC, C);
}

/* y = conv(x) + b, then the epilogue ep (may be NULL); or, with acc,
 * y += conv(x) (b and ep NULL). */
static void forward_core(const struct sfc_conv2d *c, float *y,
                         const float *x, const float *w, const float *b,
                         int N, int H, int W, float *scratch,
                         const struct sfc_conv2d_epilogue *ep, int acc)
{
    const struct plan p = make_plan(c, H, W);
    const int OC = c->OC, ckk = p.ckk, ldy = (int)p.ohw;
    const size_t xs = (size_t)c->C * H * W, ys = (size_t)OC * p.ohw;
    SFC_ASSERT(!acc || (!b && !ep));
    if (wino_ok(c)) {
        wino_forward(c, y, x, w, b, N, H, W, scratch, ep, acc, 0);
        return;
    }
    if (dil_ok(c, H, W)) {
        sfc_conv2d_dilated_forward(c, y, x, w, b, N, H, W, scratch, ep, acc);
        return;
    }
    float *pre = ep ? ep->pre : NULL;
    const float *res = ep ? ep->res : NULL;
    if (p.group > 1 && N > 1) {
        for (int n0 = 0; n0 < N; n0 += p.group) {
            int g = SFC_MIN(p.group, N - n0);
            int cols = (int)(g * p.ohw);
            float *col = scratch, *buf = scratch + (size_t)ckk * cols;
            im2col(c, col, cols, x + n0 * xs, g, H, W, p.OW, 0, p.OH);
            psgemm(CblasNoTrans, CblasNoTrans, OC, cols,
                        ckk, 1.0f, w, ckk, col, cols, 0.0f, buf, cols);
            scatter(y + n0 * ys, buf, b, g, OC, p.ohw, ep,
                    res ? res + n0 * ys : NULL, pre ? pre + n0 * ys : NULL,
                    acc);
        }
        return;
    }
    /* one image at a time in bands; a band's pieces (output columns of a
     * 1x1, whole output rows otherwise) each go through im2col, sgemm
     * and the epilogue on one thread while they are in its cache */
    const long unit = p.pw ? PIECE_COLS
                           : SFC_MAX(1L, (PIECE_COLS + p.OW - 1) / p.OW);
    for (int n = 0; n < N; n++) {
        float *yn = y + n * ys;
        float *dst = pre ? pre + n * ys : yn; /* where sgemm writes */
        const float *xn = x + n * xs;
        const float *rn = res ? res + n * ys : NULL;
        for (long q0 = 0; q0 < p.ohw; q0 += p.bcols) {
            int nc = (int)SFC_MIN(p.bcols, p.ohw - q0);
            long len = p.pw ? nc : nc / p.OW, step = len; /* pieces of len */
            int np = 1;
            if ((double)OC * nc * ckk >= (double)PSGEMM_MIN)
                np = pieces_of(len, unit, p.pw ? 16 : 1, &step);
#pragma omp parallel for schedule(static) if (np > 1)
            for (int i = 0; i < np; i++) {
                long a = i * step, m = SFC_MIN(step, len - a);
                if (!p.pw) a *= p.OW, m *= p.OW; /* rows -> columns */
                float beta = acc ? 1.0f : 0.0f;
                if (b) {
                    for (int o = 0; o < OC; o++)
                        for (long q = 0; q < m; q++)
                            dst[(size_t)o * ldy + q0 + a + q] = b[o];
                    beta = 1.0f;
                }
                if (p.pw) {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC,
                                (int)m, ckk, 1.0f, w, ckk, xn + q0 + a, ldy,
                                beta, dst + q0 + a, ldy);
                } else {
                    int oh0 = (int)((q0 + a) / p.OW);
                    float *col = scratch + (size_t)ckk * a;
                    im2col(c, col, m, xn, 1, H, W, p.OW, oh0,
                           oh0 + (int)(m / p.OW));
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC,
                                (int)m, ckk, 1.0f, w, ckk, col, (int)m, beta,
                                dst + q0 + a, ldy);
                }
                if (ep)
                    for (int o = 0; o < OC; o++) {
                        size_t r = (size_t)o * ldy + q0 + a;
                        epi_row(ep, o, yn + r, dst + r, rn ? rn + r : NULL,
                                m);
                    }
            }
        }
    }
}

void sfc_conv2d_forward(const struct sfc_conv2d *c, float *y, const float *x,
                        const float *w, const float *b, int N, int H, int W,
                        float *scratch)
{
    int nt = blas_solo_begin();
    forward_core(c, y, x, w, b, N, H, W, scratch, NULL, 0);
    blas_solo_end(nt);
}

void sfc_conv2d_forward_ex(const struct sfc_conv2d *c, float *y,
                           const float *x, const float *w, const float *b,
                           int N, int H, int W, float *scratch,
                           const struct sfc_conv2d_epilogue *ep)
{
    int nt = blas_solo_begin();
    forward_core(c, y, x, w, b, N, H, W, scratch, ep, 0);
    blas_solo_end(nt);
}

/* A strided unpadded 1x1 convolution: its dx is the column matrix
 * (dcol = w^T dy) placed at every S-th input row and column, which
 * sub1x1_dx writes (set: with the zeros between, no clearing pass) or
 * adds straight from dcol instead of going through col2im. */
static int sub1x1(const struct sfc_conv2d *c)
{
    return c->K == 1 && c->P == 0 && c->S > 1;
}

/* dx rows of one image for the band of output rows [oh0, oh1) from dcol
 * (C, (oh1-oh0)*OW, leading dimension ld): input rows [oh0*S, oh1*S),
 * the last band through H. One task per (channel, input row). */
static void sub1x1_dx(const struct sfc_conv2d *c, float *dx,
                      const float *dcol, long ld, int H, int W, int OH,
                      int OW, int oh0, int oh1, int set)
{
    const int S = c->S, C = c->C;
    const int ih0 = oh0 * S, ih1 = oh1 == OH ? H : SFC_MIN(H, oh1 * S);
    const long nr = ih1 - ih0;
#pragma omp parallel for schedule(static) \
    if ((long)C * nr * W >= PAR_MIN_WORK)
    for (long t = 0; t < (long)C * nr; t++) {
        int ch = (int)(t / nr), ih = ih0 + (int)(t % nr);
        float *row = dx + ((size_t)ch * H + ih) * W;
        int on = ih % S == 0 && ih / S < OH;
        if (set) memset(row, 0, sizeof(float) * W);
        if (!on) continue;
        const float *src = dcol + (size_t)ch * ld + (size_t)(ih / S - oh0) * OW;
        if (set)
            for (int ow = 0; ow < OW; ow++) row[(long)ow * S] = src[ow];
        else
            for (int ow = 0; ow < OW; ow++) row[(long)ow * S] += src[ow];
    }
}

/* dw += dL/dw of `g` images at once through the batched layout, and
 * (dx not NULL) dx += col2im(w^T dy). */
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
        psgemm(CblasNoTrans, CblasTrans, OC, ckk, cols,
                    1.0f, buf, cols, col, cols, 1.0f, dw, ckk);
    }
    if (dx) {
        psgemm(CblasTrans, CblasNoTrans, ckk, cols, OC,
                    1.0f, w, ckk, buf, cols, 0.0f, col, cols);
        col2im_add(c, dx, col, cols, g, H, W, p->OW, 0, p->OH);
    }
}

/* dx (N, C, H, W) += (or, set, =) the forward of dy through the flipped,
 * transposed kernel; see transposed_dx(). */
static void backward_dx_transposed(const struct sfc_conv2d *c, float *dx,
                                   const float *dy, const float *w, int N,
                                   int OH, int OW, float *scratch, int set)
{
    const int K = c->K, C = c->C, OC = c->OC, KK = K * K;
    const struct sfc_conv2d t = transposed(c);
    if (wino_ok(&t)) { /* no flipped copy of w needed */
        wino_forward(&t, dx, dy, w, NULL, N, OH, OW, scratch, NULL, !set, 1);
        return;
    }
    float *wt = scratch; /* (C, OC, K, K) */
    const long nwt = (long)C * OC * KK;
#pragma omp parallel for schedule(static) if (nwt >= PAR_MIN_WORK)
    for (int ch = 0; ch < C; ch++)
        for (int o = 0; o < OC; o++)
            for (int k = 0; k < KK; k++)
                wt[((size_t)ch * OC + o) * KK + k] =
                    w[((size_t)o * C + ch) * KK + (KK - 1 - k)];
    forward_core(&t, dx, dy, wt, NULL, N, OH, OW, scratch + nwt, NULL, !set);
}

static void backward_core(const struct sfc_conv2d *c, float *dx, float *dw,
                          float *db, const float *dy, const float *x,
                          const float *w, int N, int H, int W,
                          float *scratch, int flags)
{
    const struct plan p = make_plan(c, H, W);
    const int OC = c->OC, ckk = p.ckk, ldy = (int)p.ohw;
    const long ohw = p.ohw;
    const size_t xs = (size_t)c->C * H * W, ys = (size_t)OC * ohw;
    const int set = (flags & SFC_CONV2D_DX_SET) != 0;

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
    if ((dw || dx) && dil_ok(c, H, W)) {
        sfc_conv2d_dilated_backward(c, dx, dw, dy, x, w, N, H, W, scratch,
                                    set);
        return;
    }
    if (dw && wino_ok(c)) {
        wino_dw(c, dw, dy, x, N, H, W, scratch);
        dw = NULL;
    }
    if (!dw && !dx) return;
    /* dx by the transposed forward, or through the column matrix (after
     * clearing it when it is to be set) */
    float *dxc = dx;
    const int batched = p.group > 1 && N > 1;
    if (dx && transposed_dx(c)) {
        dxc = NULL;
    } else if (dx && set && (batched || !(p.pw || sub1x1(c)))) {
#pragma omp parallel for schedule(static) if ((long)N * xs >= PAR_MIN_WORK)
        for (long i = 0; i < (long)N * (long)xs; i++) dx[i] = 0.0f;
    }
    if (batched) {
        if (dw || dxc)
            for (int n0 = 0; n0 < N; n0 += p.group)
                backward_group(c, &p, dxc ? dxc + n0 * xs : NULL, dw,
                               dy + n0 * ys, dw ? x + n0 * xs : NULL, w,
                               SFC_MIN(p.group, N - n0), H, W, scratch);
    } else {
        for (int n = 0; n < N; n++) {
            const float *dyn = dy + n * ys;
            const float *xn = dw ? x + n * xs : NULL; /* x unused without dw */
            float *dxn = dxc ? dxc + n * xs : NULL;
            if (p.pw) {
                if (dw)
                    psgemm(CblasNoTrans, CblasTrans, OC,
                                ckk, ldy, 1.0f, dyn, ldy, xn, ldy, 1.0f, dw,
                                ckk);
                if (dxn)
                    psgemm(CblasTrans, CblasNoTrans, ckk,
                                ldy, OC, 1.0f, w, ckk, dyn, ldy,
                                set ? 0.0f : 1.0f, dxn, ldy);
                continue;
            }
            for (long q0 = 0; q0 < ohw; q0 += p.bcols) {
                int ncol = (int)SFC_MIN(p.bcols, ohw - q0);
                int oh0 = (int)(q0 / p.OW), oh1 = oh0 + ncol / p.OW;
                const float *dyt = dyn + q0;
                if (dw) {
                    im2col(c, scratch, ncol, xn, 1, H, W, p.OW, oh0, oh1);
                    psgemm(CblasNoTrans, CblasTrans, OC,
                                ckk, ncol, 1.0f, dyt, ldy, scratch, ncol,
                                1.0f, dw, ckk);
                }
                if (dxn) {
                    psgemm(CblasTrans, CblasNoTrans, ckk,
                                ncol, OC, 1.0f, w, ckk, dyt, ldy, 0.0f,
                                scratch, ncol);
                    if (sub1x1(c))
                        sub1x1_dx(c, dxn, scratch, ncol, H, W, p.OH, p.OW,
                                  oh0, oh1, set);
                    else
                        col2im_add(c, dxn, scratch, ncol, 1, H, W, p.OW, oh0,
                                   oh1);
                }
            }
        }
    }
    if (dx && !dxc)
        backward_dx_transposed(c, dx, dy, w, N, p.OH, p.OW, scratch, set);
}

void sfc_conv2d_backward_ex(const struct sfc_conv2d *c, float *dx, float *dw,
                            float *db, const float *dy, const float *x,
                            const float *w, int N, int H, int W,
                            float *scratch, int flags)
{
    int nt = blas_solo_begin();
    backward_core(c, dx, dw, db, dy, x, w, N, H, W, scratch, flags);
    blas_solo_end(nt);
}

void sfc_conv2d_backward(const struct sfc_conv2d *c, float *dx, float *dw,
                         float *db, const float *dy, const float *x,
                         const float *w, int N, int H, int W, float *scratch)
{
    sfc_conv2d_backward_ex(c, dx, dw, db, dy, x, w, N, H, W, scratch, 0);
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
