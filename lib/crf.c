/* SPDX-License-Identifier: MIT */
/* crf.c: dense CRF mean field (Krähenbühl & Koltun, NIPS 2011) with
 * message passing on a permutohedral lattice (Adams, Baek & Davis,
 * Eurographics 2010), behaving as pydensecrf's DenseCRF2D with Potts
 * compatibilities and NORMALIZE_SYMMETRIC kernels (densecrf.cpp inference,
 * pairwise.cpp DenseKernel::filter), plus the IR-label rules of SFC's
 * cam2ir.py and IRN's step/cam_to_ir_label.py (sfc-reference.md §5).
 *
 * Lattice: each d-dimensional feature is lifted onto the hyperplane
 * sum = 0 of R^{d+1}, scaled so that the blur below has unit standard
 * deviation (Adams et al. §3-4), and assigned to the enclosing simplex of
 * the permutohedral lattice A*_d; its d+1 corners get barycentric weights.
 * Filtering = splat (weighted sum onto the corners), blur (a [1 2 1]/2
 * stencil along each of the d+1 lattice axes), slice (barycentric
 * interpolation back), times alpha = 1/(1 + 2^-d).
 * Mean field: each pass over the pixels slices the messages of both
 * kernels, updates q and splats it at once onto the lattices of the next
 * pass (crf_mf), so q and -U never stream through memory; the values are
 * rows of K labels padded to the vector width (row kernels below), and
 * the blurred ones binary16 in SFC_CRF_LATTICE (half the bytes to
 * gather; crf.h gives the error bound).
 * Invariants: the blur and the slice are gathers; the splat sums each
 * vertex in a fixed order (two fixed halves of the points, each in point
 * order, then the halves added); vertex ids are those of a sequential
 * first-touch numbering in point order (built as two halves and merged,
 * which gives the same ids). So results are bit-identical for any number
 * of threads, for the AVX2 and the baseline code (the same operations
 * per lane), and for the F16C and the plain C binary16 conversions (both
 * round to nearest even). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crf.h"
#include "err.h" /* defines: sfc_error */
#include "tensor.h" /* binary16 conversions */
#include "util.h"

/* Loops with less work than this (in multiply-adds, roughly) run on one
 * thread: a parallel region and its barriers cost more than they save on
 * small images, and far more when the machine is oversubscribed. */
#define PAR_MIN (1 << 20)

/* HOT functions are compiled twice on x86-64, for AVX2 and for the
 * baseline, and the loader picks one per machine (target_clones): the
 * same arithmetic, wider registers and rounding instructions. */
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define HOT __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef HOT
#define HOT
#endif

/* ==== parameters ======================================================= */

int sfc_crf_params_check(const struct sfc_crf_params *p)
{
    if (p->iters < 0) return sfc_error("crf", "iters must be >= 0");
    if (!(p->gt_prob > 0 && p->gt_prob < 1))
        return sfc_error("crf", "gt_prob must be in (0, 1), not %g",
                         (double)p->gt_prob);
    if (!(p->gauss_sxy > 0 && isfinite(p->gauss_sxy)) ||
        !(p->bilat_sxy > 0 && isfinite(p->bilat_sxy)) ||
        !(p->bilat_srgb > 0 && isfinite(p->bilat_srgb)))
        return sfc_error("crf", "kernel scales must be positive");
    if (!(p->gauss_compat >= 0 && isfinite(p->gauss_compat)) ||
        !(p->bilat_compat >= 0 && isfinite(p->bilat_compat)))
        return sfc_error("crf", "kernel weights must be >= 0");
    return 0;
}

/* ==== hash table of lattice keys ======================================= */

/* Open addressing with linear probing over vertex ids; a key is d int32
 * coordinates (the (d+1)-th is minus their sum). Each slot keeps 32 bits
 * of the key's hash, so most mismatches never touch the key array. */
struct slot {
    int32_t id; /* vertex id, -1 = empty */
    uint32_t tag;
};

struct keytab {
    int d;
    int64_t cap;       /* power of two */
    int64_t n;         /* vertices stored */
    struct slot *slot; /* (cap) */
    int32_t *keys;     /* (n, d), grows */
    int64_t keycap;    /* rows allocated in keys */
};

static uint64_t key_hash(const int32_t *k, int d)
{
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < d; i++) {
        h ^= (uint32_t)k[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 29;
    }
    return h;
}

static void slots_alloc(struct keytab *t)
{
    t->slot = sfc_xmalloc((size_t)t->cap * sizeof *t->slot);
    for (int64_t i = 0; i < t->cap; i++) t->slot[i].id = -1;
}

static void keytab_init(struct keytab *t, int d, int64_t expect)
{
    t->d = d;
    t->cap = 1024;
    while (t->cap < 2 * expect) t->cap *= 2;
    t->n = 0;
    slots_alloc(t);
    t->keycap = t->cap / 2;
    t->keys = sfc_xmalloc((size_t)t->keycap * d * sizeof *t->keys);
}

static void keytab_release(struct keytab *t)
{
    free(t->slot);
    free(t->keys);
}

static void keytab_grow(struct keytab *t)
{
    free(t->slot);
    t->cap *= 2;
    slots_alloc(t);
    for (int64_t e = 0; e < t->n; e++) {
        uint64_t h = key_hash(t->keys + e * t->d, t->d);
        uint64_t at = h & (t->cap - 1);
        while (t->slot[at].id >= 0) at = (at + 1) & (t->cap - 1);
        t->slot[at].id = (int32_t)e;
        t->slot[at].tag = (uint32_t)(h >> 32);
    }
}

/* The id of key k; inserted if absent and create is set, else -1. */
static int32_t keytab_find(struct keytab *t, const int32_t *k, int create)
{
    int d = t->d;
    uint64_t h = key_hash(k, d);
    uint32_t tag = (uint32_t)(h >> 32);
    uint64_t at = h & (t->cap - 1);
    for (;;) {
        struct slot sl = t->slot[at];
        if (sl.id < 0) break;
        if (sl.tag == tag) {
            const int32_t *q = t->keys + (int64_t)sl.id * d;
            int i = 0;
            while (i < d && q[i] == k[i]) i++;
            if (i == d) return sl.id;
        }
        at = (at + 1) & (t->cap - 1);
    }
    if (!create) return -1;
    if (t->n == t->keycap) {
        t->keycap *= 2;
        t->keys = sfc_xrealloc(t->keys, (size_t)t->keycap * d * sizeof *k);
    }
    memcpy(t->keys + t->n * d, k, (size_t)d * sizeof *k);
    t->slot[at].id = (int32_t)t->n;
    t->slot[at].tag = tag;
    int32_t id = (int32_t)t->n++;
    if (2 * t->n > t->cap) keytab_grow(t);
    return id;
}

/* ==== permutohedral lattice ============================================ */

struct sfc_lattice {
    int64_t N, M;
    int d;
    float alpha;
    int32_t *corner;  /* (N, d+1) vertex of each simplex corner */
    float *bary;      /* (N, d+1) barycentric weight of each corner */
    int32_t *nbr;     /* (d+1, M, 2) blur neighbours; M = absent (zero row) */
    /* the mean field's splat in two halves, points [0, N/2) and [N/2, N):
     * the first half's vertices are [0, MA); the second half splats
     * vertex v < MA (Ms of them, shared[s]) onto private row M + 1 + s */
    int32_t *scorner; /* (N, d+1) row of each corner in the splat */
    int64_t MA, Ms;
    int32_t *shared;  /* (Ms) */
};

/* Lift one feature vector, find its simplex: writes the d+1 corner keys
 * (d coordinates each) and barycentric weights. Adams et al. 2010 §4. */
static inline void lattice_point(const float *f, int d, const double *scale,
                          int32_t *keys_out, float *bary_out)
{
    double el[SFC_LATTICE_MAXD + 1], rem0[SFC_LATTICE_MAXD + 1];
    double b[SFC_LATTICE_MAXD + 2];
    int rank[SFC_LATTICE_MAXD + 1];
    int d1 = d + 1;

    /* elevated = E f: on the plane sum = 0, lattice spacing d+1 */
    double sm = 0;
    for (int j = d; j > 0; j--) {
        double cf = f[j - 1] * scale[j - 1];
        el[j] = sm - j * cf;
        sm += cf;
    }
    el[0] = sm;

    /* nearest remainder-0 point: coordinates rounded to multiples of d+1 */
    int sum = 0;
    double inv_d1 = 1.0 / d1;
    for (int i = 0; i <= d; i++) {
        /* floor(y + 0.5) without a libm call (|y| < 2^28: the check in
         * sfc_lattice_new) */
        double y = el[i] * inv_d1 + 0.5;
        int r = (int)y;
        r -= (double)r > y;
        rem0[i] = (double)r * d1;
        sum += r;
    }
    /* rank of each coordinate's residual, 0 = largest (ties by index);
     * without branches: the comparisons are data-dependent */
    double res[SFC_LATTICE_MAXD + 1];
    for (int i = 0; i <= d; i++) {
        rank[i] = 0;
        res[i] = el[i] - rem0[i];
    }
    for (int i = 0; i < d; i++)
        for (int j = i + 1; j <= d; j++) {
            int lt = res[i] < res[j];
            rank[i] += lt;
            rank[j] += 1 - lt;
        }
    /* bring the point back onto the plane when the rounding left it */
    for (int i = 0; i <= d; i++) {
        rank[i] += sum;
        if (rank[i] < 0) {
            rank[i] += d1;
            rem0[i] += d1;
        } else if (rank[i] > d) {
            rank[i] -= d1;
            rem0[i] -= d1;
        }
    }
    /* barycentric coordinates of the point in its simplex */
    for (int i = 0; i <= d + 1; i++) b[i] = 0;
    for (int i = 0; i <= d; i++) {
        double v = (el[i] - rem0[i]) * inv_d1;
        b[d - rank[i]] += v;
        b[d - rank[i] + 1] -= v;
    }
    b[0] += 1.0 + b[d + 1];
    /* corner r: remainder-0 point plus the canonical simplex vertex r */
    for (int r = 0; r <= d; r++) {
        for (int i = 0; i < d; i++)
            keys_out[r * d + i] =
                (int32_t)rem0[i] + (rank[i] <= d - r ? r : r - d1);
        bary_out[r] = (float)b[r];
    }
}

/* Vertex ids and blur neighbours with keys of d int32 coordinates in a
 * hash table (any range): sets corner, bary, M and nbr. */
