/* SPDX-License-Identifier: MIT */
/* deeplab.c: DeepLab-v2 = dilated ResNet (lib/resnet) + the ASPP head,
 * multi-scale inputs fused by the pixel-wise max, and the ignore-255
 * softmax cross-entropy on every output (see deeplab.h).
 *
 * Follows kazuto1011/deeplab-pytorch: libs/models/deeplabv2.py (_ASPP: four
 * dilated 3x3 convolutions with bias, summed; init normal(0, 0.01), bias
 * 0), libs/models/msc.py (MSC: F.interpolate of the input by each scale,
 * logits of the smaller scales resized to the full-scale logits' size,
 * torch.max over the stack), main.py (resize_labels with PIL nearest, one
 * CrossEntropyLoss(ignore_index=255) per output, summed; the 1x / 10x /
 * 20x parameter groups), and torchvision's ResNet with
 * replace_stride_with_dilation for the backbone. The head is lib/aspp.c
 * (all taps of the four branches in one product), the resizing kernels
 * are lib/ops.c (PyTorch's) and lib/resample.c (PIL's). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deeplab.h"
#include "err.h"
#include "ops.h"
#include "resample.h"
#include "segaug.h"
#include "util.h"

void sfc_deeplab_config_default(struct sfc_deeplab_config *cfg, int depth,
                                int nclass)
{
    static const int rates[SFC_ASPP_BRANCHES] = SFC_ASPP_RATES;
    memset(cfg, 0, sizeof *cfg);
    sfc_resnet_config_default(&cfg->bb, depth);
    cfg->bb.strides[3] = 2; /* torchvision's strides, then dilation */
    cfg->bb.dilate[2] = 1;
    cfg->bb.dilate[3] = 1;
    cfg->bb.frozen = 0;
    cfg->nclass = nclass;
    memcpy(cfg->rates, rates, sizeof cfg->rates);
}

static int feat_channels(const struct sfc_deeplab_config *cfg)
{
    return 4 * (cfg->bb.width << 3);
}

/* ------------------------------------------------------------ layout */

size_t sfc_deeplab_size(const struct sfc_deeplab_config *cfg)
{
    struct sfc_deeplab tmp;
    if (sfc_deeplab_init(&tmp, cfg, NULL, NULL) < 0) return 0;
    size_t n = tmp.pb.size;
    sfc_deeplab_release(&tmp);
    return n;
}

