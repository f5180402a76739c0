/* SPDX-License-Identifier: MIT */
/* sfcnet.c: the SFC network and losses (sfc-reference.md §2.2, §2.4,
 * §2.5; the reference is SFC's network/resnet50_SFC.py Net and the loss
 * block of train_resnet50_SFC.py). Composes lib/resnet (backbone),
 * lib/conv (1x1 heads), lib/layers and lib/ops; the only direct BLAS calls
 * are the f9 products, which read the image and x4 parts of f9's weight
 * in place instead of concatenating a (3 + C4)-channel input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "err.h"
#include "layers.h"
#include "ops.h"
#include "optim.h"
#include "safetensors.h"
#include "sfcnet.h"
#include "util.h"

#define SFC_EPS 1e-5f    /* norm and max-normalisation epsilon (§2.2) */
#define COS_EPS 1e-8f    /* torch.cosine_similarity's default */
#define PDW_WEIGHT 1.6f  /* §2.5 */
#define WDW_WEIGHT 0.8f  /* §2.5 */

void sfc_sfcnet_config_default(struct sfc_sfcnet_config *cfg, int C)
{
    memset(cfg, 0, sizeof *cfg);
    sfc_resnet_config_default(&cfg->backbone, 50);
    cfg->backbone.frozen = 3; /* conv1..layer2 */
    cfg->C = C;
    cfg->side[0] = 128;
    cfg->side[1] = 128;
    cfg->side[2] = 256;
    cfg->side[3] = 256;
    cfg->proto_bg = 0.3f;
}

static struct sfc_conv2d conv1x1(int C, int OC)
{
    struct sfc_conv2d c = {C, OC, 1, 1, 0, 1};
    return c;
}

int sfc_sfcnet_init(struct sfc_sfcnet *net, const struct sfc_sfcnet_config *cfg)
{
    memset(net, 0, sizeof *net);
    if (cfg->C < 1) return sfc_error(NULL, "sfcnet: no classes");
    for (int i = 0; i < 4; i++)
        if (cfg->side[i] < 1) return sfc_error(NULL, "sfcnet: bad side width");
    net->cfg = *cfg;
    net->bb_size = sfc_resnet_size(&cfg->backbone);
    /* the backbone's layout (and its channels: bottleneck expansion 4) */
    struct sfc_resnet probe;
    if (sfc_resnet_init(&probe, &cfg->backbone, NULL, NULL)) return -1;
    int ch[4];
    for (int i = 0; i < 4; i++) ch[i] = (cfg->backbone.width << i) * 4;
    int C4 = ch[3];
    /* one layout: the backbone's entries in order, then the heads */
    sfc_pblock_init(&net->pb);
    for (int i = 0; i < probe.pb.n; i++) {
        const struct sfc_pentry *e = &probe.pb.e[i];
        size_t off = sfc_pblock_add(&net->pb, e->name, e->buffer, e->ndim,
                                    e->shape);
        SFC_ASSERT(off == e->off);
    }
    SFC_ASSERT(net->pb.size == net->bb_size);
    sfc_resnet_release(&probe);
    size_t o_cls = sfc_pblock_add(&net->pb, "classifier.weight", 0, 4,
                                  (const int64_t[]){cfg->C, C4, 1, 1});
    size_t o_f9 = sfc_pblock_add(&net->pb, "f9.weight", 0, 4,
                                 (const int64_t[]){C4, 3 + C4, 1, 1});
    size_t o_side[4];
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "side%d.weight", i + 1);
        o_side[i] = sfc_pblock_add(&net->pb, name, 0, 4,
                                   (const int64_t[]){cfg->side[i], ch[i], 1, 1});
    }
    net->params = sfc_xmalloc_aligned(sizeof(float) * net->pb.size);
    net->grads = sfc_xmalloc_aligned(sizeof(float) * net->pb.size);
    memset(net->params, 0, sizeof(float) * net->pb.size);
    memset(net->grads, 0, sizeof(float) * net->pb.size);
    for (int s = 0; s < 2; s++)
        if (sfc_resnet_init(&net->bb[s], &cfg->backbone, net->params,
                            net->grads)) {
            sfc_sfcnet_release(net);
            return -1;
        }
    net->w_cls = net->params + o_cls;
    net->dw_cls = net->grads + o_cls;
    net->w_f9 = net->params + o_f9;
    net->dw_f9 = net->grads + o_f9;
    for (int i = 0; i < 4; i++) {
        net->w_side[i] = net->params + o_side[i];
        net->dw_side[i] = net->grads + o_side[i];
    }
    return 0;
}

void sfc_sfcnet_release(struct sfc_sfcnet *net)
{
    if (!net) return;
    for (int s = 0; s < 2; s++) {
        sfc_resnet_release(&net->bb[s]);
        sfc_arena_release(&net->act[s].arena);
    }
    sfc_arena_release(&net->work.arena);
    sfc_pblock_release(&net->pb);
    free(net->params);
    free(net->grads);
    memset(net, 0, sizeof *net);
}

int sfc_sfcnet_load(struct sfc_sfcnet *net, const char *path,
                    int backbone_only)
{
    struct sfc_safetensors st;
    if (sfc_safetensors_read(path, &st)) return -1;
    int rc;
    if (backbone_only) {
        rc = sfc_resnet_load(&net->bb[0], &st, "", path);
    } else {
        /* a training checkpoint also holds the optimiser's state */
        static const char *const skip[] = {"optim.", NULL};
        rc = sfc_pblock_load(&net->pb, net->params, &st, "", skip, path);
    }
    sfc_safetensors_release(&st);
    return rc;
}

