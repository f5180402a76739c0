/* SPDX-License-Identifier: MIT */
/* sfc-crf: IR labels from CAM files with a dense CRF (sfc-reference.md §5;
 * the rules and the CRF are lib/crf.h's). For each image id: reads the
 * image and <cams>/<id>.npz (keys, cam_w, cam_p), writes <out>/<id>.png
 * (0 background, class id, 255 unsure) atomically; skips ids whose output
 * exists, so a killed run resumes where it stopped. */
#include <ctype.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "camfile.h"
#include "crf.h"
#include "db.h"
#include "ids.h"
#include "img.h"
#include "metrics.h"
#include "npy.h"
#include "sfc.h"

static const char *const usage_lines[] = {
    "sfc-crf [options] --cams DIR --out DIR (--images DIR | --db FILE) [ID...]",
    NULL};

static const char *const rule_choices[] = {"sfc", "irn", "cam-crf", NULL};
static const char *const filter_choices[] = {"lattice", "lattice32", "exact",
                                             NULL};

struct cmdline {
    const char *images, *ext, *cams, *out, *list, *split, *db, *rule, *filter;
    const char *w_map;
    double ww, wp, bg_scale, conf_fg, conf_bg;
    double gt_prob, gauss_sxy, gauss_compat, bilat_sxy, bilat_srgb,
        bilat_compat;
    int iters, threads, quiet;
    struct sfc_shard shard;
};

static struct cmdline cl = {
    .ext = ".jpg", .rule = "sfc", .filter = "lattice", .w_map = "cam_w",
    .ww = 1.0, .wp = 0.7,
    .bg_scale = 0.5, .conf_fg = 0.30, .conf_bg = 0.05, .gt_prob = 0.7,
    .gauss_sxy = 3, .gauss_compat = 3, .bilat_sxy = 50, .bilat_srgb = 5,
    .bilat_compat = 10, .iters = SFC_CRF_ITERS_SFC, .shard = {0, 1}};

static const char *const w_map_choices[] = {"cam_w", "cam_c", NULL};

static const struct sfc_opt opts[] = {
    SFC_OPT_STRING_("cams", &cl.cams, "DIR",
                    "CAM files <id>.npz with keys, cam_w, cam_p (required)"),
    SFC_OPT_STRING_("out", &cl.out, "DIR",
                    "IR labels <id>.png are written here (required; created)"),
    SFC_OPT_STRING_("images", &cl.images, "DIR",
                    "images <id><ext> (default: the paths in --db)"),
    SFC_OPT_STRING_("ext", &cl.ext, "SUFFIX", "image file suffix in --images"),
    SFC_OPT_STRING_("list", &cl.list, "FILE", "image ids, one per line"),
    SFC_OPT_STRING_("split", &cl.split, "NAME",
                    "every image of this split of the db (needs --db)"),
    SFC_OPT_CHOICE_("rule", &cl.rule, rule_choices,
                    "IR-label rule: sfc (background x1 and x bg-scale), irn "
                    "(constant backgrounds conf-fg, conf-bg), cam-crf "
                    "(CRF of argmax S alone)"),
    SFC_OPT_CHOICE_("w-map", &cl.w_map, w_map_choices,
                    "the map weighted by w-weight: M_W, or cam_c, the "
                    "classifier CAM before PCM (a plain CAM baseline's)"),
    SFC_OPT_DOUBLE_("w-weight", &cl.ww, "X", 0, 1e6,
                    "S = w-weight * cam_w + p-weight * cam_p"),
    SFC_OPT_DOUBLE_("p-weight", &cl.wp, "X", 0, 1e6,
                    "weight of cam_p (M_P) in S (SFC's cam2ir.py: 0.7)"),
    SFC_OPT_DOUBLE_("bg-scale", &cl.bg_scale, "X", 0, 1e6,
                    "sfc rule: background factor of the second map"),
    SFC_OPT_DOUBLE_("conf-fg", &cl.conf_fg, "T", 0, 1e6,
                    "irn rule: background constant of the fg map"),
    SFC_OPT_DOUBLE_("conf-bg", &cl.conf_bg, "T", 0, 1e6,
                    "irn rule: background constant of the bg map"),
    SFC_OPT_INT_("iters", &cl.iters, "T", 0, 1000,
                 "mean-field iterations (SFC 12; IRN used 10)"),
    SFC_OPT_DOUBLE_("gt-prob", &cl.gt_prob, "P", 1e-6, 1 - 1e-6,
                    "unary: -ln P for the map's label, -ln((1-P)/(K-1)) "
                    "for the others"),
    SFC_OPT_DOUBLE_("gauss-sxy", &cl.gauss_sxy, "PX", 1e-3, 1e6,
                    "Gaussian kernel: position scale"),
    SFC_OPT_DOUBLE_("gauss-compat", &cl.gauss_compat, "W", 0, 1e6,
                    "Gaussian kernel: Potts weight"),
    SFC_OPT_DOUBLE_("bilat-sxy", &cl.bilat_sxy, "PX", 1e-3, 1e6,
                    "bilateral kernel: position scale"),
    SFC_OPT_DOUBLE_("bilat-srgb", &cl.bilat_srgb, "V", 1e-3, 1e6,
                    "bilateral kernel: colour scale (0..255 units)"),
    SFC_OPT_DOUBLE_("bilat-compat", &cl.bilat_compat, "W", 0, 1e6,
                    "bilateral kernel: Potts weight"),
    SFC_OPT_CHOICE_("filter", &cl.filter, filter_choices,
                    "message passing: permutohedral lattice (values in "
                    "binary16), the same in float32, or exact O(N^2) sums "
                    "(tiny images only; for checking)"),
    SFC_OPT_INT_("threads", &cl.threads, "N", 0, 1024,
                 "threads per process (0: OpenMP's default, "
                 "OMP_NUM_THREADS or all cores)"),
    SFC_OPT_SHARD_(&cl.shard),
    SFC_OPT_STRING_("db", &cl.db, "FILE",
                    "record the run in this db; image paths and --split "
                    "come from it"),
    SFC_OPT_FLAG_("quiet", 'q', &cl.quiet, "no progress on stderr"),
    SFC_OPT_END_};

