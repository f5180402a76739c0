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
 * Invariants: the blur and the slice are gathers and the splat sums each
 * vertex in a fixed order (two fixed halves of the points, each in point
 * order), so results are bit-identical for any number of threads; vertex
 * ids are assigned in point order by a sequential hash insertion. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "crf.h"
#include "err.h" /* defines: sfc_error */
#include "util.h"

/* Loops with less work than this (in multiply-adds, roughly) run on one
 * thread: a parallel region and its barriers cost more than they save on
 * small images, and far more when the machine is oversubscribed. */
#define PAR_MIN (1 << 20)

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
};

/* Lift one feature vector, find its simplex: writes the d+1 corner keys
 * (d coordinates each) and barycentric weights. Adams et al. 2010 §4. */
static void lattice_point(const float *f, int d, const double *scale,
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
    for (int i = 0; i <= d; i++) {
        double r = floor(el[i] / d1 + 0.5);
        rem0[i] = r * d1;
        sum += (int)r;
    }
    /* rank of each coordinate's residual, 0 = largest (ties by index) */
    for (int i = 0; i <= d; i++) rank[i] = 0;
    for (int i = 0; i < d; i++)
        for (int j = i + 1; j <= d; j++) {
            if (el[i] - rem0[i] < el[j] - rem0[j])
                rank[i]++;
            else
                rank[j]++;
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
        double v = (el[i] - rem0[i]) / d1;
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
    return lat;
}

void sfc_lattice_free(struct sfc_lattice *lat)
{
    if (!lat) return;
    free(lat->corner);
    free(lat->bary);
    free(lat->nbr);
    free(lat);
}

int64_t sfc_lattice_size(const struct sfc_lattice *lat) { return lat->M; }

/* Row kernels over V values. Rows never overlap (restrict), and V = 4
 * (K <= 4, the usual IR-label case) gets a fixed-length copy the compiler
 * turns into single vector operations. */
static inline void row_axpy(float *restrict o, float w,
                            const float *restrict x, int V)
{
    if (V == 4) {
        for (int k = 0; k < 4; k++) o[k] += w * x[k];
    } else {
#pragma omp simd
        for (int k = 0; k < V; k++) o[k] += w * x[k];
    }
}

static inline void row_ax(float *restrict o, float w, const float *restrict x,
                          int V)
{
    if (V == 4) {
        for (int k = 0; k < 4; k++) o[k] = w * x[k];
    } else {
#pragma omp simd
        for (int k = 0; k < V; k++) o[k] = w * x[k];
    }
}

static inline void row_blur(float *restrict r, const float *restrict o,
                            const float *restrict n1,
                            const float *restrict n2, int V)
{
    if (V == 4) {
        for (int k = 0; k < 4; k++) r[k] = o[k] + 0.5f * (n1[k] + n2[k]);
    } else {
#pragma omp simd
        for (int k = 0; k < V; k++) r[k] = o[k] + 0.5f * (n1[k] + n2[k]);
    }
}

/* Splat and blur V values per point; a and b are caller buffers of (M+1,
 * V) floats; returns the one holding the result (row M is zero). The values of point i are scaled by in_scale[i].
 * The splat scatters in point order: the first half of the points into
 * one buffer, the second half into another (each by one thread), then the
 * two are added. The halves are fixed, so the sums are the same whatever
 * the number of threads. */
static float *lattice_splat_blur(const struct sfc_lattice *lat,
                                 const float *in, int V,
                                 const float *in_scale, float *a, float *b)
{
    int64_t M = lat->M, N = lat->N;
    int d = lat->d, d1 = d + 1;
    size_t n = (size_t)(M + 1) * V;
    int64_t v;
#pragma omp parallel if (N * d1 * V > PAR_MIN)
    {
        int h;
#pragma omp for schedule(static, 1)
        for (h = 0; h < 2; h++) {
            float *acc = h ? b : a;
            memset(acc, 0, n * sizeof *acc);
            for (int64_t i = h ? N / 2 : 0; i < (h ? N : N / 2); i++) {
                const float *x = in + i * V;
                float s = in_scale ? in_scale[i] : 1.0f;
                for (int r = 0; r < d1; r++) {
                    float w = lat->bary[i * d1 + r] * s;
                    row_axpy(acc + (int64_t)lat->corner[i * d1 + r] * V, w, x,
                             V);
                }
            }
        }
#pragma omp for schedule(static)
        for (v = 0; v < M * V; v++) a[v] += b[v];
        /* blur along each axis j: dst = src + (left + right)/2, the two
         * buffers alternating (the loop's barrier ends each pass) */
        for (int j = 0; j <= d; j++) {
            const int32_t *nb = lat->nbr + (int64_t)j * M * 2;
            const float *src = j & 1 ? b : a;
            float *dst = j & 1 ? a : b;
#pragma omp for schedule(static)
            for (v = 0; v < M; v++) {
                row_blur(dst + v * V, src + v * V, src + (int64_t)nb[2 * v] * V,
                         src + (int64_t)nb[2 * v + 1] * V, V);
            }
        }
    }
    return d & 1 ? a : b;
}

/* exp(x) for x <= 0 in plain float arithmetic that vectorises: x = n ln2 +
 * r with |r| <= ln2/2 (ln2 split in two for exactness), exp(r) by its
 * Taylor polynomial to degree 7 (relative error < 2e-7 incl. rounding),
 * times 2^n built in the exponent bits. x < -87 gives exp(-87) (> 0).
 * The clamp compares bit patterns (for x <= 0 a larger pattern is a
 * larger magnitude): a float comparison would keep the loop from
 * vectorising under the default -ftrapping-math. */
static inline float exp_nonpos(float x)
{
    union {
        float f;
        uint32_t u;
    } c = {.f = x};
    c.u = c.u > 0xC2AE0000u ? 0xC2AE0000u : c.u; /* 0xC2AE0000 = -87.0f */
    x = c.f;
    int32_t n = (int32_t)(x * 1.44269504f - 0.5f); /* round to nearest */
    float fn = (float)n;
    float r = (x - fn * 0.693359375f) + fn * 2.12194440e-4f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union {
        int32_t i;
        float f;
    } two_n = {.i = (n + 127) * (1 << 23)};
    return p * two_n.f;
}

/* q = softmax(x - u) over the first K of V lanes, the other lanes of q
 * set to 0; x (V) may be NULL (zeros), u is (K). The exponentials run over
 * all V lanes (the padding holds -inf and is zeroed after), so they
 * vectorise even for K < 4. x may equal q. V is a multiple of 4. */
static inline void softmax_row(const float *x, const float *u, int K, int V,
                               float *q)
{
    if (x) {
#pragma omp simd
        for (int k = 0; k < K; k++) q[k] = x[k] - u[k];
    } else {
        for (int k = 0; k < K; k++) q[k] = -u[k];
    }
    for (int k = K; k < V; k++) q[k] = -INFINITY;
    float mx = q[0];
    if (V == 4) { /* fixed length: single vector operations */
        for (int k = 1; k < 4; k++) mx = q[k] > mx ? q[k] : mx;
        for (int k = 0; k < 4; k++) q[k] = exp_nonpos(q[k] - mx);
    } else {
        /* max is exact in any order */
#pragma omp simd reduction(max : mx)
        for (int k = 1; k < V; k++) mx = q[k] > mx ? q[k] : mx;
#pragma omp simd
        for (int k = 0; k < V; k++) q[k] = exp_nonpos(q[k] - mx);
    }
    for (int k = K; k < V; k++) q[k] = 0;
    /* the sum in four interleaved partial sums (V is a multiple of 4 and
     * the padding is 0): a fixed order, and no serial chain of K adds */
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int k = 0; k < V; k += 4) {
        s0 += q[k];
        s1 += q[k + 1];
        s2 += q[k + 2];
        s3 += q[k + 3];
    }
    float inv = 1.0f / ((s0 + s1) + (s2 + s3));
    if (V == 4) {
        for (int k = 0; k < 4; k++) q[k] *= inv;
    } else {
#pragma omp simd
        for (int k = 0; k < V; k++) q[k] *= inv;
    }
}

