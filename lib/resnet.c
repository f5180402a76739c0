/* SPDX-License-Identifier: MIT */
/* resnet.c: ResNet-50/101 forward and backward over the conv kernels, with
 * frozen BatchNorm (see resnet.h). Follows torchvision 0.14
 * models/resnet.py (Bottleneck v1.5, _make_layer's dilation rule) and
 * sfc-reference.md §2.2 and §6.3 (strides 2,2,2,1, FixedBatchNorm, frozen
 * conv1..layer2 whose outputs are detached).
 *
 * Parameters come first in the block, in torchvision's state_dict order,
 * then the BN running statistics in the same order; so the unfrozen
 * parameters are one contiguous range. BN, ReLU and the residual sum are
 * fused into single passes here (frozen BN is a per-channel affine map);
 * their backward overwrites its output instead of accumulating, and the
 * per-channel sums of dgamma/dbeta run in a fixed order (thread count does
 * not change results). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "layers.h"
#include "resnet.h"
#include "util.h"

/* ------------------------------------------------------------------------
 * Configuration and layout */

void sfc_resnet_config_default(struct sfc_resnet_config *cfg, int depth)
{
    static const int b50[4] = {3, 4, 6, 3}, b101[4] = {3, 4, 23, 3};
    memset(cfg, 0, sizeof *cfg);
    memcpy(cfg->blocks, depth == 101 ? b101 : b50, sizeof cfg->blocks);
    cfg->width = 64;
    cfg->in_ch = 3;
    cfg->stem_stride = 2;
    cfg->strides[0] = 1;
    cfg->strides[1] = 2;
    cfg->strides[2] = 2;
    cfg->strides[3] = 1;
}

static int check_config(const struct sfc_resnet_config *c)
{
    if (c->width < 1 || c->width > 4096 || c->in_ch < 1 ||
        c->stem_stride < 1)
        return sfc_error("resnet", "invalid width, input channels or stem "
                                   "stride");
    for (int i = 0; i < 4; i++) {
        if (c->blocks[i] < 1 || c->blocks[i] > 256)
            return sfc_error("resnet", "layer%d: %d blocks is out of range",
                             i + 1, c->blocks[i]);
        if (c->strides[i] < 1 || c->strides[i] > 4)
            return sfc_error("resnet", "layer%d: stride %d is out of range",
                             i + 1, c->strides[i]);
    }
    if (c->dilate[0])
        return sfc_error("resnet", "layer1 cannot be dilated");
    if (c->frozen < 0 || c->frozen > SFC_RESNET_STAGES)
        return sfc_error("resnet", "frozen stages %d is out of range [0, 5]",
                         c->frozen);
    return 0;
}

/* Walk the architecture: fill the conv descriptors of net->blk. */
static void build_arch(struct sfc_resnet *net)
{
    const struct sfc_resnet_config *c = &net->cfg;
    net->conv1 = (struct sfc_conv2d){c->in_ch, c->width, 7, c->stem_stride,
                                     3, 1};
    net->nblocks = c->blocks[0] + c->blocks[1] + c->blocks[2] + c->blocks[3];
    net->blk = sfc_xcalloc((size_t)net->nblocks, sizeof *net->blk);
    int inplanes = c->width, dilation = 1, k = 0;
    for (int i = 0; i < 4; i++) {
        int planes = c->width << i, stride = c->strides[i];
        int prev = dilation;
        if (c->dilate[i]) {
            dilation *= stride;
            stride = 1;
        }
        for (int b = 0; b < c->blocks[i]; b++, k++) {
            struct sfc_resnet_block *B = &net->blk[k];
            int s = b == 0 ? stride : 1, d = b == 0 ? prev : dilation;
            int cin = b == 0 ? inplanes : 4 * planes;
            B->stage = i + 1;
            B->c1 = (struct sfc_conv2d){cin, planes, 1, 1, 0, 1};
            B->c2 = (struct sfc_conv2d){planes, planes, 3, s, d, d};
            B->c3 = (struct sfc_conv2d){planes, 4 * planes, 1, 1, 0, 1};
            if (b == 0 && (stride != 1 || inplanes != 4 * planes))
                B->cd = (struct sfc_conv2d){cin, 4 * planes, 1, stride, 0, 1};
        }
        inplanes = 4 * planes;
    }
}

static void add_conv(struct sfc_pblock *pb, const char *name,
                     const struct sfc_conv2d *c)
{
    int64_t shape[4] = {c->OC, c->C, c->K, c->K};
    sfc_pblock_add(pb, name, 0, 4, shape);
}

