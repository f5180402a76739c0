/* SPDX-License-Identifier: MIT */
/* test-sfcnet.c: the SFC network and losses against tests/ref/ref_sfc.py,
 * a PyTorch re-expression of sfc-reference.md §2.2-§2.5 (issue 4, item 4):
 * a tiny network with random weights shared through safetensors, three
 * images (one full, two pasted boxes), both scales: score, the masked CAM,
 * the hierarchical feature, M_W, the prototypes, M_P, the three loss terms
 * and the gradient of every parameter (zero where the reference has none:
 * the frozen stages), relative error <= 1e-3. Goldens always; fresh seeds
 * with the oracle (drawn away from kinks and from barely positive CAM/M_P
 * maxima, where a float32 rounding could move a gradient past the bar:
 * ref_sfc.py kink_shift). */
#include "batch.h"
#include "npy.h"
#include "optim.h"
#include "sfc.h"
#include "sfcnet.h"
#include "test.h"

static const struct sfc_tensor *get(const struct sfc_npz *z, const char *n)
{
    const struct sfc_tensor *t = sfc_npz_get(z, n);
    if (!t) {
        fprintf(stderr, "%s\n", sfc_errmsg());
        exit(1);
    }
    return t;
}

/* max |a - b| <= 1e-3 * max |ref| (the relative error), and
 * element-wise within 1e-3 rel + 1e-4 * max|ref| abs. */
static void cmp(const char *name, const float *got, const float *ref, long n)
{
    double mx = 0;
    for (long i = 0; i < n; i++) mx = fmax(mx, fabs((double)ref[i]));
    double floor = mx > 0 ? mx : 1e-12;
    double rel = test_max_rel(got, ref, n, floor);
    T_CHECK_MSG(rel <= 1e-3, "%s: relative error %.3g", name, rel);
    test_close(name, got, ref, n, 1e-4 * floor, 1e-3);
}

/* Gradients: every parameter the reference trains; zero elsewhere. */
static void check_grads(const struct sfc_sfcnet *net,
                        const struct sfc_npz *z, const char *tag)
{
    int ntrained = 0;
    for (int i = 0; i < net->pb.n; i++) {
        const struct sfc_pentry *e = &net->pb.e[i];
        char name[200];
        snprintf(name, sizeof name, "grad.%s", e->name);
        const struct sfc_tensor *t = sfc_npz_get(z, name);
        const float *g = net->grads + e->off;
        snprintf(name, sizeof name, "%sgrad.%s", tag, e->name);
        if (t) {
            T_CHECK_MSG((size_t)sfc_tensor_numel(t) == e->numel, "%s", name);
            cmp(name, g, t->data, (long)e->numel);
            ntrained++;
        } else {
            int nz = 0;
            for (size_t j = 0; j < e->numel; j++) nz += g[j] != 0;
            T_CHECK_MSG(nz == 0, "%s: %d non-zero gradients in a frozen "
                        "parameter", name, nz);
        }
    }
    T_CHECK_MSG(ntrained >= 10, "only %d trained parameters compared",
                ntrained);
}

/* Weights after a few SGD steps (the tool's optimiser: two lr groups,
 * poly, clipping) with micro-batches of 1, 2 and the whole batch: equal
 * within 1e-5 relative (max |a - b| / max |b|), and the updates
 * themselves within 1e-3 of theirs. */
static void check_micro_sgd(const struct sfc_sfcnet_config *cfg,
                            const char *wpath, const struct sfc_npz *z, int N,
                            int S)
{
    enum { STEPS = 3 };
    const int micro[3] = {N, 1, 2};
    float *ref = NULL, *p0 = NULL;
    size_t n = 0;
    for (int v = 0; v < 3; v++) {
        struct sfc_sfcnet net;
        if (!T_CHECK(sfc_sfcnet_init(&net, cfg) == 0 &&
                     sfc_sfcnet_load(&net, wpath, 0) == 0))
            return;
        n = net.pb.size;
        struct sfc_sgd opt;
        T_CHECK(sfc_sgd_init(&opt, n, 1e-4, 0.9, 10, 1.0) == 0);
        struct sfc_range rb = {net.bb[0].train_off, net.bb[0].train_len};
        const struct sfc_pentry *ec = sfc_pblock_find(&net.pb,
                                                      "classifier.weight");
        struct sfc_range rh = {ec->off, n - ec->off};
        sfc_sgd_add_group(&opt, 0.1, 1e-4, 1, &rb);
        sfc_sgd_add_group(&opt, 1.0, 1e-4, 1, &rh);
        if (!p0) {
            p0 = sfc_xmalloc(sizeof(float) * n);
            memcpy(p0, net.params, sizeof(float) * n);
        }
        for (int t = 0; t < STEPS; t++) {
            struct sfc_sfc_losses L;
            sfc_sfcnet_step(&net, get(z, "img")->data, get(z, "label")->data,
                            get(z, "box")->data, get(z, "dc")->data, N, S,
                            micro[v], SFC_LOSS_SFC, &L);
            sfc_sgd_step(&opt, net.params, net.grads);
        }
        if (!ref) {
            ref = sfc_xmalloc(sizeof(float) * n);
            memcpy(ref, net.params, sizeof(float) * n);
        } else {
            char name[64];
            snprintf(name, sizeof name, "weights after %d steps, micro %d",
                     STEPS, micro[v]);
            double mx = 0;
            for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs((double)ref[i]));
            double rw = test_max_rel(net.params, ref, (long)n, mx);
            T_CHECK_MSG(rw <= 1e-5, "%s: relative error %.3g", name, rw);
            /* the updates, so that a test with tiny steps cannot pass */
            float *ua = sfc_xmalloc(sizeof(float) * n),
                  *ub = sfc_xmalloc(sizeof(float) * n);
            double umax = 0;
            for (size_t i = 0; i < n; i++) {
                ua[i] = net.params[i] - p0[i];
                ub[i] = ref[i] - p0[i];
                umax = fmax(umax, fabs((double)ub[i]));
            }
            T_CHECK_MSG(umax > 1e-3, "updates too small to test: %.3g", umax);
            double ru = test_max_rel(ua, ub, (long)n, umax);
            T_CHECK_MSG(ru <= 1e-3, "%s: updates differ by %.3g", name, ru);
            free(ua);
            free(ub);
        }
        sfc_sgd_release(&opt);
        sfc_sfcnet_release(&net);
    }
    free(ref);
    free(p0);
}

