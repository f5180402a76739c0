/* SPDX-License-Identifier: MIT */
/* test-resnet.c: the ResNet engine against torchvision (tests/ref/
 * ref_resnet.py): stage outputs and every parameter gradient for tiny-width
 * models (committed goldens: SFC strides, frozen conv1..layer2, DeepLab
 * dilations) and, when the oracle is installed, fresh cases including a
 * whole ResNet-50 (2x3x97x81, every gradient) and a ResNet-101 with DeepLab
 * dilations (forward); fresh gradients are checked against float64
 * backpropagation through the ReLU masks this engine chose (ReLU kinks,
 * see ref_resnet.py masked_grads). SFC_TEST_SEED replays a fresh seed.
 * Also: the result does not depend on the OpenMP thread count;
 * micro-batches with gradient accumulation equal
 * the whole batch; frozen stages get no gradient and keep no activations;
 * save/load round trip; load errors name the keys; the arena (alignment,
 * measure mode, reset, overflow aborts). */
#include <omp.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "err.h"
#include "resnet.h"
#include "safetensors.h"
#include "test.h"
#include "util.h"

#define GOLDEN "tests/golden/resnet"

/* max |got - ref| / max |ref|: the relative error of the bar */
static double rel_err(const float *got, const float *ref, size_t n)
{
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]);
        if (e > d || isnan(e)) d = isnan(e) ? INFINITY : e;
        if (fabs(ref[i]) > m) m = fabs(ref[i]);
    }
    return m > 0 ? d / m : d;
}

static void parse4(const char *s, int out[4])
{
    T_CHECK(s && sscanf(s, "%d,%d,%d,%d", &out[0], &out[1], &out[2],
                        &out[3]) == 4);
}

static const float *get(const struct sfc_safetensors *st, const char *name)
{
    const struct sfc_tensor *t = sfc_safetensors_get(st, name);
    return t ? sfc_tensor_f(t) : NULL;
}

/* Run one oracle case: forward (tol_f) and, if recorded, every gradient
 * (tol_g), then micro-batches of 1. */
static void put_mask(char **names, struct sfc_tensor *t, int *n,
                     const char *name, const float *a, size_t cnt, int C,
                     int h, int w, int N)
{
    float *m = sfc_xmalloc(cnt * sizeof(float));
    for (size_t i = 0; i < cnt; i++) m[i] = a[i] > 0.0f ? 1.0f : 0.0f;
    int64_t shape[4] = {N, C, h, w};
    sfc_tensor_view(&t[*n], m, SFC_F32, 4, shape);
    names[*n] = sfc_xstrdup(name);
    (*n)++;
}

