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
 * same count is used for PyTorch).
 *
 * SFC_BENCH_ALGO=im2col or winograd sets sfc_conv2d_set_algo (default:
 * auto) for comparing the two paths of the 3x3 convolutions.
 *
 * SFC_BENCH_LAYERS=1 also prints to stderr where the time goes: per block
 * and operation (net->prof), forward and backward milliseconds and
 * GFLOP/s of each convolution, each the fastest of the timed runs, then the
 * totals per operation and the process CPU seconds per run (with one
 * thread, a load-independent measure of the work). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

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

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static double conv_gf(const struct sfc_conv2d *c, int N, int OH, int OW)
{
    return 2e-9 * N * c->C * c->OC * c->K * c->K * (double)OH * OW;
}

/* The per-layer table of SFC_BENCH_LAYERS (times per micro-batch pass
 * summed over a run, divided by runs). */
static void print_layers(const struct sfc_resnet *net, int runs, int passes)
{
    static const char *const opn[5] = {"c1", "c2", "c3", "cd", "other"};
    double tot[2][5] = {{0}}, fl[2][5] = {{0}};
    double sc = 1e3 / runs; /* ms per run */
    int N = net->N;
    int H1 = sfc_conv2d_outsize(net->H, 7, net->conv1.S, 3, 1);
    int W1 = sfc_conv2d_outsize(net->W, 7, net->conv1.S, 3, 1);
    fprintf(stderr, "%-10s %-22s", "layer", "in -> out");
    for (int o = 0; o < 5; o++) fprintf(stderr, " %14s", opn[o]);
    fprintf(stderr, "   (ms fwd/bwd per run; GFLOP/s fwd/bwd per conv)\n");
    for (int r = 0; r <= net->nblocks; r++) {
        const struct sfc_resnet_block *B = r ? &net->blk[r - 1] : NULL;
        double g[5] = {0};
        char name[32], shp[64];
        if (!B) {
            snprintf(name, sizeof name, "stem");
            snprintf(shp, sizeof shp, "%dx%d -> %dx%dx%d", net->H, net->W,
                     net->feat_c[0], net->feat_h[0], net->feat_w[0]);
            g[0] = conv_gf(&net->conv1, N, H1, W1);
        } else {
            int b = 0;
            for (int j = r - 2; j >= 0 && net->blk[j].stage == B->stage; j--)
                b++;
            snprintf(name, sizeof name, "layer%d.%d", B->stage, b);
            snprintf(shp, sizeof shp, "%dx%dx%d -> %dx%dx%d", B->c1.C, B->H,
                     B->W, B->c3.OC, B->OH, B->OW);
            g[0] = conv_gf(&B->c1, N, B->H, B->W);
            g[1] = conv_gf(&B->c2, N, B->OH, B->OW);
            g[2] = conv_gf(&B->c3, N, B->OH, B->OW);
            g[3] = B->cd.OC ? conv_gf(&B->cd, N, B->OH, B->OW) : 0;
        }
        fprintf(stderr, "%-10s %-22s", name, shp);
        for (int o = 0; o < 5; o++) {
            double f = net->prof[r][0][o] * sc, bk = net->prof[r][1][o] * sc;
            tot[0][o] += f;
            tot[1][o] += bk;
            if (f > 0) fl[0][o] += g[o] * passes;
            if (bk > 0) fl[1][o] += 2 * g[o] * passes;
            fprintf(stderr, " %6.1f/%-7.1f", f, bk);
        }
        fprintf(stderr, "\n%-33s", "");
        for (int o = 0; o < 4; o++) {
            double f = net->prof[r][0][o], bk = net->prof[r][1][o];
            fprintf(stderr, " %6.0f/%-7.0f",
                    f > 0 ? g[o] * passes * runs / f : 0,
                    bk > 0 ? 2 * g[o] * passes * runs / bk : 0);
        }
        fprintf(stderr, "\n");
    }
    double sf = 0, sb = 0, cf = 0, cb = 0, gf = 0, gb = 0;
    fprintf(stderr, "%-33s", "total");
    for (int o = 0; o < 5; o++) {
        fprintf(stderr, " %6.1f/%-7.1f", tot[0][o], tot[1][o]);
        sf += tot[0][o];
        sb += tot[1][o];
        if (o < 4) {
            cf += tot[0][o], cb += tot[1][o];
            gf += fl[0][o], gb += fl[1][o];
        }
    }
    fprintf(stderr, "\nforward %.1f ms (conv %.1f at %.0f GFLOP/s), backward "
                    "%.1f ms (conv %.1f at %.0f GFLOP/s)\n",
            sf, cf, cf > 0 ? gf / cf * 1e3 / runs : 0, sb, cb,
            cb > 0 ? gb / cb * 1e3 / runs : 0);
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
    const char *algo = getenv("SFC_BENCH_ALGO");
    if (algo && !strcmp(algo, "im2col"))
        sfc_conv2d_set_algo(SFC_CONV2D_IM2COL);
    else if (algo && !strcmp(algo, "winograd"))
        sfc_conv2d_set_algo(SFC_CONV2D_WINOGRAD);
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

    /* per-layer times: each cell the fastest of the timed runs (a stall,
     * such as real-time throttling, hits one run and one layer) */
    double (*prof)[2][5] = NULL, (*best)[2][5] = NULL;
    size_t nprof = (size_t)net.nblocks + 1;
    if (getenv("SFC_BENCH_LAYERS")) {
        prof = sfc_xcalloc(nprof, sizeof *prof);
        best = sfc_xcalloc(nprof, sizeof *best);
    }
    double flops = sfc_resnet_flops(&net) / micro * N; /* forward, N images */
    double cpu0 = 0;
    if (train) flops += 2.0 * stage_flops(&net, cfg.frozen) / micro * N;
    for (int r = -1; r < runs; r++) {
        if (r == 0) {
            net.prof = prof; /* time the timed runs only */
            cpu0 = cpu_now();
        }
        double t0 = sfc_now();
        if (train) sfc_resnet_zero_grad(&net);
        int nb = r < 0 ? micro : N; /* warm-up: one micro-batch */
        for (int b = 0; b < nb; b += micro) {
            sfc_resnet_forward(&net, x + (size_t)b * xs);
            if (train) sfc_resnet_backward(&net, d);
        }
        if (r >= 0) t[r] = sfc_now() - t0;
        if (prof && r >= 0) {
            double *p = &prof[0][0][0], *q = &best[0][0][0];
            for (size_t i = 0; i < nprof * 10; i++) {
                q[i] = r == 0 || p[i] < q[i] ? p[i] : q[i];
                p[i] = 0;
            }
        }
    }
    double m = median(t, runs);
    printf("%s %.4f %.1f %.0f\n", mode, m / N, flops / m / 1e9, peak_mb());
    if (prof) {
        net.prof = best;
        print_layers(&net, 1, N / micro);
        fprintf(stderr, "cpu %.3f s per run\n", (cpu_now() - cpu0) / runs);
        free(prof);
        free(best);
    }
    sfc_resnet_release(&net);
    free(x);
    free(d4);
    return 0;
}