int sfc_deeplab_init(struct sfc_deeplab *net,
                     const struct sfc_deeplab_config *cfg, float *params,
                     float *grads)
{
    memset(net, 0, sizeof *net);
    if (cfg->nclass < 1 || cfg->nclass > 255)
        return sfc_error("deeplab", "%d classes is out of range [1, 255]",
                         cfg->nclass);
    for (int b = 0; b < SFC_ASPP_BRANCHES; b++)
        if (cfg->rates[b] < 1 || cfg->rates[b] > 1024)
            return sfc_error("deeplab", "ASPP rate %d is out of range",
                             cfg->rates[b]);
    /* the layout: the backbone's (sized by a throwaway instance), then
     * the head */
    struct sfc_resnet tmp;
    if (sfc_resnet_init(&tmp, &cfg->bb, NULL, NULL) < 0) return -1;
    net->cfg = *cfg;
    sfc_pblock_init(&net->pb);
    for (int i = 0; i < tmp.pb.n; i++) {
        const struct sfc_pentry *e = &tmp.pb.e[i];
        size_t off = sfc_pblock_add(&net->pb, e->name, e->buffer, e->ndim,
                                    e->shape);
        SFC_ASSERT(off == e->off);
    }
    net->bb_size = tmp.pb.size;
    sfc_resnet_release(&tmp);
    int F = feat_channels(cfg), C = cfg->nclass;
    net->head.F = F;
    net->head.C = C;
    net->head.nb = SFC_ASPP_BRANCHES;
    memcpy(net->head.rates, cfg->rates, sizeof cfg->rates);
    size_t woff[SFC_ASPP_BRANCHES], boff[SFC_ASPP_BRANCHES];
    for (int b = 0; b < SFC_ASPP_BRANCHES; b++) {
        char name[32];
        snprintf(name, sizeof name, "aspp.c%d.weight", b);
        woff[b] = sfc_pblock_add(&net->pb, name, 0, 4,
                                 (const int64_t[]){C, F, 3, 3});
        snprintf(name, sizeof name, "aspp.c%d.bias", b);
        boff[b] = sfc_pblock_add(&net->pb, name, 0, 1, (const int64_t[]){C});
    }
    size_t nbytes = net->pb.size * sizeof(float);
    if (params) {
        net->params = params;
    } else {
        net->params = sfc_xmalloc_aligned(nbytes);
        memset(net->params, 0, nbytes);
        net->owns_params = 1;
    }
    if (grads) {
        net->grads = grads;
    } else {
        net->grads = sfc_xmalloc_aligned(nbytes);
        memset(net->grads, 0, nbytes);
        net->owns_grads = 1;
    }
    if (sfc_resnet_init(&net->bb, &cfg->bb, net->params, net->grads) < 0)
        return -1;
    for (int b = 0; b < SFC_ASPP_BRANCHES; b++) {
        net->w[b] = net->params + woff[b];
        net->b[b] = net->params + boff[b];
        net->dw[b] = net->grads + woff[b];
        net->db[b] = net->grads + boff[b];
    }
    return 0;
}

static void scale_release(struct sfc_deeplab_scale *sc)
{
    sfc_resnet_release(&sc->bb);
    free(sc->mem);
    memset(sc, 0, sizeof *sc);
}

void sfc_deeplab_release(struct sfc_deeplab *net)
{
    for (int k = 0; k < SFC_DEEPLAB_MAXSCALES; k++) scale_release(&net->sc[k]);
    sfc_resnet_release(&net->bb);
    if (net->owns_params) free(net->params);
    if (net->owns_grads) free(net->grads);
    sfc_pblock_release(&net->pb);
    free(net->mem);
    memset(net, 0, sizeof *net);
}

void sfc_deeplab_init_random(struct sfc_deeplab *net, struct sfc_rng *rng)
{
    sfc_resnet_init_random(&net->bb, rng);
    size_t nw = net->pb.e[net->pb.n - 1].numel; /* a bias: C */
    size_t wn = nw * (size_t)feat_channels(&net->cfg) * 9;
    for (int b = 0; b < SFC_ASPP_BRANCHES; b++) {
        for (size_t i = 0; i < wn; i++)
            net->w[b][i] = (float)(SFC_ASPP_INIT_STD * sfc_rng_normal(rng));
        memset(net->b[b], 0, nw * sizeof(float));
    }
}

int sfc_deeplab_load_backbone(struct sfc_deeplab *net, const char *path)
{
    return sfc_resnet_load_file(&net->bb, path);
}

int sfc_deeplab_load(struct sfc_deeplab *net, const struct sfc_safetensors *st,
                     const char *prefix, const char *domain)
{
    static const char *const ignore[] = {"fc.", "optim.", NULL};
    return sfc_pblock_load(&net->pb, net->params, st, prefix, ignore, domain);
}

void sfc_deeplab_zero_grad(struct sfc_deeplab *net)
{
    memset(net->grads, 0, net->pb.size * sizeof(float));
}

/* ------------------------------------------------------------ plan */

static int same_plan(const struct sfc_deeplab *net, int N, int H, int W,
                     int nscale, const double *scales, int train)
{
    if (net->N != N || net->H != H || net->W != W || net->train != train ||
        net->nscale != nscale)
        return 0;
    for (int k = 0; k < nscale; k++)
        if (net->sc[k].s != scales[k]) return 0;
    return 1;
}