static const struct sfc_cli cli = {
    usage_lines,
    "Turns CAMs into IR labels (sfc-reference.md 5): label PNGs with 0 = "
    "background, the class id, 255 = unsure. S = w-weight * cam_w + "
    "p-weight * cam_p; rules sfc and irn each make a foreground-confident "
    "map fg and a background-confident map bg, refine both with the CRF "
    "and give fg, 255 where fg is background but bg is not, 0 where both "
    "are background. Existing outputs are skipped. "
    "Image ids: the arguments, else --list FILE, else --split NAME (with "
    "--db), else standard input; --shard I/N keeps the ids whose position "
    "in that list is I modulo N.",
    opts};

static char *file_of(const char *dir, const char *id, const char *ext)
{
    return sfc_xasprintf("%s/%s%s", dir, id, ext);
}

/* ---- one image ----------------------------------------------------------- */

/* Load the image and the CAM of one id, check them against each other and
 * write the IR label. -1 with the error slot naming the file. */
static int do_image(const char *img_path, const char *cam_path,
                    const char *out_path, const struct sfc_ir_params *p,
                    enum sfc_crf_filter how)
{
    struct sfc_tensor img = {0}, lab = {0};
    struct sfc_npz z = {0};
    int rc = -1;
    if (sfc_image_load(img_path, &img)) goto out;
    if (sfc_camfile_read(cam_path, &z)) goto out;
    const struct sfc_tensor *keys = sfc_npz_get(&z, "keys");
    const struct sfc_tensor *cw = sfc_npz_get(&z, cl.w_map);
    const struct sfc_tensor *cp = sfc_npz_get(&z, "cam_p");
    /* sfc_cam_check names the file; it needs both maps here */
    if (sfc_cam_check(cam_path, SFC_METRICS_MAX_CLASSES, keys, cw, cp, 1, 1))
        goto out;
    int64_t K = keys->shape[0], H = img.shape[0], W = img.shape[1];
    if (cw->shape[1] != H || cw->shape[2] != W) {
        sfc_error(cam_path, "CAM size %lldx%lld differs from the image '%s' "
                  "(%lldx%lld)", (long long)cw->shape[2],
                  (long long)cw->shape[1], img_path, (long long)W,
                  (long long)H);
        goto out;
    }
    if (sfc_tensor_init(&lab, SFC_U8, 2, (const int64_t[]){H, W})) goto out;
    if (sfc_ir_label(img.data, (int)H, (int)W, cw->data, cp->data,
                     keys->data, (int)K, p, how, lab.data)) {
        char *m = sfc_xstrdup(sfc_errmsg());
        sfc_error(cam_path, "%s", m);
        free(m);
        goto out;
    }
    if (sfc_label_save(out_path, &lab)) goto out;
    rc = 0;
out:
    sfc_tensor_release(&img);
    sfc_tensor_release(&lab);
    sfc_npz_release(&z);
    return rc;
}