/* The configuration as metadata: "sfc.<key>" -> comma-separated ints. */
static const char *const cfg_keys[] = {"sfc.classes", "sfc.blocks",
                                       "sfc.width", "sfc.stem_stride",
                                       "sfc.strides", "sfc.dilate",
                                       "sfc.side", "sfc.frozen"};
#define NCFG 8

static void cfg_values(const struct sfc_sfcnet_config *c, char v[NCFG][64])
{
    const struct sfc_resnet_config *b = &c->backbone;
    snprintf(v[0], 64, "%d", c->C);
    snprintf(v[1], 64, "%d,%d,%d,%d", b->blocks[0], b->blocks[1],
             b->blocks[2], b->blocks[3]);
    snprintf(v[2], 64, "%d", b->width);
    snprintf(v[3], 64, "%d", b->stem_stride);
    snprintf(v[4], 64, "%d,%d,%d,%d", b->strides[0], b->strides[1],
             b->strides[2], b->strides[3]);
    snprintf(v[5], 64, "%d,%d,%d,%d", b->dilate[0], b->dilate[1],
             b->dilate[2], b->dilate[3]);
    snprintf(v[6], 64, "%d,%d,%d,%d", c->side[0], c->side[1], c->side[2],
             c->side[3]);
    snprintf(v[7], 64, "%d", b->frozen);
}

int sfc_sfcnet_checkpoint(const struct sfc_sfcnet *net, const char *path,
                          const struct sfc_sgd *opt, int nmeta,
                          const char *const *keys, const char *const *values)
{
    int nm = NCFG + nmeta;
    const char **mk = sfc_xmalloc(sizeof(char *) * (size_t)nm);
    const char **mv = sfc_xmalloc(sizeof(char *) * (size_t)nm);
    char v[NCFG][64];
    cfg_values(&net->cfg, v);
    for (int i = 0; i < NCFG; i++) mk[i] = cfg_keys[i], mv[i] = v[i];
    for (int i = 0; i < nmeta; i++)
        mk[NCFG + i] = keys[i], mv[NCFG + i] = values[i];
    int rc = sfc_checkpoint_save_meta(path, &net->pb, net->params, opt, nm,
                                      mk, mv);
    free(mk);
    free(mv);
    return rc;
}

int sfc_sfcnet_save(const struct sfc_sfcnet *net, const char *path,
                    int nmeta, const char *const *keys,
                    const char *const *values)
{
    return sfc_sfcnet_checkpoint(net, path, NULL, nmeta, keys, values);
}

static int parse_ints(const char *s, int *out, int n)
{
    for (int i = 0; i < n; i++) {
        char *end;
        long x = strtol(s, &end, 10);
        if (end == s || x < 0 || x > 1000000) return -1;
        out[i] = (int)x;
        s = end;
        if (i + 1 < n) {
            if (*s != ',') return -1;
            s++;
        }
    }
    return *s ? -1 : 0;
}

int sfc_sfcnet_config_read(struct sfc_sfcnet_config *cfg,
                           const struct sfc_safetensors *st,
                           const char *domain)
{
    sfc_sfcnet_config_default(cfg, 1);
    struct sfc_resnet_config *b = &cfg->backbone;
    int *dst[NCFG] = {&cfg->C, b->blocks, &b->width, &b->stem_stride,
                      b->strides, b->dilate, cfg->side, &b->frozen};
    const int cnt[NCFG] = {1, 4, 1, 1, 4, 4, 4, 1};
    for (int i = 0; i < NCFG; i++) {
        const char *v = sfc_safetensors_meta(st, cfg_keys[i]);
        if (!v) return sfc_error(domain, "not an sfc checkpoint (no '%s')",
                                 cfg_keys[i]);
        if (parse_ints(v, dst[i], cnt[i]))
            return sfc_error(domain, "bad '%s' value '%s'", cfg_keys[i], v);
    }
    return 0;
}

void sfc_sfcnet_init_random(struct sfc_sfcnet *net, struct sfc_rng *rng)
{
    sfc_resnet_init_random(&net->bb[0], rng);
    for (int i = 0; i < net->pb.n; i++) {
        const struct sfc_pentry *e = &net->pb.e[i];
        if (e->off < net->bb_size) continue;
        double bound = 1.0 / sqrt((double)e->shape[1]); /* fan_in, 1x1 */
        for (size_t j = 0; j < e->numel; j++)
            net->params[e->off + j] =
                (float)((2 * sfc_rng_uniform(rng) - 1) * bound);
    }
}

void sfc_sfcnet_grid(struct sfc_sfcnet *net, int H, int W, int *h, int *w)
{
    /* the layer3 grid follows from the conv arithmetic alone */
    const struct sfc_resnet_config *c = &net->cfg.backbone;
    int y = sfc_conv2d_outsize(H, 7, c->stem_stride, 3, 1);
    int x = sfc_conv2d_outsize(W, 7, c->stem_stride, 3, 1);
    y = (y + 2 - 3) / 2 + 1; /* max-pool 3x3 s2 p1 */
    x = (x + 2 - 3) / 2 + 1;
    for (int i = 0; i < 3; i++) {
        int s = c->dilate[i] ? 1 : c->strides[i];
        y = (y - 1) / s + 1;
        x = (x - 1) / s + 1;
    }
    *h = y;
    *w = x;
}

/* ---- planning ----------------------------------------------------------- */