/* BN entries: pass 0 adds weight and bias, pass 1 the running stats. */
static void add_bn(struct sfc_pblock *pb, const char *prefix, int C, int pass)
{
    char name[128];
    int64_t shape[1] = {C};
    static const char *const p0[2] = {"weight", "bias"};
    static const char *const p1[2] = {"running_mean", "running_var"};
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, "%s.%s", prefix, pass ? p1[i] : p0[i]);
        sfc_pblock_add(pb, name, pass, 1, shape);
    }
}

/* The layout: pass 0 the parameters, pass 1 the buffers, each in
 * torchvision's state_dict order. Records where each stage's parameters
 * start. */
static void build_layout(struct sfc_resnet *net, size_t stage_off[6])
{
    char name[128];
    struct sfc_pblock *pb = &net->pb;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) stage_off[0] = pb->size;
        if (pass == 0) add_conv(pb, "conv1.weight", &net->conv1);
        add_bn(pb, "bn1", net->cfg.width, pass);
        int k = 0;
        for (int i = 0; i < 4; i++) {
            if (pass == 0) stage_off[i + 1] = pb->size;
            for (int b = 0; b < net->cfg.blocks[i]; b++, k++) {
                const struct sfc_resnet_block *B = &net->blk[k];
                static const char *const cn[3] = {"conv1", "conv2", "conv3"};
                static const char *const bn[3] = {"bn1", "bn2", "bn3"};
                const struct sfc_conv2d *cv[3] = {&B->c1, &B->c2, &B->c3};
                for (int j = 0; j < 3; j++) {
                    if (pass == 0) {
                        snprintf(name, sizeof name, "layer%d.%d.%s.weight",
                                 i + 1, b, cn[j]);
                        add_conv(pb, name, cv[j]);
                    }
                    snprintf(name, sizeof name, "layer%d.%d.%s", i + 1, b,
                             bn[j]);
                    add_bn(pb, name, cv[j]->OC, pass);
                }
                if (B->cd.OC) {
                    if (pass == 0) {
                        snprintf(name, sizeof name,
                                 "layer%d.%d.downsample.0.weight", i + 1, b);
                        add_conv(pb, name, &B->cd);
                    }
                    snprintf(name, sizeof name, "layer%d.%d.downsample.1",
                             i + 1, b);
                    add_bn(pb, name, B->cd.OC, pass);
                }
            }
        }
        if (pass == 0) stage_off[5] = pb->size;
    }
}

static size_t off_of(const struct sfc_resnet *net, const char *name)
{
    const struct sfc_pentry *e = sfc_pblock_find(&net->pb, name);
    SFC_ASSERT(e);
    return e->off;
}

static void carve_bn(struct sfc_resnet *net, struct sfc_resnet_bn *bn,
                     const char *prefix, int C)
{
    char name[128];
    bn->C = C;
    snprintf(name, sizeof name, "%s.weight", prefix);
    size_t og = off_of(net, name);
    snprintf(name, sizeof name, "%s.bias", prefix);
    size_t ob = off_of(net, name);
    snprintf(name, sizeof name, "%s.running_mean", prefix);
    bn->mean = net->params + off_of(net, name);
    snprintf(name, sizeof name, "%s.running_var", prefix);
    bn->var = net->params + off_of(net, name);
    bn->scale = sfc_xmalloc(2 * (size_t)C * sizeof(float));
    bn->shift = bn->scale + C;
    bn->gamma = net->params + og;
    bn->beta = net->params + ob;
    bn->dgamma = net->grads ? net->grads + og : NULL;
    bn->dbeta = net->grads ? net->grads + ob : NULL;
}

static void carve_conv(struct sfc_resnet *net, float **w, float **dw,
                       const char *name)
{
    size_t o = off_of(net, name);
    *w = net->params + o;
    *dw = net->grads ? net->grads + o : NULL;
}

size_t sfc_resnet_size(const struct sfc_resnet_config *cfg)
{
    struct sfc_resnet tmp;
    if (sfc_resnet_init(&tmp, cfg, NULL, NULL) < 0) return 0;
    size_t n = tmp.pb.size;
    sfc_resnet_release(&tmp);
    return n;
}

