/* SPDX-License-Identifier: MIT */
/* irnnet.c: IRN's edge branch (five 1x1 side convs + GroupNorm + bilinear
 * upsampling + ReLU, crop, concatenation, fusion conv) with its backward,
 * and the affinity loss Lpos/Lneg of sfc-reference.md §6.3 (IRN's
 * net/resnet50_irn.py Net.fc_edge*, AffinityDisplacementLoss.to_affinity
 * and train_irn.py's batch reduction, re-expressed per pixel).
 *
 * Invariants: the backbone features are read only (no gradient flows to
 * them); the ReLU and the crop commute, so only the cropped ReLU output
 * (cat) is kept, together with each branch's conv output and GroupNorm
 * statistics for the backward. Every sum that crosses pixels runs in a
 * fixed order (per direction, then over directions), so the loss and the
 * gradients do not depend on the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conv.h"
#include "err.h"
#include "irnnet.h"
#include "layers.h"
#include "ops.h"
#include "util.h"

static const int branch_up[SFC_IRN_BRANCHES] = {1, 1, 2, 4, 4};

/* Threads only pay off on enough elements (small CI cases and micro-grids
 * run serially; the result is the same either way). */
#define PAR_WORK(n) ((n) >= 65536)

/* ---- layout ------------------------------------------------------------- */