static void lattice_generic(struct sfc_lattice *lat, const float *feat,
                            const double *scale)
{
    int64_t N = lat->N;
    int d = lat->d, d1 = d + 1;
    int32_t *keys = sfc_xmalloc((size_t)(N * d1 * d) * sizeof *keys);

    /* the simplex of every point: independent, in parallel */
    int64_t i;
#pragma omp parallel for schedule(static) if (N * d1 > PAR_MIN)
    for (i = 0; i < N; i++)
        lattice_point(feat + i * d, d, scale, keys + i * d1 * d,
                      lat->bary + i * d1);

    /* vertex ids in point order: sequential, so ids never depend on
     * threads */
    struct keytab tab;
    keytab_init(&tab, d, N / 8);
    for (i = 0; i < N; i++)
        for (int r = 0; r < d1; r++) {
            /* corner r of a simplex is its one vertex of remainder r, so a
             * shared vertex of the previous point is its corner r too:
             * neighbouring pixels mostly skip the hash table */
            int64_t c = i * d1 + r;
            const int32_t *k = keys + c * d;
            if (i > 0 && !memcmp(k, k - d1 * d, (size_t)d * sizeof *k))
                lat->corner[c] = lat->corner[c - d1];
            else
                lat->corner[c] = keytab_find(&tab, k, 1);
        }
    free(keys);
    int64_t M = lat->M = tab.n;

    /* blur neighbours along each axis j: the key -1 in every coordinate
     * but +d in coordinate j, and its mirror; absent ones read a zero row */
    lat->nbr = sfc_xmalloc((size_t)(d1 * M * 2) * sizeof *lat->nbr);
    int64_t v;
#pragma omp parallel for schedule(static) if (M * d1 > PAR_MIN)
    for (v = 0; v < M; v++) {
        int32_t n1[SFC_LATTICE_MAXD], n2[SFC_LATTICE_MAXD];
        const int32_t *key = tab.keys + v * d;
        for (int j = 0; j <= d; j++) {
            for (int k = 0; k < d; k++) {
                n1[k] = key[k] - 1;
                n2[k] = key[k] + 1;
            }
            if (j < d) {
                n1[j] = key[j] + d;
                n2[j] = key[j] - d;
            }
            int32_t a = keytab_find(&tab, n1, 0), b = keytab_find(&tab, n2, 0);
            lat->nbr[(j * M + v) * 2] = a < 0 ? (int32_t)M : a;
            lat->nbr[(j * M + v) * 2 + 1] = b < 0 ? (int32_t)M : b;
        }
    }
    keytab_release(&tab);
}

/* Packed keys: when every key coordinate of the lattice (and of its
 * blur neighbours) fits in a field of a 64-bit code, a key is one integer,
 * its blur neighbours are the code plus or minus a constant, and the
 * table compares codes only. The ranges follow from the features' ranges:
 * a lifted coordinate is linear in the features, and a key coordinate is
 * within 2.5 (d+1) of the lifted one (3.5 (d+1) for a neighbour). */
struct pack {
    int off[SFC_LATTICE_MAXD];      /* bit offset of coordinate i */
    int64_t base[SFC_LATTICE_MAXD]; /* value of coordinate i coded as 0 */
    uint64_t dn[SFC_LATTICE_MAXD + 1]; /* code of neighbour 1 minus code */
};

/* 1 and the plan when the codes fit in 63 bits, else 0. */
static int pack_plan(struct pack *pk, const float *feat, int64_t N, int d,
                     const double *scale)
{
    double fmin[SFC_LATTICE_MAXD], fmax[SFC_LATTICE_MAXD];
    for (int k = 0; k < d; k++) fmin[k] = fmax[k] = feat[k];
    for (int64_t i = 1; i < N; i++)
        for (int k = 0; k < d; k++) {
            double f = feat[i * d + k];
            fmin[k] = f < fmin[k] ? f : fmin[k];
            fmax[k] = f > fmax[k] ? f : fmax[k];
        }
    /* lifted coordinate i (as lattice_point): sum_{k > i} cf_k - i cf_i,
     * cf_k = f_{k-1} scale_{k-1} (k = 1..d) */
    int d1 = d + 1, bits = 0;
    for (int i = 0; i < d; i++) {
        double lo = 0, hi = 0;
        for (int k = i + 1; k <= d; k++) {
            lo += fmin[k - 1] * scale[k - 1];
            hi += fmax[k - 1] * scale[k - 1];
        }
        if (i > 0) {
            lo -= i * fmax[i - 1] * scale[i - 1];
            hi -= i * fmin[i - 1] * scale[i - 1];
        }
        pk->base[i] = (int64_t)floor(lo) - 4 * d1;
        double width = ceil(hi) + 4 * d1 - (double)pk->base[i] + 1;
        int b = 1;
        while (b < 63 && (double)((uint64_t)1 << b) < width) b++;
        pk->off[i] = bits;
        bits += b;
        if (bits > 63) return 0;
    }
    uint64_t ones = 0;
    for (int i = 0; i < d; i++) ones += (uint64_t)1 << pk->off[i];
    for (int j = 0; j < d; j++)
        pk->dn[j] = ((uint64_t)d1 << pk->off[j]) - ones;
    pk->dn[d] = -ones;
    return 1;
}

static inline uint64_t pack_key(const struct pack *pk, const int32_t *k,
                                int d)
{
    uint64_t c = 0;
    for (int i = 0; i < d; i++)
        c += (uint64_t)(k[i] - pk->base[i]) << pk->off[i];
    return c;
}

/* Open addressing with linear probing on codes; ids in insertion order;
 * vcode[id] = code. */
struct cslot {
    uint64_t code;
    int64_t id; /* -1 = empty */
};

struct ctab {
    int64_t cap, n, vcap;
    struct cslot *slot;
    uint64_t *vcode;
};

static inline uint64_t code_hash(uint64_t c)
{
    c ^= c >> 31;
    c *= 0x9e3779b97f4a7c15ull;
    return c ^ (c >> 29);
}

static void ctab_slots(struct ctab *t)
{
    t->slot = sfc_xmalloc((size_t)t->cap * sizeof *t->slot);
    for (int64_t i = 0; i < t->cap; i++) t->slot[i].id = -1;
}

static void ctab_init(struct ctab *t, int64_t expect)
{
    t->cap = 1024;
    while (t->cap < 2 * expect) t->cap *= 2;
    t->n = 0;
    t->vcap = t->cap / 2;
    t->vcode = sfc_xmalloc((size_t)t->vcap * sizeof *t->vcode);
    ctab_slots(t);
}

static inline int64_t ctab_find(const struct ctab *t, uint64_t c)
{
    uint64_t at = code_hash(c) & (t->cap - 1);
    for (;;) {
        const struct cslot *s = &t->slot[at];
        if (s->id < 0 || s->code == c) return s->id;
        at = (at + 1) & (t->cap - 1);
    }
}

static int64_t ctab_insert(struct ctab *t, uint64_t c)
{
    uint64_t at = code_hash(c) & (t->cap - 1);
    for (;;) {
        struct cslot *s = &t->slot[at];
        if (s->id < 0) break;
        if (s->code == c) return s->id;
        at = (at + 1) & (t->cap - 1);
    }
    int64_t id = t->n++;
    t->slot[at].code = c;
    t->slot[at].id = id;
    if (id == t->vcap) {
        t->vcap *= 2;
        t->vcode = sfc_xrealloc(t->vcode, (size_t)t->vcap * sizeof *t->vcode);
    }
    t->vcode[id] = c;
    if (2 * t->n > t->cap) {
        free(t->slot);
        t->cap *= 2;
        ctab_slots(t);
        for (int64_t e = 0; e < t->n; e++) {
            uint64_t a = code_hash(t->vcode[e]) & (t->cap - 1);
            while (t->slot[a].id >= 0) a = (a + 1) & (t->cap - 1);
            t->slot[a].code = t->vcode[e];
            t->slot[a].id = e;
        }
    }
    return id;
}

/* The vertex ids of points [i0, i1) into table t, in first-touch order
 * (corner r of a simplex is its one vertex of remainder r, so a shared
 * vertex of the previous point is its corner r too: neighbouring pixels
 * mostly skip the table). */
static void ctab_points(struct ctab *t, const uint64_t *codes, int d1,
                        int64_t i0, int64_t i1, int32_t *corner)
{
    for (int64_t i = i0; i < i1; i++) {
#if defined(__GNUC__)
        /* the slots of a point ahead: the table is larger than the cache */
        if (i + 6 < i1) {
            uint64_t mk = (uint64_t)t->cap - 1;
            for (int r = 0; r < d1; r++)
                __builtin_prefetch(&t->slot[code_hash(codes[(i + 6) * d1 + r]) & mk]);
        }
#endif
        for (int r = 0; r < d1; r++) {
            int64_t c = i * d1 + r;
            if (i > i0 && codes[c] == codes[c - d1])
                corner[c] = corner[c - d1];
            else
                corner[c] = (int32_t)ctab_insert(t, codes[c]);
        }
    }
}

/* The simplices of points [i0, i1): codes (N, d+1), bary (N, d+1). */
HOT static void lattice_points(const float *feat, int d, const double *scale,
                               const struct pack *pk, int64_t i0, int64_t i1,
                               uint64_t *codes, float *bary)
{
    int d1 = d + 1;
    for (int64_t i = i0; i < i1; i++) {
        int32_t k[(SFC_LATTICE_MAXD + 1) * SFC_LATTICE_MAXD];
        lattice_point(feat + i * d, d, scale, k, bary + i * d1);
        for (int r = 0; r < d1; r++)
            codes[i * d1 + r] = pack_key(pk, k + r * d, d);
    }
}

/* As lattice_generic with packed keys. The points are split in two
 * halves whose tables are built at the same time; the second half's
 * vertices then join the first table in their first-touch order, which
 * gives the ids a single pass in point order would: the lattice does not
 * depend on the number of threads. */
static void lattice_packed(struct sfc_lattice *lat, const float *feat,
                           const double *scale, const struct pack *pk)
{
    int64_t N = lat->N, i, h = N / 2;
    int d = lat->d, d1 = d + 1;
    uint64_t *codes = sfc_xmalloc((size_t)(N * d1) * sizeof *codes);
    struct ctab t[2];
    int64_t *map = NULL;
    /* a corner costs some 100 operations here */
#pragma omp parallel if (N * d1 * 16 > PAR_MIN)
    {
#pragma omp for schedule(static)
        for (i = 0; i < N; i += 2048)
            lattice_points(feat, d, scale, pk, i, SFC_MIN(N, i + 2048), codes,
                           lat->bary);
        int p;
#pragma omp for schedule(static, 1)
        for (p = 0; p < 2; p++) {
            ctab_init(&t[p], h + 1);
            ctab_points(&t[p], codes, d1, p ? h : 0, p ? N : h, lat->corner);
        }
#pragma omp single
        {
            map = sfc_xmalloc((size_t)(t[1].n + 1) * sizeof *map);
            for (int64_t e = 0; e < t[1].n; e++) {
#if defined(__GNUC__)
                if (e + 8 < t[1].n)
                    __builtin_prefetch(&t[0].slot[code_hash(t[1].vcode[e + 8]) &
                                                  ((uint64_t)t[0].cap - 1)]);
#endif
                map[e] = ctab_insert(&t[0], t[1].vcode[e]);
            }
        }
#pragma omp for schedule(static)
        for (i = h * d1; i < N * d1; i++) lat->corner[i] = (int32_t)map[lat->corner[i]];
    }
    free(map);
    free(t[1].slot);
    free(t[1].vcode);
    free(codes);
    int64_t M = lat->M = t[0].n, v;

    /* blur neighbours along each axis j: the code plus dn[j] and minus it;
     * absent ones read a zero row (id M). Vertex v looks up a = v + dn[j]
     * and is a's neighbour - dn[j]: one lookup per pair (each a has one
     * such v, so the threads write distinct entries) */
    lat->nbr = sfc_xmalloc((size_t)(d1 * M * 2) * sizeof *lat->nbr);
    int32_t *nb = lat->nbr;
#pragma omp parallel if (M * d1 > PAR_MIN)
    {
#pragma omp for schedule(static)
        for (v = 0; v < d1 * M; v++) nb[2 * v + 1] = (int32_t)M;
#pragma omp for schedule(static)
        for (v = 0; v < M; v++) {
            uint64_t c = t[0].vcode[v];
#if defined(__GNUC__)
            /* the slots of a vertex ahead: the table is larger than the
             * cache */
            if (v + 4 < M) {
                uint64_t c4 = t[0].vcode[v + 4], mk = (uint64_t)t[0].cap - 1;
                for (int j = 0; j <= d; j++)
                    __builtin_prefetch(&t[0].slot[code_hash(c4 + pk->dn[j]) & mk]);
            }
#endif
            for (int j = 0; j <= d; j++) {
                int64_t a = ctab_find(&t[0], c + pk->dn[j]);
                nb[(j * M + v) * 2] = (int32_t)(a < 0 ? M : a);
                if (a >= 0) nb[(j * M + a) * 2 + 1] = (int32_t)v;
            }
        }
    }
    free(t[0].slot);
    free(t[0].vcode);
}