int sfc_resnet_init(struct sfc_resnet *net, const struct sfc_resnet_config *cfg,
                    float *params, float *grads)
{
    memset(net, 0, sizeof *net);
    if (check_config(cfg) < 0) return -1;
    net->cfg = *cfg;
    sfc_pblock_init(&net->pb);
    build_arch(net);
    size_t stage_off[6];
    build_layout(net, stage_off);
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
    net->train_off = stage_off[cfg->frozen];
    net->train_len = stage_off[5] - net->train_off;

    char name[128];
    carve_conv(net, &net->w0, &net->dw0, "conv1.weight");
    carve_bn(net, &net->bn0, "bn1", cfg->width);
    int k = 0;
    for (int i = 0; i < 4; i++) {
        for (int b = 0; b < cfg->blocks[i]; b++, k++) {
            struct sfc_resnet_block *B = &net->blk[k];
            char p[64];
            snprintf(p, sizeof p, "layer%d.%d", i + 1, b);
            snprintf(name, sizeof name, "%s.conv1.weight", p);
            carve_conv(net, &B->w1, &B->dw1, name);
            snprintf(name, sizeof name, "%s.conv2.weight", p);
            carve_conv(net, &B->w2, &B->dw2, name);
            snprintf(name, sizeof name, "%s.conv3.weight", p);
            carve_conv(net, &B->w3, &B->dw3, name);
            snprintf(name, sizeof name, "%s.bn1", p);
            carve_bn(net, &B->bn1, name, B->c1.OC);
            snprintf(name, sizeof name, "%s.bn2", p);
            carve_bn(net, &B->bn2, name, B->c2.OC);
            snprintf(name, sizeof name, "%s.bn3", p);
            carve_bn(net, &B->bn3, name, B->c3.OC);
            if (B->cd.OC) {
                snprintf(name, sizeof name, "%s.downsample.0.weight", p);
                carve_conv(net, &B->wd, &B->dwd, name);
                snprintf(name, sizeof name, "%s.downsample.1", p);
                carve_bn(net, &B->bnd, name, B->cd.OC);
            }
        }
    }
    return 0;
}

void sfc_resnet_release(struct sfc_resnet *net)
{
    free(net->bn0.scale);
    for (int k = 0; net->blk && k < net->nblocks; k++) {
        struct sfc_resnet_block *B = &net->blk[k];
        free(B->bn1.scale);
        free(B->bn2.scale);
        free(B->bn3.scale);
        free(B->bnd.scale);
    }
    if (net->owns_params) free(net->params);
    if (net->owns_grads) free(net->grads);
    free(net->blk);
    sfc_pblock_release(&net->pb);
    sfc_arena_release(&net->arena);
    memset(net, 0, sizeof *net);
}

void sfc_resnet_init_random(struct sfc_resnet *net, struct sfc_rng *rng)
{
    for (int i = 0; i < net->pb.n; i++) {
        const struct sfc_pentry *e = &net->pb.e[i];
        float *p = net->params + e->off;
        const char *dot = strrchr(e->name, '.');
        if (e->ndim == 4) {
            double fan_out = (double)(e->shape[0] * e->shape[2] * e->shape[3]);
            double sd = sqrt(2.0 / fan_out);
            for (size_t j = 0; j < e->numel; j++)
                p[j] = (float)(sd * sfc_rng_normal(rng));
        } else {
            float v = (!strcmp(dot, ".weight") || !strcmp(dot, ".running_var"))
                          ? 1.0f : 0.0f;
            for (size_t j = 0; j < e->numel; j++) p[j] = v;
        }
    }
}

int sfc_resnet_load(struct sfc_resnet *net, const struct sfc_safetensors *st,
                    const char *prefix, const char *domain)
{
    /* not backbone keys: the ImageNet classifier, optimiser state, and the
     * heads of an SFC checkpoint (whose backbone is this ResNet) */
    static const char *const ignore[] = {"fc.",    "optim.", "classifier.",
                                         "f9.",    "side1.", "side2.",
                                         "side3.", "side4.", NULL};
    return sfc_pblock_load(&net->pb, net->params, st, prefix, ignore, domain);
}

int sfc_resnet_load_file(struct sfc_resnet *net, const char *path)
{
    struct sfc_safetensors st;
    if (sfc_safetensors_read(path, &st) < 0) return -1;
    int rc = sfc_resnet_load(net, &st, "", path);
    sfc_safetensors_release(&st);
    return rc;
}

int sfc_resnet_save(const struct sfc_resnet *net, const char *path)
{
    return sfc_pblock_save(&net->pb, net->params, path, "");
}

void sfc_resnet_zero_grad(struct sfc_resnet *net)
{
    SFC_ASSERT(net->grads);
    memset(net->grads, 0, net->pb.size * sizeof(float));
}

/* ------------------------------------------------------------------------
 * Planning */

static int block_kept(const struct sfc_resnet *net, int train,
                      const struct sfc_resnet_block *B)
{
    return train && B->stage >= net->cfg.frozen;
}

#define SZ(c, h, w) ((size_t)N * (size_t)(c) * (size_t)(h) * (size_t)(w))

