/* SPDX-License-Identifier: MIT */
/* coco.c: MS COCO instance annotations (see coco.h for the formats and
 * the rendering rules).
 *
 * The file is parsed in 256 KB chunks by yajl's event parser into flat
 * arrays (one record per image / annotation / category, polygon points,
 * RLE runs and strings side by side), so memory grows with the numbers in
 * the file and never holds a tree: the 450 MB COCO 2014 train file needs
 * about 0.4 GB (BENCHMARKS.md, bench-coco). Categories come after the
 * annotations in the official files, so every check that needs them runs
 * after the parse, in file order, and the first failure is reported with
 * its annotation id.
 *
 * The polygon fill is written from pycocotools' mask semantics
 * (common/maskApi.c: rleFrPoly upsamples the polygon 5 times and toggles
 * each column at ceil of the edge's crossing), stated exactly: the point
 * (x, y) of pixel (column x, row y) is tested against the polygon by the
 * crossing number of its column. The RLE string codec follows the format
 * description of rleToString / rleFrString. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "coco.h"
#include "err.h"
#include "util.h"

#define CHUNK (256 * 1024)
#define MAX_DEPTH 32

/* ------------------------------------------------------- growable arrays */

#define GROW(arr, n, cap)                                                    \
    do {                                                                     \
        if ((n) >= (cap)) {                                                  \
            (cap) = (cap) ? 2 * (cap) : 64;                                  \
            (arr) = sfc_xrealloc((arr), (cap) * sizeof *(arr));              \
        }                                                                    \
    } while (0)

/* ------------------------------------------------------------- parsing */

enum role {
    R_ROOT, R_IGNORE, R_IMAGES, R_ANNS, R_CATS, /* top and section arrays */
    R_IMG, R_ANN, R_CAT,                        /* records (objects) */
    R_POLYS, R_POLY, R_RLE, R_COUNTS, R_SIZE
};
enum field {
    F_OTHER, F_ID, F_FILE, F_WIDTH, F_HEIGHT, F_IMAGE_ID, F_CATEGORY_ID,
    F_ISCROWD, F_SEG, F_NAME, F_COUNTS, F_SIZE
};

struct frame {
    enum role role;
    int is_map;
    enum field key; /* maps: the key of the value being read */
};

struct parser {
    struct sfc_coco *c;
    yajl_handle h;
    struct frame st[MAX_DEPTH];
    int depth; /* st[depth - 1] is the innermost open container */
    size_t cap_img, cap_ann, cap_plen, cap_xy, cap_counts, cap_str, cap_cat;
    /* the record being read */
    int have_id, have_image, have_cat, have_w, have_h, have_seg;
    long rec;             /* its index in its section */
    char err[512];        /* a problem found inside the record, reported
                             when it ends (its id may come last) */
    int64_t last_ann_id;  /* the last complete annotation, for syntax errors */
    int in_ann;
    long n_size;
    int fail;             /* -1: error slot set, stop */
    size_t poly_start;    /* R_POLY: first coordinate of the polygon */
};

