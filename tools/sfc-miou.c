/* SPDX-License-Identifier: MIT */
/* sfc-miou: per-class IoU, precision and recall, mIoU and head/middle/tail
 * means of predicted label PNGs or CAM files against ground-truth PNGs
 * (sfc-reference.md §4 and §8; the numbers are lib/metrics.h's). */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "camfile.h"
#include "db.h"
#include "ids.h"
#include "img.h"
#include "metrics.h"
#include "npy.h"
#include "sfc.h"

static const char *const usage_lines[] = {
    "sfc-miou [options] --gt DIR --pred DIR [ID...]",
    "sfc-miou [options] --gt DIR --cams DIR [ID...]",
    NULL};

static const char *const map_choices[] = {"all", "cam_w", "cam_p", "sum",
                                          "cam_c", NULL};
static const char *const bg_choices[] = {"channel", "threshold", NULL};
static const char *const group_choices[] = {"auto", "db", "gt", "none",
                                            NULL};

struct cmdline {
    const char *gt, *pred, *cams, *list, *split, *classes, *db;
    const char *map, *bg, *sweep, *groups, *count_split, *stage;
    double ww, wp, threshold;
    int csv, quiet;
};

static struct cmdline cl = {
    .map = "all", .bg = "channel", .groups = "auto", .ww = 1.0, .wp = 1.0,
    .threshold = 0.15};

static const struct sfc_opt opts[] = {
    SFC_OPT_STRING_("gt", &cl.gt, "DIR",
                    "ground-truth label PNGs, <id>.png (required)"),
    SFC_OPT_STRING_("pred", &cl.pred, "DIR", "predicted label PNGs, <id>.png"),
    SFC_OPT_STRING_("cams", &cl.cams, "DIR",
                    "CAM files <id>.npz (keys, cam_w, cam_p) instead of --pred"),
    SFC_OPT_STRING_("list", &cl.list, "FILE", "image ids, one per line"),
    SFC_OPT_STRING_("split", &cl.split, "NAME",
                    "every image of this split of the db (needs --db)"),
    SFC_OPT_STRING_("classes", &cl.classes, "FILE",
                    "class names, one per line, background first (with --db: "
                    "checked against the db's classes)"),
    SFC_OPT_CHOICE_("map", &cl.map, map_choices,
                    "CAM map scored: cam_w (M_W), cam_p (M_P), sum "
                    "(w-weight*M_W + p-weight*M_P), all three, or cam_c "
                    "(the classifier CAM before PCM, map 'CAM')"),
    SFC_OPT_DOUBLE_("w-weight", &cl.ww, "X", 0, 1e6,
                    "weight of cam_w in the sum map"),
    SFC_OPT_DOUBLE_("p-weight", &cl.wp, "X", 0, 1e6,
                    "weight of cam_p in the sum map (SFC's code: 0.7 for IR "
                    "labels, 0.3 for the random walk)"),
    SFC_OPT_CHOICE_("bg", &cl.bg, bg_choices,
                    "background of a CAM: the stored channel (SFC) or a "
                    "constant threshold on max-normalised foreground (IRN)"),
    SFC_OPT_DOUBLE_("threshold", &cl.threshold, "T", 0, 1e6,
                    "background threshold of --bg threshold (IRN's "
                    "cam_eval_thres)"),
    SFC_OPT_STRING_("sweep", &cl.sweep, "LO:HI:STEP",
                    "sweep the background threshold (implies --bg threshold); "
                    "report the curve and the best"),
    SFC_OPT_CHOICE_("groups", &cl.groups, group_choices,
                    "class counts ranking head/middle/tail: db (image labels "
                    "of --count-split), gt (images of the evaluated ground "
                    "truth holding the class), none; auto = db when --db and "
                    "a split are given, else none"),
    SFC_OPT_STRING_("count-split", &cl.count_split, "NAME",
                    "split whose image labels give the db counts (default: "
                    "--split)"),
    SFC_OPT_STRING_("stage", &cl.stage, "NAME",
                    "stage name of the db rows (default: cam with --cams, "
                    "pseudo with --pred)"),
    SFC_OPT_FLAG_("csv", 0, &cl.csv, "print CSV instead of the table"),
    SFC_OPT_STRING_("db", &cl.db, "FILE",
                    "record the run and the metrics rows in this db"),
    SFC_OPT_FLAG_("quiet", 'q', &cl.quiet, "no progress on stderr"),
    SFC_OPT_END_};

