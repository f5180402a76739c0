/* SPDX-License-Identifier: MIT */
/* report.c: the HTML page of sfc-report (see report.h for what it shows).
 *
 * Everything comes from the db (runs, class_stats, train_log, image_bank,
 * schedule, metrics; db/schema.sql) and from the files the runs wrote
 * (cam/<id>.npz, label PNGs), found through the options each runs row
 * recorded. Numbers shown are the stored ones, except three derived here:
 * over-activation FP/(TP+FN) and under-activation FN/(TP+FN) from the
 * stored per-class pixel counts, per-image mIoU (lib/metrics, as
 * sfc-miou scores a whole split) to pick the best and worst examples, and
 * IoU differences between runs. Figures: gnuplot scripts over data files
 * (lib/plot.c); tiles: libvips (lib/img.c). The page is built in memory
 * and written with sfc_atomic_write. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic.h"
#include "camfile.h"
#include "db.h"
#include "err.h"
#include "img.h"
#include "json.h"
#include "metrics.h"
#include "npy.h"
#include "plot.h"
#include "report.h"
#include "sfc.h" /* defines: SFC_VERSION */
#include "util.h"

/* ------------------------------------------------------ string buffer */

struct sbuf {
    char *s;
    size_t n, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->cap - b->n < n + 1) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->n < n + 1) cap *= 2;
        b->s = sfc_xrealloc(b->s, cap);
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    s = sfc_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_add(b, s, (size_t)n);
    free(s);
}

/* HTML text (also safe inside a double-quoted attribute). */
static void sb_html(struct sbuf *b, const char *s)
{
    if (!s) return;
    for (; *s; s++) {
        switch (*s) {
        case '&': sb_puts(b, "&amp;"); break;
        case '<': sb_puts(b, "&lt;"); break;
        case '>': sb_puts(b, "&gt;"); break;
        case '"': sb_puts(b, "&quot;"); break;
        default: sb_add(b, s, 1);
        }
    }
}

static void sb_base64(struct sbuf *b, const unsigned char *d, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char q[4];
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)d[i] << 16;
        if (i + 1 < n) v |= (unsigned)d[i + 1] << 8;
        if (i + 2 < n) v |= d[i + 2];
        q[0] = tab[(v >> 18) & 63];
        q[1] = tab[(v >> 12) & 63];
        q[2] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        q[3] = i + 2 < n ? tab[v & 63] : '=';
        sb_add(b, q, 4);
    }
}

/* <img> with the bytes inlined as a data: URI. */
static void sb_img(struct sbuf *b, const char *mime, const void *data,
                   size_t n, const char *alt, const char *cls)
{
    sb_printf(b, "<img class=\"%s\" alt=\"", cls);
    sb_html(b, alt);
    sb_printf(b, "\" src=\"data:%s;base64,", mime);
    sb_base64(b, data, n);
    sb_puts(b, "\">");
}

/* A percentage cell value, "–" for NaN. */
static void sb_pct(struct sbuf *b, double v)
{
    if (isnan(v))
        sb_puts(b, "&ndash;");
    else
        sb_printf(b, "%.1f", 100 * v);
}

/* --------------------------------------------------------------- paths */

/* path made absolute against the working folder and cleaned lexically
 * (".", "..", repeated and trailing slashes). */
static char *abs_clean(const char *path)
{
    char *full;
    if (path[0] == '/') {
        full = sfc_xstrdup(path);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "/");
        full = sfc_xasprintf("%s/%s", cwd, path);
    }
    size_t n = strlen(full);
    char *out = sfc_xmalloc(n + 2);
    size_t o = 0;
    char *save = NULL;
    for (char *c = strtok_r(full, "/", &save); c;
         c = strtok_r(NULL, "/", &save)) {
        if (!strcmp(c, ".")) continue;
        if (!strcmp(c, "..")) {
            while (o > 0 && out[o - 1] != '/') o--;
            if (o > 0) o--;
            continue;
        }
        out[o++] = '/';
        size_t l = strlen(c);
        memcpy(out + o, c, l);
        o += l;
    }
    if (o == 0) out[o++] = '/';
    out[o] = '\0';
    free(full);
    return out;
}

static int ncomp(const char *p)
{
    int n = 0;
    for (const char *s = p; *s; s++)
        if (*s != '/' && (s == p || s[-1] == '/')) n++;
    return n;
}

/* Where a path recorded in the db lies inside the folder root (absolute,
 * clean): the path itself when it resolves from here into root, else,
 * for a relative path whose first k components are the last k of root,
 * root + the rest. NULL when it is not inside root. */
static char *resolve_in(const char *v, const char *root)
{
    if (!v || !*v) return NULL;
    size_t rl = strlen(root);
    char *a = abs_clean(v);
    if (!strcmp(a, root) ||
        (!strncmp(a, root, rl) && (a[rl] == '/' || rl == 1)))
        return a;
    free(a);
    if (v[0] == '/') return NULL;
    /* clean relative form of v: strip "./" and doubled slashes */
    char *rel = sfc_xstrdup(v);
    char *comps[256];
    int nc = 0;
    char *save = NULL;
    for (char *t = strtok_r(rel, "/", &save); t && nc < 256;
         t = strtok_r(NULL, "/", &save))
        if (strcmp(t, ".")) comps[nc++] = t;
    int nr = ncomp(root);
    char *res = NULL;
    for (int k = nc < nr ? nc : nr; k >= 1 && !res; k--) {
        /* the last k components of root */
        const char *s = root + rl;
        int seen = 0;
        while (s > root && seen < k) {
            s--;
            if (*s == '/') seen++;
        }
        s++; /* first char of the k-th component from the end */
        struct sbuf want = {0};
        for (int i = 0; i < k; i++) {
            if (i) sb_puts(&want, "/");
            sb_puts(&want, comps[i]);
        }
        if (want.s && !strcmp(want.s, s)) {
            struct sbuf out = {0};
            sb_puts(&out, root);
            for (int i = k; i < nc; i++) {
                sb_puts(&out, "/");
                sb_puts(&out, comps[i]);
            }
            res = out.s;
        }
        free(want.s);
    }
    free(rel);
    return res;
}

/* An absolute path as shown on the page: relative to the working folder
 * when inside it (the page then names no folder of this machine). */
static const char *shown_path(const char *abs)
{
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd) || abs[0] != '/') return abs;
    size_t n = strlen(cwd);
    if (n > 1 && !strncmp(abs, cwd, n) && abs[n] == '/') return abs + n + 1;
    return abs;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s && s[1] ? s + 1 : p;
}

/* ------------------------------------------------------------ the data */

struct rrow { /* a runs row */
    int64_t id;
    char *tool, *version, *started, *status, *config;
    int has_seed;
    int64_t seed;
    double secs; /* wall time, NaN while running */
    struct sfc_json cfg;
    int mine; /* its options name a path inside the run folder */
};

#define NSUM 5
static const char *const sum_names[NSUM] = {"miou", "fg_miou", "head",
                                            "middle", "tail"};
static const char *const sum_titles[NSUM] = {"mIoU", "fg mIoU", "head",
                                             "middle", "tail"};

struct stage { /* one evaluated (stage, map) of a run */
    char *stage, *map, *split;
    char *key;   /* stage without the run's suffix, + " " + map */
    char *title; /* for people */
    int rank;    /* pipeline order */
    double *iou, *tp, *fp, *fn; /* [K], NaN where absent */
    double sum[NSUM];
    char *pred_dir; /* label PNGs scored, or NULL */
    char *cams_dir; /* CAM files scored, or NULL */
};

struct labdir {
    char *title;
    char *dir;
    int rank;
};

struct run {
    char *abs, *name, *dbpath;
    struct sfc_db *db;
    int K;
    char **cls;
    int64_t *n_c;
    double *dc;
    int *grp;
    char *count_split;
    int nrows;
    struct rrow *rows;
    int64_t sample_run, first_train;
    int pdw_warmup;
    int nst;
    struct stage *st;
    int ncam;
    char **cams;
    int nlab;
    struct labdir *lab;
    int *order; /* foreground classes by N_c descending, ties by id */
};

static const char *cfg_str(const struct rrow *r, const char *key)
{
    const struct sfc_json *j = sfc_json_get(&r->cfg, key);
    return j && j->type == SFC_JSON_STRING ? j->str : NULL;
}

static double cfg_num(const struct rrow *r, const char *key, double dflt)
{
    const struct sfc_json *j = sfc_json_get(&r->cfg, key);
    return j && (j->type == SFC_JSON_INT || j->type == SFC_JSON_REAL)
               ? j->real
               : dflt;
}

static char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return sfc_xstrdup(s ? (const char *)s : "");
}

static double col_num(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL
               ? NAN
               : sqlite3_column_double(st, i);
}

static void run_free(struct run *r)
{
    free(r->abs);
    free(r->name);
    free(r->dbpath);
    sfc_db_close(r->db);
    if (r->cls) sfc_db_strv_free(r->cls, r->K);
    free(r->n_c);
    free(r->dc);
    free(r->grp);
    free(r->count_split);
    for (int i = 0; i < r->nrows; i++) {
        struct rrow *w = &r->rows[i];
        free(w->tool);
        free(w->version);
        free(w->started);
        free(w->status);
        free(w->config);
        sfc_json_release(&w->cfg);
    }
    free(r->rows);
    for (int i = 0; i < r->nst; i++) {
        struct stage *s = &r->st[i];
        free(s->stage);
        free(s->map);
        free(s->split);
        free(s->key);
        free(s->title);
        free(s->iou);
        free(s->tp);
        free(s->fp);
        free(s->fn);
        free(s->pred_dir);
        free(s->cams_dir);
    }
    free(r->st);
    for (int i = 0; i < r->ncam; i++) free(r->cams[i]);
    free(r->cams);
    for (int i = 0; i < r->nlab; i++) {
        free(r->lab[i].title);
        free(r->lab[i].dir);
    }
    free(r->lab);
    free(r->order);
    memset(r, 0, sizeof *r);
}

/* Does any option of the row (other than the db) name a path inside
 * root? Sets *res_out to the resolved value of key (if given). */
static int row_mine(const struct rrow *w, const char *root)
{
    const struct sfc_json *c = &w->cfg;
    if (c->type != SFC_JSON_OBJECT) return 0;
    for (int i = 0; i < c->n; i++) {
        if (!strcmp(c->keys[i], "db") || c->items[i].type != SFC_JSON_STRING)
            continue;
        /* a word such as --rule sfc is not a path: only values with a
         * slash, or those of the options that name run files */
        static const char *const path_keys[] = {
            "out", "cams", "pred", "labels", "irn", "ckpt", "weights",
            "checkpoint", NULL};
        int pk = 0;
        for (int k = 0; path_keys[k]; k++)
            pk |= !strcmp(c->keys[i], path_keys[k]);
        if (!pk && !strchr(c->items[i].str, '/')) continue;
        char *p = resolve_in(c->items[i].str, root);
        if (p) {
            free(p);
            return 1;
        }
    }
    return 0;
}

