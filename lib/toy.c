/* SPDX-License-Identifier: MIT */
/* toy.c: renders the long-tailed toy dataset (see toy.h and
 * examples/toy-dataset.md). The design follows the pilot described in the
 * project's toy notes: groups of classes sharing a body, a small
 * discriminative mark per class, Zipf-like class frequencies, 1-3 objects
 * on a cluttered background whose patches reuse the body textures in
 * random colours, so that no texture alone is a class cue.
 *
 * Invariants: all randomness of image (split, index) comes from one
 * struct sfc_rng seeded from (seed, split, index), drawn in a fixed order
 * (classes first, then background, then objects, then noise); the mask is
 * computed by the same pixel-centre tests that paint the image. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "rng.h"
#include "toy.h"
#include "util.h"

const double sfc_toy_nobj_p[SFC_TOY_MAX_OBJECTS] = {0.45, 0.35, 0.20};

/* The pilot's weights for 8 classes: heads of the three groups, then the
 * tails (toy notes, "The data that showed the effect"). */
static const double weights8[8] = {1, .6, .4, .12, .09, .07, .05, .04};

enum shape { SH_ELLIPSE, SH_RECT, SH_DIAMOND, SH_COUNT };
enum texture { TX_STRIPES, TX_CHECKER, TX_DOTS, TX_COUNT };
enum mark { MK_DISC, MK_SQUARE, MK_TRIANGLE, MK_PLUS, MK_RING, MK_BAR,
            MK_COUNT };

struct body {
    const char *name;
    enum shape shape;
    enum texture tex;
    double aspect; /* half-width / half-length */
    uint8_t a[3], b[3]; /* texture colours */
};

/* Up to 8 groups; shapes and textures repeat from the fourth group on
 * with other colours. */
static const struct body bodies[8] = {
    {"oval", SH_ELLIPSE, TX_STRIPES, 0.60, {235, 150, 40}, {95, 50, 20}},
    {"box", SH_RECT, TX_CHECKER, 0.50, {55, 105, 215}, {235, 235, 245}},
    {"kite", SH_DIAMOND, TX_DOTS, 0.65, {60, 160, 70}, {240, 225, 80}},
    {"egg", SH_ELLIPSE, TX_CHECKER, 0.60, {140, 60, 170}, {240, 170, 200}},
    {"slab", SH_RECT, TX_DOTS, 0.50, {120, 120, 120}, {250, 120, 70}},
    {"gem", SH_DIAMOND, TX_STRIPES, 0.65, {30, 140, 140}, {200, 240, 230}},
    {"bean", SH_ELLIPSE, TX_DOTS, 0.60, {170, 40, 50}, {250, 240, 220}},
    {"plank", SH_RECT, TX_STRIPES, 0.50, {150, 110, 60}, {40, 40, 60}},
};

static const char *const mark_names[MK_COUNT] = {
    "disc", "square", "triangle", "plus", "ring", "bar"};
static const uint8_t mark_rgb[6][3] = {
    {230, 25, 25}, {0, 215, 235}, {225, 0, 205},
    {250, 250, 250}, {15, 15, 15}, {160, 255, 0}};

int sfc_toy_config_default(struct sfc_toy_config *c, int n_classes)
{
    if (n_classes < 2 || n_classes > SFC_TOY_MAX_CLASSES)
        return sfc_error("toy", "class count %d is not in 2..%d", n_classes,
                         SFC_TOY_MAX_CLASSES);
    memset(c, 0, sizeof *c);
    c->size = 96;
    c->n_classes = n_classes;
    c->n_groups = (n_classes + 2) / 3;
    c->imbalance = 1.0;
    c->mark_radius = 0.30;
    c->max_overlap = 0.10;
    c->seed = 0;
    for (int k = 0; k < n_classes; k++) {
        struct sfc_toy_class *k_cls = &c->cls[k];
        int g = k % c->n_groups, j = k / c->n_groups;
        int m = (j + g) % MK_COUNT;
        k_cls->group = g;
        k_cls->head = j == 0;
        k_cls->weight = n_classes == 8
                            ? weights8[k]
                            : pow(0.04, (double)k / (n_classes - 1));
        k_cls->mark = m;
        memcpy(k_cls->mark_rgb, mark_rgb[(g + 2 * j) % 6], 3);
        snprintf(k_cls->name, sizeof k_cls->name, "%s_%s", bodies[g].name,
                 mark_names[m]);
    }
    return 0;
}