static const struct sfc_cli cli = {
    usage_lines,
    "Scores predicted label maps (or the argmax of CAM files) against the "
    "ground truth: ground-truth 255 is ignored, predicted 255 counts as "
    "background, mIoU is the mean over classes present in the ground truth "
    "or the prediction. Prints a table (per-class IoU, precision, recall in "
    "percent; mIoU; head/middle/tail means) or, with --csv, the same as "
    "fractions; with --db also writes them to the metrics table. Image ids: "
    "the arguments, else --list FILE, else --split NAME (with --db), else "
    "standard input.",
    opts};

/* ---- small helpers ----------------------------------------------------- */

/* "dir/file" stem: "lists/train.txt" -> "train". */
static char *stem(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    char *s = sfc_xstrdup(b);
    char *dot = strrchr(s, '.');
    if (dot && dot != s) *dot = '\0';
    return s;
}

static char *file_of(const char *dir, const char *id, const char *ext)
{
    return sfc_xasprintf("%s/%s%s", dir, id, ext);
}

/* ---- what is scored ------------------------------------------------------ */

struct variant {
    char *name;    /* db map name: "M_W", "M_P", "M_W+0.7M_P"; "" for PNGs */
    double ww, wp; /* CAM weights */
    struct sfc_confusion *cm; /* one per threshold (or one) */
    int raw;       /* 1: the classifier CAM cam_c (map "CAM") */
};

static char *sum_name(double ww, double wp)
{
    char a[32] = "", b[32] = "";
    if (ww != 1) snprintf(a, sizeof a, "%g", ww);
    if (wp != 1) snprintf(b, sizeof b, "%g", wp);
    return sfc_xasprintf("%sM_W+%sM_P", a, b);
}

struct result {
    double *iou, *pre, *rec; /* (K) */
    int64_t *row, *col, *tp;
    double miou, fg, grp[SFC_NGROUPS];
};

static void result_of(const struct sfc_confusion *cm, const int *group,
                      struct result *r)
{
    int K = cm->K;
    r->iou = sfc_xmalloc(3 * (size_t)K * sizeof(double));
    r->pre = r->iou + K;
    r->rec = r->iou + 2 * K;
    r->row = sfc_xmalloc(3 * (size_t)K * sizeof(int64_t));
    r->col = r->row + K;
    r->tp = r->row + 2 * K;
    sfc_confusion_scores(cm, r->iou, r->pre, r->rec, r->row, r->col);
    for (int c = 0; c < K; c++) r->tp[c] = cm->c[(int64_t)c * K + c];
    r->miou = sfc_nanmean(r->iou, K);
    r->fg = sfc_nanmean(r->iou + 1, K - 1);
    if (group)
        sfc_group_means(K, r->iou, group, r->grp);
    else
        r->grp[0] = r->grp[1] = r->grp[2] = NAN;
}

static void result_release(struct result *r)
{
    free(r->iou);
    free(r->row);
}

/* ---- output -------------------------------------------------------------- */

static const char *const group_names[SFC_NGROUPS] = {"head", "middle",
                                                     "tail"};

static void pct(char *buf, size_t n, double x)
{
    if (isnan(x))
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%.2f", 100 * x);
}

