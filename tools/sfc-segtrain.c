/* SPDX-License-Identifier: MIT */
/* sfc-segtrain: the last stage, a DeepLab-v2 segmentation network trained
 * on pseudo labels (lib/deeplab.h, lib/segaug.h).
 *   train:   multi-scale DeepLab-v2 training on <id>.png label maps;
 *   predict: multi-scale (+ flip) inference, optional dense CRF, label
 *            PNGs <id>.png with the VOC palette. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "crf.h"
#include "db.h"
#include "deeplab.h"
#include "dist.h"
#include "ids.h"
#include "img.h"
#include "ops.h"
#include "optim.h"
#include "progress.h"
#include "safetensors.h"
#include "segaug.h"
#include "sfc.h"
#include "trainer.h"

#define FAIL() sfc_die_errmsg()
#define RUN_FAIL() sfc_db_run_die(db, run)

static const char *const usage_top[] = {
    "sfc-segtrain train [options] --images DIR --labels DIR [ID...]",
    "sfc-segtrain predict [options] --model FILE --images DIR [ID...]",
    "sfc-segtrain train|predict --help", NULL};
static const char *const usage_train[] = {
    "sfc-segtrain train [options] --images DIR --labels DIR [ID...]", NULL};
static const char *const usage_predict[] = {
    "sfc-segtrain predict [options] --model FILE --images DIR [ID...]", NULL};

static struct {
    /* shared */
    const char *images, *ext, *list, *split, *db, *msc;
    int quiet;
    /* train */
    const char *labels, *out, *ckpt, *weights, *blocks, *aug_scales;
    int width, nclass, batch, micro, iters, crop, flip, train_bn;
    int ckpt_every, stop_after, seed;
    double lr, head_mult, bias_mult, wd, momentum, power, clip;
    /* predict */
    const char *model, *seg;
    int pflip, crf, crf_iters;
    double crf_gsxy, crf_gw, crf_bsxy, crf_bsrgb, crf_bw;
    struct sfc_shard shard;
} cl = {
    .ext = ".jpg",
    .msc = "1,0.75,0.5",
    .out = "seg.safetensors",
    .ckpt = "",
    .blocks = "3,4,23,3",
    .aug_scales = "0.5,0.75,1,1.25,1.5",
    .width = 64,
    .nclass = 21,
    .batch = 10,
    .micro = 2,
    .iters = 20000,
    .crop = 321,
    .flip = 1,
    .ckpt_every = 100,
    .lr = 2.5e-4,
    .head_mult = 10,
    .bias_mult = 20,
    .wd = 5e-4,
    .momentum = 0.9,
    .power = 0.9,
    .model = "seg.safetensors",
    .seg = "seg",
    .crf_iters = 10,
    .crf_gsxy = 1,
    .crf_gw = 3,
    .crf_bsxy = 67,
    .crf_bsrgb = 3,
    .crf_bw = 4,
    .shard = {0, 1},
};

#define OPT_IDS                                                              \
    SFC_OPT_STRING_("images", &cl.images, "DIR",                            \
                    "images <id><ext> (default with --split: the db's "     \
                    "paths)"),                                               \
        SFC_OPT_STRING_("ext", &cl.ext, "EXT", "image file extension"),     \
        SFC_OPT_STRING_("list", &cl.list, "FILE", "image ids, one per line"), \
        SFC_OPT_STRING_("split", &cl.split, "NAME",                         \
                        "every image of this split of the db (needs --db)"), \
        SFC_OPT_STRING_("db", &cl.db, "FILE",                               \
                        "record the run (and training losses) in this db"), \
        SFC_OPT_STRING_("msc", &cl.msc, "S,S,..",                           \
                        "input scales fused by the pixel-wise max (the "    \
                        "first sets the output grid)"),                     \
        SFC_OPT_FLAG_("quiet", 'q', &cl.quiet, "no progress on stderr")

static const struct sfc_opt opts_top[] = {SFC_OPT_END_};