static int p_fail(struct parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int p_fail(struct parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sfc_verror(p->c->path, fmt, ap);
    va_end(ap);
    p->fail = -1;
    return 0; /* tells yajl to stop */
}

/* A problem inside the current record: remembered, the record read on. */
static void rec_err(struct parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void rec_err(struct parser *p, const char *fmt, ...)
{
    if (p->err[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
}

static const char *section_name(enum role r)
{
    return r == R_IMAGES ? "images" : r == R_ANNS ? "annotations"
                                                  : "categories";
}

/* The role of a new value inside the innermost container, given whether
 * it is a container (and which kind); also checks scalars' places. */
enum vkind { V_MAP, V_ARRAY, V_NUM, V_STR, V_OTHER };

static enum role child_role(struct parser *p, enum vkind k)
{
    if (p->depth == 0) {
        if (k != V_MAP) rec_err(p, "the document is not a JSON object");
        return k == V_MAP ? R_ROOT : R_IGNORE;
    }
    struct frame *f = &p->st[p->depth - 1];
    switch (f->role) {
    case R_ROOT:
        if (f->key == F_OTHER) return R_IGNORE;
        if (k != V_ARRAY) {
            p_fail(p, "'%s' is not an array",
                   section_name((enum role)f->key));
            return R_IGNORE;
        }
        return (enum role)f->key;
    case R_IMAGES: case R_ANNS: case R_CATS:
        if (k != V_MAP) {
            p_fail(p, "an item of '%s' is not an object",
                   section_name(f->role));
            return R_IGNORE;
        }
        return f->role == R_IMAGES ? R_IMG : f->role == R_ANNS ? R_ANN
                                                               : R_CAT;
    case R_ANN:
        if (f->key == F_SEG) {
            if (k == V_ARRAY) return R_POLYS;
            if (k == V_MAP) return R_RLE;
            rec_err(p, "segmentation is neither polygons nor RLE");
            return R_IGNORE;
        }
        /* fall through */
    case R_IMG: case R_CAT:
        if (f->key == F_OTHER) return R_IGNORE;
        if (k == V_MAP || k == V_ARRAY)
            rec_err(p, "a field holds an %s where a value belongs",
                    k == V_MAP ? "object" : "array");
        return R_IGNORE;
    case R_POLYS:
        if (k != V_ARRAY) rec_err(p, "a polygon is not an array");
        return k == V_ARRAY ? R_POLY : R_IGNORE;
    case R_POLY:
        if (k != V_NUM) rec_err(p, "a polygon holds a non-number");
        return R_IGNORE;
    case R_RLE:
        if (f->key == F_COUNTS) {
            if (k == V_ARRAY) return R_COUNTS;
            if (k != V_STR) rec_err(p, "RLE counts are neither a list nor "
                                       "a string");
            return R_IGNORE;
        }
        if (f->key == F_SIZE) {
            if (k != V_ARRAY) rec_err(p, "RLE size is not [h, w]");
            return k == V_ARRAY ? R_SIZE : R_IGNORE;
        }
        return R_IGNORE;
    case R_COUNTS: case R_SIZE:
        if (k != V_NUM)
            rec_err(p, "RLE %s holds a non-number",
                    f->role == R_COUNTS ? "counts" : "size");
        return R_IGNORE;
    case R_IGNORE:
        return R_IGNORE;
    }
    return R_IGNORE;
}

static int push(struct parser *p, enum role r, int is_map)
{
    if (p->depth >= MAX_DEPTH)
        return p_fail(p, "JSON nested deeper than %d", MAX_DEPTH);
    p->st[p->depth].role = r;
    p->st[p->depth].is_map = is_map;
    p->st[p->depth].key = F_OTHER;
    p->depth++;
    return 1;
}

static void begin_record(struct parser *p, enum role r)
{
    struct sfc_coco *c = p->c;
    p->have_id = p->have_image = p->have_cat = p->have_w = p->have_h = 0;
    p->have_seg = 0;
    p->err[0] = '\0';
    if (r == R_IMG) {
        GROW(c->images, (size_t)c->n_images, p->cap_img);
        memset(&c->images[c->n_images], 0, sizeof *c->images);
        p->rec = c->n_images++;
    } else if (r == R_ANN) {
        GROW(c->anns, (size_t)c->n_anns, p->cap_ann);
        memset(&c->anns[c->n_anns], 0, sizeof *c->anns);
        c->anns[c->n_anns].kind = SFC_COCO_POLY;
        c->anns[c->n_anns].off = c->n_plen;
        c->anns[c->n_anns].xy = c->n_xy;
        p->rec = c->n_anns++;
        p->in_ann = 1;
    } else {
        GROW(c->cat_ids, (size_t)c->n_cats, p->cap_cat);
        c->cat_names = sfc_xrealloc(c->cat_names,
                                    p->cap_cat * sizeof *c->cat_names);
        c->cat_ids[c->n_cats] = 0;
        c->cat_names[c->n_cats] = NULL;
        p->rec = c->n_cats++;
    }
}

static int end_record(struct parser *p, enum role r)
{
    struct sfc_coco *c = p->c;
    if (r == R_ANN) {
        struct sfc_coco_ann *a = &c->anns[p->rec];
        p->in_ann = 0;
        if (!p->have_id)
            return p_fail(p, "annotation #%ld (no id): %s", p->rec + 1,
                          p->err[0] ? p->err : "no 'id'");
        if (p->err[0])
            return p_fail(p, "annotation %lld: %s", (long long)a->id,
                          p->err);
        if (!p->have_image || !p->have_cat || !p->have_seg)
            return p_fail(p, "annotation %lld: no '%s'", (long long)a->id,
                          !p->have_image ? "image_id"
                          : !p->have_cat ? "category_id" : "segmentation");
        p->last_ann_id = a->id;
        return 1;
    }
    const char *what = r == R_IMG ? "image" : "category";
    int64_t id = r == R_IMG ? c->images[p->rec].id : c->cat_ids[p->rec];
    if (!p->have_id)
        return p_fail(p, "%s #%ld: no 'id'", what, p->rec + 1);
    if (p->err[0])
        return p_fail(p, "%s %lld: %s", what, (long long)id, p->err);
    if (r == R_IMG) {
        const struct sfc_coco_image *im = &c->images[p->rec];
        if (!im->file || !p->have_w || !p->have_h)
            return p_fail(p, "image %lld: no '%s'", (long long)id,
                          !im->file ? "file_name" : !p->have_w ? "width"
                                                               : "height");
    } else if (!c->cat_names[p->rec]) {
        return p_fail(p, "category %lld: no 'name'", (long long)id);
    }
    return 1;
}

static int on_start(struct parser *p, int is_map)
{
    enum role r = child_role(p, is_map ? V_MAP : V_ARRAY);
    if (p->fail) return 0;
    if (r == R_IMG || r == R_ANN || r == R_CAT) begin_record(p, r);
    if (r == R_POLYS) p->have_seg = 1;
    if (r == R_RLE) {
        struct sfc_coco_ann *a = &p->c->anns[p->rec];
        p->have_seg = 1;
        a->kind = SFC_COCO_RLE;
        a->off = p->c->n_counts;
        a->n = 0;
        a->rle_h = a->rle_w = -1;
    }
    if (r == R_POLY) {
        GROW(p->c->plen, p->c->n_plen, p->cap_plen);
        p->c->plen[p->c->n_plen] = 0;
        p->poly_start = p->c->n_xy;
    }
    if (r == R_SIZE) p->n_size = 0;
    return push(p, r, is_map);
}

static int cb_start_map(void *ctx) { return on_start(ctx, 1); }
static int cb_start_array(void *ctx) { return on_start(ctx, 0); }

static int on_end(struct parser *p)
{
    SFC_ASSERT(p->depth > 0);
    struct frame f = p->st[--p->depth];
    struct sfc_coco *c = p->c;
    switch (f.role) {
    case R_IMG: case R_ANN: case R_CAT:
        return end_record(p, f.role);
    case R_POLYS:
        c->anns[p->rec].n = c->n_plen - c->anns[p->rec].off;
        break;
    case R_POLY: {
        size_t k = c->n_xy - p->poly_start;
        if (k % 2)
            rec_err(p, "a polygon has an odd number (%zu) of coordinates",
                    k);
        else if (k / 2 > UINT32_MAX)
            rec_err(p, "a polygon has too many points");
        c->plen[c->n_plen++] = (uint32_t)(k / 2);
        break;
    }
    case R_RLE: {
        struct sfc_coco_ann *a = &c->anns[p->rec];
        if (a->rle_h < 0)
            rec_err(p, "RLE without 'size'");
        else if (a->kind == SFC_COCO_RLE && a->n == 0)
            rec_err(p, "RLE without 'counts'");
        break;
    }
    case R_COUNTS:
        c->anns[p->rec].n = c->n_counts - c->anns[p->rec].off;
        if (!c->anns[p->rec].n) rec_err(p, "empty RLE counts");
        break;
    case R_SIZE:
        if (p->n_size != 2) rec_err(p, "RLE size is not [h, w]");
        break;
    default:
        break;
    }
    return 1;
}

static int cb_end(void *ctx) { return on_end(ctx); }

static enum field key_field(enum role r, const unsigned char *k, size_t n)
{
#define IS(s) (n == sizeof(s) - 1 && !memcmp(k, s, n))
    switch (r) {
    case R_ROOT:
        return IS("images") ? (enum field)R_IMAGES
               : IS("annotations") ? (enum field)R_ANNS
               : IS("categories") ? (enum field)R_CATS : F_OTHER;
    case R_IMG:
        return IS("id") ? F_ID : IS("file_name") ? F_FILE
               : IS("width") ? F_WIDTH : IS("height") ? F_HEIGHT : F_OTHER;
    case R_ANN:
        return IS("id") ? F_ID : IS("image_id") ? F_IMAGE_ID
               : IS("category_id") ? F_CATEGORY_ID
               : IS("iscrowd") ? F_ISCROWD
               : IS("segmentation") ? F_SEG : F_OTHER;
    case R_CAT:
        return IS("id") ? F_ID : IS("name") ? F_NAME : F_OTHER;
    case R_RLE:
        return IS("counts") ? F_COUNTS : IS("size") ? F_SIZE : F_OTHER;
    default:
        return F_OTHER;
    }
#undef IS
}

static int cb_key(void *ctx, const unsigned char *k, size_t n)
{
    struct parser *p = ctx;
    struct frame *f = &p->st[p->depth - 1];
    /* at the top, the key's field is the section's role (F_OTHER = 0 is
     * R_ROOT, never a section) */
    f->key = key_field(f->role, k, n);
    return 1;
}

/* An integer field of a record; v came as an integer (is_int) or not. */
static void int_field(struct parser *p, enum field key, int is_int,
                      long long v, double d)
{
    struct sfc_coco *c = p->c;
    enum role r = p->st[p->depth - 1].role;
    const char *name = key == F_ID ? "id" : key == F_WIDTH ? "width"
                       : key == F_HEIGHT ? "height"
                       : key == F_IMAGE_ID ? "image_id"
                       : key == F_CATEGORY_ID ? "category_id" : "iscrowd";
    if (!is_int) {
        if (key == F_ISCROWD && (d == 0 || d == 1)) v = (long long)d;
        else {
            rec_err(p, "'%s' is %g, not an integer", name, d);
            return;
        }
    }
    if (r == R_IMG) {
        struct sfc_coco_image *im = &c->images[p->rec];
        if (key == F_ID) im->id = v, p->have_id = 1;
        else if (v < 1 || v > 1 << 20)
            rec_err(p, "'%s' %lld out of range", name, v);
        else if (key == F_WIDTH) im->width = (int)v, p->have_w = 1;
        else im->height = (int)v, p->have_h = 1;
    } else if (r == R_ANN) {
        struct sfc_coco_ann *a = &c->anns[p->rec];
        if (key == F_ID) a->id = v, p->have_id = 1;
        else if (key == F_IMAGE_ID) a->image_id = v, p->have_image = 1;
        else if (key == F_CATEGORY_ID) a->category_id = v, p->have_cat = 1;
        else if (v == 0 || v == 1) a->crowd = (uint8_t)v;
        else rec_err(p, "'iscrowd' is %lld", v);
    } else {
        c->cat_ids[p->rec] = v;
        p->have_id = 1;
    }
}

static int on_number(struct parser *p, int is_int, long long v, double d)
{
    enum role r = child_role(p, V_NUM);
    (void)r;
    if (p->fail) return 0;
    if (p->depth == 0) return 1;
    struct frame *f = &p->st[p->depth - 1];
    struct sfc_coco *c = p->c;
    switch (f->role) {
    case R_IMG: case R_ANN: case R_CAT:
        if (f->key == F_ID || f->key == F_WIDTH || f->key == F_HEIGHT ||
            f->key == F_IMAGE_ID || f->key == F_CATEGORY_ID ||
            f->key == F_ISCROWD)
            int_field(p, f->key, is_int, v, d);
        else if (f->key == F_FILE || f->key == F_NAME)
            rec_err(p, "'%s' is a number", f->key == F_FILE ? "file_name"
                                                            : "name");
        break;
    case R_POLY: {
        double x = is_int ? (double)v : d;
        if (!isfinite(x)) {
            rec_err(p, "a polygon coordinate is not finite");
            break;
        }
        GROW(c->xy, c->n_xy, p->cap_xy);
        c->xy[c->n_xy++] = x;
        break;
    }
    case R_COUNTS:
        if (!is_int || v < 0 || v > UINT32_MAX) {
            rec_err(p, "RLE counts hold %s", is_int ? "an out-of-range run"
                                                    : "a non-integer");
            break;
        }
        GROW(c->counts, c->n_counts, p->cap_counts);
        c->counts[c->n_counts++] = (uint32_t)v;
        break;
    case R_SIZE: {
        struct sfc_coco_ann *a = &c->anns[p->rec];
        if (!is_int || v < 1 || v > 1 << 20) {
            rec_err(p, "RLE size out of range");
            break;
        }
        if (p->n_size == 0) a->rle_h = (int)v;
        else if (p->n_size == 1) a->rle_w = (int)v;
        p->n_size++;
        break;
    }
    default:
        break;
    }
    return 1;
}

static int cb_integer(void *ctx, long long v)
{
    return on_number(ctx, 1, v, (double)v);
}
static int cb_double(void *ctx, double d) { return on_number(ctx, 0, 0, d); }

static int cb_string(void *ctx, const unsigned char *s, size_t n)
{
    struct parser *p = ctx;
    child_role(p, V_STR);
    if (p->fail) return 0;
    if (p->depth == 0) return 1;
    struct frame *f = &p->st[p->depth - 1];
    struct sfc_coco *c = p->c;
    if ((f->role == R_IMG && f->key == F_FILE) ||
        (f->role == R_CAT && f->key == F_NAME)) {
        /* names keep COCO's spelling except blanks, which become '_' (a
         * class file holds one blank-free name per line) */
        if (n == 0 || memchr(s, '\0', n) || memchr(s, '/', n) ||
            memchr(s, '\n', n)) {
            rec_err(p, "bad %s '%.*s'", f->key == F_FILE ? "file_name"
                                                         : "name",
                    (int)SFC_MIN(n, 64), (const char *)s);
            return 1;
        }
        char *v = sfc_xmalloc(n + 1);
        memcpy(v, s, n);
        v[n] = '\0';
        if (f->role == R_CAT)
            for (char *q = v; *q; q++)
                if (*q == ' ' || *q == '\t') *q = '_';
        char **slot = f->role == R_IMG ? &c->images[p->rec].file
                                       : &c->cat_names[p->rec];
        free(*slot);
        *slot = v;
    } else if (f->role == R_RLE && f->key == F_COUNTS) {
        struct sfc_coco_ann *a = &c->anns[p->rec];
        a->kind = SFC_COCO_RLE_STRING;
        a->off = c->n_str;
        a->n = n;
        if (c->n_str + n > p->cap_str) {
            while (c->n_str + n > p->cap_str)
                p->cap_str = p->cap_str ? 2 * p->cap_str : 4096;
            c->str = sfc_xrealloc(c->str, p->cap_str);
        }
        memcpy(c->str + c->n_str, s, n);
        c->n_str += n;
        if (!n) rec_err(p, "empty RLE counts");
    } else if ((f->role == R_IMG || f->role == R_ANN || f->role == R_CAT) &&
               f->key != F_OTHER && f->key != F_SEG) {
        rec_err(p, "a numeric field holds a string");
    }
    return 1;
}

static int cb_null(void *ctx)
{
    struct parser *p = ctx;
    child_role(p, V_OTHER);
    if (p->fail) return 0;
    if (p->depth > 0) {
        struct frame *f = &p->st[p->depth - 1];
        if ((f->role == R_IMG || f->role == R_ANN || f->role == R_CAT) &&
            f->key != F_OTHER)
            rec_err(p, "a required field is null");
    }
    return 1;
}
static int cb_bool(void *ctx, int b)
{
    struct parser *p = ctx;
    struct frame *f = p->depth ? &p->st[p->depth - 1] : NULL;
    if (f && f->role == R_ANN && f->key == F_ISCROWD) {
        child_role(p, V_NUM);
        int_field(p, F_ISCROWD, 1, b, b);
        return !p->fail;
    }
    return cb_null(ctx);
}

static const yajl_callbacks callbacks = {
    cb_null, cb_bool, cb_integer, cb_double, NULL, cb_string,
    cb_start_map, cb_key, cb_end, cb_start_array, cb_end,
};

/* ---------------------------------------------------------- the checks */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Index of id in the sorted ids, or -1. */
static long find_id(const int64_t *ids, long n, int64_t id)
{
    long lo = 0, hi = n;
    while (lo < hi) {
        long mid = lo + (hi - lo) / 2;
        if (ids[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && ids[lo] == id ? lo : -1;
}

struct idx { int64_t id; long i; };
static int cmp_idx(const void *a, const void *b)
{
    const struct idx *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static int check_ann(struct sfc_coco *c, struct sfc_coco_ann *a,
                     double margin)
{
    const struct sfc_coco_image *im = &c->images[a->image];
    int H = im->height, W = im->width;
    long long aid = (long long)a->id;
    if (a->kind == SFC_COCO_POLY) {
        const double *xy = c->xy + a->xy;
        size_t k = 0;
        for (size_t q = 0; q < a->n; q++)
            for (uint32_t j = 0; j < c->plen[a->off + q]; j++, k++) {
                double x = xy[2 * k], y = xy[2 * k + 1];
                if (x < -margin || x > W + margin || y < -margin ||
                    y > H + margin)
                    return sfc_error(c->path, "annotation %lld: polygon "
                                     "point (%g, %g) outside the %dx%d "
                                     "image %lld", aid, x, y, W, H,
                                     (long long)im->id);
            }
        return 0;
    }
    if (a->rle_h != H || a->rle_w != W)
        return sfc_error(c->path, "annotation %lld: RLE size %dx%d differs "
                         "from its image %lld (%dx%d)", aid, a->rle_w,
                         a->rle_h, (long long)im->id, W, H);
    uint32_t *cnt = c->counts + a->off, *tmp = NULL;
    size_t n = a->n;
    if (a->kind == SFC_COCO_RLE_STRING) {
        char dom[64];
        snprintf(dom, sizeof dom, "annotation %lld", aid);
        if (sfc_coco_rle_from_string(dom, c->str + a->off, a->n, &tmp, &n)) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", sfc_errmsg());
            return sfc_error(c->path, "%s", msg);
        }
        cnt = tmp;
    }
    uint64_t sum = 0;
    for (size_t j = 0; j < n; j++) sum += cnt[j];
    free(tmp);
    if (sum != (uint64_t)H * (uint64_t)W)
        return sfc_error(c->path, "annotation %lld: RLE covers %llu pixels, "
                         "its %dx%d image %lld has %llu (segmentation "
                         "outside the image)", aid, (unsigned long long)sum,
                         W, H, (long long)im->id,
                         (unsigned long long)H * (unsigned long long)W);
    return 0;
}

static int check_all(struct sfc_coco *c, double margin)
{
    if (!c->n_cats) return sfc_error(c->path, "no categories");
    if (c->n_cats > 254)
        return sfc_error(c->path, "%d categories; at most 254 fit a label "
                         "PNG", c->n_cats);
    /* categories by id */
    struct idx *ci = sfc_xmalloc((size_t)c->n_cats * sizeof *ci);
    for (int k = 0; k < c->n_cats; k++) ci[k] = (struct idx){c->cat_ids[k], k};
    qsort(ci, (size_t)c->n_cats, sizeof *ci, cmp_idx);
    char **names = sfc_xmalloc((size_t)c->n_cats * sizeof *names);
    for (int k = 0; k < c->n_cats; k++) {
        if (k && ci[k].id == ci[k - 1].id) {
            long long dup = (long long)ci[k].id;
            free(ci);
            free(names);
            return sfc_error(c->path, "category id %lld appears twice", dup);
        }
        names[k] = c->cat_names[ci[k].i];
        c->cat_ids[k] = ci[k].id;
    }
    free(c->cat_names);
    c->cat_names = names;
    free(ci);
    for (int k = 0; k < c->n_cats; k++)
        for (int j = 0; j < k; j++)
            if (!strcmp(names[j], names[k]))
                return sfc_error(c->path, "category name '%s' appears twice",
                                 names[k]);

    /* images by id (their order in the file is kept) */
    struct idx *ii = sfc_xmalloc((size_t)(c->n_images + 1) * sizeof *ii);
    for (long k = 0; k < c->n_images; k++) ii[k] = (struct idx){c->images[k].id, k};
    qsort(ii, (size_t)c->n_images, sizeof *ii, cmp_idx);
    int64_t *iids = sfc_xmalloc((size_t)(c->n_images + 1) * sizeof *iids);
    int rc = 0;
    for (long k = 0; k < c->n_images; k++) {
        iids[k] = ii[k].id;
        if (k && ii[k].id == ii[k - 1].id) {
            rc = sfc_error(c->path, "image id %lld appears twice",
                           (long long)ii[k].id);
            break;
        }
    }
    /* annotations, in file order */
    for (long k = 0; rc == 0 && k < c->n_anns; k++) {
        struct sfc_coco_ann *a = &c->anns[k];
        long im = find_id(iids, c->n_images, a->image_id);
        long cat = find_id(c->cat_ids, c->n_cats, a->category_id);
        if (im < 0)
            rc = sfc_error(c->path, "annotation %lld: unknown image id %lld",
                           (long long)a->id, (long long)a->image_id);
        else if (cat < 0)
            rc = sfc_error(c->path, "annotation %lld: unknown category id "
                           "%lld", (long long)a->id,
                           (long long)a->category_id);
        else {
            a->image = ii[im].i;
            a->cls = (int)cat + 1;
            rc = check_ann(c, a, margin);
        }
    }
    free(ii);
    free(iids);
    if (rc) return rc;
    /* annotation ids unique */
    int64_t *aids = sfc_xmalloc((size_t)(c->n_anns + 1) * sizeof *aids);
    for (long k = 0; k < c->n_anns; k++) aids[k] = c->anns[k].id;
    qsort(aids, (size_t)c->n_anns, sizeof *aids, cmp_i64);
    for (long k = 1; rc == 0 && k < c->n_anns; k++)
        if (aids[k] == aids[k - 1])
            rc = sfc_error(c->path, "annotation %lld: id appears twice",
                           (long long)aids[k]);
    free(aids);
    if (rc) return rc;
    /* group by image (counting sort keeps file order within an image) */
    for (long k = 0; k < c->n_anns; k++) c->images[c->anns[k].image].n_ann++;
    long pos = 0;
    for (long k = 0; k < c->n_images; k++) {
        c->images[k].first = pos;
        pos += c->images[k].n_ann;
        c->images[k].n_ann = 0;
    }
    c->by_image = sfc_xmalloc((size_t)(c->n_anns + 1) * sizeof *c->by_image);
    for (long k = 0; k < c->n_anns; k++) {
        struct sfc_coco_image *im = &c->images[c->anns[k].image];
        c->by_image[im->first + im->n_ann++] = k;
    }
    return 0;
}

int sfc_coco_read(const char *path, double margin, struct sfc_coco *out)
{
    memset(out, 0, sizeof *out);
    out->path = sfc_xstrdup(path);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        sfc_error(path, "cannot open:");
        sfc_coco_release(out);
        return -1;
    }
    struct parser p = {0};
    p.c = out;
    p.last_ann_id = -1;
    p.h = yajl_alloc(&callbacks, NULL, &p);
    SFC_ASSERT(p.h);
    unsigned char *buf = sfc_xmalloc(CHUNK);
    size_t got, offset = 0;
    yajl_status s = yajl_status_ok;
    int rc = 0;
    while (s == yajl_status_ok && (got = fread(buf, 1, CHUNK, fp)) > 0) {
        s = yajl_parse(p.h, buf, got);
        if (s != yajl_status_ok) break;
        offset += got;
    }
    if (s == yajl_status_ok && ferror(fp)) rc = sfc_error(path, "read error:");
    if (s == yajl_status_ok && rc == 0) s = yajl_complete_parse(p.h);
    if (s != yajl_status_ok && !p.fail) {
        size_t at = offset + yajl_get_bytes_consumed(p.h);
        unsigned char *msg = yajl_get_error(p.h, 0, buf, got);
        char *nl = strchr((char *)msg, '\n');
        if (nl) *nl = '\0';
        if (p.in_ann && p.have_id)
            rc = sfc_error(path, "malformed JSON at byte %zu, in annotation "
                           "%lld: %s", at,
                           (long long)out->anns[p.rec].id, (char *)msg);
        else if (p.last_ann_id >= 0)
            rc = sfc_error(path, "malformed JSON at byte %zu, after "
                           "annotation %lld: %s", at,
                           (long long)p.last_ann_id, (char *)msg);
        else if (p.in_ann)
            rc = sfc_error(path, "malformed JSON at byte %zu, in the first "
                           "annotation: %s", at, (char *)msg);
        else
            rc = sfc_error(path, "malformed JSON at byte %zu: %s", at,
                           (char *)msg);
        yajl_free_error(p.h, msg);
    } else if (p.fail) {
        rc = -1;
    } else if (rc == 0 && p.err[0]) {
        rc = sfc_error(path, "%s", p.err);
    }
    free(buf);
    yajl_free(p.h);
    fclose(fp);
    if (rc == 0) rc = check_all(out, margin);
    if (rc) {
        sfc_coco_release(out);
        return -1;
    }
    return 0;
}

void sfc_coco_release(struct sfc_coco *c)
{
    for (long k = 0; k < c->n_images; k++) free(c->images[k].file);
    for (int k = 0; k < c->n_cats; k++)
        if (c->cat_names) free(c->cat_names[k]);
    free(c->images);
    free(c->anns);
    free(c->cat_ids);
    free(c->cat_names);
    free(c->by_image);
    free(c->plen);
    free(c->xy);
    free(c->counts);
    free(c->str);
    free(c->path);
    memset(c, 0, sizeof *c);
}

char *sfc_coco_stem(const char *file_name)
{
    const char *b = strrchr(file_name, '/');
    b = b ? b + 1 : file_name;
    const char *dot = strrchr(b, '.');
    size_t n = dot && dot != b ? (size_t)(dot - b) : strlen(b);
    char *s = sfc_xmalloc(n + 1);
    memcpy(s, b, n);
    s[n] = '\0';
    return s;
}

/* ---------------------------------------------------- polygons and RLE */

/* Insertion sort of a column's few crossings. */
static void sort_small(double *v, int n)
{
    for (int i = 1; i < n; i++) {
        double x = v[i];
        int j = i - 1;
        while (j >= 0 && v[j] > x) v[j + 1] = v[j], j--;
        v[j + 1] = x;
    }
}

static int row_of(double y, int H)
{
    double r = ceil(y);
    return r < 0 ? 0 : r > H ? H : (int)r;
}

/* ceil(x) clamped to 0..W: the first column at or right of x */
static int col_of(double x, int W)
{
    double c = ceil(x);
    return c < 0 ? 0 : c > W ? W : (int)c;
}

void sfc_coco_poly_fill(uint8_t *m, int H, int W, const double *xy, long n)
{
    if (n < 3 || W < 1 || H < 1) return;
    /* columns crossed by each edge: ceil(min x) .. ceil(max x) - 1 */
    int *cnt = sfc_xcalloc((size_t)W + 1, sizeof *cnt);
    for (long i = 0; i < n; i++) {
        long j = i + 1 == n ? 0 : i + 1;
        double x0 = xy[2 * i], x1 = xy[2 * j];
        if (x0 == x1) continue;
        double lo = x0 < x1 ? x0 : x1, hi = x0 < x1 ? x1 : x0;
        int a = col_of(lo, W), b = col_of(hi, W);
        for (int x = a; x < b; x++) cnt[x + 1]++;
    }
    for (int x = 0; x < W; x++) cnt[x + 1] += cnt[x];
    if (cnt[W] == 0) {
        free(cnt);
        return;
    }
    double *ys = sfc_xmalloc((size_t)cnt[W] * sizeof *ys);
    int *fill = sfc_xmalloc((size_t)W * sizeof *fill);
    memcpy(fill, cnt, (size_t)W * sizeof *fill);
    for (long i = 0; i < n; i++) {
        long j = i + 1 == n ? 0 : i + 1;
        double x0 = xy[2 * i], y0 = xy[2 * i + 1];
        double x1 = xy[2 * j], y1 = xy[2 * j + 1];
        if (x0 == x1) continue;
        double lo = x0 < x1 ? x0 : x1, hi = x0 < x1 ? x1 : x0;
        int a = col_of(lo, W), b = col_of(hi, W);
        for (int x = a; x < b; x++)
            ys[fill[x]++] = y0 + ((double)x - x0) * (y1 - y0) / (x1 - x0);
    }
    for (int x = 0; x < W; x++) {
        double *v = ys + cnt[x];
        int k = cnt[x + 1] - cnt[x];
        sort_small(v, k);
        for (int q = 0; q + 1 < k; q += 2) {
            int r0 = row_of(v[q], H), r1 = row_of(v[q + 1], H);
            for (int r = r0; r < r1; r++) m[(size_t)r * W + x] = 1;
        }
    }
    free(fill);
    free(ys);
    free(cnt);
}

void sfc_coco_rle_fill(uint8_t *m, int H, int W, const uint32_t *counts,
                       size_t n)
{
    size_t total = (size_t)H * W, p = 0;
    for (size_t j = 0; j < n && p < total; j++) {
        size_t e = p + counts[j];
        if (e > total) e = total;
        if (j % 2)
            for (size_t q = p; q < e; q++)
                m[(q % (size_t)H) * (size_t)W + q / (size_t)H] = 1;
        p = e;
    }
}

uint32_t *sfc_coco_rle_encode(const uint8_t *m, int H, int W, size_t *n_out)
{
    size_t total = (size_t)H * W, n = 0, cap = 64;
    uint32_t *v = sfc_xmalloc(cap * sizeof *v);
    uint32_t run = 0;
    int cur = 0;
    for (size_t q = 0; q < total; q++) {
        int b = m[(q % (size_t)H) * (size_t)W + q / (size_t)H] != 0;
        if (b != cur) {
            GROW(v, n, cap);
            v[n++] = run;
            run = 0;
            cur = b;
        }
        run++;
    }
    GROW(v, n, cap);
    v[n++] = run;
    *n_out = n;
    return v;
}

char *sfc_coco_rle_to_string(const uint32_t *counts, size_t n)
{
    /* a 32-bit run (or a difference of two) needs at most 7 groups */
    char *s = sfc_xmalloc(n * 7 + 1), *o = s;
    for (size_t i = 0; i < n; i++) {
        long long x = counts[i];
        if (i > 2) x -= counts[i - 2];
        for (;;) {
            int g = (int)(x & 0x1f);
            x >>= 5; /* arithmetic shift of a negative: -1 stays -1 */
            int last = (g & 0x10) ? x == -1 : x == 0;
            *o++ = (char)(48 + g + (last ? 0 : 0x20));
            if (last) break;
        }
    }
    *o = '\0';
    return s;
}

int sfc_coco_rle_from_string(const char *domain, const char *s, size_t len,
                             uint32_t **counts_out, size_t *n_out)
{
    uint32_t *v = sfc_xmalloc((len + 1) * sizeof *v);
    size_t n = 0, p = 0;
    while (p < len) {
        long long x = 0;
        int k = 0, more = 1;
        while (more) {
            if (p >= len) {
                free(v);
                return sfc_error(domain, "RLE string ends inside a number");
            }
            int ch = (unsigned char)s[p++];
            if (ch < 48 || ch > 48 + 63) {
                free(v);
                return sfc_error(domain, "RLE string holds '%c' (byte "
                                 "%zu), outside '0'..'o'", ch, p - 1);
            }
            int g = ch - 48;
            if (k >= 8) {
                free(v);
                return sfc_error(domain, "RLE string number too long "
                                 "(byte %zu)", p - 1);
            }
            x |= (long long)(g & 0x1f) << (5 * k);
            k++;
            more = g & 0x20;
            if (!more && (g & 0x10)) x -= 1LL << (5 * k); /* sign extend */
        }
        if (n > 2) x += v[n - 2];
        if (x < 0 || x > UINT32_MAX) {
            free(v);
            return sfc_error(domain, "RLE string gives run %zu = %lld", n,
                             x);
        }
        v[n++] = (uint32_t)x;
    }
    *counts_out = v;
    *n_out = n;
    return 0;
}

/* --------------------------------------------------------- rendering */

long sfc_coco_ann_mask(const struct sfc_coco *c, long a, uint8_t *m)
{
    const struct sfc_coco_ann *an = &c->anns[a];
    const struct sfc_coco_image *im = &c->images[an->image];
    int H = im->height, W = im->width;
    size_t HW = (size_t)H * W;
    memset(m, 0, HW);
    if (an->kind == SFC_COCO_POLY) {
        const double *xy = c->xy + an->xy;
        for (size_t q = 0; q < an->n; q++) {
            uint32_t np = c->plen[an->off + q];
            sfc_coco_poly_fill(m, H, W, xy, np);
            xy += 2 * (size_t)np;
        }
    } else if (an->kind == SFC_COCO_RLE) {
        sfc_coco_rle_fill(m, H, W, c->counts + an->off, an->n);
    } else {
        uint32_t *v;
        size_t n;
        /* checked by sfc_coco_read */
        SFC_ASSERT(sfc_coco_rle_from_string("rle", c->str + an->off, an->n,
                                            &v, &n) == 0);
        sfc_coco_rle_fill(m, H, W, v, n);
        free(v);
    }
    long px = 0;
    for (size_t q = 0; q < HW; q++) px += m[q];
    return px;
}

struct order { long a, area; int crowd; };

static int cmp_small(const void *x, const void *y)
{
    const struct order *p = x, *q = y;
    if (p->crowd != q->crowd) return q->crowd - p->crowd; /* crowd first */
    if (p->area != q->area) return (p->area < q->area) - (p->area > q->area);
    return (p->a > q->a) - (p->a < q->a);                 /* file order */
}

static int cmp_last(const void *x, const void *y)
{
    const struct order *p = x, *q = y;
    if (p->crowd != q->crowd) return q->crowd - p->crowd;
    return (p->a > q->a) - (p->a < q->a);
}

void sfc_coco_render(const struct sfc_coco *c, long i,
                     enum sfc_coco_crowd crowd, enum sfc_coco_overlap ov,
                     uint8_t *label, uint8_t present[256])
{
    const struct sfc_coco_image *im = &c->images[i];
    size_t HW = (size_t)im->height * im->width;
    memset(label, 0, HW);
    memset(present, 0, 256);
    if (!im->n_ann) return;
    uint8_t *m = sfc_xmalloc(HW);
    struct order *o = sfc_xmalloc((size_t)im->n_ann * sizeof *o);
    for (long k = 0; k < im->n_ann; k++) {
        long a = c->by_image[im->first + k];
        o[k].a = a;
        o[k].crowd = c->anns[a].crowd;
        o[k].area = ov == SFC_COCO_OVERLAP_SMALL ? sfc_coco_ann_mask(c, a, m)
                                                 : 0;
        present[c->anns[a].cls] = 1;
    }
    qsort(o, (size_t)im->n_ann, sizeof *o,
          ov == SFC_COCO_OVERLAP_SMALL ? cmp_small : cmp_last);
    for (long k = 0; k < im->n_ann; k++) {
        const struct sfc_coco_ann *an = &c->anns[o[k].a];
        uint8_t v = an->crowd && crowd == SFC_COCO_CROWD_IGNORE
                        ? 255 : (uint8_t)an->cls;
        sfc_coco_ann_mask(c, o[k].a, m);
        for (size_t q = 0; q < HW; q++)
            if (m[q]) label[q] = v;
    }
    free(o);
    free(m);
}
