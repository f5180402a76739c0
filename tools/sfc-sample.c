/* SPDX-License-Identifier: MIT */
/* sfc-sample: class statistics, DC coefficients and the whole training
 * schedule with image-bank re-sampling, written to the db in one
 * transaction (sfc-reference.md §2.1, §2.3, §2.5; lib/sample.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "sample.h"
#include "sfc.h"

static const char *const usage[] = {
    "sfc-sample --db FILE [options]",
    NULL,
};

static const char *const augs[] = {"sfc", "irn", NULL};

struct cmdline {
    const char *db, *split, *aug;
    int epochs, batch, draws, crop, resize_lo, resize_hi, seed, quiet;
    double n_ibr;
};

static void json_labels(char *buf, size_t n, const struct sfc_db_image *im)
{
    size_t len = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < (im ? im->nlabels : 0) && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%d", i ? "," : "",
                                im->labels[i]);
    if (len < n) snprintf(buf + len, n - len, "]");
}

/* Bind the geometry columns of a schedule or bank row from position k. */
static int bind_aug(sqlite3_stmt *st, int k, const struct sfc_aug *a)
{
    int rc = sqlite3_bind_double(st, k, a->scale);
    rc |= sqlite3_bind_int(st, k + 1, a->flip);
    rc |= sqlite3_bind_int(st, k + 2, a->img_top);
    rc |= sqlite3_bind_int(st, k + 3, a->img_left);
    rc |= sqlite3_bind_int(st, k + 4, a->cont_top);
    rc |= sqlite3_bind_int(st, k + 5, a->cont_left);
    rc |= sqlite3_bind_int(st, k + 6, a->ch);
    rc |= sqlite3_bind_int(st, k + 7, a->cw);
    return rc;
}

static int write_schedule(struct sfc_db *db, int64_t run,
                          const struct sfc_schedule *s,
                          const struct sfc_db_image *im, int C,
                          struct sfc_progress *pr)
{
    sqlite3_stmt *ins = sfc_db_prepare(
        db, "INSERT INTO schedule (run, step, slot, epoch, source, image, "
            "bank_class, scale, flip, src_y, src_x, dst_y, dst_x, crop_h, "
            "crop_w) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
            "?12, ?13, ?14, ?15)");
    sqlite3_stmt *bank = sfc_db_prepare(
        db, "INSERT INTO image_bank (run, step, class, image, scale, flip, "
            "src_y, src_x, dst_y, dst_x, crop_h, crop_w, labels) VALUES "
            "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");
    if (!ins || !bank) goto fail;
    for (long t = 0; t < s->steps; t++) {
        int epoch = (int)(t / s->steps_per_epoch);
        for (int j = 0; j < s->slots; j++) {
            const struct sfc_slot *sl = &s->slot[t * s->slots + j];
            int isbank = sl->bank_class >= 0;
            if (sfc_db_bind(db, ins, "IIiis", (int64_t)run, (int64_t)t, j,
                            epoch, isbank ? "bank" : "batch"))
                goto fail;
            if (sl->image >= 0)
                sqlite3_bind_text(ins, 6, im[sl->image].id, -1,
                                  SQLITE_STATIC);
            if (isbank) sqlite3_bind_int(ins, 7, sl->bank_class + 1);
            bind_aug(ins, 8, &sl->aug);
            if (sfc_db_step(db, ins) < 0) goto fail;
        }
        for (int c = 0; c < C; c++) {
            const struct sfc_bank_entry *b = &s->bank[t * C + c];
            char labels[1024];
            json_labels(labels, sizeof labels, b->image >= 0 ? &im[b->image]
                                                            : NULL);
            if (sfc_db_bind(db, bank, "IIi", (int64_t)run, (int64_t)t, c + 1))
                goto fail;
            if (b->image >= 0)
                sqlite3_bind_text(bank, 4, im[b->image].id, -1,
                                  SQLITE_STATIC);
            bind_aug(bank, 5, &b->aug);
            sqlite3_bind_text(bank, 13, labels, -1, SQLITE_TRANSIENT);
            if (sfc_db_step(db, bank) < 0) goto fail;
        }
        sfc_progress_update(pr, t + 1);
    }
    sqlite3_finalize(ins);
    sqlite3_finalize(bank);
    return 0;
fail:
    sqlite3_finalize(ins);
    sqlite3_finalize(bank);
    return -1;
}