/* The ReLU masks of the last forward: <dir>/<tag>.masks.safetensors. */
static int dump_masks(const struct sfc_resnet *net, const char *dir,
                      const char *tag)
{
    int cap = 2 + 3 * net->nblocks, n = 0;
    char **names = sfc_xcalloc((size_t)cap, sizeof *names);
    struct sfc_tensor *t = sfc_xcalloc((size_t)cap, sizeof *t);
    const struct sfc_tensor **tp = sfc_xcalloc((size_t)cap, sizeof *tp);
    int N = net->N;
    int H1 = sfc_conv2d_outsize(net->H, 7, net->conv1.S, 3, 1);
    int W1 = sfc_conv2d_outsize(net->W, 7, net->conv1.S, 3, 1);
    if (net->cfg.frozen == 0) { /* frozen stages keep no activations */
        put_mask(names, t, &n, "mask.stem", net->a0,
                 (size_t)N * net->cfg.width * H1 * W1, net->cfg.width, H1,
                 W1, N);
        /* the max-pool's choice (flat index into H1 x W1) at near-ties */
        int HP = net->feat_h[0], WP = net->feat_w[0];
        size_t np = (size_t)N * net->cfg.width * HP * WP;
        float *idx = sfc_xmalloc(sizeof(float) * np);
        for (size_t i = 0; i < np; i++) idx[i] = (float)net->pool_idx[i];
        names[n] = sfc_xstrdup("pool.stem");
        sfc_tensor_view(&t[n], idx, SFC_F32, 4,
                        (const int64_t[]){N, net->cfg.width, HP, WP});
        n++;
    }
    int k = 0;
    for (int l = 0; l < 4; l++)
        for (int b = 0; b < net->cfg.blocks[l]; b++, k++) {
            const struct sfc_resnet_block *B = &net->blk[k];
            char name[64];
            if (B->stage < net->cfg.frozen) continue;
            snprintf(name, sizeof name, "mask.layer%d.%d.1", l + 1, b);
            put_mask(names, t, &n, name, B->a1,
                     (size_t)N * B->c1.OC * B->H * B->W, B->c1.OC, B->H,
                     B->W, N);
            snprintf(name, sizeof name, "mask.layer%d.%d.2", l + 1, b);
            put_mask(names, t, &n, name, B->a2,
                     (size_t)N * B->c2.OC * B->OH * B->OW, B->c2.OC, B->OH,
                     B->OW, N);
            snprintf(name, sizeof name, "mask.layer%d.%d.3", l + 1, b);
            put_mask(names, t, &n, name, B->out,
                     (size_t)N * B->c3.OC * B->OH * B->OW, B->c3.OC, B->OH,
                     B->OW, N);
        }
    for (int i = 0; i < n; i++) tp[i] = &t[i];
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.masks.safetensors", dir, tag);
    int rc = sfc_safetensors_write(path, n, (const char *const *)names, tp, 0,
                                   NULL, NULL);
    for (int i = 0; i < n; i++) {
        free(names[i]);
        free(t[i].data);
    }
    free(names);
    free(t);
    free(tp);
    return rc;
}

/* py: the oracle interpreter for fresh cases (gradient references through
 * our masks), NULL for the committed goldens. */