int sfc_deeplab_plan(struct sfc_deeplab *net, int N, int H, int W,
                     int nscale, const double *scales, int train)
{
    if (same_plan(net, N, H, W, nscale, scales, train)) return 0;
    if (nscale < 1 || nscale > SFC_DEEPLAB_MAXSCALES)
        return sfc_error("deeplab", "%d scales (1 to %d)", nscale,
                         SFC_DEEPLAB_MAXSCALES);
    int C = net->cfg.nclass, F = feat_channels(&net->cfg);
    for (int k = 0; k < nscale; k++) {
        double s = scales[k];
        int h = s == 1 ? H : sfc_resize_outsize(H, s);
        int w = s == 1 ? W : sfc_resize_outsize(W, s);
        if (!(s > 0) || h < 1 || w < 1)
            return sfc_error("deeplab", "scale %g of a %dx%d input is empty",
                             s, W, H);
    }
    net->nscale = 0;
    net->N = 0;
    size_t nsh = 0; /* the scratch all scales share */
    for (int k = 0; k < nscale; k++) {
        struct sfc_deeplab_scale *sc = &net->sc[k];
        if (!sc->bb.pb.n &&
            sfc_resnet_init(&sc->bb, &net->cfg.bb, net->params, net->grads))
            return -1;
        free(sc->mem);
        sc->mem = NULL;
        sc->s = scales[k];
        sc->h = sc->s == 1 ? H : sfc_resize_outsize(H, sc->s);
        sc->w = sc->s == 1 ? W : sfc_resize_outsize(W, sc->s);
        sfc_resnet_plan(&sc->bb, N, sc->h, sc->w, train);
        sc->lh = sc->bb.feat_h[4];
        sc->lw = sc->bb.feat_w[4];
        if (k == 0) {
            net->LH = sc->lh;
            net->LW = sc->lw;
        }
        size_t nl = (size_t)N * C * sc->lh * sc->lw;
        size_t nu = k ? (size_t)N * C * net->LH * net->LW : 0;
        size_t nx = sc->s == 1 ? 0 : (size_t)N * 3 * sc->h * sc->w;
        size_t nf = train ? (size_t)N * F * sc->lh * sc->lw : 0;
        nsh = SFC_MAX(nsh, sfc_aspp_scratch(&net->head, sc->lh, sc->lw));
        nsh = SFC_MAX(nsh, sc->bb.nscratch);
        /* floats: x, logit, dlogit, up, dup, dfeat; then the labels */
        size_t nfl = nx + nl + (train ? nl + nu : 0) + nu + nf;
        size_t nlab = train ? (size_t)N * sc->lh * sc->lw : 0;
        float *m = sfc_xmalloc_aligned(nfl * sizeof(float) + nlab + 64);
        sc->mem = m;
        sc->x = nx ? m : NULL;
        m += nx;
        sc->logit = m;
        m += nl;
        sc->dlogit = train ? m : NULL;
        m += train ? nl : 0;
        sc->up = nu ? m : NULL;
        m += nu;
        sc->dup = train && nu ? m : NULL;
        m += train ? nu : 0;
        sc->dfeat = nf ? m : NULL;
        m += nf;
        sc->lab = nlab ? (uint8_t *)m : NULL;
    }
    for (int k = nscale; k < SFC_DEEPLAB_MAXSCALES; k++)
        if (net->sc[k].mem) {
            free(net->sc[k].mem);
            net->sc[k].mem = NULL;
        }
    free(net->mem);
    size_t nfz = (size_t)N * C * net->LH * net->LW;
    nsh = (nsh + 15) / 16 * 16;
    char *m = sfc_xmalloc_aligned(nsh * sizeof(float) +
                                  nfz * (2 * sizeof(float) + sizeof(int)) +
                                  64);
    net->mem = m;
    /* The scales run one after the other, and every backbone and head
     * call uses its scratch only while it runs: one buffer serves all
     * (each backbone's own, in its arena, is then never touched). */
    for (int k = 0; k < nscale; k++)
        net->sc[k].scratch = net->sc[k].bb.scratch = (float *)m;
    m += nsh * sizeof(float);
    net->fused = (float *)m;
    net->dfused = net->fused + nfz;
    net->arg = (int *)(net->dfused + nfz);
    net->N = N;
    net->H = H;
    net->W = W;
    net->train = train;
    net->nscale = nscale;
    return 0;
}