static const struct sfc_opt opts_train[] = {
    OPT_IDS,
    SFC_OPT_STRING_("labels", &cl.labels, "DIR",
                    "label maps <id>.png (class ids, 255 ignored; required)"),
    SFC_OPT_STRING_("out", &cl.out, "FILE",
                    "trained model (safetensors); an existing file means "
                    "done"),
    SFC_OPT_STRING_("checkpoint", &cl.ckpt, "FILE",
                    "resume state, removed at the end (\"\": OUT.ckpt)"),
    SFC_OPT_STRING_("weights", &cl.weights, "FILE",
                    "backbone weights, torchvision keys (none: random init)"),
    SFC_OPT_STRING_("blocks", &cl.blocks, "A,B,C,D",
                    "bottlenecks per ResNet layer (3,4,6,3 = ResNet-50)"),
    SFC_OPT_INT_("width", &cl.width, "N", 1, 64,
                 "ResNet width (64; smaller only for tests and toys)"),
    SFC_OPT_INT_("classes", &cl.nclass, "N", 1, 255,
                 "classes incl. background; labels >= N other than 255 "
                 "are errors"),
    SFC_OPT_INT_("iters", &cl.iters, "N", 1, 100000000, "training steps"),
    SFC_OPT_INT_("batch", &cl.batch, "N", 1, 4096, "images per step"),
    SFC_OPT_INT_("micro", &cl.micro, "N", 1, 4096,
                 "images per forward (divides --batch; same result)"),
    SFC_OPT_INT_("crop", &cl.crop, "PX", 8, 4096, "training crop side"),
    SFC_OPT_STRING_("scales", &cl.aug_scales, "S,S,..",
                    "random rescale factors (one drawn per image)"),
    SFC_OPT_INT_("flip", &cl.flip, "0|1", 0, 1, "random horizontal flip"),
    SFC_OPT_DOUBLE_("lr", &cl.lr, "X", 0, 100, "backbone learning rate"),
    SFC_OPT_DOUBLE_("head-lr-mult", &cl.head_mult, "X", 0, 1e6,
                    "ASPP weights' lr / --lr"),
    SFC_OPT_DOUBLE_("bias-lr-mult", &cl.bias_mult, "X", 0, 1e6,
                    "ASPP biases' lr / --lr (no weight decay)"),
    SFC_OPT_INT_("train-bn", &cl.train_bn, "0|1", 0, 1,
                 "also train BN gamma and beta (DeepLab: 0, frozen)"),
    SFC_OPT_DOUBLE_("weight-decay", &cl.wd, "X", 0, 1, "weight decay"),
    SFC_OPT_DOUBLE_("momentum", &cl.momentum, "X", 0, 1, "SGD momentum"),
    SFC_OPT_DOUBLE_("power", &cl.power, "X", 0, 10, "poly lr power"),
    SFC_OPT_DOUBLE_("clip", &cl.clip, "X", 0, 1e6,
                    "clip the gradient's global L2 norm at X (0: off, as "
                    "DeepLab; from scratch it keeps a large lr stable)"),
    SFC_OPT_INT_("checkpoint-every", &cl.ckpt_every, "N", 1, 100000000,
                 "write the resume state every N steps"),
    SFC_OPT_INT_("stop-after", &cl.stop_after, "N", 0, 2147483647,
                 "stop after N steps, leaving the checkpoint (0 = finish)"),
    SFC_OPT_INT_("seed", &cl.seed, "S", 0, 2147483647,
                 "random seed (init, image order, augmentation)"),
    SFC_OPT_END_};

