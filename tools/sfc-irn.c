/* SPDX-License-Identifier: MIT */
/* sfc-irn: IRN's inter-pixel relation stage (sfc-reference.md §6, §7).
 *   train: the edge branch on a frozen ResNet from IR-label PNGs;
 *   infer: edge maps, then random-walk pseudo labels from CAM files. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "camfile.h"
#include "db.h"
#include "dist.h"
#include "ids.h"
#include "img.h"
#include "irnaug.h"
#include "irnnet.h"
#include "npy.h"
#include "optim.h"
#include "pblock.h"
#include "progress.h"
#include "pseudo.h"
#include "resnet.h"
#include "safetensors.h"
#include "sfc.h"
#include "trainer.h"
#include "voc.h"

#define FAIL() sfc_die_errmsg()
/* after the run began: mark it failed, then die (db may be NULL) */
#define RUN_FAIL() sfc_db_run_die(db, run)
#define BACKBONE_PREFIX "resnet50." /* IRN's key prefix of the backbone */

static const char *const usage_top[] = {
    "sfc-irn train [options] --images DIR --labels DIR [ID...]",
    "sfc-irn infer [options] --images DIR --cams DIR [ID...]",
    "sfc-irn train|infer --help", NULL};
static const char *const usage_train[] = {
    "sfc-irn train [options] --images DIR --labels DIR [ID...]", NULL};
static const char *const usage_infer[] = {
    "sfc-irn infer [options] --images DIR --cams DIR [ID...]", NULL};
static const char *const rule_choices[] = {"sfc", "irn", NULL};
static const char *const prec_choices[] = {"f32", "f64", NULL};

