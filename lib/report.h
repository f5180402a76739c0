/* SPDX-License-Identifier: MIT */
/* report.h: one self-contained HTML page about one or more runs (the
 * sfc-report tool).
 *
 * A run is a folder: the output folder of an sfc-trainstep run (the toy
 * demo's runs/toy/sfc) or a whole run folder holding one method
 * (runs/voc). Its db is --db, else <dir>/sfc.db, else the parent's
 * sfc.db. A folder whose db trained several methods in distinct
 * sub-folders (runs/toy) stands for each of them, in training order.
 * The runs rows of a run are those whose recorded options name a path
 * inside its folder (relative paths are matched by their trailing
 * components when they do not resolve from here), plus the dataset's
 * sfc-ingest runs and the sfc-sample run its training used.
 *
 * The page holds: the record (dataset, class counts N_c with DC_c and
 * head/middle/tail, every option and seed, versions, wall time per run),
 * training curves (train_log of the trainers: loss terms, lr, images/s,
 * resume points and the L_PDW warm-up marked), the image bank (age of
 * each class slot's image per step, bank draws and batch images per
 * class), evaluation (per-class IoU of every stage/map in metrics,
 * summary means, over-activation FP/(TP+FN) and under-activation
 * FN/(TP+FN) per class), a grid of examples (head-class, tail-class, best
 * and worst images by per-image mIoU of the last label stage, and with two
 * runs the largest gains and losses) plus training images with IR labels
 * (which usually exist for training images only), and with two or more
 * runs the
 * per-class IoU differences against the first run, classes sorted by
 * N_c. Sections, figures and columns whose data is absent are left out.
 * Figures are drawn by gnuplot (lib/plot.h), image tiles by libvips
 * (lib/img.h); both are inlined as data: URIs. The page is written
 * atomically; on any error nothing is written. */
#ifndef SFC_REPORT_H
#define SFC_REPORT_H

struct sfc_report_opts {
    const char *gnuplot; /* program drawing the figures */
    const char *db;      /* db of every run, or NULL to look for sfc.db */
    int examples;        /* images per kind of example (head, tail, ...) */
    int tile;            /* longest side of an example tile, pixels */
    double alpha;        /* weight of the heat colours over the image */
    int quiet;           /* no progress lines on stderr */
};

/* Build the page for the runs in dirs[0..n) and write it to out. Returns
 * 0, or -1 with the error slot set (a missing folder, no db, a corrupt or
 * foreign db, classes that differ between runs, gnuplot failing, a write
 * error); out is then left as it was. */
int sfc_report_write(const char *out, int n, char *const *dirs,
                     const struct sfc_report_opts *o);

#endif