static const struct sfc_opt opts_predict[] = {
    OPT_IDS,
    SFC_OPT_STRING_("model", &cl.model, "FILE",
                    "trained model (sfc-segtrain train)"),
    SFC_OPT_STRING_("out", &cl.seg, "DIR", "predictions <id>.png"),
    SFC_OPT_INT_("flip", &cl.pflip, "0|1", 0, 1,
                 "also the mirrored image (fused by the same max)"),
    SFC_OPT_INT_("crf", &cl.crf, "0|1", 0, 1,
                 "dense CRF on the softmax (DeepLab's settings below)"),
    SFC_OPT_INT_("crf-iters", &cl.crf_iters, "N", 0, 1000,
                 "CRF mean-field iterations"),
    SFC_OPT_DOUBLE_("crf-gauss-sxy", &cl.crf_gsxy, "X", 1e-3, 1e4,
                    "CRF Gaussian kernel position scale"),
    SFC_OPT_DOUBLE_("crf-gauss-w", &cl.crf_gw, "X", 0, 1e4,
                    "CRF Gaussian kernel weight"),
    SFC_OPT_DOUBLE_("crf-bilat-sxy", &cl.crf_bsxy, "X", 1e-3, 1e4,
                    "CRF bilateral kernel position scale"),
    SFC_OPT_DOUBLE_("crf-bilat-srgb", &cl.crf_bsrgb, "X", 1e-3, 1e4,
                    "CRF bilateral kernel colour scale"),
    SFC_OPT_DOUBLE_("crf-bilat-w", &cl.crf_bw, "X", 0, 1e4,
                    "CRF bilateral kernel weight"),
    SFC_OPT_SHARD_(&cl.shard),
    SFC_OPT_END_};

/* ---- shared helpers -------------------------------------------------- */

/* "a,b,c" -> v (positive), count; -1 (error set) if malformed */
static int parse_scales(const char *what, const char *s, double *v, int max)
{
    int n = 0;
    for (;;) {
        char *end;
        double x = strtod(s, &end);
        if (end == s || !(x > 0) || x > 16 || n == max ||
            (*end != ',' && *end != 0))
            return sfc_error(what, "expected up to %d comma-separated "
                                   "positive scales, got '%s'", max, s);
        v[n++] = x;
        if (!*end) return n;
        s = end + 1;
    }
}

static struct sfc_db *open_db(void)
{
    if (!cl.db) return NULL;
    struct sfc_db *db = sfc_db_open(cl.db, SFC_DB_CREATE);
    if (!db) FAIL();
    return db;
}

/* ---- train ------------------------------------------------------------ */

/* Everything the weights depend on, stored in the checkpoint so that a
 * resume with other options or other images is refused. */
static char *train_fingerprint(const struct sfc_trainer_ids *ids)
{
    uint64_t h = sfc_trainer_ids_hash(ids);
    return sfc_xasprintf(
        "ids=%ld:%016llx weights=%s blocks=%s width=%d classes=%d iters=%d "
        "batch=%d crop=%d scales=%s flip=%d msc=%s lr=%.17g head=%.17g "
        "bias=%.17g train_bn=%d wd=%.17g momentum=%.17g power=%.17g "
        "clip=%.17g seed=%d",
        ids->n, (unsigned long long)h, cl.weights ? cl.weights : "(random)",
        cl.blocks, cl.width, cl.nclass, cl.iters, cl.batch, cl.crop,
        cl.aug_scales, cl.flip, cl.msc, cl.lr, cl.head_mult, cl.bias_mult,
        cl.train_bn, cl.wd, cl.momentum, cl.power, cl.clip, cl.seed);
}

/* The image of sample g (0-based over the run): epoch g / n of a shuffled
 * order drawn from the seed and the epoch. */
static long sample_index(long g, long n, int *perm, long *perm_epoch)
{
    long epoch = g / n;
    if (epoch != *perm_epoch) {
        struct sfc_rng er;
        sfc_rng_seed(&er,
                     sfc_rng_mix((uint64_t)cl.seed, 1, (uint64_t)epoch));
        for (long i = 0; i < n; i++) perm[i] = (int)i;
        sfc_rng_shuffle_int(&er, perm, (int)n);
        *perm_epoch = epoch;
    }
    return perm[g % n];
}

static int check_label(const char *path, const struct sfc_tensor *L, int w,
                       int h)
{
    if (L->shape[0] != h || L->shape[1] != w)
        return sfc_error(path, "label is %lldx%lld, its image is %dx%d",
                         (long long)L->shape[1], (long long)L->shape[0], w, h);
    const uint8_t *p = L->data;
    for (int64_t i = 0; i < L->shape[0] * L->shape[1]; i++)
        if (p[i] >= cl.nclass && p[i] != SFC_IGNORE_LABEL)
            return sfc_error(path, "label value %d is not a class (--classes "
                                   "%d) nor 255", p[i], cl.nclass);
    return 0;
}

