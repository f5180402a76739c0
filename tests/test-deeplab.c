/* SPDX-License-Identifier: MIT */
/* test-deeplab.c: lib/deeplab.c against PyTorch (tests/ref/ref_deeplab.py:
 * torchvision's dilated ResNet + the ASPP head, the MSC wrapper, PIL
 * nearest labels, CrossEntropyLoss(ignore_index=255)): per-scale logits,
 * the max-fused logits, the loss of every output, the gradient of every
 * parameter (issue bar: relative error <= 1e-3, relative to the tensor's
 * max |ref|), and the weights after a few SGD steps with DeepLab's
 * parameter groups (the change of every parameter within 1e-3 of the
 * reference change). Committed goldens (a three-scale and a single-scale
 * case) and, with the oracle, fresh seeds.
 * Independently of PyTorch: the cross-entropy's backward against central
 * differences of its forward (double); micro-batches with the batch's
 * label counts give the whole batch's gradient; the inference plan gives
 * the training forward's logits; the result does not depend on the
 * thread count; checkpoint round trip with the model metadata; the
 * parameter groups cover exactly the trained entries. */
#include <omp.h>

#include "deeplab.h"
#include "err.h"
#include "ops.h"
#include "optim.h"
#include "safetensors.h"
#include "test.h"
#include "util.h"

#define TOL_F 1e-4
#define TOL_G 1e-3

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

static int parse_list(const char *s, double *v, int max)
{
    int n = 0;
    while (s && *s && n < max) {
        char *end;
        v[n++] = strtod(s, &end);
        if (*end != ',') break;
        s = end + 1;
    }
    return n;
}

static double meta_d(const struct sfc_safetensors *st, const char *k)
{
    const char *v = sfc_safetensors_meta(st, k);
    T_CHECK_MSG(v != NULL, "metadata %s", k);
    return v ? atof(v) : 0;
}

struct kase {
    struct sfc_safetensors st;
    struct sfc_deeplab_config cfg;
    double scales[SFC_DEEPLAB_MAXSCALES];
    int nscale, N, H, W;
    const float *x;
    uint8_t *lab;
    char wpath[1024];
};

static int kase_open(struct kase *k, const char *dir, const char *tag)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.case.safetensors", dir, tag);
    snprintf(k->wpath, sizeof k->wpath, "%s/%s.weights.safetensors", dir,
             tag);
    if (!T_CHECK(sfc_safetensors_read(path, &k->st) == 0)) {
        fprintf(stderr, "  %s\n", sfc_errmsg());
        return -1;
    }
    double v[8];
    sfc_deeplab_config_default(&k->cfg, 50, (int)meta_d(&k->st, "nclass"));
    T_CHECK(parse_list(sfc_safetensors_meta(&k->st, "blocks"), v, 4) == 4);
    for (int i = 0; i < 4; i++) k->cfg.bb.blocks[i] = (int)v[i];
    T_CHECK(parse_list(sfc_safetensors_meta(&k->st, "rates"), v, 4) == 4);
    for (int i = 0; i < 4; i++) k->cfg.rates[i] = (int)v[i];
    k->cfg.bb.width = (int)meta_d(&k->st, "width");
    k->nscale = parse_list(sfc_safetensors_meta(&k->st, "scales"), k->scales,
                           SFC_DEEPLAB_MAXSCALES);
    const struct sfc_tensor *xt = sfc_safetensors_get(&k->st, "x");
    const struct sfc_tensor *lt = sfc_safetensors_get(&k->st, "lab");
    k->N = (int)xt->shape[0];
    k->H = (int)xt->shape[2];
    k->W = (int)xt->shape[3];
    k->x = sfc_tensor_f(xt);
    size_t n = (size_t)k->N * k->H * k->W;
    k->lab = sfc_xmalloc(n);
    for (size_t i = 0; i < n; i++) k->lab[i] = (uint8_t)sfc_tensor_f(lt)[i];
    return 0;
}

static void kase_close(struct kase *k)
{
    free(k->lab);
    sfc_safetensors_release(&k->st);
}

static int load_weights(struct sfc_deeplab *net, const char *wpath)
{
    struct sfc_safetensors w;
    if (sfc_safetensors_read(wpath, &w)) return -1;
    int rc = sfc_deeplab_load(net, &w, "", wpath);
    sfc_safetensors_release(&w);
    return rc;
}