/* Q_i = softmax(x_i - U_i) per pixel; x (N, V) may be NULL, U (N, K). */
static void softmax_rows(const float *x, const float *U, int64_t N, int K,
                         int V, float *Q)
{
    int64_t i;
#pragma omp parallel for schedule(static) if (N * K > PAR_MIN)
    for (i = 0; i < N; i++)
        softmax_row(x ? x + i * V : NULL, U + i * K, K, V, Q + i * V);
}

/* Slice: out_i (+)= sum_r (out_scale_i * alpha * gain * bary_ir) *
 * vals[corner_ir], accumulated into the output row corner by corner.
 * With Q != NULL, each finished row then gives Q_i = softmax(out_i - U_i)
 * (U (N, K)) while it is in cache: the mean-field update fused in. */
static void lattice_slice(const struct sfc_lattice *lat, const float *vals,
                          int V, const float *out_scale, float gain,
                          float *out, int accumulate, const float *U, int K,
                          float *Q)
{
    int d1 = lat->d + 1;
    int64_t i;
#pragma omp parallel for schedule(static) if (lat->N * d1 * V > PAR_MIN)
    for (i = 0; i < lat->N; i++) {
        float *o = out + i * V;
        float s = lat->alpha * gain * (out_scale ? out_scale[i] : 1.0f);
        const int32_t *c = lat->corner + i * d1;
        const float *b = lat->bary + i * d1;
        const float *x = vals + (int64_t)c[0] * V;
        float w = b[0] * s;
        if (accumulate)
            row_axpy(o, w, x, V);
        else
            row_ax(o, w, x, V);
        for (int r = 1; r < d1; r++)
            row_axpy(o, b[r] * s, vals + (int64_t)c[r] * V, V);
        if (Q) softmax_row(o, U + i * K, K, V, Q + i * V);
    }
}