struct sfc_lattice *sfc_lattice_new(const float *feat, int64_t N, int d)
{
    if (N < 1 || N > INT32_MAX / (SFC_LATTICE_MAXD + 1)) {
        sfc_error("lattice", "bad point count %lld", (long long)N);
        return NULL;
    }
    if (d < 1 || d > SFC_LATTICE_MAXD) {
        sfc_error("lattice", "feature dimension %d not in [1, %d]", d,
                  SFC_LATTICE_MAXD);
        return NULL;
    }
    int d1 = d + 1;
    double scale[SFC_LATTICE_MAXD];
    double inv_std = sqrt(2.0 / 3.0) * d1;
    for (int j = 0; j < d; j++) scale[j] = inv_std / sqrt((j + 1.0) * (j + 2));
    /* the keys are int32: every lifted coordinate must stay well inside */
    double lim = (double)(1 << 28) / (d1 * inv_std);
    for (int64_t i = 0; i < N * d; i++)
        if (!(fabsf(feat[i]) < lim)) {
            sfc_error("lattice", "feature value %g of point %lld is not "
                      "finite or too large", (double)feat[i],
                      (long long)(i / d));
            return NULL;
        }

    struct sfc_lattice *lat = sfc_xcalloc(1, sizeof *lat);
    lat->N = N;
    lat->d = d;
    lat->alpha = 1.0f / (1.0f + powf(2.0f, (float)-d));
    lat->corner = sfc_xmalloc((size_t)(N * d1) * sizeof *lat->corner);
    lat->bary = sfc_xmalloc((size_t)(N * d1) * sizeof *lat->bary);

    struct pack pk;
    if (pack_plan(&pk, feat, N, d, scale))
        lattice_packed(lat, feat, scale, &pk);
    else
        lattice_generic(lat, feat, scale);
    int64_t M = lat->M;

    /* the splat rows (struct sfc_lattice) */
    int64_t h = N / 2, MA = 0;
    for (int64_t e = 0; e < h * d1; e++) MA = SFC_MAX(MA, lat->corner[e] + 1);
    lat->MA = MA;
    lat->scorner = sfc_xmalloc((size_t)(N * d1) * sizeof *lat->scorner);
    memcpy(lat->scorner, lat->corner, (size_t)(h * d1) * sizeof *lat->corner);
    int32_t *sh = sfc_xmalloc((size_t)(MA + 1) * sizeof *sh);
    for (int64_t v = 0; v < MA; v++) sh[v] = -1;
    lat->shared = sfc_xmalloc((size_t)(MA + 1) * sizeof *lat->shared);
    lat->Ms = 0;
    for (int64_t e = h * d1; e < N * d1; e++) {
        int32_t v = lat->corner[e];
        if (v >= MA) {
            lat->scorner[e] = v;
            continue;
        }
        if (sh[v] < 0) {
            sh[v] = (int32_t)lat->Ms;
            lat->shared[lat->Ms++] = v;
        }
        lat->scorner[e] = (int32_t)(M + 1 + sh[v]);
    }
    free(sh);
    return lat;
}

void sfc_lattice_free(struct sfc_lattice *lat)
{
    if (!lat) return;
    free(lat->corner);
    free(lat->bary);
    free(lat->nbr);
    free(lat->scorner);
    free(lat->shared);
    free(lat);
}

int64_t sfc_lattice_size(const struct sfc_lattice *lat) { return lat->M; }

/* ==== row kernels ======================================================= */

/* The values of a point or vertex are a row of V floats. The hot loops
 * (splat, blur, slice with the mean-field update) work on whole rows as
 * blocks of W lanes: GNU C vector types of 8 lanes when V is a multiple of
 * 8, of 4 lanes when V = 4, else single floats (any V; also the path of
 * compilers without vector types). The loops are written once, in
 * ROW_KERNELS, for each block type. Every lane does the same operations
 * in the same order whatever the block type, the instruction set or the
 * thread, so no result depends on them; sums across lanes (the softmax
 * denominator) are in a fixed order per block type.
 *
 * On x86-64 the entry points (the *_run functions) are compiled twice,
 * for AVX2 and for the baseline, and the loader picks one per machine
 * (target_clones): the same arithmetic, wider registers. */
#if defined(__GNUC__)
#define ROW_VEC 1
typedef float vf4 __attribute__((vector_size(16), aligned(4), may_alias));
typedef int32_t vi4 __attribute__((vector_size(16), aligned(4), may_alias));
typedef float vf8 __attribute__((vector_size(32), aligned(4), may_alias));
typedef int32_t vi8 __attribute__((vector_size(32), aligned(4), may_alias));
#define INLINE static inline __attribute__((always_inline))
#define CVT4(v) __builtin_convertvector(v, vi4)
#define CVT8(v) __builtin_convertvector(v, vi8)
/* 32-byte vectors are passed between inlined functions only: the ABI
 * note of GCC about them does not apply */
#pragma GCC diagnostic ignored "-Wpsabi"
#else
#define ROW_VEC 0
#define INLINE static inline
#endif

/* exp(x) for x <= 0 in plain float arithmetic that vectorises: x = n ln2 +
 * r with |r| <= ln2/2 (ln2 split in two for exactness), exp(r) by its
 * Taylor polynomial to degree 7 (relative error < 2e-7 incl. rounding),
 * times 2^n built in the exponent bits. x < -87 gives exp(-87) (> 0).
 * EXP_BODY is the one definition, for floats (T = float, I = int32_t,
 * CLAMP and CVT scalar) and for the vector types. */
#define EXP_BODY(T, I, x, CVT)                                             \
    I n = CVT(x * 1.44269504f - 0.5f); /* round to nearest (x <= 0) */    \
    T fn = CVTF(n);                                                        \
    T r = (x - fn * 0.693359375f) + fn * 2.12194440e-4f;                  \
    T p = r * (1.0f / 5040) + 1.0f / 720;                                  \
    p = p * r + 1.0f / 120;                                                \
    p = p * r + 1.0f / 24;                                                 \
    p = p * r + 1.0f / 6;                                                  \
    p = p * r + 0.5f;                                                      \
    p = p * r + 1.0f;                                                      \
    p = p * r + 1.0f;                                                      \
    I e = (n + 127) * (1 << 23);                                           \
    T two_n;                                                               \
    memcpy(&two_n, &e, sizeof two_n);                                      \
    return p * two_n;

INLINE float vexp_s(float x)
{
    x = x < -87.0f ? -87.0f : x;
#define CVTF(n) ((float)(n))
    EXP_BODY(float, int32_t, x, (int32_t))
#undef CVTF
}
INLINE float vmax_s(float a, float b) { return a > b ? a : b; }
INLINE float hmax_s(float a) { return a; }
INLINE float hsum_s(float a) { return a; }

#if ROW_VEC
/* per lane: a > b ? a : b, and the clamp at -87, by masks (the vector
 * ?: is C++ only) */
#define VSEL(T, I, m, a, b) ((T)(((I)(a) & (m)) | ((I)(b) & ~(m))))
INLINE vf4 vmax_4(vf4 a, vf4 b) { return VSEL(vf4, vi4, a > b, a, b); }
INLINE vf8 vmax_8(vf8 a, vf8 b) { return VSEL(vf8, vi8, a > b, a, b); }
INLINE vf4 vexp_4(vf4 x)
{
    vf4 lo = x - x - 87.0f;
    x = VSEL(vf4, vi4, x < lo, lo, x);
#define CVTF(n) __builtin_convertvector(n, vf4)
    EXP_BODY(vf4, vi4, x, CVT4)
#undef CVTF
}
INLINE vf8 vexp_8(vf8 x)
{
    vf8 lo = x - x - 87.0f;
    x = VSEL(vf8, vi8, x < lo, lo, x);
#define CVTF(n) __builtin_convertvector(n, vf8)
    EXP_BODY(vf8, vi8, x, CVT8)
#undef CVTF
}
#if defined(__clang__)
#define SHUF(a, I, ...) __builtin_shufflevector(a, a, __VA_ARGS__)
#else
#define SHUF(a, I, ...) __builtin_shuffle(a, (I){__VA_ARGS__})
#endif
/* across the lanes: the maximum, and the sum in a fixed tree */
INLINE float hmax_4(vf4 a)
{
    a = vmax_4(a, SHUF(a, vi4, 2, 3, 0, 1));
    a = vmax_4(a, SHUF(a, vi4, 1, 0, 3, 2));
    return a[0];
}
INLINE float hmax_8(vf8 a)
{
    a = vmax_8(a, SHUF(a, vi8, 4, 5, 6, 7, 0, 1, 2, 3));
    return hmax_4((vf4){a[0], a[1], a[2], a[3]});
}
INLINE float hsum_4(vf4 a)
{
    a += SHUF(a, vi4, 2, 3, 0, 1);
    a += SHUF(a, vi4, 1, 0, 3, 2);
    return a[0];
}
INLINE float hsum_8(vf8 a)
{
    a += SHUF(a, vi8, 4, 5, 6, 7, 0, 1, 2, 3);
    return hsum_4((vf4){a[0], a[1], a[2], a[3]});
}
#endif

/* The lattice's part of the slice: lattice, its values after the blur,
 * and the factor gain * alpha * scale[i] of point i's interpolation
 * (scale may be NULL: ones). */
struct slice_src {
    const struct sfc_lattice *lat;
    const float *vals;
    const float *scale;
    float gain;
};

