/* SPDX-License-Identifier: MIT */
/* sfc-ingest: fill the db with a VOC-layout dataset: the classes, every
 * image of the split lists with its size, paths and image-level labels,
 * the splits in list order, and each split's class counts N_c (dataset
 * rows of class_stats). Everything is read and checked first; the db is
 * then written in one transaction, so a bad dataset leaves it untouched,
 * and re-ingesting the same folder gives the same rows. */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dataset.h"
#include "db.h"
#include "img.h"
#include "sfc.h"
#include "voc.h"

static const char *const usage_lines[] = {
    "sfc-ingest [options] --db FILE DIR",
    NULL,
};

static const char *const label_sources[] = {"masks", "xml", "list", NULL};

struct cmdline {
    const char *db, *classes, *labels, *label_file, *images, *masks, *lists,
        *splits;
    int quiet;
};

/* One image of the union of the splits. */
struct item {
    char *id;
    char *path;  /* image file */
    char *mask;  /* mask file or NULL */
    int width, height;
    uint8_t present[256];
};

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* DIR/sub unless sub is absolute. */
static char *under(const char *root, const char *sub)
{
    return sub[0] == '/' ? sfc_xstrdup(sub) : sfc_path_join(root, sub);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The split names: --splits (comma-separated) or every *.txt in dir. */
static char **find_splits(const char *dir, const char *opt, int *n_out)
{
    char **v = NULL;
    int n = 0;
    if (opt) {
        char *s = sfc_xstrdup(opt), *save = NULL;
        for (char *t = strtok_r(s, ",", &save); t;
             t = strtok_r(NULL, ",", &save)) {
            v = sfc_xrealloc(v, (size_t)(n + 1) * sizeof *v);
            v[n++] = sfc_xstrdup(t);
        }
        free(s);
        if (!n) sfc_cli_die("--splits: no split names in '%s'", opt);
    } else {
        DIR *d = opendir(dir);
        if (!d) sfc_die("%s: cannot open list folder:", dir);
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t len = strlen(e->d_name);
            if (len <= 4 || e->d_name[0] == '.' ||
                strcmp(e->d_name + len - 4, ".txt"))
                continue;
            v = sfc_xrealloc(v, (size_t)(n + 1) * sizeof *v);
            v[n] = sfc_xstrdup(e->d_name);
            v[n++][len - 4] = '\0';
        }
        closedir(d);
        if (!n) sfc_die("%s: no image lists (*.txt)", dir);
        qsort(v, (size_t)n, sizeof *v, cmp_str);
    }
    *n_out = n;
    return v;
}

/* The image file of an id: <id>.jpg, .jpeg or .png, the first present. */
static char *find_image(const char *dir, const char *id)
{
    static const char *const ext[] = {"jpg", "jpeg", "png"};
    for (size_t k = 0; k < SFC_ARRAY_LEN(ext); k++) {
        char *p = sfc_xasprintf("%s/%s.%s", dir, id, ext[k]);
        if (sfc_file_exists(p)) return p;
        free(p);
    }
    return NULL;
}

/* Read one image's size, mask and labels; 0 or -1 (slot set). */
static int load_item(struct item *it, const struct cmdline *cl,
                     const char *imgdir, const char *maskdir,
                     const char *xmldir, const struct sfc_classes *cls,
                     const struct sfc_label_list *ll)
{
    it->path = find_image(imgdir, it->id);
    if (!it->path) {
        char *p = sfc_xasprintf("%s/%s.jpg", imgdir, it->id);
        sfc_error(p, "missing image (no .jpg, .jpeg or .png)");
        free(p);
        return -1;
    }
    if (sfc_image_size(it->path, &it->width, &it->height)) return -1;
    if (maskdir) {
        char *m = sfc_xasprintf("%s/%s.png", maskdir, it->id);
        if (sfc_file_exists(m))
            it->mask = m;
        else
            free(m);
    }
    if (!strcmp(cl->labels, "masks")) {
        if (!it->mask) {
            char *m = sfc_xasprintf("%s/%s.png", maskdir, it->id);
            sfc_error(m, "missing mask");
            free(m);
            return -1;
        }
        return sfc_voc_mask_labels(it->mask, it->width, it->height, cls->n,
                                   it->present);
    }
    if (it->mask) { /* not read for labels: check its size from the header */
        int w, h;
        if (sfc_image_size(it->mask, &w, &h)) return -1;
        if (w != it->width || h != it->height)
            return sfc_error(it->mask, "mask is %dx%d, its image is %dx%d",
                             w, h, it->width, it->height);
    }
    if (!strcmp(cl->labels, "xml")) {
        char *x = sfc_xasprintf("%s/%s.xml", xmldir, it->id);
        int r = sfc_voc_xml_labels(x, cls, it->present);
        free(x);
        return r;
    }
    long k = sfc_label_list_find(ll, it->id);
    if (k < 0)
        return sfc_error(cl->label_file, "no labels for image '%s'", it->id);
    memcpy(it->present, ll->present[k], 256);
    return 0;
}