void sfc_lattice_filter(const struct sfc_lattice *lat, const float *in,
                        float *out, int V, const float *in_scale,
                        const float *out_scale)
{
    size_t n = (size_t)(lat->M + 1) * V;
    float *a = sfc_xmalloc_aligned(n * sizeof *a);
    float *b = sfc_xmalloc_aligned(n * sizeof *b);
    float *vals = lattice_splat_blur(lat, in, V, in_scale, a, b);
    lattice_slice(lat, vals, V, out_scale, 1.0f, out, 0, NULL, 0, NULL);
    free(a);
    free(b);
}

/* ==== dense CRF ======================================================== */

struct crf_kernel {
    int d;
    float compat;
    float *feat;              /* (N, d) */
    struct sfc_lattice *lat;  /* SFC_CRF_LATTICE only */
    float *norm;              /* (N) 1/sqrt(sum_j k_ij + 1e-20) */
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
    for (int y = 0; y < H; y++)
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
        if (how == SFC_CRF_LATTICE) {
            kn->lat = sfc_lattice_new(kn->feat, N, kn->d);
            if (!kn->lat) {
                free(ones);
                sfc_crf_free(crf);
                return NULL;
            }
            sfc_lattice_filter(kn->lat, ones, kn->norm, 1, NULL, NULL);
        } else {
            exact_filter(kn, N, ones, 1, NULL, 1.0f, kn->norm, 0);
        }
        for (int64_t i = 0; i < N; i++)
            kn->norm[i] = (float)(1.0 / sqrt((double)kn->norm[i] + 1e-20));
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
        sfc_lattice_free(crf->k[m].lat);
    }
    free(crf);
}