static int save_model(const char *path, const struct sfc_deeplab *net,
                      const struct sfc_sgd *o, const char *fp)
{
    const char *keys[SFC_DEEPLAB_NMETA + 1], *vals[SFC_DEEPLAB_NMETA + 1];
    char v[SFC_DEEPLAB_NMETA][64];
    sfc_deeplab_meta(&net->cfg, keys, v);
    for (int i = 0; i < SFC_DEEPLAB_NMETA; i++) vals[i] = v[i];
    int n = SFC_DEEPLAB_NMETA;
    if (fp) {
        keys[n] = "sfc-segtrain.train";
        vals[n++] = fp;
    }
    return sfc_checkpoint_save_meta(path, &net->pb, net->params, o, n, keys,
                                    vals);
}

static int cmd_train(int argc, char **argv)
{
    struct sfc_cli cli = {
        usage_train,
        "Trains DeepLab-v2 (dilated ResNet + ASPP, frozen BN) on label maps "
        "such as pseudo labels: each step takes --batch images (epoch order "
        "shuffled by the seed), rescales each by a random --scales factor, "
        "pads with the mean (labels 255), crops --crop, flips; then the "
        "images at the --msc scales, a softmax cross-entropy (255 ignored) "
        "on each scale's logits and on their pixel-wise max, summed; SGD "
        "with momentum, weight decay and the poly schedule, the ASPP at "
        "larger lr. Writes --out atomically; a killed run resumes from "
        "--checkpoint to the same weights; sample k of step t is replayed "
        "from --seed and t * batch + k. Under mpirun -np R (or srun) each "
        "rank takes a contiguous part of every step's batch and the "
        "gradients are summed over ranks: the same weights up to float "
        "rounding, rank 0 alone writes files and db rows, and a checkpoint "
        "resumes with any number of ranks. Image ids: the arguments, else "
        "--list FILE, else --split NAME (with --db), else standard input.",
        opts_train};
    int npos = sfc_cli_parse(&cli, argc, argv);
    if (!cl.labels) sfc_cli_die("--labels DIR is required");
    if (!cl.images && !cl.db)
        sfc_cli_die("--images DIR (or --db with image paths) is required");
    if (cl.split && !cl.db) sfc_cli_die("--split needs --db");
    if (cl.batch % cl.micro)
        sfc_cli_die("--micro %d does not divide --batch %d", cl.micro,
                    cl.batch);
    int blocks[4];
    double msc[SFC_DEEPLAB_MAXSCALES];
    struct sfc_seg_aug aug = {cl.crop, cl.flip, 0, {0}};
    int nmsc;
    if (sfc_trainer_parse_blocks("--blocks", cl.blocks, blocks) ||
        (nmsc = parse_scales("--msc", cl.msc, msc, SFC_DEEPLAB_MAXSCALES)) <
            0 ||
        (aug.nscale = parse_scales("--scales", cl.aug_scales, aug.scales,
                                   SFC_SEG_AUG_MAXSCALES)) < 0)
        sfc_cli_die("%s", sfc_errmsg());
    char *ckpt = *cl.ckpt ? sfc_xstrdup(cl.ckpt)
                          : sfc_xasprintf("%s.ckpt", cl.out);
    /* data-parallel: rank 0 reads and writes the files and the db */
    int done = sfc_trainer_start("sfc-segtrain", cl.out, &cl.quiet);
    int rank = sfc_dist_rank(), nrank = sfc_dist_size(), root = rank == 0;
    if (done) {
        free(ckpt);
        sfc_dist_finalize();
        return sfc_fshut(stdout, "<stdout>");
    }
    struct sfc_db *db = root ? open_db() : NULL;
    struct sfc_trainer_ids ids = {0};
    if (root && sfc_trainer_ids_get(&ids, npos, argv, cl.list, db, cl.split,
                                    cl.images, cl.ext))
        FAIL();
    sfc_trainer_ids_bcast(&ids);
    if (ids.n < 1) sfc_die("no images");

    /* every image and label checked before anything is written */
    char **lab_paths = sfc_xmalloc(sizeof(char *) * ids.n);
    for (long i = 0; i < ids.n; i++) {
        int w, h;
        lab_paths[i] = sfc_xasprintf("%s/%s.png", cl.labels, ids.ids[i]);
        if (!root) continue;
        if (sfc_image_size(ids.paths[i], &w, &h)) FAIL();
        struct sfc_tensor L;
        if (sfc_label_load(lab_paths[i], &L)) FAIL();
        if (check_label(lab_paths[i], &L, w, h)) FAIL();
        sfc_tensor_release(&L);
    }

    struct sfc_deeplab_config cfg;
    sfc_deeplab_config_default(&cfg, 50, cl.nclass);
    memcpy(cfg.bb.blocks, blocks, sizeof blocks);
    cfg.bb.width = cl.width;
    struct sfc_deeplab net;
    if (sfc_deeplab_init(&net, &cfg, NULL, NULL)) FAIL();
    struct sfc_rng rng;
    sfc_rng_seed(&rng, sfc_rng_mix((uint64_t)cl.seed, 0, 0));
    sfc_deeplab_init_random(&net, &rng);
    if (root && cl.weights && sfc_deeplab_load_backbone(&net, cl.weights))
        FAIL();
    /* this rank's images of each step: [blo, bhi) of the batch, in
     * forwards of up to mb images */
    int blo, bhi;
    sfc_batch_split(cl.batch, nrank, rank, &blo, &bhi);
    int nb = bhi - blo, mb = SFC_MIN(cl.micro, SFC_MAX(nb, 1));
    if (sfc_deeplab_plan(&net, mb, cl.crop, cl.crop, nmsc, msc, 1))
        sfc_die("--crop %d: %s", cl.crop, sfc_errmsg());
    long T = cl.iters;
    struct sfc_sgd opt;
    if (sfc_sgd_init(&opt, net.pb.size, cl.momentum, cl.power, T,
                     cl.clip)) FAIL();
    sfc_deeplab_sgd_groups(&net, &opt, cl.lr, cl.wd, cl.head_mult,
                           cl.bias_mult, cl.train_bn);
    char *fp = train_fingerprint(&ids);
    if (root && sfc_file_exists(ckpt)) {
        struct sfc_safetensors cst;
        if (sfc_safetensors_read(ckpt, &cst)) FAIL();
        const char *got = sfc_safetensors_meta(&cst, "sfc-segtrain.train");
        if (!got || strcmp(got, fp))
            sfc_die("checkpoint '%s' belongs to another run (options or "
                    "images differ); remove it to start afresh", ckpt);
        sfc_safetensors_release(&cst);
        if (sfc_checkpoint_load(ckpt, &net.pb, net.params, &opt)) FAIL();
        if (opt.step > T)
            sfc_die("checkpoint '%s' is at step %ld of %ld", ckpt, opt.step,
                    T);
        if (!cl.quiet)
            fprintf(stderr, "sfc-segtrain: resuming at step %ld of %ld\n",
                    opt.step, T);
    }
    /* every rank starts from rank 0's weights and optimiser state */
    sfc_dist_bcast(net.params, sizeof(float) * net.pb.size, 0);
    sfc_sgd_bcast(&opt);
    size_t span_off, span_len; /* the trained part of the gradients */
    sfc_sgd_span(&opt, &span_off, &span_len);

    int64_t run = 0;
    if (db) {
        char *cfgjson = sfc_cli_config_json(&cli);
        run = sfc_db_run_begin(db, "sfc-segtrain train", cl.seed, cfgjson);
        free(cfgjson);
        if (run < 0) FAIL();
        /* a stop by SIGTERM/SIGINT/SIGHUP (mpirun ending the job after
         * a rank failed, scancel, Ctrl-C) marks the row failed */
        if (sfc_trainer_guard_run(cl.db, run)) RUN_FAIL();
    }
    size_t S2 = (size_t)cl.crop * cl.crop;
    float *x = sfc_xmalloc(sizeof(float) * 3 * S2 * SFC_MAX(nb, 1));
    uint8_t *lab = sfc_xmalloc(S2 * SFC_MAX(nb, 1));
    int *perm = sfc_xmalloc(sizeof(int) * ids.n);
    long perm_epoch = -1;
    struct sfc_progress prog;
    sfc_progress_start(&prog, "segtrain step", T, cl.quiet);
    sfc_progress_update(&prog, opt.step);
    long t_end = T, t_begin = opt.step;
    if (cl.stop_after && opt.step + cl.stop_after < T)
        t_end = opt.step + cl.stop_after;
    double loop_t0 = sfc_now();
    for (long t = opt.step; t < t_end; t++) {
        double t0 = sfc_now();
        for (int j = 0; j < nb; j++) {
            long g = t * cl.batch + blo + j;
            long k = sample_index(g, ids.n, perm, &perm_epoch);
            struct sfc_tensor img, L;
            if (sfc_image_load(ids.paths[k], &img) ||
                sfc_label_load(lab_paths[k], &L))
                RUN_FAIL();
            if (check_label(lab_paths[k], &L, (int)img.shape[1],
                            (int)img.shape[0]))
                RUN_FAIL();
            struct sfc_rng ar;
            sfc_rng_seed(&ar, sfc_rng_mix((uint64_t)cl.seed, 2, (uint64_t)g));
            struct sfc_seg_aug_draw d;
            sfc_seg_aug_draw(&d, (int)img.shape[0], (int)img.shape[1], &aug,
                             &ar);
            sfc_seg_aug_apply(x + j * 3 * S2, lab + j * S2, img.data, L.data,
                              (int)img.shape[0], (int)img.shape[1], &aug, &d);
            sfc_tensor_release(&img);
            sfc_tensor_release(&L);
        }
        /* the loss's denominators count the whole batch: summed over
         * ranks (exact integers) */
        double count[SFC_DEEPLAB_MAXSCALES + 1] = {0};
        if (nb) sfc_deeplab_count(&net, lab, nb, count);
        sfc_dist_sum_double(count, (size_t)nmsc + 1);
        double loss = 0;
        sfc_deeplab_zero_grad(&net);
        /* ONE sum over ranks of the gradient block (its trained span),
         * overlapped with the last backward (the last micro-batch's last
         * scale; the heads sit after the backbone in the block) */
        sfc_dist_sum_start(net.grads + span_off, span_len);
        for (int m0 = 0; m0 < nb; m0 += mb) {
            int m = SFC_MIN(mb, nb - m0);
            if (sfc_deeplab_plan(&net, m, cl.crop, cl.crop, nmsc, msc, 1))
                RUN_FAIL();
            struct sfc_resnet *lastbb = &net.sc[nmsc - 1].bb;
            if (m0 + mb >= nb && sfc_dist_overlap())
                lastbb->grad_ready = sfc_dist_grad_ready;
            loss += sfc_deeplab_train(&net, x + m0 * 3 * S2, lab + m0 * S2,
                                      count, NULL);
            lastbb->grad_ready = NULL;
        }
        sfc_dist_sum_finish();
        sfc_dist_sum_double(&loss, 1);
        double gnorm = sfc_sgd_grad_norm(&opt, net.grads);
        sfc_sgd_step(&opt, net.params, net.grads);
        double secs = sfc_now() - t0;
        if (!isfinite(loss)) {
            sfc_error(cl.out, "loss is %g at step %ld", loss, t);
            RUN_FAIL();
        }
        if (db && sfc_db_execv(db,
                               "INSERT INTO train_log (run, step, epoch, loss,"
                               " grad_norm, lr, images_per_s, seconds) VALUES"
                               " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                               "IIIddddd", run, (int64_t)t,
                               (int64_t)(t * cl.batch / ids.n), loss, gnorm,
                               opt.groups[0].lr, cl.batch / secs, secs))
            RUN_FAIL();
        if (root && ((t + 1) % cl.ckpt_every == 0 || t + 1 == t_end) &&
            t + 1 < T && save_model(ckpt, &net, &opt, fp))
            RUN_FAIL();
        sfc_progress_update(&prog, t + 1);
    }
    sfc_progress_end(&prog);
    if (!cl.quiet) sfc_dist_report(t_end - t_begin, sfc_now() - loop_t0);
    if (root && t_end == T) {
        if (save_model(cl.out, &net, NULL, NULL)) RUN_FAIL();
        if (unlink(ckpt) && sfc_file_exists(ckpt))
            sfc_warn("cannot remove '%s'", ckpt);
    }
    if (db && sfc_db_run_end(db, run, SFC_RUN_OK)) FAIL();
    sfc_trainer_unguard();
    free(x);
    free(lab);
    free(perm);
    for (long i = 0; i < ids.n; i++) free(lab_paths[i]);
    free(lab_paths);
    sfc_trainer_ids_release(&ids);
    sfc_sgd_release(&opt);
    sfc_deeplab_release(&net);
    sfc_db_close(db);
    free(ckpt);
    free(fp);
    sfc_dist_finalize();
    return sfc_fshut(stdout, "<stdout>");
}