static void plan_into(struct sfc_resnet *net, struct sfc_arena *a, int N,
                      int H, int W, int train)
{
    const struct sfc_resnet_config *c = &net->cfg;
    size_t scratch = sfc_conv2d_scratch(&net->conv1, H, W);
    int stem_keep = train && c->frozen == 0;

    int H1 = sfc_conv2d_outsize(H, 7, c->stem_stride, 3, 1);
    int W1 = sfc_conv2d_outsize(W, 7, c->stem_stride, 3, 1);
    SFC_ASSERT(H1 >= 1 && W1 >= 1);
    int HP = (H1 + 2 - 3) / 2 + 1, WP = (W1 + 2 - 3) / 2 + 1;
    net->t0 = sfc_arena_floats(a, SZ(c->width, H1, W1));
    net->a0 = stem_keep ? sfc_arena_floats(a, SZ(c->width, H1, W1)) : net->t0;
    net->pool_idx = stem_keep ? sfc_arena_alloc(a, SZ(c->width, HP, WP) *
                                                       sizeof(int))
                              : NULL;
    net->feat_c[0] = c->width;
    net->feat_h[0] = HP;
    net->feat_w[0] = WP;
    net->feat[0] = sfc_arena_floats(a, SZ(c->width, HP, WP));

    /* shapes, and the temporaries' sizes */
    size_t f1 = 0, f2 = 0, fd = 0, fo = 0;        /* frozen temporaries */
    size_t k1 = 0, k2 = 0, k3 = 0, kd = 0, kg = 0; /* backward buffers */
    int h = HP, w = WP;
    for (int k = 0; k < net->nblocks; k++) {
        struct sfc_resnet_block *B = &net->blk[k];
        B->H = h;
        B->W = w;
        B->OH = sfc_conv2d_outsize(h, 3, B->c2.S, B->c2.P, B->c2.D);
        B->OW = sfc_conv2d_outsize(w, 3, B->c2.S, B->c2.P, B->c2.D);
        SFC_ASSERT(B->OH >= 1 && B->OW >= 1);
        scratch = SFC_MAX(scratch, sfc_conv2d_scratch(&B->c1, h, w));
        scratch = SFC_MAX(scratch, sfc_conv2d_scratch(&B->c2, h, w));
        scratch = SFC_MAX(scratch, sfc_conv2d_scratch(&B->c3, B->OH, B->OW));
        if (B->cd.OC)
            scratch = SFC_MAX(scratch, sfc_conv2d_scratch(&B->cd, h, w));
        size_t s1 = SZ(B->c1.OC, h, w), s2 = SZ(B->c2.OC, B->OH, B->OW);
        size_t s3 = SZ(B->c3.OC, B->OH, B->OW), sin = SZ(B->c1.C, h, w);
        if (block_kept(net, train, B)) {
            k1 = SFC_MAX(k1, s1);
            k2 = SFC_MAX(k2, s2);
            k3 = SFC_MAX(k3, s3);
            if (B->cd.OC) kd = SFC_MAX(kd, s3);
            kg = SFC_MAX(kg, SFC_MAX(s3, sin));
        } else {
            f1 = SFC_MAX(f1, s1);
            f2 = SFC_MAX(f2, s2);
            if (B->cd.OC) fd = SFC_MAX(fd, s3);
            fo = SFC_MAX(fo, s3);
        }
        int last = k == net->nblocks - 1 || net->blk[k + 1].stage != B->stage;
        if (last) {
            net->feat_c[B->stage] = B->c3.OC;
            net->feat_h[B->stage] = B->OH;
            net->feat_w[B->stage] = B->OW;
        }
        h = B->OH;
        w = B->OW;
    }
    for (int s = 1; s < SFC_RESNET_STAGES; s++)
        net->feat[s] = sfc_arena_floats(
            a, SZ(net->feat_c[s], net->feat_h[s], net->feat_w[s]));
    net->scratch = sfc_arena_floats(a, scratch);
    net->nscratch = scratch;
    float *T1 = f1 ? sfc_arena_floats(a, f1) : NULL;
    float *T2 = f2 ? sfc_arena_floats(a, f2) : NULL;
    float *TD = fd ? sfc_arena_floats(a, fd) : NULL;
    float *O[2] = {fo ? sfc_arena_floats(a, fo) : NULL,
                   fo ? sfc_arena_floats(a, fo) : NULL};
    int o = 0;
    const float *x = net->feat[0];
    for (int k = 0; k < net->nblocks; k++) {
        struct sfc_resnet_block *B = &net->blk[k];
        int last = k == net->nblocks - 1 || net->blk[k + 1].stage != B->stage;
        B->x = x;
        if (block_kept(net, train, B)) {
            B->t1 = sfc_arena_floats(a, SZ(B->c1.OC, B->H, B->W));
            B->a1 = sfc_arena_floats(a, SZ(B->c1.OC, B->H, B->W));
            B->t2 = sfc_arena_floats(a, SZ(B->c2.OC, B->OH, B->OW));
            B->a2 = sfc_arena_floats(a, SZ(B->c2.OC, B->OH, B->OW));
            B->t3 = sfc_arena_floats(a, SZ(B->c3.OC, B->OH, B->OW));
            B->td = B->cd.OC ? sfc_arena_floats(a, SZ(B->cd.OC, B->OH, B->OW))
                             : NULL;
            B->out = last ? net->feat[B->stage]
                          : sfc_arena_floats(a, SZ(B->c3.OC, B->OH, B->OW));
        } else {
            B->t1 = B->a1 = T1;
            B->t2 = B->a2 = T2;
            B->td = B->cd.OC ? TD : NULL;
            if (last) {
                B->out = net->feat[B->stage];
            } else {
                B->out = O[o];
                o ^= 1;
            }
            B->t3 = B->out; /* not used: no raw outputs kept */
        }
        x = B->out;
    }
    net->g[0] = kg ? sfc_arena_floats(a, kg) : NULL;
    net->g[1] = kg ? sfc_arena_floats(a, kg) : NULL;
    net->gt1 = k1 ? sfc_arena_floats(a, k1) : NULL;
    net->gt2 = k2 ? sfc_arena_floats(a, k2) : NULL;
    net->gt3 = k3 ? sfc_arena_floats(a, k3) : NULL;
    net->gtd = kd ? sfc_arena_floats(a, kd) : NULL;
    if (stem_keep) {
        /* the stem's gradient buffer (the relu output's) and the incoming
         * gradient at feat[0], which also needs a g buffer */
        net->gstem = sfc_arena_floats(a, SZ(c->width, H1, W1));
        if (!kg) net->g[0] = sfc_arena_floats(a, SZ(c->width, HP, WP));
    } else {
        net->gstem = NULL;
    }
}