static void print_table(const char *title, const struct result *r, int K,
                        char *const *names, const int *group)
{
    int w = 5;
    for (int c = 0; c < K; c++)
        w = SFC_MAX(w, (int)strlen(names[c]));
    printf("%s\n", title);
    printf("%3s  %-*s %7s %9s %7s %12s %12s\n", "id", w, "class", "IoU",
           "precision", "recall", "gt_pixels", "pred_pixels");
    for (int c = 0; c < K; c++) {
        char a[32], b[32], d[32];
        pct(a, sizeof a, r->iou[c]);
        pct(b, sizeof b, r->pre[c]);
        pct(d, sizeof d, r->rec[c]);
        printf("%3d  %-*s %7s %9s %7s %12lld %12lld\n", c, w, names[c], a, b,
               d, (long long)r->row[c], (long long)r->col[c]);
    }
    char a[32];
    pct(a, sizeof a, r->miou);
    printf("%3s  %-*s %7s\n", "", w, "mIoU", a);
    pct(a, sizeof a, r->fg);
    printf("%3s  %-*s %7s\n", "", w, "fg_mIoU", a);
    if (group)
        for (int g = 0; g < SFC_NGROUPS; g++) {
            int n = 0;
            for (int c = 0; c < K; c++) n += group[c] == g;
            pct(a, sizeof a, r->grp[g]);
            printf("%3s  %-*s %7s   (%d classes)\n", "", w, group_names[g], a,
                   n);
        }
}

static void csv_num(double x)
{
    if (isnan(x))
        printf(",nan");
    else
        printf(",%.17g", x);
}

static void print_csv(const char *map, const char *bg, const char *thr,
                      const struct result *r, int K, char *const *names,
                      const int *group)
{
    for (int c = 0; c < K; c++) {
        printf("%s,%s,%s,class,%d,%s", map, bg, thr, c, names[c]);
        csv_num(r->iou[c]);
        csv_num(r->pre[c]);
        csv_num(r->rec[c]);
        printf(",%lld,%lld\n", (long long)r->row[c], (long long)r->col[c]);
    }
    printf("%s,%s,%s,mean,,mIoU", map, bg, thr);
    csv_num(r->miou);
    printf(",,,,\n%s,%s,%s,mean,,fg_mIoU", map, bg, thr);
    csv_num(r->fg);
    printf(",,,,\n");
    if (group)
        for (int g = 0; g < SFC_NGROUPS; g++) {
            printf("%s,%s,%s,mean,,%s", map, bg, thr, group_names[g]);
            csv_num(r->grp[g]);
            printf(",,,,\n");
        }
}

/* ---- db rows --------------------------------------------------------------- */

static int put_row(struct sfc_db *db, sqlite3_stmt *st, int64_t run,
                   const char *stage, const char *map, const char *split,
                   int cls, const char *name, double v)
{
    if (isnan(v)) {
        if (cls >= 0)
            return sfc_db_bind(db, st, "Isssisn", run, stage, map, split, cls,
                               name) || sfc_db_step(db, st) < 0 ? -1 : 0;
        return sfc_db_bind(db, st, "Isssnsn", run, stage, map, split, name) ||
                       sfc_db_step(db, st) < 0 ? -1 : 0;
    }
    if (cls >= 0)
        return sfc_db_bind(db, st, "Isssisd", run, stage, map, split, cls,
                           name, v) || sfc_db_step(db, st) < 0 ? -1
                                                                        : 0;
    return sfc_db_bind(db, st, "Isssnsd", run, stage, map, split, name, v) ||
                   sfc_db_step(db, st) < 0 ? -1 : 0;
}

static int put_result(struct sfc_db *db, sqlite3_stmt *st, int64_t run,
                      const char *stage, const char *map, const char *split,
                      const struct result *r, int K, const int *group,
                      double thr, int per_class)
{
    int e = 0;
    if (per_class)
        for (int c = 0; c < K && !e; c++) {
            e |= put_row(db, st, run, stage, map, split, c, "iou", r->iou[c]);
            e |= put_row(db, st, run, stage, map, split, c, "precision",
                         r->pre[c]);
            e |= put_row(db, st, run, stage, map, split, c, "recall",
                         r->rec[c]);
            e |= put_row(db, st, run, stage, map, split, c, "tp",
                         (double)r->tp[c]);
            e |= put_row(db, st, run, stage, map, split, c, "fp",
                         (double)(r->col[c] - r->tp[c]));
            e |= put_row(db, st, run, stage, map, split, c, "fn",
                         (double)(r->row[c] - r->tp[c]));
        }
    e |= put_row(db, st, run, stage, map, split, -1, "miou", r->miou);
    if (per_class) {
        e |= put_row(db, st, run, stage, map, split, -1, "fg_miou", r->fg);
        if (group)
            for (int g = 0; g < SFC_NGROUPS; g++)
                e |= put_row(db, st, run, stage, map, split, -1,
                             group_names[g], r->grp[g]);
    }
    if (!isnan(thr))
        e |= put_row(db, st, run, stage, map, split, -1, "threshold", thr);
    return e ? -1 : 0;
}