int main(int argc, char **argv)
{
    struct cmdline cl = {NULL, "train", "sfc", 6, 16, 4, 512, 320, 640, 10,
                         0, -1};
    const struct sfc_opt opts[] = {
        SFC_OPT_STRING_("db", &cl.db, "FILE", "the run's db (from sfc-ingest)"),
        SFC_OPT_STRING_("split", &cl.split, "NAME",
                        "training split (image list)"),
        SFC_OPT_INT_("epochs", &cl.epochs, "N", 1, 100000, "epochs"),
        SFC_OPT_INT_("batch", &cl.batch, "N", 1, 100000,
                     "images loaded per step (drop_last)"),
        SFC_OPT_INT_("draws", &cl.draws, "N", 0, 100000,
                     "image-bank draws added per step (0 = no IBR)"),
        SFC_OPT_INT_("crop", &cl.crop, "PX", 1, 100000,
                     "square training canvas"),
        SFC_OPT_CHOICE_("aug", &cl.aug, augs,
                        "augmentation: sfc = random placement only, irn = "
                        "long-side resize + flip + crop"),
        SFC_OPT_INT_("resize-lo", &cl.resize_lo, "PX", 1, 100000,
                     "irn augmentation: smallest long side"),
        SFC_OPT_INT_("resize-hi", &cl.resize_hi, "PX", 1, 100000,
                     "irn augmentation: largest long side"),
        SFC_OPT_DOUBLE_("n-ibr", &cl.n_ibr, "X", -1, 1e12,
                        "N_ibr of the DC formula; -1 = steps * draws / C "
                        "(the reference's VOC constant is 396)"),
        SFC_OPT_INT_("seed", &cl.seed, "N", 0, 2147483647, "random seed"),
        SFC_OPT_FLAG_("quiet", 'q', &cl.quiet, "no progress on stderr"),
        SFC_OPT_END_,
    };
    const struct sfc_cli cli = {
        usage,
        "Compute the class statistics N_c and the distribution coefficients "
        "DC_c of a split from the db's image labels, and write a run's whole "
        "training schedule (per step the batch, the bank draws and every "
        "augmentation parameter) and the image bank at every step to the "
        "db, in one transaction. Prints the run id and the class table.",
        opts};
    sfc_proginit(argv[0]);
    if (sfc_cli_parse(&cli, argc, argv) != 0)
        sfc_cli_die("unexpected argument '%s'", argv[0]);
    if (!cl.db) sfc_cli_die("--db is required");
    if (cl.crop % 32)
        sfc_cli_die("--crop %d is not a multiple of 32 (the network's two "
                    "scales need whole feature grids)", cl.crop);
    if (cl.resize_hi < cl.resize_lo)
        sfc_cli_die("--resize-hi %d is below --resize-lo %d", cl.resize_hi,
                    cl.resize_lo);

    struct sfc_db *db = sfc_db_open(cl.db, 0);
    if (!db) sfc_die_errmsg();
    char **names = NULL;
    int ncls;
    struct sfc_db_image *im = NULL;
    long n;
    if (sfc_db_class_names(db, &names, &ncls) ||
        sfc_db_split_images(db, cl.split, &im, &n))
        sfc_die_errmsg();
    int C = ncls - 1;
    if (C < 1) sfc_die("%s: no foreground classes", cl.db);

    /* the schedule first: N_ibr depends on its length */
    int *h = sfc_xmalloc(sizeof(int) * (size_t)n);
    int *w = sfc_xmalloc(sizeof(int) * (size_t)n);
    uint8_t *lab = sfc_xcalloc((size_t)n * C, 1);
    for (long i = 0; i < n; i++) {
        h[i] = im[i].height;
        w[i] = im[i].width;
        for (int k = 0; k < im[i].nlabels; k++) {
            int c = im[i].labels[k];
            if (c < 1 || c > C) sfc_die("%s: image '%s' has unknown class %d",
                                        cl.db, im[i].id, c);
            lab[i * C + c - 1] = 1;
        }
    }
    struct sfc_sched_params p = {(int)n, h, w, C, lab, cl.epochs, cl.batch,
                                 cl.draws, cl.crop,
                                 strcmp(cl.aug, "irn") ? SFC_AUG_SFC
                                                       : SFC_AUG_IRN,
                                 cl.resize_lo, cl.resize_hi,
                                 (uint64_t)cl.seed};
    struct sfc_schedule s;
    if (sfc_schedule_build(&p, &s)) sfc_die("%s: %s", cl.db, sfc_errmsg());

    int64_t *counts = sfc_xcalloc((size_t)ncls, sizeof *counts);
    double *dc = sfc_xcalloc((size_t)ncls, sizeof *dc);
    if (sfc_db_class_counts(db, cl.split, counts, ncls)) sfc_die_errmsg();
    double n_ibr = cl.n_ibr >= 0 ? cl.n_ibr
                                 : sfc_dc_n_ibr(s.steps, cl.draws, C);
    if (sfc_dc_compute(C, counts + 1, n_ibr, dc + 1))
        sfc_die("%s: %s", cl.db, sfc_errmsg());

    char *config = sfc_cli_config_json(&cli);
    struct sfc_progress pr;
    sfc_progress_start(&pr, "schedule", s.steps, cl.quiet);
    int64_t run = -1;
    if (sfc_db_begin(db)) sfc_die_errmsg();
    run = sfc_db_run_begin(db, "sfc-sample", cl.seed, config);
    if (run < 0 || sfc_db_class_stats_write(db, run, cl.split, counts, dc,
                                            ncls) ||
        write_schedule(db, run, &s, im, C, &pr) ||
        sfc_db_run_end(db, run, SFC_RUN_OK) || sfc_db_commit(db)) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", sfc_errmsg());
        sfc_db_rollback(db);
        sfc_die("%s", msg);
    }
    sfc_progress_end(&pr);

    int *grp = sfc_xmalloc(sizeof(int) * (size_t)ncls);
    sfc_class_groups(counts, ncls, grp);
    printf("run\t%lld\n", (long long)run);
    printf("steps\t%ld\n", s.steps);
    printf("n_ibr\t%.4f\n", n_ibr);
    printf("%-4s %-16s %8s %8s  %s\n", "id", "class", "N_c", "DC_c", "group");
    for (int c = 1; c < ncls; c++)
        printf("%-4d %-16s %8lld %8.4f  %s\n", c, names[c],
               (long long)counts[c], dc[c],
               sfc_class_group_name((enum sfc_class_group)grp[c]));
    free(grp);
    free(config);
    free(counts);
    free(dc);
    free(h);
    free(w);
    free(lab);
    sfc_schedule_release(&s);
    sfc_db_images_free(im, n);
    sfc_db_strv_free(names, ncls);
    sfc_db_close(db);
    return sfc_fshut(stdout, "<stdout>");
}