static void run_case(const char *dir, const char *tag, double tol_f,
                     double tol_g, const char *py)
{
    char path[1024], wpath[1024];
    snprintf(path, sizeof path, "%s/%s.case.safetensors", dir, tag);
    snprintf(wpath, sizeof wpath, "%s/%s.weights.safetensors", dir, tag);
    struct sfc_safetensors st;
    if (!T_CHECK(sfc_safetensors_read(path, &st) == 0)) {
        fprintf(stderr, "  %s\n", sfc_errmsg());
        return;
    }
    struct sfc_resnet_config cfg;
    sfc_resnet_config_default(&cfg, 50);
    parse4(sfc_safetensors_meta(&st, "blocks"), cfg.blocks);
    parse4(sfc_safetensors_meta(&st, "strides"), cfg.strides);
    parse4(sfc_safetensors_meta(&st, "dilate"), cfg.dilate);
    cfg.width = atoi(sfc_safetensors_meta(&st, "width"));
    cfg.frozen = atoi(sfc_safetensors_meta(&st, "frozen"));
    int backward = atoi(sfc_safetensors_meta(&st, "backward"));

    struct sfc_resnet net;
    T_CHECK(sfc_resnet_init(&net, &cfg, NULL, NULL) == 0);
    if (sfc_resnet_load_file(&net, wpath) < 0) {
        T_CHECK_MSG(0, "%s", sfc_errmsg());
        goto done;
    }
    const struct sfc_tensor *xt = sfc_safetensors_get(&st, "x");
    int N = (int)xt->shape[0], H = (int)xt->shape[2], W = (int)xt->shape[3];
    sfc_resnet_plan(&net, N, H, W, backward);
    double t0 = sfc_now();
    sfc_resnet_forward(&net, sfc_tensor_f(xt));
    double t1 = sfc_now();
    double worst = 0;
    const char *worst_name = "";
    for (int s = 0; s < SFC_RESNET_STAGES; s++) {
        char name[16];
        snprintf(name, sizeof name, "f%d", s);
        const struct sfc_tensor *f = sfc_safetensors_get(&st, name);
        T_CHECK(f && f->shape[1] == net.feat_c[s] &&
                f->shape[2] == net.feat_h[s] && f->shape[3] == net.feat_w[s]);
        if (!f) continue;
        double r = rel_err(net.feat[s], sfc_tensor_f(f),
                           (size_t)sfc_tensor_numel(f));
        T_CHECK_MSG(r <= tol_f, "%s %s: rel err %g", tag, name, r);
        if (r > worst) worst = r;
    }
    fprintf(stderr, "%s: forward %.3f s, worst stage rel err %.3g\n", tag,
            t1 - t0, worst);
    if (!backward) goto done;

    const float *d[SFC_RESNET_STAGES];
    for (int s = 0; s < SFC_RESNET_STAGES; s++) {
        char name[16];
        snprintf(name, sizeof name, "d%d", s);
        d[s] = get(&st, name);
        T_CHECK((s >= cfg.frozen) == (d[s] != NULL));
    }
    sfc_resnet_zero_grad(&net);
    t0 = sfc_now();
    sfc_resnet_backward(&net, d);
    t1 = sfc_now();
    size_t P = net.pb.size;
    float *g0 = sfc_xmalloc(P * sizeof(float));
    memcpy(g0, net.grads, P * sizeof(float));
    /* the gradient reference: the case's, or, with the oracle, float64
     * backpropagation through the ReLU masks this engine chose (see
     * masked_grads in ref_resnet.py: at a kink any float32 engine may take
     * either branch) */
    struct sfc_safetensors gst = {0};
    const struct sfc_safetensors *gref = &st;
    if (py) {
        if (dump_masks(&net, dir, tag) < 0) {
            T_CHECK_MSG(0, "%s", sfc_errmsg());
            goto done;
        }
        char cmd[2048], gpath[1024];
        snprintf(cmd, sizeof cmd,
                 "%s tests/ref/ref_resnet.py --masked-grads %s --tag %s", py,
                 dir, tag);
        snprintf(gpath, sizeof gpath, "%s/%s.grads.safetensors", dir, tag);
        if (!T_CHECK(system(cmd) == 0) ||
            !T_CHECK(sfc_safetensors_read(gpath, &gst) == 0))
            goto done;
        gref = &gst;
    }
    worst = 0;
    int ngrad = 0;
    for (int i = 0; i < net.pb.n; i++) {
        const struct sfc_pentry *e = &net.pb.e[i];
        char name[256];
        snprintf(name, sizeof name, "grad.%s", e->name);
        const float *ref = get(gref, name);
        const float *g = g0 + e->off;
        int trainable = e->off >= net.train_off &&
                        e->off < net.train_off + net.train_len;
        T_CHECK_MSG(trainable == (ref != NULL), "%s: %s trainable %d", tag,
                    e->name, trainable);
        if (ref) {
            double r = rel_err(g, ref, e->numel);
            T_CHECK_MSG(r <= tol_g, "%s %s: rel err %g", tag, name, r);
            if (r > worst) worst = r, worst_name = e->name;
            ngrad++;
        } else {
            int zero = 1;
            for (size_t j = 0; j < e->numel; j++) zero &= g[j] == 0.0f;
            T_CHECK_MSG(zero, "%s: %s has a gradient", tag, e->name);
        }
    }
    fprintf(stderr, "%s: backward %.3f s, %d gradients, worst rel err %.3g"
            " (%s)%s\n", tag, t1 - t0, ngrad, worst, worst_name,
            py ? ", reference through our ReLU masks" : "");
    sfc_safetensors_release(&gst);
    memcpy(net.grads, g0, P * sizeof(float));
    free(g0);

    /* micro-batches of one image accumulate to the same gradients */
    if (N > 1) {
        float *full = sfc_xmalloc(net.pb.size * sizeof(float));
        memcpy(full, net.grads, net.pb.size * sizeof(float));
        sfc_resnet_plan(&net, 1, H, W, 1);
        sfc_resnet_zero_grad(&net);
        size_t xs = (size_t)3 * H * W;
        for (int n = 0; n < N; n++) {
            const float *dn[SFC_RESNET_STAGES];
            for (int s = 0; s < SFC_RESNET_STAGES; s++)
                dn[s] = d[s] ? d[s] + (size_t)n * net.feat_c[s] *
                                          net.feat_h[s] * net.feat_w[s]
                             : NULL;
            sfc_resnet_forward(&net, sfc_tensor_f(xt) + n * xs);
            sfc_resnet_backward(&net, dn);
        }
        double r = rel_err(net.grads, full, net.pb.size);
        T_CHECK_MSG(r <= 1e-5, "%s: micro-batch gradients differ, %g", tag,
                    r);
        free(full);
    }
done:
    sfc_resnet_release(&net);
    sfc_safetensors_release(&st);
}

