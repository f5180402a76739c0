/* SPDX-License-Identifier: MIT */
/* test-irnnet.c: IRN's edge head and affinity loss (lib/irnnet.c) against
 * tests/ref/ref_irnnet.py, a PyTorch re-expression of sfc-reference.md
 * §6.3 on random stand-in features: logits, Lpos, Lneg, the loss and
 * every parameter gradient (relative error <= 1e-3 of the tensor's max),
 * on the committed goldens and, with the oracle, fresh cases (drawn away
 * from the head's ReLU kinks, where a float32 rounding could move a
 * gradient by more than the bar: ref_irnnet.py KINK_DELTA). Also: the
 * batch split into micro-batches gives the same loss and gradients; a
 * finite-difference check of the head's gradient that needs no PyTorch;
 * the default initialisation's ranges; the flip merge of §7. The
 * training sample of §6.1 (lib/irnaug.c: rescale, normalise, flip, crop,
 * label grid) against the same steps in PIL + numpy for given draws.
 * The whole net (a tiny torchvision-built ResNet with strides 2, 2, 2, 1,
 * frozen, under the head) read from a model file as sfc-irn writes it:
 * logits, loss and head gradients against PyTorch. */
#include <math.h>
#include <time.h>

#include "irnaug.h"
#include "irnnet.h"
#include "npy.h"
#include "resample.h"
#include "resnet.h"
#include "safetensors.h"
#include "sfc.h"
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

/* max |got - ref| / max |ref| over n values */
static double rel_err(const float *got, const float *ref, size_t n)
{
    double m = 0, d = 0;
    for (size_t i = 0; i < n; i++) {
        m = fmax(m, fabs(ref[i]));
        double e = fabs((double)got[i] - ref[i]);
        d = (e > d || isnan(e)) ? (isnan(e) ? INFINITY : e) : d;
    }
    return m > 0 ? d / m : d;
}

struct ccase {
    struct sfc_npz z;
    struct sfc_irnhead hd;
    struct sfc_pathidx p;
    const float *x[SFC_IRN_BRANCHES];
    const uint8_t *L;
    int N, h, w, nclass;
    int fh[SFC_IRN_BRANCHES], fw[SFC_IRN_BRANCHES];
    float *scratch;
};

static int case_open(struct ccase *c, const char *path)
{
    if (sfc_npz_read(path, &c->z)) {
        fprintf(stderr, "%s\n", sfc_errmsg());
        return -1;
    }
    int in_c[SFC_IRN_BRANCHES];
    for (int i = 0; i < SFC_IRN_BRANCHES; i++) {
        char name[8];
        snprintf(name, sizeof name, "x%d", i + 1);
        const struct sfc_tensor *t = get(&c->z, name);
        c->x[i] = t->data;
        c->N = (int)t->shape[0];
        in_c[i] = (int)t->shape[1];
        c->fh[i] = (int)t->shape[2];
        c->fw[i] = (int)t->shape[3];
    }
    T_CHECK(sfc_irnhead_init(&c->hd, in_c, NULL, NULL, 0) == 0);
    for (int k = 0; k < SFC_IRN_NENTRIES; k++) {
        const struct sfc_irnhead_entry *e = &c->hd.ent[k];
        const struct sfc_tensor *t = get(&c->z, e->name);
        T_CHECK_MSG((size_t)sfc_tensor_numel(t) == e->numel &&
                        t->ndim == e->ndim,
                    "%s: shape differs", e->name);
        memcpy(c->hd.params + e->off, t->data, sizeof(float) * e->numel);
    }
    const struct sfc_tensor *L = get(&c->z, "labels");
    c->L = L->data;
    c->h = (int)L->shape[1];
    c->w = (int)L->shape[2];
    c->nclass = (int)*(int64_t *)get(&c->z, "nclass")->data;
    int r = (int)*(int64_t *)get(&c->z, "radius")->data;
    T_CHECK(sfc_pathidx_init(&c->p, r) == 0);
    c->scratch =
        sfc_xmalloc(sizeof(float) * sfc_irn_loss_scratch(&c->p, c->h, c->w));
    return 0;
}

static void case_close(struct ccase *c)
{
    sfc_irnhead_release(&c->hd);
    sfc_pathidx_release(&c->p);
    sfc_npz_release(&c->z);
    free(c->scratch);
}

