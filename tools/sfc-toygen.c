/* SPDX-License-Identifier: MIT */
/* sfc-toygen: write the generated long-tailed toy dataset (lib/toy.h) as a
 * VOC-layout folder: JPEGImages/<id>.jpg, SegmentationClass/<id>.png,
 * ImageSets/Segmentation/{train,val}.txt and classes.txt. Prints the class
 * table (expected and actual image counts) on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img.h"
#include "sfc.h"
#include "toy.h"

static const char *const usage_lines[] = {
    "sfc-toygen [options] [--out DIR]",
    NULL,
};

struct cmdline {
    const char *out;
    int size, train, val, classes, seed, quality, quiet;
    double imbalance, mark_radius, max_overlap;
};

/* Images are numbered over both splits: train first, then val. */
static void image_id(char *buf, size_t n, long k)
{
    snprintf(buf, n, "%06ld", k + 1);
}

static int write_text(const char *path, const char *text)
{
    return sfc_atomic_write(path, text, strlen(text));
}

/* Append to a growing heap string. */
static void append(char **buf, size_t *len, const char *s)
{
    size_t n = strlen(s);
    *buf = sfc_xrealloc(*buf, *len + n + 1);
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

int main(int argc, char **argv)
{
    struct cmdline cl = {
        .out = "toy", .size = 96, .train = 3000, .val = 300,
        .classes = SFC_TOY_DEFAULT_CLASSES, .seed = 0, .quality = 90,
        .imbalance = 1.0, .mark_radius = 0.30, .max_overlap = 0.10,
    };
    const struct sfc_opt opts[] = {
        SFC_OPT_STRING_("out", &cl.out, "DIR", "output folder (VOC layout)"),
        SFC_OPT_INT_("size", &cl.size, "PX", 32, 1024, "image side in pixels"),
        SFC_OPT_INT_("train", &cl.train, "N", 1, 1000000, "training images"),
        SFC_OPT_INT_("val", &cl.val, "N", 1, 1000000,
                     "validation images (class-balanced)"),
        SFC_OPT_INT_("classes", &cl.classes, "C", 2, SFC_TOY_MAX_CLASSES,
                     "foreground classes, in ceil(C/3) groups"),
        SFC_OPT_DOUBLE_("imbalance", &cl.imbalance, "X", 0, 4,
                        "train class frequency is weight^X (0 = balanced)"),
        SFC_OPT_DOUBLE_("mark-radius", &cl.mark_radius, "R", 0.1, 0.6,
                        "mark radius as a fraction of the body half-length"),
        SFC_OPT_DOUBLE_("max-overlap", &cl.max_overlap, "F", 0, 0.5,
                        "max fraction of an object covered by another"),
        SFC_OPT_INT_("quality", &cl.quality, "Q", 1, 100, "JPEG quality"),
        SFC_OPT_INT_("seed", &cl.seed, "S", 0, 2147483647, "random seed"),
        SFC_OPT_FLAG_("quiet", 'q', &cl.quiet, "no progress on stderr"),
        SFC_OPT_END_,
    };
    const struct sfc_cli cli = {
        usage_lines,
        "Generate a long-tailed toy segmentation dataset: classes in groups "
        "that share a body\nand differ by a small mark, one head class per "
        "group, the rest rare. Same options\nand seed give the same bytes. "
        "The class table goes to stdout.",
        opts,
    };
    sfc_proginit(argv[0]);
    if (sfc_cli_parse(&cli, argc, argv) > 0)
        sfc_cli_die("unexpected argument '%s'", argv[0]);

    struct sfc_toy_config cfg;
    if (sfc_toy_config_default(&cfg, cl.classes)) sfc_die_errmsg();
    cfg.size = cl.size;
    cfg.imbalance = cl.imbalance;
    cfg.mark_radius = cl.mark_radius;
    cfg.max_overlap = cl.max_overlap;
    cfg.seed = (uint64_t)cl.seed;

    char *jdir = sfc_path_join(cl.out, "JPEGImages");
    char *sdir = sfc_path_join(cl.out, "SegmentationClass");
    char *ldir = sfc_path_join(cl.out, "ImageSets/Segmentation");
    if (sfc_mkdirs(jdir, 0777) || sfc_mkdirs(sdir, 0777) ||
        sfc_mkdirs(ldir, 0777))
        sfc_die_errmsg();

    long total = (long)cl.train + cl.val;
    int S = cl.size;
    /* per-image class sets, for the counts; first error by image order */
    int *ids = sfc_xcalloc((size_t)total * SFC_TOY_MAX_OBJECTS, sizeof *ids);
    int *nids = sfc_xcalloc((size_t)total, sizeof *nids);
    long first_bad = total;
    char errmsg[1200] = "";
    long done = 0;
    struct sfc_progress prog;
    sfc_progress_start(&prog, "images", total, cl.quiet);

#pragma omp parallel
    {
        uint8_t *rgb = sfc_xmalloc((size_t)S * S * 3);
        uint8_t *mask = sfc_xmalloc((size_t)S * S);
        struct sfc_tensor trgb, tmask;
        sfc_tensor_view(&trgb, rgb, SFC_U8, 3, (const int64_t[]){S, S, 3});
        sfc_tensor_view(&tmask, mask, SFC_U8, 2, (const int64_t[]){S, S});
#pragma omp for schedule(dynamic, 16)
        for (long k = 0; k < total; k++) {
            enum sfc_toy_split sp = k < cl.train ? SFC_TOY_TRAIN : SFC_TOY_VAL;
            long idx = k < cl.train ? k : k - cl.train;
            nids[k] = sfc_toy_render(&cfg, sp, idx, rgb, mask,
                                     ids + k * SFC_TOY_MAX_OBJECTS);
            char id[32], name[48];
            image_id(id, sizeof id, k);
            snprintf(name, sizeof name, "%s.jpg", id);
            char *jp = sfc_path_join(jdir, name);
            snprintf(name, sizeof name, "%s.png", id);
            char *sp_path = sfc_path_join(sdir, name);
            int rc = sfc_image_save_jpeg(jp, &trgb, cl.quality);
            if (rc == 0) rc = sfc_label_save(sp_path, &tmask);
            free(jp);
            free(sp_path);
#pragma omp critical(toygen)
            {
                if (rc && k < first_bad) {
                    first_bad = k;
                    snprintf(errmsg, sizeof errmsg, "%s", sfc_errmsg());
                }
                sfc_progress_update(&prog, ++done);
            }
        }
        free(rgb);
        free(mask);
    }
    if (first_bad < total) sfc_die("%s", errmsg);
    sfc_progress_end(&prog);

    /* lists and class names, after every image is complete */
    char *txt[2] = {NULL, NULL};
    size_t len[2] = {0, 0};
    for (long k = 0; k < total; k++) {
        char id[40];
        image_id(id, sizeof id - 1, k);
        strcat(id, "\n");
        append(&txt[k < cl.train ? 0 : 1], &len[k < cl.train ? 0 : 1], id);
    }
    char *names = NULL;
    size_t nlen = 0;
    for (int c = 0; c < cfg.n_classes; c++) {
        append(&names, &nlen, cfg.cls[c].name);
        append(&names, &nlen, "\n");
    }
    char *p_train = sfc_path_join(ldir, "train.txt");
    char *p_val = sfc_path_join(ldir, "val.txt");
    char *p_cls = sfc_path_join(cl.out, "classes.txt");
    if (write_text(p_train, txt[0]) || write_text(p_val, txt[1]) ||
        write_text(p_cls, names))
        sfc_die_errmsg();

    /* the class table */
    double pe[SFC_TOY_MAX_CLASSES];
    sfc_toy_expected(&cfg, SFC_TOY_TRAIN, pe);
    long cnt[2][SFC_TOY_MAX_CLASSES] = {{0}};
    for (long k = 0; k < total; k++)
        for (int j = 0; j < nids[k]; j++)
            cnt[k < cl.train ? 0 : 1][ids[k * SFC_TOY_MAX_OBJECTS + j] - 1]++;
    printf("id\tname\tgroup\trole\tweight\texpected_train\ttrain\tval\n");
    for (int c = 0; c < cfg.n_classes; c++)
        printf("%d\t%s\t%d\t%s\t%g\t%.1f\t%ld\t%ld\n", c + 1, cfg.cls[c].name,
               cfg.cls[c].group + 1, cfg.cls[c].head ? "head" : "tail",
               cfg.cls[c].weight, pe[c] * cl.train, cnt[0][c], cnt[1][c]);

    free(txt[0]);
    free(txt[1]);
    free(names);
    free(p_train);
    free(p_val);
    free(p_cls);
    free(ids);
    free(nids);
    free(jdir);
    free(sdir);
    free(ldir);
    return sfc_fshut(stdout, "<stdout>");
}
