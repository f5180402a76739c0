/* SPDX-License-Identifier: MIT */
/* optim.c: SGD with groups, decay, momentum, poly lr and global-norm
 * clipping over a flat parameter block (see optim.h). Mirrors
 * torch/optim/sgd.py (_single_tensor_sgd, torch 1.13), torch/nn/utils/
 * clip_grad.py (clip_grad_norm_) and IRN's torchutils.PolyOptimizerSGD;
 * sfc-reference.md §2.6. The norm is summed per fixed-size chunk and the
 * chunks in order, so it does not depend on the thread count. A step
 * allocates nothing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "dist.h"
#include "optim.h"
#include "safetensors.h"
#include "util.h"

#define CHUNK 65536 /* floats per partial sum of the norm */

int sfc_sgd_init(struct sfc_sgd *o, size_t n, double momentum, double power,
                 long max_step, double clip)
{
    memset(o, 0, sizeof *o);
    if (!(momentum >= 0) || !(power >= 0) || max_step < 0 || !(clip >= 0))
        return sfc_error("sgd", "momentum, power, max_step and clip must "
                                "be non-negative");
    o->n = n;
    o->momentum = momentum;
    o->power = power;
    o->max_step = max_step;
    o->clip = clip;
    o->part = sfc_xmalloc((n / CHUNK + 1) * sizeof *o->part);
    if (momentum != 0) {
        o->buf = sfc_xmalloc_aligned((n ? n : 1) * sizeof(float));
        memset(o->buf, 0, n * sizeof(float));
    }
    return 0;
}

void sfc_sgd_release(struct sfc_sgd *o)
{
    for (int i = 0; i < o->ngroups; i++) free(o->groups[i].ranges);
    free(o->groups);
    free(o->buf);
    free(o->part);
    memset(o, 0, sizeof *o);
}

static int overlaps(const struct sfc_range *a, const struct sfc_range *b)
{
    return a->off < b->off + b->len && b->off < a->off + a->len;
}

void sfc_sgd_add_group(struct sfc_sgd *o, double lr0, double weight_decay,
                       int nranges, const struct sfc_range *ranges)
{
    SFC_ASSERT(nranges >= 0);
    for (int i = 0; i < nranges; i++) {
        SFC_ASSERT(ranges[i].off + ranges[i].len <= o->n);
        for (int j = 0; j < i; j++) SFC_ASSERT(!overlaps(&ranges[i], &ranges[j]));
        for (int g = 0; g < o->ngroups; g++)
            for (int j = 0; j < o->groups[g].nranges; j++)
                SFC_ASSERT(!overlaps(&ranges[i], &o->groups[g].ranges[j]));
    }
    o->groups = sfc_xrealloc(o->groups, (size_t)(o->ngroups + 1) *
                                            sizeof *o->groups);
    struct sfc_sgd_group *g = &o->groups[o->ngroups++];
    g->lr0 = g->lr = lr0;
    g->weight_decay = weight_decay;
    g->nranges = nranges;
    g->ranges = sfc_xmalloc((size_t)(nranges ? nranges : 1) * sizeof *ranges);
    memcpy(g->ranges, ranges, (size_t)nranges * sizeof *ranges);
}

double sfc_sgd_poly(const struct sfc_sgd *o, long t)
{
    if (o->max_step <= 0) return 1.0;
    if (t >= o->max_step) t = o->max_step - 1; /* the lr stays at the last */
    return pow(1.0 - (double)t / (double)o->max_step, o->power);
}

/* Sum of squares of n floats: fixed chunks summed in parallel into part
 * (one double per chunk), then in order. */
static double sumsq(const float *g, size_t n, double *part)
{
    size_t nchunk = (n + CHUNK - 1) / CHUNK;
    double total = 0;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < nchunk; c++) {
        size_t lo = c * CHUNK, hi = SFC_MIN(n, lo + CHUNK);
        double s = 0;
        for (size_t i = lo; i < hi; i++) s += (double)g[i] * g[i];
        part[c] = s;
    }
    for (size_t c = 0; c < nchunk; c++) total += part[c];
    return total;
}

double sfc_sgd_grad_norm(const struct sfc_sgd *o, const float *grads)
{
    double s = 0;
    for (int gi = 0; gi < o->ngroups; gi++)
        for (int r = 0; r < o->groups[gi].nranges; r++) {
            const struct sfc_range *R = &o->groups[gi].ranges[r];
            s += sumsq(grads + R->off, R->len, o->part);
        }
    return sqrt(s);
}

static void scale(float *g, size_t n, float k)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) g[i] *= k;
}

static void update(float *p, const float *g, float *buf, size_t n, float lr,
                   float wd, float m, int first)
{
    const float nlr = -lr;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float d = g[i];
        if (wd != 0.0f) d = d + wd * p[i];
        if (buf) {
            d = first ? d : m * buf[i] + d;
            buf[i] = d;
        }
        p[i] = p[i] + nlr * d;
    }
}