/* Scratch of one inference: two lattice buffers for the larger lattice. */
struct crf_scratch {
    float *a, *b;
};

static void scratch_init(struct crf_scratch *w, const struct sfc_crf *crf,
                         int V)
{
    int64_t M = 0;
    for (int m = 0; m < 2; m++)
        if (crf->k[m].lat && crf->k[m].lat->M > M) M = crf->k[m].lat->M;
    size_t n = (size_t)(M + 1) * V;
    w->a = crf->how == SFC_CRF_LATTICE ? sfc_xmalloc_aligned(n * sizeof(float))
                                       : NULL;
    w->b = crf->how == SFC_CRF_LATTICE ? sfc_xmalloc_aligned(n * sizeof(float))
                                       : NULL;
}

static void scratch_release(struct crf_scratch *w)
{
    free(w->a);
    free(w->b);
}

/* out (+)= gain * normalised message of kernel m; Q and out (N, V). With
 * U != NULL (lattice only) the slice also updates Q = softmax(out - U). */
static void crf_message(const struct sfc_crf *crf, int m, float *Q, int V,
                        float gain, float *out, int accumulate,
                        struct crf_scratch *w, const float *U, int K)
{
    const struct crf_kernel *kn = &crf->k[m];
    if (crf->how == SFC_CRF_LATTICE) {
        float *vals = lattice_splat_blur(kn->lat, Q, V, kn->norm, w->a, w->b);
        lattice_slice(kn->lat, vals, V, kn->norm, gain, out, accumulate, U,
                      K, U ? Q : NULL);
    } else {
        SFC_ASSERT(U == NULL);
        exact_filter(kn, crf->N, Q, V, kn->norm, gain, out, accumulate);
    }
}

void sfc_crf_message(const struct sfc_crf *crf, int kernel, const float *Q,
                     int K, float *out)
{
    SFC_ASSERT(kernel == 0 || kernel == 1);
    struct crf_scratch w;
    scratch_init(&w, crf, K);
    crf_message(crf, kernel, (float *)Q, K, 1.0f, out, 0, &w, NULL, 0);
    scratch_release(&w);
}

void sfc_crf_inference(const struct sfc_crf *crf, const float *U, int K,
                       int iters, float *Q_out)
{
    /* rows padded to a multiple of 4 lanes (zeros in Q) for the vector
     * loops of the lattice */
    int64_t N = crf->N;
    int V = (K + 3) & ~3;
    float *x = sfc_xmalloc_aligned((size_t)(N * V) * sizeof *x);
    float *Q = sfc_xmalloc_aligned((size_t)(N * V) * sizeof *Q);
    memset(Q, 0, (size_t)(N * V) * sizeof *Q);
    struct crf_scratch w;
    scratch_init(&w, crf, V);
    softmax_rows(NULL, U, N, K, V, Q);
    int last = -1; /* the last kernel with a weight */
    for (int m = 0; m < 2; m++)
        if (crf->k[m].compat != 0) last = m;
    int fuse = last >= 0 && crf->how == SFC_CRF_LATTICE;
    for (int it = 0; it < iters; it++) {
        /* x = sum of compat * message; Potts: energy -compat * message,
         * so Q = softmax(x - U), fused into the last slice when it can */
        int first = 1;
        for (int m = 0; m <= last; m++)
            if (crf->k[m].compat != 0) {
                crf_message(crf, m, Q, V, crf->k[m].compat, x, !first, &w,
                            fuse && m == last ? U : NULL, K);
                first = 0;
            }
        if (!fuse) softmax_rows(last < 0 ? NULL : x, U, N, K, V, Q);
    }
    for (int64_t i = 0; i < N; i++)
        memcpy(Q_out + i * K, Q + i * V, (size_t)K * sizeof *Q);
    scratch_release(&w);
    free(x);
    free(Q);
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