/* One mean-field pass over points [i0, i1) (mf kernels below). For each
 * point: x = the slice of the n lattices if `slice` (else 0); x += -U
 * (row i of negU, or, without negU, row lab[i] of lut: -U from hard
 * labels); q = softmax(x) * mask; then q is written to Q_out (K lanes)
 * and its argmax to lab_out (either may be NULL), and if `splat`,
 * splatted onto the lattices' targets. Lattice s: point i slices
 * gain * sum_r w[i*d1 + r] * vals[scorner[i*d1 + r]] (w = bary *
 * norm_i, gain = compat * alpha, over the binary16 rows' scale in that
 * mode; the private rows of vals hold copies of their vertex) and splats
 * w[i*d1 + r] * q onto row scorner[i*d1 + r] of tv: the weights
 * are the same in every pass, computed once (sfc_crf_new). vals are
 * float rows, or binary16 rows in the f16 kernels; tv is float. */
struct mf_lat {
    int d1;
    const int32_t *scorner;
    const float *w;
    float gain;
    const void *vals;
    float *tv;
};

struct mf {
    int n, slice, splat, K;
    struct mf_lat l[2];
    const float *negU, *lut, *mask;
    const uint8_t *lab;
    float *Q_out;
    uint8_t *lab_out;
};

/* For block type T of W lanes (SUF names the family); nb = V / W blocks
 * per row, a constant where the *_run functions below inline these.
 *
 * blur: dst_v = src_v + (src_left + src_right) / 2 along one axis.
 * slice: out_i = sum over the sources, then corners, of weight *
 *   vals[corner].
 * mf: the mean-field pass of struct mf. */
/* Statement s(b) for the blocks b = 0 .. nb-1: written out when nb <= 4
 * (constant indices let the compiler keep such rows in registers) */
#define FOR_BLOCKS(s)                                                        \
    do {                                                                     \
        if (nb <= 4) {                                                       \
            s(0);                                                            \
            if (nb > 1) s(1);                                                \
            if (nb > 2) s(2);                                                \
            if (nb > 3) s(3);                                                \
        } else {                                                             \
            for (int b = 0; b < nb; b++) s(b);                               \
        }                                                                    \
    } while (0)

/* Blur neighbours are read this many vertices ahead. */
#define PF 8
#if defined(__GNUC__)
#define PREFETCH(p, V)                                                       \
    do {                                                                     \
        __builtin_prefetch(p);                                               \
        if ((V) > 16) __builtin_prefetch((p) + 16);                          \
    } while (0)
/* every cache line of the row of nbytes at p */
#define PREFETCH_ROW(p, nbytes)                                              \
    do {                                                                     \
        const char *p_ = (const char *)(p);                                  \
        for (size_t o_ = 0; o_ < (size_t)(nbytes); o_ += 64)                 \
            __builtin_prefetch(p_ + o_);                                     \
        __builtin_prefetch(p_ + (nbytes) - 1);                               \
    } while (0)
#else
#define PREFETCH(p, V) ((void)0)
#define PREFETCH_ROW(p, nbytes) ((void)0)
#endif

/* The interpolation weights w[] and rows y[] of point i in the sources. */
#define GATHER_SETUP(T)                                                      \
    float w[2 * (SFC_LATTICE_MAXD + 1)];                                     \
    const T *y[2 * (SFC_LATTICE_MAXD + 1)];                                  \
    int ne = 0;                                                              \
    for (int s = 0; s < ns; s++) {                                           \
        const struct sfc_lattice *lat = src[s].lat;                          \
        int d1 = lat->d + 1;                                                 \
        float sc = src[s].gain * lat->alpha *                                \
                   (src[s].scale ? src[s].scale[i] : 1.0f);                  \
        const int32_t *c = lat->corner + i * d1;                             \
        const float *bw = lat->bary + i * d1;                                \
        for (int r = 0; r < d1; r++, ne++) {                                 \
            w[ne] = bw[r] * sc;                                              \
            y[ne] = (const T *)(src[s].vals + c[r] * V);                     \
        }                                                                    \
    }

#define ROW_KERNELS(SUF, T, W, MAXB)                                         \
    INLINE void blur_##SUF(const int32_t *nbr, const float *src, float *dst, \
                           int nb, int64_t v0, int64_t v1)                   \
    {                                                                        \
        int64_t V = (int64_t)nb * W;                                         \
        for (int64_t v = v0; v < v1; v++) {                                  \
            if (v + PF < v1) {                                               \
                PREFETCH(src + nbr[2 * (v + PF)] * V, V);                    \
                PREFETCH(src + nbr[2 * (v + PF) + 1] * V, V);                \
            }                                                                \
            const T *a = (const T *)(src + v * V);                           \
            const T *l = (const T *)(src + nbr[2 * v] * V);                  \
            const T *r = (const T *)(src + nbr[2 * v + 1] * V);              \
            T *o = (T *)(dst + v * V);                                       \
            FOR_BLOCKS(BLUR_ROW);                                            \
        }                                                                    \
    }                                                                        \
    INLINE void slice_##SUF(const struct slice_src *src, int ns, int nb,     \
                            int64_t i0, int64_t i1, float *out)              \
    {                                                                        \
        int64_t V = (int64_t)nb * W;                                         \
        for (int64_t i = i0; i < i1; i++) {                                  \
            GATHER_SETUP(T)                                                  \
            T *o = (T *)(out + i * V), x[MAXB], zero = (T){0};               \
            SLICE_SUM(T);                                           \
            FOR_BLOCKS(SLICE_STORE);                                         \
        }                                                                    \
    }

/* The mean-field pass for block type T of W lanes; value rows of VT
 * (float or uint16_t: binary16), block b of row p loaded as VLD(p, b):
 * macros defined where the family is instantiated. */
#define MF_KERNEL(SUF, T, W, MAXB)                                           \
    INLINE void mf_##SUF(const struct mf *f, int nb, int n, int d1a,       \
                         int d1b, int64_t i0, int64_t i1)                    \
    {                                                                        \
        typedef T blk_t; /* for VLD */                                       \
        (void)sizeof(blk_t);                                                 \
        int64_t V = (int64_t)nb * W;                                         \
        const T *mask = (const T *)f->mask;                                  \
        const int d1s[2] = {d1a, d1b};                                       \
        const int ns = f->slice ? n : 0, nt = f->splat ? n : 0;              \
        const struct mf_lat *L = f->l;                                       \
        for (int64_t i = i0; i < i1; i++) {                                  \
            if (i + PFP < i1) {                                              \
                int64_t ip = i + PFP;                                        \
                for (int s = 0; s < ns; s++)                                 \
                    for (int r = 0; r < d1s[s]; r++)                         \
                        PREFETCH_ROW((const VT *)L[s].vals +                 \
                                         L[s].scorner[ip * d1s[s] + r] * V,  \
                                     V * sizeof(VT));                        \
                for (int s = 0; s < nt; s++)                                 \
                    for (int r = 0; r < d1s[s]; r++)                         \
                        PREFETCH_ROW(L[s].tv +                               \
                                         L[s].scorner[ip * d1s[s] + r] * V,  \
                                     V * sizeof(float));                     \
            }                                                                \
            T x[MAXB], y[MAXB], zero = (T){0};                               \
            FOR_BLOCKS(SLICE_ZERO);                                          \
            for (int s = 0; s < ns; s++) {                                   \
                int d1 = d1s[s];                                             \
                const int32_t *c = L[s].scorner + i * d1;                    \
                const float *w = L[s].w + i * d1;                            \
                FOR_BLOCKS(MF_YZERO);                                        \
                for (int r = 0; r < d1; r++) {                               \
                    float we = w[r];                                         \
                    const VT *ye = (const VT *)L[s].vals + c[r] * V;         \
                    FOR_BLOCKS(MF_YADD);                                     \
                }                                                            \
                float g = L[s].gain;                                         \
                FOR_BLOCKS(MF_XADD);                                         \
            }                                                                \
            const T *u = (const T *)(f->negU ? f->negU + i * V               \
                                             : f->lut + f->lab[i] * V);      \
            FOR_BLOCKS(MF_ADD_U);                                            \
            /* softmax */                                                    \
            T m = x[0];                                                      \
            FOR_BLOCKS(MF_MAX);                                              \
            float mx = HMAX(m);                                              \
            T sum = zero;                                                    \
            FOR_BLOCKS(MF_EXP);                                              \
            float inv = 1.0f / HSUM(sum);                                    \
            FOR_BLOCKS(MF_NORM);                                             \
            if (f->Q_out || f->lab_out) {                                    \
                float q[256];                                                \
                FOR_BLOCKS(MF_STORE);                                        \
                if (f->Q_out)                                                \
                    memcpy(f->Q_out + i * f->K, q,                           \
                           (size_t)f->K * sizeof *q);                        \
                if (f->lab_out) {                                            \
                    int best = 0;                                            \
                    for (int k = 1; k < f->K; k++)                           \
                        if (q[k] > q[best]) best = k;                        \
                    f->lab_out[i] = (uint8_t)best;                           \
                }                                                            \
            }                                                                \
            /* splat */                                                      \
            for (int s = 0; s < nt; s++) {                                   \
                int d1 = d1s[s];                                             \
                const int32_t *sc = L[s].scorner + i * d1;                   \
                const float *w = L[s].w + i * d1;                            \
                for (int r = 0; r < d1; r++) {                               \
                    T *o = (T *)(L[s].tv + sc[r] * V);                       \
                    float wr = w[r];                                         \
                    FOR_BLOCKS(MF_SPLAT);                                    \
                }                                                            \
            }                                                                \
        }                                                                    \
    }
/* Mean-field rows are read this many pixels ahead. */
#define PFP 8
#define BLUR_ROW(b) o[b] = a[b] + 0.5f * (l[b] + r[b])
#define SLICE_ZERO(b) x[b] = zero
#define SLICE_ADD(b) x[b] += we * ye[b]
/* x = sum over e of w[e] * y[e] */
#define SLICE_SUM(T)                                                         \
    do {                                                                     \
        FOR_BLOCKS(SLICE_ZERO);                                              \
        for (int e = 0; e < ne; e++) {                                       \
            float we = w[e];                                                 \
            const T *ye = y[e];                                              \
            FOR_BLOCKS(SLICE_ADD);                                           \
        }                                                                    \
    } while (0)
#define SLICE_STORE(b) o[b] = x[b]
#define MF_YZERO(b) y[b] = zero
#define MF_YADD(b) y[b] += we * VLD(ye, b)
#define MF_XADD(b) x[b] += g * y[b]
#define MF_ADD_U(b) x[b] += u[b]
#define MF_MAX(b) m = VMAX(m, x[b])
#define MF_EXP(b) (x[b] = VEXP(x[b] - mx), sum += x[b])
#define MF_NORM(b) x[b] = x[b] * inv * mask[b]
#define MF_STORE(b) memcpy(q + (b) * (int)(sizeof x[0] / sizeof(float)), &x[b], sizeof x[b])
#define MF_SPLAT(b) o[b] += wr * x[b]
#if ROW_VEC
#define VMAX(a, b) _Generic((a), float: vmax_s, vf4: vmax_4, vf8: vmax_8)(a, b)
#define VEXP(a) _Generic((a), float: vexp_s, vf4: vexp_4, vf8: vexp_8)(a)
#define HMAX(a) _Generic((a), float: hmax_s, vf4: hmax_4, vf8: hmax_8)(a)
#define HSUM(a) _Generic((a), float: hsum_s, vf4: hsum_4, vf8: hsum_8)(a)
#else
#define VMAX(a, b) vmax_s(a, b)
#define VEXP(a) vexp_s(a)
#define HMAX(a) hmax_s(a)
#define HSUM(a) hsum_s(a)
#endif