/* forward, loss terms and gradients of the whole batch; returns the loss */
static double batch_grads(struct sfc_deeplab *net, const struct kase *k,
                          double *parts)
{
    double count[SFC_DEEPLAB_MAXSCALES + 1] = {0};
    T_CHECK(sfc_deeplab_plan(net, k->N, k->H, k->W, k->nscale, k->scales,
                             1) == 0);
    sfc_deeplab_count(net, k->lab, k->N, count);
    sfc_deeplab_zero_grad(net);
    return sfc_deeplab_train(net, k->x, k->lab, count, parts);
}

static void check_case(const char *dir, const char *tag)
{
    struct kase k;
    if (kase_open(&k, dir, tag)) return;
    struct sfc_deeplab net;
    T_CHECK(sfc_deeplab_init(&net, &k.cfg, NULL, NULL) == 0);
    if (!T_CHECK(load_weights(&net, k.wpath) == 0)) {
        fprintf(stderr, "  %s\n", sfc_errmsg());
        goto done;
    }
    double parts[SFC_DEEPLAB_MAXSCALES + 1];
    batch_grads(&net, &k, parts);
    double worst_f = 0, worst_g = 0;
    for (int s = 0; s < k.nscale; s++) {
        char name[32];
        snprintf(name, sizeof name, "logit.%d", s);
        const struct sfc_tensor *t = sfc_safetensors_get(&k.st, name);
        T_CHECK(t && t->shape[2] == net.sc[s].lh && t->shape[3] == net.sc[s].lw);
        if (!t) continue;
        double r = rel_err(net.sc[s].logit, sfc_tensor_f(t),
                           (size_t)sfc_tensor_numel(t));
        T_CHECK_MSG(r <= TOL_F, "%s %s: rel err %g", tag, name, r);
        worst_f = fmax(worst_f, r);
    }
    const struct sfc_tensor *ft = sfc_safetensors_get(&k.st, "fused");
    double r = rel_err(net.fused, sfc_tensor_f(ft),
                       (size_t)sfc_tensor_numel(ft));
    T_CHECK_MSG(r <= TOL_F, "%s fused: rel err %g", tag, r);
    worst_f = fmax(worst_f, r);
    const float *lref = sfc_tensor_f(sfc_safetensors_get(&k.st, "loss"));
    for (int s = 0; s <= k.nscale; s++) {
        double e = fabs(parts[s] - lref[s]) / fabs(lref[s]);
        T_CHECK_MSG(e <= TOL_F, "%s loss %d: %.9g vs %.9g", tag, s, parts[s],
                    lref[s]);
        worst_f = fmax(worst_f, e);
    }
    for (int i = 0; i < net.pb.n; i++) {
        const struct sfc_pentry *e = &net.pb.e[i];
        if (e->buffer) continue;
        char name[160];
        snprintf(name, sizeof name, "grad.%s", e->name);
        const struct sfc_tensor *g = sfc_safetensors_get(&k.st, name);
        if (!T_CHECK(g && (size_t)sfc_tensor_numel(g) == e->numel)) {
            fprintf(stderr, "    %s: %s\n", tag, name);
            continue;
        }
        double rg = rel_err(net.grads + e->off, sfc_tensor_f(g), e->numel);
        T_CHECK_MSG(rg <= TOL_G, "%s %s: rel err %g", tag, name, rg);
        worst_g = fmax(worst_g, rg);
    }
    fprintf(stderr, "%s/%s: forward + loss rel err %.3g, gradients %.3g\n",
            dir, tag, worst_f, worst_g);

    /* micro-batches of one image with the batch's counts */
    size_t P = net.pb.size;
    float *g0 = sfc_xmalloc(P * sizeof(float));
    memcpy(g0, net.grads, P * sizeof(float));
    float *fused0 = sfc_xmalloc(sizeof(float) * (size_t)sfc_tensor_numel(ft));
    memcpy(fused0, net.fused, sizeof(float) * (size_t)sfc_tensor_numel(ft));
    if (k.N > 1) {
        double count[SFC_DEEPLAB_MAXSCALES + 1] = {0};
        sfc_deeplab_count(&net, k.lab, k.N, count);
        sfc_deeplab_zero_grad(&net);
        T_CHECK(sfc_deeplab_plan(&net, 1, k.H, k.W, k.nscale, k.scales, 1) ==
                0);
        double lsum = 0;
        for (int n = 0; n < k.N; n++)
            lsum += sfc_deeplab_train(&net, k.x + (size_t)n * 3 * k.H * k.W,
                                      k.lab + (size_t)n * k.H * k.W, count,
                                      NULL);
        double ltot = 0;
        for (int s = 0; s <= k.nscale; s++) ltot += lref[s];
        T_CHECK_MSG(fabs(lsum - ltot) <= 1e-4 * ltot, "micro loss %g vs %g",
                    lsum, ltot);
        double rm = rel_err(net.grads, g0, P);
        T_CHECK_MSG(rm <= 1e-5, "%s: micro-batches vs batch rel err %g", tag,
                    rm);
    }
    /* inference plan: the same fused logits */
    T_CHECK(sfc_deeplab_plan(&net, k.N, k.H, k.W, k.nscale, k.scales, 0) ==
            0);
    sfc_deeplab_forward(&net, k.x);
    T_CHECK(rel_err(net.fused, fused0, (size_t)sfc_tensor_numel(ft)) <= 1e-6);

    /* inference on an odd-sized image with its mirror */
    {
        char pp[1024];
        snprintf(pp, sizeof pp, "%s/%s.predict.safetensors", dir, tag);
        struct sfc_safetensors ps;
        if (T_CHECK(sfc_safetensors_read(pp, &ps) == 0)) {
            const struct sfc_tensor *it = sfc_safetensors_get(&ps, "img");
            const struct sfc_tensor *ot = sfc_safetensors_get(&ps, "out");
            int PH = (int)it->shape[0], PW = (int)it->shape[1];
            uint8_t *img = sfc_xmalloc((size_t)PH * PW * 3);
            for (size_t i = 0; i < (size_t)PH * PW * 3; i++)
                img[i] = (uint8_t)sfc_tensor_f(it)[i];
            float *o = sfc_xmalloc(sizeof(float) * sfc_tensor_numel(ot));
            T_CHECK(sfc_deeplab_predict(&net, o, img, PH, PW, k.nscale,
                                        k.scales, 1) == 0);
            double rp = rel_err(o, sfc_tensor_f(ot),
                                (size_t)sfc_tensor_numel(ot));
            T_CHECK_MSG(rp <= TOL_F, "%s predict: rel err %g", tag, rp);
            fprintf(stderr, "%s/%s: predict (flip) rel err %.3g\n", dir,
                    tag, rp);
            free(img);
            free(o);
            sfc_safetensors_release(&ps);
        }
    }

    /* SGD steps with DeepLab's groups */
    if (!T_CHECK(load_weights(&net, k.wpath) == 0)) goto free_done;
    float *p0 = sfc_xmalloc(P * sizeof(float));
    memcpy(p0, net.params, P * sizeof(float));
    struct sfc_sgd opt;
    T_CHECK(sfc_sgd_init(&opt, P, meta_d(&k.st, "momentum"),
                         meta_d(&k.st, "power"),
                         (long)meta_d(&k.st, "max_step"), 0) == 0);
    sfc_deeplab_sgd_groups(&net, &opt, meta_d(&k.st, "lr"),
                           meta_d(&k.st, "wd"), meta_d(&k.st, "head_mult"),
                           meta_d(&k.st, "bias_mult"), 0);
    int steps = (int)meta_d(&k.st, "steps");
    for (int t = 0; t < steps; t++) {
        batch_grads(&net, &k, NULL);
        sfc_sgd_step(&opt, net.params, net.grads);
    }
    double worst_s = 0;
    float *d = sfc_xmalloc(P * sizeof(float)), *dr = sfc_xmalloc(P * 4);
    for (int i = 0; i < net.pb.n; i++) {
        const struct sfc_pentry *e = &net.pb.e[i];
        if (e->buffer) continue;
        char name[160];
        snprintf(name, sizeof name, "step.%s", e->name);
        const struct sfc_tensor *s = sfc_safetensors_get(&k.st, name);
        if (!T_CHECK(s != NULL)) {
            fprintf(stderr, "    %s: %s\n", tag, name);
            continue;
        }
        for (size_t j = 0; j < e->numel; j++) {
            d[j] = net.params[e->off + j] - p0[e->off + j];
            dr[j] = sfc_tensor_f(s)[j] - p0[e->off + j];
        }
        double rs = rel_err(d, dr, e->numel);
        if (e->ndim == 1 && e->off < net.bb_size) /* BN: not trained */
            T_CHECK_MSG(rs == 0, "%s %s moved", tag, name);
        else
            T_CHECK_MSG(rs <= TOL_G, "%s %s after %d steps: rel err %g", tag,
                        name, steps, rs);
        worst_s = fmax(worst_s, rs);
    }
    fprintf(stderr, "%s/%s: %d SGD steps, weight change rel err %.3g\n", dir,
            tag, steps, worst_s);
    free(d);
    free(dr);
    free(p0);
    sfc_sgd_release(&opt);
free_done:
    free(g0);
    free(fused0);
done:
    sfc_deeplab_release(&net);
    kase_close(&k);
}