/* ------------------------------------------------------------ forward */


void sfc_deeplab_forward(struct sfc_deeplab *net, const float *x)
{
    SFC_ASSERT(net->nscale > 0);
    int N = net->N, C = net->cfg.nclass;
    for (int k = 0; k < net->nscale; k++) {
        struct sfc_deeplab_scale *sc = &net->sc[k];
        const float *in = x;
        if (sc->x) {
            sfc_resize_bilinear_forward(sc->x, x, N, 3, net->H, net->W, sc->h,
                                        sc->w, 0, sc->s, sc->s);
            in = sc->x;
        }
        sfc_resnet_forward(&sc->bb, in);
        sfc_aspp_forward(&net->head, sc->logit, sc->bb.feat[4],
                         (const float *const *)net->w,
                         (const float *const *)net->b, N, sc->lh, sc->lw,
                         sc->scratch);
        if (k)
            sfc_resize_bilinear_forward(sc->up, sc->logit, N, C, sc->lh,
                                        sc->lw, net->LH, net->LW, 0, 0, 0);
    }
    size_t n = (size_t)N * C * net->LH * net->LW;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float best = net->sc[0].logit[i];
        int a = 0;
        for (int k = 1; k < net->nscale; k++)
            if (net->sc[k].up[i] > best) best = net->sc[k].up[i], a = k;
        net->fused[i] = best;
        net->arg[i] = a;
    }
}

/* ------------------------------------------------------------ loss */

/* lab (N, H, W) -> out (N, h, w) by PIL nearest */
static void resize_labels(uint8_t *out, int h, int w, const uint8_t *lab,
                          int N, int H, int W)
{
    for (int n = 0; n < N; n++)
        sfc_resize_nearest_u8(out + (size_t)n * h * w, h, w,
                              lab + (size_t)n * H * W, H, W, 1);
}

static long count_valid(const uint8_t *lab, size_t n, int C)
{
    long c = 0;
    for (size_t i = 0; i < n; i++) c += lab[i] < C;
    return c;
}

void sfc_deeplab_count(const struct sfc_deeplab *net, const uint8_t *lab,
                       int N, double *count)
{
    int C = net->cfg.nclass;
    for (int k = 0; k < net->nscale; k++) {
        const struct sfc_deeplab_scale *sc = &net->sc[k];
        size_t n = (size_t)N * sc->lh * sc->lw;
        uint8_t *t = sfc_xmalloc(n);
        resize_labels(t, sc->lh, sc->lw, lab, N, net->H, net->W);
        long c = count_valid(t, n, C);
        count[k] += c;
        if (k == 0) count[net->nscale] += c;
        free(t);
    }
}