static void plan_into(struct sfc_sfcnet *net, const struct sfc_resnet *bb,
                      struct sfc_sfcnet_act *a, struct sfc_arena *ar,
                      int train, int heads)
{
    size_t N = (size_t)a->N, hw = (size_t)a->h * a->w, K = (size_t)a->K,
           C = (size_t)net->cfg.C, D = (size_t)a->D,
           C4 = (size_t)bb->feat_c[4];
    size_t cs = sfc_conv2d_scratch(&(struct sfc_conv2d){(int)C4, (int)C, 1, 1,
                                                        0, 1}, a->h, a->w);
    for (int i = 0; i < 4; i++) {
        struct sfc_conv2d c = conv1x1(bb->feat_c[i + 1], net->cfg.side[i]);
        cs = SFC_MAX(cs, sfc_conv2d_scratch(&c, bb->feat_h[i + 1],
                                            bb->feat_w[i + 1]));
    }
    a->cscratch = sfc_arena_floats(ar, cs + 1);
    a->vm = sfc_arena_floats(ar, N * K * hw);
    a->cam = sfc_arena_floats(ar, N * C * hw);
    a->score = sfc_arena_floats(ar, N * C);
    if (train) {
        a->dscore = sfc_arena_floats(ar, N * C);
        a->dx4 = sfc_arena_floats(ar, N * C4 * hw);
        a->g3 = sfc_arena_floats(ar, N * C * hw);
    }
    if (!heads) return;
    a->crelu = sfc_arena_floats(ar, N * C * hw);
    a->cn = sfc_arena_floats(ar, N * C * hw);
    a->cmax = sfc_arena_floats(ar, N * C);
    a->cidx = sfc_arena_alloc(ar, sizeof(int) * N * C);
    a->bgmax = sfc_arena_floats(ar, N * hw);
    a->bgidx = sfc_arena_alloc(ar, sizeof(int) * N * hw);
    a->cam21 = sfc_arena_floats(ar, N * K * hw);
    size_t smax = 0;
    for (int i = 0; i < 4; i++) {
        size_t n = N * (size_t)net->cfg.side[i] * (size_t)bb->feat_h[i + 1] *
                   (size_t)bb->feat_w[i + 1];
        a->sraw[i] = sfc_arena_floats(ar, n);
        a->snorm[i] = sfc_arena_floats(ar, N * (size_t)bb->feat_h[i + 1] *
                                               (size_t)bb->feat_w[i + 1]);
        if (n > smax) smax = n;
    }
    /* a normalised side output lives only until it is resized into hie
     * (backward reads sraw and snorm), so the four share one buffer, which
     * backward reuses for their gradients (gsn) */
    float *snb = sfc_arena_floats(ar, smax);
    for (int i = 0; i < 4; i++) a->sn[i] = snb;
    a->hie = sfc_arena_floats(ar, N * D * hw);
    a->xs = sfc_arena_floats(ar, N * 3 * hw);
    a->f = sfc_arena_floats(ar, N * C4 * hw);
    a->fnorm = sfc_arena_floats(ar, N * hw);
    a->fn = sfc_arena_floats(ar, N * C4 * hw);
    a->A = sfc_arena_floats(ar, N * hw * hw);
    a->colsum = sfc_arena_floats(ar, N * hw);
    a->t = sfc_arena_floats(ar, N * K * hw);
    a->mw = sfc_arena_floats(ar, N * K * hw);
    a->seeds = sfc_arena_floats(ar, N * K * hw);
    a->proto = sfc_arena_floats(ar, N * K * D);
    a->cos = sfc_arena_floats(ar, N * K * hw);
    a->mp = sfc_arena_floats(ar, N * K * hw);
    if (!train) return;
    a->dmw = sfc_arena_floats(ar, N * K * hw);
    a->dmp = sfc_arena_floats(ar, N * K * hw);
    a->g1 = sfc_arena_floats(ar, N * K * hw);
    a->g2 = sfc_arena_floats(ar, N * K * hw);
    a->gA = sfc_arena_floats(ar, N * hw * hw);
    /* gcam: side gradients, then the PCM feature's; gside: dhie and
     * dproto, then (free after the sides) the gradient of f */
    a->gcam = sfc_arena_floats(ar, SFC_MAX(N * C4 * hw, smax));
    a->gside = sfc_arena_floats(
        ar, SFC_MAX(SFC_MAX(smax, N * D * hw + N * K * D), N * C4 * hw));
    a->gsn = snb;
    size_t sc = SFC_MAX(sfc_pcm_affinity_scratch((int)hw),
                        sfc_cosine_scratch((int)N, (int)K, (int)D, (int)hw));
    a->scratch = sfc_arena_floats(ar, sc);
}

static void plan(struct sfc_sfcnet *net, int s, int N, int H, int W,
                 int train, int heads)
{
    struct sfc_sfcnet_act *a = &net->act[s];
    sfc_resnet_plan(&net->bb[s], N, H, W, train);
    /* a plan with more buffers serves a call that needs fewer */
    if (a->N == N && a->H == H && a->W == W && a->arena.base &&
        a->train >= train && a->heads >= heads)
        return;
    sfc_arena_release(&a->arena);
    struct sfc_resnet *bb = &net->bb[s];
    a->N = N;
    a->H = H;
    a->W = W;
    a->h = bb->feat_h[3];
    a->w = bb->feat_w[3];
    SFC_ASSERT(bb->feat_h[4] == a->h && bb->feat_w[4] == a->w);
    a->K = net->cfg.C + 1;
    a->D = 0;
    for (int i = 0; i < 4; i++) a->D += net->cfg.side[i];
    a->train = train;
    a->heads = heads;
    struct sfc_arena m;
    sfc_arena_measure(&m);
    plan_into(net, bb, a, &m, train, heads);
    sfc_arena_init(&a->arena, NULL, m.peak);
    plan_into(net, bb, a, &a->arena, train, heads);
}