/* ---- predict -------------------------------------------------------- */

static void softmax_chw(float *p, int C, size_t hw)
{
    for (size_t i = 0; i < hw; i++) {
        float m = p[i];
        for (int c = 1; c < C; c++) m = SFC_MAX(m, p[c * hw + i]);
        double s = 0;
        for (int c = 0; c < C; c++) s += exp((double)p[c * hw + i] - m);
        for (int c = 0; c < C; c++)
            p[c * hw + i] = (float)(exp((double)p[c * hw + i] - m) / s);
    }
}

static int cmd_predict(int argc, char **argv)
{
    struct sfc_cli cli = {
        usage_predict,
        "Segments images with a trained DeepLab-v2 (--model): logits at the "
        "--msc scales (and of the mirrored image with --flip 1) fused by "
        "the pixel-wise max, resized bilinearly to the image, then the "
        "argmax, or with --crf 1 DeepLab's dense CRF on the softmax first. "
        "Writes --out/<id>.png (VOC palette) atomically; ids whose output "
        "exists are skipped, so a killed run resumes. Images of any size. "
        "Image ids: the arguments, else --list FILE, else --split NAME "
        "(with --db), else standard input.",
        opts_predict};
    int npos = sfc_cli_parse(&cli, argc, argv);
    if (!cl.images && !cl.db)
        sfc_cli_die("--images DIR (or --db with image paths) is required");
    if (cl.split && !cl.db) sfc_cli_die("--split needs --db");
    double msc[SFC_DEEPLAB_MAXSCALES];
    int nmsc = parse_scales("--msc", cl.msc, msc, SFC_DEEPLAB_MAXSCALES);
    if (nmsc < 0) sfc_cli_die("%s", sfc_errmsg());
    struct sfc_crf_params cp = {cl.crf_iters,       0.7f,
                                (float)cl.crf_gsxy, (float)cl.crf_gw,
                                (float)cl.crf_bsxy, (float)cl.crf_bsrgb,
                                (float)cl.crf_bw};
    if (sfc_crf_params_check(&cp)) sfc_cli_die("%s", sfc_errmsg());
    struct sfc_db *db = open_db();
    struct sfc_trainer_ids ids;
    if (sfc_trainer_ids_get(&ids, npos, argv, cl.list, db, cl.split,
                            cl.images, cl.ext))
        FAIL();

    struct sfc_safetensors st;
    if (sfc_safetensors_read(cl.model, &st)) FAIL();
    struct sfc_deeplab_config cfg;
    if (sfc_deeplab_config_from_meta(&cfg, &st, cl.model)) FAIL();
    struct sfc_deeplab net;
    if (sfc_deeplab_init(&net, &cfg, NULL, NULL)) FAIL();
    if (sfc_deeplab_load(&net, &st, "", cl.model)) FAIL();
    sfc_safetensors_release(&st);
    if (sfc_mkdirs(cl.seg, 0777)) FAIL();

    int64_t run = 0;
    if (db) {
        char *cfgjson = sfc_cli_config_json(&cli);
        run = sfc_db_run_begin(db, "sfc-segtrain predict", SFC_DB_NO_SEED,
                               cfgjson);
        free(cfgjson);
        if (run < 0) FAIL();
    }
    int C = cfg.nclass;
    long mine = 0, done = 0;
    for (long i = 0; i < ids.n; i++) mine += sfc_shard_mine(&cl.shard, i);
    struct sfc_progress prog;
    sfc_progress_start(&prog, "segment", mine, cl.quiet);
    for (long i = 0; i < ids.n; i++) {
        if (!sfc_shard_mine(&cl.shard, i)) continue;
        char *out = sfc_xasprintf("%s/%s.png", cl.seg, ids.ids[i]);
        if (sfc_file_exists(out)) goto next;
        struct sfc_tensor img;
        if (sfc_image_load(ids.paths[i], &img)) RUN_FAIL();
        int H = (int)img.shape[0], W = (int)img.shape[1];
        size_t hw = (size_t)H * W;
        float *p = sfc_xmalloc(sizeof(float) * C * hw);
        if (sfc_deeplab_predict(&net, p, img.data, H, W, nmsc, msc,
                                cl.pflip))
            RUN_FAIL();
        struct sfc_tensor lab;
        if (sfc_tensor_init(&lab, SFC_U8, 2, (int64_t[]){H, W})) RUN_FAIL();
        uint8_t *l = lab.data;
        if (cl.crf) {
            softmax_chw(p, C, hw);
            float *U = sfc_xmalloc(sizeof(float) * C * hw);
            float *Q = sfc_xmalloc(sizeof(float) * C * hw);
            sfc_crf_unary_from_prob(p, (int64_t)hw, C, 1e-5f, U);
            struct sfc_crf *crf =
                sfc_crf_new(img.data, H, W, &cp, SFC_CRF_LATTICE);
            if (!crf) RUN_FAIL();
            sfc_crf_inference(crf, U, C, cp.iters, Q);
            sfc_crf_argmax(Q, (int64_t)hw, C, l);
            sfc_crf_free(crf);
            free(U);
            free(Q);
        } else {
            for (size_t j = 0; j < hw; j++) {
                int best = 0;
                for (int c = 1; c < C; c++)
                    if (p[c * hw + j] > p[best * hw + j]) best = c;
                l[j] = (uint8_t)best;
            }
        }
        if (sfc_label_save(out, &lab)) RUN_FAIL();
        sfc_tensor_release(&lab);
        sfc_tensor_release(&img);
        free(p);
    next:
        free(out);
        sfc_progress_update(&prog, ++done);
    }
    sfc_progress_end(&prog);
    if (db && sfc_db_run_end(db, run, SFC_RUN_OK)) FAIL();
    sfc_trainer_ids_release(&ids);
    sfc_deeplab_release(&net);
    sfc_db_close(db);
    return sfc_fshut(stdout, "<stdout>");
}

int main(int argc, char **argv)
{
    sfc_proginit(argv[0]);
    if (argc > 1 && !strcmp(argv[1], "train"))
        return cmd_train(argc - 1, argv + 1);
    if (argc > 1 && !strcmp(argv[1], "predict"))
        return cmd_predict(argc - 1, argv + 1);
    struct sfc_cli cli = {
        usage_top,
        "The segmentation stage: 'train' fits DeepLab-v2 on label maps "
        "(pseudo labels), 'predict' segments images with it. "
        "'sfc-segtrain train --help' and 'sfc-segtrain predict --help' list "
        "their options.",
        opts_top};
    int npos = sfc_cli_parse(&cli, argc, argv);
    if (npos == 0) sfc_cli_die("missing subcommand (train or predict)");
    sfc_cli_die("unknown subcommand '%s' (train or predict)", argv[0]);
}