/* Loss and gradients over images [n0, n0 + n) of the case. */
static double run_part(struct ccase *c, int n0, int n, const double sums[3],
                       double *lpos, double *lneg, int backward)
{
    const float *xs[SFC_IRN_BRANCHES];
    for (int i = 0; i < SFC_IRN_BRANCHES; i++)
        xs[i] = c->x[i] + (size_t)n0 * c->hd.in_c[i] * c->fh[i] * c->fw[i];
    T_CHECK(sfc_irnhead_plan(&c->hd, n, c->fh, c->fw, backward) == 0);
    sfc_irnhead_forward(&c->hd, xs);
    size_t hw = (size_t)c->h * c->w;
    float *dl = backward ? sfc_xmalloc(sizeof(float) * n * hw) : NULL;
    double loss = sfc_irn_affinity_loss(&c->p, dl, c->hd.logit,
                                        c->L + n0 * hw, n, c->h, c->w,
                                        c->nclass, sums, lpos, lneg,
                                        c->scratch);
    if (backward) sfc_irnhead_backward(&c->hd, dl);
    free(dl);
    return loss;
}

static void check_case(const char *path, int fd_check)
{
    struct ccase c;
    memset(&c, 0, sizeof c);
    if (!T_CHECK(case_open(&c, path) == 0)) return;
    fprintf(stderr, "case %s: N %d, grid %dx%d\n", path, c.N, c.h, c.w);
    double sums[3] = {0, 0, 0};
    sfc_irn_label_sums(&c.p, c.L, c.N, c.h, c.w, c.nclass, sums);
    T_CHECK(sums[0] > 0 && sums[1] > 0 && sums[2] > 0);

    /* whole batch */
    double lpos = 0, lneg = 0;
    sfc_irnhead_zero_grad(&c.hd);
    double loss = run_part(&c, 0, c.N, sums, &lpos, &lneg, 1);
    T_CHECK(c.hd.oh == c.h && c.hd.ow == c.w);
    const struct sfc_tensor *lg = get(&c.z, "logit");
    T_CHECK(test_close("logit", c.hd.logit, lg->data, sfc_tensor_numel(lg),
                       1e-5, 1e-4));
    float got[3] = {(float)loss, (float)lpos, (float)lneg};
    float want[3] = {*(float *)get(&c.z, "loss")->data,
                     *(float *)get(&c.z, "lpos")->data,
                     *(float *)get(&c.z, "lneg")->data};
    T_CHECK(test_close("loss, lpos, lneg", got, want, 3, 0, 1e-4));
    float *g_full = sfc_xmalloc(sizeof(float) * c.hd.size);
    memcpy(g_full, c.hd.grads, sizeof(float) * c.hd.size);
    double worst = 0;
    for (int k = 0; k < SFC_IRN_NENTRIES; k++) {
        const struct sfc_irnhead_entry *e = &c.hd.ent[k];
        char name[40];
        snprintf(name, sizeof name, "grad.%s", e->name);
        const struct sfc_tensor *t = get(&c.z, name);
        double r = rel_err(c.hd.grads + e->off, t->data, e->numel);
        worst = fmax(worst, r);
        T_CHECK_MSG(r <= 1e-3, "%s: relative error %g", name, r);
    }
    fprintf(stderr, "  worst gradient relative error %.3g\n", worst);

    /* micro-batches: first image, then the rest */
    if (c.N > 1) {
        double lp2 = 0, ln2 = 0;
        sfc_irnhead_zero_grad(&c.hd);
        double l2 = run_part(&c, 0, 1, sums, &lp2, &ln2, 1);
        l2 += run_part(&c, 1, c.N - 1, sums, &lp2, &ln2, 1);
        T_CHECK_MSG(fabs(l2 - loss) <= 1e-6 * fabs(loss) &&
                        fabs(lp2 - lpos) <= 1e-6 * fabs(lpos) &&
                        fabs(ln2 - lneg) <= 1e-6 * fabs(lneg),
                    "micro-batch loss %.9g vs %.9g", l2, loss);
        T_CHECK(test_close("micro-batch gradients", c.hd.grads, g_full,
                           (int64_t)c.hd.size, 1e-7, 1e-4));
    }

    /* finite differences of the loss against the backward, a few elements
     * of every parameter; a step that crosses a kink (path max changing
     * hands, ReLU) shows as disagreeing step sizes and is skipped */
    if (fd_check) {
        int tested = 0, skipped = 0, bad = 0;
        struct sfc_rng rng;
        sfc_rng_seed(&rng, 3);
        for (int k = 0; k < SFC_IRN_NENTRIES; k++) {
            const struct sfc_irnhead_entry *e = &c.hd.ent[k];
            double gmax = 0;
            for (size_t j = 0; j < e->numel; j++)
                gmax = fmax(gmax, fabs(g_full[e->off + j]));
            for (int rep = 0; rep < 2; rep++) {
                size_t j = e->off + sfc_rng_below(&rng, e->numel);
                float *v = &c.hd.params[j], v0 = *v;
                double fd[2];
                for (int s = 0; s < 2; s++) {
                    float step = (s ? 2e-3f : 1e-3f) * fmaxf(1, fabsf(v0));
                    *v = v0 + step;
                    double lp = run_part(&c, 0, c.N, sums, NULL, NULL, 0);
                    *v = v0 - step;
                    double lm = run_part(&c, 0, c.N, sums, NULL, NULL, 0);
                    *v = v0;
                    fd[s] = (lp - lm) / (2.0 * step);
                }
                double tol = 0.02 * fabs(fd[0]) + 2e-3 * gmax + 1e-6;
                if (fabs(fd[0] - fd[1]) > tol) {
                    skipped++;
                    continue;
                }
                tested++;
                if (fabs(fd[0] - g_full[j]) > tol) {
                    bad++;
                    fprintf(stderr, "  fd %s[%zu]: fd %.6g, backward %.6g\n",
                            e->name, j - e->off, fd[0], g_full[j]);
                }
            }
        }
        fprintf(stderr, "  finite differences: %d tested, %d skipped\n",
                tested, skipped);
        T_CHECK(bad == 0);
        T_CHECK(tested >= 3 * (tested + skipped) / 4);
    }
    free(g_full);
    case_close(&c);
}