void sfc_resnet_plan(struct sfc_resnet *net, int N, int H, int W, int train)
{
    SFC_ASSERT(N >= 1 && H >= 1 && W >= 1);
    train = train ? 1 : 0;
    if (net->N == N && net->H == H && net->W == W && net->train == train)
        return;
    struct sfc_arena m;
    sfc_arena_measure(&m);
    plan_into(net, &m, N, H, W, train);
    sfc_arena_release(&net->arena);
    sfc_arena_init(&net->arena, NULL, m.peak);
    plan_into(net, &net->arena, N, H, W, train);
    net->N = N;
    net->H = H;
    net->W = W;
    net->train = train;
}

size_t sfc_resnet_arena_bytes(const struct sfc_resnet *net)
{
    return net->arena.cap;
}

static double conv_flops(const struct sfc_conv2d *c, int N, int OH, int OW)
{
    return 2.0 * N * c->C * c->OC * c->K * c->K * (double)OH * OW;
}

double sfc_resnet_flops(const struct sfc_resnet *net)
{
    int N = net->N;
    const struct sfc_resnet_config *c = &net->cfg;
    int H1 = sfc_conv2d_outsize(net->H, 7, c->stem_stride, 3, 1);
    int W1 = sfc_conv2d_outsize(net->W, 7, c->stem_stride, 3, 1);
    double f = conv_flops(&net->conv1, N, H1, W1);
    for (int k = 0; k < net->nblocks; k++) {
        const struct sfc_resnet_block *B = &net->blk[k];
        f += conv_flops(&B->c1, N, B->H, B->W);
        f += conv_flops(&B->c2, N, B->OH, B->OW);
        f += conv_flops(&B->c3, N, B->OH, B->OW);
        if (B->cd.OC) f += conv_flops(&B->cd, N, B->OH, B->OW);
    }
    return f;
}

/* ------------------------------------------------------------------------
 * Fused frozen-BN kernels. Frozen BN is y = x * s + t per channel with
 * s = gamma / sqrt(var + eps), t = beta - mean * s (PyTorch's eval path). */

static inline float bn_rstd(const struct sfc_resnet_bn *bn, int c)
{
    return 1.0f / sqrtf(bn->var[c] + SFC_BN_EPS);
}

/* bn->scale, bn->shift from the current parameters. */
static void bn_fold(struct sfc_resnet_bn *bn)
{
    for (int c = 0; c < bn->C; c++) {
        float sc = bn->gamma[c] * bn_rstd(bn, c);
        bn->scale[c] = sc;
        bn->shift[c] = bn->beta[c] - bn->mean[c] * sc;
    }
}

static void fold_all(struct sfc_resnet *net)
{
    bn_fold(&net->bn0);
    for (int k = 0; k < net->nblocks; k++) {
        struct sfc_resnet_block *B = &net->blk[k];
        bn_fold(&B->bn1);
        bn_fold(&B->bn2);
        bn_fold(&B->bn3);
        if (B->cd.OC) bn_fold(&B->bnd);
    }
}