int main(int argc, char **argv)
{
    sfc_proginit(argv[0]);
    int npos = sfc_cli_parse(&cli, argc, argv);

    /* ---- usage errors */
    if (!cl.cams) sfc_cli_die("--cams DIR is required");
    if (!cl.out) sfc_cli_die("--out DIR is required");
    if (!cl.images && !cl.db)
        sfc_cli_die("one of --images DIR or --db FILE is required");
    if (cl.split && !cl.db) sfc_cli_die("--split needs --db");
    if (npos && (cl.list || cl.split))
        sfc_cli_die("ids given as arguments conflict with %s",
                    cl.list ? "--list" : "--split");
    if (cl.list && cl.split) sfc_cli_die("--list and --split conflict");
    if (cl.ww == 0 && cl.wp == 0)
        sfc_cli_die("--w-weight and --p-weight are both 0");
    struct sfc_ir_params p = SFC_IR_PARAMS_SFC;
    p.rule = !strcmp(cl.rule, "sfc")   ? SFC_IR_SFC
             : !strcmp(cl.rule, "irn") ? SFC_IR_IRN
                                       : SFC_IR_CAMCRF;
    p.w_w = (float)cl.ww;
    p.w_p = (float)cl.wp;
    p.bg_scale = (float)cl.bg_scale;
    p.conf_fg = (float)cl.conf_fg;
    p.conf_bg = (float)cl.conf_bg;
    p.crf = (struct sfc_crf_params){
        cl.iters, (float)cl.gt_prob, (float)cl.gauss_sxy,
        (float)cl.gauss_compat, (float)cl.bilat_sxy, (float)cl.bilat_srgb,
        (float)cl.bilat_compat};
    if (sfc_crf_params_check(&p.crf)) sfc_cli_die("%s", sfc_errmsg());
    enum sfc_crf_filter how =
        !strcmp(cl.filter, "exact")       ? SFC_CRF_EXACT
        : !strcmp(cl.filter, "lattice32") ? SFC_CRF_LATTICE_F32
                                          : SFC_CRF_LATTICE;
    if (cl.threads > 0) omp_set_num_threads(cl.threads);

    /* ---- db and ids */
    struct sfc_db *db = NULL;
    int64_t run = -1;
    if (cl.db) {
        db = sfc_db_open(cl.db, 0);
        if (!db) sfc_die_errmsg();
        char *cfg = sfc_cli_config_json(&cli);
        run = sfc_db_run_begin(db, "sfc-crf", SFC_DB_NO_SEED, cfg);
        free(cfg);
        if (run < 0) sfc_die_errmsg();
    }
#define FAIL() sfc_db_run_die(db, run)

    struct sfc_ids ids;
    if (sfc_ids_get(&ids, npos, argv, cl.list, db, cl.split)) FAIL();
    if (sfc_mkdirs(cl.out, 0777)) FAIL();

    /* ---- this shard's ids, minus the finished ones */
    long mine = 0, todo = 0;
    for (long k = 0; k < ids.n; k++) {
        if (!sfc_shard_mine(&cl.shard, k)) continue;
        mine++;
        char *o = file_of(cl.out, ids.v[k], ".png");
        todo += !sfc_file_exists(o);
        free(o);
    }
    struct sfc_progress prog;
    sfc_progress_start(&prog, "ir labels", todo, cl.quiet);
    long done = 0;
    for (long k = 0; k < ids.n; k++) {
        if (!sfc_shard_mine(&cl.shard, k)) continue;
        const char *id = ids.v[k];
        char *o = file_of(cl.out, id, ".png");
        if (sfc_file_exists(o)) {
            free(o);
            continue;
        }
        char *ip = NULL, *cp = file_of(cl.cams, id, ".npz");
        if (cl.images) {
            ip = file_of(cl.images, id, cl.ext);
        } else {
            struct sfc_db_image im;
            if (sfc_db_image_get(db, id, &im)) FAIL();
            ip = sfc_xstrdup(im.path);
            sfc_db_image_release(&im);
        }
        if (do_image(ip, cp, o, &p, how)) FAIL();
        free(ip);
        free(cp);
        free(o);
        sfc_progress_update(&prog, ++done);
    }
    sfc_progress_end(&prog);
    if (!cl.quiet)
        fprintf(stderr, "%s: %ld written, %ld already there (shard %d/%d of "
                "%ld ids)\n", sfc_progname(), done, mine - done, cl.shard.i,
                cl.shard.n, ids.n);
    if (db) {
        if (sfc_db_run_end(db, run, SFC_RUN_OK)) FAIL();
        sfc_db_close(db);
    }
    sfc_ids_release(&ids);
    return sfc_fshut(stdout, "<stdout>");
}
