/* SPDX-License-Identifier: MIT */
/* bench-irn.c: time sfc-irn's pieces (make bench-irn; bench/irn.py runs it
 * beside PyTorch). One configuration per process so that the peak RSS
 * (getrusage) is that configuration's.
 *
 *   bench-irn walk IN.npz K OUT.npy [runs] [f32|f64]
 *       sfc_pseudo_label (SFC's two-pass random walk, the defaults of
 *       sfc-irn infer; f64: the walk's state in float64) on the first K
 *       channels of cam_w, cam_p, keys and
 *       the edge map of IN.npz; writes the label (H, W) uint8 to OUT.npy.
 *       Prints "walk K median_s peak_MB walk_MB cpu_s": peak_MB is the
 *       process's peak RSS during the calls (it holds the image's K input
 *       channels), walk_MB how far above the RSS before the calls it went
 *       (the walk's own memory), cpu_s the CPU seconds (all threads) per
 *       call.
 *   bench-irn edge [runs]
 *       edge inference as sfc-irn infer runs it: ResNet-50 (strides
 *       2,2,2,1, random weights) + the edge head on a 512x512 canvas
 *       holding the image and its flip, then the flip merge for a 500x375
 *       image. Prints "edge median_s_per_image peak_MB cpu_s".
 *   bench-irn train [runs] [batch] [micro]
 *       one training step as sfc-irn train runs it (frozen backbone
 *       forward, head forward, affinity loss at radius 10, head backward,
 *       SGD) on random 512x512 crops and blocky random labels, batch 8 in
 *       micro-batches of 4 by default. Prints "train median_images_per_s
 *       peak_MB cpu_s_per_image". cpu_s: CPU seconds of all threads
 *       (medians). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "err.h"
#include "irnaug.h"
#include "irnnet.h"
#include "npy.h"
#include "optim.h"
#include "pathidx.h"
#include "pseudo.h"
#include "resnet.h"
#include "rng.h"
#include "tensor.h"
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

static const struct sfc_tensor *need(const struct sfc_npz *z, const char *k,
                                     enum sfc_dtype dt)
{
    const struct sfc_tensor *t = sfc_npz_get(z, k);
    if (!t || t->dtype != dt) {
        fprintf(stderr, "bench-irn: %s: no %s of the right type\n", z->path,
                k);
        exit(1);
    }
    return t;
}

/* VmRSS or VmHWM of this process in MB, from /proc/self/status (Linux);
 * 0 if unreadable. */
static double status_mb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double v = 0;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && line[n] == ':')
            v = atof(line + n + 1) / 1024.0;
    if (f) fclose(f);
    return v;
}

/* Reset VmHWM to the current RSS (Linux: "5" to /proc/self/clear_refs). */
static void reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
           ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static float *take(const struct sfc_tensor *t, size_t n)
{
    float *p = sfc_xmalloc(sizeof(float) * n);
    memcpy(p, t->data, sizeof(float) * n);
    return p;
}

static int walk(const char *in, int K, const char *out, int runs, int dbl)
{
    struct sfc_npz z;
    if (sfc_npz_read(in, &z)) {
        fprintf(stderr, "bench-irn: %s\n", sfc_errmsg());
        return 1;
    }
    const struct sfc_tensor *tw = need(&z, "cam_w", SFC_F32),
                            *tp = need(&z, "cam_p", SFC_F32),
                            *tk = need(&z, "keys", SFC_I64),
                            *te = need(&z, "edge", SFC_F32);
    int H = (int)tw->shape[1], W = (int)tw->shape[2];
    int h = (int)te->shape[0], w = (int)te->shape[1];
    if (K < 2 || K > tw->shape[0]) {
        fprintf(stderr, "bench-irn: K %d out of range\n", K);
        return 2;
    }
    /* only this image's K channels stay in memory */
    size_t HW = (size_t)H * W;
    float *cw = take(tw, K * HW), *cp = take(tp, K * HW);
    float *edge = take(te, (size_t)h * w);
    int64_t keys[256];
    memcpy(keys, tk->data, sizeof(int64_t) * K);
    sfc_npz_release(&z);
    struct sfc_pseudo_params pp;
    sfc_pseudo_params_default(&pp);
    pp.walk_double = dbl;
    struct sfc_tensor lab;
    sfc_tensor_init(&lab, SFC_U8, 2, (int64_t[]){H, W});
    reset_peak();
    double t[100], rss0 = status_mb("VmRSS"), cpu0 = cpu_seconds();
    for (int r = 0; r < runs; r++) {
        double t0 = sfc_now();
        if (sfc_pseudo_label(lab.data, cw, cp, keys, K, H, W, edge, h, w,
                             &pp)) {
            fprintf(stderr, "bench-irn: %s\n", sfc_errmsg());
            return 1;
        }
        t[r] = sfc_now() - t0;
    }
    double cpu = (cpu_seconds() - cpu0) / runs, hwm = status_mb("VmHWM");
    if (sfc_npy_write(out, &lab)) {
        fprintf(stderr, "bench-irn: %s\n", sfc_errmsg());
        return 1;
    }
    printf("walk %d %.4f %.0f %.1f %.4f\n", K, median(t, runs), hwm,
           hwm - rss0, cpu);
    sfc_tensor_release(&lab);
    free(cw);
    free(cp);
    free(edge);
    return 0;
}