/* ---- forward ------------------------------------------------------------ */

static void conv1x1_forward(float *y, const float *x, const float *w, int C,
                            int OC, int N, int H, int W, float *scratch)
{
    struct sfc_conv2d c = conv1x1(C, OC);
    sfc_conv2d_forward(&c, y, x, w, NULL, N, H, W, scratch);
}

void sfc_sfcnet_forward(struct sfc_sfcnet *net, int s, const float *x,
                        const float *vm, int N, int H, int W, int train,
                        int heads)
{
    plan(net, s, N, H, W, train, heads);
    struct sfc_resnet *bb = &net->bb[s];
    struct sfc_sfcnet_act *a = &net->act[s];
    int C = net->cfg.C, K = a->K, D = a->D, C4 = bb->feat_c[4];
    int h = a->h, w = a->w, hw = h * w;
    sfc_resnet_forward(bb, x);
    const float *x4 = bb->feat[4];
    memcpy(a->vm, vm, sizeof(float) * (size_t)N * K * hw);
    conv1x1_forward(a->cam, x4, net->w_cls, C4, C, N, h, w, a->cscratch);
    sfc_gap_forward(a->score, a->cam, N, C, hw);
    if (!heads) return;

    /* normalised CAM with a 1 - max background, masked (§2.2 step 2) */
    sfc_relu_forward(a->crelu, a->cam, (long)N * C * hw);
    sfc_maxnorm_forward(a->cn, a->cmax, a->cidx, a->crelu, SFC_EPS, N, C, hw);
    sfc_chanmax_forward(a->bgmax, a->bgidx, a->cn, N, C, hw);
    for (int n = 0; n < N; n++) {
        float *o = a->cam21 + (size_t)n * K * hw;
        const float *v = a->vm + (size_t)n * K * hw;
        for (int p = 0; p < hw; p++)
            o[p] = (1.0f - a->bgmax[(size_t)n * hw + p]) * v[p];
        for (int c = 0; c < C; c++)
            for (int p = 0; p < hw; p++)
                o[(size_t)(c + 1) * hw + p] =
                    a->cn[((size_t)n * C + c) * hw + p] *
                    v[(size_t)(c + 1) * hw + p];
    }

    /* hierarchical feature: side convs on the (detached) stage outputs,
     * L2-normalised, resized to the layer3 grid (step 3) */
    int off = 0;
    for (int i = 0; i < 4; i++) {
        int sc = net->cfg.side[i], hi = bb->feat_h[i + 1],
            wi = bb->feat_w[i + 1];
        conv1x1_forward(a->sraw[i], bb->feat[i + 1], net->w_side[i],
                        bb->feat_c[i + 1], sc, N, hi, wi, a->cscratch);
        sfc_l2norm_forward(a->sn[i], a->snorm[i], a->sraw[i], SFC_EPS, N, sc,
                           hi * wi);
        for (int n = 0; n < N; n++)
            sfc_resize_bilinear_forward(
                a->hie + ((size_t)n * D + off) * hw,
                a->sn[i] + (size_t)n * sc * hi * wi, 1, sc, hi, wi, h, w, 0,
                0, 0);
        off += sc;
    }

    /* PCM (step 4): f = f9([resize(x), x4]), normalised, affinity twice */
    sfc_resize_bilinear_forward(a->xs, x, N, 3, H, W, h, w, 1, 0, 0);
    for (int n = 0; n < N; n++) {
        float *f = a->f + (size_t)n * C4 * hw;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, C4, hw, 3,
                    1.0f, net->w_f9, 3 + C4, a->xs + (size_t)n * 3 * hw, hw,
                    0.0f, f, hw);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, C4, hw, C4,
                    1.0f, net->w_f9 + 3, 3 + C4, x4 + (size_t)n * C4 * hw, hw,
                    1.0f, f, hw);
    }
    sfc_l2norm_forward(a->fn, a->fnorm, a->f, SFC_EPS, N, C4, hw);
    sfc_pcm_affinity_forward(a->A, a->colsum, a->fn, SFC_EPS, N, C4, hw);
    sfc_pcm_apply_forward(a->t, a->cam21, a->A, N, K, hw);
    sfc_pcm_apply_forward(a->mw, a->t, a->A, N, K, hw);

    /* prototypes and M_P (step 5) */
    sfc_proto_seeds(a->seeds, a->mw, a->vm, net->cfg.proto_bg, N, K, hw);
    sfc_proto_forward(a->proto, a->seeds, a->hie, N, K, D, hw);
    sfc_cosine_forward(a->cos, a->hie, a->proto, COS_EPS, N, K, D, hw);
    sfc_relu_forward(a->mp, a->cos, (long)N * K * hw);
}

/* ---- CAM inference (§3) ------------------------------------------------- */

/* dst (C, hw) = a (C, h, w) + a' (C, h, w) flipped along w. */
static void add_flipped(float *dst, const float *a, const float *b, int C,
                        int h, int w)
{
    for (int c = 0; c < C; c++)
        for (int y = 0; y < h; y++) {
            const float *ra = a + ((size_t)c * h + y) * w;
            const float *rb = b + ((size_t)c * h + y) * w;
            float *rd = dst + ((size_t)c * h + y) * w;
            for (int x = 0; x < w; x++) rd[x] = ra[x] + rb[w - 1 - x];
        }
}