/* Every runs row of the db, with its options parsed. */
static int read_rows(struct sfc_db *db, struct rrow **out, int *n_out)
{
    sqlite3_stmt *st = sfc_db_prepare(
        db, "SELECT id, tool, version, seed, started, status, config, "
            "(julianday(ended) - julianday(started)) * 86400 FROM runs "
            "ORDER BY id");
    if (!st) return -1;
    struct rrow *v = NULL;
    int n = 0, r;
    while ((r = sfc_db_step(db, st)) == 1) {
        v = sfc_xrealloc(v, (n + 1) * sizeof *v);
        struct rrow *w = &v[n++];
        memset(w, 0, sizeof *w);
        w->id = sqlite3_column_int64(st, 0);
        w->tool = col_text(st, 1);
        w->version = col_text(st, 2);
        w->has_seed = sqlite3_column_type(st, 3) != SQLITE_NULL;
        w->seed = sqlite3_column_int64(st, 3);
        w->started = col_text(st, 4);
        w->status = col_text(st, 5);
        w->config = col_text(st, 6);
        w->secs = col_num(st, 7);
        if (sfc_json_parse(db->path, w->config, strlen(w->config),
                           &w->cfg)) {
            sfc_error_clear();
            memset(&w->cfg, 0, sizeof w->cfg);
        }
    }
    sqlite3_finalize(st);
    *out = v;
    *n_out = n;
    return r < 0 ? -1 : 0;
}

static int stage_rank(const char *key)
{
    static const char *const pre[] = {"cam", "crf", "ir", "pseudo", "seg"};
    for (int i = 0; i < 5; i++)
        if (!strncmp(key, pre[i], strlen(pre[i]))) return i;
    return 5;
}

static int map_rank(const char *map)
{
    if (!*map) return 0;
    if (!strcmp(map, "CAM")) return 1;
    if (!strcmp(map, "M_W")) return 2;
    if (!strcmp(map, "M_P")) return 3;
    return 4;
}

static const char *pretty_stage(const char *s)
{
    if (!strcmp(s, "cam")) return "CAM";
    if (!strcmp(s, "crf")) return "CAM+CRF";
    if (!strcmp(s, "pseudo")) return "pseudo label";
    if (!strcmp(s, "seg")) return "prediction";
    if (!strcmp(s, "ir_label")) return "IR label";
    return s;
}

static int cmp_stage(const void *a, const void *b)
{
    const struct stage *x = a, *y = b;
    if (x->rank != y->rank) return x->rank - y->rank;
    int c = strcmp(x->key, y->key);
    if (c) return c;
    return map_rank(x->map) - map_rank(y->map);
}

/* The metrics rows of one sfc-miou run: one stage per (stage, map,
 * split); an earlier run's stage with the same key is replaced. */
static int read_metrics(struct run *r, const struct rrow *w)
{
    sqlite3_stmt *st = sfc_db_prepare(
        r->db, "SELECT stage, map, split, class, name, value FROM metrics "
               "WHERE run = ?1 AND step = -1 AND instr(map, '@') = 0 "
               "ORDER BY stage, map, split");
    if (!st || sfc_db_bind(r->db, st, "I", w->id)) {
        sqlite3_finalize(st);
        return -1;
    }
    int rc;
    struct stage *cur = NULL;
    while ((rc = sfc_db_step(r->db, st)) == 1) {
        const char *sg = (const char *)sqlite3_column_text(st, 0);
        const char *mp = (const char *)sqlite3_column_text(st, 1);
        const char *sp = (const char *)sqlite3_column_text(st, 2);
        if (!sg || !mp || !sp) continue;
        if (!cur || strcmp(cur->stage, sg) || strcmp(cur->map, mp) ||
            strcmp(cur->split, sp)) {
            int k;
            for (k = 0; k < r->nst; k++)
                if (!strcmp(r->st[k].stage, sg) &&
                    !strcmp(r->st[k].map, mp) && !strcmp(r->st[k].split, sp))
                    break;
            if (k == r->nst) {
                r->st = sfc_xrealloc(r->st, (r->nst + 1) * sizeof *r->st);
                memset(&r->st[k], 0, sizeof r->st[k]);
                r->nst++;
                cur = &r->st[k];
                cur->stage = sfc_xstrdup(sg);
                cur->map = sfc_xstrdup(mp);
                cur->split = sfc_xstrdup(sp);
                cur->iou = sfc_xmalloc(r->K * sizeof(double));
                cur->tp = sfc_xmalloc(r->K * sizeof(double));
                cur->fp = sfc_xmalloc(r->K * sizeof(double));
                cur->fn = sfc_xmalloc(r->K * sizeof(double));
            } else {
                cur = &r->st[k];
                free(cur->pred_dir);
                free(cur->cams_dir);
            }
            for (int c = 0; c < r->K; c++)
                cur->iou[c] = cur->tp[c] = cur->fp[c] = cur->fn[c] = NAN;
            for (int i = 0; i < NSUM; i++) cur->sum[i] = NAN;
            cur->pred_dir = resolve_in(cfg_str(w, "pred"), r->abs);
            cur->cams_dir = resolve_in(cfg_str(w, "cams"), r->abs);
        }
        const char *name = (const char *)sqlite3_column_text(st, 4);
        double v = col_num(st, 5);
        if (!name) continue;
        if (sqlite3_column_type(st, 3) == SQLITE_NULL) {
            for (int i = 0; i < NSUM; i++)
                if (!strcmp(name, sum_names[i])) cur->sum[i] = v;
            continue;
        }
        int64_t c = sqlite3_column_int64(st, 3);
        if (c < 0 || c >= r->K) continue;
        if (!strcmp(name, "iou")) cur->iou[c] = v;
        if (!strcmp(name, "tp")) cur->tp[c] = v;
        if (!strcmp(name, "fp")) cur->fp[c] = v;
        if (!strcmp(name, "fn")) cur->fn[c] = v;
    }
    sqlite3_finalize(st);
    return rc < 0 ? -1 : 0;
}

static void add_cams(struct run *r, char *dir)
{
    if (!dir) return;
    for (int i = 0; i < r->ncam; i++)
        if (!strcmp(r->cams[i], dir)) {
            free(dir);
            return;
        }
    r->cams = sfc_xrealloc(r->cams, (r->ncam + 1) * sizeof *r->cams);
    r->cams[r->ncam++] = dir;
}

static void add_lab(struct run *r, const char *title, char *dir)
{
    if (!dir) return;
    for (int i = 0; i < r->nlab; i++)
        if (!strcmp(r->lab[i].dir, dir)) {
            free(dir);
            return;
        }
    r->lab = sfc_xrealloc(r->lab, (r->nlab + 1) * sizeof *r->lab);
    struct labdir *l = &r->lab[r->nlab++];
    l->title = sfc_xstrdup(title);
    l->dir = dir;
    l->rank = !strcmp(title, "CAM+CRF")        ? 1
              : !strcmp(title, "IR label")     ? 2
              : !strcmp(title, "pseudo label") ? 3
              : !strcmp(title, "prediction")   ? 4
                                               : 5;
}

static int cmp_lab(const void *a, const void *b)
{
    const struct labdir *x = a, *y = b;
    if (x->rank != y->rank) return x->rank - y->rank;
    return strcmp(x->title, y->title);
}

/* Class names, counts, DC and groups: the statistics of the sample run
 * the training used, else the dataset's own counts of its largest split. */
static int read_classes(struct run *r)
{
    if (sfc_db_class_names(r->db, &r->cls, &r->K)) return -1;
    r->n_c = sfc_xcalloc(r->K, sizeof *r->n_c);
    r->dc = sfc_xmalloc(r->K * sizeof *r->dc);
    r->grp = sfc_xmalloc(r->K * sizeof *r->grp);
    for (int c = 0; c < r->K; c++) {
        r->dc[c] = NAN;
        r->grp[c] = -1;
    }
    int64_t run = 0;
    char *split = NULL;
    for (int i = 0; i < r->nrows; i++)
        if (r->rows[i].id == r->sample_run) {
            const char *s = cfg_str(&r->rows[i], "split");
            if (s) split = sfc_xstrdup(s), run = r->sample_run;
        }
    if (!split) {
        sqlite3_stmt *st = sfc_db_prepare(
            r->db, "SELECT split FROM class_stats WHERE run IS NULL GROUP BY "
                   "split ORDER BY sum(n_images) DESC, split LIMIT 1");
        if (!st) return -1;
        int rc = sfc_db_step(r->db, st);
        if (rc == 1) split = col_text(st, 0);
        sqlite3_finalize(st);
        if (rc < 0) return -1;
    }
    if (split) {
        if (sfc_db_class_stats_read(r->db, run, split, r->n_c, r->dc,
                                    r->grp, r->K)) {
            free(split);
            return -1;
        }
        r->count_split = split;
    }
    r->order = sfc_xmalloc(r->K * sizeof *r->order);
    for (int c = 1; c < r->K; c++) r->order[c - 1] = c;
    /* insertion sort: N_c descending, ties by id */
    for (int i = 1; i < r->K - 1; i++) {
        int c = r->order[i], j = i;
        while (j > 0 && r->n_c[r->order[j - 1]] < r->n_c[c]) {
            r->order[j] = r->order[j - 1];
            j--;
        }
        r->order[j] = c;
    }
    return 0;
}

/* The db of a folder: explicit, <dir>/sfc.db, else <dir>/../sfc.db. */
static char *find_db(const char *abs, const char *explicit_db)
{
    if (explicit_db) return sfc_xstrdup(explicit_db);
    char *p = sfc_path_join(abs, "sfc.db");
    if (sfc_file_exists(p)) return p;
    free(p);
    char *parent = abs_clean(abs);
    char *s = strrchr(parent, '/');
    if (s && s != parent) *s = '\0';
    p = sfc_path_join(parent, "sfc.db");
    free(parent);
    if (sfc_file_exists(p)) return p;
    free(p);
    return NULL;
}