static size_t add_entry(struct sfc_irnhead *hd, int *k, size_t off,
                        const char *name, int ndim, int64_t a, int64_t b)
{
    struct sfc_irnhead_entry *e = &hd->ent[(*k)++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->off = off;
    e->ndim = ndim;
    e->shape[0] = a;
    e->numel = (size_t)a;
    if (ndim == 4) {
        e->shape[1] = b;
        e->shape[2] = e->shape[3] = 1;
        e->numel *= (size_t)b;
    }
    return off + e->numel;
}

static size_t layout(struct sfc_irnhead *hd)
{
    size_t off = 0;
    int k = 0;
    char name[24];
    for (int i = 0; i < SFC_IRN_BRANCHES; i++) {
        snprintf(name, sizeof name, "fc_edge%d.0.weight", i + 1);
        off = add_entry(hd, &k, off, name, 4, SFC_IRN_EDGE_CH, hd->in_c[i]);
        snprintf(name, sizeof name, "fc_edge%d.1.weight", i + 1);
        off = add_entry(hd, &k, off, name, 1, SFC_IRN_EDGE_CH, 0);
        snprintf(name, sizeof name, "fc_edge%d.1.bias", i + 1);
        off = add_entry(hd, &k, off, name, 1, SFC_IRN_EDGE_CH, 0);
    }
    off = add_entry(hd, &k, off, "fc_edge6.weight", 4, 1,
                    SFC_IRN_BRANCHES * SFC_IRN_EDGE_CH);
    off = add_entry(hd, &k, off, "fc_edge6.bias", 1, 1, 0);
    return off;
}

size_t sfc_irnhead_size(const int in_c[SFC_IRN_BRANCHES])
{
    struct sfc_irnhead hd;
    memcpy(hd.in_c, in_c, sizeof hd.in_c);
    return layout(&hd);
}

static void point(struct sfc_irnhead *hd, float *blk, float **w, float **g,
                  float **b, float **wf, float **bf)
{
    for (int i = 0; i < SFC_IRN_BRANCHES; i++) {
        w[i] = blk ? blk + hd->ent[3 * i].off : NULL;
        g[i] = blk ? blk + hd->ent[3 * i + 1].off : NULL;
        b[i] = blk ? blk + hd->ent[3 * i + 2].off : NULL;
    }
    *wf = blk ? blk + hd->ent[3 * SFC_IRN_BRANCHES].off : NULL;
    *bf = blk ? blk + hd->ent[3 * SFC_IRN_BRANCHES + 1].off : NULL;
}

int sfc_irnhead_init(struct sfc_irnhead *hd,
                     const int in_c[SFC_IRN_BRANCHES], float *params,
                     float *grads, int no_grads)
{
    memset(hd, 0, sizeof *hd);
    for (int i = 0; i < SFC_IRN_BRANCHES; i++)
        if (in_c[i] < 1)
            return sfc_error("irn head", "feature %d has %d channels", i + 1,
                             in_c[i]);
    memcpy(hd->in_c, in_c, sizeof hd->in_c);
    hd->size = layout(hd);
    hd->params = params;
    if (!params) {
        hd->params = sfc_xcalloc(hd->size, sizeof(float));
        hd->owns_params = 1;
    }
    if (!no_grads) {
        hd->grads = grads;
        if (!grads) {
            hd->grads = sfc_xcalloc(hd->size, sizeof(float));
            hd->owns_grads = 1;
        }
    }
    point(hd, hd->params, hd->w, hd->gamma, hd->beta, &hd->wf, &hd->bf);
    point(hd, hd->grads, hd->dw, hd->dgamma, hd->dbeta, &hd->dwf, &hd->dbf);
    return 0;
}

void sfc_irnhead_release(struct sfc_irnhead *hd)
{
    if (hd->owns_params) free(hd->params);
    if (hd->owns_grads) free(hd->grads);
    free(hd->mem);
    memset(hd, 0, sizeof *hd);
}

void sfc_irnhead_init_random(struct sfc_irnhead *hd, struct sfc_rng *rng)
{
    for (int k = 0; k < SFC_IRN_NENTRIES; k++) {
        const struct sfc_irnhead_entry *e = &hd->ent[k];
        float *v = hd->params + e->off;
        int is_gn = k < 3 * SFC_IRN_BRANCHES && k % 3 != 0;
        if (is_gn) {
            float val = k % 3 == 1 ? 1.0f : 0.0f;
            for (size_t j = 0; j < e->numel; j++) v[j] = val;
            continue;
        }
        /* fan_in of a 1x1 conv = input channels; the fusion bias shares
         * the fusion weight's fan_in */
        double fan_in = k == SFC_IRN_NENTRIES - 1
                            ? SFC_IRN_BRANCHES * SFC_IRN_EDGE_CH
                            : (double)e->shape[1];
        double bound = 1.0 / sqrt(fan_in);
        for (size_t j = 0; j < e->numel; j++)
            v[j] = (float)((2 * sfc_rng_uniform(rng) - 1) * bound);
    }
}

const struct sfc_irnhead_entry *sfc_irnhead_find(const struct sfc_irnhead *hd,
                                                 const char *name)
{
    for (int k = 0; k < SFC_IRN_NENTRIES; k++)
        if (!strcmp(hd->ent[k].name, name)) return &hd->ent[k];
    return NULL;
}

/* ---- plan ---------------------------------------------------------------- */

int sfc_irnhead_plan(struct sfc_irnhead *hd, int N,
                     const int fh[SFC_IRN_BRANCHES],
                     const int fw[SFC_IRN_BRANCHES], int train)
{
    if (hd->mem && hd->N == N && hd->train == train &&
        !memcmp(hd->fh, fh, sizeof hd->fh) &&
        !memcmp(hd->fw, fw, sizeof hd->fw))
        return 0;
    if (N < 1) return sfc_error("irn head", "batch of %d images", N);
    int uh[SFC_IRN_BRANCHES], uw[SFC_IRN_BRANCHES];
    for (int i = 0; i < SFC_IRN_BRANCHES; i++) {
        if (fh[i] < 1 || fw[i] < 1)
            return sfc_error("irn head", "feature %d is %dx%d", i + 1, fh[i],
                             fw[i]);
        uh[i] = sfc_resize_outsize(fh[i], branch_up[i]);
        uw[i] = sfc_resize_outsize(fw[i], branch_up[i]);
        if (uh[i] < fh[1] || uw[i] < fw[1] ||
            (branch_up[i] == 1 && (uh[i] != fh[1] || uw[i] != fw[1])))
            return sfc_error("irn head",
                             "feature %d (%dx%d, upsampled x%d) does not "
                             "cover feature 2 (%dx%d)",
                             i + 1, fh[i], fw[i], branch_up[i], fh[1], fw[1]);
    }
    free(hd->mem);
    hd->mem = NULL;
    hd->N = N;
    hd->train = train;
    memcpy(hd->fh, fh, sizeof hd->fh);
    memcpy(hd->fw, fw, sizeof hd->fw);
    memcpy(hd->uh, uh, sizeof hd->uh);
    memcpy(hd->uw, uw, sizeof hd->uw);
    hd->oh = fh[1];
    hd->ow = fw[1];

    size_t C = SFC_IRN_EDGE_CH, G = SFC_IRN_GN_GROUPS, n = (size_t)N;
    size_t hw = (size_t)hd->oh * hd->ow, maxf = 0, maxu = 0;
    size_t nt = 0;
    for (int i = 0; i < SFC_IRN_BRANCHES; i++) {
        size_t f = (size_t)fh[i] * fw[i], u = (size_t)uh[i] * uw[i];
        maxf = f > maxf ? f : maxf;
        maxu = u > maxu ? u : maxu;
        nt += n * C * f + 2 * n * G;
    }
    size_t catn = n * SFC_IRN_BRANCHES * C * hw, cs = 0;
    for (int i = 0; i <= SFC_IRN_BRANCHES; i++) {
        struct sfc_conv2d cv = {SFC_IRN_BRANCHES * SFC_IRN_EDGE_CH, 1, 1, 1,
                                0, 1};
        if (i < SFC_IRN_BRANCHES)
            cv = (struct sfc_conv2d){hd->in_c[i], SFC_IRN_EDGE_CH, 1, 1, 0, 1};
        size_t s = sfc_conv2d_scratch(&cv, i < SFC_IRN_BRANCHES ? fh[i] : fh[1],
                                      i < SFC_IRN_BRANCHES ? fw[i] : fw[1]);
        cs = s > cs ? s : cs;
    }
    size_t total = nt + catn + n * hw + n * C * maxf + n * C * maxu + cs;
    if (train) total += n * C * maxf + catn;
    float *m = sfc_xmalloc(sizeof(float) * (total ? total : 1));
    hd->mem = m;
    hd->plan_bytes = sizeof(float) * total;
    for (int i = 0; i < SFC_IRN_BRANCHES; i++) {
        hd->t[i] = m, m += n * C * fh[i] * fw[i];
        hd->mean[i] = m, m += n * G;
        hd->rstd[i] = m, m += n * G;
    }
    hd->cat = m, m += catn;
    hd->logit = m, m += n * hw;
    hd->gbuf = m, m += n * C * maxf;
    hd->ubuf = m, m += n * C * maxu;
    hd->cscratch = m, m += cs;
    hd->dtbuf = hd->dcat = NULL;
    if (train) {
        hd->dtbuf = m, m += n * C * maxf;
        hd->dcat = m, m += catn;
    }
    return 0;
}

/* ---- forward / backward ------------------------------------------------- */

void sfc_irnhead_forward(struct sfc_irnhead *hd,
                         const float *const x[SFC_IRN_BRANCHES])
{
    const int C = SFC_IRN_EDGE_CH, N = hd->N, h = hd->oh, w = hd->ow;
    const int NB = SFC_IRN_BRANCHES;
    SFC_ASSERT(hd->mem);
    for (int i = 0; i < NB; i++) {
        int H = hd->fh[i], W = hd->fw[i], UH = hd->uh[i], UW = hd->uw[i];
        struct sfc_conv2d cv = {hd->in_c[i], C, 1, 1, 0, 1};
        hd->x[i] = x[i];
        sfc_conv2d_forward(&cv, hd->t[i], x[i], hd->w[i], NULL, N, H, W,
                           hd->cscratch);
        sfc_groupnorm_forward(hd->gbuf, hd->mean[i], hd->rstd[i], hd->t[i],
                              hd->gamma[i], hd->beta[i], SFC_IRN_GN_EPS, N,
                              C, SFC_IRN_GN_GROUPS, H * W);
        const float *u = hd->gbuf;
        if (branch_up[i] > 1) {
            sfc_resize_bilinear_forward(hd->ubuf, hd->gbuf, N, C, H, W, UH,
                                        UW, 0, branch_up[i], branch_up[i]);
            u = hd->ubuf;
        }
        /* crop to (h, w) and ReLU into channels i*32.. of cat */
        #pragma omp parallel for schedule(static) if (PAR_WORK((size_t)N * C * h * w))
        for (int nc = 0; nc < N * C; nc++) {
            int nn = nc / C, c = nc % C;
            const float *src = u + (size_t)nc * UH * UW;
            float *dst = hd->cat + ((size_t)nn * NB * C + (size_t)i * C + c) *
                                       h * w;
            for (int y = 0; y < h; y++)
                for (int xx = 0; xx < w; xx++) {
                    float v = src[(size_t)y * UW + xx];
                    dst[(size_t)y * w + xx] = v > 0 ? v : 0;
                }
        }
    }
    struct sfc_conv2d fu = {NB * C, 1, 1, 1, 0, 1};
    sfc_conv2d_forward(&fu, hd->logit, hd->cat, hd->wf, hd->bf, N, h, w,
                       hd->cscratch);
}

void sfc_irnhead_zero_grad(struct sfc_irnhead *hd)
{
    memset(hd->grads, 0, sizeof(float) * hd->size);
}

void sfc_irnhead_backward(struct sfc_irnhead *hd, const float *dlogit)
{
    const int C = SFC_IRN_EDGE_CH, N = hd->N, h = hd->oh, w = hd->ow;
    const int NB = SFC_IRN_BRANCHES;
    SFC_ASSERT(hd->train && hd->grads);
    size_t catn = (size_t)N * NB * C * h * w;
    memset(hd->dcat, 0, sizeof(float) * catn);
    struct sfc_conv2d fu = {NB * C, 1, 1, 1, 0, 1};
    sfc_conv2d_backward(&fu, hd->dcat, hd->dwf, hd->dbf, dlogit, hd->cat,
                        hd->wf, N, h, w, hd->cscratch);
    for (int i = 0; i < NB; i++) {
        int H = hd->fh[i], W = hd->fw[i], UH = hd->uh[i], UW = hd->uw[i];
        int up = branch_up[i] > 1;
        float *du = up ? hd->ubuf : hd->gbuf; /* d(upsampled GN output) */
        memset(du, 0, sizeof(float) * N * C * UH * UW);
        /* ReLU mask from the kept output; zero outside the crop */
        #pragma omp parallel for schedule(static) if (PAR_WORK((size_t)N * C * h * w))
        for (int nc = 0; nc < N * C; nc++) {
            int nn = nc / C, c = nc % C;
            size_t co = ((size_t)nn * NB * C + (size_t)i * C + c) * h * w;
            float *dst = du + (size_t)nc * UH * UW;
            for (int y = 0; y < h; y++)
                for (int xx = 0; xx < w; xx++) {
                    size_t j = co + (size_t)y * w + xx;
                    if (hd->cat[j] > 0) dst[(size_t)y * UW + xx] = hd->dcat[j];
                }
        }
        if (up) {
            memset(hd->gbuf, 0, sizeof(float) * N * C * H * W);
            sfc_resize_bilinear_backward(hd->gbuf, hd->ubuf, N, C, H, W, UH,
                                         UW, 0, branch_up[i], branch_up[i]);
        }
        memset(hd->dtbuf, 0, sizeof(float) * N * C * H * W);
        sfc_groupnorm_backward(hd->dtbuf, hd->dgamma[i], hd->dbeta[i],
                               hd->gbuf, hd->t[i], hd->mean[i], hd->rstd[i],
                               hd->gamma[i], N, C, SFC_IRN_GN_GROUPS, H * W);
        struct sfc_conv2d cv = {hd->in_c[i], C, 1, 1, 0, 1};
        sfc_conv2d_backward(&cv, NULL, hd->dw[i], NULL, hd->dtbuf, hd->x[i],
                            hd->w[i], N, H, W, hd->cscratch);
    }
}

/* ---- loss ----------------------------------------------------------------- */

void sfc_irn_label_sums(const struct sfc_pathidx *p, const uint8_t *L, int N,
                        int h, int w, int nclass, double sums[3])
{
    int ch = h - p->rf, cw = w - 2 * p->rf;
    if (ch <= 0 || cw <= 0) return;
    for (int n = 0; n < N; n++) {
        const uint8_t *l = L + (size_t)n * h * w;
        long cnt[3] = {0, 0, 0};
        for (int k = 0; k < p->ndir; k++)
            for (int y = 0; y < ch; y++)
                for (int x = 0; x < cw; x++) {
                    int from = l[(size_t)y * w + x + p->rf];
                    int to = l[(size_t)(y + p->dy[k]) * w + x + p->rf +
                               p->dx[k]];
                    if (from >= nclass || to >= nclass) continue;
                    cnt[from != to ? 2 : from == 0 ? 0 : 1]++;
                }
        for (int j = 0; j < 3; j++) sums[j] += (double)cnt[j];
    }
}

size_t sfc_irn_loss_scratch(const struct sfc_pathidx *p, int h, int w)
{
    size_t n = (size_t)p->ndir * (size_t)sfc_pathidx_nsrc(p, h, w);
    return 3 * n + 2 * (size_t)h * w;
}

double sfc_irn_affinity_loss(const struct sfc_pathidx *p, float *dlogit,
                             const float *logit, const uint8_t *L, int N,
                             int h, int w, int nclass, const double sums[3],
                             double *lpos, double *lneg, float *scratch)
{
    const double eps = SFC_IRN_LOSS_EPS;
    long nsrc = sfc_pathidx_nsrc(p, h, w);
    SFC_ASSERT(nsrc > 0);
    size_t n = (size_t)p->ndir * nsrc, hw = (size_t)h * w;
    float *aff = scratch, *daff = scratch + n, *edge = scratch + 2 * n;
    float *dedge = edge + hw;
    int *arg = (int *)(dedge + hw);
    double *part = NULL;
    /* per-direction partial sums, then a fixed-order total */
    part = sfc_xmalloc(sizeof(double) * 2 * p->ndir);
    double wbg = 0.5 / (sums[0] + eps), wfg = 0.5 / (sums[1] + eps);
    double wneg = 1.0 / (sums[2] + eps);
    int ch = h - p->rf, cw = w - 2 * p->rf;
    double tpos = 0, tneg = 0;
    for (int im = 0; im < N; im++) {
        const float *lg = logit + im * hw;
        const uint8_t *l = L + im * hw;
        for (size_t j = 0; j < hw; j++)
            edge[j] = 1.0f / (1.0f + expf(-lg[j]));
        sfc_edge_affinity_forward(p, aff, arg, edge, h, w);
        #pragma omp parallel for schedule(static) if (PAR_WORK(n))
        for (int k = 0; k < p->ndir; k++) {
            double sp = 0, sn = 0;
            size_t o = (size_t)k * nsrc;
            for (int y = 0; y < ch; y++)
                for (int x = 0; x < cw; x++, o++) {
                    int from = l[(size_t)y * w + x + p->rf];
                    int to = l[(size_t)(y + p->dy[k]) * w + x + p->rf +
                               p->dx[k]];
                    double a = aff[o], g = 0;
                    if (from < nclass && to < nclass) {
                        if (from != to) {
                            sn += wneg * -log(1 + eps - a);
                            g = wneg / (1 + eps - a);
                        } else {
                            double wt = from == 0 ? wbg : wfg;
                            sp += wt * -log(a + eps);
                            g = -wt / (a + eps);
                        }
                    }
                    daff[o] = (float)(0.5 * g); /* L = (Lpos + Lneg) / 2 */
                }
            part[2 * k] = sp;
            part[2 * k + 1] = sn;
        }
        for (int k = 0; k < p->ndir; k++)
            tpos += part[2 * k], tneg += part[2 * k + 1];
        if (dlogit) {
            memset(dedge, 0, sizeof(float) * hw);
            sfc_edge_affinity_backward(p, dedge, daff, arg, h, w);
            float *dl = dlogit + im * hw;
            for (size_t j = 0; j < hw; j++)
                dl[j] = dedge[j] * edge[j] * (1.0f - edge[j]);
        }
    }
    free(part);
    if (lpos) *lpos += tpos;
    if (lneg) *lneg += tneg;
    return 0.5 * (tpos + tneg);
}

void sfc_irn_edge_merge(float *edge, const float *logit2, int h, int w,
                        int oh, int ow)
{
    const float *a = logit2, *b = logit2 + (size_t)h * w;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            float v = 0.5f * a[(size_t)y * w + x] +
                      0.5f * b[(size_t)y * w + (ow - 1 - x)];
            edge[(size_t)y * ow + x] = 1.0f / (1.0f + expf(-v));
        }
}