/* The epilogue y = relu(bn(conv)) (pre: keep conv's output, or NULL). */
static struct sfc_conv2d_epilogue bn_relu(const struct sfc_resnet_bn *bn,
                                          float *pre)
{
    return (struct sfc_conv2d_epilogue){.scale = bn->scale,
                                        .shift = bn->shift,
                                        .relu = 1,
                                        .pre = pre};
}

/* One plane of bn_act_backward: the masked gradient's sums s1 (of g) and
 * s2 (of g * (x - mean)) in float, dx = g * k, gz = g. */
static inline void bn_act_plane(float *dxp, float *gzp, const float *dyp,
                                const float *ap, const float *xp, float k,
                                float mean, long HW, double *sg, double *sgx)
{
    float s1 = 0, s2 = 0;
    /* the same loop specialised, so that each one vectorises */
    if (ap && gzp) {
#pragma omp simd reduction(+ : s1, s2)
        for (long i = 0; i < HW; i++) {
            float g = ap[i] > 0.0f ? dyp[i] : 0.0f;
            s1 += g;
            s2 += g * (xp[i] - mean);
            dxp[i] = g * k;
            gzp[i] = g;
        }
    } else if (ap) {
#pragma omp simd reduction(+ : s1, s2)
        for (long i = 0; i < HW; i++) {
            float g = ap[i] > 0.0f ? dyp[i] : 0.0f;
            s1 += g;
            s2 += g * (xp[i] - mean);
            dxp[i] = g * k;
        }
    } else {
        SFC_ASSERT(!gzp);
#pragma omp simd reduction(+ : s1, s2)
        for (long i = 0; i < HW; i++) {
            float g = dyp[i];
            s1 += g;
            s2 += g * (xp[i] - mean);
            dxp[i] = g * k;
        }
    }
    *sg += s1;
    *sgx += s2;
}

/* Backward of y = relu?(bn(x)) given dy: g = dy masked where the relu
 * output a is not positive (no mask when a is NULL); dx = g * gamma * rstd
 * (overwritten; dx may equal dy); gz (if not NULL) = g; dgamma += sum g *
 * xhat; dbeta += sum g (if the BN has gradients). Parallel over channels,
 * each channel's sums in a fixed order, in double.
 * With pool (the stem): dy is first the max pool's backward of pool->dy
 * into dx (each plane cleared, then scattered; dx == dy required), plane
 * by plane while it is in cache. */
struct pool_grad {
    const float *dy; /* (N, C, OH, OW) */
    const int *idx;
    int H, W, OH, OW;
};

static void bn_act_backward_ex(float *dx, float *gz, const float *dy,
                               const float *a, const float *x,
                               const struct sfc_resnet_bn *bn, int N,
                               long HW, const struct pool_grad *pool)
{
    int C = bn->C;
    SFC_ASSERT(!pool || dx == dy);
#pragma omp parallel for schedule(dynamic, 4)
    for (int c = 0; c < C; c++) {
        float rstd = bn_rstd(bn, c);
        float k = bn->gamma[c] * rstd, mean = bn->mean[c];
        double sg = 0, sgx = 0;
        for (int n = 0; n < N; n++) {
            size_t o = ((size_t)n * C + c) * HW;
            if (pool) {
                size_t po = ((size_t)n * C + c) * pool->OH * pool->OW;
                memset(dx + o, 0, sizeof(float) * HW);
                sfc_maxpool2d_backward(dx + o, pool->dy + po, pool->idx + po,
                                       1, 1, pool->H, pool->W, pool->OH,
                                       pool->OW);
            }
            bn_act_plane(dx + o, gz ? gz + o : NULL, dy + o, a ? a + o : NULL,
                         x + o, k, mean, HW, &sg, &sgx);
        }
        if (bn->dgamma) {
            bn->dgamma[c] += (float)(sgx * rstd);
            bn->dbeta[c] += (float)sg;
        }
    }
}

static void bn_act_backward(float *dx, float *gz, const float *dy,
                            const float *a, const float *x,
                            const struct sfc_resnet_bn *bn, int N, long HW)
{
    bn_act_backward_ex(dx, gz, dy, a, x, bn, N, HW, NULL);
}

/* ------------------------------------------------------------------------
 * Forward and backward */

/* The clock of net->prof: wall time (-DSFC_PROF_CPU: the calling thread's
 * CPU time, which with one thread is a load-independent measure). */
static double prof_now(void)
{
#ifdef SFC_PROF_CPU
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
#else
    return sfc_now();
#endif
}

/* Per-layer timing (net->prof): add the time since *t to the row's
 * operation and restart the clock. */