/* ------------------------------------------------------ class draws */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void image_rng(const struct sfc_toy_config *c, enum sfc_toy_split s,
                      long index, struct sfc_rng *r)
{
    uint64_t k = mix64(c->seed + 0x9e3779b97f4a7c15ULL);
    k = mix64(k ^ ((uint64_t)s << 56) ^ (uint64_t)index);
    sfc_rng_seed(r, k);
}

/* Per-class draw weight: w^imbalance on train, 1 on val. */
static void draw_weights(const struct sfc_toy_config *c, enum sfc_toy_split s,
                         double *q)
{
    for (int k = 0; k < c->n_classes; k++)
        q[k] = s == SFC_TOY_VAL ? 1.0
                                : pow(c->cls[k].weight, c->imbalance);
}

static int draw_classes(const struct sfc_toy_config *c, enum sfc_toy_split s,
                        struct sfc_rng *r, int *ids)
{
    double q[SFC_TOY_MAX_CLASSES];
    draw_weights(c, s, q);
    double u = sfc_rng_uniform(r), acc = 0;
    int n = SFC_TOY_MAX_OBJECTS;
    for (int k = 0; k < SFC_TOY_MAX_OBJECTS; k++) {
        acc += sfc_toy_nobj_p[k];
        if (u < acc) {
            n = k + 1;
            break;
        }
    }
    if (n > c->n_classes) n = c->n_classes;
    for (int i = 0; i < n; i++) {
        double tot = 0;
        for (int k = 0; k < c->n_classes; k++) tot += q[k];
        double x = sfc_rng_uniform(r) * tot;
        int pick = -1;
        for (int k = 0; k < c->n_classes; k++) {
            if (q[k] <= 0) continue;
            pick = k;
            if (x < q[k]) break;
            x -= q[k];
        }
        SFC_ASSERT(pick >= 0);
        ids[i] = pick + 1;
        q[pick] = 0; /* distinct classes within an image */
    }
    return n;
}

int sfc_toy_classes(const struct sfc_toy_config *c, enum sfc_toy_split split,
                    long index, int *ids_out)
{
    struct sfc_rng r;
    image_rng(c, split, index, &r);
    return draw_classes(c, split, &r, ids_out);
}

/* Sum over ordered draw sequences of length <= depth of their
 * probability, crediting every class drawn. */
static void enumerate(const double *q, int n, int depth, double prob,
                      unsigned long used, double *p)
{
    if (depth == 0) return;
    double tot = 0;
    for (int k = 0; k < n; k++)
        if (!(used >> k & 1)) tot += q[k];
    if (tot <= 0) return;
    for (int k = 0; k < n; k++) {
        if (used >> k & 1 || q[k] <= 0) continue;
        double pk = prob * q[k] / tot;
        p[k] += pk;
        enumerate(q, n, depth - 1, pk, used | 1UL << k, p);
    }
}

void sfc_toy_expected(const struct sfc_toy_config *c, enum sfc_toy_split split,
                      double *p_out)
{
    double q[SFC_TOY_MAX_CLASSES];
    draw_weights(c, split, q);
    for (int k = 0; k < c->n_classes; k++) p_out[k] = 0;
    /* P(class in image) = sum_n P(n objects) P(class among n draws) */
    double tmp[SFC_TOY_MAX_CLASSES];
    double pn[SFC_TOY_MAX_OBJECTS] = {0};
    for (int k = 0; k < SFC_TOY_MAX_OBJECTS; k++) {
        int n = k + 1 > c->n_classes ? c->n_classes : k + 1;
        if (n >= 1) pn[n - 1] += sfc_toy_nobj_p[k];
    }
    for (int n = 1; n <= SFC_TOY_MAX_OBJECTS; n++) {
        if (pn[n - 1] == 0) continue;
        for (int k = 0; k < c->n_classes; k++) tmp[k] = 0;
        enumerate(q, c->n_classes, n, 1.0, 0, tmp);
        for (int k = 0; k < c->n_classes; k++) p_out[k] += pn[n - 1] * tmp[k];
    }
}

/* ------------------------------------------------------ geometry */

struct placed {
    double cx, cy, L, cs, sn; /* centre, half-length, cos/sin of angle */
    double aspect, r;         /* body half-width ratio, mark radius */
    enum shape shape;
    enum texture tex;
    int mark;
    double period;            /* texture period in pixels */
};

/* Object coordinates: u along the body's length, v across it. */
static void to_local(const struct placed *o, double x, double y, double *u,
                     double *v)
{
    double dx = x - o->cx, dy = y - o->cy;
    *u = dx * o->cs + dy * o->sn;
    *v = -dx * o->sn + dy * o->cs;
}

