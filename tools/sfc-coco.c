/* SPDX-License-Identifier: MIT */
/* sfc-coco: ingest one MS COCO instances file (instances_train2014.json,
 * ...): check it and its image files, render every annotated image's class
 * mask as a VOC-layout PNG, then fill the db (classes 1..C in category-id
 * order, images, image-level labels, the split, its class counts) in one
 * transaction. Every input is checked before anything is written, so a bad
 * file writes nothing and leaves the db unchanged. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atomic.h"
#include "coco.h"
#include "dataset.h"
#include "db.h"
#include "img.h"
#include "sfc.h"

static const char *const usage_lines[] = {
    "sfc-coco [options] --db FILE --images DIR --out DIR FILE.json",
    NULL,
};

static const char *const crowd_choices[] = {"class", "ignore", NULL};
static const char *const overlap_choices[] = {"small", "last", NULL};

struct cmdline {
    const char *db, *images, *out, *split, *crowd, *overlap;
    double margin;
    int quiet;
};

struct item {
    long img;    /* index into coco.images */
    char *id;    /* file stem */
    char *path;  /* absolute image path */
    char *mask;  /* absolute mask path */
    uint8_t present[256];
};

static int cmp_item(const void *a, const void *b)
{
    return strcmp(((const struct item *)a)->id, ((const struct item *)b)->id);
}

/* "instances_train2014.json" -> "train2014". */
static char *default_split(const char *json)
{
    char *s = sfc_coco_stem(json);
    const char *pre = "instances_";
    if (!strncmp(s, pre, strlen(pre))) memmove(s, s + strlen(pre),
                                               strlen(s) - strlen(pre) + 1);
    return s;
}

static void write_text(const char *path, const char *const *lines, long n)
{
    struct sfc_atomic a;
    FILE *fp = sfc_atomic_open(&a, path);
    if (!fp) sfc_die_errmsg();
    for (long i = 0; i < n; i++) fprintf(fp, "%s\n", lines[i]);
    if (sfc_atomic_commit(&a)) sfc_die_errmsg();
}