static struct {
    /* shared */
    const char *images, *ext, *list, *split, *db;
    int quiet;
    /* train */
    const char *labels, *out, *ckpt, *weights, *blocks;
    int width, batch, micro, epochs, crop, nclass, ckpt_every, flip;
    int stop_after;
    int radius;
    double lr, wd, momentum, power, scale_lo, scale_hi;
    long seed;
    int seed_i;
    /* infer */
    const char *irn, *cams, *pseudo, *rule, *w_map, *walk_prec;
    int canvas, exp_times, infer_radius;
    double w_p, pw, bg, beta;
    struct sfc_shard shard;
} cl = {
    .ext = ".jpg",
    .out = "irn.safetensors",
    .w_map = "cam_w",
    .ckpt = "",
    .blocks = "3,4,6,3",
    .width = 64,
    .batch = 32,
    .micro = 4,
    .epochs = 3,
    .crop = 512,
    .nclass = 21,
    .ckpt_every = 10,
    .flip = 1,
    .radius = SFC_IRN_TRAIN_RADIUS,
    .lr = 0.1,
    .wd = 1e-4,
    .momentum = 1e-4,
    .power = 0.9,
    .scale_lo = 0.5,
    .scale_hi = 1.0,
    .irn = "irn.safetensors",
    .pseudo = "pseudo",
    .rule = "sfc",
    .walk_prec = "f32",
    .canvas = 512,
    .exp_times = 8,
    .infer_radius = 5,
    .w_p = 0.3,
    .pw = 1.3,
    .bg = 0.25,
    .beta = 10,
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
        SFC_OPT_FLAG_("quiet", 'q', &cl.quiet, "no progress on stderr")

static const struct sfc_opt opts_top[] = {SFC_OPT_END_};

static const struct sfc_opt opts_train[] = {
    OPT_IDS,
    SFC_OPT_STRING_("labels", &cl.labels, "DIR",
                    "IR labels <id>.png (0 bg, 1..C, 255 unsure; required)"),
    SFC_OPT_STRING_("out", &cl.out, "FILE",
                    "trained edge head + backbone (safetensors); an existing "
                    "file means done"),
    SFC_OPT_STRING_("checkpoint", &cl.ckpt, "FILE",
                    "resume state, removed at the end (\"\": OUT.ckpt)"),
    SFC_OPT_STRING_("weights", &cl.weights, "FILE",
                    "backbone weights, torchvision keys (none: random init)"),
    SFC_OPT_STRING_("blocks", &cl.blocks, "A,B,C,D",
                    "bottlenecks per ResNet layer (3,4,23,3 = ResNet-101)"),
    SFC_OPT_INT_("width", &cl.width, "N", 1, 64,
                 "ResNet width (64; smaller only for tests)"),
    SFC_OPT_INT_("batch", &cl.batch, "N", 1, 4096, "images per step"),
    SFC_OPT_INT_("micro", &cl.micro, "N", 1, 4096,
                 "images per forward (divides --batch; same result)"),
    SFC_OPT_INT_("epochs", &cl.epochs, "N", 1, 100000, "epochs (drop_last)"),
    SFC_OPT_INT_("crop", &cl.crop, "PX", 32, 4096,
                 "training crop side (multiple of 4)"),
    SFC_OPT_DOUBLE_("scale-lo", &cl.scale_lo, "X", 0.01, 100,
                    "rescale factor lower bound"),
    SFC_OPT_DOUBLE_("scale-hi", &cl.scale_hi, "X", 0.01, 100,
                    "rescale factor upper bound (SFC 1.0, IRN 1.5)"),
    SFC_OPT_INT_("flip", &cl.flip, "0|1", 0, 1,
                 "random horizontal flip (0 = off)"),
    SFC_OPT_INT_("classes", &cl.nclass, "N", 1, 255,
                 "label values below N are classes, the rest ignored"),
    SFC_OPT_INT_("radius", &cl.radius, "R", 2, 64, "path radius of the loss"),
    SFC_OPT_DOUBLE_("lr", &cl.lr, "X", 0, 100, "initial learning rate"),
    SFC_OPT_DOUBLE_("weight-decay", &cl.wd, "X", 0, 1, "weight decay"),
    SFC_OPT_DOUBLE_("momentum", &cl.momentum, "X", 0, 1,
                    "SGD momentum (the reference's effective 1e-4)"),
    SFC_OPT_DOUBLE_("power", &cl.power, "X", 0, 10, "poly lr power"),
    SFC_OPT_INT_("checkpoint-every", &cl.ckpt_every, "N", 1, 1000000,
                 "write the resume state every N steps"),
    SFC_OPT_INT_("stop-after", &cl.stop_after, "N", 0, 2147483647,
                 "stop after N steps, leaving the checkpoint (0 = finish)"),
    SFC_OPT_INT_("seed", &cl.seed_i, "S", 0, 2147483647, "random seed"),
    SFC_OPT_END_};

static const char *const w_map_choices[] = {"cam_w", "cam_c", NULL};

static const struct sfc_opt opts_infer[] = {
    OPT_IDS,
    SFC_OPT_STRING_("irn", &cl.irn, "FILE", "trained model (sfc-irn train)"),
    SFC_OPT_STRING_("cams", &cl.cams, "DIR",
                    "CAM files <id>.npz (keys, cam_w, cam_p; required)"),
    SFC_OPT_STRING_("out", &cl.pseudo, "DIR", "pseudo labels <id>.png"),
    SFC_OPT_CHOICE_("rule", &cl.rule, rule_choices,
                    "random walk: SFC's two passes or IRN's single pass"),
    SFC_OPT_INT_("canvas", &cl.canvas, "PX", 32, 4096,
                 "images are zero-padded to PX x PX (reference 512)"),
    SFC_OPT_DOUBLE_("w-p", &cl.w_p, "X", 0, 100, "weight of cam_p in S"),
    SFC_OPT_CHOICE_("w-map", &cl.w_map, w_map_choices,
                    "the map S starts from: M_W, or cam_c, the classifier "
                    "CAM before PCM (a plain CAM baseline's)"),
    SFC_OPT_DOUBLE_("power", &cl.pw, "X", 0, 100, "exponent of S"),
    SFC_OPT_DOUBLE_("bg", &cl.bg, "X", 0, 100, "background score"),
    SFC_OPT_DOUBLE_("beta", &cl.beta, "X", 0, 1000, "affinity exponent"),
    SFC_OPT_INT_("exp-times", &cl.exp_times, "N", 0, 30,
                 "2^N random walk steps"),
    SFC_OPT_INT_("radius", &cl.infer_radius, "R", 2, 64,
                 "path radius of the walk"),
    SFC_OPT_CHOICE_("walk-precision", &cl.walk_prec, prec_choices,
                    "the walk's state: float32 (as IRN's dense walk) or "
                    "float64 (twice the time)"),
    SFC_OPT_SHARD_(&cl.shard),
    SFC_OPT_END_};

/* ---- ids and paths ------------------------------------------------------ */

static struct sfc_db *open_db(void)
{
    if (!cl.db) return NULL;
    struct sfc_db *db = sfc_db_open(cl.db, SFC_DB_CREATE);
    if (!db) FAIL();
    return db;
}

/* ---- model ---------------------------------------------------------------- */

static void backbone_channels(const struct sfc_resnet_config *cfg,
                              int in_c[SFC_IRN_BRANCHES])
{
    in_c[0] = cfg->width;
    for (int i = 1; i < SFC_IRN_BRANCHES; i++)
        in_c[i] = 4 * (cfg->width << (i - 1));
}

static void backbone_config(struct sfc_resnet_config *cfg,
                            const int blocks[4], int width)
{
    sfc_resnet_config_default(cfg, 50);
    memcpy(cfg->blocks, blocks, sizeof cfg->blocks);
    cfg->width = width;
    cfg->frozen = SFC_RESNET_STAGES; /* fully frozen (§6.3) */
}

/* Run backbone + head on x (N, 3, S, S); logits in hd->logit. */
static void net_forward(struct sfc_resnet *net, struct sfc_irnhead *hd,
                        const float *x, int N, int S, int train)
{
    sfc_resnet_plan(net, N, S, S, 0);
    sfc_resnet_forward(net, x);
    int fh[SFC_IRN_BRANCHES], fw[SFC_IRN_BRANCHES];
    const float *f[SFC_IRN_BRANCHES];
    for (int i = 0; i < SFC_IRN_BRANCHES; i++) {
        fh[i] = net->feat_h[i];
        fw[i] = net->feat_w[i];
        f[i] = net->feat[i];
    }
    if (sfc_irnhead_plan(hd, N, fh, fw, train)) FAIL();
    sfc_irnhead_forward(hd, f);
}

/* The head's layout as a parameter block (for checkpoints). */
static void head_pblock(const struct sfc_irnhead *hd, struct sfc_pblock *pb)
{
    sfc_pblock_init(pb);
    for (int k = 0; k < SFC_IRN_NENTRIES; k++) {
        const struct sfc_irnhead_entry *e = &hd->ent[k];
        size_t off = sfc_pblock_add(pb, e->name, 0, e->ndim, e->shape);
        SFC_ASSERT(off == e->off);
    }
    SFC_ASSERT(pb->size == hd->size);
}

static int save_model(const char *path, const struct sfc_irnhead *hd,
                      const struct sfc_resnet *net)
{
    int nb = net->pb.n, n = SFC_IRN_NENTRIES + nb;
    char **names = sfc_xmalloc(sizeof(char *) * n);
    struct sfc_tensor *views = sfc_xcalloc(n, sizeof *views);
    const struct sfc_tensor **tp = sfc_xmalloc(sizeof(*tp) * n);
    for (int k = 0; k < SFC_IRN_NENTRIES; k++) {
        const struct sfc_irnhead_entry *e = &hd->ent[k];
        names[k] = sfc_xstrdup(e->name);
        sfc_tensor_view(&views[k], hd->params + e->off, SFC_F32, e->ndim,
                        e->shape);
    }
    sfc_pblock_views(&net->pb, net->params, BACKBONE_PREFIX,
                     names + SFC_IRN_NENTRIES, views + SFC_IRN_NENTRIES);
    for (int k = 0; k < n; k++) tp[k] = &views[k];
    char blocks[64], width[16];
    const int *b = net->cfg.blocks;
    snprintf(blocks, sizeof blocks, "%d,%d,%d,%d", b[0], b[1], b[2], b[3]);
    snprintf(width, sizeof width, "%d", net->cfg.width);
    const char *mk[] = {"sfc.model", "sfc.blocks", "sfc.width"};
    const char *mv[] = {"irn-edge", blocks, width};
    int rc = sfc_safetensors_write(path, n, (const char *const *)names, tp, 3,
                                   mk, mv);
    for (int k = 0; k < n; k++) free(names[k]);
    free(names);
    free(views);
    free(tp);
    return rc;
}

static int load_head(struct sfc_irnhead *hd, const struct sfc_safetensors *st,
                     const char *path)
{
    for (int k = 0; k < SFC_IRN_NENTRIES; k++) {
        const struct sfc_irnhead_entry *e = &hd->ent[k];
        const struct sfc_tensor *t = sfc_safetensors_get(st, e->name);
        if (!t) return sfc_error(path, "missing tensor '%s'", e->name);
        if (t->dtype != SFC_F32 || (size_t)sfc_tensor_numel(t) != e->numel ||
            t->ndim != e->ndim)
            return sfc_error(path, "tensor '%s' has the wrong shape",
                             e->name);
        memcpy(hd->params + e->off, t->data, sizeof(float) * e->numel);
    }
    return 0;
}

/* ---- train ----------------------------------------------------------------- */

/* What the weights depend on, stored in the checkpoint so that a resume
 * with other options or other images is refused: every option that
 * changes the arithmetic, and a hash of the ids in order. */
static char *train_fingerprint(const struct sfc_trainer_ids *ids)
{
    uint64_t hsh = sfc_trainer_ids_hash(ids);
    return sfc_xasprintf(
        "ids=%ld:%016llx weights=%s blocks=%s width=%d batch=%d micro=%d "
        "epochs=%d crop=%d scale=%.17g:%.17g flip=%d classes=%d radius=%d "
        "lr=%.17g wd=%.17g momentum=%.17g power=%.17g seed=%d",
        ids->n, (unsigned long long)hsh, cl.weights ? cl.weights : "(random)",
        cl.blocks, cl.width, cl.batch, cl.micro, cl.epochs, cl.crop,
        cl.scale_lo, cl.scale_hi, cl.flip, cl.nclass, cl.radius, cl.lr, cl.wd,
        cl.momentum, cl.power, cl.seed_i);
}

static int cmd_train(int argc, char **argv)
{
    struct sfc_cli cli = {
        usage_train,
        "Trains IRN's edge branch (sfc-reference 6) on a frozen ResNet: each "
        "step takes --batch images (epoch order shuffled by the seed), "
        "rescales, flips and crops them with their IR labels, and minimises "
        "(Lpos + Lneg)/2 on affinities from the edge map by SGD with the "
        "poly schedule. Writes --out (head keys fc_edge*, backbone keys "
        "resnet50.*) atomically; a killed run resumes from --checkpoint to "
        "the same weights. Under mpirun -np R (or srun) each rank takes a "
        "contiguous part of every step's batch and the gradients are summed "
        "over ranks: the same weights up to float rounding, rank 0 alone "
        "writes files and db rows, and a checkpoint resumes with any number "
        "of ranks. Image ids: the arguments, else --list FILE, else "
        "--split NAME (with --db), else standard input.",
        opts_train};
    int npos = sfc_cli_parse(&cli, argc, argv);
    cl.seed = cl.seed_i;
    if (!cl.labels) sfc_cli_die("--labels DIR is required");
    if (!cl.images && !cl.split) sfc_cli_die("--images DIR is required");
    if (cl.split && !cl.db) sfc_cli_die("--split needs --db");
    if (cl.crop % 4) sfc_cli_die("--crop %d is not a multiple of 4", cl.crop);
    if (cl.batch % cl.micro)
        sfc_cli_die("--micro %d does not divide --batch %d", cl.micro,
                    cl.batch);
    if (cl.scale_lo > cl.scale_hi)
        sfc_cli_die("--scale-lo %g exceeds --scale-hi %g", cl.scale_lo,
                    cl.scale_hi);
    int blocks[4];
    if (sfc_trainer_parse_blocks("--blocks", cl.blocks, blocks))
        sfc_cli_die("%s", sfc_errmsg());
    char *ckpt = *cl.ckpt ? sfc_xstrdup(cl.ckpt)
                          : sfc_xasprintf("%s.ckpt", cl.out);

    /* data-parallel: rank 0 reads and writes the files and the db */
    int done = sfc_trainer_start("sfc-irn", cl.out, &cl.quiet);
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

    /* check every image and label before anything is written */
    char **lab_paths = sfc_xmalloc(sizeof(char *) * ids.n);
    for (long i = 0; i < ids.n; i++) {
        int w, h;
        lab_paths[i] = sfc_xasprintf("%s/%s.png", cl.labels, ids.ids[i]);
        if (!root) continue;
        if (sfc_image_size(ids.paths[i], &w, &h)) FAIL();
        struct sfc_tensor L;
        if (sfc_label_load(lab_paths[i], &L)) FAIL();
        if (L.shape[0] != h || L.shape[1] != w)
            sfc_die("label '%s' is %lldx%lld, its image is %dx%d",
                    lab_paths[i], (long long)L.shape[1],
                    (long long)L.shape[0], w, h);
        sfc_tensor_release(&L);
    }
    long spe = ids.n / cl.batch, T = spe * cl.epochs;
    if (spe == 0)
        sfc_die("%ld images, fewer than one batch of %d", ids.n, cl.batch);

    /* model */
    struct sfc_resnet_config cfg;
    backbone_config(&cfg, blocks, cl.width);
    struct sfc_resnet net;
    if (sfc_resnet_init(&net, &cfg, NULL, NULL)) FAIL();
    struct sfc_rng rng;
    sfc_rng_seed(&rng, sfc_rng_mix((uint64_t)cl.seed, 0, 0));
    if (cl.weights) {
        if (root && sfc_resnet_load_file(&net, cl.weights)) FAIL();
    } else {
        sfc_resnet_init_random(&net, &rng);
    }
    int in_c[SFC_IRN_BRANCHES];
    backbone_channels(&cfg, in_c);
    struct sfc_irnhead hd;
    if (sfc_irnhead_init(&hd, in_c, NULL, NULL, 0)) FAIL();
    sfc_irnhead_init_random(&hd, &rng);
    struct sfc_pblock pb;
    head_pblock(&hd, &pb);
    struct sfc_sgd opt;
    if (sfc_sgd_init(&opt, hd.size, cl.momentum, cl.power, T, 0)) FAIL();
    struct sfc_range all = {0, hd.size};
    sfc_sgd_add_group(&opt, cl.lr, cl.wd, 1, &all);
    char *fp = train_fingerprint(&ids);
    const char *fp_key = "sfc-irn.train";
    if (root && sfc_file_exists(ckpt)) {
        struct sfc_safetensors cst;
        if (sfc_safetensors_read(ckpt, &cst)) FAIL();
        const char *got = sfc_safetensors_meta(&cst, fp_key);
        if (!got || strcmp(got, fp))
            sfc_die("checkpoint '%s' belongs to another run (options or "
                    "images differ); remove it to start afresh", ckpt);
        sfc_safetensors_release(&cst);
        if (sfc_checkpoint_load(ckpt, &pb, hd.params, &opt)) FAIL();
        if (opt.step > T)
            sfc_die("checkpoint '%s' is at step %ld of %ld", ckpt, opt.step,
                    T);
        if (!cl.quiet)
            fprintf(stderr, "sfc-irn: resuming at step %ld of %ld\n",
                    opt.step, T);
    }
    /* every rank starts from rank 0's weights and optimiser state */
    sfc_dist_bcast(net.params, sizeof(float) * net.pb.size, 0);
    sfc_dist_bcast(hd.params, sizeof(float) * hd.size, 0);
    sfc_sgd_bcast(&opt);
    /* this rank's images of each step: [blo, bhi) of the batch, in
     * forwards of up to mb images */
    int blo, bhi;
    sfc_batch_split(cl.batch, nrank, rank, &blo, &bhi);
    int nb = bhi - blo, mb = SFC_MIN(cl.micro, SFC_MAX(nb, 1));
    struct sfc_pathidx pidx;
    if (sfc_pathidx_init(&pidx, cl.radius)) FAIL();
    int g = sfc_irn_grid_side(cl.crop);
    if (sfc_pathidx_nsrc(&pidx, g, g) <= 0)
        sfc_die("--crop %d is too small for --radius %d", cl.crop, cl.radius);

    int64_t run = 0;
    if (db) {
        char *cfgjson = sfc_cli_config_json(&cli);
        run = sfc_db_run_begin(db, "sfc-irn train", cl.seed, cfgjson);
        free(cfgjson);
        if (run < 0) FAIL();
        /* a stop by SIGTERM/SIGINT/SIGHUP (mpirun ending the job after
         * a rank failed, scancel, Ctrl-C) marks the row failed */
        if (sfc_trainer_guard_run(cl.db, run)) RUN_FAIL();
    }

    size_t S2 = (size_t)cl.crop * cl.crop, gg = (size_t)g * g;
    float *x = sfc_xmalloc(sizeof(float) * 3 * S2 * SFC_MAX(nb, 1));
    uint8_t *grid = sfc_xmalloc(gg * SFC_MAX(nb, 1));
    float *dlogit = sfc_xmalloc(sizeof(float) * gg * mb);
    float *scratch =
        sfc_xmalloc(sizeof(float) * sfc_irn_loss_scratch(&pidx, g, g));
    int *perm = sfc_xmalloc(sizeof(int) * ids.n);
    long perm_epoch = -1;
    struct sfc_irn_aug aug = {cl.scale_lo, cl.scale_hi, cl.crop, cl.flip};
    struct sfc_progress prog;
    sfc_progress_start(&prog, "irn step", T, cl.quiet);
    sfc_progress_update(&prog, opt.step);
    long t_end = T, t_begin = opt.step;
    if (cl.stop_after && opt.step + cl.stop_after < T)
        t_end = opt.step + cl.stop_after;
    double loop_t0 = sfc_now();
    for (long t = opt.step; t < t_end; t++) {
        double t0 = sfc_now();
        long epoch = t / spe;
        if (epoch != perm_epoch) {
            struct sfc_rng er;
            sfc_rng_seed(&er,
                         sfc_rng_mix((uint64_t)cl.seed, 1, (uint64_t)epoch));
            for (long i = 0; i < ids.n; i++) perm[i] = (int)i;
            sfc_rng_shuffle_int(&er, perm, (int)ids.n);
            perm_epoch = epoch;
        }
        for (int j = 0; j < nb; j++) {
            long k = perm[(t % spe) * cl.batch + blo + j];
            struct sfc_tensor img, L;
            if (sfc_image_load(ids.paths[k], &img)) RUN_FAIL();
            if (sfc_label_load(lab_paths[k], &L)) RUN_FAIL();
            struct sfc_rng ar;
            sfc_rng_seed(&ar, sfc_rng_mix((uint64_t)cl.seed, 2,
                                       (uint64_t)t * cl.batch + blo + j));
            sfc_irn_augment(x + j * 3 * S2, grid + j * gg, img.data, L.data,
                            (int)img.shape[0], (int)img.shape[1], &aug, &ar);
            sfc_tensor_release(&img);
            sfc_tensor_release(&L);
        }
        /* the loss's normalisers count the whole batch: summed over
         * ranks (exact integers) */
        double sums[3] = {0, 0, 0};
        if (nb) sfc_irn_label_sums(&pidx, grid, nb, g, g, cl.nclass, sums);
        sfc_dist_sum_double(sums, 3);
        double loss = 0, lpos = 0, lneg = 0;
        sfc_irnhead_zero_grad(&hd);
        for (int m0 = 0; m0 < nb; m0 += mb) {
            int m = SFC_MIN(mb, nb - m0);
            net_forward(&net, &hd, x + m0 * 3 * S2, m, cl.crop, 1);
            SFC_ASSERT(hd.oh == g && hd.ow == g);
            loss += sfc_irn_affinity_loss(&pidx, dlogit, hd.logit,
                                          grid + m0 * gg, m, g, g,
                                          cl.nclass, sums, &lpos, &lneg,
                                          scratch);
            sfc_irnhead_backward(&hd, dlogit);
        }
        /* ONE sum over ranks of the gradient block (the head's) */
        sfc_dist_sum_float(hd.grads, hd.size);
        double parts[3] = {loss, lpos, lneg};
        sfc_dist_sum_double(parts, 3);
        loss = parts[0];
        lpos = parts[1];
        lneg = parts[2];
        double gnorm = sfc_sgd_grad_norm(&opt, hd.grads);
        sfc_sgd_step(&opt, hd.params, hd.grads);
        double secs = sfc_now() - t0;
        if (!isfinite(loss)) {
            sfc_error(NULL, "loss is %g at step %ld", loss, t);
            RUN_FAIL();
        }
        if (db && sfc_db_execv(db,
                               "INSERT INTO train_log (run, step, epoch, loss,"
                               " loss_pos, loss_neg, grad_norm, lr,"
                               " images_per_s, seconds) VALUES"
                               " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                               "IIIddddddd", run, (int64_t)t, (int64_t)epoch,
                               loss, lpos, lneg, gnorm, opt.groups[0].lr,
                               cl.batch / secs, secs))
            RUN_FAIL();
        if (root && ((t + 1) % cl.ckpt_every == 0 || t + 1 == t_end) &&
            t + 1 < T && sfc_checkpoint_save_meta(ckpt, &pb, hd.params, &opt, 1, &fp_key,
                                     (const char *const *)&fp))
            RUN_FAIL();
        sfc_progress_update(&prog, t + 1);
    }
    sfc_progress_end(&prog);
    if (!cl.quiet) sfc_dist_report(t_end - t_begin, sfc_now() - loop_t0);
    if (root && t_end == T) {
        if (save_model(cl.out, &hd, &net)) RUN_FAIL();
        if (unlink(ckpt) && sfc_file_exists(ckpt))
            sfc_warn("cannot remove '%s'", ckpt);
    }
    if (db && sfc_db_run_end(db, run, SFC_RUN_OK)) RUN_FAIL();
    sfc_trainer_unguard();

    free(x);
    free(grid);
    free(dlogit);
    free(scratch);
    free(perm);
    for (long i = 0; i < ids.n; i++) free(lab_paths[i]);
    free(lab_paths);
    sfc_trainer_ids_release(&ids);
    sfc_pathidx_release(&pidx);
    sfc_sgd_release(&opt);
    sfc_pblock_release(&pb);
    sfc_irnhead_release(&hd);
    sfc_resnet_release(&net);
    sfc_db_close(db);
    free(ckpt);
    free(fp);
    sfc_dist_finalize();
    return sfc_fshut(stdout, "<stdout>");
}

/* ---- infer ------------------------------------------------------------------ */

static int cam_get(const struct sfc_npz *z, const char *name,
                   enum sfc_dtype dt, const struct sfc_tensor **out)
{
    const struct sfc_tensor *t = sfc_npz_get(z, name);
    if (!t) return -1;
    if (t->dtype != dt)
        return sfc_error(z->path, "'%s' is %s, expected %s", name,
                         sfc_dtype_name(t->dtype), sfc_dtype_name(dt));
    *out = t;
    return 0;
}

static int cmd_infer(int argc, char **argv)
{
    struct sfc_cli cli = {
        usage_infer,
        "Pseudo labels by the random walk (sfc-reference 7): the edge map of "
        "each image and its flip from the trained model (--irn), then SFC's "
        "two-pass walk (or IRN's single pass) over S = cam_w + w_p cam_p. "
        "Writes --out/<id>.png (VOC palette); ids whose output exists are "
        "skipped, so a killed run resumes. Image ids: the arguments, else "
        "--list FILE, else --split NAME (with --db), else standard input.",
        opts_infer};
    int npos = sfc_cli_parse(&cli, argc, argv);
    if (!cl.cams) sfc_cli_die("--cams DIR is required");
    if (!cl.images && !cl.split) sfc_cli_die("--images DIR is required");
    if (cl.split && !cl.db) sfc_cli_die("--split needs --db");
    struct sfc_db *db = open_db();
    struct sfc_trainer_ids ids;
    if (sfc_trainer_ids_get(&ids, npos, argv, cl.list, db, cl.split,
                            cl.images, cl.ext))
        FAIL();

    struct sfc_safetensors st;
    if (sfc_safetensors_read(cl.irn, &st)) FAIL();
    const char *mb = sfc_safetensors_meta(&st, "sfc.blocks");
    const char *mw = sfc_safetensors_meta(&st, "sfc.width");
    long width = 64;
    int blocks[4] = {3, 4, 6, 3};
    if (mb && sfc_trainer_parse_blocks(cl.irn, mb, blocks)) FAIL();
    if (mw && sfc_parse_long(cl.irn, mw, 1, 4096, &width)) FAIL();
    struct sfc_resnet_config cfg;
    backbone_config(&cfg, blocks, (int)width);
    struct sfc_resnet net;
    if (sfc_resnet_init(&net, &cfg, NULL, NULL)) FAIL();
    if (sfc_resnet_load(&net, &st, BACKBONE_PREFIX, cl.irn)) FAIL();
    int in_c[SFC_IRN_BRANCHES];
    backbone_channels(&cfg, in_c);
    struct sfc_irnhead hd;
    if (sfc_irnhead_init(&hd, in_c, NULL, NULL, 1)) FAIL();
    if (load_head(&hd, &st, cl.irn)) FAIL();
    sfc_safetensors_release(&st);
    if (sfc_mkdirs(cl.pseudo, 0777)) FAIL();

    struct sfc_pseudo_params pp;
    sfc_pseudo_params_default(&pp);
    pp.w_p = (float)cl.w_p;
    pp.power = (float)cl.pw;
    pp.bg = (float)cl.bg;
    pp.beta = (float)cl.beta;
    pp.exp_times = cl.exp_times;
    pp.radius = cl.infer_radius;
    pp.two_pass = !strcmp(cl.rule, "sfc");
    pp.walk_double = !strcmp(cl.walk_prec, "f64");

    int64_t run = 0;
    if (db) {
        char *cfgjson = sfc_cli_config_json(&cli);
        run = sfc_db_run_begin(db, "sfc-irn infer", SFC_DB_NO_SEED, cfgjson);
        free(cfgjson);
        if (run < 0) FAIL();
    }
    int S = cl.canvas;
    float *x = sfc_xmalloc(sizeof(float) * 6 * S * S);
    long mine = 0, done = 0;
    for (long i = 0; i < ids.n; i++) mine += sfc_shard_mine(&cl.shard, i);
    struct sfc_progress prog;
    sfc_progress_start(&prog, "pseudo label", mine, cl.quiet);
    for (long i = 0; i < ids.n; i++) {
        if (!sfc_shard_mine(&cl.shard, i)) continue;
        char *out = sfc_xasprintf("%s/%s.png", cl.pseudo, ids.ids[i]);
        char *camp = sfc_xasprintf("%s/%s.npz", cl.cams, ids.ids[i]);
        if (sfc_file_exists(out)) goto next;
        struct sfc_tensor img;
        if (sfc_image_load(ids.paths[i], &img)) RUN_FAIL();
        int H = (int)img.shape[0], W = (int)img.shape[1];
        if (H > S || W > S) {
            sfc_error(ids.paths[i], "image is %dx%d, larger than --canvas %d",
                      W, H, S);
            RUN_FAIL();
        }
        struct sfc_npz z;
        const struct sfc_tensor *keys, *cw, *cp;
        if (sfc_camfile_read(camp, &z)) RUN_FAIL();
        if (cam_get(&z, "keys", SFC_I64, &keys) ||
            cam_get(&z, cl.w_map, SFC_F32, &cw) ||
            cam_get(&z, "cam_p", SFC_F32, &cp))
            RUN_FAIL();
        int K = (int)keys->shape[0];
        if (keys->ndim != 1 || K < 1 || sfc_check_shape(camp, cw, K, H, W) ||
            sfc_check_shape(camp, cp, K, H, W))
            RUN_FAIL();
        sfc_irn_infer_input(x, img.data, H, W, S);
        net_forward(&net, &hd, x, 2, S, 0);
        int eh = (H + 3) / 4, ew = (W + 3) / 4;
        float *edge = sfc_xmalloc(sizeof(float) * eh * ew);
        sfc_irn_edge_merge(edge, hd.logit, hd.oh, hd.ow, eh, ew);
        struct sfc_tensor lab;
        if (sfc_tensor_init(&lab, SFC_U8, 2, (int64_t[]){H, W})) RUN_FAIL();
        if (sfc_pseudo_label(lab.data, cw->data, cp->data, keys->data, K, H,
                             W, edge, eh, ew, &pp))
            RUN_FAIL();
        if (sfc_label_save(out, &lab)) RUN_FAIL();
        sfc_tensor_release(&lab);
        free(edge);
        sfc_npz_release(&z);
        sfc_tensor_release(&img);
    next:
        free(out);
        free(camp);
        sfc_progress_update(&prog, ++done);
    }
    sfc_progress_end(&prog);
    if (db && sfc_db_run_end(db, run, SFC_RUN_OK)) RUN_FAIL();
    free(x);
    sfc_trainer_ids_release(&ids);
    sfc_irnhead_release(&hd);
    sfc_resnet_release(&net);
    sfc_db_close(db);
    return sfc_fshut(stdout, "<stdout>");
}

int main(int argc, char **argv)
{
    sfc_proginit(argv[0]);
    if (argc > 1 && !strcmp(argv[1], "train"))
        return cmd_train(argc - 1, argv + 1);
    if (argc > 1 && !strcmp(argv[1], "infer"))
        return cmd_infer(argc - 1, argv + 1);
    struct sfc_cli cli = {
        usage_top,
        "IRN's inter-pixel relation stage: 'train' fits the edge branch on "
        "IR labels, 'infer' turns CAMs into pseudo labels by the random walk "
        "over its edge maps. 'sfc-irn train --help' and 'sfc-irn infer "
        "--help' list their options.",
        opts_top};
    int npos = sfc_cli_parse(&cli, argc, argv);
    if (npos == 0) sfc_cli_die("missing subcommand (train or infer)");
    sfc_cli_die("unknown subcommand '%s' (train or infer)", argv[0]);
}