/* Fill a run whose folder (abs) and db are set. */
static int load_run(struct run *r)
{
    struct rrow *all = NULL;
    int nall = 0;
    if (read_rows(r->db, &all, &nall)) return -1;
    /* keep: rows naming the folder, the dataset's ingests, and the sample
     * run of the first training */
    for (int i = 0; i < nall; i++) all[i].mine = row_mine(&all[i], r->abs);
    r->sample_run = 0;
    r->first_train = 0;
    for (int i = 0; i < nall; i++) {
        struct rrow *w = &all[i];
        if (!w->mine || strcmp(w->tool, "sfc-trainstep")) continue;
        if (!r->first_train) {
            r->first_train = w->id;
            int64_t s = (int64_t)cfg_num(w, "schedule", 0);
            if (s <= 0)
                for (int k = 0; k < i; k++)
                    if (!strcmp(all[k].tool, "sfc-sample") &&
                        !strcmp(all[k].status, "ok"))
                        s = all[k].id;
            r->sample_run = s;
        }
        if (!r->pdw_warmup)
            r->pdw_warmup = (int)cfg_num(w, "pdw-warmup", 0);
    }
    if (!r->first_train)
        for (int k = 0; k < nall; k++)
            if (!strcmp(all[k].tool, "sfc-sample") &&
                !strcmp(all[k].status, "ok"))
                r->sample_run = all[k].id;
    for (int i = 0; i < nall; i++) {
        struct rrow *w = &all[i];
        if (w->mine || !strcmp(w->tool, "sfc-ingest") ||
            w->id == r->sample_run) {
            r->rows = sfc_xrealloc(r->rows, (r->nrows + 1) * sizeof *r->rows);
            r->rows[r->nrows++] = *w;
        } else {
            free(w->tool);
            free(w->version);
            free(w->started);
            free(w->status);
            free(w->config);
            sfc_json_release(&w->cfg);
        }
    }
    free(all);
    if (read_classes(r)) return -1;
    for (int i = 0; i < r->nrows; i++) {
        struct rrow *w = &r->rows[i];
        if (!w->mine) continue;
        if (!strcmp(w->tool, "sfc-miou") && read_metrics(r, w)) return -1;
        if (!strcmp(w->tool, "sfc-cam"))
            add_cams(r, resolve_in(cfg_str(w, "out"), r->abs));
        if (!strcmp(w->tool, "sfc-crf")) {
            const char *rule = cfg_str(w, "rule");
            add_lab(r, rule && !strcmp(rule, "cam-crf") ? "CAM+CRF"
                                                        : "IR label",
                    resolve_in(cfg_str(w, "out"), r->abs));
        }
        if (!strcmp(w->tool, "sfc-irn infer"))
            add_lab(r, "pseudo label", resolve_in(cfg_str(w, "out"), r->abs));
    }
    /* stage keys: the stage name without "-<run name>", and the map */
    size_t nl = strlen(r->name);
    for (int i = 0; i < r->nst; i++) {
        struct stage *s = &r->st[i];
        char *base = sfc_xstrdup(s->stage);
        size_t bl = strlen(base);
        if (bl > nl + 1 && base[bl - nl - 1] == '-' &&
            !strcmp(base + bl - nl, r->name))
            base[bl - nl - 1] = '\0';
        s->rank = stage_rank(base);
        s->key = *s->map ? sfc_xasprintf("%s %s", base, s->map)
                         : sfc_xstrdup(base);
        /* a stage scoring the labels of an sfc-crf or sfc-irn run is
         * named after them (voc.mk's "crf" stage scores IR labels) */
        const char *made = NULL;
        for (int k = 0; s->pred_dir && k < r->nlab; k++)
            if (!strcmp(r->lab[k].dir, s->pred_dir)) made = r->lab[k].title;
        if (made && !*s->map)
            s->title = sfc_xstrdup(made);
        else if (!strcmp(base, "cam") && *s->map)
            s->title = sfc_xstrdup(!strcmp(s->map, "CAM") ? "CAM" : s->map);
        else
            s->title = *s->map ? sfc_xasprintf("%s %s", pretty_stage(base),
                                               s->map)
                               : sfc_xstrdup(pretty_stage(base));
        if (s->pred_dir) add_lab(r, pretty_stage(base),
                                 sfc_xstrdup(s->pred_dir));
        if (s->cams_dir) add_cams(r, sfc_xstrdup(s->cams_dir));
        free(base);
    }
    if (r->nst) qsort(r->st, r->nst, sizeof *r->st, cmp_stage);
    if (r->nlab) qsort(r->lab, r->nlab, sizeof *r->lab, cmp_lab);
    return 0;
}

/* Distinct sfc-trainstep output folders inside abs, in training order. */
static int train_outs(struct sfc_db *db, const char *abs, char ***out,
                      int *n_out)
{
    struct rrow *all = NULL;
    int nall = 0;
    *out = NULL;
    *n_out = 0;
    if (read_rows(db, &all, &nall)) return -1;
    for (int i = 0; i < nall; i++) {
        if (!strcmp(all[i].tool, "sfc-trainstep")) {
            char *p = resolve_in(cfg_str(&all[i], "out"), abs);
            int dup = !p;
            for (int k = 0; p && k < *n_out; k++)
                if (!strcmp((*out)[k], p)) dup = 1;
            if (dup) {
                free(p);
            } else {
                *out = sfc_xrealloc(*out, (*n_out + 1) * sizeof **out);
                (*out)[(*n_out)++] = p;
            }
        }
        free(all[i].tool);
        free(all[i].version);
        free(all[i].started);
        free(all[i].status);
        free(all[i].config);
        sfc_json_release(&all[i].cfg);
    }
    free(all);
    return 0;
}

/* --------------------------------------------------------- page parts */

struct page {
    struct sbuf b;
    struct sfc_plot plot;
    const struct sfc_report_opts *o;
    int nfig;
};

/* Draw a figure and inline it as <img>; alt names it. */
static int figure(struct page *pg, int w, int h, const char *alt,
                  const char *script)
{
    char name[32];
    snprintf(name, sizeof name, "fig%03d", pg->nfig++);
    char *svg = NULL;
    size_t n = 0;
    if (sfc_plot_render(&pg->plot, name, w, h, script, &svg, &n)) return -1;
    /* raster layers (plot ... with image) are drawn pixel by pixel, not
     * smoothed: each pixel is one step of one class */
    struct sbuf fixed = {0};
    for (const char *s = svg, *e; s < svg + n; s = e + 7) {
        e = strstr(s, "<image ");
        if (!e) {
            sb_add(&fixed, s, (size_t)(svg + n - s));
            break;
        }
        sb_add(&fixed, s, (size_t)(e - s));
        sb_puts(&fixed, "<image style='image-rendering:pixelated' ");
    }
    sb_puts(&pg->b, "<figure>");
    sb_img(&pg->b, "image/svg+xml", fixed.s, fixed.n, alt, "plot");
    free(fixed.s);
    sb_puts(&pg->b, "<figcaption>");
    sb_html(&pg->b, alt);
    sb_puts(&pg->b, "</figcaption></figure>\n");
    free(svg);
    return 0;
}

/* A data file in the plot folder named <prefix><n>.dat. */
static FILE *datafile(struct page *pg, char *name, size_t cap)
{
    snprintf(name, cap, "d%03d.dat", pg->nfig);
    return sfc_plot_file(&pg->plot, name);
}

static void grid_open(struct page *pg, int n)
{
    sb_printf(&pg->b, "<div class=\"grid\" style=\"--n:%d\">\n", n);
}

static void cell_open(struct page *pg, const struct run *r)
{
    sb_puts(&pg->b, "<div class=\"cell\"><h3>");
    sb_html(&pg->b, r->name);
    sb_puts(&pg->b, "</h3>\n");
}

/* gnuplot: shaded head / middle / tail bands over classes at x = 1..n
 * (x = 0 is background) in the order of r->order. */
static void sb_group_bands(struct sbuf *s, const struct run *r,
                           int with_labels)
{
    static const char *const names[3] = {"head", "middle", "tail"};
    static const char *const fill[3] = {"#fde0dd", "#fff2cc", "#deebf7"};
    int start = 0;
    for (int i = 0; i < r->K - 1; i++) {
        int g = r->grp[r->order[i]];
        int next = i + 1 < r->K - 1 ? r->grp[r->order[i + 1]] : -2;
        if (next == g) continue;
        if (g >= 0 && g < 3) {
            sb_printf(s,
                      "set object rect from %g, graph 0 to %g, graph 1 "
                      "fc rgb '%s' fs solid 1.0 noborder behind\n",
                      start + 0.5, i + 1.5, fill[g]);
            if (with_labels)
                sb_printf(s, "set label '%s' at %g, graph 0.97 center\n",
                          names[g], (start + i + 2) / 2.0);
        }
        start = i + 1;
    }
}

static void sb_xtics(struct sbuf *s, const struct run *r, int with_bg)
{
    sb_puts(s, "set xtics (");
    int first = 1;
    if (with_bg) {
        char *q = sfc_plot_quote(r->cls[0]);
        sb_printf(s, "%s 0", q);
        free(q);
        first = 0;
    }
    for (int i = 0; i < r->K - 1; i++) {
        char *q = sfc_plot_quote(r->cls[r->order[i]]);
        sb_printf(s, "%s%s %d", first ? "" : ", ", q, i + 1);
        free(q);
        first = 0;
    }
    sb_puts(s, ")\n");
    if (r->K > 6) sb_puts(s, "set xtics rotate by -35 left\n");
}

/* ---- record ----------------------------------------------------------- */

static int sec_record(struct page *pg, struct run *runs, int n)
{
    struct sbuf *b = &pg->b;
    sb_puts(b, "<section id=\"record\"><h2>Run record</h2>\n");
    grid_open(pg, n);
    for (int ri = 0; ri < n; ri++) {
        struct run *r = &runs[ri];
        cell_open(pg, r);
        sb_puts(b, "<p>folder <code>");
        sb_html(b, shown_path(r->abs));
        sb_puts(b, "</code>, db <code>");
        sb_html(b, shown_path(r->dbpath));
        sb_puts(b, "</code></p>\n");
        /* dataset: images per split */
        sqlite3_stmt *st = sfc_db_prepare(
            r->db, "SELECT split, count(*) FROM image_splits GROUP BY split "
                   "ORDER BY split");
        if (!st) return -1;
        sb_puts(b, "<p class=\"dataset\">dataset: ");
        int rc, k = 0;
        while ((rc = sfc_db_step(r->db, st)) == 1) {
            sb_puts(b, k++ ? ", " : "");
            sb_html(b, (const char *)sqlite3_column_text(st, 0));
            sb_printf(b, " %lld images",
                      (long long)sqlite3_column_int64(st, 1));
        }
        sqlite3_finalize(st);
        if (rc < 0) return -1;
        sb_printf(b, "; %d classes + background</p>\n", r->K - 1);
        /* class counts, DC, groups */
        if (r->count_split) {
            char dn[32];
            FILE *fp = datafile(pg, dn, sizeof dn);
            if (!fp) return -1;
            for (int i = 0; i < r->K - 1; i++) {
                int c = r->order[i];
                fprintf(fp, "%d %lld %.9g %d\n", i + 1, (long long)r->n_c[c],
                        r->dc[c], r->grp[c] < 0 ? 3 : r->grp[c]);
            }
            fclose(fp);
            int has_dc = 0;
            for (int c = 1; c < r->K; c++) has_dc |= !isnan(r->dc[c]);
            struct sbuf s = {0};
            sb_xtics(&s, r, 0);
            sb_printf(&s,
                      "set linetype 11 lc rgb '#d62728'\n"
                      "set linetype 12 lc rgb '#ff7f0e'\n"
                      "set linetype 13 lc rgb '#1f77b4'\n"
                      "set linetype 14 lc rgb '#999999'\n"
                      "set style fill solid 0.85 border -1\n"
                      "set xrange [0.4:%d.6]\nset yrange [0:*]\n"
                      "set ylabel 'images with the class (N_c)'\n"
                      "set key top center opaque\nset ytics nomirror\n",
                      r->K - 1);
            if (has_dc)
                sb_puts(&s, "set y2label 'DC_c'\nset y2tics\n"
                            "set y2range [0:*]\n");
            sb_printf(&s,
                      "plot '%s' using 1:2:(0.7):($4+11) with boxes lc "
                      "variable notitle, NaN with boxes lt 11 title 'head', "
                      "NaN with boxes lt 12 title 'middle', NaN with boxes "
                      "lt 13 title 'tail'%s",
                      dn, has_dc ? ", '' using 1:3 axes x1y2 with "
                                   "linespoints pt 7 lc rgb 'black' title "
                                   "'DC_c'"
                                 : "");
            char *alt = sfc_xasprintf("class counts N_c of split '%s' "
                                      "(long tail), DC_c",
                                      r->count_split);
            int e = figure(pg, 560, 300, alt, s.s);
            free(alt);
            free(s.s);
            if (e) return -1;
            sb_puts(b, "<table class=\"classes\"><tr><th>class</th>"
                       "<th>N_c</th><th>DC_c</th><th>group</th></tr>\n");
            for (int i = 0; i < r->K - 1; i++) {
                int c = r->order[i];
                sb_printf(b, "<tr data-class=\"%d\"><td>", c);
                sb_html(b, r->cls[c]);
                sb_printf(b, "</td><td>%lld</td><td>", (long long)r->n_c[c]);
                if (isnan(r->dc[c]))
                    sb_puts(b, "&ndash;");
                else
                    sb_printf(b, "%.4f", r->dc[c]);
                sb_printf(b, "</td><td>%s</td></tr>\n",
                          r->grp[c] >= 0 ? sfc_class_group_name(r->grp[c])
                                         : "");
            }
            sb_puts(b, "</table>\n");
        }
        /* the runs: tool, version, seed, status, wall time, options */
        double total = 0;
        sb_puts(b, "<table class=\"runs\"><tr><th>id</th><th>tool</th>"
                   "<th>version</th><th>seed</th><th>started (UTC)</th>"
                   "<th>wall time</th><th>status</th><th>options</th></tr>\n");
        for (int i = 0; i < r->nrows; i++) {
            struct rrow *w = &r->rows[i];
            sb_printf(b, "<tr><td>%lld</td><td>", (long long)w->id);
            sb_html(b, w->tool);
            sb_puts(b, "</td><td>");
            sb_html(b, w->version);
            sb_puts(b, "</td><td>");
            if (w->has_seed)
                sb_printf(b, "%lld", (long long)w->seed);
            else
                sb_puts(b, "&ndash;");
            sb_puts(b, "</td><td>");
            sb_html(b, w->started);
            sb_puts(b, "</td><td>");
            if (isnan(w->secs)) {
                sb_puts(b, "&ndash;");
            } else {
                sb_printf(b, "%.1f s", w->secs);
                total += w->secs;
            }
            sb_printf(b, "</td><td class=\"%s\">", w->status);
            sb_html(b, w->status);
            sb_puts(b, "</td><td><details><summary>options</summary>"
                       "<table class=\"opts\">");
            for (int q = 0; q < w->cfg.n && w->cfg.type == SFC_JSON_OBJECT;
                 q++) {
                const struct sfc_json *v = &w->cfg.items[q];
                sb_puts(b, "<tr><td>");
                sb_html(b, w->cfg.keys[q]);
                sb_puts(b, "</td><td>");
                switch (v->type) {
                case SFC_JSON_NULL: sb_puts(b, "&ndash;"); break;
                case SFC_JSON_BOOL:
                    sb_puts(b, v->boolean ? "true" : "false");
                    break;
                case SFC_JSON_INT: sb_printf(b, "%lld", (long long)v->i); break;
                case SFC_JSON_REAL: sb_printf(b, "%.10g", v->real); break;
                case SFC_JSON_STRING: sb_html(b, v->str); break;
                default: sb_puts(b, "(nested)");
                }
                sb_puts(b, "</td></tr>");
            }
            sb_puts(b, "</table></details></td></tr>\n");
        }
        sb_printf(b, "<tr><td></td><td>total</td><td></td><td></td><td></td>"
                     "<td>%.1f s</td><td></td><td></td></tr></table>\n",
                  total);
        sb_puts(b, "</div>\n");
    }
    sb_puts(b, "</div></section>\n");
    return 0;
}