static void check_aug(const char *path)
{
    struct sfc_npz z;
    if (!T_CHECK(sfc_npz_read(path, &z) == 0)) {
        fprintf(stderr, "%s\n", sfc_errmsg());
        return;
    }
    const struct sfc_tensor *img = get(&z, "img"), *lab = get(&z, "lab"),
                            *dr = get(&z, "draw"), *x = get(&z, "x"),
                            *grid = get(&z, "grid");
    const int64_t *v = dr->data;
    struct sfc_irn_aug_draw d = {0, (int)v[0], (int)v[1], (int)v[2],
                                 (int)v[3], (int)v[4], (int)v[5], (int)v[6],
                                 (int)v[7], (int)v[8]};
    struct sfc_irn_aug a = {0.5, 1.5, (int)v[9], 1};
    int H = (int)img->shape[0], W = (int)img->shape[1];
    int g = sfc_irn_grid_side(a.crop);
    T_CHECK(grid->shape[0] == g);
    float *xo = sfc_xmalloc(sizeof(float) * 3 * a.crop * a.crop);
    uint8_t *go = sfc_xmalloc((size_t)g * g);
    sfc_irn_aug_apply(xo, go, img->data, lab->data, H, W, &a, &d);
    T_CHECK(test_close("augmented image", xo, x->data, sfc_tensor_numel(x),
                       1e-6, 1e-6));
    T_CHECK_MSG(!memcmp(go, grid->data, (size_t)g * g),
                "%s: label grid differs", path);
    /* the draw: sizes and window within bounds for this input */
    struct sfc_rng rng;
    sfc_rng_seed(&rng, 11);
    for (int k = 0; k < 50; k++) {
        struct sfc_irn_aug_draw e;
        sfc_irn_aug_draw(&e, H, W, &a, &rng);
        int ok = e.scale >= 0.5 && e.scale <= 1.5 && e.sy >= 0 && e.sx >= 0 &&
                 e.sy + e.ly <= e.sh && e.sx + e.lx <= e.sw &&
                 e.dy + e.ly <= a.crop && e.dx + e.lx <= a.crop &&
                 (e.sy == 0 || e.dy == 0) && (e.sx == 0 || e.dx == 0);
        if (!ok) {
            T_CHECK_MSG(0, "draw %d out of bounds", k);
            break;
        }
    }
    free(xo);
    free(go);
    sfc_npz_release(&z);
}

/* lib/resample's nearest resize against PIL's index maps, n -> m for all
 * n, m in 1..48 along rows and columns (exact-half cases such as 2 -> 7
 * depend on how the coordinate is accumulated). */