double sfc_deeplab_train(struct sfc_deeplab *net, const float *x,
                         const uint8_t *lab, const double *denom,
                         double *parts)
{
    SFC_ASSERT(net->train);
    int N = net->N, C = net->cfg.nclass, ns = net->nscale;
    sfc_deeplab_forward(net, x);
    double total = 0;
    size_t nf = (size_t)N * C * net->LH * net->LW;
    for (int k = 0; k < ns; k++) {
        struct sfc_deeplab_scale *sc = &net->sc[k];
        int hw = sc->lh * sc->lw;
        resize_labels(sc->lab, sc->lh, sc->lw, lab, N, net->H, net->W);
        memset(sc->dlogit, 0, (size_t)N * C * hw * sizeof(float));
        if (sc->dup) memset(sc->dup, 0, nf * sizeof(float));
        double l = 0;
        if (denom[k] > 0) {
            l = sfc_softmax_ce_forward(sc->logit, sc->lab, N, C, hw, NULL) /
                denom[k];
            sfc_softmax_ce_backward(sc->dlogit, (float)(1.0 / denom[k]),
                                    sc->logit, sc->lab, N, C, hw);
        }
        if (parts) parts[k] = l;
        total += l;
    }
    /* the fused output, against scale 0's labels */
    double l = 0;
    memset(net->dfused, 0, nf * sizeof(float));
    int hw0 = net->LH * net->LW;
    if (denom[ns] > 0) {
        l = sfc_softmax_ce_forward(net->fused, net->sc[0].lab, N, C, hw0,
                                   NULL) /
            denom[ns];
        sfc_softmax_ce_backward(net->dfused, (float)(1.0 / denom[ns]),
                                net->fused, net->sc[0].lab, N, C, hw0);
    }
    if (parts) parts[ns] = l;
    total += l;
    /* route the fused gradient to the winning scale */
    for (size_t i = 0; i < nf; i++) {
        int a = net->arg[i];
        if (a == 0)
            net->sc[0].dlogit[i] += net->dfused[i];
        else
            net->sc[a].dup[i] += net->dfused[i];
    }
    for (int k = 0; k < ns; k++) {
        struct sfc_deeplab_scale *sc = &net->sc[k];
        if (k)
            sfc_resize_bilinear_backward(sc->dlogit, sc->dup, N, C, sc->lh,
                                         sc->lw, net->LH, net->LW, 0, 0, 0);
        sfc_aspp_backward(&net->head, sc->dfeat, net->dw, net->db, sc->dlogit,
                          sc->bb.feat[4], (const float *const *)net->w, N,
                          sc->lh, sc->lw, sc->scratch, SFC_ASPP_DX_SET);
        const float *dfe[SFC_RESNET_STAGES] = {NULL, NULL, NULL, NULL,
                                               sc->dfeat};
        sfc_resnet_backward(&sc->bb, dfe);
    }
    return total;
}

/* ------------------------------------------------------------ inference */

int sfc_deeplab_predict(struct sfc_deeplab *net, float *out,
                        const uint8_t *img, int H, int W, int nscale,
                        const double *scales, int flip)
{
    int C = net->cfg.nclass, nb = 1 + !!flip;
    if (sfc_deeplab_plan(net, nb, H, W, nscale, scales, 0)) return -1;
    float *x = sfc_xmalloc(sizeof(float) * 3 * (size_t)H * W * nb);
    sfc_seg_input(x, img, H, W, flip);
    sfc_deeplab_forward(net, x);
    int LH = net->LH, LW = net->LW;
    float *f = net->fused;
    if (flip) { /* the mirror's logits, mirrored back, into the max */
        const float *g = net->fused + (size_t)C * LH * LW;
        for (int c = 0; c < C; c++)
            for (int y = 0; y < LH; y++)
                for (int xx = 0; xx < LW; xx++) {
                    size_t i = ((size_t)c * LH + y) * LW + xx;
                    float v = g[((size_t)c * LH + y) * LW + (LW - 1 - xx)];
                    if (v > f[i]) f[i] = v;
                }
    }
    sfc_resize_bilinear_forward(out, f, 1, C, LH, LW, H, W, 0, 0, 0);
    free(x);
    return 0;
}

/* ------------------------------------------------------------ optimiser */

/* append [off, off + len) to a range list, merging with the last range */
static void range_add(struct sfc_range **r, int *n, size_t off, size_t len)
{
    if (*n && (*r)[*n - 1].off + (*r)[*n - 1].len == off) {
        (*r)[*n - 1].len += len;
        return;
    }
    *r = sfc_xrealloc(*r, (size_t)(*n + 1) * sizeof **r);
    (*r)[(*n)++] = (struct sfc_range){off, len};
}