/* ---- training --------------------------------------------------------- */

/* train_log of the run's rows of one tool into a data file; returns the
 * row count (0: nothing) or -1. Resume points (a later run's first step)
 * go into *marks as gnuplot arrows. */
static long train_data(struct page *pg, struct run *r, const char *tool,
                       char *dn, size_t cap, struct sbuf *marks)
{
    FILE *fp = NULL;
    long rows = 0;
    int nruns = 0;
    sqlite3_stmt *st = sfc_db_prepare(
        r->db, "SELECT step, loss, loss_cls, loss_pdw, loss_wdw, loss_pos, "
               "loss_neg, lr, images_per_s FROM train_log WHERE run = ?1 "
               "ORDER BY step");
    if (!st) return -1;
    for (int i = 0; i < r->nrows; i++) {
        struct rrow *w = &r->rows[i];
        if (!w->mine || strcmp(w->tool, tool)) continue;
        if (sfc_db_bind(r->db, st, "I", w->id)) goto fail;
        int rc, first = 1;
        while ((rc = sfc_db_step(r->db, st)) == 1) {
            if (!fp && !(fp = datafile(pg, dn, cap))) goto fail;
            int64_t step = sqlite3_column_int64(st, 0);
            if (first && nruns > 0)
                sb_printf(marks,
                          "set arrow from %lld, graph 0 to %lld, graph 1 "
                          "nohead dt 2 lc rgb '#555555'\n"
                          "set label 'resume (run %lld)' at %lld, graph 0.9 "
                          "left offset 0.5,0 textcolor rgb '#555555'\n",
                          (long long)step, (long long)step,
                          (long long)w->id, (long long)step);
            if (first) nruns++;
            first = 0;
            fprintf(fp, "%lld", (long long)step);
            for (int k = 1; k <= 8; k++)
                fprintf(fp, " %.9g", col_num(st, k));
            fputc('\n', fp);
            rows++;
        }
        if (rc < 0) goto fail;
    }
    sqlite3_finalize(st);
    if (fp && fclose(fp)) return sfc_error(dn, "cannot write:");
    return rows;
fail:
    sqlite3_finalize(st);
    if (fp) fclose(fp);
    return -1;
}

static int sec_training(struct page *pg, struct run *runs, int n)
{
    struct sbuf *b = &pg->b;
    int any = 0;
    for (int ri = 0; ri < n; ri++)
        for (int i = 0; i < runs[ri].nrows; i++)
            if (runs[ri].rows[i].mine &&
                (!strcmp(runs[ri].rows[i].tool, "sfc-trainstep") ||
                 !strcmp(runs[ri].rows[i].tool, "sfc-irn train")))
                any = 1;
    if (!any) return 0;
    sb_puts(b, "<section id=\"training\"><h2>Training</h2>\n");
    grid_open(pg, n);
    for (int ri = 0; ri < n; ri++) {
        struct run *r = &runs[ri];
        cell_open(pg, r);
        char dn[32];
        struct sbuf marks = {0};
        sb_puts(&marks, "");
        long rows = train_data(pg, r, "sfc-trainstep", dn, sizeof dn, &marks);
        if (rows < 0) return -1;
        sb_puts(&marks, rows < 60 ? "set style data linespoints\n"
                                    "set pointsize 0.5\n"
                                  : "set style data lines\n");
        if (rows > 0) {
            if (r->pdw_warmup > 0)
                sb_printf(&marks,
                          "set arrow from %d, graph 0 to %d, graph 1 nohead "
                          "dt 3 lc rgb '#2ca02c'\n"
                          "set label 'L_PDW on' at %d, graph 0.82 left "
                          "offset 0.5,0 textcolor rgb '#2ca02c'\n",
                          r->pdw_warmup, r->pdw_warmup, r->pdw_warmup);
            struct sbuf s = {0};
            sb_printf(&s,
                      "%sset xlabel 'step'\nset ylabel 'loss'\n"
                      "set key top right opaque\nset yrange [0:*]\n"
                      "plot '%s' using 1:2 lw 1 lc rgb '#888888' "
                      "title 'total', '' using 1:3 lw 1.2 lt 1 "
                      "title 'L_cls', '' using 1:4 lw 1.2 lt 2 "
                      "title '1.6 L_PDW', '' using 1:5 lw 1.2 lt 3 "
                      "title '0.8 L_WDW'",
                      marks.s, dn);
            if (figure(pg, 560, 300, "SFC training losses per step", s.s))
                return -1;
            free(s.s);
            s = (struct sbuf){0};
            sb_printf(&s,
                      "%sset xlabel 'step'\nset ylabel 'learning rate'\n"
                      "set y2label 'images/s'\nset ytics nomirror\n"
                      "set y2tics\nset key bottom left opaque\n"
                      "set yrange [0:*]\nset y2range [0:*]\n"
                      "plot '%s' using 1:8 lw 1.5 title 'lr', "
                      "'' using 1:9 axes x1y2 lc rgb '#999999' "
                      "title 'images/s'",
                      marks.s, dn);
            if (figure(pg, 560, 260, "learning rate and throughput", s.s))
                return -1;
            free(s.s);
        }
        free(marks.s);
        marks = (struct sbuf){0};
        sb_puts(&marks, "");
        rows = train_data(pg, r, "sfc-irn train", dn, sizeof dn, &marks);
        if (rows < 0) return -1;
        sb_puts(&marks, rows < 60 ? "set style data linespoints\n"
                                    "set pointsize 0.5\n"
                                  : "set style data lines\n");
        if (rows > 0) {
            struct sbuf s = {0};
            sb_printf(&s,
                      "%sset xlabel 'step'\nset ylabel 'loss'\n"
                      "set key top right opaque\nset yrange [0:*]\n"
                      "plot '%s' using 1:2 lc rgb '#888888' "
                      "title 'total', '' using 1:6 lt 1 title 'L_pos', "
                      "'' using 1:7 lt 2 title 'L_neg'",
                      marks.s, dn);
            if (figure(pg, 560, 260, "IRN edge-branch training losses",
                       s.s))
                return -1;
            free(s.s);
        }
        free(marks.s);
        sb_puts(b, "</div>\n");
    }
    sb_puts(b, "</div></section>\n");
    return 0;
}

/* ---- image bank ------------------------------------------------------- */