void sfc_sfcnet_cam(struct sfc_sfcnet *net, const float *x, int H, int W,
                    const float *y21, float *mw, float *mp, float *mc)
{
    plan(net, 0, 2, H, W, 0, 1);
    struct sfc_resnet *bb = &net->bb[0];
    struct sfc_sfcnet_act *a = &net->act[0];
    int C = net->cfg.C, K = a->K, D = a->D, C4 = bb->feat_c[4];
    int h = a->h, w = a->w, hw = h * w;
    sfc_resnet_forward(bb, x);
    const float *x4 = bb->feat[4];
    /* both copies through the 1x1 heads (N = 2), then fused */
    conv1x1_forward(a->cam, x4, net->w_cls, C4, C, 2, h, w, a->cscratch);
    int off = 0;
    for (int i = 0; i < 4; i++) {
        int sc = net->cfg.side[i], hi = bb->feat_h[i + 1],
            wi = bb->feat_w[i + 1];
        conv1x1_forward(a->sraw[i], bb->feat[i + 1], net->w_side[i],
                        bb->feat_c[i + 1], sc, 2, hi, wi, a->cscratch);
        sfc_l2norm_forward(a->sn[i], a->snorm[i], a->sraw[i], SFC_EPS, 2, sc,
                           hi * wi);
        for (int n = 0; n < 2; n++)
            sfc_resize_bilinear_forward(
                a->hie + ((size_t)n * D + off) * hw,
                a->sn[i] + (size_t)n * sc * hi * wi, 1, sc, hi, wi, h, w, 0,
                0, 0);
        off += sc;
    }
    float *cam = a->crelu; /* (C, hw) */
    float *hie = sfc_xmalloc(sizeof(float) * (size_t)D * hw);
    add_flipped(cam, a->cam, a->cam + (size_t)C * hw, C, h, w);
    add_flipped(hie, a->hie, a->hie + (size_t)D * hw, D, h, w);
    sfc_relu_forward(cam, cam, (long)C * hw);
    sfc_maxnorm_forward(a->cn, a->cmax, a->cidx, cam, SFC_EPS, 1, C, hw);
    sfc_chanmax_forward(a->bgmax, a->bgidx, a->cn, 1, C, hw);
    for (int p = 0; p < hw; p++) a->cam21[p] = 1.0f - a->bgmax[p];
    memcpy(a->cam21 + hw, a->cn, sizeof(float) * (size_t)C * hw);
    if (mc) memcpy(mc, a->cam21, sizeof(float) * (size_t)K * hw);
    /* PCM on the fused image and x4 */
    float *xsum = sfc_xmalloc(sizeof(float) * 3 * (size_t)H * W);
    add_flipped(xsum, x, x + (size_t)3 * H * W, 3, H, W);
    sfc_resize_bilinear_forward(a->xs, xsum, 1, 3, H, W, h, w, 1, 0, 0);
    free(xsum);
    float *x4s = a->fn; /* (C4, hw) scratch before it is overwritten */
    add_flipped(x4s, x4, x4 + (size_t)C4 * hw, C4, h, w);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, C4, hw, 3, 1.0f,
                net->w_f9, 3 + C4, a->xs, hw, 0.0f, a->f, hw);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, C4, hw, C4, 1.0f,
                net->w_f9 + 3, 3 + C4, x4s, hw, 1.0f, a->f, hw);
    sfc_l2norm_forward(a->fn, a->fnorm, a->f, SFC_EPS, 1, C4, hw);
    sfc_pcm_affinity_forward(a->A, a->colsum, a->fn, SFC_EPS, 1, C4, hw);
    float *t = a->mp; /* scratch */
    sfc_pcm_apply_forward(t, a->cam21, a->A, 1, K, hw);
    sfc_pcm_apply_forward(mw, t, a->A, 1, K, hw);
    /* prototypes seeded inside the image's classes */
    float *valid = a->vm;
    for (int k = 0; k < K; k++)
        for (int p = 0; p < hw; p++) valid[(size_t)k * hw + p] = y21[k];
    sfc_proto_seeds(a->seeds, mw, valid, net->cfg.proto_bg, 1, K, hw);
    sfc_proto_forward(a->proto, a->seeds, hie, 1, K, D, hw);
    sfc_cosine_forward(a->cos, hie, a->proto, COS_EPS, 1, K, D, hw);
    sfc_relu_forward(mp, a->cos, (long)K * hw);
    free(hie);
}

/* ---- backward ----------------------------------------------------------- */

static void zero(float *p, size_t n)
{
    memset(p, 0, sizeof(float) * n);
}