static inline void tick(struct sfc_resnet *net, double *t, int row, int dir,
                        int op)
{
    if (!net->prof) return;
    double now = prof_now();
    net->prof[row][dir][op] += now - *t;
    *t = now;
}

/* Conv, BN, ReLU and the residual sum fused: each convolution's
 * epilogue applies its BN (and for conv3 the shortcut, then the ReLU);
 * the raw convolution outputs are kept (pre) only when backward needs
 * them (t1 != a1). The downsample runs first, as conv3's epilogue reads
 * its raw output through the downsample BN. */
static void block_forward(struct sfc_resnet *net, int k)
{
    struct sfc_resnet_block *B = &net->blk[k];
    int N = net->N, kept = B->t1 != B->a1;
    double t = net->prof ? prof_now() : 0;
    struct sfc_conv2d_epilogue e1 = bn_relu(&B->bn1, kept ? B->t1 : NULL);
    sfc_conv2d_forward_ex(&B->c1, B->a1, B->x, B->w1, NULL, N, B->H, B->W,
                          net->scratch, &e1);
    tick(net, &t, k + 1, 0, SFC_RESNET_OP_C1);
    struct sfc_conv2d_epilogue e2 = bn_relu(&B->bn2, kept ? B->t2 : NULL);
    sfc_conv2d_forward_ex(&B->c2, B->a2, B->a1, B->w2, NULL, N, B->H, B->W,
                          net->scratch, &e2);
    tick(net, &t, k + 1, 0, SFC_RESNET_OP_C2);
    struct sfc_conv2d_epilogue e3 = bn_relu(&B->bn3, kept ? B->t3 : NULL);
    e3.res = B->x;
    if (B->cd.OC) {
        sfc_conv2d_forward(&B->cd, B->td, B->x, B->wd, NULL, N, B->H, B->W,
                           net->scratch);
        tick(net, &t, k + 1, 0, SFC_RESNET_OP_CD);
        e3.res = B->td;
        e3.rscale = B->bnd.scale;
        e3.rshift = B->bnd.shift;
    }
    sfc_conv2d_forward_ex(&B->c3, B->out, B->a2, B->w3, NULL, N, B->OH,
                          B->OW, net->scratch, &e3);
    tick(net, &t, k + 1, 0, SFC_RESNET_OP_C3);
}

void sfc_resnet_forward(struct sfc_resnet *net, const float *x)
{
    SFC_ASSERT(net->N > 0);
    int N = net->N, C = net->cfg.width;
    int H1 = sfc_conv2d_outsize(net->H, 7, net->conv1.S, 3, 1);
    int W1 = sfc_conv2d_outsize(net->W, 7, net->conv1.S, 3, 1);
    double t = net->prof ? prof_now() : 0;
    net->x_in = x;
    fold_all(net);
    struct sfc_conv2d_epilogue e0 =
        bn_relu(&net->bn0, net->a0 != net->t0 ? net->t0 : NULL);
    sfc_conv2d_forward_ex(&net->conv1, net->a0, x, net->w0, NULL, N, net->H,
                          net->W, net->scratch, &e0);
    tick(net, &t, 0, 0, SFC_RESNET_OP_C1);
    sfc_maxpool2d_forward(net->feat[0], net->pool_idx, net->a0, N, C, H1, W1,
                          3, 2, 1);
    tick(net, &t, 0, 0, SFC_RESNET_OP_OTHER);
    for (int k = 0; k < net->nblocks; k++) block_forward(net, k);
}

/* gin: dL/d out, overwritten with the gradient after the output relu.
 * Returns dL/d x: gin itself for an identity shortcut (conv1's dx adds
 * into it), else spare (set by the downsample, then conv1 adds); NULL
 * without need_dx. The convolutions' dx are set, not accumulated, so no
 * buffer is cleared first. */