static int sec_bank(struct page *pg, struct run *runs, int n)
{
    struct sbuf *b = &pg->b;
    int any = 0;
    for (int ri = 0; ri < n; ri++) {
        int64_t cnt = 0;
        if (runs[ri].sample_run &&
            sfc_db_query_int64(runs[ri].db, &cnt,
                               "SELECT count(*) FROM image_bank WHERE "
                               "run = ?1",
                               "I", runs[ri].sample_run) < 0)
            return -1;
        if (cnt > 0) any = 1;
    }
    if (!any) return 0;
    sb_puts(b, "<section id=\"bank\"><h2>Image bank</h2>\n"
               "<p>Each class slot of the bank holds the latest training "
               "image with the class; the map shows how many steps the held "
               "image has been there (white: empty slot). Bars: images of "
               "the class loaded in batches, and bank draws of the class "
               "(the images a tail class gets through replay).</p>\n");
    grid_open(pg, n);
    for (int ri = 0; ri < n; ri++) {
        struct run *r = &runs[ri];
        cell_open(pg, r);
        /* same sample run as an earlier column: say so */
        int same = -1;
        for (int k = 0; k < ri; k++)
            if (runs[k].sample_run == r->sample_run &&
                !strcmp(runs[k].dbpath, r->dbpath))
                same = k;
        if (same >= 0) {
            sb_puts(b, "<p>same schedule as ");
            sb_html(b, runs[same].name);
            sb_printf(b, " (sfc-sample run %lld)</p></div>\n",
                      (long long)r->sample_run);
            continue;
        }
        if (!r->sample_run) {
            sb_puts(b, "</div>\n");
            continue;
        }
        sqlite3_stmt *st = sfc_db_prepare(
            r->db, "SELECT step, class, image FROM image_bank WHERE run = ?1 "
                   "ORDER BY class, step");
        if (!st || sfc_db_bind(r->db, st, "I", r->sample_run)) {
            sqlite3_finalize(st);
            return -1;
        }
        char dn[32];
        FILE *fp = datafile(pg, dn, sizeof dn);
        if (!fp) {
            sqlite3_finalize(st);
            return -1;
        }
        /* per class: distinct images held, steps with an empty slot */
        long *held = sfc_xcalloc(r->K, sizeof *held);
        long *empty = sfc_xcalloc(r->K, sizeof *empty);
        long *full = sfc_xcalloc(r->K, sizeof *full);
        char **lastimg = sfc_xcalloc(r->K, sizeof *lastimg);
        char *last = NULL;
        int64_t since = 0, lastc = -1, maxstep = 0;
        int rc;
        while ((rc = sfc_db_step(r->db, st)) == 1) {
            int64_t step = sqlite3_column_int64(st, 0);
            int64_t c = sqlite3_column_int64(st, 1);
            const char *im = (const char *)sqlite3_column_text(st, 2);
            if (c != lastc) {
                if (lastc >= 0) fputc('\n', fp);
                free(last);
                last = NULL;
                lastc = c;
            }
            if (step > maxstep) maxstep = step;
            if (!im) {
                fprintf(fp, "%lld %lld NaN\n", (long long)step, (long long)c);
                if (c < r->K) empty[c]++;
                free(last);
                last = NULL;
                continue;
            }
            if (!last || strcmp(last, im)) {
                free(last);
                last = sfc_xstrdup(im);
                since = step;
                if (c < r->K) {
                    held[c]++;
                    free(lastimg[c]);
                    lastimg[c] = sfc_xstrdup(im);
                }
            }
            if (c < r->K) full[c]++;
            fprintf(fp, "%lld %lld %lld\n", (long long)step, (long long)c,
                    (long long)(step - since));
        }
        free(last);
        sqlite3_finalize(st);
        fclose(fp);
        if (rc < 0) {
            free(held);
            free(empty);
            free(full);
            sfc_db_strv_free(lastimg, r->K);
            return -1;
        }
        struct sbuf s = {0};
        sb_puts(&s, "set ytics (");
        for (int c = 1; c < r->K; c++) {
            char *q = sfc_plot_quote(r->cls[c]);
            sb_printf(&s, "%s%s %d", c > 1 ? ", " : "", q, c);
            free(q);
        }
        sb_printf(&s,
                  ")\nset xlabel 'step'\nset yrange [0.5:%d.5]\n"
                  "set xrange [-0.5:%lld.5]\n"
                  "set palette defined (0 '#fff7bc', 1 '#fec44f', 2 "
                  "'#d95f0e', 3 '#662506')\n"
                  "set cblabel 'steps the image has been in the slot'\n"
                  "plot '%s' using 1:2:3 with image notitle",
                  r->K - 1, (long long)maxstep, dn);
        if (figure(pg, 560, 60 + 28 * r->K, "image bank: age of each "
                                            "class slot's image per step",
                   s.s)) {
            free(held);
            free(empty);
            free(full);
            sfc_db_strv_free(lastimg, r->K);
            return -1;
        }
        free(s.s);
        /* draws and batch images per class */
        double *draws = sfc_xcalloc(r->K, sizeof *draws);
        double *batch = sfc_xcalloc(r->K, sizeof *batch);
        st = sfc_db_prepare(r->db,
                            "SELECT bank_class, count(*) FROM schedule "
                            "WHERE run = ?1 AND source = 'bank' GROUP BY "
                            "bank_class");
        rc = st ? sfc_db_bind(r->db, st, "I", r->sample_run) : -1;
        while (rc == 0 && (rc = sfc_db_step(r->db, st)) == 1) {
            int64_t c = sqlite3_column_int64(st, 0);
            if (c > 0 && c < r->K) draws[c] = sqlite3_column_double(st, 1);
            rc = 0;
        }
        sqlite3_finalize(st);
        if (rc >= 0) {
            st = sfc_db_prepare(
                r->db, "SELECT l.class, count(*) FROM schedule s JOIN "
                       "image_labels l ON l.image = s.image WHERE s.run = ?1 "
                       "AND s.source = 'batch' GROUP BY l.class");
            rc = st ? sfc_db_bind(r->db, st, "I", r->sample_run) : -1;
            while (rc == 0 && (rc = sfc_db_step(r->db, st)) == 1) {
                int64_t c = sqlite3_column_int64(st, 0);
                if (c > 0 && c < r->K)
                    batch[c] = sqlite3_column_double(st, 1);
                rc = 0;
            }
            sqlite3_finalize(st);
        }
        if (rc < 0) {
            free(held);
            free(empty);
            free(full);
            sfc_db_strv_free(lastimg, r->K);
            free(draws);
            free(batch);
            return -1;
        }
        fp = datafile(pg, dn, sizeof dn);
        if (!fp) {
            free(held);
            free(empty);
            free(full);
            sfc_db_strv_free(lastimg, r->K);
            free(draws);
            free(batch);
            return -1;
        }
        for (int i = 0; i < r->K - 1; i++) {
            int c = r->order[i];
            fprintf(fp, "%d %.0f %.0f\n", i + 1, batch[c], draws[c]);
        }
        fclose(fp);
        s = (struct sbuf){0};
        sb_xtics(&s, r, 0);
        sb_group_bands(&s, r, 1);
        sb_printf(&s,
                  "set style fill solid 0.85 border -1\n"
                  "set xrange [0.4:%d.6]\nset yrange [0:*]\n"
                  "set ylabel 'images over the schedule'\n"
                  "set key at graph 0.98, graph 0.9 right top samplen 1 opaque\n"
                  "plot '%s' using ($1-0.18):2:(0.34) with boxes lc rgb "
                  "'#4c72b0' title 'in batches', '' using ($1+0.18):3:(0.34) "
                  "with boxes lc rgb '#dd8452' title 'bank draws'",
                  r->K - 1, dn);
        int e = figure(pg, 560, 280, "images per class: batches and bank "
                                     "draws, classes by N_c",
                       s.s);
        free(s.s);
        if (!e) {
            sb_puts(b, "<table class=\"bankt\"><tr><th>class</th>"
                       "<th>in batches</th><th>bank draws</th>"
                       "<th>images held</th><th>mean steps held</th>"
                       "<th>steps empty</th><th>last image</th></tr>\n");
            for (int i = 0; i < r->K - 1; i++) {
                int c = r->order[i];
                sb_printf(b, "<tr data-class=\"%d\"><td>", c);
                sb_html(b, r->cls[c]);
                sb_printf(b,
                          "</td><td>%.0f</td><td>%.0f</td><td>%ld</td>"
                          "<td>%.1f</td><td>%ld</td><td>",
                          batch[c], draws[c], held[c],
                          held[c] ? (double)full[c] / held[c] : 0.0,
                          empty[c]);
                sb_html(b, lastimg[c] ? lastimg[c] : "");
                sb_puts(b, "</td></tr>\n");
            }
            sb_puts(b, "</table>\n");
        }
        free(held);
        free(empty);
        free(full);
        sfc_db_strv_free(lastimg, r->K);
        free(draws);
        free(batch);
        if (e) return -1;
        sb_puts(b, "</div>\n");
    }
    sb_puts(b, "</div></section>\n");
    return 0;
}

/* ---- evaluation ------------------------------------------------------- */

static double over_act(const struct stage *s, int c)
{
    double gt = s->tp[c] + s->fn[c];
    return gt > 0 ? s->fp[c] / gt : NAN;
}

static double under_act(const struct stage *s, int c)
{
    double gt = s->tp[c] + s->fn[c];
    return gt > 0 ? s->fn[c] / gt : NAN;
}

/* Grouped bars: series values[s][x] for x = 0..K-1 in class order
 * (background first), one colour per series. With neg_pairs, vals holds
 * 2 * nser series drawn in two panels: the first nser upward (ylabel),
 * the next nser downward on [0, 100] (labelled by yrange). */
static int bar_figure(struct page *pg, const struct run *r, int nser,
                      char **titles, double *const *vals, int neg_pairs,
                      const char *ylabel, const char *yrange,
                      const char *alt)
{
    char dn[32];
    FILE *fp = datafile(pg, dn, sizeof dn);
    if (!fp) return -1;
    int cols = neg_pairs ? 2 * nser : nser;
    for (int i = 0; i < r->K; i++) {
        int c = i == 0 ? 0 : r->order[i - 1];
        fprintf(fp, "%d", i);
        for (int k = 0; k < cols; k++) {
            double v = vals[k][c];
            fprintf(fp, " %.6g", isnan(v) ? NAN : 100 * v);
        }
        fputc('\n', fp);
    }
    fclose(fp);
    struct sbuf s = {0};
    if (neg_pairs)
        sb_puts(&s, "set xtics 1 format ''\n");
    else
        sb_xtics(&s, r, 1);
    sb_group_bands(&s, r, 1);
    double w = 0.8 / nser;
    sb_puts(&s, "set style fill solid 0.9 border -1\n"
                "set xzeroaxis lt -1\nset grid ytics\n");
    sb_printf(&s, "set xrange [-0.6:%d.6]\n", r->K - 1);
    if (neg_pairs)
        /* two panels on one x axis: the first value of each pair upward
         * (autoscaled), the second downward on [0, 100] */
        sb_printf(&s,
                  "set multiplot layout 2,1\n"
                  "set lmargin 10\nset rmargin 2\n"
                  "set tmargin 1\nset bmargin 0\nset format x ''\n"
                  "set yrange [0:*]\nset ylabel '%s'\nunset key\n",
                  ylabel);
    else
        sb_printf(&s,
                  "set yrange %s\nset ylabel '%s'\n"
                  "set key outside bottom center horizontal\n",
                  yrange, ylabel);
    sb_puts(&s, "plot ");
    for (int k = 0; k < nser; k++) {
        char *q = sfc_plot_quote(titles[k]);
        sb_printf(&s,
                  "%s'%s' using ($1+%g):(column(%d)):(%g) with boxes lt %d "
                  "title %s",
                  k ? ", " : "", dn, (k - (nser - 1) / 2.0) * w, k + 2,
                  w * 0.95, k + 1, q);
        free(q);
    }
    sb_puts(&s, "\n");
    if (neg_pairs) {
        sb_printf(&s,
                  "set tmargin 0\nset bmargin 7\n"
                  "set yrange [100:0]\nset ylabel '%s'\n"
                  "set key outside bottom center horizontal\n"
                  "unset object\nunset label\n",
                  yrange);
        sb_xtics(&s, r, 1);
        sb_group_bands(&s, r, 0);
        sb_puts(&s, "plot ");
        for (int k = 0; k < nser; k++) {
            char *q = sfc_plot_quote(titles[k]);
            sb_printf(&s,
                      "%s'%s' using ($1+%g):(column(%d)):(%g) with boxes "
                      "lt %d fs pattern 2 border title %s",
                      k ? ", " : "", dn, (k - (nser - 1) / 2.0) * w,
                      nser + k + 2, w * 0.95, k + 1, q);
            free(q);
        }
        sb_puts(&s, "\nunset multiplot\n");
    }
    int e = figure(pg, 620, neg_pairs ? 480 : 330, alt, s.s);
    free(s.s);
    return e;
}