static int in_shape(enum shape sh, double u, double v, double L, double w)
{
    double a = u / L, b = v / w;
    switch (sh) {
    case SH_ELLIPSE: return a * a + b * b <= 1.0;
    case SH_RECT: return fabs(a) <= 1.0 && fabs(b) <= 1.0;
    case SH_DIAMOND: return fabs(a) + fabs(b) <= 1.0;
    default: return 0;
    }
}

/* 0 or 1: which of the two texture colours at (u, v). */
static int texture_at(enum texture tx, double u, double v, double p)
{
    const double off = 1000.0; /* keep floor() arguments positive */
    switch (tx) {
    case TX_STRIPES:
        return (long)floor((u + off) / p) & 1;
    case TX_CHECKER:
        return ((long)floor((u + off) / (0.8 * p)) +
                (long)floor((v + off) / (0.8 * p))) & 1;
    case TX_DOTS: {
        double s = 0.9 * p;
        double du = fmod(u + off, s) - 0.5 * s, dv = fmod(v + off, s) - 0.5 * s;
        return du * du + dv * dv <= 0.09 * s * s;
    }
    default: return 0;
    }
}

static int in_mark(int mk, double u, double v, double r)
{
    double d2 = u * u + v * v;
    switch (mk) {
    case MK_DISC: return d2 <= r * r;
    case MK_SQUARE: return fabs(u) <= 0.85 * r && fabs(v) <= 0.85 * r;
    case MK_TRIANGLE: /* pointing outward along +u */
        return u >= -0.8 * r && u <= r && fabs(v) <= 0.62 * (r - u);
    case MK_PLUS:
        return (fabs(u) <= r && fabs(v) <= 0.34 * r) ||
               (fabs(v) <= r && fabs(u) <= 0.34 * r);
    case MK_RING: return d2 <= r * r && d2 >= 0.3 * r * r;
    case MK_BAR: return fabs(u) <= 0.34 * r && fabs(v) <= 1.15 * r;
    default: return 0;
    }
}

/* 0 outside, 1 body, 2 mark (the mark is painted over the body). The
 * mark's centre sits on the body's axis just inside its +u end. */
static int object_at(const struct placed *o, double x, double y, int *tex)
{
    double u, v;
    to_local(o, x, y, &u, &v);
    if (o->mark >= 0 && in_mark(o->mark, u - 0.9 * o->L, v, o->r)) return 2;
    if (!in_shape(o->shape, u, v, o->L, o->aspect * o->L)) return 0;
    *tex = texture_at(o->tex, u, v, o->period);
    return 1;
}

/* Pixels whose centres may fall in [ax, bx] x [ay, by], clipped to the
 * image (an empty box has x1 < x0). */
static void clip_box(double ax, double ay, double bx, double by, int S,
                     int *x0, int *y0, int *x1, int *y1)
{
    *x0 = (int)fmax(0, floor(ax - 1)), *y0 = (int)fmax(0, floor(ay - 1));
    *x1 = (int)fmin(S - 1, ceil(bx + 1)), *y1 = (int)fmin(S - 1, ceil(by + 1));
}

/* Pixel bounding box of an object (extent from its centre). */
static void bbox(const struct placed *o, int S, int *x0, int *y0, int *x1,
                 int *y1)
{
    double e = 0.9 * o->L + 1.2 * o->r;
    if (o->L > e) e = o->L;
    clip_box(o->cx - e, o->cy - e, o->cx + e, o->cy + e, S, x0, y0, x1, y1);
}

/* ------------------------------------------------------ painting */

static void rand_rgb(struct sfc_rng *r, double *c)
{
    for (int k = 0; k < 3; k++) c[k] = 20 + 215 * sfc_rng_uniform(r);
}

static void put(double *img, int S, int x, int y, const double *c, double al)
{
    double *p = img + ((size_t)y * S + x) * 3;
    for (int k = 0; k < 3; k++) p[k] = (1 - al) * p[k] + al * c[k];
}

/* Smooth colour field (a 4x4 grid of random colours, smoothstep-
 * interpolated), blobs, lines and textured patches in random colours. */