ROW_KERNELS(s, float, 1, 256)
#if ROW_VEC
ROW_KERNELS(4, vf4, 4, 4)
ROW_KERNELS(8, vf8, 8, 32)
#endif
/* the float rows' mean field */
#define VT float
#define VLD(p, b) ((const blk_t *)(p))[b]
MF_KERNEL(s, float, 1, 256)
#if ROW_VEC
MF_KERNEL(4, vf4, 4, 4)
MF_KERNEL(8, vf8, 8, 32)
#endif
#undef VT
#undef VLD

HOT static void blur_run(const int32_t *nbr, const float *src, float *dst,
                         int V, int64_t v0, int64_t v1)
{
#if ROW_VEC
    if (V == 4) blur_4(nbr, src, dst, 1, v0, v1);
    else if (V % 8 == 0 && V <= 32) {
        switch (V / 8) {
        case 1: blur_8(nbr, src, dst, 1, v0, v1); break;
        case 2: blur_8(nbr, src, dst, 2, v0, v1); break;
        case 3: blur_8(nbr, src, dst, 3, v0, v1); break;
        default: blur_8(nbr, src, dst, 4, v0, v1);
        }
    } else if (V % 8 == 0) blur_8(nbr, src, dst, V / 8, v0, v1);
    else
#endif
        blur_s(nbr, src, dst, V, v0, v1);
}

HOT static void slice_run(const struct slice_src *src, int ns, int V,
                          int64_t i0, int64_t i1, float *out)
{
#if ROW_VEC
    if (V == 4) slice_4(src, ns, 1, i0, i1, out);
    else if (V % 8 == 0 && V <= 32) {
        switch (V / 8) {
        case 1: slice_8(src, ns, 1, i0, i1, out); break;
        case 2: slice_8(src, ns, 2, i0, i1, out); break;
        case 3: slice_8(src, ns, 3, i0, i1, out); break;
        default: slice_8(src, ns, 4, i0, i1, out);
        }
    } else if (V % 8 == 0) slice_8(src, ns, V / 8, i0, i1, out);
    else
#endif
        slice_s(src, ns, V, i0, i1, out);
}

/* The mean field's pass for one row width; the CRF's shape (a Gaussian
 * lattice of d = 2 and a bilateral one of d = 5) with constant corner
 * counts, so that its loops unroll. */
#define MF_CALL(fn, nb)                                                      \
    do {                                                                     \
        if (f->n == 2 && f->l[0].d1 == 3 && f->l[1].d1 == 6)                 \
            fn(f, nb, 2, 3, 6, i0, i1);                                      \
        else                                                                 \
            fn(f, nb, f->n, f->l[0].d1, f->l[1].d1, i0, i1);                 \
    } while (0)

/* V: the row width of f's rows (row_width(f->K)) */
HOT static void mf_run(const struct mf *f, int V, int64_t i0, int64_t i1)
{
#if ROW_VEC
    if (V == 4) MF_CALL(mf_4, 1);
    else if (V % 8 == 0 && V <= 32) {
        switch (V / 8) {
        case 1: MF_CALL(mf_8, 1); break;
        case 2: MF_CALL(mf_8, 2); break;
        case 3: MF_CALL(mf_8, 3); break;
        default: MF_CALL(mf_8, 4);
        }
    } else if (V % 8 == 0) mf_8(f, V / 8, f->n, f->l[0].d1, f->l[1].d1, i0, i1);
    else
#endif
        mf_s(f, V, f->n, f->l[0].d1, f->l[1].d1, i0, i1);
}

/* ---- binary16 rows ----------------------------------------------------
 * The mean field's blurred values (what the passes slice from) can be
 * stored as IEEE binary16 (SFC_CRF_LATTICE): half the bytes to stream
 * and gather, the arithmetic still in float. The splat targets stay
 * float (a vertex sums many points); the blur reads them in its first
 * pass, times the lattice's power-of-two scale (sfc_crf_new picks it so
 * that no value can reach binary16's range end), and rounds each pass's
 * output to binary16 (to nearest, ties to even). Two builds of these
 * kernels: F16C conversions (x86-64 with AVX2 and F16C, chosen at run
 * time) and the same conversions in plain C (lib/tensor.h's), which give
 * the same bits; rows are blocks of 8 lanes (V a multiple of 8). */
#if ROW_VEC
/* blur: dst (binary16) = (src + (left + right) / 2) * mul, src float
 * (s32) or binary16 (s16) */
#define BLUR16_KERNEL(SUF)                                                   \
    INLINE void blur16_##SUF(const int32_t *nbr, const float *s32,          \
                             const uint16_t *s16, float mul, uint16_t *dst,  \
                             int nb, int64_t v0, int64_t v1)                 \
    {                                                                        \
        int64_t V = (int64_t)nb * 8;                                         \
        for (int64_t v = v0; v < v1; v++) {                                  \
            uint16_t *o = dst + v * V;                                       \
            if (s32) {                                                       \
                if (v + PF < v1) {                                           \
                    PREFETCH_ROW(s32 + nbr[2 * (v + PF)] * V, 4 * V);        \
                    PREFETCH_ROW(s32 + nbr[2 * (v + PF) + 1] * V, 4 * V);    \
                }                                                            \
                const vf8 *a = (const vf8 *)(s32 + v * V);                   \
                const vf8 *l = (const vf8 *)(s32 + nbr[2 * v] * V);          \
                const vf8 *r = (const vf8 *)(s32 + nbr[2 * v + 1] * V);      \
                for (int b = 0; b < nb; b++)                                 \
                    VST(o, b, (a[b] + 0.5f * (l[b] + r[b])) * mul);          \
            } else {                                                         \
                if (v + PF < v1) {                                           \
                    PREFETCH_ROW(s16 + nbr[2 * (v + PF)] * V, 2 * V);        \
                    PREFETCH_ROW(s16 + nbr[2 * (v + PF) + 1] * V, 2 * V);    \
                }                                                            \
                const uint16_t *a = s16 + v * V, *l = s16 + nbr[2 * v] * V,  \
                               *r = s16 + nbr[2 * v + 1] * V;                \
                for (int b = 0; b < nb; b++)                                 \
                    VST(o, b, VLD(a, b) + 0.5f * (VLD(l, b) + VLD(r, b)));   \
            }                                                                \
        }                                                                    \
    }