static int sec_eval(struct page *pg, struct run *runs, int n)
{
    struct sbuf *b = &pg->b;
    int any = 0;
    for (int ri = 0; ri < n; ri++) any |= runs[ri].nst > 0;
    if (!any) return 0;
    sb_puts(b, "<section id=\"evaluation\"><h2>Evaluation</h2>\n"
               "<p>Per-class IoU of every evaluated stage (sfc-miou rows of "
               "the db), classes by N_c, background first. Over-activation "
               "= FP / (TP + FN): pixels wrongly given the class, relative "
               "to its true area; under-activation = FN / (TP + FN) = 1 "
               "&minus; recall (upper and lower panel).</p>\n");
    grid_open(pg, n);
    for (int ri = 0; ri < n; ri++) {
        struct run *r = &runs[ri];
        cell_open(pg, r);
        if (!r->nst) {
            sb_puts(b, "</div>\n");
            continue;
        }
        char **titles = sfc_xmalloc(r->nst * sizeof *titles);
        double **vals = sfc_xmalloc(2 * r->nst * sizeof *vals);
        for (int k = 0; k < r->nst; k++) {
            titles[k] = r->st[k].title;
            vals[k] = r->st[k].iou;
        }
        int e = bar_figure(pg, r, r->nst, titles, vals, 0, "IoU (%)",
                           "[0:105]", "per-class IoU by stage");
        for (int k = 0; k < r->nst && !e; k++) {
            vals[k] = sfc_xmalloc(r->K * sizeof(double));
            vals[r->nst + k] = sfc_xmalloc(r->K * sizeof(double));
            for (int c = 0; c < r->K; c++) {
                vals[k][c] = over_act(&r->st[k], c);
                vals[r->nst + k][c] = under_act(&r->st[k], c);
            }
        }
        if (!e)
            e = bar_figure(pg, r, r->nst, titles, vals, 1,
                           "over-activation (%)", "under-activation (%)",
                           "over- and under-activation per class");
        if (!e)
            for (int k = 0; k < 2 * r->nst; k++) free(vals[k]);
        free(vals);
        free(titles);
        if (e) return -1;
        /* summary means */
        sb_puts(b, "<table class=\"summary\" data-run=\"");
        sb_html(b, r->name);
        sb_puts(b, "\"><tr><th>stage</th><th>split</th>");
        for (int i = 0; i < NSUM; i++)
            sb_printf(b, "<th>%s</th>", sum_titles[i]);
        sb_puts(b, "</tr>\n");
        for (int k = 0; k < r->nst; k++) {
            struct stage *s = &r->st[k];
            sb_puts(b, "<tr data-stage=\"");
            sb_html(b, s->key);
            sb_puts(b, "\"><td>");
            sb_html(b, s->title);
            sb_puts(b, "</td><td>");
            sb_html(b, s->split);
            sb_puts(b, "</td>");
            for (int i = 0; i < NSUM; i++) {
                sb_printf(b, "<td data-v=\"%.9g\">", s->sum[i]);
                sb_pct(b, s->sum[i]);
                sb_puts(b, "</td>");
            }
            sb_puts(b, "</tr>\n");
        }
        sb_puts(b, "</table>\n");
        /* per class: IoU, over, under of each stage */
        sb_puts(b, "<details><summary>per class: IoU / over / under "
                   "(%)</summary><table class=\"iou\" data-run=\"");
        sb_html(b, r->name);
        sb_puts(b, "\"><tr><th>class</th><th>N_c</th>");
        for (int k = 0; k < r->nst; k++) {
            sb_puts(b, "<th>");
            sb_html(b, r->st[k].title);
            sb_puts(b, "</th>");
        }
        sb_puts(b, "</tr>\n");
        for (int i = 0; i < r->K; i++) {
            int c = i == 0 ? 0 : r->order[i - 1];
            sb_printf(b, "<tr data-class=\"%d\"><td>", c);
            sb_html(b, r->cls[c]);
            if (c)
                sb_printf(b, "</td><td>%lld</td>", (long long)r->n_c[c]);
            else
                sb_puts(b, "</td><td></td>");
            for (int k = 0; k < r->nst; k++) {
                struct stage *s = &r->st[k];
                double ov = over_act(s, c), un = under_act(s, c);
                sb_puts(b, "<td data-stage=\"");
                sb_html(b, s->key);
                sb_printf(b, "\" data-iou=\"%.9g\" data-over=\"%.9g\" "
                             "data-under=\"%.9g\">",
                          s->iou[c], ov, un);
                sb_pct(b, s->iou[c]);
                sb_puts(b, " / ");
                sb_pct(b, ov);
                sb_puts(b, " / ");
                sb_pct(b, un);
                sb_puts(b, "</td>");
            }
            sb_puts(b, "</tr>\n");
        }
        sb_puts(b, "</table></details>\n</div>\n");
    }
    sb_puts(b, "</div></section>\n");
    return 0;
}

/* ---- comparison ------------------------------------------------------- */

/* mIoU, head and tail of every stage of the first run, for each run
 * that evaluated it too (the one-minute summary). */
static void cmp_summary(struct sbuf *b, struct run *runs, int n)
{
    static const int cols[3] = {0, 2, 4}; /* miou, head, tail */
    sb_puts(b, "<table class=\"cmpsum\"><tr><th rowspan=\"2\">stage</th>");
    for (int ri = 0; ri < n; ri++) {
        sb_puts(b, "<th colspan=\"3\">");
        sb_html(b, runs[ri].name);
        sb_puts(b, "</th>");
    }
    sb_puts(b, "</tr><tr>");
    for (int ri = 0; ri < n; ri++)
        for (int k = 0; k < 3; k++)
            sb_printf(b, "<th>%s</th>", sum_titles[cols[k]]);
    sb_puts(b, "</tr>\n");
    for (int k = 0; k < runs[0].nst; k++) {
        const struct stage *s0 = &runs[0].st[k];
        sb_puts(b, "<tr data-stage=\"");
        sb_html(b, s0->key);
        sb_puts(b, "\"><td>");
        sb_html(b, s0->title);
        sb_puts(b, "</td>");
        for (int ri = 0; ri < n; ri++) {
            const struct stage *s = NULL;
            for (int j = 0; j < runs[ri].nst; j++)
                if (!strcmp(runs[ri].st[j].key, s0->key) &&
                    !strcmp(runs[ri].st[j].split, s0->split))
                    s = &runs[ri].st[j];
            for (int c = 0; c < 3; c++) {
                double v = s ? s->sum[cols[c]] : NAN;
                sb_printf(b, "<td data-v=\"%.9g\">", v);
                sb_pct(b, v);
                sb_puts(b, "</td>");
            }
        }
        sb_puts(b, "</tr>\n");
    }
    sb_puts(b, "</table>\n");
}

static int sec_compare(struct page *pg, struct run *runs, int n)
{
    struct sbuf *b = &pg->b;
    if (n < 2) return 0;
    struct run *a = &runs[0];
    int started = 0;
    for (int ri = 1; ri < n; ri++) {
        struct run *r = &runs[ri];
        /* the stages both runs evaluated, in the first run's order */
        int ns = 0;
        int *ia = sfc_xmalloc((a->nst + 1) * sizeof *ia);
        int *ib = sfc_xmalloc((a->nst + 1) * sizeof *ib);
        for (int k = 0; k < a->nst; k++)
            for (int j = 0; j < r->nst; j++)
                if (!strcmp(a->st[k].key, r->st[j].key) &&
                    !strcmp(a->st[k].split, r->st[j].split)) {
                    ia[ns] = k;
                    ib[ns++] = j;
                    break;
                }
        if (!ns) {
            free(ia);
            free(ib);
            continue;
        }
        if (!started) {
            sb_puts(b, "<section id=\"comparison\"><h2>Comparison</h2>\n");
            cmp_summary(b, runs, n);
            sb_puts(b, "<p>Per-class IoU difference of each run against "
                       "the first, in percentage points, for the stages "
                       "both evaluated; classes by N_c of the first run "
                       "(largest first).</p>\n");
            grid_open(pg, n - 1);
            started = 1;
        }
        sb_puts(b, "<div class=\"cell\"><h3>");
        sb_html(b, r->name);
        sb_puts(b, " &minus; ");
        sb_html(b, a->name);
        sb_puts(b, "</h3>\n");
        char **titles = sfc_xmalloc(ns * sizeof *titles);
        double **vals = sfc_xmalloc(ns * sizeof *vals);
        for (int k = 0; k < ns; k++) {
            titles[k] = a->st[ia[k]].title;
            vals[k] = sfc_xmalloc(a->K * sizeof(double));
            for (int c = 0; c < a->K; c++)
                vals[k][c] = r->st[ib[k]].iou[c] - a->st[ia[k]].iou[c];
        }
        char *alt = sfc_xasprintf("per-class IoU difference, %s minus %s",
                                  r->name, a->name);
        int e = bar_figure(pg, a, ns, titles, vals, 0,
                           "IoU difference (points)", "[*:*]", alt);
        free(alt);
        if (!e) {
            sb_puts(b, "<table class=\"diff\" data-run=\"");
            sb_html(b, r->name);
            sb_puts(b, "\" data-base=\"");
            sb_html(b, a->name);
            sb_puts(b, "\"><tr><th>class</th><th>N_c</th>");
            for (int k = 0; k < ns; k++) {
                sb_puts(b, "<th>");
                sb_html(b, titles[k]);
                sb_puts(b, "</th>");
            }
            sb_puts(b, "</tr>\n");
            for (int i = 0; i < a->K; i++) {
                int c = i == 0 ? 0 : a->order[i - 1];
                sb_printf(b, "<tr data-class=\"%d\"><td>", c);
                sb_html(b, a->cls[c]);
                if (c)
                    sb_printf(b, "</td><td>%lld</td>", (long long)a->n_c[c]);
                else
                    sb_puts(b, "</td><td></td>");
                for (int k = 0; k < ns; k++) {
                    double d = vals[k][c];
                    sb_puts(b, "<td data-stage=\"");
                    sb_html(b, a->st[ia[k]].key);
                    sb_printf(b, "\" data-v=\"%.9g\" class=\"%s\">", d,
                              d > 0 ? "up" : d < 0 ? "down" : "");
                    if (isnan(d))
                        sb_puts(b, "&ndash;");
                    else
                        sb_printf(b, "%+.1f", 100 * d);
                    sb_puts(b, "</td>");
                }
                sb_puts(b, "</tr>\n");
            }
            sb_puts(b, "</table>\n");
        }
        for (int k = 0; k < ns; k++) free(vals[k]);
        free(vals);
        free(titles);
        free(ia);
        free(ib);
        if (e) return -1;
        sb_puts(b, "</div>\n");
    }
    if (started) sb_puts(b, "</div></section>\n");
    return 0;
}

/* ---- examples --------------------------------------------------------- */

/* The label stage a run's images are scored with: the last stage (in
 * pipeline order) scored from label PNGs, else the first scored from
 * CAMs (its M_W, or the classifier CAM for map "CAM"). */
static const struct stage *score_stage(const struct run *r)
{
    const struct stage *best = NULL;
    for (int k = 0; k < r->nst; k++)
        if (r->st[k].pred_dir) best = &r->st[k];
    if (best) return best;
    for (int k = 0; k < r->nst; k++)
        if (r->st[k].cams_dir &&
            (!strcmp(r->st[k].map, "M_W") || !strcmp(r->st[k].map, "CAM")))
            return &r->st[k];
    return NULL;
}

/* The label map a stage gives image id (uint8 (H, W)); -1 if absent or
 * unreadable (error slot set). */
static int stage_label(const struct stage *s, const char *id,
                       struct sfc_tensor *out)
{
    if (s->pred_dir) {
        char *name = sfc_xasprintf("%s.png", id);
        char *p = sfc_path_join(s->pred_dir, name);
        free(name);
        int rc = sfc_file_exists(p) ? sfc_label_load(p, out)
                                    : sfc_error(p, "missing");
        free(p);
        return rc;
    }
    char *name = sfc_xasprintf("%s.npz", id);
    char *p = sfc_path_join(s->cams_dir, name);
    free(name);
    struct sfc_npz z;
    int rc = -1;
    if (!sfc_file_exists(p) || sfc_camfile_read(p, &z)) {
        if (!sfc_file_exists(p)) sfc_error(p, "missing");
        free(p);
        return -1;
    }
    const struct sfc_tensor *keys = sfc_npz_get(&z, "keys");
    const struct sfc_tensor *m =
        sfc_npz_get(&z, !strcmp(s->map, "CAM") ? "cam_c" : "cam_w");
    if (keys && m && m->ndim == 3 && m->dtype == SFC_F32 &&
        keys->dtype == SFC_I64 && keys->ndim == 1 &&
        keys->shape[0] == m->shape[0]) {
        int64_t shp[2] = {m->shape[1], m->shape[2]};
        if (!sfc_tensor_init(out, SFC_U8, 2, shp)) {
            sfc_cam_argmax(keys, m, out->data);
            rc = 0;
        }
    } else {
        sfc_error(p, "not a CAM file");
    }
    sfc_npz_release(&z);
    free(p);
    return rc;
}