static void check_dir(const char *dir)
{
    check_case(dir, "msc");
    check_case(dir, "single");
}

/* ---- independent of PyTorch -------------------------------------------- */

static void test_ce_fd(void)
{
    enum { N = 2, C = 4, HW = 7 };
    struct sfc_rng r;
    sfc_rng_seed(&r, 7);
    float x[N * C * HW], dx[N * C * HW];
    uint8_t t[N * HW];
    for (int i = 0; i < N * C * HW; i++)
        x[i] = (float)(2 * sfc_rng_normal(&r));
    for (int i = 0; i < N * HW; i++)
        t[i] = i % 5 == 3 ? 255 : (uint8_t)sfc_rng_below(&r, C);
    t[1] = C; /* out of range: ignored like 255 */
    long cnt;
    double L = sfc_softmax_ce_forward(x, t, N, C, HW, &cnt);
    long want = 0;
    for (int i = 0; i < N * HW; i++) want += t[i] < C;
    T_CHECK(cnt == want);
    /* brute force: -log softmax in double */
    double ref = 0;
    for (int n = 0; n < N; n++)
        for (int p = 0; p < HW; p++) {
            int l = t[n * HW + p];
            if (l >= C) continue;
            double s = 0;
            for (int c = 0; c < C; c++) s += exp(x[(n * C + c) * HW + p]);
            ref += log(s) - x[(n * C + l) * HW + p];
        }
    T_CHECK_MSG(fabs(L - ref) <= 1e-9 * fabs(ref), "ce %g vs %g", L, ref);
    for (int i = 0; i < N * C * HW; i++) dx[i] = 0.5f; /* accumulates */
    sfc_softmax_ce_backward(dx, 1.0f / cnt, x, t, N, C, HW);
    float fd[N * C * HW];
    for (int i = 0; i < N * C * HW; i++) {
        float keep = x[i];
        double h = 1e-3;
        x[i] = (float)(keep + h);
        double lp = sfc_softmax_ce_forward(x, t, N, C, HW, NULL);
        x[i] = (float)(keep - h);
        double lm = sfc_softmax_ce_forward(x, t, N, C, HW, NULL);
        x[i] = keep;
        fd[i] = (float)(0.5 + (lp - lm) / (2 * h) / cnt);
    }
    test_close("ce backward vs finite differences", dx, fd, N * C * HW, 1e-4,
               1e-3);
}