#define H16_RUNS(SUF, ATTR)                                                  \
    ATTR static void blur16_run_##SUF(const int32_t *nbr, const float *s32,  \
                                      const uint16_t *s16, float mul,        \
                                      uint16_t *dst, int V, int64_t v0,      \
                                      int64_t v1)                            \
    {                                                                        \
        switch (V / 8) {                                                     \
        case 1: blur16_##SUF(nbr, s32, s16, mul, dst, 1, v0, v1); break;     \
        case 2: blur16_##SUF(nbr, s32, s16, mul, dst, 2, v0, v1); break;     \
        case 3: blur16_##SUF(nbr, s32, s16, mul, dst, 3, v0, v1); break;     \
        case 4: blur16_##SUF(nbr, s32, s16, mul, dst, 4, v0, v1); break;     \
        default: blur16_##SUF(nbr, s32, s16, mul, dst, V / 8, v0, v1);       \
        }                                                                    \
    }                                                                        \
    ATTR static void mf16_run_##SUF(const struct mf *f, int V, int64_t i0,   \
                                    int64_t i1)                              \
    {                                                                        \
        switch (V / 8) {                                                     \
        case 1: MF_CALL(mf_##SUF, 1); break;                                 \
        case 2: MF_CALL(mf_##SUF, 2); break;                                 \
        case 3: MF_CALL(mf_##SUF, 3); break;                                 \
        case 4: MF_CALL(mf_##SUF, 4); break;                                 \
        default: mf_##SUF(f, V / 8, f->n, f->l[0].d1, f->l[1].d1, i0, i1);   \
        }                                                                    \
    }

/* plain C conversions */
INLINE vf8 h16_load_c(const uint16_t *p)
{
    vf8 v;
    for (int k = 0; k < 8; k++) v[k] = sfc_f32_from_f16(p[k]);
    return v;
}
INLINE void h16_store_c(uint16_t *p, vf8 v)
{
    for (int k = 0; k < 8; k++) p[k] = sfc_f16_from_f32(v[k]);
}
#define VT uint16_t
#define VLD(p, b) h16_load_c((p) + 8 * (b))
#define VST(p, b, v) h16_store_c((p) + 8 * (b), v)
BLUR16_KERNEL(hc)
MF_KERNEL(hc, vf8, 8, 32)
H16_RUNS(hc, )
#undef VLD
#undef VST

#if defined(__x86_64__) && defined(__GNUC__)
#define F16C_BUILD 1
#include <immintrin.h>
#pragma GCC push_options
#pragma GCC target("avx2,f16c")
#define VLD(p, b)                                                            \
    ((vf8)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((p) + 8 * (b)))))
#define VST(p, b, v)                                                         \
    _mm_storeu_si128((__m128i *)((p) + 8 * (b)),                             \
                     _mm256_cvtps_ph((__m256)(v), _MM_FROUND_TO_NEAREST_INT))
BLUR16_KERNEL(hx)
MF_KERNEL(hx, vf8, 8, 32)
H16_RUNS(hx, )
#undef VLD
#undef VST
#pragma GCC pop_options
#endif
#undef VT

/* -1: not decided yet; 0: plain C; 1: F16C */
static int f16c_mode = -1;

static int f16c_on(void)
{
#ifdef F16C_BUILD
    if (f16c_mode < 0)
        f16c_mode = __builtin_cpu_supports("avx2") &&
                    __builtin_cpu_supports("f16c");
    return f16c_mode;
#else
    return 0;
#endif
}

int sfc_crf_f16c(int use)
{
#ifdef F16C_BUILD
    f16c_mode = -1;
    if (use == 0) f16c_mode = 0;
#else
    (void)use;
#endif
    return f16c_on();
}

static void blur16_run(const int32_t *nbr, const float *s32,
                       const uint16_t *s16, float mul, uint16_t *dst, int V,
                       int64_t v0, int64_t v1)
{
#ifdef F16C_BUILD
    if (f16c_on()) {
        blur16_run_hx(nbr, s32, s16, mul, dst, V, v0, v1);
        return;
    }
#endif
    blur16_run_hc(nbr, s32, s16, mul, dst, V, v0, v1);
}

static void mf16_run(const struct mf *f, int V, int64_t i0, int64_t i1)
{
#ifdef F16C_BUILD
    if (f16c_on()) {
        mf16_run_hx(f, V, i0, i1);
        return;
    }
#endif
    mf16_run_hc(f, V, i0, i1);
}
#endif /* ROW_VEC */

/* Rows per work item of the parallel loops over vertices: small enough
 * to balance two threads (and a thread the machine takes away for a
 * while), large enough to make the scheduling cost nothing. */
#define CHUNK 2048

static int64_t nchunks(int64_t n) { return (n + CHUNK - 1) / CHUNK; }

/* The blur's split of each of the n lattices' vertices between the two
 * threads (cut[k]: MA, the first half of the points' vertices, when that
 * is near the middle, else M/2); returns the largest lattice dimension. */
static int blur_split(int n, const struct sfc_lattice *const *lat,
                      int64_t *cut)
{
    int maxd = 0;
    for (int k = 0; k < n; k++) {
        int64_t M = lat[k]->M, MA = lat[k]->MA;
        maxd = SFC_MAX(maxd, lat[k]->d);
        cut[k] = 5 * MA >= 2 * M && 5 * MA <= 3 * M ? MA : M / 2;
    }
    return maxd;
}

/* Blur the values of up to two lattices at once, each in its ping-pong
 * buffers bufs[k] ((M+1, V) or more rows, row M zero), starting from
 * bufs[k][start[k]]; res[k] = the buffer holding the result. Every
 * thread of a parallel region calls it (or one thread outside one); res
 * is the calling thread's. The vertices are split in two fixed parts at
 * the mean field's split (MA: the vertices of the first half of the
 * points, if that is near the middle), so that with two threads each
 * thread blurs mostly the rows its half of the points splats onto and
 * slices from (they stay in its core's cache), and the two threads
 * never write near each other. Each row is a gather: the split does not
 * change any result. */
static void lattice_blur(int n, const struct sfc_lattice *const *lat, int V,
                         float *(*bufs)[2], const int *start, int *res)
{
    int64_t cut[2] = {0, 0};
    int maxd = blur_split(n, lat, cut);
    for (int j = 0; j <= maxd; j++) {
        /* pass j of every lattice with an axis j: one loop, one barrier */
        int p;
#pragma omp for schedule(static, 1)
        for (p = 0; p < 2; p++)
            for (int k = 0; k < n; k++) {
                if (j > lat[k]->d) continue;
                int64_t M = lat[k]->M;
                int s = start[k] ^ (j & 1);
                blur_run(lat[k]->nbr + (int64_t)j * M * 2, bufs[k][s],
                         bufs[k][s ^ 1], V, p ? cut[k] : 0, p ? M : cut[k]);
            }
    }
    for (int k = 0; k < n; k++) res[k] = start[k] ^ ((lat[k]->d + 1) & 1);
}

/* rows floats of V, row M zero */
static float *lattice_buf(const struct sfc_lattice *lat, int64_t rows, int V)
{
    float *a = sfc_xmalloc_aligned((size_t)rows * V * sizeof *a);
    memset(a + lat->M * V, 0, (size_t)V * sizeof *a);
    return a;
}

/* splat of in (N, V) times in_scale onto a (M rows of V, zeroed here):
 * in point order, one thread */
static void lattice_splat(const struct sfc_lattice *lat, const float *in,
                          int K, int V, const float *in_scale, float *a)
{
    int d1 = lat->d + 1;
    memset(a, 0, (size_t)(lat->M * V) * sizeof *a);
    for (int64_t i = 0; i < lat->N; i++) {
        float s = in_scale ? in_scale[i] : 1.0f;
        for (int r = 0; r < d1; r++) {
            float *o = a + (int64_t)lat->corner[i * d1 + r] * V;
            float w = lat->bary[i * d1 + r] * s;
            for (int k = 0; k < K; k++) o[k] += w * in[i * K + k];
        }
    }
}

/* sfc_lattice_filter; *blur_max, if not NULL, = the largest value after
 * the blur */
static void lattice_filter(const struct sfc_lattice *lat, const float *in,
                           float *out, int V, const float *in_scale,
                           const float *out_scale, float *blur_max)
{
    int64_t M = lat->M, N = lat->N, c, nc = nchunks(N);
    int d1 = lat->d + 1;
    float *bufs[1][2] = {{lattice_buf(lat, M + 1, V), lattice_buf(lat, M + 1, V)}};
    lattice_splat(lat, in, V, V, in_scale, bufs[0][0]);
    int start[1] = {0}, res[1] = {0};
#pragma omp parallel if (N * d1 * V > PAR_MIN)
    {
        int r[1];
        lattice_blur(1, &lat, V, bufs, start, r);
        struct slice_src s = {lat, bufs[0][r[0]], out_scale, 1.0f};
#pragma omp for schedule(dynamic, 1)
        for (c = 0; c < nc; c++)
            slice_run(&s, 1, V, c * CHUNK, SFC_MIN(N, (c + 1) * CHUNK), out);
#pragma omp single
        res[0] = r[0];
    }
    if (blur_max) {
        float mx = 0;
        const float *b = bufs[0][res[0]];
        for (int64_t e = 0; e < M * V; e++) mx = b[e] > mx ? b[e] : mx;
        *blur_max = mx;
    }
    free(bufs[0][0]);
    free(bufs[0][1]);
}

void sfc_lattice_filter(const struct sfc_lattice *lat, const float *in,
                        float *out, int V, const float *in_scale,
                        const float *out_scale)
{
    lattice_filter(lat, in, out, V, in_scale, out_scale, NULL);
}

#if ROW_VEC
/* lattice_blur for binary16 rows: lattice k's splat targets bufs[k][0]
 * (float) are blurred into hbuf[k][0] (times mul[k]), then back and
 * forth between hbuf[k][0] and [1]; res[k] = the one holding the
 * result. Called by every thread of a parallel region (or one thread
 * outside one), with the split of lattice_blur. */
static void lattice_blur16(int n, const struct sfc_lattice *const *lat,
                           int V, float *(*bufs)[2], uint16_t *(*hbuf)[2],
                           const float *mul, int *res)
{
    int64_t cut[2] = {0, 0};
    int maxd = blur_split(n, lat, cut);
    for (int j = 0; j <= maxd; j++) {
        int p;
#pragma omp for schedule(static, 1)
        for (p = 0; p < 2; p++)
            for (int k = 0; k < n; k++) {
                if (j > lat[k]->d) continue;
                int64_t M = lat[k]->M;
                blur16_run(lat[k]->nbr + (int64_t)j * M * 2,
                           j ? NULL : bufs[k][0],
                           j ? hbuf[k][(j - 1) & 1] : NULL, mul[k],
                           hbuf[k][j & 1], V, p ? cut[k] : 0,
                           p ? M : cut[k]);
            }
    }
    for (int k = 0; k < n; k++) res[k] = lat[k]->d & 1;
}

/* sfc_lattice_filter with the blurred values in binary16 rows, as the
 * mean field of SFC_CRF_LATTICE: in (N, K) -> out (N, K), the values
 * times mul in the blur. */
static void lattice_filter16(const struct sfc_lattice *lat, const float *in,
                             float *out, int K, const float *in_scale,
                             const float *out_scale, float mul)
{
    int64_t M = lat->M, N = lat->N;
    int V = (K + 7) & ~7;
    float *bufs[1][2] = {{lattice_buf(lat, M + 1, V), NULL}};
    uint16_t *hbuf[1][2];
    for (int b = 0; b < 2; b++) {
        hbuf[0][b] = sfc_xmalloc_aligned((size_t)((M + 1) * V) * sizeof(uint16_t));
        memset(hbuf[0][b] + M * V, 0, (size_t)V * sizeof(uint16_t));
    }
    lattice_splat(lat, in, K, V, in_scale, bufs[0][0]);
    int res[1];
    lattice_blur16(1, &lat, V, bufs, hbuf, &mul, res);
    /* the binary16 rows as floats (exact), then the float slice */
    float *vals = bufs[0][0], *o = sfc_xmalloc_aligned((size_t)(N * V) * sizeof *o);
    for (int64_t e = 0; e < M * V; e++) vals[e] = sfc_f32_from_f16(hbuf[0][res[0]][e]);
    struct slice_src s = {lat, vals, out_scale, 1.0f / mul};
    slice_run(&s, 1, V, 0, N, o);
    for (int64_t i = 0; i < N; i++)
        memcpy(out + i * K, o + i * V, (size_t)K * sizeof *out);
    free(o);
    free(bufs[0][0]);
    free(hbuf[0][0]);
    free(hbuf[0][1]);
}
#endif

/* The power of two by which binary16 rows hold values of at most bound:
 * they stay at most 2^14, far from binary16's largest value (65504; the
 * roundings of the blur add at most 0.3 %) and far above its subnormals
 * (below 2^-14). */
static float f16_scale(double bound)
{
    if (!(bound > 0) || !isfinite(bound)) return 1.0f;
    int e;
    frexp(bound, &e); /* bound <= 2^e */
    return ldexpf(1.0f, SFC_MAX(-100, SFC_MIN(100, 14 - e)));
}

/* ==== dense CRF ======================================================== */

struct crf_kernel {
    int d;
    float compat;
    float *feat;              /* (N, d) */
    struct sfc_lattice *lat;  /* SFC_CRF_LATTICE only */
    float *norm;              /* (N) 1/sqrt(sum_j k_ij + 1e-20) */
    /* lattices: the mean field's weight of each corner (struct mf_lat):
     * bary * norm_i, (N, d+1) */
    float *w;
    /* lattices: a bound of the blurred splat of w * q for any q in
     * [0, 1]: max norm times the largest blurred splat of ones */
    double bound;
};

struct sfc_crf {
    int64_t N;
    enum sfc_crf_filter how;
    struct crf_kernel k[2];
};

/* Exact: out_i (+)= gain * n_i sum_j exp(-|f_i - f_j|^2/2) n_j in_j, in
 * double; n = NULL means ones. */
static void exact_filter(const struct crf_kernel *kn, int64_t N,
                         const float *in, int V, const float *n, float gain,
                         float *out, int accumulate)
{
    int d = kn->d;
    int64_t i;
#pragma omp parallel for schedule(dynamic, 16) if (N * N * (d + V) > PAR_MIN)
    for (i = 0; i < N; i++) {
        double acc[256];
        for (int k0 = 0; k0 < V; k0 += 256) {
            int nv = SFC_MIN(256, V - k0);
            for (int k = 0; k < nv; k++) acc[k] = 0;
            for (int64_t j = 0; j < N; j++) {
                double dist = 0;
                for (int c = 0; c < d; c++) {
                    double t = (double)kn->feat[i * d + c] - kn->feat[j * d + c];
                    dist += t * t;
                }
                double w = exp(-0.5 * dist) * (n ? n[j] : 1.0);
                for (int k = 0; k < nv; k++) acc[k] += w * in[j * V + k0 + k];
            }
            double s = gain * (n ? n[i] : 1.0);
            for (int k = 0; k < nv; k++) {
                float r = (float)(s * acc[k]);
                if (accumulate)
                    out[i * V + k0 + k] += r;
                else
                    out[i * V + k0 + k] = r;
            }
        }
    }
}

struct sfc_crf *sfc_crf_new(const uint8_t *rgb, int H, int W,
                            const struct sfc_crf_params *p,
                            enum sfc_crf_filter how)
{
    if (sfc_crf_params_check(p) < 0) return NULL;
    if (H < 1 || W < 1 || (int64_t)H * W > INT32_MAX / 8) {
        sfc_error("crf", "bad image size %dx%d", W, H);
        return NULL;
    }
    struct sfc_crf *crf = sfc_xcalloc(1, sizeof *crf);
    int64_t N = crf->N = (int64_t)H * W;
    crf->how = how;
    crf->k[0].d = 2;
    crf->k[0].compat = p->gauss_compat;
    crf->k[1].d = 5;
    crf->k[1].compat = p->bilat_compat;
    for (int m = 0; m < 2; m++)
        crf->k[m].feat = sfc_xmalloc((size_t)(N * crf->k[m].d) * sizeof(float));
    int y;
#pragma omp parallel for schedule(static) if (N * 8 > PAR_MIN / 4)
    for (y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int64_t i = (int64_t)y * W + x;
            float *g = crf->k[0].feat + i * 2, *b = crf->k[1].feat + i * 5;
            g[0] = x / p->gauss_sxy;
            g[1] = y / p->gauss_sxy;
            b[0] = x / p->bilat_sxy;
            b[1] = y / p->bilat_sxy;
            for (int c = 0; c < 3; c++) b[2 + c] = rgb[i * 3 + c] / p->bilat_srgb;
        }
    float *ones = sfc_xmalloc((size_t)N * sizeof *ones);
    for (int64_t i = 0; i < N; i++) ones[i] = 1.0f;
    for (int m = 0; m < 2; m++) {
        struct crf_kernel *kn = &crf->k[m];
        kn->norm = sfc_xmalloc((size_t)N * sizeof *kn->norm);
        float bmax = 0, nmax = 0;
        if (how != SFC_CRF_EXACT) {
            kn->lat = sfc_lattice_new(kn->feat, N, kn->d);
            if (!kn->lat) {
                free(ones);
                sfc_crf_free(crf);
                return NULL;
            }
            lattice_filter(kn->lat, ones, kn->norm, 1, NULL, NULL, &bmax);
        } else {
            exact_filter(kn, N, ones, 1, NULL, 1.0f, kn->norm, 0);
        }
        for (int64_t i = 0; i < N; i++) {
            kn->norm[i] = (float)(1.0 / sqrt((double)kn->norm[i] + 1e-20));
            nmax = kn->norm[i] > nmax ? kn->norm[i] : nmax;
        }
        kn->bound = (double)nmax * bmax;
        if (how != SFC_CRF_EXACT) {
            int d1 = kn->d + 1;
            const float *bary = kn->lat->bary;
            kn->w = sfc_xmalloc((size_t)(N * d1) * sizeof *kn->w);
            int64_t i;
#pragma omp parallel for schedule(static) if (N * d1 > PAR_MIN / 4)
            for (i = 0; i < N; i++)
                for (int r = 0; r < d1; r++)
                    kn->w[i * d1 + r] = bary[i * d1 + r] * kn->norm[i];
        }
    }
    free(ones);
    return crf;
}

void sfc_crf_free(struct sfc_crf *crf)
{
    if (!crf) return;
    for (int m = 0; m < 2; m++) {
        free(crf->k[m].feat);
        free(crf->k[m].norm);
        free(crf->k[m].w);
        sfc_lattice_free(crf->k[m].lat);
    }
    free(crf);
}

void sfc_crf_lattice_sizes(const struct sfc_crf *crf, int64_t m_out[2])
{
    for (int m = 0; m < 2; m++)
        m_out[m] = crf->k[m].lat ? crf->k[m].lat->M : 0;
}

void sfc_crf_message(const struct sfc_crf *crf, int kernel, const float *Q,
                     int K, float *out)
{
    SFC_ASSERT(kernel == 0 || kernel == 1);
    const struct crf_kernel *kn = &crf->k[kernel];
#if ROW_VEC
    if (crf->how == SFC_CRF_LATTICE) {
        /* the scale for values up to max |Q| instead of 1 */
        float qmax = 0;
        for (int64_t e = 0; e < crf->N * K; e++)
            qmax = fabsf(Q[e]) > qmax ? fabsf(Q[e]) : qmax;
        lattice_filter16(kn->lat, Q, out, K, kn->norm, kn->norm,
                         f16_scale(kn->bound * qmax));
        return;
    }
#endif
    if (crf->how != SFC_CRF_EXACT)
        sfc_lattice_filter(kn->lat, Q, out, K, kn->norm, kn->norm);
    else
        exact_filter(kn, crf->N, Q, K, kn->norm, 1.0f, out, 0);
}

/* Row width of the mean field: K rounded up to the kernels' block width;
 * the padding lanes of q are 0, of -U -1e30. */
static int row_width(int K)
{
#if ROW_VEC
    return K <= 4 ? 4 : (K + 7) & ~7;
#else
    return K;
#endif
}

/* binary16 rows: SFC_CRF_LATTICE where the compiler has vector types */
static int uses_f16(const struct sfc_crf *crf)
{
    return ROW_VEC && crf->how == SFC_CRF_LATTICE;
}

/* Row width of crf's mean field: binary16 rows are blocks of 8 */
static int crf_row_width(const struct sfc_crf *crf, int K)
{
    return uses_f16(crf) ? (K + 7) & ~7 : row_width(K);
}

static float *lane_mask(int K, int V)
{
    float *mask = sfc_xmalloc_aligned((size_t)V * sizeof *mask);
    for (int k = 0; k < V; k++) mask[k] = k < K ? 1.0f : 0.0f;
    return mask;
}

/* negU (N, V) = -U (N, K), padding lanes -1e30 */
static float *neg_unary(const float *U, int64_t N, int K, int V)
{
    float *negU = sfc_xmalloc_aligned((size_t)(N * V) * sizeof *negU);
    int64_t i;
#pragma omp parallel for schedule(static) if (N * V > PAR_MIN)
    for (i = 0; i < N; i++)
        for (int k = 0; k < V; k++)
            negU[i * V + k] = k < K ? -U[i * K + k] : -1e30f;
    return negU;
}

/* Mean field on the lattices. -U is negU (N, V) or, when negU is NULL,
 * row lab[i] of lut (K, V) (hard labels). Writes Q_out (N, K) and/or the
 * argmax lab_out (N; may be lab). Each pass slices the messages of the
 * previous one (none in the first: Q = softmax(-U)), updates q pixel by
 * pixel and splats it at once onto the lattices of the next pass, so q
 * never goes to memory. The splat runs in two fixed halves of the points
 * (scorner: a vertex of both halves gets a private row in the second),
 * then the private rows are added: sums in a fixed order whatever the
 * number of threads. */
static void crf_mf(const struct sfc_crf *crf, int K, int iters,
                   const float *negU, const uint8_t *lab, const float *lut,
                   float *Q_out, uint8_t *lab_out)
{
    int64_t N = crf->N, h = N / 2;
    int V = crf_row_width(crf, K), ns = 0, f16 = uses_f16(crf);
    size_t esz = f16 ? sizeof(uint16_t) : sizeof(float); /* of vals */
    float *mask = lane_mask(K, V);
    const struct sfc_lattice *lats[2];
    /* float rows: ping-pong bufs (splat targets, then blurred values);
     * binary16 rows: splat targets bufs[s][0], blurred values in hbuf */
    float *bufs[2][2] = {{NULL, NULL}, {NULL, NULL}};
    uint16_t *hbuf[2][2] = {{NULL, NULL}, {NULL, NULL}};
    float mul[2] = {1, 1};
    struct mf base = {0};
    base.K = K;
    base.negU = negU;
    base.lut = lut;
    base.lab = lab;
    base.mask = mask;
    for (int m = 0; m < 2; m++) {
        const struct crf_kernel *kn = &crf->k[m];
        if (kn->compat == 0) continue;
        const struct sfc_lattice *lat = lats[ns] = kn->lat;
        int64_t rows = lat->M + 1 + lat->Ms;
        for (int b = 0; b < 2 - f16; b++) bufs[ns][b] = lattice_buf(lat, rows, V);
        if (f16) {
            mul[ns] = f16_scale(kn->bound);
            for (int b = 0; b < 2; b++) {
                hbuf[ns][b] = sfc_xmalloc_aligned((size_t)(rows * V) *
                                                  sizeof(uint16_t));
                memset(hbuf[ns][b] + lat->M * V, 0, (size_t)V * sizeof(uint16_t));
            }
        }
        base.l[ns] = (struct mf_lat){lat->d + 1, lat->scorner, kn->w,
                                     kn->compat * lat->alpha / mul[ns], NULL,
                                     NULL};
        ns++;
    }
    base.n = ns;
    int64_t nsc[2] = {0, 0}, c;
    for (int s = 0; s < ns; s++) nsc[s] = nchunks(lats[s]->Ms);

#pragma omp parallel if (N * V * 8 > PAR_MIN)
    {
        int tgt[2] = {0, 0}, res[2] = {0, 0}; /* this thread's view */
        for (int it = 0; it <= iters; it++) {
            int last = it == iters;
            struct mf f = base;
            f.slice = it > 0;
            f.splat = !last;
            for (int s = 0; s < ns; s++) {
                f.l[s].vals = f16 ? (const void *)hbuf[s][res[s]]
                                  : (const void *)bufs[s][res[s]];
                f.l[s].tv = bufs[s][tgt[s]];
            }
            if (last) {
                f.Q_out = Q_out;
                f.lab_out = lab_out;
            }
            int p;
#pragma omp for schedule(static, 1)
            for (p = 0; p < 2; p++) {
                /* each half clears the rows it splats onto */
                for (int s = 0; s < (f.splat ? ns : 0); s++) {
                    const struct sfc_lattice *lat = lats[s];
                    float *t = f.l[s].tv;
                    if (p == 0) {
                        memset(t, 0, (size_t)(lat->MA * V) * sizeof *t);
                    } else {
                        memset(t + lat->MA * V, 0,
                               (size_t)((lat->M - lat->MA) * V) * sizeof *t);
                        memset(t + (lat->M + 1) * V, 0,
                               (size_t)(lat->Ms * V) * sizeof *t);
                    }
                }
#if ROW_VEC
                if (f16)
                    mf16_run(&f, V, p ? h : 0, p ? N : h);
                else
#endif
                    mf_run(&f, V, p ? h : 0, p ? N : h);
            }
            if (last) break;
            /* the private rows of shared vertices join their vertex */
#pragma omp for schedule(static)
            for (c = 0; c < nsc[0] + nsc[1]; c++) {
                int s = c >= nsc[0];
                const struct sfc_lattice *lat = lats[s];
                int64_t c0 = s ? c - nsc[0] : c;
                float *t = f.l[s].tv;
                for (int64_t q = c0 * CHUNK; q < SFC_MIN(lat->Ms, (c0 + 1) * CHUNK);
                     q++) {
                    float *o = t + (int64_t)lat->shared[q] * V;
                    const float *a = t + (lat->M + 1 + q) * V;
                    for (int k = 0; k < V; k++) o[k] += a[k];
                }
            }
#if ROW_VEC
            if (f16) {
                lattice_blur16(ns, lats, V, bufs, hbuf, mul, res);
            } else
#endif
            {
                lattice_blur(ns, lats, V, bufs, tgt, res);
                for (int s = 0; s < ns; s++) tgt[s] = res[s] ^ 1;
            }
            /* ... and get a copy of its blurred value: the second half
             * slices from its own rows too (scorner), so the passes
             * stream one index array per lattice */
#pragma omp for schedule(static)
            for (c = 0; c < nsc[0] + nsc[1]; c++) {
                int s = c >= nsc[0];
                const struct sfc_lattice *lat = lats[s];
                int64_t c0 = s ? c - nsc[0] : c;
                char *t = f16 ? (char *)hbuf[s][res[s]] : (char *)bufs[s][res[s]];
                size_t row = (size_t)V * esz;
                for (int64_t q = c0 * CHUNK; q < SFC_MIN(lat->Ms, (c0 + 1) * CHUNK);
                     q++)
                    memcpy(t + (size_t)(lat->M + 1 + q) * row,
                           t + (size_t)lat->shared[q] * row, row);
            }
        }
    }
    for (int s = 0; s < ns; s++)
        for (int b = 0; b < 2; b++) {
            free(bufs[s][b]);
            free(hbuf[s][b]);
        }
    free(mask);
}

/* Mean field with exact sums (tests): -U is negU (N, V). */
static void crf_mf_exact(const struct sfc_crf *crf, int K, int iters,
                         const float *negU, float *Q_out)
{
    int64_t N = crf->N;
    int V = row_width(K);
    float *mask = lane_mask(K, V);
    float *z = sfc_xmalloc_aligned((size_t)(N * V) * sizeof *z);
    float *x = sfc_xmalloc((size_t)(N * K) * sizeof *x);
    struct mf f = {0};
    f.K = K;
    f.negU = z;
    f.mask = mask;
    f.Q_out = Q_out;
    memcpy(z, negU, (size_t)(N * V) * sizeof *z);
    mf_run(&f, V, 0, N);
    for (int it = 0; it < iters; it++) {
        /* z = sum of compat * message - U, then q = softmax(z) */
        int first = 1;
        for (int m = 0; m < 2; m++)
            if (crf->k[m].compat != 0) {
                exact_filter(&crf->k[m], N, Q_out, K, crf->k[m].norm,
                             crf->k[m].compat, x, !first);
                first = 0;
            }
        for (int64_t i = 0; i < N; i++)
            for (int k = 0; k < K; k++)
                z[i * V + k] = (first ? 0.0f : x[i * K + k]) + negU[i * V + k];
        mf_run(&f, V, 0, N);
    }
    free(x);
    free(z);
    free(mask);
}

void sfc_crf_inference(const struct sfc_crf *crf, const float *U, int K,
                       int iters, float *Q_out)
{
    float *negU = neg_unary(U, crf->N, K, crf_row_width(crf, K));
    if (crf->how != SFC_CRF_EXACT)
        crf_mf(crf, K, iters, negU, NULL, NULL, Q_out, NULL);
    else
        crf_mf_exact(crf, K, iters, negU, Q_out);
    free(negU);
}

void sfc_crf_unary_from_labels(const uint8_t *lab, int64_t N, int K,
                               float gt_prob, float *U)
{
    SFC_ASSERT(K >= 2);
    float pe = (float)-log((double)gt_prob);
    float ne = (float)-log((1.0 - gt_prob) / (K - 1));
    for (int64_t i = 0; i < N; i++) {
        SFC_ASSERT(lab[i] < K);
        for (int k = 0; k < K; k++) U[i * K + k] = ne;
        U[i * K + lab[i]] = pe;
    }
}

void sfc_crf_unary_from_prob(const float *prob, int64_t N, int K, float clip,
                             float *U)
{
    for (int k = 0; k < K; k++)
        for (int64_t i = 0; i < N; i++) {
            float p = prob[k * N + i];
            U[i * K + k] = (float)-log((double)(p > clip ? p : clip));
        }
}

void sfc_crf_argmax(const float *Q, int64_t N, int K, uint8_t *out)
{
    for (int64_t i = 0; i < N; i++) {
        const float *q = Q + i * K;
        int best = 0;
        for (int k = 1; k < K; k++)
            if (q[k] > q[best]) best = k;
        out[i] = (uint8_t)best;
    }
}

static int crf_label_with(const struct sfc_crf *crf, const uint8_t *lab,
                          int K, const struct sfc_crf_params *p,
                          uint8_t *out)
{
    int64_t N = crf->N;
    if (crf->how != SFC_CRF_EXACT) {
        /* -U of each label, as sfc_crf_unary_from_labels makes it */
        uint8_t ids[256];
        for (int k = 0; k < K; k++) ids[k] = (uint8_t)k;
        float *Uk = sfc_xmalloc((size_t)(K * K) * sizeof *Uk);
        sfc_crf_unary_from_labels(ids, K, K, p->gt_prob, Uk);
        float *lut = neg_unary(Uk, K, K, crf_row_width(crf, K));
        crf_mf(crf, K, p->iters, NULL, lab, lut, NULL, out);
        free(lut);
        free(Uk);
        return 0;
    }
    float *U = sfc_xmalloc_aligned((size_t)(N * K) * sizeof *U);
    float *Q = sfc_xmalloc_aligned((size_t)(N * K) * sizeof *Q);
    sfc_crf_unary_from_labels(lab, N, K, p->gt_prob, U);
    sfc_crf_inference(crf, U, K, p->iters, Q);
    sfc_crf_argmax(Q, N, K, out);
    free(U);
    free(Q);
    return 0;
}

int sfc_crf_label(const uint8_t *rgb, int H, int W, const uint8_t *lab,
                  int K, const struct sfc_crf_params *p,
                  enum sfc_crf_filter how, uint8_t *out)
{
    if (K < 1 || K > 256) return sfc_error("crf", "bad label count %d", K);
    if (sfc_crf_params_check(p) < 0) return -1;
    int64_t N = (int64_t)H * W;
    for (int64_t i = 0; i < N; i++)
        if (lab[i] >= K)
            return sfc_error("crf", "label %d at pixel %lld not below %d",
                             lab[i], (long long)i, K);
    if (K == 1) {
        memset(out, 0, (size_t)N);
        return 0;
    }
    struct sfc_crf *crf = sfc_crf_new(rgb, H, W, p, how);
    if (!crf) return -1;
    int rc = crf_label_with(crf, lab, K, p, out);
    sfc_crf_free(crf);
    return rc;
}

/* ==== IR-label rules =================================================== */

void sfc_ir_score(const float *cam_w, const float *cam_p, int64_t N,
                     int K, float w_w, float w_p, float *S)
{
    for (int64_t i = 0; i < (int64_t)K * N; i++)
        S[i] = w_w * cam_w[i] + w_p * cam_p[i];
}

void sfc_ir_argmax(const float *S, int64_t N, int K, float bg_scale,
                    uint8_t *out)
{
    for (int64_t i = 0; i < N; i++) {
        float best = bg_scale * S[i];
        int bk = 0;
        for (int k = 1; k < K; k++)
            if (S[k * N + i] > best) best = S[k * N + i], bk = k;
        out[i] = (uint8_t)bk;
    }
}

void sfc_ir_argmax_irn(const float *S, int64_t N, int K, float thresh,
                       uint8_t *out)
{
    float *inv = sfc_xmalloc((size_t)K * sizeof *inv);
    for (int k = 1; k < K; k++) {
        float mx = -INFINITY;
        for (int64_t i = 0; i < N; i++)
            if (S[k * N + i] > mx) mx = S[k * N + i];
        inv[k] = 1.0f / (mx + 1e-5f);
    }
    for (int64_t i = 0; i < N; i++) {
        float best = thresh;
        int bk = 0;
        for (int k = 1; k < K; k++) {
            float v = S[k * N + i] * inv[k];
            if (v > best) best = v, bk = k;
        }
        out[i] = (uint8_t)bk;
    }
    free(inv);
}

void sfc_ir_combine(const uint8_t *fg, const uint8_t *bg, int64_t N,
                    uint8_t *out)
{
    for (int64_t i = 0; i < N; i++)
        out[i] = fg[i] ? fg[i] : (bg[i] ? 255 : 0);
}

int sfc_ir_label(const uint8_t *rgb, int H, int W, const float *cam_w,
                 const float *cam_p, const int64_t *keys, int K,
                 const struct sfc_ir_params *p, enum sfc_crf_filter how,
                 uint8_t *out)
{
    if (K < 1 || K > 255) return sfc_error("keys", "bad class count %d", K);
    if (keys[0] != 0)
        return sfc_error("keys", "keys[0] is %lld, not 0 (background)",
                         (long long)keys[0]);
    for (int k = 1; k < K; k++)
        if (keys[k] < 1 || keys[k] > 254)
            return sfc_error("keys", "class id %lld not in [1, 254]",
                             (long long)keys[k]);
    if (p->rule != SFC_IR_SFC && p->rule != SFC_IR_IRN &&
        p->rule != SFC_IR_CAMCRF)
        return sfc_error("crf", "unknown IR-label rule %d", (int)p->rule);
    if (sfc_crf_params_check(&p->crf) < 0) return -1;

    int64_t N = (int64_t)H * W;
    float *S = sfc_xmalloc((size_t)(N * K) * sizeof *S);
    uint8_t *a = sfc_xmalloc((size_t)N), *b = sfc_xmalloc((size_t)N);
    sfc_ir_score(cam_w, cam_p, N, K, p->w_w, p->w_p, S);
    switch (p->rule) {
    case SFC_IR_SFC:
        sfc_ir_argmax(S, N, K, 1.0f, a);
        sfc_ir_argmax(S, N, K, p->bg_scale, b);
        break;
    case SFC_IR_IRN:
        sfc_ir_argmax_irn(S, N, K, p->conf_fg, a);
        sfc_ir_argmax_irn(S, N, K, p->conf_bg, b);
        break;
    case SFC_IR_CAMCRF:
        sfc_ir_argmax(S, N, K, 1.0f, a);
        break;
    }
    free(S);

    int rc = 0;
    if (K > 1) {
        /* one lattice per image, shared by both maps */
        struct sfc_crf *crf = sfc_crf_new(rgb, H, W, &p->crf, how);
        if (!crf) {
            rc = -1;
        } else {
            crf_label_with(crf, a, K, &p->crf, a);
            if (p->rule != SFC_IR_CAMCRF) crf_label_with(crf, b, K, &p->crf, b);
            sfc_crf_free(crf);
        }
    } else {
        memset(a, 0, (size_t)N);
        memset(b, 0, (size_t)N);
    }
    if (rc == 0 && p->rule == SFC_IR_CAMCRF) {
        for (int64_t i = 0; i < N; i++) out[i] = (uint8_t)keys[a[i]];
    } else if (rc == 0) {
        for (int64_t i = 0; i < N; i++) {
            a[i] = (uint8_t)keys[a[i]];
            b[i] = (uint8_t)keys[b[i]];
        }
        sfc_ir_combine(a, b, N, out);
    }
    free(a);
    free(b);
    return rc;
}