struct example {
    char *id, *image, *mask, *why;
    double *score; /* per run, NaN when not scored */
};

/* Per-image mIoU of each image of the split, for one run. */
static void score_images(const struct run *r, struct sfc_db_image *im,
                         long nim, double *score)
{
    const struct stage *s = score_stage(r);
    struct sfc_confusion cm;
    for (long i = 0; i < nim; i++) score[i] = NAN;
    if (!s || sfc_confusion_init(&cm, r->K)) return;
    double *iou = sfc_xmalloc(r->K * sizeof *iou);
    for (long i = 0; i < nim; i++) {
        struct sfc_tensor gt = {0}, pr = {0};
        if (!im[i].mask || sfc_label_load(im[i].mask, &gt) ||
            stage_label(s, im[i].id, &pr) || gt.shape[0] != pr.shape[0] ||
            gt.shape[1] != pr.shape[1]) {
            sfc_error_clear();
        } else {
            sfc_confusion_zero(&cm);
            if (!sfc_confusion_add(&cm, pr.data, gt.data,
                                   sfc_tensor_numel(&gt), im[i].id,
                                   im[i].mask)) {
                sfc_confusion_scores(&cm, iou, NULL, NULL, NULL, NULL);
                score[i] = sfc_nanmean(iou, r->K);
            }
            sfc_error_clear();
        }
        sfc_tensor_release(&gt);
        sfc_tensor_release(&pr);
    }
    free(iou);
    sfc_confusion_release(&cm);
}

static int has_label(const struct sfc_db_image *im, int c)
{
    for (int k = 0; k < im->nlabels; k++)
        if (im->labels[k] == c) return 1;
    return 0;
}

/* Max over the foreground channels, scaled to [0, 1] by its maximum. */
static float *fg_heat(const struct sfc_tensor *keys,
                      const struct sfc_tensor *m)
{
    int64_t K = m->shape[0], HW = m->shape[1] * m->shape[2];
    float *h = sfc_xcalloc((size_t)HW, sizeof *h);
    const float *d = sfc_tensor_f(m);
    (void)keys;
    float mx = 0;
    for (int64_t k = 1; k < K; k++)
        for (int64_t p = 0; p < HW; p++)
            if (d[k * HW + p] > h[p]) h[p] = d[k * HW + p];
    for (int64_t p = 0; p < HW; p++)
        if (h[p] > mx) mx = h[p];
    if (mx > 0)
        for (int64_t p = 0; p < HW; p++) h[p] /= mx;
    return h;
}

static void tile_cell(struct sbuf *b, int rc, void *png, size_t n,
                      const char *alt, const char *mime)
{
    sb_puts(b, "<td>");
    if (rc == 0) {
        sb_img(b, mime, png, n, alt, "tile");
        free(png);
    } else {
        sb_puts(b, "<span class=\"na\">&ndash;</span>");
    }
    sb_puts(b, "</td>");
}

static const char *const cam_maps[3] = {"cam_c", "cam_w", "cam_p"};
static const char *const cam_titles[3] = {"CAM (classifier)", "M_W",
                                          "M_P"};

/* A table of example images: per image one row per run with the input
 * and ground truth (shared), the CAM heat maps and the label maps of each
 * run. Columns appear when some image has the file; only (non-NULL)
 * keeps only the label folders of that title. score[run][pick] may be
 * NULL. */
static int example_table(struct page *pg, struct run *runs, int n,
                         struct sfc_db_image *im, const long *pick,
                         const char *const *why, int np, double **score,
                         const char *only, const char *cls)
{
    struct sbuf *b = &pg->b;
    int rc = 0;
    /* which columns exist: CAM maps, label folders by title */
    int has_map[3] = {0, 0, 0};
    char *ltitles[16];
    int nlt = 0;
    for (int ri = 0; ri < n; ri++) {
        for (int k = 0; k < runs[ri].nlab; k++) {
            int dup = 0, files = 0;
            for (int t = 0; t < nlt; t++)
                dup |= !strcmp(ltitles[t], runs[ri].lab[k].title);
            /* a column only when some example has a file in it (IR
             * labels usually cover training images only) */
            for (int p = 0; p < np && !dup && !files; p++) {
                char *nm = sfc_xasprintf("%s.png", im[pick[p]].id);
                char *path = sfc_path_join(runs[ri].lab[k].dir, nm);
                files = sfc_file_exists(path);
                free(nm);
                free(path);
            }
            if (only && strcmp(runs[ri].lab[k].title, only)) files = 0;
            if (!dup && files && nlt < 16)
                ltitles[nlt++] = runs[ri].lab[k].title;
        }
        for (int p = 0; p < np; p++)
            for (int k = 0; k < runs[ri].ncam; k++) {
                char *nm = sfc_xasprintf("%s.npz", im[pick[p]].id);
                char *path = sfc_path_join(runs[ri].cams[k], nm);
                free(nm);
                struct sfc_npz z;
                if (sfc_file_exists(path) && !sfc_camfile_read(path, &z)) {
                    for (int m = 0; m < 3; m++)
                        if (sfc_npz_get(&z, cam_maps[m])) has_map[m] = 1;
                    sfc_npz_release(&z);
                }
                sfc_error_clear();
                free(path);
            }
    }
    sb_printf(b, "<table class=\"%s\"><tr><th>image</th><th>input</th>"
                 "<th>ground truth</th><th>run</th>",
              cls);
    for (int m = 0; m < 3; m++)
        if (has_map[m]) sb_printf(b, "<th>%s</th>", cam_titles[m]);
    for (int t = 0; t < nlt; t++) {
        sb_puts(b, "<th>");
        sb_html(b, ltitles[t]);
        sb_puts(b, "</th>");
    }
    sb_puts(b, "</tr>\n");
    int side = pg->o->tile;
    for (int p = 0; p < np && !rc; p++) {
        struct sfc_db_image *e = &im[pick[p]];
        struct sfc_tensor rgb = {0}, gt = {0};
        int have_rgb = !sfc_image_load(e->path, &rgb);
        sfc_error_clear();
        for (int ri = 0; ri < n; ri++) {
            struct run *r = &runs[ri];
            sb_puts(b, "<tr class=\"ex\" data-id=\"");
            sb_html(b, e->id);
            sb_puts(b, "\" data-why=\"");
            sb_html(b, why[p]);
            sb_puts(b, "\" data-run=\"");
            sb_html(b, r->name);
            sb_puts(b, "\">");
            if (ri == 0) {
                sb_printf(b, "<td rowspan=\"%d\" class=\"exid\"><b>", n);
                sb_html(b, e->id);
                sb_puts(b, "</b><br>");
                sb_html(b, why[p]);
                sb_puts(b, "<br>");
                for (int k = 0; k < e->nlabels; k++) {
                    if (e->labels[k] >= r->K) continue;
                    sb_puts(b, k ? ", " : "");
                    sb_html(b, r->cls[e->labels[k]]);
                }
                sb_puts(b, "</td>");
                void *png = NULL;
                size_t len = 0;
                int t = have_rgb ? sfc_tile_rgb(e->id, &rgb, side, &png, &len)
                                 : -1;
                sb_printf(b, "<td rowspan=\"%d\" class=\"in\">", n);
                if (!t) {
                    sb_img(b, "image/jpeg", png, len, e->id, "tile");
                    free(png);
                }
                sb_puts(b, "</td>");
                t = e->mask && !sfc_label_load(e->mask, &gt)
                        ? sfc_tile_label(e->id, &gt, side, &png, &len)
                        : -1;
                sb_printf(b, "<td rowspan=\"%d\" class=\"in\">", n);
                if (!t) {
                    sb_img(b, "image/png", png, len, "ground truth", "tile");
                    free(png);
                }
                sb_puts(b, "</td>");
                sfc_error_clear();
            }
            double v = score ? score[ri][pick[p]] : NAN;
            sb_printf(b, "<td class=\"rn\" data-v=\"%.9g\">", v);
            sb_html(b, r->name);
            if (!isnan(v)) sb_printf(b, "<br>mIoU %.1f", 100 * v);
            sb_puts(b, "</td>");
            /* CAM heat maps */
            struct sfc_npz z;
            int have_z = 0;
            for (int k = 0; k < r->ncam && !have_z; k++) {
                char *nm = sfc_xasprintf("%s.npz", e->id);
                char *path = sfc_path_join(r->cams[k], nm);
                free(nm);
                have_z = sfc_file_exists(path) && !sfc_camfile_read(path, &z);
                free(path);
            }
            sfc_error_clear();
            for (int m = 0; m < 3; m++) {
                if (!has_map[m]) continue;
                const struct sfc_tensor *t =
                    have_z ? sfc_npz_get(&z, cam_maps[m]) : NULL;
                const struct sfc_tensor *keys =
                    have_z ? sfc_npz_get(&z, "keys") : NULL;
                void *png = NULL;
                size_t len = 0;
                int trc = -1;
                if (t && keys && have_rgb && t->ndim == 3 &&
                    t->dtype == SFC_F32 && t->shape[1] == rgb.shape[0] &&
                    t->shape[2] == rgb.shape[1]) {
                    float *h = fg_heat(keys, t);
                    trc = sfc_tile_heat(e->id, &rgb, h, pg->o->alpha, side,
                                        &png, &len);
                    free(h);
                }
                sfc_error_clear();
                tile_cell(b, trc, png, len, cam_titles[m], "image/jpeg");
            }
            if (have_z) sfc_npz_release(&z);
            /* label maps */
            for (int t = 0; t < nlt; t++) {
                void *png = NULL;
                size_t len = 0;
                int trc = -1;
                for (int k = 0; k < r->nlab && trc; k++) {
                    if (strcmp(r->lab[k].title, ltitles[t])) continue;
                    char *nm = sfc_xasprintf("%s.png", e->id);
                    char *path = sfc_path_join(r->lab[k].dir, nm);
                    free(nm);
                    struct sfc_tensor lab = {0};
                    if (sfc_file_exists(path) && !sfc_label_load(path, &lab))
                        trc = sfc_tile_label(e->id, &lab, side, &png, &len);
                    sfc_tensor_release(&lab);
                    free(path);
                }
                sfc_error_clear();
                tile_cell(b, trc, png, len, ltitles[t], "image/png");
            }
            sb_puts(b, "</tr>\n");
        }
        sfc_tensor_release(&rgb);
        sfc_tensor_release(&gt);
    }
    sb_puts(b, "</table>\n");
    return rc;
}

/* Up to ex images (ok[i] set, used[i] not) with a head class, then up
 * to ex with a tail class, the rarest classes first, one image per class
 * in turn; appended to pick / why, marked in used. */
static void pick_groups(const struct run *r0, struct sfc_db_image *im,
                        long nim, const char *ok, char *used, int ex,
                        long *pick, const char **why, int *np)
{
    for (int g = 0; g < 3; g += 2) {
        int got = 0;
        for (int pass = 0; pass < ex && got < ex; pass++) {
            for (int j = 0; j < r0->K - 1 && got < ex; j++) {
                int c = r0->order[g == 0 ? j : r0->K - 2 - j];
                if (r0->grp[c] != g) continue;
                int seen = 0;
                for (long i = 0; i < nim; i++) {
                    if (!has_label(&im[i], c) || !ok[i]) continue;
                    if (seen++ < pass) continue;
                    if (!used[i]) {
                        pick[*np] = i;
                        why[(*np)++] = g == 0 ? "head class" : "tail class";
                        used[i] = 1;
                        got++;
                    }
                    break;
                }
            }
        }
    }
}