void sfc_sfcnet_backward(struct sfc_sfcnet *net, int s, int heads)
{
    struct sfc_resnet *bb = &net->bb[s];
    struct sfc_sfcnet_act *a = &net->act[s];
    int N = a->N, C = net->cfg.C, K = a->K, D = a->D, C4 = bb->feat_c[4];
    int h = a->h, w = a->w, hw = h * w;
    size_t nk = (size_t)N * K * hw, nc = (size_t)N * C * hw;
    const float *x4 = bb->feat[4];
    zero(a->dx4, (size_t)N * C4 * hw);
    float *dcam = a->g3;
    zero(dcam, nc);

    if (heads) {
        /* M_P branch: relu, cosine, prototypes -> hie -> side weights */
        float *dcos = a->g1, *dhie = a->gside,
              *dproto = a->gside + (size_t)N * D * hw;
        zero(dcos, nk);
        sfc_relu_backward(dcos, a->dmp, a->mp, (long)nk);
        zero(dhie, (size_t)N * D * hw + (size_t)N * K * D);
        sfc_cosine_backward(dhie, dproto, dcos, a->hie, a->proto, COS_EPS, N,
                            K, D, hw, a->scratch);
        sfc_proto_backward(dhie, dproto, a->seeds, N, K, D, hw);
        int off = 0;
        for (int i = 0; i < 4; i++) {
            int sc = net->cfg.side[i], hi = bb->feat_h[i + 1],
                wi = bb->feat_w[i + 1];
            size_t n = (size_t)N * sc * hi * wi;
            float *dsn = a->gsn, *dsraw = a->gcam;
            zero(dsn, n);
            for (int k = 0; k < N; k++)
                sfc_resize_bilinear_backward(
                    dsn + (size_t)k * sc * hi * wi,
                    dhie + ((size_t)k * D + off) * hw, 1, sc, hi, wi, h, w, 0,
                    0, 0);
            zero(dsraw, n);
            sfc_l2norm_backward(dsraw, dsn, a->sraw[i], a->snorm[i], SFC_EPS,
                                N, sc, hi * wi);
            struct sfc_conv2d c = conv1x1(bb->feat_c[i + 1], sc);
            sfc_conv2d_backward(&c, NULL, net->dw_side[i], NULL, dsraw,
                                bb->feat[i + 1], net->w_side[i], N, hi, wi,
                                a->cscratch);
            off += sc;
        }

        /* M_W branch: two PCM products, the affinity, f9 */
        float *dt = a->g1, *dcam21 = a->g2, *dA = a->gA;
        zero(dt, nk);
        zero(dA, (size_t)N * hw * hw);
        sfc_pcm_apply_backward(dt, dA, a->dmw, a->t, a->A, N, K, hw);
        zero(dcam21, nk);
        sfc_pcm_apply_backward(dcam21, dA, dt, a->cam21, a->A, N, K, hw);
        float *dfn = a->gcam, *df = a->gside;
        zero(dfn, (size_t)N * C4 * hw);
        sfc_pcm_affinity_backward(dfn, dA, a->fn, a->A, a->colsum, N, C4, hw,
                                  a->scratch);
        zero(df, (size_t)N * C4 * hw);
        sfc_l2norm_backward(df, dfn, a->f, a->fnorm, SFC_EPS, N, C4, hw);
        for (int n = 0; n < N; n++) {
            const float *dfi = df + (size_t)n * C4 * hw;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, C4, 3, hw,
                        1.0f, dfi, hw, a->xs + (size_t)n * 3 * hw, hw, 1.0f,
                        net->dw_f9, 3 + C4);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, C4, C4, hw,
                        1.0f, dfi, hw, x4 + (size_t)n * C4 * hw, hw, 1.0f,
                        net->dw_f9 + 3, 3 + C4);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C4, hw, C4,
                        1.0f, net->w_f9 + 3, 3 + C4, dfi, hw, 1.0f,
                        a->dx4 + (size_t)n * C4 * hw, hw);
        }

        /* cam21 -> normalised CAM -> CAM */
        float *dcn = a->g1, *dbg = a->gA; /* reuse: dt and dA are done */
        for (int n = 0; n < N; n++) {
            const float *d = dcam21 + (size_t)n * K * hw,
                        *v = a->vm + (size_t)n * K * hw;
            for (int p = 0; p < hw; p++)
                dbg[(size_t)n * hw + p] = -d[p] * v[p];
            for (int c = 0; c < C; c++)
                for (int p = 0; p < hw; p++)
                    dcn[((size_t)n * C + c) * hw + p] =
                        d[(size_t)(c + 1) * hw + p] *
                        v[(size_t)(c + 1) * hw + p];
        }
        sfc_chanmax_backward(dcn, dbg, a->bgidx, N, C, hw);
        float *dcrelu = a->g2;
        zero(dcrelu, nc);
        sfc_maxnorm_backward(dcrelu, dcn, a->crelu, a->cmax, a->cidx, SFC_EPS,
                             N, C, hw);
        sfc_relu_backward(dcam, dcrelu, a->crelu, (long)nc);
    }
    sfc_gap_backward(dcam, a->dscore, N, C, hw);
    struct sfc_conv2d c = conv1x1(C4, C);
    sfc_conv2d_backward(&c, a->dx4, net->dw_cls, NULL, dcam, x4, net->w_cls,
                        N, h, w, a->cscratch);
    const float *dfeat[SFC_RESNET_STAGES] = {NULL, NULL, NULL, NULL, a->dx4};
    sfc_resnet_backward(bb, dfeat);
}

/* ---- the training step (§2.4, §2.5) ------------------------------------- */

int sfc_sfcnet_micro_default(int S)
{
    long px = (long)S * S;
    long m = px > 0 ? SFC_SFCNET_MICRO_PIXELS / px : 1;
    return (int)SFC_MAX(1, SFC_MIN(m, 1 << 20));
}

int sfc_sfcnet_micro_chunk(int n, int micro, int k, int *lo, int *hi,
                           int *wlo)
{
    SFC_ASSERT(n >= 1 && micro >= 1);
    int count = (n + micro - 1) / micro;
    int m = (n + count - 1) / count;
    SFC_ASSERT(k >= 0 && k < count);
    *lo = k * m;
    *hi = SFC_MIN(n, *lo + m);
    *wlo = SFC_MIN(*lo, n - m);
    return count;
}

/* vm (N, K, h*w): nearest-resized box, times [1, label] per channel; tmp
 * (h*w) scratch. */