static float *block_backward(struct sfc_resnet *net, int k, float *gin,
                             float *spare, int need_dx)
{
    struct sfc_resnet_block *B = &net->blk[k];
    int N = net->N;
    long hw = (long)B->H * B->W, ohw = (long)B->OH * B->OW;
    double t = net->prof ? prof_now() : 0;
    /* output relu + bn3 (+ the downsample's bn) */
    bn_act_backward(net->gt3, gin, gin, B->out, B->t3, &B->bn3, N, ohw);
    if (B->cd.OC)
        bn_act_backward(net->gtd, NULL, gin, NULL, B->td, &B->bnd, N, ohw);
    tick(net, &t, k + 1, 1, SFC_RESNET_OP_OTHER);
    /* conv3, relu2 + bn2 */
    sfc_conv2d_backward_ex(&B->c3, net->gt2, B->dw3, NULL, net->gt3, B->a2,
                           B->w3, N, B->OH, B->OW, net->scratch,
                           SFC_CONV2D_DX_SET);
    tick(net, &t, k + 1, 1, SFC_RESNET_OP_C3);
    bn_act_backward(net->gt2, NULL, net->gt2, B->a2, B->t2, &B->bn2, N, ohw);
    tick(net, &t, k + 1, 1, SFC_RESNET_OP_OTHER);
    /* conv2, relu1 + bn1 */
    sfc_conv2d_backward_ex(&B->c2, net->gt1, B->dw2, NULL, net->gt2, B->a1,
                           B->w2, N, B->H, B->W, net->scratch,
                           SFC_CONV2D_DX_SET);
    tick(net, &t, k + 1, 1, SFC_RESNET_OP_C2);
    bn_act_backward(net->gt1, NULL, net->gt1, B->a1, B->t1, &B->bn1, N, hw);
    tick(net, &t, k + 1, 1, SFC_RESNET_OP_OTHER);
    /* the input: shortcut, then conv1 */
    float *gx = need_dx ? (B->cd.OC ? spare : gin) : NULL;
    if (B->cd.OC) {
        sfc_conv2d_backward_ex(&B->cd, gx, B->dwd, NULL, net->gtd, B->x,
                               B->wd, N, B->H, B->W, net->scratch,
                               SFC_CONV2D_DX_SET);
        tick(net, &t, k + 1, 1, SFC_RESNET_OP_CD);
    }
    sfc_conv2d_backward(&B->c1, gx, B->dw1, NULL, net->gt1, B->x, B->w1, N,
                        B->H, B->W, net->scratch);
    tick(net, &t, k + 1, 1, SFC_RESNET_OP_C1);
    return gx;
}

static void add_into(float *y, const float *x, size_t n)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

void sfc_resnet_backward(struct sfc_resnet *net,
                         const float *const dfeat[SFC_RESNET_STAGES])
{
    SFC_ASSERT(net->N > 0 && net->train && net->grads);
    int N = net->N, frozen = net->cfg.frozen;
    for (int s = 0; s < frozen; s++) SFC_ASSERT(dfeat[s] == NULL);
    if (frozen == SFC_RESNET_STAGES) return;
    float *gin = NULL;
    int first = 0; /* first kept block */
    while (first < net->nblocks && net->blk[first].stage < frozen) first++;
    for (int k = net->nblocks - 1; k >= first; k--) {
        struct sfc_resnet_block *B = &net->blk[k];
        int s = B->stage;
        int last = k == net->nblocks - 1 || net->blk[k + 1].stage != s;
        size_t nout = SZ(B->c3.OC, B->OH, B->OW);
        if (last && dfeat[s]) {
            if (!gin) {
                gin = net->g[0];
                memcpy(gin, dfeat[s], nout * sizeof(float));
            } else {
                add_into(gin, dfeat[s], nout);
            }
        }
        if (!gin) continue; /* no gradient reaches this block */
        float *spare = gin == net->g[0] ? net->g[1] : net->g[0];
        gin = block_backward(net, k, gin, spare, k > first || frozen == 0);
        if (net->grad_ready) net->grad_ready(net->grad_ready_ctx, B->dw1);
    }
    if (frozen > 0) return;
    /* the stem */
    int C = net->cfg.width;
    int H1 = sfc_conv2d_outsize(net->H, 7, net->conv1.S, 3, 1);
    int W1 = sfc_conv2d_outsize(net->W, 7, net->conv1.S, 3, 1);
    size_t n0 = SZ(C, net->feat_h[0], net->feat_w[0]);
    if (dfeat[0]) {
        if (!gin) {
            gin = net->g[0];
            memcpy(gin, dfeat[0], n0 * sizeof(float));
        } else {
            add_into(gin, dfeat[0], n0);
        }
    }
    if (!gin) return;
    double t = net->prof ? prof_now() : 0;
    /* max pool, relu and bn backward in one pass per plane */
    struct pool_grad pg = {gin, net->pool_idx, H1, W1, net->feat_h[0],
                           net->feat_w[0]};
    bn_act_backward_ex(net->gstem, NULL, net->gstem, net->a0, net->t0,
                       &net->bn0, N, (long)H1 * W1, &pg);
    tick(net, &t, 0, 1, SFC_RESNET_OP_OTHER);
    sfc_conv2d_backward(&net->conv1, NULL, net->dw0, NULL, net->gstem,
                        net->x_in, net->w0, N, net->H, net->W, net->scratch);
    tick(net, &t, 0, 1, SFC_RESNET_OP_C1);
    if (net->grad_ready) net->grad_ready(net->grad_ready_ctx, net->dw0);
}