/* ---- main ------------------------------------------------------------------ */

static void parse_sweep(const char *s, double *lo, double *hi, double *step)
{
    char *a = sfc_xstrdup(s), *p1 = strchr(a, ':'), *p2;
    if (!p1 || !(p2 = strchr(p1 + 1, ':')))
        sfc_cli_die("--sweep: expected LO:HI:STEP, got '%s'", s);
    *p1 = *p2 = '\0';
    if (sfc_parse_double("--sweep", a, 0, 1e6, lo) ||
        sfc_parse_double("--sweep", p1 + 1, 0, 1e6, hi) ||
        sfc_parse_double("--sweep", p2 + 1, 1e-9, 1e6, step))
        sfc_cli_die("%s", sfc_errmsg());
    if (*lo > *hi) sfc_cli_die("--sweep: LO %g above HI %g", *lo, *hi);
    free(a);
}

int main(int argc, char **argv)
{
    sfc_proginit(argv[0]);
    int npos = sfc_cli_parse(&cli, argc, argv);

    /* ---- options that conflict or are missing (usage errors) */
    if (!cl.gt) sfc_cli_die("--gt DIR is required");
    if (!cl.pred == !cl.cams)
        sfc_cli_die(cl.pred ? "--pred and --cams conflict"
                            : "one of --pred DIR or --cams DIR is required");
    if (cl.pred && cl.sweep) sfc_cli_die("--sweep needs --cams, not --pred");
    if (cl.split && !cl.db) sfc_cli_die("--split needs --db");
    if (npos && (cl.list || cl.split))
        sfc_cli_die("ids given as arguments conflict with %s",
                    cl.list ? "--list" : "--split");
    if (cl.list && cl.split) sfc_cli_die("--list and --split conflict");
    if (!cl.classes && !cl.db) sfc_cli_die("need --classes FILE or --db");
    const char *groups = cl.groups;
    if (!strcmp(groups, "auto")) groups = cl.db ? "db" : "none";
    const char *count_split = cl.count_split ? cl.count_split : cl.split;
    if (!strcmp(groups, "db") && !cl.db)
        sfc_cli_die("--groups db needs --db");
    if (!strcmp(groups, "db") && !count_split) {
        if (!strcmp(cl.groups, "db"))
            sfc_cli_die("--groups db needs --count-split or --split");
        groups = "none";
    }
    if (cl.cams && !strcmp(cl.map, "sum") && cl.ww == 0 && cl.wp == 0)
        sfc_cli_die("--w-weight and --p-weight are both 0");
    int use_thr = cl.cams && (cl.sweep || !strcmp(cl.bg, "threshold"));
    double *thr = NULL;
    int nt = 1;
    if (cl.sweep) {
        double lo, hi, step;
        parse_sweep(cl.sweep, &lo, &hi, &step);
        if (sfc_thresholds(lo, hi, step, &thr, &nt))
            sfc_cli_die("--sweep: %s", sfc_errmsg());
    } else if (use_thr) {
        thr = sfc_xmalloc(sizeof *thr);
        thr[0] = cl.threshold;
    }

    /* ---- db, ids, classes */
    struct sfc_db *db = NULL;
    int64_t run = -1;
    if (cl.db) {
        db = sfc_db_open(cl.db, 0);
        if (!db) sfc_die_errmsg();
        char *cfg = sfc_cli_config_json(&cli);
        run = sfc_db_run_begin(db, "sfc-miou", SFC_DB_NO_SEED, cfg);
        free(cfg);
        if (run < 0) sfc_die_errmsg();
    }
#define FAIL() sfc_db_run_die(db, run)

    struct sfc_ids ids;
    if (sfc_ids_get(&ids, npos, argv, cl.list, db, cl.split)) FAIL();
    char *split_name = npos      ? sfc_xstrdup("")
                       : cl.list  ? stem(cl.list)
                       : cl.split ? sfc_xstrdup(cl.split)
                                  : sfc_xstrdup("");

    /* class names: the db's (checked against --classes if both), else the
     * file's */
    char **names = NULL;
    int K = 0;
    struct sfc_ids cls = {0};
    if (cl.classes) {
        if (sfc_ids_read_file(&cls, cl.classes)) FAIL();
        if (cls.n < 1 || cls.n > SFC_METRICS_MAX_CLASSES) {
            sfc_error(cl.classes, "%ld class names, expected 1 to %d", cls.n,
                      SFC_METRICS_MAX_CLASSES);
            FAIL();
        }
    }
    if (db) {
        if (sfc_db_class_names(db, &names, &K)) FAIL();
        if (K > SFC_METRICS_MAX_CLASSES) {
            sfc_error(cl.db, "%d classes, at most %d fit a label PNG", K,
                      SFC_METRICS_MAX_CLASSES);
            FAIL();
        }
        if (cl.classes && cls.n != K) {
            sfc_error(cl.classes, "%ld class names, the db has %d", cls.n, K);
            FAIL();
        }
        for (int c = 0; cl.classes && c < K; c++)
            if (strcmp(cls.v[c], names[c])) {
                sfc_error(cl.classes, "class %d is '%s', the db says '%s'", c,
                          cls.v[c], names[c]);
                FAIL();
            }
    } else {
        names = cls.v;
        K = (int)cls.n;
    }
    int64_t *counts = sfc_xcalloc((size_t)K, sizeof *counts);
    int *group = NULL;
    if (!strcmp(groups, "db")) {
        if (sfc_db_class_counts(db, count_split, counts, K)) FAIL();
        group = sfc_xmalloc((size_t)K * sizeof *group);
    } else if (!strcmp(groups, "gt")) {
        group = sfc_xmalloc((size_t)K * sizeof *group);
    }

    /* ---- variants */
    struct variant var[3];
    int nv = 0;
    if (cl.pred) {
        var[nv++] = (struct variant){sfc_xstrdup(""), 0, 0, NULL, 0};
    } else if (!strcmp(cl.map, "cam_c")) {
        var[nv++] = (struct variant){sfc_xstrdup("CAM"), 1, 0, NULL, 1};
    } else {
        int all = !strcmp(cl.map, "all");
        if (all || !strcmp(cl.map, "cam_w"))
            var[nv++] = (struct variant){sfc_xstrdup("M_W"), 1, 0, NULL, 0};
        if (all || !strcmp(cl.map, "cam_p"))
            var[nv++] = (struct variant){sfc_xstrdup("M_P"), 0, 1, NULL, 0};
        if ((all && !(cl.ww == 0 && cl.wp == 0)) || !strcmp(cl.map, "sum")) {
            char *nm = cl.ww == 0   ? sfc_xasprintf("%gM_P", cl.wp)
                       : cl.wp == 0 ? sfc_xasprintf("%gM_W", cl.ww)
                                    : sum_name(cl.ww, cl.wp);
            var[nv++] = (struct variant){nm, cl.ww, cl.wp, NULL, 0};
        }
    }
    for (int v = 0; v < nv; v++) {
        var[v].cm = sfc_xmalloc((size_t)nt * sizeof *var[v].cm);
        for (int i = 0; i < nt; i++)
            if (sfc_confusion_init(&var[v].cm[i], K)) FAIL();
    }
    int need_w = 0, need_p = 0;
    for (int v = 0; v < nv; v++)
        need_w |= var[v].ww != 0, need_p |= var[v].wp != 0;

    /* ---- every input file must exist before the long work starts */
    const char *pdir = cl.pred ? cl.pred : cl.cams;
    const char *pext = cl.pred ? ".png" : ".npz";
    for (long i = 0; i < ids.n; i++) {
        char *g = file_of(cl.gt, ids.v[i], ".png");
        char *p = file_of(pdir, ids.v[i], pext);
        int bad = 0;
        if (!sfc_file_exists(g))
            bad = sfc_error(g, "missing ground-truth file");
        else if (!sfc_file_exists(p))
            bad = sfc_error(p, cl.pred ? "missing prediction file"
                                       : "missing CAM file");
        free(g);
        free(p);
        if (bad) FAIL();
    }

    /* ---- accumulate */
    struct sfc_progress prog;
    sfc_progress_start(&prog, "images", ids.n, cl.quiet);
    for (long i = 0; i < ids.n; i++) {
        char *gpath = file_of(cl.gt, ids.v[i], ".png");
        char *ppath = file_of(pdir, ids.v[i], pext);
        struct sfc_tensor gt = {0}, pred = {0}, score = {0};
        struct sfc_npz z = {0};
        uint8_t *lab = NULL, *fcls = NULL;
        float *fmax = NULL;
        int e = sfc_label_load(gpath, &gt);
        int64_t H = gt.shape[0], W = gt.shape[1], n = H * W;
        if (!e && cl.pred) {
            e = sfc_label_load(ppath, &pred);
            if (!e && (pred.shape[0] != H || pred.shape[1] != W))
                e = sfc_error(ppath, "size %lldx%lld differs from the ground "
                              "truth '%s' (%lldx%lld)",
                              (long long)pred.shape[1],
                              (long long)pred.shape[0], gpath, (long long)W,
                              (long long)H);
            if (!e)
                e = sfc_confusion_add(&var[0].cm[0], pred.data, gt.data, n,
                                      ppath, gpath);
        } else if (!e) {
            e = sfc_camfile_read(ppath, &z);
            const struct sfc_tensor *keys = NULL, *cw = NULL, *cp = NULL;
            if (!e) {
                keys = sfc_npz_get(&z, "keys");
                /* --map cam_c: the classifier CAM stands in for cam_w */
                cw = need_w ? sfc_npz_get(&z, var[0].raw ? "cam_c" : "cam_w")
                            : NULL;
                cp = need_p ? sfc_npz_get(&z, "cam_p") : NULL;
                e = sfc_cam_check(ppath, K, keys, cw, cp, need_w, need_p);
            }
            const struct sfc_tensor *ref = need_w ? cw : cp;
            if (!e && (ref->shape[1] != H || ref->shape[2] != W))
                e = sfc_error(ppath, "CAM size %lldx%lld differs from the "
                              "ground truth '%s' (%lldx%lld)",
                              (long long)ref->shape[2],
                              (long long)ref->shape[1], gpath, (long long)W,
                              (long long)H);
            if (!e) {
                lab = sfc_xmalloc((size_t)n);
                fcls = sfc_xmalloc((size_t)n);
                fmax = sfc_xmalloc((size_t)n * sizeof *fmax);
            }
            for (int v = 0; v < nv && !e; v++) {
                e = sfc_cam_score(cw, cp, var[v].ww, var[v].wp, &score);
                if (e) break;
                if (use_thr) {
                    sfc_cam_fgmax(keys, &score, fmax, fcls);
                    e = sfc_confusion_add_sweep(var[v].cm, nt, thr, fmax,
                                                fcls, gt.data, n, gpath);
                } else {
                    sfc_cam_argmax(keys, &score, lab);
                    e = sfc_confusion_add(&var[v].cm[0], lab, gt.data, n,
                                          ppath, gpath);
                }
                sfc_tensor_release(&score);
            }
        }
        if (!e && !strcmp(groups, "gt")) {
            char seen[256] = {0};
            const uint8_t *g = gt.data;
            for (int64_t p = 0; p < n; p++) seen[g[p]] = 1;
            for (int c = 0; c < K; c++) counts[c] += seen[c];
        }
        free(lab);
        free(fcls);
        free(fmax);
        sfc_npz_release(&z);
        sfc_tensor_release(&gt);
        sfc_tensor_release(&pred);
        free(gpath);
        free(ppath);
        if (e) FAIL();
        sfc_progress_update(&prog, i + 1);
    }
    sfc_progress_end(&prog);
    if (group) sfc_class_groups(counts, K, group);

    /* ---- report */
    const char *stage = cl.stage ? cl.stage : cl.cams ? "cam" : "pseudo";
    const char *bgname = !cl.cams ? "" : use_thr ? "threshold" : "channel";
    sqlite3_stmt *ins = NULL;
    if (db) {
        if (sfc_db_begin(db)) FAIL();
        ins = sfc_db_prepare(db, "INSERT INTO metrics (run, stage, map, "
                             "split, class, name, value) VALUES (?, ?, ?, "
                             "?, ?, ?, ?)");
        if (!ins) FAIL();
    }
    if (cl.csv)
        printf("map,bg,threshold,kind,class_id,name,iou,precision,recall,"
               "gt_pixels,pred_pixels\n");
    for (int v = 0; v < nv; v++) {
        struct result *r = sfc_xmalloc((size_t)nt * sizeof *r);
        int best = 0;
        for (int i = 0; i < nt; i++) {
            result_of(&var[v].cm[i], group, &r[i]);
            if (r[i].miou > r[best].miou || (isnan(r[best].miou) &&
                                             !isnan(r[i].miou)))
                best = i;
        }
        const char *mapname = cl.pred ? "pred" : var[v].name;
        if (cl.sweep) {
            if (cl.csv) {
                for (int i = 0; i < nt; i++) {
                    printf("%s,%s,%.17g,curve,,mIoU", mapname, bgname, thr[i]);
                    csv_num(r[i].miou);
                    printf(",,,,\n");
                }
            } else {
                printf("map %s, background threshold sweep, %ld images\n",
                       mapname, ids.n);
                printf("%9s %7s\n", "threshold", "mIoU");
                for (int i = 0; i < nt; i++) {
                    char a[32];
                    pct(a, sizeof a, r[i].miou);
                    printf("%9.4g %7s\n", thr[i], a);
                }
                printf("best threshold %.4g\n\n", thr[best]);
            }
        }
        char tbuf[64] = "";
        if (thr) snprintf(tbuf, sizeof tbuf, "%.17g", thr[best]);
        if (cl.csv) {
            print_csv(mapname, bgname, tbuf, &r[best], K, names, group);
        } else {
            char *title;
            if (cl.pred)
                title = sfc_xasprintf("predictions %s, %ld images", cl.pred,
                                      ids.n);
            else if (thr)
                title = sfc_xasprintf("map %s, background threshold %.4g, "
                                      "%ld images", mapname, thr[best], ids.n);
            else
                title = sfc_xasprintf("map %s, background channel, %ld "
                                      "images", mapname, ids.n);
            print_table(title, &r[best], K, names, group);
            free(title);
            if (v + 1 < nv) printf("\n");
        }
        if (db) {
            int e = put_result(db, ins, run, stage, var[v].name, split_name,
                               &r[best], K, group, thr ? thr[best] : NAN, 1);
            for (int i = 0; cl.sweep && i < nt && !e; i++) {
                char *m = sfc_xasprintf("%s@%.4g", var[v].name, thr[i]);
                e = put_result(db, ins, run, stage, m, split_name, &r[i], K,
                               group, thr[i], 0);
                free(m);
            }
            if (e) {
                sqlite3_finalize(ins);
                FAIL();
            }
        }
        for (int i = 0; i < nt; i++) result_release(&r[i]);
        free(r);
    }
    if (db) {
        sqlite3_finalize(ins);
        if (sfc_db_run_end(db, run, SFC_RUN_OK) || sfc_db_commit(db)) FAIL();
        sfc_db_close(db);
    }

    for (int v = 0; v < nv; v++) {
        for (int i = 0; i < nt; i++) sfc_confusion_release(&var[v].cm[i]);
        free(var[v].cm);
        free(var[v].name);
    }
    if (names != cls.v) sfc_db_strv_free(names, K);
    sfc_ids_release(&cls);
    sfc_ids_release(&ids);
    free(split_name);
    free(counts);
    free(group);
    free(thr);
    return sfc_fshut(stdout, "<stdout>");
}