/* a random tiny net; returns the config */
static void tiny(struct sfc_deeplab *net, struct sfc_deeplab_config *cfg)
{
    sfc_deeplab_config_default(cfg, 50, 4);
    int b[4] = {1, 1, 2, 1};
    memcpy(cfg->bb.blocks, b, sizeof b);
    cfg->bb.width = 2;
    T_CHECK(sfc_deeplab_init(net, cfg, NULL, NULL) == 0);
    struct sfc_rng r;
    sfc_rng_seed(&r, 11);
    sfc_deeplab_init_random(net, &r);
}

static void test_threads_and_io(void)
{
    struct sfc_deeplab net;
    struct sfc_deeplab_config cfg;
    tiny(&net, &cfg);
    enum { N = 2, H = 35, W = 29 };
    static float x[N * 3 * H * W];
    static uint8_t lab[N * H * W];
    struct sfc_rng r;
    sfc_rng_seed(&r, 5);
    for (int i = 0; i < N * 3 * H * W; i++) x[i] = (float)sfc_rng_normal(&r);
    for (int i = 0; i < N * H * W; i++)
        lab[i] = sfc_rng_below(&r, 6) == 0 ? 255 : (uint8_t)sfc_rng_below(&r, 4);
    double sc[3] = {1, 0.75, 0.5}, count[4] = {0};
    size_t P = net.pb.size;
    float *g[2];
    int nt = omp_get_max_threads();
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t ? 2 : 1);
        T_CHECK(sfc_deeplab_plan(&net, N, H, W, 3, sc, 1) == 0);
        if (!t) sfc_deeplab_count(&net, lab, N, count);
        sfc_deeplab_zero_grad(&net);
        double l = sfc_deeplab_train(&net, x, lab, count, NULL);
        T_CHECK(isfinite(l) && l > 0);
        g[t] = sfc_xmalloc(P * sizeof(float));
        memcpy(g[t], net.grads, P * sizeof(float));
    }
    omp_set_num_threads(nt);
    T_CHECK_MSG(!memcmp(g[0], g[1], P * sizeof(float)),
                "gradients depend on the thread count");
    /* the head's init: N(0, 0.01), bias 0 */
    size_t wn = (size_t)4 * 64 * 9;
    double s2 = 0;
    for (size_t i = 0; i < wn; i++) s2 += (double)net.w[1][i] * net.w[1][i];
    T_CHECK_MSG(fabs(sqrt(s2 / wn) - 0.01) < 0.002, "head std %g",
                sqrt(s2 / wn));
    T_CHECK(net.b[2][3] == 0);
    /* groups: conv weights, head weights, head biases; BN only if asked */
    struct sfc_sgd o;
    T_CHECK(sfc_sgd_init(&o, P, 0.9, 0.9, 10, 0) == 0);
    sfc_deeplab_sgd_groups(&net, &o, 1, 5e-4, 10, 20, 0);
    size_t tot[3] = {0, 0, 0}, want[3] = {0, 0, 0};
    for (int i = 0; i < net.pb.n; i++) {
        const struct sfc_pentry *e = &net.pb.e[i];
        if (e->buffer || (e->off < net.bb_size && e->ndim == 1)) continue;
        want[e->off < net.bb_size ? 0 : e->ndim == 4 ? 1 : 2] += e->numel;
    }
    for (int gi = 0; gi < 3; gi++)
        for (int j = 0; j < o.groups[gi].nranges; j++)
            tot[gi] += o.groups[gi].ranges[j].len;
    T_CHECK(o.ngroups == 3 && tot[0] == want[0] && tot[1] == want[1] &&
            tot[2] == want[2] && want[2] == 16);
    T_CHECK(o.groups[1].lr0 == 10 && o.groups[2].lr0 == 20 &&
            o.groups[2].weight_decay == 0);
    sfc_sgd_release(&o);
    /* checkpoint round trip with the model metadata */
    char *dir = test_tmpdir("deeplab"), path[1024];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    const char *keys[SFC_DEEPLAB_NMETA];
    char vals[SFC_DEEPLAB_NMETA][64];
    const char *vp[SFC_DEEPLAB_NMETA];
    sfc_deeplab_meta(&cfg, keys, vals);
    for (int i = 0; i < SFC_DEEPLAB_NMETA; i++) vp[i] = vals[i];
    T_CHECK(sfc_checkpoint_save_meta(path, &net.pb, net.params, NULL,
                                     SFC_DEEPLAB_NMETA, keys, vp) == 0);
    struct sfc_safetensors st;
    T_CHECK(sfc_safetensors_read(path, &st) == 0);
    struct sfc_deeplab_config c2;
    T_CHECK(sfc_deeplab_config_from_meta(&c2, &st, path) == 0);
    T_CHECK(!memcmp(&c2, &cfg, sizeof cfg));
    struct sfc_deeplab n2;
    T_CHECK(sfc_deeplab_init(&n2, &c2, NULL, NULL) == 0);
    T_CHECK(sfc_deeplab_load(&n2, &st, "", path) == 0);
    T_CHECK(!memcmp(n2.params, net.params, P * sizeof(float)));
    sfc_deeplab_release(&n2);
    /* a model with other classes refuses the file, naming the key */
    c2.nclass = 5;
    T_CHECK(sfc_deeplab_init(&n2, &c2, NULL, NULL) == 0);
    T_CHECK(sfc_deeplab_load(&n2, &st, "", path) < 0 &&
            strstr(sfc_errmsg(), "aspp.c0"));
    sfc_deeplab_release(&n2);
    sfc_safetensors_release(&st);
    /* plan errors */
    double bad[1] = {0.01};
    T_CHECK(sfc_deeplab_plan(&net, 1, 20, 20, 1, bad, 0) < 0);
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    T_CHECK(system(cmd) == 0);
    free(dir);
    free(g[0]);
    free(g[1]);
    sfc_deeplab_release(&net);
}

int main(void)
{
    test_ce_fd();
    test_threads_and_io();
    test_with_oracle("ref_deeplab.py", "deeplab", check_dir);
    return test_summary();
}