static void background(struct sfc_rng *r, int S, double *img)
{
    double grid[4][4][3];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) rand_rgb(r, grid[i][j]);
    for (int y = 0; y < S; y++) {
        double gy = (y + 0.5) / S * 3, ty;
        int iy = (int)gy;
        if (iy > 2) iy = 2;
        ty = gy - iy, ty = ty * ty * (3 - 2 * ty);
        for (int x = 0; x < S; x++) {
            double gx = (x + 0.5) / S * 3, tx;
            int ix = (int)gx;
            if (ix > 2) ix = 2;
            tx = gx - ix, tx = tx * tx * (3 - 2 * tx);
            double *p = img + ((size_t)y * S + x) * 3;
            for (int k = 0; k < 3; k++)
                p[k] = (1 - ty) * ((1 - tx) * grid[iy][ix][k] +
                                   tx * grid[iy][ix + 1][k]) +
                       ty * ((1 - tx) * grid[iy + 1][ix][k] +
                             tx * grid[iy + 1][ix + 1][k]);
        }
    }
    /* soft blobs */
    int nb = 2 + (int)sfc_rng_below(r, 4);
    for (int b = 0; b < nb; b++) {
        double c[3], cx = sfc_rng_uniform(r) * S, cy = sfc_rng_uniform(r) * S;
        double rx = (0.05 + 0.15 * sfc_rng_uniform(r)) * S;
        double ry = (0.05 + 0.15 * sfc_rng_uniform(r)) * S;
        double al = 0.4 + 0.5 * sfc_rng_uniform(r);
        rand_rgb(r, c);
        int x0, y0, x1, y1;
        clip_box(cx - rx, cy - ry, cx + rx, cy + ry, S, &x0, &y0, &x1, &y1);
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++) {
                double a = (x + 0.5 - cx) / rx, d = (y + 0.5 - cy) / ry;
                if (a * a + d * d <= 1) put(img, S, x, y, c, al);
            }
    }
    /* textured patches: the bodies' shapes and textures, random colours */
    int np = 1 + (int)sfc_rng_below(r, 3);
    for (int i = 0; i < np; i++) {
        struct placed o;
        double ca[3], cb[3];
        double th = 2 * M_PI * sfc_rng_uniform(r);
        o.cx = sfc_rng_uniform(r) * S, o.cy = sfc_rng_uniform(r) * S;
        o.L = (0.08 + 0.14 * sfc_rng_uniform(r)) * S;
        o.cs = cos(th), o.sn = sin(th);
        o.aspect = 0.4 + 0.6 * sfc_rng_uniform(r);
        o.shape = (enum shape)sfc_rng_below(r, SH_COUNT);
        o.tex = (enum texture)sfc_rng_below(r, TX_COUNT);
        o.period = (0.25 + 0.25 * sfc_rng_uniform(r)) * o.L + 2;
        o.mark = -1, o.r = 0;
        rand_rgb(r, ca);
        rand_rgb(r, cb);
        int x0, y0, x1, y1, t = 0;
        bbox(&o, S, &x0, &y0, &x1, &y1);
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++)
                if (object_at(&o, x + 0.5, y + 0.5, &t))
                    put(img, S, x, y, t ? cb : ca, 1.0);
    }
    /* lines */
    int nl = 2 + (int)sfc_rng_below(r, 5);
    for (int i = 0; i < nl; i++) {
        double c[3], x0 = sfc_rng_uniform(r) * S, y0 = sfc_rng_uniform(r) * S;
        double th = 2 * M_PI * sfc_rng_uniform(r);
        double len = (0.2 + 0.6 * sfc_rng_uniform(r)) * S;
        double hw = 0.5 + 0.8 * sfc_rng_uniform(r);
        double dx = cos(th), dy = sin(th);
        rand_rgb(r, c);
        int bx0, by0, bx1, by1;
        clip_box(fmin(x0, x0 + len * dx) - hw, fmin(y0, y0 + len * dy) - hw,
                 fmax(x0, x0 + len * dx) + hw, fmax(y0, y0 + len * dy) + hw,
                 S, &bx0, &by0, &bx1, &by1);
        for (int y = by0; y <= by1; y++)
            for (int x = bx0; x <= bx1; x++) {
                double px = x + 0.5 - x0, py = y + 0.5 - y0;
                double t = px * dx + py * dy, d = fabs(-px * dy + py * dx);
                if (t >= 0 && t <= len && d <= hw) put(img, S, x, y, c, 1.0);
            }
    }
}

/* Try to place object o (class k) within the overlap limit against the
 * objects already in owner[] (index + 1 of the object covering each
 * pixel, 0 none). Returns 1 if placed (o filled in). */