/* IR labels usually exist for training images only (the val examples
 * have none): a few training images with IR labels, head and tail. */
static int ir_examples(struct page *pg, struct run *runs, int n)
{
    struct run *r0 = &runs[0];
    const char *dir = NULL;
    for (int k = 0; k < r0->nlab; k++)
        if (!strcmp(r0->lab[k].title, "IR label")) dir = r0->lab[k].dir;
    if (!dir || !r0->count_split || pg->o->examples < 1) return 0;
    struct sfc_db_image *im = NULL;
    long nim = 0;
    if (sfc_db_split_images(r0->db, r0->count_split, &im, &nim)) {
        sfc_error_clear();
        return 0;
    }
    char *ok = sfc_xcalloc(nim + 1, 1), *used = sfc_xcalloc(nim + 1, 1);
    for (long i = 0; i < nim; i++) {
        char *nm = sfc_xasprintf("%s.png", im[i].id);
        char *path = sfc_path_join(dir, nm);
        ok[i] = (char)sfc_file_exists(path);
        free(nm);
        free(path);
    }
    int ex = pg->o->examples, np = 0, rc = 0;
    long *pick = sfc_xmalloc((2 * ex + 1) * sizeof *pick);
    const char **why = sfc_xmalloc((2 * ex + 1) * sizeof *why);
    pick_groups(r0, im, nim, ok, used, ex, pick, why, &np);
    if (np > 0) {
        sb_puts(&pg->b, "<h3>IR labels</h3>\n<p>Training images of split '");
        sb_html(&pg->b, r0->count_split);
        sb_puts(&pg->b, "' with IR labels (what trains the IRN edge "
                        "branch; 255 = unsure in cream), with a head class "
                        "and with the rarest classes.</p>\n");
        rc = example_table(pg, runs, n, im, pick, why, np, NULL, "IR label",
                           "irlabels");
    }
    free(ok);
    free(used);
    free(pick);
    free(why);
    sfc_db_images_free(im, nim);
    return rc;
}

static int sec_examples(struct page *pg, struct run *runs, int n)
{
    struct sbuf *b = &pg->b;
    const struct stage *s0 = score_stage(&runs[0]);
    if (!s0) return 0;
    struct sfc_db_image *im = NULL;
    long nim = 0;
    if (sfc_db_split_images(runs[0].db, s0->split, &im, &nim)) {
        sfc_error_clear();
        return 0;
    }
    double **score = sfc_xmalloc(n * sizeof *score);
    for (int ri = 0; ri < n; ri++) {
        score[ri] = sfc_xmalloc((nim + 1) * sizeof(double));
        score_images(&runs[ri], im, nim, score[ri]);
    }
    /* choose: head-class images, tail-class images (rarest classes
     * first), best and worst of run 0, largest gain / loss of run 1 */
    int ex = pg->o->examples;
    long *pick = sfc_xmalloc((6 * ex + 1) * sizeof *pick);
    const char **why = sfc_xmalloc((6 * ex + 1) * sizeof *why);
    int np = 0;
    char *used = sfc_xcalloc(nim + 1, 1);
    const struct run *r0 = &runs[0];
    char *ok = sfc_xmalloc(nim + 1);
    for (long i = 0; i < nim; i++) ok[i] = !isnan(score[0][i]);
    pick_groups(r0, im, nim, ok, used, ex, pick, why, &np);
    free(ok);
    for (int kind = 0; kind < (n >= 2 ? 4 : 2); kind++) {
        for (int got = 0; got < ex; got++) {
            long best = -1;
            double bv = 0;
            for (long i = 0; i < nim; i++) {
                double v = kind < 2 ? score[0][i]
                                    : score[1][i] - score[0][i];
                if (used[i] || isnan(v)) continue;
                if (kind % 2 == 1) v = -v;
                if (best < 0 || v > bv) best = i, bv = v;
            }
            if (best < 0) break;
            static const char *const w[4] = {"best", "worst", "largest gain",
                                             "largest loss"};
            pick[np] = best;
            why[np++] = w[kind];
            used[best] = 1;
        }
    }
    free(used);
    int rc = 0;
    if (np == 0) goto out;
    sb_puts(b, "<section id=\"examples\"><h2>Examples</h2>\n<p>Images of "
               "split '");
    sb_html(b, s0->split);
    sb_puts(b, "': some with head classes, some with the rarest classes, "
               "then the best and worst by per-image mIoU of ");
    sb_html(b, s0->title);
    sb_puts(b, n >= 2 ? " (first run), and the largest gains and losses of "
                        "the second run against the first"
                      : "");
    sb_puts(b, ". Heat maps: the largest foreground channel, scaled to its "
               "maximum, over the image.</p>\n");
    size_t at = b->n;
    rc = example_table(pg, runs, n, im, pick, why, np, score, NULL,
                       "examples");
    /* IR labels of training images, unless the examples showed some */
    if (!rc && !strstr(b->s + at, "<th>IR label</th>"))
        rc = ir_examples(pg, runs, n);
    sb_puts(b, "</section>\n");
out:
    for (int ri = 0; ri < n; ri++) free(score[ri]);
    free(score);
    free(pick);
    free(why);
    sfc_db_images_free(im, nim);
    return rc;
}

/* ---- the page --------------------------------------------------------- */

static const char style[] =
    "body{font:14px/1.4 sans-serif;margin:1.5em;color:#222;max-width:"
    "1800px}\n"
    "h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;margin-top:1.8em}\n"
    "nav a{margin-right:1em}\n"
    ".grid{display:grid;grid-template-columns:repeat(var(--n),minmax(0,1fr))"
    ";gap:1.5em}\n"
    ".cell{min-width:0}\n"
    "figure{margin:0.5em 0}figcaption{font-size:0.85em;color:#555}\n"
    "img.plot{max-width:100%;height:auto}\n"
    "img.tile{width:112px;image-rendering:pixelated}\n"
    "table{border-collapse:collapse;margin:0.5em 0;font-size:0.9em}\n"
    "td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;"
    "vertical-align:top}\n"
    "th{background:#f3f3f3}td.failed{color:#b00}td.running{color:#a60}\n"
    "td.up{color:#080}td.down{color:#b00}\n"
    "table.examples td{padding:2px}td.exid{max-width:10em}\n"
    "details table.opts td{border:none;padding:0 6px}\n"
    "code{font-size:0.9em}.na{color:#aaa}\n";

int sfc_report_write(const char *out, int n, char *const *dirs,
                     const struct sfc_report_opts *o)
{
    struct run *runs = NULL;
    int nr = 0, rc = -1;
    struct page pg;
    memset(&pg, 0, sizeof pg);
    pg.o = o;
    for (int i = 0; i < n; i++) {
        if (!is_dir(dirs[i])) {
            sfc_error(dirs[i], "not a folder");
            goto out;
        }
        char *abs = abs_clean(dirs[i]);
        char *dbp = find_db(abs, o->db);
        if (!dbp) {
            sfc_error(dirs[i], "no sfc.db in the folder or its parent");
            free(abs);
            goto out;
        }
        struct sfc_db *db = sfc_db_open(dbp, 0);
        if (!db) {
            free(abs);
            free(dbp);
            goto out;
        }
        /* a folder holding several trained methods stands for each */
        char **outs = NULL;
        int nouts = 0;
        if (train_outs(db, abs, &outs, &nouts)) {
            sfc_db_close(db);
            free(abs);
            free(dbp);
            goto out;
        }
        int split = nouts >= 2;
        for (int k = 0; k < nouts; k++) split &= strcmp(outs[k], abs) != 0;
        int cnt = split ? nouts : 1;
        for (int k = 0; k < cnt; k++) {
            runs = sfc_xrealloc(runs, (nr + 1) * sizeof *runs);
            struct run *r = &runs[nr++];
            memset(r, 0, sizeof *r);
            r->abs = split ? sfc_xstrdup(outs[k]) : sfc_xstrdup(abs);
            r->name = sfc_xstrdup(base_name(r->abs));
            r->dbpath = sfc_xstrdup(dbp);
            r->db = k == 0 ? db : sfc_db_open(dbp, 0);
            if (!r->db || load_run(r)) {
                for (int j = 0; j < nouts; j++) free(outs[j]);
                free(outs);
                free(abs);
                free(dbp);
                goto out;
            }
        }
        for (int j = 0; j < nouts; j++) free(outs[j]);
        free(outs);
        free(abs);
        free(dbp);
    }
    for (int i = 1; i < nr; i++) {
        int same = runs[i].K == runs[0].K;
        for (int c = 0; same && c < runs[0].K; c++)
            same = !strcmp(runs[i].cls[c], runs[0].cls[c]);
        if (!same) {
            sfc_error(runs[i].dbpath, "classes differ from those of '%s'",
                      runs[0].dbpath);
            goto out;
        }
    }
    if (sfc_plot_init(&pg.plot, o->gnuplot)) goto out;
    if (sec_record(&pg, runs, nr) || sec_training(&pg, runs, nr) ||
        sec_bank(&pg, runs, nr) || sec_eval(&pg, runs, nr) ||
        sec_compare(&pg, runs, nr) || sec_examples(&pg, runs, nr))
        goto out;
    struct sbuf page = {0}, *b = &page;
    sb_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
               "charset=\"utf-8\">\n<meta name=\"viewport\" content=\""
               "width=device-width, initial-scale=1\">\n<title>sfc report: ");
    for (int i = 0; i < nr; i++) {
        if (i) sb_puts(b, ", ");
        sb_html(b, runs[i].name);
    }
    sb_printf(b, "</title>\n<style>\n%s</style></head><body>\n<h1>sfc "
                 "report: ",
              style);
    for (int i = 0; i < nr; i++) {
        if (i) sb_puts(b, " vs ");
        sb_html(b, runs[i].name);
    }
    sb_puts(b, "</h1>\n<nav>");
    static const char *const secs[][2] = {
        {"record", "record"},         {"training", "training"},
        {"bank", "image bank"},       {"evaluation", "evaluation"},
        {"comparison", "comparison"}, {"examples", "examples"}};
    for (int i = 0; i < 6; i++) {
        char *tag = sfc_xasprintf("<section id=\"%s\">", secs[i][0]);
        if (strstr(pg.b.s, tag))
            sb_printf(b, "<a href=\"#%s\">%s</a>", secs[i][0], secs[i][1]);
        free(tag);
    }
    sb_puts(b, "</nav>\n");
    sb_add(b, pg.b.s, pg.b.n);
    sb_printf(b, "<footer><p>written by sfc-report %s</p></footer>\n"
                 "</body></html>\n",
              SFC_VERSION);
    rc = sfc_atomic_write(out, b->s, b->n);
    free(page.s);
    if (rc == 0 && !o->quiet)
        for (int i = 0; i < nr; i++)
            fprintf(stderr, "%s: %s: run '%s': %d db rows, %d evaluated "
                            "stages\n",
                    sfc_progname(), out, runs[i].abs, runs[i].nrows,
                    runs[i].nst);
out:
    free(pg.b.s);
    sfc_plot_release(&pg.plot);
    for (int i = 0; i < nr; i++) run_free(&runs[i]);
    free(runs);
    return rc;
}