int main(int argc, char **argv)
{
    struct cmdline cl = {.labels = "masks", .images = "JPEGImages",
                         .lists = "ImageSets/Segmentation"};
    const struct sfc_opt opts[] = {
        SFC_OPT_STRING_("db", &cl.db, "FILE", "the db to fill (created if "
                        "missing)"),
        SFC_OPT_STRING_("classes", &cl.classes, "FILE",
                        "class names, one per line, for ids 1..C [default: "
                        "DIR/classes.txt if present, else the 20 VOC "
                        "classes]"),
        SFC_OPT_CHOICE_("labels", &cl.labels, label_sources,
                        "where image labels come from: the masks' classes, "
                        "Annotations/<id>.xml objects, or --label-file"),
        SFC_OPT_STRING_("label-file", &cl.label_file, "FILE",
                        "with --labels list: lines '<id> <class>...', "
                        "classes as names or ids"),
        SFC_OPT_STRING_("images", &cl.images, "DIR",
                        "image folder (<id>.jpg, .jpeg or .png), relative "
                        "to DIR"),
        SFC_OPT_STRING_("masks", &cl.masks, "DIR",
                        "ground-truth masks (<id>.png) relative to DIR "
                        "[default: SegmentationClassAug if present, else "
                        "SegmentationClass]"),
        SFC_OPT_STRING_("lists", &cl.lists, "DIR",
                        "image lists <split>.txt, relative to DIR"),
        SFC_OPT_STRING_("splits", &cl.splits, "A,B",
                        "splits to ingest [default: every list in --lists]"),
        SFC_OPT_FLAG_("quiet", 'q', &cl.quiet, "no progress output"),
        SFC_OPT_END_,
    };
    const struct sfc_cli cli = {
        usage_lines,
        "Reads a dataset in PASCAL VOC layout (DIR/JPEGImages, masks, "
        "ImageSets/Segmentation/*.txt)\nand writes its classes, images "
        "(size, paths), splits, image-level labels and per-split\nclass "
        "counts into the db, in one transaction: a bad dataset leaves the "
        "db unchanged.\nPrints the class counts of every split on stdout.",
        opts,
    };
    sfc_proginit(argv[0]);
    int npos = sfc_cli_parse(&cli, argc, argv);
    if (npos != 1) sfc_cli_die("expected one dataset folder, got %d", npos);
    if (!cl.db) sfc_cli_die("missing --db FILE");
    int list_mode = !strcmp(cl.labels, "list");
    if (list_mode && !cl.label_file)
        sfc_cli_die("--labels list needs --label-file");
    if (!list_mode && cl.label_file)
        sfc_cli_die("--label-file is only for --labels list, not --labels "
                    "%s", cl.labels);

    char root[PATH_MAX];
    if (!realpath(argv[0], root)) sfc_die("%s: cannot open dataset:", argv[0]);
    if (!is_dir(root)) sfc_die("%s: not a folder", argv[0]);

    /* classes */
    struct sfc_classes cls;
    char *cls_file = cl.classes ? sfc_xstrdup(cl.classes)
                                : sfc_path_join(root, "classes.txt");
    if (cl.classes || sfc_file_exists(cls_file)) {
        if (sfc_classes_read(cls_file, &cls)) sfc_die_errmsg();
    } else {
        free(cls_file);
        cls_file = NULL;
        sfc_classes_voc(&cls);
    }

    /* folders */
    char *imgdir = under(root, cl.images), *listdir = under(root, cl.lists);
    char *xmldir = sfc_path_join(root, "Annotations"), *maskdir = NULL;
    if (cl.masks) {
        maskdir = under(root, cl.masks);
        if (!is_dir(maskdir)) sfc_die("%s: no such mask folder", maskdir);
    } else {
        maskdir = sfc_path_join(root, "SegmentationClassAug");
        if (!is_dir(maskdir)) {
            free(maskdir);
            maskdir = sfc_path_join(root, "SegmentationClass");
            if (!is_dir(maskdir)) {
                free(maskdir);
                maskdir = NULL;
            }
        }
    }
    if (!strcmp(cl.labels, "masks") && !maskdir)
        sfc_die("%s: no SegmentationClassAug or SegmentationClass folder "
                "(--labels masks)", root);
    if (!is_dir(imgdir)) sfc_die("%s: no such image folder", imgdir);
    struct sfc_label_list ll = {0};
    if (list_mode && sfc_label_list_read(cl.label_file, &cls, &ll))
        sfc_die_errmsg();

    /* splits and the union of their ids */
    int nsplit;
    char **splits = find_splits(listdir, cl.splits, &nsplit);
    char ***sids = sfc_xcalloc((size_t)nsplit, sizeof *sids);
    long *slen = sfc_xcalloc((size_t)nsplit, sizeof *slen), total = 0;
    for (int s = 0; s < nsplit; s++) {
        char *name = sfc_xasprintf("%s.txt", splits[s]);
        char *lp = sfc_path_join(listdir, name);
        if (sfc_voc_list_read(lp, &sids[s], &slen[s])) sfc_die_errmsg();
        if (!slen[s]) sfc_die("%s: empty image list", lp);
        total += slen[s];
        free(lp);
        free(name);
    }
    char **all = sfc_xmalloc((size_t)total * sizeof *all);
    long n = 0;
    for (int s = 0; s < nsplit; s++)
        for (long i = 0; i < slen[s]; i++) all[n++] = sids[s][i];
    qsort(all, (size_t)n, sizeof *all, cmp_str);
    long nu = 0;
    for (long i = 0; i < n; i++)
        if (!nu || strcmp(all[i], all[nu - 1])) all[nu++] = all[i];

    /* read every image's header, mask and labels; report the error of
     * the first bad image in id order, whatever the thread count */
    struct item *items = sfc_xcalloc((size_t)nu, sizeof *items);
    for (long i = 0; i < nu; i++) items[i].id = all[i];
    long first_bad = nu, done = 0;
    char errbuf[2048] = "";
    struct sfc_progress prog;
    sfc_progress_start(&prog, "images", nu, cl.quiet);
#pragma omp parallel for schedule(dynamic, 16)
    for (long i = 0; i < nu; i++) {
        long bad;
#pragma omp atomic read
        bad = first_bad;
        if (i > bad) continue;
        if (load_item(&items[i], &cl, imgdir, maskdir, xmldir, &cls, &ll)) {
#pragma omp critical(ingest_err)
            if (i < first_bad) {
                first_bad = i;
                snprintf(errbuf, sizeof errbuf, "%s", sfc_errmsg());
            }
        }
#pragma omp critical(ingest_progress)
        sfc_progress_update(&prog, ++done);
    }
    if (first_bad < nu) sfc_die("%s", errbuf);
    sfc_progress_end(&prog);

    /* class counts per split, from the labels just read */
    int64_t *counts = sfc_xcalloc((size_t)nsplit * (size_t)cls.n,
                                  sizeof *counts);
    long **sidx = sfc_xcalloc((size_t)nsplit, sizeof *sidx);
    for (int s = 0; s < nsplit; s++) {
        sidx[s] = sfc_xmalloc((size_t)slen[s] * sizeof **sidx);
        for (long i = 0; i < slen[s]; i++) {
            char **hit = bsearch(&sids[s][i], all, (size_t)nu, sizeof *all,
                                 cmp_str);
            SFC_ASSERT(hit);
            long k = hit - all;
            sidx[s][i] = k;
            for (int c = 1; c < cls.n; c++)
                counts[(size_t)s * (size_t)cls.n + (size_t)c] +=
                    items[k].present[c];
        }
    }

    /* the run's configuration: every option as resolved, plus the folder
     * (--classes stays null for the built-in VOC names) */
    if (!cl.classes) cl.classes = cls_file;
    if (!cl.masks) cl.masks = maskdir;
    char *cfg = sfc_cli_config_json_with(&cli, "dir", root);

    /* one transaction */
    struct sfc_dataset_image *dim = sfc_xmalloc((size_t)nu * sizeof *dim);
    for (long i = 0; i < nu; i++)
        dim[i] = (struct sfc_dataset_image){items[i].id, items[i].path,
                                            items[i].mask, items[i].width,
                                            items[i].height, items[i].present};
    struct sfc_dataset_split *sp = sfc_xmalloc((size_t)nsplit * sizeof *sp);
    for (int s = 0; s < nsplit; s++)
        sp[s] = (struct sfc_dataset_split){
            splits[s], sids[s], slen[s], counts + (size_t)s * (size_t)cls.n};
    int64_t run = sfc_dataset_ingest(cl.db, "sfc-ingest", cfg, cls.names,
                                     cls.n, cls_file ? cls_file
                                                     : "the VOC classes",
                                     dim, nu, sp, nsplit);
    if (run < 0) sfc_die_errmsg();
    sfc_dataset_print_counts(stdout, cls.names, cls.n, sp, nsplit);
    if (!cl.quiet)
        fprintf(stderr, "%s: %ld images in %d splits, %d classes, run %lld "
                "in '%s'\n", sfc_progname(), nu, nsplit, cls.n - 1,
                (long long)run, cl.db);

    for (long i = 0; i < nu; i++) {
        free(items[i].path);
        free(items[i].mask);
    }
    for (int s = 0; s < nsplit; s++) {
        for (long i = 0; i < slen[s]; i++) free(sids[s][i]);
        free(sids[s]);
        free(sidx[s]);
        free(splits[s]);
    }
    free(items);
    free(dim);
    free(sp);
    free(all);
    free(sids);
    free(sidx);
    free(slen);
    free(splits);
    free(counts);
    free(cfg);
    free(imgdir);
    free(listdir);
    free(xmldir);
    free(maskdir);
    free(cls_file);
    sfc_label_list_release(&ll);
    sfc_classes_release(&cls);
    return sfc_fshut(stdout, "<stdout>");
}
