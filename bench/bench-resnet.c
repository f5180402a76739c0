/* SPDX-License-Identifier: MIT */
/* bench-resnet.c: time the ResNet engine (make bench; bench/run.sh runs it
 * beside bench_torch.py). One configuration per process so that the peak
 * RSS (getrusage) is that configuration's.
 *
 *   bench-resnet MODE [runs]
 *   MODE: fwd      ResNet-50 (strides 2,2,2,1) forward, 1x3x512x512
 *         fwdbwd   forward + backward (all stages trained), 1x3x512x512
 *         train    SFC's training shape 20x3x512x512, conv1..layer2 frozen,
 *                  in micro-batches of SFC_BENCH_MICRO (default 4)
 *         sgemm    the sgemm ceiling: 2048x2048x2048 cblas_sgemm
 * Prints one line: mode, median seconds (per image for train), nominal
 * GFLOP/s, peak RSS in MB. Nominal FLOPs: 2 x multiply-adds of the
 * convolutions; backward counts 2x the forward of the trained stages (the
 * same count is used for PyTorch). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cblas.h>

#include "resnet.h"
#include "util.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static double peak_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

static void fill(float *x, size_t n, struct sfc_rng *r)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)sfc_rng_normal(r);
}

/* forward FLOPs of stages >= from (1..4; 0 = the stem too) */
static double stage_flops(const struct sfc_resnet *net, int from)
{
    double f = 0;
    for (int k = 0; k < net->nblocks; k++) {
        const struct sfc_resnet_block *B = &net->blk[k];
        if (B->stage < from) continue;
        double n = net->N;
        f += 2.0 * n * B->c1.C * B->c1.OC * B->H * B->W;
        f += 2.0 * n * B->c2.C * B->c2.OC * 9 * B->OH * B->OW;
        f += 2.0 * n * B->c3.C * B->c3.OC * B->OH * B->OW;
        if (B->cd.OC) f += 2.0 * n * B->cd.C * B->cd.OC * B->OH * B->OW;
    }
    if (from == 0) f = sfc_resnet_flops(net);
    return f;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench-resnet fwd|fwdbwd|train|sgemm [runs]\n");
        return 2;
    }
    const char *mode = argv[1];
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    if (runs < 1 || runs > 100) runs = 5;
    double t[100];
    struct sfc_rng rng;
    sfc_rng_seed(&rng, 1);

    if (!strcmp(mode, "sgemm")) {
        int n = 2048;
        float *a = sfc_xmalloc_aligned((size_t)n * n * 4);
        float *b = sfc_xmalloc_aligned((size_t)n * n * 4);
        float *c = sfc_xmalloc_aligned((size_t)n * n * 4);
        fill(a, (size_t)n * n, &rng);
        fill(b, (size_t)n * n, &rng);
        for (int r = -1; r < runs; r++) {
            double t0 = sfc_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1,
                        a, n, b, n, 0, c, n);
            if (r >= 0) t[r] = sfc_now() - t0;
        }
        double m = median(t, runs);
        printf("sgemm %.4f %.1f %.0f\n", m, 2.0 * n * n * n / m / 1e9,
               peak_mb());
        return 0;
    }

    struct sfc_resnet_config cfg;
    sfc_resnet_config_default(&cfg, 50);
    int N = 1, micro = 1, train = 1;
    if (!strcmp(mode, "fwd")) {
        train = 0;
    } else if (!strcmp(mode, "train")) {
        N = 20;
        cfg.frozen = 3;
        const char *m = getenv("SFC_BENCH_MICRO");
        micro = m ? atoi(m) : 4;
        if (micro < 1 || N % micro) micro = 4;
    } else if (strcmp(mode, "fwdbwd")) {
        fprintf(stderr, "bench-resnet: unknown mode '%s'\n", mode);
        return 2;
    }
    struct sfc_resnet net;
    if (sfc_resnet_init(&net, &cfg, NULL, NULL) < 0) return 1;
    sfc_resnet_init_random(&net, &rng);
    int S = 512;
    sfc_resnet_plan(&net, micro, S, S, train);
    size_t xs = (size_t)3 * S * S;
    float *x = sfc_xmalloc_aligned((size_t)N * xs * sizeof(float));
    fill(x, (size_t)N * xs, &rng);
    size_t d4n = (size_t)micro * net.feat_c[4] * net.feat_h[4] * net.feat_w[4];
    float *d4 = sfc_xmalloc_aligned(d4n * sizeof(float));
    fill(d4, d4n, &rng);
    const float *d[SFC_RESNET_STAGES] = {NULL, NULL, NULL, NULL, d4};

    double flops = sfc_resnet_flops(&net) / micro * N; /* forward, N images */
    if (train) flops += 2.0 * stage_flops(&net, cfg.frozen) / micro * N;
    for (int r = -1; r < runs; r++) {
        double t0 = sfc_now();
        if (train) sfc_resnet_zero_grad(&net);
        int nb = r < 0 ? micro : N; /* warm-up: one micro-batch */
        for (int b = 0; b < nb; b += micro) {
            sfc_resnet_forward(&net, x + (size_t)b * xs);
            if (train) sfc_resnet_backward(&net, d);
        }
        if (r >= 0) t[r] = sfc_now() - t0;
    }
    double m = median(t, runs);
    printf("%s %.4f %.1f %.0f\n", mode, m / N, flops / m / 1e9, peak_mb());
    sfc_resnet_release(&net);
    free(x);
    free(d4);
    return 0;
}