/* The micro-batch split: chunks cover 0 .. n - 1 once, in order, each pass
 * is m images inside [0, n) and holds its chunk; sfc_batch_split parts
 * partition [0, n) with sizes differing by at most one. */
static void check_split(void)
{
    for (int n = 1; n <= 23; n++)
        for (int micro = 1; micro <= n + 2; micro++) {
            int lo, hi, wlo, next = 0, m = -1;
            int count = sfc_sfcnet_micro_chunk(n, micro, 0, &lo, &hi, &wlo);
            T_CHECK(count == (n + micro - 1) / micro);
            for (int k = 0; k < count; k++) {
                sfc_sfcnet_micro_chunk(n, micro, k, &lo, &hi, &wlo);
                if (m < 0) m = hi - lo;
                T_CHECK_MSG(lo == next && hi > lo && hi - lo <= m &&
                                m <= micro && wlo >= 0 && wlo <= lo &&
                                wlo + m >= hi && wlo + m <= n,
                            "n %d micro %d chunk %d: [%d, %d) window %d", n,
                            micro, k, lo, hi, wlo);
                next = hi;
            }
            T_CHECK(next == n);
            T_CHECK(count * m - n < count); /* at most one rerun per pass */
        }
    for (int n = 0; n <= 23; n++)
        for (int parts = 1; parts <= 6; parts++) {
            int next = 0;
            for (int k = 0; k < parts; k++) {
                int lo, hi;
                sfc_batch_split(n, parts, k, &lo, &hi);
                T_CHECK(lo == next && hi >= lo &&
                        hi - lo >= n / parts && hi - lo <= n / parts + 1);
                next = hi;
            }
            T_CHECK(next == n);
        }
    T_CHECK(sfc_sfcnet_micro_default(512) == 4);
    T_CHECK(sfc_sfcnet_micro_default(64) == 256);
    T_CHECK(sfc_sfcnet_micro_default(5000) == 1);
}

