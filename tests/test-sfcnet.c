/* SPDX-License-Identifier: MIT */
/* test-sfcnet.c: the SFC network and losses against tests/ref/ref_sfc.py,
 * a PyTorch re-expression of sfc-reference.md §2.2-§2.5 (issue 4, item 4):
 * a tiny network with random weights shared through safetensors, three
 * images (one full, two pasted boxes), both scales: score, the masked CAM,
 * the hierarchical feature, M_W, the prototypes, M_P, the three loss terms
 * and the gradient of every parameter (zero where the reference has none:
 * the frozen stages), relative error <= 1e-3. Goldens always; fresh seeds
 * with the oracle. */
#include "npy.h"
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
                    get(&z, "box")->data, get(&z, "dc")->data, N, S,
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
    /* gradients: every parameter the reference trains; zero elsewhere */
    int ntrained = 0;
    for (int i = 0; i < net.pb.n; i++) {
        const struct sfc_pentry *e = &net.pb.e[i];
        char name[160];
        snprintf(name, sizeof name, "grad.%s", e->name);
        const struct sfc_tensor *t = sfc_npz_get(&z, name);
        const float *g = net.grads + e->off;
        if (t) {
            T_CHECK_MSG((size_t)sfc_tensor_numel(t) == e->numel, "%s", name);
            cmp(name, g, t->data, (long)e->numel);
            ntrained++;
        } else {
            int nz = 0;
            for (size_t j = 0; j < e->numel; j++) nz += g[j] != 0;
            T_CHECK_MSG(nz == 0, "%s: %d non-zero gradients in a frozen "
                        "parameter", e->name, nz);
        }
    }
    T_CHECK_MSG(ntrained >= 10, "only %d trained parameters compared",
                ntrained);

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
    test_with_oracle("ref_sfc.py", "sfc", check_dir);
    return test_summary();
}