int main(int argc, char **argv)
{
    struct cmdline cl = {.crowd = "class", .overlap = "small", .margin = 1};
    const struct sfc_opt opts[] = {
        SFC_OPT_STRING_("db", &cl.db, "FILE", "the db to fill (created if "
                        "missing)"),
        SFC_OPT_STRING_("images", &cl.images, "DIR",
                        "the folder of the file's images (e.g. train2014)"),
        SFC_OPT_STRING_("out", &cl.out, "DIR",
                        "VOC-layout output: SegmentationClass/<id>.png, "
                        "ImageSets/Segmentation/<split>.txt, classes.txt"),
        SFC_OPT_STRING_("split", &cl.split, "NAME",
                        "split name [default: the file name without "
                        "'instances_', e.g. train2014]"),
        SFC_OPT_CHOICE_("crowd", &cl.crowd, crowd_choices,
                        "crowd regions in the masks: their class, or 255 "
                        "(ignored by training and scoring)"),
        SFC_OPT_CHOICE_("overlap", &cl.overlap, overlap_choices,
                        "where instances overlap: the smaller wins, or the "
                        "later in the file"),
        SFC_OPT_DOUBLE_("margin", &cl.margin, "PX", 0, 1e6,
                        "polygon points may lie this far outside the image "
                        "(clipped); farther is an error"),
        SFC_OPT_FLAG_("quiet", 'q', &cl.quiet, "no progress output"),
        SFC_OPT_END_,
    };
    const struct sfc_cli cli = {
        usage_lines,
        "Reads a COCO instances file, checks it and its images, renders the "
        "class mask of every\nannotated image (0 background, classes 1..C "
        "in category-id order, crowd as --crowd;\ncrowd regions first, then "
        "instances by --overlap), and writes the classes, images,\n"
        "image-level labels (every annotated class), the split and its "
        "class counts into the db\nin one transaction. Images without "
        "annotations are reported, listed in\nOUT/<split>_unannotated.txt "
        "and left out of the split. Prints the class counts.",
        opts,
    };
    sfc_proginit(argv[0]);
    int npos = sfc_cli_parse(&cli, argc, argv);
    if (npos != 1) sfc_cli_die("expected one annotation file, got %d", npos);
    if (!cl.db || !cl.images || !cl.out)
        sfc_cli_die("--db, --images and --out are required");
    char *split = cl.split ? sfc_xstrdup(cl.split) : default_split(argv[0]);
    if (!*split || strchr(split, '/'))
        sfc_cli_die("--split: bad name '%s'", split);
    enum sfc_coco_crowd crowd = !strcmp(cl.crowd, "class")
                                    ? SFC_COCO_CROWD_CLASS
                                    : SFC_COCO_CROWD_IGNORE;
    enum sfc_coco_overlap ov = !strcmp(cl.overlap, "small")
                                   ? SFC_COCO_OVERLAP_SMALL
                                   : SFC_COCO_OVERLAP_LAST;

    /* read and check the file */
    double t0 = sfc_now();
    struct sfc_coco c;
    if (sfc_coco_read(argv[0], cl.margin, &c)) sfc_die_errmsg();
    if (!cl.quiet)
        fprintf(stderr, "%s: %s: %ld images, %ld annotations, %d categories "
                "(%.1f s)\n", sfc_progname(), argv[0], c.n_images, c.n_anns,
                c.n_cats, sfc_now() - t0);
    int ncls = c.n_cats + 1;
    char **names = sfc_xmalloc((size_t)ncls * sizeof *names);
    names[0] = "background";
    for (int k = 0; k < c.n_cats; k++) names[k + 1] = c.cat_names[k];

    /* the db's classes, if it exists, must be these */
    struct stat st;
    if (stat(cl.db, &st) == 0) {
        struct sfc_db *db = sfc_db_open(cl.db, 0);
        if (!db || sfc_dataset_check_classes(db, names, ncls, argv[0]))
            sfc_die_errmsg();
        sfc_db_close(db);
    }

    /* images: every file present; the annotated ones become items */
    char imgroot[PATH_MAX];
    if (!realpath(cl.images, imgroot))
        sfc_die("%s: cannot open image folder:", cl.images);
    /* first every file (a failure names it before anything is held) */
    for (long i = 0; i < c.n_images; i++) {
        const struct sfc_coco_image *im = &c.images[i];
        char *p = sfc_path_join(imgroot, im->file), msg[PATH_MAX + 256];
        if (sfc_file_exists(p)) {
            free(p);
            continue;
        }
        if (im->n_ann)
            snprintf(msg, sizeof msg, "%s: missing image (image %lld, "
                     "annotation %lld, in '%s')", p, (long long)im->id,
                     (long long)c.anns[c.by_image[im->first]].id, argv[0]);
        else
            snprintf(msg, sizeof msg, "%s: missing image (image %lld, in "
                     "'%s')", p, (long long)im->id, argv[0]);
        free(p);
        sfc_coco_release(&c);
        sfc_die("%s", msg);
    }
    struct item *items = sfc_xcalloc((size_t)c.n_images + 1, sizeof *items);
    char **bare = sfc_xmalloc(((size_t)c.n_images + 1) * sizeof *bare);
    long n = 0, nbare = 0;
    for (long i = 0; i < c.n_images; i++) {
        const struct sfc_coco_image *im = &c.images[i];
        if (!im->n_ann) {
            bare[nbare++] = sfc_coco_stem(im->file);
            continue;
        }
        items[n].img = i;
        items[n].id = sfc_coco_stem(im->file);
        items[n].path = sfc_path_join(imgroot, im->file);
        n++;
    }
    qsort(items, (size_t)n, sizeof *items, cmp_item);
    for (long i = 1; i < n; i++)
        if (!strcmp(items[i].id, items[i - 1].id))
            sfc_die("%s: two images named '%s'", argv[0], items[i].id);
    if (!n) sfc_die("%s: no annotated image", argv[0]);

    /* output folders (all input is good from here on) */
    char *maskdir = sfc_path_join(cl.out, "SegmentationClass");
    char *listdir = sfc_path_join(cl.out, "ImageSets/Segmentation");
    if (sfc_mkdirs(maskdir, 0777) || sfc_mkdirs(listdir, 0777))
        sfc_die_errmsg();
    char outroot[PATH_MAX];
    if (!realpath(cl.out, outroot)) sfc_die("%s: cannot open:", cl.out);
    for (long i = 0; i < n; i++)
        items[i].mask = sfc_xasprintf("%s/SegmentationClass/%s.png", outroot,
                                      items[i].id);

    /* render and write the masks; the first failure in id order is
     * reported whatever the thread count */
    long first_bad = n, done = 0;
    char errbuf[2048] = "";
    struct sfc_progress prog;
    sfc_progress_start(&prog, "masks", n, cl.quiet);
#pragma omp parallel for schedule(dynamic, 8)
    for (long i = 0; i < n; i++) {
        const struct sfc_coco_image *im = &c.images[items[i].img];
        struct sfc_tensor lab;
        sfc_tensor_init(&lab, SFC_U8, 2,
                        (const int64_t[]){im->height, im->width});
        sfc_coco_render(&c, items[i].img, crowd, ov, lab.data,
                        items[i].present);
        if (sfc_label_save(items[i].mask, &lab)) {
#pragma omp critical(coco_err)
            if (i < first_bad) {
                first_bad = i;
                snprintf(errbuf, sizeof errbuf, "%s", sfc_errmsg());
            }
        }
        sfc_tensor_release(&lab);
#pragma omp critical(coco_progress)
        sfc_progress_update(&prog, ++done);
    }
    if (first_bad < n) sfc_die("%s", errbuf);
    sfc_progress_end(&prog);

    /* lists and class names beside the masks */
    const char **lines = sfc_xmalloc(((size_t)n + 1) * sizeof *lines);
    for (long i = 0; i < n; i++) lines[i] = items[i].id;
    char *lname = sfc_xasprintf("%s/%s.txt", listdir, split);
    write_text(lname, lines, n);
    char *cname = sfc_path_join(cl.out, "classes.txt");
    write_text(cname, (const char *const *)names + 1, c.n_cats);
    char *bname = sfc_xasprintf("%s/%s_unannotated.txt", cl.out, split);
    write_text(bname, (const char *const *)bare, nbare);

    /* class counts */
    int64_t *counts = sfc_xcalloc((size_t)ncls, sizeof *counts);
    for (long i = 0; i < n; i++)
        for (int k = 1; k < ncls; k++) counts[k] += items[i].present[k];

    /* the run's configuration, with the file read */
    char jpath[PATH_MAX];
    char *cfg = sfc_cli_config_json_with(
        &cli, "file", realpath(argv[0], jpath) ? jpath : argv[0]);

    /* one transaction */
    struct sfc_dataset_image *dim = sfc_xmalloc(((size_t)n + 1) * sizeof *dim);
    for (long i = 0; i < n; i++) {
        const struct sfc_coco_image *im = &c.images[items[i].img];
        dim[i] = (struct sfc_dataset_image){items[i].id, items[i].path,
                                            items[i].mask, im->width,
                                            im->height, items[i].present};
    }
    struct sfc_dataset_split sp = {split, (char *const *)lines, n, counts};
    int64_t run = sfc_dataset_ingest(cl.db, "sfc-coco", cfg, names, ncls,
                                     argv[0], dim, n, &sp, 1);
    if (run < 0) sfc_die_errmsg();
    sfc_dataset_print_counts(stdout, names, ncls, &sp, 1);
    if (!cl.quiet) {
        if (nbare)
            fprintf(stderr, "%s: %ld images without annotations left out of "
                    "split '%s' (listed in '%s')\n", sfc_progname(), nbare,
                    split, bname);
        fprintf(stderr, "%s: %ld images in split '%s', %d classes, run %lld "
                "in '%s' (%.1f s)\n", sfc_progname(), n, split, c.n_cats,
                (long long)run, cl.db, sfc_now() - t0);
    }

    for (long i = 0; i < n; i++) {
        free(items[i].id);
        free(items[i].path);
        free(items[i].mask);
    }
    for (long i = 0; i < nbare; i++) free(bare[i]);
    free(items);
    free(dim);
    free(bare);
    free(lines);
    free(names);
    free(counts);
    free(cfg);
    free(lname);
    free(cname);
    free(bname);
    free(maskdir);
    free(listdir);
    free(split);
    sfc_coco_release(&c);
    return sfc_fshut(stdout, "<stdout>");
}