static int place(const struct sfc_toy_config *c, struct sfc_rng *r, int k,
                 const uint8_t *owner, const int *area, int n_placed,
                 uint8_t *scratch, struct placed *o)
{
    const struct sfc_toy_class *cl = &c->cls[k];
    const struct body *bd = &bodies[cl->group % 8];
    int S = c->size;
    o->shape = bd->shape;
    o->tex = bd->tex;
    o->aspect = bd->aspect;
    o->mark = cl->mark;
    double L0 = (0.15 + 0.08 * sfc_rng_uniform(r)) * S;
    double th = 2 * M_PI * sfc_rng_uniform(r);
    o->cs = cos(th), o->sn = sin(th);
    /* 40 tries at the drawn size, then smaller (crowded images) */
    for (int attempt = 0; attempt < 120; attempt++) {
        if (attempt % 40 == 0) {
            o->L = L0 * (attempt == 0 ? 1.0 : attempt == 40 ? 0.8 : 0.65);
            o->r = c->mark_radius * o->L;
            o->period = 0.42 * o->L;
        }
        double e = fmax(o->L, 0.9 * o->L + o->r * 1.2) + 1.0;
        double lo = e, hi = S - e;
        if (hi <= lo) lo = hi = 0.5 * S;
        o->cx = lo + (hi - lo) * sfc_rng_uniform(r);
        o->cy = lo + (hi - lo) * sfc_rng_uniform(r);
        int x0, y0, x1, y1, t, a = 0;
        int over[SFC_TOY_MAX_OBJECTS] = {0};
        bbox(o, S, &x0, &y0, &x1, &y1);
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++) {
                size_t i = (size_t)y * S + x;
                scratch[i] = object_at(o, x + 0.5, y + 0.5, &t) != 0;
                if (scratch[i]) {
                    a++;
                    if (owner[i]) over[owner[i] - 1]++;
                }
            }
        int ok = a > 0;
        for (int j = 0; j < n_placed && ok; j++) {
            int m = area[j] < a ? area[j] : a;
            if (over[j] > c->max_overlap * m) ok = 0;
        }
        if (ok) return 1;
    }
    return 0;
}

int sfc_toy_render(const struct sfc_toy_config *c, enum sfc_toy_split split,
                   long index, uint8_t *rgb, uint8_t *mask, int *ids_out)
{
    int S = c->size;
    size_t npix = (size_t)S * S;
    struct sfc_rng r;
    image_rng(c, split, index, &r);
    int ids[SFC_TOY_MAX_OBJECTS];
    int n = draw_classes(c, split, &r, ids);

    double *img = sfc_xmalloc(npix * 3 * sizeof *img);
    uint8_t *owner = sfc_xcalloc(npix, 2); /* owner, then scratch */
    uint8_t *scratch = owner + npix;
    background(&r, S, img);
    memset(mask, 0, npix);

    int area[SFC_TOY_MAX_OBJECTS], n_drawn = 0;
    for (int i = 0; i < n; i++) {
        int k = ids[i] - 1;
        struct placed o;
        /* every draw below happens whether or not the object is placed */
        double jit = 0.9 + 0.2 * sfc_rng_uniform(&r);
        if (!place(c, &r, k, owner, area, n_drawn, scratch, &o)) continue;
        const struct body *bd = &bodies[c->cls[k].group % 8];
        double ca[3], cb[3], cm[3];
        for (int ch = 0; ch < 3; ch++) {
            ca[ch] = fmin(255, bd->a[ch] * jit);
            cb[ch] = fmin(255, bd->b[ch] * jit);
            cm[ch] = c->cls[k].mark_rgb[ch];
        }
        int x0, y0, x1, y1, t = 0, a = 0;
        bbox(&o, S, &x0, &y0, &x1, &y1);
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++) {
                int w = object_at(&o, x + 0.5, y + 0.5, &t);
                if (!w) continue;
                size_t p = (size_t)y * S + x;
                put(img, S, x, y, w == 2 ? cm : t ? cb : ca, 1.0);
                mask[p] = (uint8_t)(k + 1);
                owner[p] = (uint8_t)(n_drawn + 1);
                a++;
            }
        area[n_drawn] = a;
        ids_out[n_drawn++] = k + 1;
    }
    /* sensor noise: triangular, about +-16 levels, four values per draw */
    uint64_t bits = 0;
    for (size_t i = 0; i < npix * 3; i++) {
        if (i % 4 == 0) bits = sfc_rng_u64(&r);
        int b1 = (int)(bits & 0xff), b2 = (int)(bits >> 8 & 0xff);
        bits >>= 16;
        double v = img[i] + (b1 - b2) / 16.0;
        rgb[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lrint(v));
    }
    free(owner);
    free(img);
    return n_drawn;
}