static void check_nearest(const char *dir)
{
    char *path = sfc_xasprintf("%s/nearest.npz", dir);
    struct sfc_npz z;
    if (!T_CHECK(sfc_npz_read(path, &z) == 0)) {
        free(path);
        return;
    }
    const uint8_t *maps = get(&z, "maps")->data;
    uint8_t ramp[48], row[48], col[48];
    for (int i = 0; i < 48; i++) ramp[i] = (uint8_t)i;
    long o = 0, bad = 0;
    for (int n = 1; n <= 48; n++)
        for (int m = 1; m <= 48; m++) {
            sfc_resize_nearest_u8(row, 1, m, ramp, 1, n, 1);
            sfc_resize_nearest_u8(col, m, 1, ramp, n, 1, 1);
            bad += memcmp(row, maps + o, m) != 0;
            bad += memcmp(col, maps + o + m, m) != 0;
            o += 2 * m;
        }
    T_CHECK_MSG(bad == 0, "%ld nearest index maps differ from PIL's", bad);
    sfc_npz_release(&z);
    free(path);
}

static void check_net(const char *dir)
{
    char *stp = sfc_xasprintf("%s/net.safetensors", dir);
    char *zp = sfc_xasprintf("%s/net.npz", dir);
    struct sfc_safetensors st;
    struct sfc_npz z;
    if (!T_CHECK(sfc_safetensors_read(stp, &st) == 0) ||
        !T_CHECK(sfc_npz_read(zp, &z) == 0)) {
        fprintf(stderr, "%s\n", sfc_errmsg());
        exit(1);
    }
    struct sfc_resnet_config cfg;
    sfc_resnet_config_default(&cfg, 50);
    for (int i = 0; i < 4; i++) cfg.blocks[i] = 1;
    cfg.width = 4;
    cfg.frozen = SFC_RESNET_STAGES;
    struct sfc_resnet net;
    T_CHECK(sfc_resnet_init(&net, &cfg, NULL, NULL) == 0);
    T_CHECK_MSG(sfc_resnet_load(&net, &st, "resnet50.", stp) == 0, "%s",
                sfc_errmsg());
    int in_c[SFC_IRN_BRANCHES] = {4, 16, 32, 64, 128};
    struct sfc_irnhead hd;
    T_CHECK(sfc_irnhead_init(&hd, in_c, NULL, NULL, 0) == 0);
    for (int k = 0; k < SFC_IRN_NENTRIES; k++) {
        const struct sfc_tensor *t = sfc_safetensors_get(&st, hd.ent[k].name);
        T_CHECK(t && (size_t)sfc_tensor_numel(t) == hd.ent[k].numel);
        if (t)
            memcpy(hd.params + hd.ent[k].off, t->data,
                   sizeof(float) * hd.ent[k].numel);
    }
    const struct sfc_tensor *x = get(&z, "x"), *L = get(&z, "labels");
    int N = (int)x->shape[0], H = (int)x->shape[2], W = (int)x->shape[3];
    int h = (int)L->shape[1], w = (int)L->shape[2];
    sfc_resnet_plan(&net, N, H, W, 0);
    sfc_resnet_forward(&net, x->data);
    int fh[5], fw[5];
    const float *f[5];
    for (int i = 0; i < 5; i++)
        fh[i] = net.feat_h[i], fw[i] = net.feat_w[i], f[i] = net.feat[i];
    T_CHECK(sfc_irnhead_plan(&hd, N, fh, fw, 1) == 0);
    sfc_irnhead_forward(&hd, f);
    T_CHECK(hd.oh == h && hd.ow == w);
    const struct sfc_tensor *lg = get(&z, "logit");
    double r = rel_err(hd.logit, lg->data, (size_t)sfc_tensor_numel(lg));
    T_CHECK_MSG(r <= 1e-4, "net logits: relative error %g", r);
    struct sfc_pathidx p;
    T_CHECK(sfc_pathidx_init(&p, 10) == 0);
    double sums[3] = {0, 0, 0}, lpos = 0, lneg = 0;
    sfc_irn_label_sums(&p, L->data, N, h, w, 3, sums);
    float *sc = sfc_xmalloc(sizeof(float) * sfc_irn_loss_scratch(&p, h, w));
    float *dl = sfc_xmalloc(sizeof(float) * N * h * w);
    double loss = sfc_irn_affinity_loss(&p, dl, hd.logit, L->data, N, h, w,
                                        3, sums, &lpos, &lneg, sc);
    float got = (float)loss, want = *(float *)get(&z, "loss")->data;
    T_CHECK(test_close("net loss", &got, &want, 1, 0, 1e-4));
    sfc_irnhead_zero_grad(&hd);
    sfc_irnhead_backward(&hd, dl);
    double worst = 0;
    for (int k = 0; k < SFC_IRN_NENTRIES; k++) {
        char name[40];
        snprintf(name, sizeof name, "grad.%s", hd.ent[k].name);
        const struct sfc_tensor *t = get(&z, name);
        double e = rel_err(hd.grads + hd.ent[k].off, t->data, hd.ent[k].numel);
        worst = fmax(worst, e);
        T_CHECK_MSG(e <= 1e-3, "net %s: relative error %g", name, e);
    }
    fprintf(stderr, "net %s: logits rel err %.3g, worst gradient %.3g\n", dir,
            r, worst);
    free(sc);
    free(dl);
    sfc_pathidx_release(&p);
    sfc_irnhead_release(&hd);
    sfc_resnet_release(&net);
    sfc_safetensors_release(&st);
    sfc_npz_release(&z);
    free(stp);
    free(zp);
}