static void fill(float *x, size_t n, struct sfc_rng *r)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)sfc_rng_normal(r);
}

/* ResNet-50 (the sfc-irn default: strides 2,2,2,1, fully frozen) and an
 * edge head on its stage outputs, random weights. */
static void model(struct sfc_resnet *net, struct sfc_irnhead *hd,
                  struct sfc_rng *rng, int no_grads)
{
    struct sfc_resnet_config cfg;
    sfc_resnet_config_default(&cfg, 50);
    cfg.frozen = SFC_RESNET_STAGES;
    if (sfc_resnet_init(net, &cfg, NULL, NULL)) exit(1);
    sfc_resnet_init_random(net, rng);
    int in_c[SFC_IRN_BRANCHES];
    in_c[0] = cfg.width;
    for (int i = 1; i < SFC_IRN_BRANCHES; i++)
        in_c[i] = 4 * (cfg.width << (i - 1));
    if (sfc_irnhead_init(hd, in_c, NULL, NULL, no_grads)) exit(1);
    sfc_irnhead_init_random(hd, rng);
}

static void forward(struct sfc_resnet *net, struct sfc_irnhead *hd,
                    const float *x, int N, int S, int train)
{
    sfc_resnet_plan(net, N, S, S, 0);
    sfc_resnet_forward(net, x);
    int fh[SFC_IRN_BRANCHES], fw[SFC_IRN_BRANCHES];
    const float *f[SFC_IRN_BRANCHES];
    for (int i = 0; i < SFC_IRN_BRANCHES; i++) {
        fh[i] = net->feat_h[i];
        fw[i] = net->feat_w[i];
        f[i] = net->feat[i];
    }
    if (sfc_irnhead_plan(hd, N, fh, fw, train)) exit(1);
    sfc_irnhead_forward(hd, f);
}

static int edge(int runs)
{
    struct sfc_rng rng;
    sfc_rng_seed(&rng, 1);
    struct sfc_resnet net;
    struct sfc_irnhead hd;
    model(&net, &hd, &rng, 1);
    int S = 512, H = 375, W = 500;
    float *x = sfc_xmalloc(sizeof(float) * 6 * S * S);
    uint8_t *img = sfc_xmalloc((size_t)H * W * 3);
    for (size_t i = 0; i < (size_t)H * W * 3; i++)
        img[i] = (uint8_t)(sfc_rng_u64(&rng) & 255);
    int eh = (H + 3) / 4, ew = (W + 3) / 4;
    float *e = sfc_xmalloc(sizeof(float) * eh * ew);
    double t[100], c[100];
    for (int r = -1; r < runs; r++) {
        double t0 = sfc_now(), c0 = cpu_seconds();
        sfc_irn_infer_input(x, img, H, W, S);
        forward(&net, &hd, x, 2, S, 0);
        sfc_irn_edge_merge(e, hd.logit, hd.oh, hd.ow, eh, ew);
        if (r >= 0) t[r] = sfc_now() - t0, c[r] = cpu_seconds() - c0;
    }
    printf("edge %.4f %.0f %.4f\n", median(t, runs), peak_mb(),
           median(c, runs));
    free(x);
    free(img);
    free(e);
    sfc_irnhead_release(&hd);
    sfc_resnet_release(&net);
    return 0;
}