void sfc_sgd_span(const struct sfc_sgd *o, size_t *off, size_t *len)
{
    size_t lo = o->n, hi = 0;
    for (int gi = 0; gi < o->ngroups; gi++)
        for (int k = 0; k < o->groups[gi].nranges; k++) {
            const struct sfc_range *r = &o->groups[gi].ranges[k];
            lo = SFC_MIN(lo, r->off);
            hi = SFC_MAX(hi, r->off + r->len);
        }
    *off = hi > lo ? lo : 0;
    *len = hi > lo ? hi - lo : 0;
}

void sfc_sgd_bcast(struct sfc_sgd *o)
{
    if (sfc_dist_size() == 1) return;
    sfc_dist_bcast(&o->step, sizeof o->step, 0);
    if (o->buf) sfc_dist_bcast(o->buf, sizeof(float) * o->n, 0);
}

double sfc_sgd_step(struct sfc_sgd *o, float *params, float *grads)
{
    double norm = 0;
    if (o->clip > 0) {
        norm = sfc_sgd_grad_norm(o, grads);
        float coef = (float)(o->clip / (norm + 1e-6));
        if (coef < 1.0f)
            for (int gi = 0; gi < o->ngroups; gi++)
                for (int r = 0; r < o->groups[gi].nranges; r++) {
                    const struct sfc_range *R = &o->groups[gi].ranges[r];
                    scale(grads + R->off, R->len, coef);
                }
    }
    double mult = sfc_sgd_poly(o, o->step);
    for (int gi = 0; gi < o->ngroups; gi++) {
        struct sfc_sgd_group *g = &o->groups[gi];
        g->lr = g->lr0 * mult;
        for (int r = 0; r < g->nranges; r++) {
            const struct sfc_range *R = &g->ranges[r];
            update(params + R->off, grads + R->off,
                   o->buf ? o->buf + R->off : NULL, R->len, (float)g->lr,
                   (float)g->weight_decay, (float)o->momentum, o->step == 0);
        }
    }
    o->step++;
    return norm;
}

int sfc_checkpoint_save(const char *path, const struct sfc_pblock *pb,
                        const float *params, const struct sfc_sgd *o)
{
    return sfc_checkpoint_save_meta(path, pb, params, o, 0, NULL, NULL);
}

int sfc_checkpoint_save_meta(const char *path, const struct sfc_pblock *pb,
                             const float *params, const struct sfc_sgd *o,
                             int nmeta, const char *const *keys,
                             const char *const *values)
{
    int n = pb->n + 1;
    char **names = sfc_xcalloc((size_t)n, sizeof *names);
    struct sfc_tensor *views = sfc_xcalloc((size_t)n, sizeof *views);
    const struct sfc_tensor **tp = sfc_xcalloc((size_t)n, sizeof *tp);
    sfc_pblock_views(pb, params, "", names, views);
    int nt = pb->n;
    if (o && o->buf) {
        int64_t shape[1] = {(int64_t)o->n};
        names[nt] = sfc_xstrdup("optim.momentum");
        sfc_tensor_view(&views[nt], o->buf, SFC_F32, 1, shape);
        nt++;
    }
    for (int i = 0; i < nt; i++) tp[i] = &views[i];
    char step[32];
    snprintf(step, sizeof step, "%ld", o ? o->step : 0L);
    int nm = 0;
    const char **mk = sfc_xmalloc(sizeof(char *) * (size_t)(nmeta + 1));
    const char **mv = sfc_xmalloc(sizeof(char *) * (size_t)(nmeta + 1));
    if (o) mk[nm] = "optim.step", mv[nm++] = step;
    for (int i = 0; i < nmeta; i++) mk[nm] = keys[i], mv[nm++] = values[i];
    int rc = sfc_safetensors_write(path, nt, (const char *const *)names, tp,
                                   nm, mk, mv);
    free(mk);
    free(mv);
    sfc_pblock_names_free(names, nt);
    free(names);
    free(views);
    free(tp);
    return rc;
}

int sfc_checkpoint_load(const char *path, const struct sfc_pblock *pb,
                        float *params, struct sfc_sgd *o)
{
    static const char *const ignore[] = {"optim.", NULL};
    struct sfc_safetensors st;
    if (sfc_safetensors_read(path, &st) < 0) return -1;
    int rc = -1;
    long step = 0;
    const struct sfc_tensor *m = sfc_safetensors_get(&st, "optim.momentum");
    if (o) {
        const char *s = sfc_safetensors_meta(&st, "optim.step");
        if (!s || sfc_parse_long("optim.step", s, 0, 1L << 40, &step) < 0) {
            sfc_error(path, "no optimiser step count (metadata "
                            "'optim.step')");
            goto out;
        }
        if (o->buf && step > 0 &&
            (!m || m->dtype != SFC_F32 || m->ndim != 1 ||
             m->shape[0] != (int64_t)o->n)) {
            sfc_error(path, "no momentum buffer 'optim.momentum' of %zu "
                            "floats", o->n);
            goto out;
        }
    }
    if (sfc_pblock_load(pb, params, &st, "", ignore, path) < 0) goto out;
    if (o) {
        o->step = step;
        if (o->buf && m && m->shape[0] == (int64_t)o->n)
            memcpy(o->buf, m->data, o->n * sizeof(float));
        else if (o->buf)
            memset(o->buf, 0, o->n * sizeof(float));
    }
    rc = 0;
out:
    sfc_safetensors_release(&st);
    return rc;
}