static void lowres_mask(float *vm, float *tmp, const float *box,
                        const float *label, int N, int C, int S, int h, int w)
{
    int K = C + 1;
    size_t hw = (size_t)h * w;
    for (int n = 0; n < N; n++) {
        sfc_resize_nearest_forward(tmp, box + (size_t)n * S * S, 1, 1, S, S,
                                   h, w, 0, 0);
        for (int k = 0; k < K; k++) {
            float l = k ? label[(size_t)n * C + k - 1] : 1.0f;
            for (size_t p = 0; p < hw; p++)
                vm[((size_t)n * K + k) * hw + p] = tmp[p] * l;
        }
    }
}

static void work_into(struct sfc_sfcnet_work *wk, struct sfc_arena *ar,
                      size_t m, size_t K, size_t S2, size_t hw1, size_t hw2)
{
    wk->vm1 = sfc_arena_floats(ar, m * K * hw1);
    wk->vm2 = sfc_arena_floats(ar, m * K * hw2);
    wk->img2 = sfc_arena_floats(ar, m * 3 * S2 * S2);
    wk->tmp = sfc_arena_floats(ar, SFC_MAX(hw1, hw2));
    wk->w21 = sfc_arena_floats(ar, K);
    wk->mph = sfc_arena_floats(ar, m * K * hw1);
    wk->mx = sfc_arena_floats(ar, m * K);
    wk->ix = sfc_arena_alloc(ar, sizeof(int) * m * K);
    wk->dmph = sfc_arena_floats(ar, m * K * hw1);
    wk->d = sfc_arena_floats(ar, m * K * hw2);
    wk->e = sfc_arena_floats(ar, m * K * hw2);
    wk->dd = sfc_arena_floats(ar, m * K * hw2);
    wk->de = sfc_arena_floats(ar, m * K * hw2);
}

/* The step's work buffers for passes of m images of S x S. */
static void work_plan(struct sfc_sfcnet *net, int m, int S)
{
    struct sfc_sfcnet_work *wk = &net->work;
    int K = net->cfg.C + 1;
    if (wk->arena.base && wk->m == m && wk->S == S && wk->K == K) return;
    sfc_arena_release(&wk->arena);
    int h1, w1, h2, w2, S2 = sfc_resize_outsize(S, 0.5);
    sfc_sfcnet_grid(net, S, S, &h1, &w1);
    sfc_sfcnet_grid(net, S2, S2, &h2, &w2);
    size_t hw1 = (size_t)h1 * w1, hw2 = (size_t)h2 * w2;
    struct sfc_arena me;
    sfc_arena_measure(&me);
    work_into(wk, &me, (size_t)m, (size_t)K, (size_t)S2, hw1, hw2);
    sfc_arena_init(&wk->arena, NULL, me.peak);
    work_into(wk, &wk->arena, (size_t)m, (size_t)K, (size_t)S2, hw1, hw2);
    wk->m = m;
    wk->S = S;
    wk->K = K;
}

/* One pass: forward the m images of the window (img, label, box point at
 * its first image), the losses of its images r0 .. r0 + r - 1, each
 * weighted 1/N, backward. */