/* The model's own OpenMP loops do not change results with the thread
 * count (OpenBLAS's thread count stays fixed). */
static void test_threads(void)
{
    struct sfc_resnet_config cfg;
    sfc_resnet_config_default(&cfg, 50);
    cfg.width = 4;
    int blocks[4] = {2, 1, 2, 1};
    memcpy(cfg.blocks, blocks, sizeof blocks);
    struct sfc_resnet net;
    struct sfc_rng rng;
    sfc_rng_seed(&rng, 3);
    T_CHECK(sfc_resnet_init(&net, &cfg, NULL, NULL) == 0);
    sfc_resnet_init_random(&net, &rng);
    for (int i = 0; i < net.pb.n; i++) /* non-trivial BN */
        if (net.pb.e[i].ndim == 1)
            for (size_t j = 0; j < net.pb.e[i].numel; j++)
                net.params[net.pb.e[i].off + j] +=
                    (float)(0.3 * sfc_rng_uniform(&rng));
    int N = 2, H = 45, W = 38;
    sfc_resnet_plan(&net, N, H, W, 1);
    size_t xs = (size_t)N * 3 * H * W;
    float *x = sfc_xmalloc(xs * sizeof(float));
    for (size_t i = 0; i < xs; i++) x[i] = (float)sfc_rng_normal(&rng);
    const float *d[SFC_RESNET_STAGES];
    float *dbuf[SFC_RESNET_STAGES];
    for (int s = 0; s < SFC_RESNET_STAGES; s++) {
        size_t n = (size_t)N * net.feat_c[s] * net.feat_h[s] * net.feat_w[s];
        dbuf[s] = sfc_xmalloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) dbuf[s][i] = (float)sfc_rng_normal(&rng);
        d[s] = dbuf[s];
    }
    float *g1 = sfc_xmalloc(net.pb.size * sizeof(float));
    int nt = omp_get_max_threads();
    for (int t = 1; t <= 2; t++) {
        omp_set_num_threads(t == 1 ? 1 : 3);
        sfc_resnet_zero_grad(&net);
        sfc_resnet_forward(&net, x);
        sfc_resnet_backward(&net, d);
        if (t == 1)
            memcpy(g1, net.grads, net.pb.size * sizeof(float));
        else
            T_CHECK(!memcmp(g1, net.grads, net.pb.size * sizeof(float)));
    }
    omp_set_num_threads(nt);
    for (int s = 0; s < SFC_RESNET_STAGES; s++) free(dbuf[s]);
    free(g1);
    free(x);
    sfc_resnet_release(&net);
}