void sfc_deeplab_sgd_groups(const struct sfc_deeplab *net, struct sfc_sgd *o,
                            double lr, double wd, double head_mult,
                            double bias_mult, int train_bn)
{
    struct sfc_range *r[3] = {NULL, NULL, NULL};
    int n[3] = {0, 0, 0};
    for (int i = 0; i < net->pb.n; i++) {
        const struct sfc_pentry *e = &net->pb.e[i];
        int g;
        if (e->buffer) continue;
        if (e->off < net->bb_size) {
            if (e->ndim == 1 && !train_bn) continue;
            g = 0;
        } else {
            g = e->ndim == 4 ? 1 : 2;
        }
        range_add(&r[g], &n[g], e->off, e->numel);
    }
    sfc_sgd_add_group(o, lr, wd, n[0], r[0]);
    sfc_sgd_add_group(o, lr * head_mult, wd, n[1], r[1]);
    sfc_sgd_add_group(o, lr * bias_mult, 0, n[2], r[2]);
    for (int g = 0; g < 3; g++) free(r[g]);
}

/* ------------------------------------------------------------ metadata */

void sfc_deeplab_meta(const struct sfc_deeplab_config *cfg,
                      const char *keys[SFC_DEEPLAB_NMETA],
                      char vals[SFC_DEEPLAB_NMETA][64])
{
    const int *b = cfg->bb.blocks;
    keys[0] = "sfc.model";
    keys[1] = "sfc.blocks";
    keys[2] = "sfc.width";
    keys[3] = "sfc.classes";
    snprintf(vals[0], 64, "deeplab-v2");
    snprintf(vals[1], 64, "%d,%d,%d,%d", b[0], b[1], b[2], b[3]);
    snprintf(vals[2], 64, "%d", cfg->bb.width);
    snprintf(vals[3], 64, "%d", cfg->nclass);
}

int sfc_deeplab_config_from_meta(struct sfc_deeplab_config *cfg,
                                 const struct sfc_safetensors *st,
                                 const char *path)
{
    const char *m = sfc_safetensors_meta(st, "sfc.model");
    const char *mb = sfc_safetensors_meta(st, "sfc.blocks");
    const char *mw = sfc_safetensors_meta(st, "sfc.width");
    const char *mc = sfc_safetensors_meta(st, "sfc.classes");
    if (!m || strcmp(m, "deeplab-v2") || !mb || !mw || !mc)
        return sfc_error(path, "not a DeepLab-v2 model (metadata sfc.model, "
                               "sfc.blocks, sfc.width, sfc.classes)");
    int b[4];
    char end;
    if (sscanf(mb, "%d,%d,%d,%d%c", &b[0], &b[1], &b[2], &b[3], &end) != 4)
        return sfc_error(path, "bad sfc.blocks '%s'", mb);
    long width, nclass;
    if (sfc_parse_long(path, mw, 1, 4096, &width) ||
        sfc_parse_long(path, mc, 1, 255, &nclass))
        return -1;
    sfc_deeplab_config_default(cfg, 50, (int)nclass);
    memcpy(cfg->bb.blocks, b, sizeof b);
    cfg->bb.width = (int)width;
    return 0;
}

double sfc_deeplab_flops(const struct sfc_deeplab *net)
{
    double f = 0;
    int F = feat_channels(&net->cfg), C = net->cfg.nclass;
    for (int k = 0; k < net->nscale; k++) {
        const struct sfc_deeplab_scale *sc = &net->sc[k];
        f += sfc_resnet_flops(&sc->bb);
        f += 2.0 * SFC_ASPP_BRANCHES * net->N * F * C * 9.0 * sc->lh * sc->lw;
    }
    return f;
}