static int train(int runs, int batch, int micro)
{
    struct sfc_rng rng;
    sfc_rng_seed(&rng, 1);
    struct sfc_resnet net;
    struct sfc_irnhead hd;
    model(&net, &hd, &rng, 0);
    struct sfc_sgd opt;
    if (sfc_sgd_init(&opt, hd.size, 1e-4, 0.9, 1000, 0)) return 1;
    struct sfc_range all = {0, hd.size};
    sfc_sgd_add_group(&opt, 0.1, 1e-4, 1, &all);
    struct sfc_pathidx p;
    if (sfc_pathidx_init(&p, SFC_IRN_TRAIN_RADIUS)) return 1;
    int S = 512, g = sfc_irn_grid_side(S);
    size_t S2 = (size_t)S * S, gg = (size_t)g * g;
    float *x = sfc_xmalloc(sizeof(float) * 3 * S2 * batch);
    fill(x, 3 * S2 * batch, &rng);
    uint8_t *grid = sfc_xmalloc(gg * batch);
    for (int n = 0; n < batch; n++) /* 16x16 blocks of classes 0..3, some 255 */
        for (int y = 0; y < g; y++)
            for (int c = 0; c < g; c++) {
                uint64_t v = (uint64_t)(n * 131 + y / 16) * 7919 + c / 16;
                grid[n * gg + (size_t)y * g + c] =
                    (uint8_t)((v * 2654435761u >> 7) % 5 == 4 ? 255
                              : (v * 2654435761u >> 9) % 4);
            }
    float *dlogit = sfc_xmalloc(sizeof(float) * gg * micro);
    float *scratch = sfc_xmalloc(sizeof(float) * sfc_irn_loss_scratch(&p, g, g));
    double t[100], c[100];
    for (int r = -1; r < runs; r++) {
        double t0 = sfc_now(), c0 = cpu_seconds();
        double sums[3] = {0, 0, 0};
        sfc_irn_label_sums(&p, grid, batch, g, g, 21, sums);
        sfc_irnhead_zero_grad(&hd);
        double loss = 0;
        for (int m0 = 0; m0 < batch; m0 += micro) {
            forward(&net, &hd, x + m0 * 3 * S2, micro, S, 1);
            loss += sfc_irn_affinity_loss(&p, dlogit, hd.logit,
                                          grid + m0 * gg, micro, g, g, 21,
                                          sums, NULL, NULL, scratch);
            sfc_irnhead_backward(&hd, dlogit);
        }
        sfc_sgd_step(&opt, hd.params, hd.grads);
        if (!isfinite(loss)) return 1;
        if (r >= 0)
            t[r] = batch / (sfc_now() - t0),
            c[r] = (cpu_seconds() - c0) / batch;
    }
    printf("train %.4f %.0f %.4f\n", median(t, runs), peak_mb(),
           median(c, runs));
    free(x);
    free(grid);
    free(dlogit);
    free(scratch);
    sfc_pathidx_release(&p);
    sfc_sgd_release(&opt);
    sfc_irnhead_release(&hd);
    sfc_resnet_release(&net);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "walk") && argc >= 5) {
        int runs = argc > 5 ? atoi(argv[5]) : 5;
        return walk(argv[2], atoi(argv[3]), argv[4],
                    runs < 1 || runs > 100 ? 5 : runs,
                    argc > 6 && !strcmp(argv[6], "f64"));
    }
    if (!strcmp(mode, "edge") || !strcmp(mode, "train")) {
        int runs = argc > 2 ? atoi(argv[2]) : 3;
        if (runs < 1 || runs > 100) runs = 3;
        if (mode[0] == 'e') return edge(runs);
        int batch = argc > 3 ? atoi(argv[3]) : 8;
        int micro = argc > 4 ? atoi(argv[4]) : 4;
        if (batch < 1 || micro < 1 || batch % micro) batch = 8, micro = 4;
        return train(runs, batch, micro);
    }
    fprintf(stderr, "usage: bench-irn walk IN.npz K OUT.npy [runs] [f32|f64]\n"
                    "       bench-irn edge [runs]\n"
                    "       bench-irn train [runs] [batch] [micro]\n");
    return 2;
}
