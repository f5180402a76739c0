/* SPDX-License-Identifier: MIT */
/* bench-seg.c: time DeepLab-v2 (lib/deeplab) for make bench-seg
 * (bench/seg.sh runs it beside bench/seg_torch.py). One configuration per
 * process so that the peak RSS (getrusage) is that configuration's.
 *
 *   bench-seg MODE [runs]
 *   MODE: train      ResNet-101 DeepLab-v2, 21 classes, one SGD step of a
 *                    batch of 10x3x321x321 at the input scales 1, 0.75,
 *                    0.5 (every convolution trained, BN frozen), in
 *                    micro-batches of SFC_BENCH_MICRO (default 1) with
 *                    gradient accumulation
 *         predict    one 500x375 image (3 scales, max-fused, resized)
 *         predictflip  the same with the mirrored image
 *         profiletrain  train (planned before the clock), then the
 *                    forward and backward per scale and stage as below
 *         profile, profileflip  predict (predictflip), then per scale
 *                    and stage the backbone's milliseconds per image by
 *                    operation (conv1, conv2, conv3, downsample, other)
 *                    on stderr, and the rest (ASPP head, resizing,
 *                    fusion)
 *         dilconv    the dilated 3x3 convolutions of layer3 (256 ch,
 *                    dilation 2) and layer4 (512 ch, dilation 4) alone,
 *                    one image, at the map sizes of training (321 crop at
 *                    scales 1, 0.75, 0.5) and prediction (500x375 at 1.5,
 *                    1, 0.75, 0.5): median ms of forward, dx and dw by
 *                    im2col and by Winograd on the polyphase sub-images
 *                    (lib/conv_dilated.c), one line per shape
 * SFC_BENCH_DILATED=0 keeps the dilated 3x3 convolutions on im2col (AUTO
 * without lib/conv_dilated.c's path), for a before/after comparison.
 * Random weights and inputs (the cost does not depend on them). Prints one
 * line: mode, median seconds (per step for train: the first run includes the
 * planning; per image for predict: runs after a first planning run),
 * nominal GFLOP/s (2 x multiply-adds of the forward, x3 for training),
 * peak RSS in MB. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "conv.h"
#include "conv_dilated.h"
#include "deeplab.h"
#include "err.h"
#include "optim.h"
#include "util.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double peak_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

/* per-layer timing on every scale's backbone (after the plan) */
static void prof_start(struct sfc_deeplab *net)
{
    for (int k = 0; k < net->nscale; k++)
        net->sc[k].bb.prof = sfc_xcalloc((size_t)net->sc[k].bb.nblocks + 1,
                                         sizeof *net->sc[k].bb.prof);
}

/* the profile per scale, stage and operation (direction dir: 0 forward,
 * 1 backward), ms per image over nimg images; returns the total ms */
static double prof_print(const struct sfc_deeplab *net, int dir, int nimg)
{
    double tot = 0;
    fprintf(stderr, "%s ms per image: scale map stage  conv1 conv2 conv3 "
                    "down other\n", dir ? "backward" : "forward");
    for (int k = 0; k < net->nscale; k++) {
        const struct sfc_resnet *bb = &net->sc[k].bb;
        double st[5][5] = {{0}};
        for (int b = 0; b <= bb->nblocks; b++) {
            int g = b ? bb->blk[b - 1].stage : 0;
            for (int o = 0; o < 5; o++)
                st[g][o] += bb->prof[b][dir][o] * 1e3 / nimg;
        }
        for (int g = 0; g < 5; g++) {
            fprintf(stderr, "  %.2f %dx%d stage%d", net->sc[k].s,
                    bb->feat_w[g], bb->feat_h[g], g);
            for (int o = 0; o < 5; o++) {
                fprintf(stderr, " %6.1f", st[g][o]);
                tot += st[g][o];
            }
            fprintf(stderr, "\n");
        }
    }
    return tot;
}