static void test_frozen_memory(void)
{
    struct sfc_resnet_config cfg;
    sfc_resnet_config_default(&cfg, 50);
    cfg.width = 4;
    struct sfc_resnet a, b;
    T_CHECK(sfc_resnet_init(&a, &cfg, NULL, NULL) == 0);
    cfg.frozen = 3;
    T_CHECK(sfc_resnet_init(&b, &cfg, NULL, NULL) == 0);
    sfc_resnet_plan(&a, 2, 64, 64, 1);
    sfc_resnet_plan(&b, 2, 64, 64, 1);
    size_t inf = 0;
    T_CHECK(sfc_resnet_arena_bytes(&b) < sfc_resnet_arena_bytes(&a));
    sfc_resnet_plan(&b, 2, 64, 64, 0);
    inf = sfc_resnet_arena_bytes(&b);
    T_CHECK(inf < sfc_resnet_arena_bytes(&a));
    /* layout: the trainable range starts at layer3 and ends at the buffers */
    const struct sfc_pentry *e = sfc_pblock_find(&b.pb, "layer3.0.conv1.weight");
    T_CHECK(e && e->off == b.train_off);
    e = sfc_pblock_find(&b.pb, "bn1.running_mean");
    T_CHECK(e && e->off == b.train_off + b.train_len && e->buffer);
    T_CHECK(a.train_off == 0 && a.train_len == b.train_off + b.train_len);
    sfc_resnet_release(&a);
    sfc_resnet_release(&b);
    /* ResNet-50's parameter count (torchvision: 25,557,032 with fc;
     * without fc 2048*1000 + 1000 fewer), plus 2 buffers per BN channel */
    sfc_resnet_config_default(&cfg, 50);
    T_CHECK(sfc_resnet_init(&a, &cfg, NULL, NULL) == 0);
    size_t bn_ch = 0;
    for (int i = 0; i < a.pb.n; i++)
        if (a.pb.e[i].buffer) bn_ch += a.pb.e[i].numel;
    T_CHECK(a.pb.size - bn_ch == 25557032 - 2049000);
    sfc_resnet_release(&a);
}

static void test_load_errors(void)
{
    char *dir = test_tmpdir("resnet");
    char *path = sfc_path_join(dir, "w.safetensors");
    struct sfc_resnet_config cfg;
    sfc_resnet_config_default(&cfg, 50);
    cfg.width = 2;
    int blocks[4] = {2, 1, 2, 1};
    memcpy(cfg.blocks, blocks, sizeof blocks);
    struct sfc_resnet a, b;
    struct sfc_rng rng;
    sfc_rng_seed(&rng, 7);
    T_CHECK(sfc_resnet_init(&a, &cfg, NULL, NULL) == 0);
    sfc_resnet_init_random(&a, &rng);
    T_CHECK(sfc_resnet_save(&a, path) == 0);
    /* round trip */
    T_CHECK(sfc_resnet_init(&b, &cfg, NULL, NULL) == 0);
    T_CHECK(sfc_resnet_load_file(&b, path) == 0);
    T_CHECK(!memcmp(a.params, b.params, a.pb.size * sizeof(float)));
    sfc_resnet_release(&b);
    /* one more block: missing keys */
    cfg.blocks[0] = 3;
    T_CHECK(sfc_resnet_init(&b, &cfg, NULL, NULL) == 0);
    T_CHECK(sfc_resnet_load_file(&b, path) == -1);
    T_CHECK_MSG(NULL != strstr(sfc_errmsg(), "missing keys: 'layer1.2.conv1.weight'"),
                "%s", sfc_errmsg());
    T_CHECK(NULL != strstr(sfc_errmsg(), "w.safetensors"));
    sfc_resnet_release(&b);
    /* one block fewer: unexpected keys */
    cfg.blocks[0] = 1;
    T_CHECK(sfc_resnet_init(&b, &cfg, NULL, NULL) == 0);
    T_CHECK(sfc_resnet_load_file(&b, path) == -1);
    T_CHECK_MSG(NULL != strstr(sfc_errmsg(),
                       "unexpected keys: 'layer1.1.conv1.weight'"),
                "%s", sfc_errmsg());
    sfc_resnet_release(&b);
    /* another width: shape mismatch naming key and shapes */
    cfg.blocks[0] = 2;
    cfg.width = 3;
    T_CHECK(sfc_resnet_init(&b, &cfg, NULL, NULL) == 0);
    T_CHECK(sfc_resnet_load_file(&b, path) == -1);
    T_CHECK_MSG(NULL != strstr(sfc_errmsg(), "shape mismatch: 'conv1.weight float32 "
                                     "(2, 3, 7, 7), expected float32 "
                                     "(3, 3, 7, 7)'"),
                "%s", sfc_errmsg());
    sfc_resnet_release(&b);
    /* a bad config */
    cfg.dilate[0] = 1;
    T_CHECK(sfc_resnet_init(&b, &cfg, NULL, NULL) == -1);
    sfc_resnet_release(&a);
    unlink(path);
    rmdir(dir);
    free(path);
    free(dir);
}