static void pass(struct sfc_sfcnet *net, const float *img, const float *label,
                 const float *box, const float *dc, int m, int r0, int r,
                 int N, int S, unsigned flags, struct sfc_sfc_losses *out)
{
    int C = net->cfg.C, K = C + 1;
    int heads = (flags & (SFC_LOSS_PDW | SFC_LOSS_WDW)) != 0;
    int two = (flags & SFC_LOSS_SCALE2) || heads;
    struct sfc_sfcnet_work *wk = &net->work;
    work_plan(net, m, S);
    float share = (float)r / (float)N; /* the part's weight in the means */

    /* scale 1 and scale 0.5 (bilinear, align_corners = True) */
    int h1, w1, h2 = 0, w2 = 0, S2 = sfc_resize_outsize(S, 0.5);
    sfc_sfcnet_grid(net, S, S, &h1, &w1);
    lowres_mask(wk->vm1, wk->tmp, box, label, m, C, S, h1, w1);
    sfc_sfcnet_forward(net, 0, img, wk->vm1, m, S, S, 1, heads);
    if (two) {
        sfc_sfcnet_grid(net, S2, S2, &h2, &w2);
        sfc_resize_bilinear_forward(wk->img2, img, m, 3, S, S, S2, S2, 1, 0.5,
                                    0.5);
        /* the reference resizes the full-size mask to S/32 directly */
        lowres_mask(wk->vm2, wk->tmp, box, label, m, C, S, h2, w2);
        sfc_sfcnet_forward(net, 1, wk->img2, wk->vm2, m, S2, S2, 1, heads);
    }
    struct sfc_sfcnet_act *a1 = &net->act[0], *a2 = &net->act[1];
    size_t hw1 = (size_t)h1 * w1, hw2 = (size_t)h2 * w2;
    /* the counted images' rows in the pass's (m, ...) buffers */
    const float *lab = label + (size_t)r0 * C;
    size_t o1 = (size_t)r0 * K * hw1, o2 = (size_t)r0 * K * hw2;

    /* L_cls: mean of the two scales' multilabel soft margin */
    float wc = two ? 0.5f : 1.0f;
    zero(a1->dscore, (size_t)m * C);
    out->cls += wc * share *
                sfc_mlsm_loss_forward(a1->score + (size_t)r0 * C, lab, r, C);
    sfc_mlsm_loss_backward(a1->dscore + (size_t)r0 * C, wc * share,
                           a1->score + (size_t)r0 * C, lab, r, C);
    if (two) {
        zero(a2->dscore, (size_t)m * C);
        out->cls += wc * share * sfc_mlsm_loss_forward(
                                     a2->score + (size_t)r0 * C, lab, r, C);
        sfc_mlsm_loss_backward(a2->dscore + (size_t)r0 * C, wc * share,
                               a2->score + (size_t)r0 * C, lab, r, C);
    }

    if (heads) {
        float *w21 = wk->w21;
        w21[0] = 1.0f;
        for (int c = 0; c < C; c++)
            w21[c + 1] = (flags & SFC_LOSS_DC) ? dc[c] : 1.0f;
        zero(a1->dmw, (size_t)m * K * hw1);
        zero(a1->dmp, (size_t)m * K * hw1);
        zero(a2->dmw, (size_t)m * K * hw2);
        zero(a2->dmp, (size_t)m * K * hw2);
        if (flags & SFC_LOSS_PDW) {
            /* |M_W - M_P / (max M_P + eps)| over all K channels */
            float *mph = wk->mph, *mx = wk->mx, *dmph = wk->dmph;
            int *ix = wk->ix;
            zero(dmph, (size_t)r * K * hw1);
            sfc_maxnorm_forward(mph, mx, ix, a1->mp + o1, SFC_EPS, r, K,
                                (int)hw1);
            out->pdw += PDW_WEIGHT * share *
                        sfc_l1_loss_forward(a1->mw + o1, mph, w21, r, K,
                                            (int)hw1, 0, K);
            sfc_l1_loss_backward(a1->dmw + o1, dmph, PDW_WEIGHT * share,
                                 a1->mw + o1, mph, w21, r, K, (int)hw1, 0, K);
            sfc_maxnorm_backward(a1->dmp + o1, dmph, a1->mp + o1, mx, ix,
                                 SFC_EPS, r, K, (int)hw1);
        }
        if (flags & SFC_LOSS_WDW) {
            /* resize(M_W1, x0.5, align_corners) * y21 vs M_W2 * y21,
             * foreground channels only */
            size_t n2 = (size_t)r * K * hw2;
            float *d = wk->d, *e = wk->e, *dd = wk->dd, *de = wk->de;
            zero(dd, n2);
            zero(de, n2);
            sfc_resize_bilinear_forward(d, a1->mw + o1, r, K, h1, w1, h2, w2,
                                        1, 0.5, 0.5);
            memcpy(e, a2->mw + o2, sizeof(float) * n2);
            for (int n = 0; n < r; n++)
                for (int c = 0; c < C; c++) {
                    float l = lab[(size_t)n * C + c];
                    for (size_t p = 0; p < hw2; p++) {
                        d[((size_t)n * K + c + 1) * hw2 + p] *= l;
                        e[((size_t)n * K + c + 1) * hw2 + p] *= l;
                    }
                }
            out->wdw += WDW_WEIGHT * share *
                        sfc_l1_loss_forward(d, e, w21, r, K, (int)hw2, 1, C);
            sfc_l1_loss_backward(dd, de, WDW_WEIGHT * share, d, e, w21, r, K,
                                 (int)hw2, 1, C);
            float *dmw2 = a2->dmw + o2;
            for (int n = 0; n < r; n++)
                for (int c = 0; c < C; c++) {
                    float l = lab[(size_t)n * C + c];
                    for (size_t p = 0; p < hw2; p++) {
                        size_t i = ((size_t)n * K + c + 1) * hw2 + p;
                        dd[i] *= l;
                        dmw2[i] += de[i] * l;
                    }
                }
            sfc_resize_bilinear_backward(a1->dmw + o1, dd, r, K, h1, w1, h2,
                                         w2, 1, 0.5, 0.5);
        }
    }
    sfc_sfcnet_backward(net, 0, heads);
    if (two) sfc_sfcnet_backward(net, 1, heads);
}

void sfc_sfcnet_accumulate(struct sfc_sfcnet *net, const float *img,
                           const float *label, const float *box,
                           const float *dc, int n, int N, int S, int micro,
                           unsigned flags, struct sfc_sfc_losses *out)
{
    SFC_ASSERT(n >= 1 && n <= N);
    if (micro <= 0) micro = sfc_sfcnet_micro_default(S);
    int C = net->cfg.C, lo, hi, wlo;
    int count = sfc_sfcnet_micro_chunk(n, micro, 0, &lo, &hi, &wlo);
    int m = hi - lo;
    /* the backward that runs last: the last chunk's second scale if any
     * (as in pass) */
    int lastbb = (flags & (SFC_LOSS_SCALE2 | SFC_LOSS_PDW | SFC_LOSS_WDW)) != 0;
    for (int k = 0; k < count; k++) {
        sfc_sfcnet_micro_chunk(n, micro, k, &lo, &hi, &wlo);
        for (int s = 0; s < 2; s++) {
            int on = k == count - 1 && s == lastbb;
            net->bb[s].grad_ready = on ? net->grad_ready : NULL;
            net->bb[s].grad_ready_ctx = net->grad_ready_ctx;
        }
        pass(net, img + (size_t)wlo * 3 * S * S, label + (size_t)wlo * C,
             box + (size_t)wlo * S * S, dc, m, lo - wlo, hi - lo, N, S, flags,
             out);
    }
    net->bb[0].grad_ready = net->bb[1].grad_ready = NULL;
}

void sfc_sfcnet_step(struct sfc_sfcnet *net, const float *img,
                     const float *label, const float *box, const float *dc,
                     int N, int S, int micro, unsigned flags,
                     struct sfc_sfc_losses *out)
{
    memset(out, 0, sizeof *out);
    memset(net->grads, 0, sizeof(float) * net->pb.size);
    sfc_sfcnet_accumulate(net, img, label, box, dc, N, N, S, micro, flags,
                          out);
}