static void check_dir(const char *dir, int fd_check)
{
    check_net(dir);
    check_nearest(dir);
    const char *names[] = {"head_a.npz", "head_b.npz"};
    for (int i = 0; i < 2; i++) {
        char *p = sfc_xasprintf("%s/%s", dir, names[i]);
        check_case(p, fd_check && i == 0);
        free(p);
    }
    for (int i = 0; i < 4; i++) {
        char *p = sfc_xasprintf("%s/aug_%d.npz", dir, i);
        check_aug(p);
        free(p);
    }
}

static void check_init(void)
{
    int in_c[SFC_IRN_BRANCHES] = {64, 256, 512, 1024, 2048};
    struct sfc_irnhead hd;
    T_CHECK(sfc_irnhead_init(&hd, in_c, NULL, NULL, 1) == 0);
    T_CHECK(hd.grads == NULL);
    T_CHECK(hd.size == 32 * (64 + 256 + 512 + 1024 + 2048) + 5 * 64 + 161);
    T_CHECK(sfc_irnhead_size(in_c) == hd.size);
    struct sfc_rng rng;
    sfc_rng_seed(&rng, 1);
    sfc_irnhead_init_random(&hd, &rng);
    const struct sfc_irnhead_entry *e = sfc_irnhead_find(&hd,
                                                         "fc_edge4.0.weight");
    T_CHECK(e && e->shape[0] == 32 && e->shape[1] == 1024);
    double bound = 1 / sqrt(1024.0), mx = 0;
    for (size_t j = 0; j < e->numel; j++)
        mx = fmax(mx, fabs(hd.params[e->off + j]));
    T_CHECK(mx <= bound && mx > 0.95 * bound);
    e = sfc_irnhead_find(&hd, "fc_edge2.1.weight");
    T_CHECK(e && hd.params[e->off] == 1 && hd.params[e->off + 31] == 1);
    e = sfc_irnhead_find(&hd, "fc_edge6.bias");
    T_CHECK(e && fabs(hd.params[e->off]) <= 1 / sqrt(160.0));
    T_CHECK(sfc_irnhead_find(&hd, "fc_edge7.bias") == NULL);
    /* sizes that do not cover branch 2 are refused */
    int fh[5] = {8, 8, 4, 2, 2}, fw[5] = {8, 8, 4, 2, 2};
    T_CHECK(sfc_irnhead_plan(&hd, 1, fh, fw, 0) == 0);
    fh[3] = fh[4] = 1;
    T_CHECK(sfc_irnhead_plan(&hd, 1, fh, fw, 0) == -1);
    sfc_irnhead_release(&hd);
}

static void check_merge(void)
{
    int h = 3, w = 5, oh = 2, ow = 4;
    float lg[2 * 3 * 5], edge[2 * 4];
    for (int i = 0; i < 30; i++) lg[i] = (float)(i % 7) - 3.0f + 0.1f * i;
    sfc_irn_edge_merge(edge, lg, h, w, oh, ow);
    float want[8];
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            double v = 0.5 * lg[y * w + x] + 0.5 * lg[15 + y * w + ow - 1 - x];
            want[y * ow + x] = (float)(1 / (1 + exp(-v)));
        }
    T_CHECK(test_close("edge merge", edge, want, 8, 1e-7, 1e-6));
}

int main(void)
{
    check_init();
    check_merge();
    check_dir("tests/golden/irnnet", 1);
    if (test_oracle()) {
        char *tmp = test_tmpdir("irnnet");
        char *cmd = sfc_xasprintf("%s tests/ref/ref_irnnet.py --out %s "
                                  "--seed %u",
                                  test_oracle(), tmp,
                                  test_fresh_seed("ref_irnnet.py"));
        if (T_CHECK(system(cmd) == 0)) check_dir(tmp, 0);
        free(cmd);
        cmd = sfc_xasprintf("rm -rf %s", tmp);
        T_CHECK(system(cmd) == 0);
        free(cmd);
        free(tmp);
    }
    return test_summary();
}