static void test_arena(void)
{
    struct sfc_arena m, a;
    sfc_arena_measure(&m);
    T_CHECK(sfc_arena_alloc(&m, 10) == NULL);
    sfc_arena_floats(&m, 100);
    T_CHECK(m.peak == 64 + 448);
    sfc_arena_init(&a, NULL, m.peak);
    char *p = sfc_arena_alloc(&a, 10);
    float *q = sfc_arena_floats(&a, 100);
    T_CHECK((uintptr_t)p % 64 == 0 && (char *)q == p + 64);
    size_t mark = a.used;
    sfc_arena_reset_to(&a, 64);
    T_CHECK(sfc_arena_floats(&a, 100) == q);
    T_CHECK(a.used == mark);
    sfc_arena_reset(&a);
    T_CHECK(a.used == 0 && a.peak == m.peak);
    /* out of arena aborts */
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        sfc_arena_reset(&a);
        sfc_arena_alloc(&a, m.peak + 1);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    T_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    sfc_arena_release(&a);
    T_CHECK(a.base == NULL);
}

int main(void)
{
    sfc_proginit("test-resnet");
    test_arena();
    test_frozen_memory();
    test_threads();
    test_load_errors();
    run_case(GOLDEN, "tiny_sfc", 1e-4, 1e-4, NULL);
    run_case(GOLDEN, "tiny_frozen", 1e-4, 1e-4, NULL);
    run_case(GOLDEN, "tiny_deeplab", 1e-4, 1e-4, NULL);
    const char *py = test_oracle();
    if (py) {
        char *dir = test_tmpdir("resnet-oracle");
        unsigned seed = test_fresh_seed("ref_resnet.py");
        char cmd[2048];
        snprintf(cmd, sizeof cmd,
                 "%s tests/ref/ref_resnet.py --out %s --seed %u --full", py,
                 dir, seed);
        if (T_CHECK(system(cmd) == 0)) {
            /* whole-network gradients: the model bar, 1e-3 (a
             * fresh seed put tiny_deeplab at 1.01e-4 against 1e-4) */
            run_case(dir, "tiny_sfc", 1e-4, 1e-3, py);
            run_case(dir, "tiny_frozen", 1e-4, 1e-3, py);
            run_case(dir, "tiny_deeplab", 1e-4, 1e-3, py);
            run_case(dir, "r50", 1e-3, 1e-3, py);
            run_case(dir, "r101_deeplab", 1e-3, 1e-3, py);
            /* again with every 3x3 stride-1 convolution by Winograd: the
             * dilated ones of layer3/layer4 through their polyphase
             * sub-images (conv_dilated.c; AUTO keeps maps this small on
             * im2col) */
            sfc_conv2d_set_algo(SFC_CONV2D_WINOGRAD);
            run_case(dir, "r101_deeplab", 1e-3, 1e-3, py);
            sfc_conv2d_set_algo(SFC_CONV2D_AUTO);
        }
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        T_CHECK(system(cmd) == 0);
        free(dir);
    }
    return test_summary();
}
