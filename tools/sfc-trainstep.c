/* SPDX-License-Identifier: MIT */
/* sfc-trainstep: train the SFC classifier (or the plain CAM baseline) on
 * the schedule sfc-sample wrote, from the last checkpoint, writing
 * checkpoints, per-step losses into train_log and the final weights
 * (sfc-reference.md §2; lib/sfcnet.h, lib/optim.h, lib/batch.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "db.h"
#include "dist.h"
#include "img.h"
#include "optim.h"
#include "safetensors.h"
#include "sfc.h"
#include "sfcnet.h"
#include "trainer.h"

static const char *const usage[] = {
    "sfc-trainstep --db FILE --out DIR [options]",
    NULL,
};

struct cmdline {
    const char *db, *out, *weights, *blocks, *side, *strides;
    int schedule, steps, ckpt_every, width, frozen, seed, quiet, micro;
    int baseline, no_ibr, no_pdw, no_wdw, no_dc, pdw_warmup;
    double lr, head_mult, wd, momentum, power, clip;
};

static int parse_list(const char *what, const char *s, int *v, int n)
{
    for (int i = 0; i < n; i++) {
        char *end;
        long x = strtol(s, &end, 10);
        if (end == s || x < 1 || x > 100000 || (i + 1 < n && *end != ',') ||
            (i + 1 == n && *end))
            sfc_cli_die("%s: expected %d comma-separated positive integers, "
                        "got '%s'", what, n, s);
        v[i] = (int)x;
        s = end + 1;
    }
    return 0;
}

/* One image of a step as rank 0 reads it from the db and sends it to the
 * other ranks (data-parallel runs, lib/dist.h): its draw, and the size the
 * db records (the file's must agree); the path travels separately. */
struct item {
    struct sfc_aug a;
    int have, H, W; /* have = 0: an empty bank draw */
};

/* Labels of an image as a multi-hot float row. */
static void label_row(float *row, int C, const struct sfc_db_image *im)
{
    memset(row, 0, sizeof(float) * (size_t)C);
    for (int k = 0; im && k < im->nlabels; k++) row[im->labels[k] - 1] = 1;
}

/* Rank 0's part of the setup: check the checkpoint's schedule and
 * options, find the schedule (the latest sfc-sample run unless given),
 * its crop and step count, the class count and the DC weights (C floats,
 * returned). Dies with one line on any error. */