static void check_dir(const char *dir)
{
    char *cpath = sfc_xasprintf("%s/case.npz", dir);
    char *wpath = sfc_xasprintf("%s/weights.safetensors", dir);
    struct sfc_npz z;
    if (!T_CHECK(sfc_npz_read(cpath, &z) == 0)) {
        fprintf(stderr, "%s\n", sfc_errmsg());
        goto out;
    }
    const int64_t *k = get(&z, "config")->data;
    struct sfc_sfcnet_config cfg;
    sfc_sfcnet_config_default(&cfg, (int)k[0]);
    int S = (int)k[1], N = (int)k[2];
    for (int i = 0; i < 4; i++) cfg.backbone.blocks[i] = (int)k[3 + i];
    cfg.backbone.width = (int)k[7];
    cfg.backbone.stem_stride = (int)k[8];
    cfg.backbone.strides[0] = 1;
    for (int i = 1; i < 4; i++) cfg.backbone.strides[i] = (int)k[8 + i];
    for (int i = 0; i < 4; i++) cfg.side[i] = (int)k[12 + i];
    struct sfc_sfcnet net;
    T_CHECK(sfc_sfcnet_init(&net, &cfg) == 0);
    if (!T_CHECK(sfc_sfcnet_load(&net, wpath, 0) == 0)) {
        fprintf(stderr, "%s\n", sfc_errmsg());
        sfc_sfcnet_release(&net);
        sfc_npz_release(&z);
        goto out;
    }
    struct sfc_sfc_losses L;
    sfc_sfcnet_step(&net, get(&z, "img")->data, get(&z, "label")->data,
                    get(&z, "box")->data, get(&z, "dc")->data, N, S, N,
                    SFC_LOSS_SFC, &L);
    float lw[3] = {*(float *)get(&z, "l_cls")->data,
                   *(float *)get(&z, "l_pdw")->data,
                   *(float *)get(&z, "l_wdw")->data};
    float lg[3] = {L.cls, L.pdw, L.wdw};
    cmp("losses (cls, pdw, wdw)", lg, lw, 3);

    static const char *const outs[] = {"score", "cam21", "hie", "mw", "proto",
                                       "mp"};
    for (int s = 0; s < 2; s++) {
        const struct sfc_sfcnet_act *a = &net.act[s];
        const float *mine[] = {a->score, a->cam21, a->hie, a->mw, a->proto,
                               a->mp};
        for (int i = 0; i < 6; i++) {
            char name[32];
            snprintf(name, sizeof name, "s%d_%s", s + 1, outs[i]);
            const struct sfc_tensor *t = get(&z, name);
            cmp(name, mine[i], t->data, (long)sfc_tensor_numel(t));
        }
    }
    check_grads(&net, &z, "");

    /* micro-batches of 1 and 2 images (N = 3: the last pass of 2 reruns
     * one image with no loss): the same losses and gradients */
    for (int micro = 1; micro < N; micro++) {
        char tag[32];
        snprintf(tag, sizeof tag, "micro %d: ", micro);
        sfc_sfcnet_step(&net, get(&z, "img")->data, get(&z, "label")->data,
                        get(&z, "box")->data, get(&z, "dc")->data, N, S,
                        micro, SFC_LOSS_SFC, &L);
        float lm[3] = {L.cls, L.pdw, L.wdw};
        char name[64];
        snprintf(name, sizeof name, "%slosses", tag);
        cmp(name, lm, lw, 3);
        check_grads(&net, &z, tag);
    }

    /* CAM inference (§3): the image and its flip */
    const struct sfc_tensor *ci = get(&z, "cam_img"), *cy = get(&z, "cam_y21"),
                            *cw = get(&z, "cam_mw"), *cp = get(&z, "cam_mp");
    int H = (int)ci->shape[1], W = (int)ci->shape[2];
    float *x2 = sfc_xmalloc(sizeof(float) * 6 * (size_t)H * W);
    memcpy(x2, ci->data, sizeof(float) * 3 * (size_t)H * W);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                x2[((size_t)(3 + c) * H + y) * W + x] =
                    ((float *)ci->data)[((size_t)c * H + y) * W + W - 1 - x];
    long nk = (long)sfc_tensor_numel(cw);
    float *mw = sfc_xmalloc(sizeof(float) * nk), *mp = sfc_xmalloc(sizeof(float) * nk);
    sfc_sfcnet_cam(&net, x2, H, W, cy->data, mw, mp, NULL);
    cmp("cam M_W", mw, cw->data, nk);
    cmp("cam M_P", mp, cp->data, nk);
    free(x2);
    free(mw);
    free(mp);

    check_micro_sgd(&cfg, wpath, &z, N, S);

    /* checkpoint round trip: configuration and every value */
    char *tmp = test_tmpdir("sfcnet");
    char *ck = sfc_path_join(tmp, "ck.safetensors");
    const char *mk[] = {"step"}, *mv[] = {"7"};
    T_CHECK(sfc_sfcnet_save(&net, ck, 1, mk, mv) == 0);
    struct sfc_safetensors st;
    struct sfc_sfcnet_config cfg2;
    if (T_CHECK(sfc_safetensors_read(ck, &st) == 0)) {
        T_CHECK(sfc_sfcnet_config_read(&cfg2, &st, ck) == 0);
        T_CHECK(!memcmp(&cfg2, &cfg, sizeof cfg));
        const char *stepv = sfc_safetensors_meta(&st, "step");
        T_CHECK(stepv && !strcmp(stepv, "7"));
        sfc_safetensors_release(&st);
        struct sfc_sfcnet net2;
        T_CHECK(sfc_sfcnet_init(&net2, &cfg2) == 0);
        T_CHECK(sfc_sfcnet_load(&net2, ck, 0) == 0);
        T_CHECK(!memcmp(net2.params, net.params,
                        sizeof(float) * net.pb.size));
        sfc_sfcnet_release(&net2);
    }
    char *cmd = sfc_xasprintf("rm -rf '%s'", tmp);
    T_CHECK(system(cmd) == 0);
    free(cmd);
    free(ck);
    free(tmp);
    sfc_sfcnet_release(&net);
    sfc_npz_release(&z);
out:
    free(cpath);
    free(wpath);
}

int main(int argc, char **argv)
{
    (void)argc;
    sfc_proginit(argv[0]);
    check_split();
    test_with_oracle("ref_sfc.py", "sfc", check_dir);
    return test_summary();
}