static void prof_stop(struct sfc_deeplab *net)
{
    for (int k = 0; k < net->nscale; k++) {
        free(net->sc[k].bb.prof);
        net->sc[k].bb.prof = NULL;
    }
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* bench-seg dilconv: im2col vs the phase path per shape (see the top). */
static int dilconv(int runs)
{
    static const int shapes[][4] = {/* C, d, H, W */
        {256, 2, 41, 41}, {256, 2, 31, 31}, {256, 2, 21, 21},
        {256, 2, 71, 94}, {256, 2, 47, 63}, {256, 2, 36, 47},
        {256, 2, 24, 32}, {512, 4, 41, 41}, {512, 4, 31, 31},
        {512, 4, 21, 21}, {512, 4, 71, 94}, {512, 4, 47, 63},
        {512, 4, 36, 47}, {512, 4, 24, 32}, {512, 2, 41, 41},
        {512, 2, 47, 63}};
    struct sfc_rng rng;
    sfc_rng_seed(&rng, 3);
    printf("dilconv C d HxW  fwd: im2col phases  dx: im2col phases  "
           "dw: im2col phases (ms)\n");
    for (size_t k = 0; k < SFC_ARRAY_LEN(shapes); k++) {
        const int C = shapes[k][0], d = shapes[k][1];
        const int H = shapes[k][2], W = shapes[k][3];
        struct sfc_conv2d c = {C, C, 3, 1, d, d};
        size_t nx = (size_t)C * H * W, nw = (size_t)C * C * 9;
        float *x = sfc_xmalloc(sizeof(float) * nx);
        float *dy = sfc_xmalloc(sizeof(float) * nx);
        float *y = sfc_xmalloc(sizeof(float) * nx);
        float *dx = sfc_xmalloc(sizeof(float) * nx);
        float *w = sfc_xmalloc(sizeof(float) * nw);
        float *dw = sfc_xcalloc(nw, sizeof(float));
        float *scratch = sfc_xmalloc(sizeof(float) *
                                     sfc_conv2d_scratch(&c, H, W));
        for (size_t i = 0; i < nx; i++) x[i] = (float)sfc_rng_normal(&rng);
        for (size_t i = 0; i < nx; i++) dy[i] = (float)sfc_rng_normal(&rng);
        for (size_t i = 0; i < nw; i++)
            w[i] = (float)(sfc_rng_normal(&rng) * 0.02);
        double ms[3][2];
        for (int a = 0; a < 2; a++) {
            sfc_conv2d_set_algo(a ? SFC_CONV2D_WINOGRAD : SFC_CONV2D_IM2COL);
            for (int op = 0; op < 3; op++) {
                double t[51];
                for (int r = -1; r < runs; r++) { /* r -1 warms up */
                    double t0 = sfc_now();
                    if (op == 0)
                        sfc_conv2d_forward(&c, y, x, w, NULL, 1, H, W,
                                           scratch);
                    else if (op == 1)
                        sfc_conv2d_backward_ex(&c, dx, NULL, NULL, dy, NULL,
                                               w, 1, H, W, scratch,
                                               SFC_CONV2D_DX_SET);
                    else
                        sfc_conv2d_backward(&c, NULL, dw, NULL, dy, x, w, 1,
                                            H, W, scratch);
                    if (r >= 0) t[r] = sfc_now() - t0;
                }
                ms[op][a] = median(t, runs) * 1e3;
            }
        }
        sfc_conv2d_set_algo(SFC_CONV2D_AUTO);
        printf("dilconv %d %d %dx%d  %.2f %.2f  %.2f %.2f  %.2f %.2f\n", C,
               d, W, H, ms[0][0], ms[0][1], ms[1][0], ms[1][1], ms[2][0],
               ms[2][1]);
        fflush(stdout);
        free(x), free(dy), free(y), free(dx), free(w), free(dw);
        free(scratch);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench-seg train|predict|predictflip|"
                        "profile|profileflip|profiletrain|dilconv [runs]\n");
        return 2;
    }
    const char *mode = argv[1];
    int runs = argc > 2 ? atoi(argv[2]) : 1;
    if (runs < 1 || runs > 50) runs = 1;
    if (!strcmp(mode, "dilconv")) return dilconv(runs);
    const char *de = getenv("SFC_BENCH_DILATED");
    if (de && !strcmp(de, "0")) sfc_conv2d_dilated_enable(0);
    const char *me = getenv("SFC_BENCH_MICRO");
    int micro = me ? atoi(me) : 1;
    if (micro < 1 || 10 % micro) micro = 1;
    struct sfc_deeplab_config cfg;
    sfc_deeplab_config_default(&cfg, 101, 21);
    struct sfc_deeplab net;
    if (sfc_deeplab_init(&net, &cfg, NULL, NULL)) {
        fprintf(stderr, "%s\n", sfc_errmsg());
        return 1;
    }
    struct sfc_rng rng;
    sfc_rng_seed(&rng, 1);
    sfc_deeplab_init_random(&net, &rng);
    double scales[3] = {1, 0.75, 0.5}, t[50], flops = 0;
    if (!strcmp(mode, "train") || !strcmp(mode, "profiletrain")) {
        enum { B = 10, S = 321 };
        int prof = !strcmp(mode, "profiletrain");
        size_t n = (size_t)3 * S * S;
        float *x = sfc_xmalloc(sizeof(float) * n * B);
        uint8_t *lab = sfc_xmalloc((size_t)S * S * B);
        for (size_t i = 0; i < n * B; i++) x[i] = (float)sfc_rng_normal(&rng);
        for (size_t i = 0; i < (size_t)S * S * B; i++)
            lab[i] = (uint8_t)sfc_rng_below(&rng, 21);
        struct sfc_sgd o;
        sfc_sgd_init(&o, net.pb.size, 0.9, 0.9, 20000, 0);
        sfc_deeplab_sgd_groups(&net, &o, 2.5e-4, 5e-4, 10, 20, 0);
        if (prof) { /* plan before the clock: time the steps only */
            if (sfc_deeplab_plan(&net, micro, S, S, 3, scales, 1)) return 1;
            prof_start(&net);
        }
        for (int r = 0; r < runs; r++) {
            double t0 = sfc_now();
            if (sfc_deeplab_plan(&net, micro, S, S, 3, scales, 1)) return 1;
            double count[4] = {0};
            sfc_deeplab_count(&net, lab, B, count);
            sfc_deeplab_zero_grad(&net);
            for (int m = 0; m < B; m += micro)
                sfc_deeplab_train(&net, x + m * n, lab + (size_t)m * S * S,
                                  count, NULL);
            sfc_sgd_step(&o, net.params, net.grads);
            t[r] = sfc_now() - t0;
        }
        flops = 3 * sfc_deeplab_flops(&net) * (B / micro);
        if (prof) {
            double all = 0;
            for (int r = 0; r < runs; r++) all += t[r];
            double bbt = prof_print(&net, 0, runs * B);
            bbt += prof_print(&net, 1, runs * B);
            fprintf(stderr, "  backbone %.1f ms, rest (head, losses, "
                            "resizing, SGD) %.1f ms of %.1f ms per image\n",
                    bbt, all * 1e3 / (runs * B) - bbt, all * 1e3 / (runs * B));
            prof_stop(&net);
        }
        sfc_sgd_release(&o);
        free(x);
        free(lab);
    } else if (!strcmp(mode, "predict") || !strcmp(mode, "predictflip") ||
               !strcmp(mode, "profile") || !strcmp(mode, "profileflip")) {
        enum { H = 375, W = 500 };
        int flip = !strcmp(mode, "predictflip") ||
                   !strcmp(mode, "profileflip");
        int prof = !strncmp(mode, "profile", 7);
        uint8_t *img = sfc_xmalloc((size_t)H * W * 3);
        for (size_t i = 0; i < (size_t)H * W * 3; i++)
            img[i] = (uint8_t)sfc_rng_below(&rng, 256);
        float *out = sfc_xmalloc(sizeof(float) * 21 * H * W);
        for (int r = -1; r < runs; r++) { /* run -1 plans */
            double t0 = sfc_now();
            if (sfc_deeplab_predict(&net, out, img, H, W, 3, scales, flip))
                return 1;
            if (r >= 0) t[r] = sfc_now() - t0;
            if (r == -1 && prof) prof_start(&net);
        }
        flops = sfc_deeplab_flops(&net);
        if (prof) {
            double all = 0;
            for (int r = 0; r < runs; r++) all += t[r];
            double bbt = prof_print(&net, 0, runs);
            fprintf(stderr, "  backbone %.1f ms, rest (head, resizing, "
                            "fusion) %.1f ms of %.1f ms\n",
                    bbt, all * 1e3 / runs - bbt, all * 1e3 / runs);
            prof_stop(&net);
        }
        free(img);
        free(out);
    } else {
        fprintf(stderr, "bench-seg: unknown mode '%s'\n", mode);
        return 2;
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    double med = runs % 2 ? t[runs / 2] : 0.5 * (t[runs / 2 - 1] + t[runs / 2]);
    printf("%s %.3f %.1f %.0f\n", mode, med, flops / med / 1e9, peak_mb());
    sfc_deeplab_release(&net);
    return 0;
}