static float *read_setup(const struct cmdline *cl, struct sfc_db *db,
                         const char *ckpt, const char *options,
                         int64_t *sched, int64_t *crop, int64_t *nsteps,
                         int *ncls_out)
{
    if (sfc_file_exists(ckpt)) {
        struct sfc_safetensors st;
        if (sfc_safetensors_read(ckpt, &st)) sfc_die_errmsg();
        const char *sv = sfc_safetensors_meta(&st, "train.schedule");
        const char *ov = sfc_safetensors_meta(&st, "train.options");
        long stored;
        if (!sv || !ov || sfc_parse_long("train.schedule", sv, 1, INT64_MAX,
                                         &stored))
            sfc_die("%s: not a checkpoint of sfc-trainstep", ckpt);
        if (*sched && *sched != stored)
            sfc_die("%s: trained on schedule %ld, not %lld", ckpt, stored,
                    (long long)sched);
        if (strcmp(ov, options))
            sfc_die("%s: trained with other options (%s)", ckpt, ov);
        *sched = stored;
        sfc_safetensors_release(&st);
    }
    if (!*sched && sfc_db_query_int64(db, sched,
                                     "SELECT max(id) FROM runs WHERE tool = "
                                     "'sfc-sample' AND status = 'ok'",
                                     "") < 0)
        sfc_die_errmsg();
    if (!*sched) sfc_die("%s: no sfc-sample run to train on", cl->db);
    if (sfc_db_query_int64(db, crop, "SELECT json_extract(config, "
                                      "'$.crop') FROM runs WHERE id = ?1",
                           "I", *sched) ||
        sfc_db_query_int64(db, nsteps, "SELECT max(step) + 1 FROM schedule "
                                        "WHERE run = ?1", "I", *sched))
        sfc_die("%s: run %lld is not an sfc-sample run with a schedule",
                cl->db, (long long)*sched);

    char **names;
    int ncls;
    if (sfc_db_class_names(db, &names, &ncls)) sfc_die_errmsg();
    /* DC from the sampling run's class statistics */
    int64_t *counts = sfc_xcalloc((size_t)ncls, sizeof *counts);
    double *dcd = sfc_xcalloc((size_t)ncls, sizeof *dcd);
    float *dc = sfc_xmalloc(sizeof(float) * (size_t)(ncls - 1));
    {
        sqlite3_stmt *st = sfc_db_prepare(db, "SELECT split FROM class_stats "
                                              "WHERE run = ?1 LIMIT 1");
        if (!st || sfc_db_bind(db, st, "I", *sched) || sfc_db_step(db, st) != 1)
            sfc_die("%s: run %lld has no class statistics", cl->db,
                    (long long)sched);
        char *split = sfc_xstrdup((const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        if (sfc_db_class_stats_read(db, *sched, split, counts, dcd, NULL,
                                    ncls))
            sfc_die_errmsg();
        free(split);
    }
    for (int c = 0; c + 1 < ncls; c++) dc[c] = (float)dcd[c + 1];
    *ncls_out = ncls;
    free(counts);
    free(dcd);
    sfc_db_strv_free(names, ncls);
    return dc;
}

int main(int argc, char **argv)
{
    struct cmdline cl = {0};
    cl.blocks = "3,4,6,3";
    cl.side = "128,128,256,256";
    cl.strides = "1,2,2,1";
    cl.width = 64;
    cl.frozen = -1;
    cl.ckpt_every = 50;
    cl.seed = 10;
    cl.lr = 0.1;
    cl.head_mult = 10;
    cl.wd = 1e-4;
    cl.momentum = 1e-4;
    cl.power = 0.9;
    cl.clip = 1;
    const struct sfc_opt opts[] = {
        SFC_OPT_STRING_("db", &cl.db, "FILE", "the run's db"),
        SFC_OPT_STRING_("out", &cl.out, "DIR",
                        "checkpoint folder (ckpt.safetensors, "
                        "final.safetensors)"),
        SFC_OPT_INT_("schedule", &cl.schedule, "RUN", 0, 2147483647,
                     "sfc-sample run to train on; 0 = the latest"),
        SFC_OPT_INT_("steps", &cl.steps, "N", 0, 2147483647,
                     "stop after N steps in this call; 0 = to the end"),
        SFC_OPT_INT_("ckpt-every", &cl.ckpt_every, "N", 1, 2147483647,
                     "steps between checkpoints"),
        SFC_OPT_STRING_("weights", &cl.weights, "FILE",
                        "ImageNet backbone (torchvision names); none = "
                        "random init"),
        SFC_OPT_STRING_("blocks", &cl.blocks, "A,B,C,D",
                        "bottlenecks per stage (ResNet-50: 3,4,6,3)"),
        SFC_OPT_INT_("width", &cl.width, "N", 1, 4096,
                     "stem width (ResNet: 64)"),
        SFC_OPT_STRING_("side", &cl.side, "A,B,C,D", "side conv widths"),
        SFC_OPT_STRING_("strides", &cl.strides, "A,B,C,D",
                        "layer1..4 strides (SFC: output stride 16; "
                        "1,2,1,1 gives 8)"),
        SFC_OPT_INT_("frozen", &cl.frozen, "N", -1, 5,
                     "frozen stages (stem, layer1, ...); -1 = 3 with "
                     "--weights, else 0"),
        SFC_OPT_FLAG_("baseline", 0, &cl.baseline,
                      "plain CAM classifier: no IBR, one scale, no MSDW"),
        SFC_OPT_FLAG_("no-ibr", 0, &cl.no_ibr, "ignore the bank draws"),
        SFC_OPT_FLAG_("no-pdw", 0, &cl.no_pdw, "switch L_PDW off"),
        SFC_OPT_FLAG_("no-wdw", 0, &cl.no_wdw, "switch L_WDW off"),
        SFC_OPT_FLAG_("no-dc", 0, &cl.no_dc, "class weights 1 instead of DC"),
        SFC_OPT_INT_("pdw-warmup", &cl.pdw_warmup, "N", 0, 2147483647,
                     "keep L_PDW off for the first N steps (from scratch)"),
        SFC_OPT_DOUBLE_("lr", &cl.lr, "X", 0, 1e6, "backbone learning rate"),
        SFC_OPT_DOUBLE_("head-lr-mult", &cl.head_mult, "X", 0, 1e6,
                        "learning rate factor of the new layers"),
        SFC_OPT_DOUBLE_("wd", &cl.wd, "X", 0, 1, "weight decay"),
        SFC_OPT_DOUBLE_("momentum", &cl.momentum, "X", 0, 1,
                        "SGD momentum (the reference's effective 1e-4)"),
        SFC_OPT_DOUBLE_("power", &cl.power, "X", 0, 100, "poly power"),
        SFC_OPT_DOUBLE_("clip", &cl.clip, "X", 0, 1e12,
                        "max global gradient norm; 0 = off"),
        SFC_OPT_INT_("micro-batch", &cl.micro, "M", 0, 1 << 20,
                     "images per forward/backward pass, gradients "
                     "accumulated over a step (same result up to float "
                     "summation order; not part of the checkpoint's "
                     "options); 0 = as many as fit 2^20 input pixels: 4 "
                     "at 512x512"),
        SFC_OPT_INT_("seed", &cl.seed, "N", 0, 2147483647,
                     "seed of the random initialisation"),
        SFC_OPT_FLAG_("quiet", 'q', &cl.quiet, "no progress on stderr"),
        SFC_OPT_END_,
    };
    const struct sfc_cli cli = {
        usage,
        "Train the SFC network (L_cls + L_PDW + L_WDW with DC weights, two "
        "scales, image-bank draws) or the plain CAM baseline on a schedule "
        "written by sfc-sample, continuing from DIR/ckpt.safetensors when it "
        "exists. Writes a checkpoint every --ckpt-every steps, a train_log "
        "row per step, and DIR/final.safetensors at the end of the schedule. "
        "Under mpirun -np R (or srun) each rank takes a contiguous part of "
        "every step's images and the gradients are summed over ranks: the "
        "same weights up to float rounding; rank 0 alone reads the db and "
        "writes files and rows, and a checkpoint resumes with any number of "
        "ranks.",
        opts};
    sfc_proginit(argv[0]);
    if (sfc_cli_parse(&cli, argc, argv) != 0)
        sfc_cli_die("unexpected argument '%s'", argv[0]);
    if (!cl.db) sfc_cli_die("--db is required");
    if (!cl.out) sfc_cli_die("--out is required");

    /* data-parallel (lib/dist.h): rank 0 alone opens the db and the
     * checkpoints and sends the other ranks what they need */
    sfc_dist_init();
    int rank = sfc_dist_rank(), nrank = sfc_dist_size(), root = rank == 0;
    if (!root) cl.quiet = 1;
    struct sfc_db *db = NULL;
    if (root && !(db = sfc_db_open(cl.db, 0))) sfc_die_errmsg();
    char *ckpt = sfc_path_join(cl.out, "ckpt.safetensors");
    char *final = sfc_path_join(cl.out, "final.safetensors");
    /* what a resumed run must share with the run that wrote the
     * checkpoint: the schedule and every option that changes training */
    char options[1024];
    snprintf(options, sizeof options,
             "blocks=%s width=%d side=%s strides=%s frozen=%d weights=%s "
             "baseline=%d no-ibr=%d no-pdw=%d no-wdw=%d no-dc=%d "
             "pdw-warmup=%d lr=%.17g head-lr-mult=%.17g wd=%.17g "
             "momentum=%.17g power=%.17g clip=%.17g seed=%d", cl.blocks,
             cl.width, cl.side, cl.strides, cl.frozen,
             cl.weights ? cl.weights : "", cl.baseline, cl.no_ibr, cl.no_pdw,
             cl.no_wdw, cl.no_dc, cl.pdw_warmup, cl.lr, cl.head_mult, cl.wd,
             cl.momentum, cl.power, cl.clip, cl.seed);
    int64_t sched = cl.schedule, crop = 0, nsteps = 0;
    int ncls = 0;
    float *dc = NULL;
    if (root)
        dc = read_setup(&cl, db, ckpt, options, &sched, &crop, &nsteps,
                        &ncls);
    int64_t hdr[4] = {sched, crop, nsteps, ncls};
    sfc_dist_bcast(hdr, sizeof hdr, 0);
    sched = hdr[0];
    crop = hdr[1];
    nsteps = hdr[2];
    ncls = (int)hdr[3];
    int C = ncls - 1;
    if (!root) dc = sfc_xmalloc(sizeof(float) * (size_t)C);
    sfc_dist_bcast(dc, sizeof(float) * (size_t)C, 0);

    /* the network */
    struct sfc_sfcnet_config cfg;
    sfc_sfcnet_config_default(&cfg, C);
    parse_list("--blocks", cl.blocks, cfg.backbone.blocks, 4);
    parse_list("--side", cl.side, cfg.side, 4);
    parse_list("--strides", cl.strides, cfg.backbone.strides, 4);
    cfg.backbone.width = cl.width;
    cfg.backbone.frozen = cl.frozen >= 0 ? cl.frozen : (cl.weights ? 3 : 0);
    struct sfc_sfcnet net;
    if (sfc_sfcnet_init(&net, &cfg)) sfc_die_errmsg();
    struct sfc_rng rng;
    sfc_rng_seed(&rng, (uint64_t)cl.seed);
    sfc_sfcnet_init_random(&net, &rng);
    if (sfc_dist_overlap()) net.grad_ready = sfc_dist_grad_ready;
    if (root && cl.weights && sfc_sfcnet_load(&net, cl.weights, 1))
        sfc_die_errmsg();

    struct sfc_sgd opt;
    if (sfc_sgd_init(&opt, net.pb.size, cl.momentum, cl.power, (long)nsteps,
                     cl.clip))
        sfc_die_errmsg();
    unsigned flags = cl.baseline ? 0 : SFC_LOSS_SFC;
    if (cl.no_pdw) flags &= ~(unsigned)SFC_LOSS_PDW;
    if (cl.no_wdw) flags &= ~(unsigned)SFC_LOSS_WDW;
    if (cl.no_dc) flags &= ~(unsigned)SFC_LOSS_DC;
    /* Groups: only what some active loss reaches (PyTorch leaves a
     * parameter whose .grad is None alone: no update, no decay). f9 is
     * reached through M_W (either MSDW term), the sides only through M_P
     * (L_PDW). */
    struct sfc_range rb = {net.bb[0].train_off, net.bb[0].train_len};
    const struct sfc_pentry *ec = sfc_pblock_find(&net.pb, "classifier.weight"),
                            *ef = sfc_pblock_find(&net.pb, "f9.weight"),
                            *es = sfc_pblock_find(&net.pb, "side1.weight");
    SFC_ASSERT(ec && ef && es);
    struct sfc_range rc = {ec->off, ec->numel}, rf = {ef->off, ef->numel},
                     rs = {es->off, net.pb.size - es->off};
    double hlr = cl.lr * cl.head_mult;
    int gsides = -1;
    if (rb.len) sfc_sgd_add_group(&opt, cl.lr, cl.wd, 1, &rb);
    sfc_sgd_add_group(&opt, hlr, cl.wd, 1, &rc);
    if (flags & (SFC_LOSS_PDW | SFC_LOSS_WDW))
        sfc_sgd_add_group(&opt, hlr, cl.wd, 1, &rf);
    if (flags & SFC_LOSS_PDW) {
        gsides = opt.ngroups;
        sfc_sgd_add_group(&opt, hlr, cl.wd, 1, &rs);
    }

    if (root && sfc_mkdirs(cl.out, 0777)) sfc_die_errmsg();
    if (root && sfc_file_exists(ckpt) &&
        sfc_checkpoint_load(ckpt, &net.pb, net.params, &opt))
        sfc_die_errmsg();
    /* every rank starts from rank 0's weights and optimiser state */
    sfc_dist_bcast(net.params, sizeof(float) * net.pb.size, 0);
    sfc_sgd_bcast(&opt);
    size_t span_off, span_len; /* the trained part of the gradients */
    sfc_sgd_span(&opt, &span_off, &span_len);
    long start = opt.step;
    long stop = cl.steps ? SFC_MIN(nsteps, start + cl.steps) : nsteps;
    int finished = root && start >= nsteps && sfc_file_exists(final);
    sfc_dist_bcast(&finished, sizeof finished, 0);
    if (finished) {
        if (!cl.quiet)
            fprintf(stderr, "%s: %s: schedule already done (%ld steps)\n",
                    sfc_progname(), final, start);
        goto done;
    }

    char *config = sfc_cli_config_json(&cli);
    int64_t run = 0;
    if (root && (run = sfc_db_run_begin(db, "sfc-trainstep", cl.seed,
                                        config)) < 0)
        sfc_die_errmsg();
    /* a stop by SIGTERM/SIGINT/SIGHUP (mpirun ending the job after a
     * rank failed, scancel, Ctrl-C) marks the row failed */
    if (root && sfc_trainer_guard_run(cl.db, run)) sfc_db_run_die(db, run);

    int use_bank = !cl.baseline && !cl.no_ibr;
    int S = (int)crop;
    struct sfc_progress pr;
    sfc_progress_start(&pr, "train step", stop - start, cl.quiet);
    float *img = NULL, *box = NULL, *lab = NULL;
    struct item *it = NULL;
    int cap = 0;
    double loop_t0 = sfc_now();
    for (long t = start; t < stop; t++) {
        double t0 = sfc_now();
        /* rank 0: the step's images from the schedule (bank draws left
         * out unless used); hdr = {N, epoch} */
        int hdr2[2] = {0, 0};
        struct sfc_step_slot *sl = NULL;
        int ns = 0;
        if (root && sfc_step_slots_read(db, sched, t, &sl, &ns))
            sfc_db_run_die(db, run);
        if (root) hdr2[1] = sl[0].epoch;
        for (int j = 0; j < ns; j++)
            hdr2[0] += !(sl[j].bank_class && !use_bank);
        sfc_dist_bcast(hdr2, sizeof hdr2, 0);
        int N = hdr2[0], epoch = hdr2[1];
        if (N > cap) {
            cap = N;
            img = sfc_xrealloc(img, sizeof(float) * 3 * (size_t)cap * S * S);
            box = sfc_xrealloc(box, sizeof(float) * (size_t)cap * S * S);
            lab = sfc_xrealloc(lab, sizeof(float) * (size_t)cap * C);
            it = sfc_xrealloc(it, sizeof *it * (size_t)cap);
        }
        char **paths = root ? sfc_xcalloc((size_t)SFC_MAX(N, 1),
                                          sizeof(char *))
                            : NULL;
        for (int j = 0, n = 0; j < ns; j++) {
            if (sl[j].bank_class && !use_bank) continue;
            struct sfc_db_image im;
            int have = sl[j].image != NULL;
            if (have && sfc_db_image_get(db, sl[j].image, &im))
                sfc_db_run_die(db, run);
            it[n] = (struct item){sl[j].aug, have, have ? im.height : 0,
                                  have ? im.width : 0};
            paths[n] = sfc_xstrdup(have ? im.path : "");
            label_row(lab + (size_t)n * C, C, have ? &im : NULL);
            if (have) sfc_db_image_release(&im);
            n++;
        }
        if (root) sfc_step_slots_free(sl, ns);
        long np = N;
        if (nrank > 1) {
            sfc_dist_bcast(it, sizeof *it * (size_t)N, 0);
            sfc_dist_bcast(lab, sizeof(float) * (size_t)N * C, 0);
            char **all = sfc_dist_bcast_strv(paths, &np);
            sfc_db_strv_free(paths, root ? N : 0);
            paths = all;
        }
        /* this rank's part [lo, hi) of the step's images */
        int lo, hi;
        sfc_batch_split(N, nrank, rank, &lo, &hi);
        for (int j = lo; j < hi; j++) {
            struct sfc_tensor rgb = {0};
            const struct item *e = &it[j];
            if (e->have && sfc_image_load(paths[j], &rgb))
                sfc_db_run_die(db, run);
            int H = e->have ? (int)rgb.shape[0] : 0,
                W = e->have ? (int)rgb.shape[1] : 0;
            if (e->have && (H != e->H || W != e->W)) {
                sfc_error(paths[j], "image is %dx%d, the db says %dx%d", W, H,
                          e->W, e->H);
                sfc_db_run_die(db, run);
            }
            struct sfc_aug a = e->a;
            if (e->have) sfc_aug_resized(H, W, a.scale, &a.h, &a.w);
            sfc_batch_fill(img + (size_t)(j - lo) * 3 * S * S,
                           box + (size_t)(j - lo) * S * S,
                           e->have ? rgb.data : NULL, H, W, &a, S);
            sfc_tensor_release(&rgb);
        }
        sfc_db_strv_free(paths, np);
        unsigned f = flags;
        if (t < cl.pdw_warmup) f &= ~(unsigned)SFC_LOSS_PDW;
        struct sfc_sfc_losses L = {0, 0, 0};
        memset(net.grads, 0, sizeof(float) * net.pb.size);
        /* ONE sum over ranks of the gradient block (its trained span),
         * overlapped with the backward pass from its last block down */
        sfc_dist_sum_start(net.grads + span_off, span_len);
        if (hi > lo)
            sfc_sfcnet_accumulate(&net, img, lab + (size_t)lo * C, box, dc,
                                  hi - lo, N, S, cl.micro, f, &L);
        sfc_dist_sum_finish();
        if (nrank > 1) {
            double l3[3] = {L.cls, L.pdw, L.wdw};
            sfc_dist_sum_double(l3, 3);
            L = (struct sfc_sfc_losses){(float)l3[0], (float)l3[1],
                                        (float)l3[2]};
        }
        double lr = opt.groups[0].lr0 * sfc_sgd_poly(&opt, t);
        /* no L_PDW this step: the sides have no gradient, so no step */
        int warm = gsides >= 0 && !(f & SFC_LOSS_PDW);
        if (warm) opt.groups[gsides].lr0 = opt.groups[gsides].weight_decay = 0;
        double gnorm = sfc_sgd_step(&opt, net.params, net.grads);
        if (warm) {
            opt.groups[gsides].lr0 = hlr;
            opt.groups[gsides].weight_decay = cl.wd;
        }
        double sec = sfc_now() - t0;
        double loss = (double)L.cls + L.pdw + L.wdw;
        if (!isfinite(loss)) {
            sfc_error(cl.out, "loss is not finite at step %ld", t);
            sfc_db_run_die(db, run);
        }
        if (root &&
            sfc_db_execv(db, "INSERT OR REPLACE INTO train_log (run, step, "
                             "epoch, loss, loss_cls, loss_pdw, loss_wdw, "
                             "grad_norm, lr, images_per_s, seconds) VALUES "
                             "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                         "IIidddddddd", run, (int64_t)t, epoch, loss,
                         (double)L.cls, (double)L.pdw, (double)L.wdw, gnorm,
                         lr, N / sec, sec))
            sfc_db_run_die(db, run);
        if (root && ((t + 1) % cl.ckpt_every == 0 || t + 1 == stop)) {
            char sv[32];
            snprintf(sv, sizeof sv, "%lld", (long long)sched);
            const char *mk[] = {"train.schedule", "train.options"};
            const char *mv[] = {sv, options};
            if (sfc_sfcnet_checkpoint(&net, ckpt, &opt, 2, mk, mv))
                sfc_db_run_die(db, run);
        }
        sfc_progress_update(&pr, t + 1 - start);
    }
    sfc_progress_end(&pr);
    if (!cl.quiet) sfc_dist_report(stop - start, sfc_now() - loop_t0);
    if (root && stop == nsteps) {
        char stepv[32];
        snprintf(stepv, sizeof stepv, "%ld", stop);
        const char *mk[] = {"sfc.step"}, *mv[] = {stepv};
        if (sfc_sfcnet_save(&net, final, 1, mk, mv))
            sfc_db_run_die(db, run);
        printf("%s\n", final);
    }
    if (root && sfc_db_run_end(db, run, SFC_RUN_OK)) sfc_db_run_die(db, run);
    sfc_trainer_unguard();
    free(it);
    free(img);
    free(box);
    free(lab);
    free(config);
done:
    free(ckpt);
    free(final);
    free(dc);
    sfc_sgd_release(&opt);
    sfc_sfcnet_release(&net);
    sfc_db_close(db);
    sfc_dist_finalize();
    return sfc_fshut(stdout, "<stdout>");
}
